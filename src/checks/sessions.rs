//! Session expiry (DATA-005, automatic logoff of the server-side session
//! store): every key matching the session pattern has a TTL within the
//! logoff and is a hash.
//!
//! Per master, [`ttl_problems`] lists what outlives the logoff; [`decide`]
//! then gives one finding in a written order of outcomes. Key names are
//! bearer tokens: the evidence holds only keyed hashes of them.

use super::reason::reasons;
use super::rule::{first_of, joined, per_subject, Outcome, Rule, SubjectFinding};
use crate::evidence::{EvidenceSet, Observation, ProbeId, SessionScanSettings, SessionScanView};

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
    }
}

/// The session-expiry rule.
pub(crate) fn rules() -> Vec<Rule> {
    vec![Rule::new(
        "data.session_ttl",
        &[ProbeId::Sessions],
        "On every master: SCAN MATCH <pattern> with a bounded COUNT and pipelined TTL and TYPE for \
         each key found, up to a cap per master (the evidence says whether the scan was complete or \
         a sample). Key names are bearer tokens: offending keys are reported only as a count and a \
         keyed hash (HMAC-SHA256 with this run's salt, kept next to the report, never in it).",
        session_ttl,
    )]
}

fn session_ttl(ev: &EvidenceSet, p: &SessionScanSettings) -> Vec<SubjectFinding> {
    let views = ev.views(ProbeId::Sessions, |o| match o {
        Observation::SessionScan(v) => Some(v),
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
            .message(message)
    })
}

/// What the scan of one master saw, in one line.
fn observed(v: &SessionScanView) -> String {
    let s = &v.settings;
    format!(
        "{} keys matching {} examined ({}){}; {} without TTL, {} with TTL > {} s, {} not a hash; longest TTL {}",
        v.scanned,
        s.pattern,
        if v.complete { "complete scan" } else { "sample: the cap was reached" },
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
    if let Some((why, _)) = problems.first() {
        return (
            Outcome::Fail,
            *why,
            format!(
                "{}; fix the application to set EXPIRE <= {} on every session write; map hashes to keys with the run's .salt file",
                joined(&problems),
                p.max_ttl_s
            ),
        );
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
    (Outcome::Pass, Why::SessionsExpire, message.into())
}
