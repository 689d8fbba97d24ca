//! Session expiry (DATA-005, automatic logoff of the server-side session
//! store): every key matching the session pattern has a TTL within the
//! logoff and is a hash.
//!
//! Per master, [`ttl_problems`] lists what outlives the logoff; [`decide`]
//! then gives one finding in a written order of outcomes. Key names are
//! bearer tokens: the evidence holds only keyed hashes of them.

use super::reason::reasons;
use super::rule::{first_of, joined, per_subject, Outcome, Rule, SubjectFinding};
use crate::evidence::{
    EvidenceSet, KeyspaceView, Observation, ProbeId, ReplicationRole, SessionScanSettings,
    SessionScanView, Unattributed,
};

reasons! {
    /// Why a master got its outcome in the session-expiry check (DATA-005).
    Sessions => Why {
        /// Every session key examined expires within the logoff.
        SessionsExpire = "sessions-expire",
        /// Session keys without a TTL.
        SessionWithoutTtl = "session-without-ttl",
        /// Session keys whose TTL outlives the logoff.
        SessionTtlTooLong = "session-ttl-too-long",
        /// Session keys whose TTL could not be read.
        SessionKeysUnreadable = "session-keys-unreadable",
        /// Session keys that are not hashes.
        SessionNotAHash = "session-not-a-hash",
        /// No key matches the pattern on any master.
        NoSessionKeys = "no-session-keys",
        /// The evidence was scanned for another pattern.
        ScannedOtherPattern = "scanned-other-pattern",
        /// INFO keyspace counts keys without a TTL that the scan did not
        /// find among the session keys (outside the pattern, or beyond the
        /// sample): fail or warn by `other_keys_without_ttl`.
        KeysWithoutTtl = "keys-without-ttl",
        /// INFO keyspace was not read around the scan.
        KeyspaceUnobserved = "keyspace-unobserved",
        /// The node was no longer a master when its keyspace was read.
        KeyspaceNotMaster = "keyspace-not-master",
    }
}

/// The session-expiry rule.
pub(crate) fn rules() -> Vec<Rule> {
    vec![Rule::new(
        "data.session_ttl",
        &[ProbeId::Sessions],
        "On every master: INFO keyspace (every database's keys and keys with an expiry: the exact \
         count of keys without a TTL, whatever their name), then SCAN MATCH <pattern> with a bounded \
         COUNT and pipelined TTL and TYPE for each key found, up to a cap per master and at most \
         max_keys_per_s keys a second (the evidence says whether the scan was complete or a sample, \
         and what it cost), then INFO keyspace again. Key names are bearer tokens: offending keys are \
         reported only as a count and a keyed hash (HMAC-SHA256 with this run's salt, kept next to \
         the report, never in it).",
        session_ttl,
    )]
}

fn session_ttl(ev: &EvidenceSet, p: &SessionScanSettings) -> Vec<SubjectFinding> {
    let views = ev.views(ProbeId::Sessions, |o| match o {
        Observation::SessionScan(v) => Some(v.as_ref()),
        _ => None,
    });
    let expected = format!(
        "every key matching {} has a TTL <= {} s (automatic logoff, of the server-side session store only) and is a hash; at least one such key exists",
        p.pattern, p.max_ttl_s
    );
    // Keys found on any master: zero everywhere is no evidence at all.
    let cluster_total: u64 = views
        .iter()
        .filter_map(|(_, r)| r.ok())
        .map(|v| v.scanned)
        .sum();
    per_subject(views, &expected, |subject, v: &SessionScanView| {
        let (o, why, message) = decide(v, p, cluster_total);
        SubjectFinding::with(subject, o, why)
            .observed(observed(v))
            .expected(expected.clone())
            .message(format!("{message}{}", cost(v)))
    })
}

/// `n` with its thousands grouped by commas (1,000,000).
fn grouped(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What the scan cost the node, for the message (not the observation:
/// timings differ on every run and would make every diff show drift).
fn cost(v: &SessionScanView) -> String {
    match &v.cost {
        Some(c) => format!(
            " (the scan cost this node {} commands in {} SCAN pages over {:.1} s, {:.1} s of it \
             waiting to stay within {} keys/s)",
            grouped(c.commands),
            c.pages,
            c.elapsed_ms as f64 / 1000.0,
            c.paced_ms as f64 / 1000.0,
            grouped(v.settings.max_keys_per_s)
        ),
        None => String::new(),
    }
}

/// The keyspace counts in one phrase: `3 of 1,000,000 keys have no TTL
/// (INFO keyspace)`.
fn counted(k: &KeyspaceView) -> String {
    let other = k.other_dbs_without_ttl();
    format!(
        "{} of {} keys have no TTL (INFO keyspace{})",
        grouped(k.without_ttl()),
        grouped(k.keys()),
        if other.is_empty() {
            String::new()
        } else {
            let dbs: Vec<String> = other.iter().map(|d| format!("db{d}")).collect();
            format!(
                "; {} outside db0, which the scan does not read",
                dbs.join(", ")
            )
        }
    )
}

/// What the scan found, in one phrase: `the sample of 100,000 keys
/// matching session:* found 1 without TTL, TTL at most 1800 s`.
fn scanned(v: &SessionScanView) -> String {
    format!(
        "the {} of {} keys matching {} found {} without TTL{}",
        if v.complete {
            "complete scan"
        } else {
            "sample"
        },
        grouped(v.scanned),
        v.settings.pattern,
        v.no_ttl.len(),
        v.longest_ttl_s
            .map(|t| format!(", TTL at most {t} s"))
            .unwrap_or_default()
    )
}

/// What the scan of one master saw, in one line.
fn observed(v: &SessionScanView) -> String {
    let s = &v.settings;
    let keyspace = match &v.keyspace {
        Some(k) => format!(
            "INFO keyspace: {} keys, {} without TTL; ",
            k.keys(),
            k.without_ttl()
        ),
        None => String::new(),
    };
    format!(
        "{keyspace}{} keys matching {} examined ({}){}; {} without TTL, {} with TTL > {} s, {} not a hash; longest TTL {}",
        v.scanned,
        s.pattern,
        match (v.complete, v.stopped_early) {
            (true, _) => "complete scan",
            (false, true) => "sample: stopped at three quarters of probe_ms, before the cap",
            (false, false) => "sample: the cap was reached",
        },
        if v.unreadable.is_empty() {
            String::new()
        } else {
            format!(", {} unreadable", v.unreadable.len())
        },
        v.no_ttl.len(),
        v.ttl_too_long.len(),
        s.max_ttl_s,
        v.not_hash.len(),
        v.longest_ttl_s
            .map(|t| format!("{t} s"))
            .unwrap_or_else(|| "n/a".into())
    )
}

/// The keys that outlive the policy's logoff: without a TTL, or with a
/// longer one. The longest TTL decides (it is exact whatever threshold the
/// scan listed keys above); the listed keys count too.
fn ttl_problems(v: &SessionScanView, p: &SessionScanSettings) -> Vec<(Why, String)> {
    let mut problems = Vec::new();
    if !v.no_ttl.is_empty() {
        problems.push((
            Why::SessionWithoutTtl,
            format!(
                "{} session key(s) never expire (keyed hashes: {})",
                v.no_ttl.len(),
                first_of(&v.no_ttl, 10)
            ),
        ));
    }
    let longest = v
        .ttl_too_long
        .iter()
        .map(|(_, t)| *t)
        .chain(v.longest_ttl_s)
        .max();
    if longest.is_some_and(|t| t > p.max_ttl_s) {
        let l: Vec<String> = v
            .ttl_too_long
            .iter()
            .filter(|(_, t)| *t > p.max_ttl_s)
            .map(|(h, t)| format!("{h} ({t} s)"))
            .collect();
        let scanned_above = v.settings.max_ttl_s;
        let text = if p.max_ttl_s < scanned_above {
            format!(
                "the longest TTL, {} s, outlives the {} s logoff (the scan listed keys only above {} s{}{})",
                longest.unwrap_or_default(),
                p.max_ttl_s,
                scanned_above,
                if l.is_empty() { "" } else { "; keyed hashes: " },
                first_of(&l, 10)
            )
        } else {
            format!(
                "{} session key(s) outlive the {} s logoff (keyed hashes: {})",
                l.len(),
                p.max_ttl_s,
                first_of(&l, 10)
            )
        };
        problems.push((Why::SessionTtlTooLong, text));
    }
    problems
}

/// The outcome for one master, in this order: evidence scanned for another
/// pattern (`error`); keys that outlive the logoff (`fail`); keys that could
/// not be read (`error`); no session key on any master (`warn`); keys that
/// are not hashes (`warn`); else `pass`.
fn decide(
    v: &SessionScanView,
    p: &SessionScanSettings,
    cluster_total: u64,
) -> (Outcome, Why, String) {
    let s = &v.settings;
    // Judged against the policy's parameters: evidence scanned under
    // another pattern cannot answer for this one.
    if s.pattern != p.pattern {
        return (
            Outcome::Error,
            Why::ScannedOtherPattern,
            format!(
                "the evidence was scanned for {} but the policy now asks about {}: run the audit again",
                s.pattern, p.pattern
            ),
        );
    }
    let problems = ttl_problems(v, p);
    let counts = v
        .keyspace
        .as_ref()
        .map(|k| format!("{}; {}: ", counted(k), scanned(v)))
        .unwrap_or_default();
    if let Some((why, _)) = problems.first() {
        return (
            Outcome::Fail,
            *why,
            format!(
                "{counts}{}; fix the application to set EXPIRE <= {} on every session write; map hashes to keys with the run's .salt file",
                joined(&problems),
                p.max_ttl_s
            ),
        );
    }
    let Some(k) = &v.keyspace else {
        return (
            Outcome::Error,
            Why::KeyspaceUnobserved,
            "INFO keyspace was not read around the scan (evidence recorded by an older epic-audit): \
             keys without a TTL beyond the scanned ones were not counted; run the audit again"
                .into(),
        );
    };
    if k.role != ReplicationRole::Master {
        return (
            Outcome::Error,
            Why::KeyspaceNotMaster,
            format!(
                "the node reported role {} when its keys were counted: a failover during the audit? \
                 Its counts are not the master's; run the audit again",
                k.role
            ),
        );
    }
    if let Some(found) = unattributed(v, k, p) {
        return found;
    }
    if !v.unreadable.is_empty() {
        let l: Vec<String> = v
            .unreadable
            .iter()
            .map(|(h, e)| format!("{h}: {e}"))
            .collect();
        return (
            Outcome::Error,
            Why::SessionKeysUnreadable,
            format!(
                "{} key(s) matching {} could not be read, so their expiry is unknown: {} \
                 (NOPERM: give the audit user +ttl +type on these keys; MOVED: slots moved during the scan, run again)",
                v.unreadable.len(),
                s.pattern,
                first_of(&l, 5)
            ),
        );
    }
    if cluster_total == 0 {
        return (
            Outcome::Warn,
            Why::NoSessionKeys,
            format!(
                "no key matches {} on any master, so no session expiry was observed: if the \
                 application names its session keys otherwise, set this check's pattern",
                s.pattern
            ),
        );
    }
    if !v.not_hash.is_empty() {
        let l: Vec<String> = v
            .not_hash
            .iter()
            .map(|(h, t)| format!("{h} ({t})"))
            .collect();
        return (
            Outcome::Warn,
            Why::SessionNotAHash,
            format!(
                "{} session key(s) are not hashes: {}",
                v.not_hash.len(),
                first_of(&l, 10)
            ),
        );
    }
    let message = if v.scanned == 0 {
        "no session key on this master (other masters hold them); none can outlive the logoff"
    } else {
        "sessions expire as required"
    };
    (
        Outcome::Pass,
        Why::SessionsExpire,
        format!("{}; {}: {message}", counted(k), scanned(v)),
    )
}

/// Keys without a TTL that INFO keyspace counts but the scan did not find
/// among the session keys: `fail` or `warn` by the policy's
/// `other_keys_without_ttl`, saying why the audit cannot tell what they
/// are.
fn unattributed(
    v: &SessionScanView,
    k: &KeyspaceView,
    p: &SessionScanSettings,
) -> Option<(Outcome, Why, String)> {
    let others = k.without_ttl().saturating_sub(v.no_ttl.len() as u64);
    if others == 0 {
        return None;
    }
    let (outcome, policy) = match p.other_keys_without_ttl {
        Unattributed::Fail => (Outcome::Fail, "fail"),
        Unattributed::Warn => (Outcome::Warn, "warn"),
    };
    let whereabouts = if v.complete {
        format!(
            "the scan was complete, so they do not match {}",
            v.settings.pattern
        )
    } else {
        format!(
            "they are beyond the sample or do not match {}",
            v.settings.pattern
        )
    };
    Some((
        outcome,
        Why::KeysWithoutTtl,
        format!(
            "{}; {}: {} key(s) without a TTL are not among the session keys examined ({whereabouts}); \
             which pattern they match cannot be told without reading them, and the audit user reads \
             only {}. If they are sessions, they never log off: find them as an administrator \
             (redis-cli --scan, then TTL on each) and set EXPIRE <= {} on every session write. The \
             policy's other_keys_without_ttl = \"{policy}\" decides this outcome; set it to \"warn\" \
             where the cluster also holds data that never expires",
            counted(k),
            scanned(v),
            grouped(others),
            v.settings.pattern,
            p.max_ttl_s
        ),
    ))
}
