//! Runs probes concurrently under deadlines, then the checks.
//!
//! [`observe`] does all the I/O and returns an [`EvidenceSet`]; [`judge`] is
//! pure and turns evidence plus policy into a [`Report`]. `run` is the two in
//! sequence; `evaluate` is [`judge`] alone on a saved evidence file.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::timeout;

use crate::checks::reason::Common;
use crate::checks::{registry, Outcome, SubjectFinding};
use crate::config::NodeAddr;
use crate::evidence::{
    DryRunCase, Evidence, EvidenceSet, FailureKind, Observed, ProbeFailure, ProbeId, SCHEMA_VERSION,
};
use crate::policy::{CheckDef, Policy};
use crate::probes::{self, ProbeContext, ProbeInputs};
use crate::report::{CheckResult, Report};

/// The run id for a start time: a sortable UTC timestamp.
pub fn run_id(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Probe names the selected checks need.
pub(crate) fn needed_probes(selected: &[&CheckDef]) -> BTreeSet<ProbeId> {
    let rules = registry();
    selected
        .iter()
        .filter(|c| c.enabled)
        .filter_map(|c| rules.get(c.rule.as_str()))
        .flat_map(|r| r.needs.iter().copied())
        .collect()
}

/// The session-key glob of `policy`: the `pattern` of its session-TTL
/// check (DATA-005), whether or not that check is selected in this run.
pub(crate) fn session_pattern(policy: &Policy) -> Option<String> {
    policy
        .checks
        .iter()
        .filter(|c| c.enabled && c.rule == "data.session_ttl")
        .find_map(params::<crate::evidence::SessionScanSettings>)
        .map(|s| s.pattern)
}

/// A check's `[check.params]` read as `T` (`None` where they do not fit,
/// which the policy's own validation reports when it is loaded).
fn params<T: serde::de::DeserializeOwned>(c: &CheckDef) -> Option<T> {
    toml::Value::Table(c.params.clone()).try_into::<T>().ok()
}

/// The parameters that tell the ACL and TLS probes what to look at, read
/// from any check that has them (each rule validates its own in full).
#[derive(Debug, Default, serde::Deserialize)]
struct ProbeParams {
    /// The user whose permissions a check judges (swept with DRYRUN).
    user: Option<String>,
    /// That user's key patterns (`*` when the check names none).
    key_patterns: Option<Vec<String>>,
    /// Plaintext ports to try besides the configured and advertised ones.
    #[serde(default)]
    extra_plaintext_ports: Vec<u16>,
    /// ACL DRYRUN cases to evaluate.
    #[serde(default)]
    cases: Vec<DryRunCase>,
}

/// What the selected checks ask the probes to look at: the `user` of every
/// check reading ACL evidence is swept with ACL DRYRUN, and every `cases`
/// list is evaluated; the latency load writes inside `policy`'s session
/// pattern unless its check names a `key_pattern`. Malformed parameters
/// were rejected when the policy was loaded.
pub(crate) fn probe_inputs(policy: &Policy, selected: &[&CheckDef]) -> ProbeInputs {
    let rules = registry();
    let mut inputs = ProbeInputs::default();
    for c in selected.iter().filter(|c| c.enabled) {
        let needs = |p: ProbeId| {
            rules
                .get(c.rule.as_str())
                .is_some_and(|r| r.needs.contains(&p))
        };
        if needs(ProbeId::Sessions) {
            if let Some(settings) = params::<crate::evidence::SessionScanSettings>(c) {
                inputs.sessions = Some(settings);
            }
        }
        if needs(ProbeId::Exporter) && inputs.exporter_patterns.is_empty() {
            inputs.exporter_patterns = session_pattern(policy).into_iter().collect();
        }
        if needs(ProbeId::Latency) {
            if let Some(mut settings) = params::<crate::evidence::LatencySettings>(c) {
                if settings.key_pattern.is_empty() {
                    settings.key_pattern = session_pattern(policy).unwrap_or_default();
                }
                inputs.latency = Some(settings);
            }
        }
        if !needs(ProbeId::Acl) && !needs(ProbeId::TlsConfig) {
            continue;
        }
        let p: ProbeParams = params(c).unwrap_or_default();
        if let Some(u) = p.user {
            let patterns = p.key_patterns.unwrap_or_else(|| vec!["*".into()]);
            let known = inputs.dryrun_users.entry(u).or_default();
            for pat in patterns {
                if !known.contains(&pat) {
                    known.push(pat);
                }
            }
        }
        inputs.plaintext_ports.extend(p.extra_plaintext_ports);
        inputs.dryrun_cases.extend(p.cases);
    }
    inputs
}

/// Observes the environment: discovery from the seeds, then every other
/// needed probe concurrently. Never hangs: every probe is bounded by the
/// context's deadlines, and by an outer deadline as a safety net.
pub(crate) async fn observe(
    environment: &str,
    seeds: &[NodeAddr],
    ctx: ProbeContext,
    needed: &BTreeSet<ProbeId>,
) -> EvidenceSet {
    let started_at = Utc::now();
    let t = ctx.timeouts.clone();
    // Discovery is two rounds of per-node probes, each bounded by probe_ms.
    let outer = Duration::from_millis(2 * t.probe_ms + 2 * t.connect_ms + 1_000);
    let ctx = Arc::new(ctx);
    let (targets, mut items) =
        match timeout(outer, probes::cluster::discover(ctx.clone(), seeds)).await {
            Ok(r) => r,
            Err(_) => {
                let items = seeds
                    .iter()
                    .map(|s| {
                        failure_item(
                            ProbeId::Cluster,
                            &s.to_string(),
                            "discovery did not finish in time",
                            outer,
                        )
                    })
                    .collect();
                (seeds.to_vec(), items)
            }
        };
    let ctx = Arc::new(ProbeContext {
        targets: targets.clone(),
        topology: crate::evidence::Topology::from_evidence(&items),
        ..(*ctx).clone()
    });
    // Two phases: every probe but the latency probe concurrently, then the
    // latency probe alone, so its figures measure the cluster and not the
    // audit's own handshakes, DRYRUN sweep and scans.
    for latency_phase in [false, true] {
        let mut running = Vec::new();
        for p in probes::registry() {
            if !needed.contains(&p.name()) || (p.name() == ProbeId::Latency) != latency_phase {
                continue;
            }
            let name = p.name();
            let outer = p.deadline(&ctx);
            let fut = p.run(ctx.clone());
            let handle = tokio::spawn(async move {
                match timeout(outer, fut).await {
                    Ok(items) => items,
                    Err(_) => vec![failure_item(
                        name,
                        "cluster",
                        "probe did not finish in time",
                        outer,
                    )],
                }
            });
            running.push((name, handle));
        }
        for (name, handle) in running {
            match handle.await {
                Ok(more) => items.extend(more),
                // A probe that panicked is a bug; its evidence says so rather
                // than being left out.
                Err(e) => items.push(Evidence::not_observed(
                    name,
                    "cluster",
                    "engine",
                    ProbeFailure::new(
                        FailureKind::Internal,
                        format!("probe stopped on an internal error, a bug in epic-audit ({e})"),
                    ),
                )),
            }
        }
    }
    if !needed.contains(&ProbeId::Cluster) {
        items.retain(|e| e.probe != ProbeId::Cluster);
    }
    items.sort_by(|a, b| (&a.probe, &a.subject).cmp(&(&b.probe, &b.subject)));
    EvidenceSet {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        environment: environment.to_string(),
        run_id: run_id(started_at),
        started_at,
        finished_at: Utc::now(),
        seeds: seeds.iter().map(ToString::to_string).collect(),
        targets: targets.iter().map(ToString::to_string).collect(),
        items,
        tls_handshakes: ctx.tls.handshake_counts(),
    }
}

fn failure_item(probe: ProbeId, subject: &str, what: &str, after: Duration) -> Evidence {
    Evidence {
        probe,
        subject: subject.to_string(),
        method: "engine deadline".into(),
        observed_at: Utc::now(),
        duration_ms: after.as_millis() as u64,
        result: Observed::Failure(ProbeFailure {
            kind: FailureKind::Deadline,
            message: format!("{what} ({} ms)", after.as_millis()),
        }),
    }
}

/// Judges evidence against the selected checks. Pure: no I/O, no clock.
pub fn judge(
    ev: &EvidenceSet,
    policy: &Policy,
    selected: &[&CheckDef],
    only: &[String],
    skip: &[String],
) -> Report {
    let rules = registry();
    let missing = ev.missing_subjects();
    let checks = selected
        .iter()
        .map(|c| {
            let mut subjects = if !c.enabled {
                vec![SubjectFinding::skip("policy", Common::Disabled)
                    .observed("disabled")
                    .expected("enabled")
                    .message(format!(
                        "disabled in the policy ({}: enabled = false)",
                        c.source
                    ))]
            } else {
                match rules.get(c.rule.as_str()) {
                    Some(rule) => rule.evaluate(ev, &c.params, &missing),
                    None => vec![SubjectFinding::error("policy", Common::UnknownRule)
                        .observed("unknown rule")
                        .expected(c.rule.clone())
                        .message("the policy names a rule this version does not have")],
                }
            };
            for s in &mut subjects {
                if let Some(r) = s.reason {
                    s.code = r.code(&c.id);
                }
            }
            crate::waivers::apply(&policy.waivers, &c.id, &mut subjects, ev.started_at);
            let duration_ms = match rules.get(c.rule.as_str()) {
                Some(rule) if c.enabled => window_ms(ev, rule.needs),
                _ => 0,
            };
            CheckResult {
                id: c.id.clone(),
                area: c.area,
                severity: c.severity,
                title: c.title.clone(),
                hipaa: c.hipaa.clone(),
                outcome: Outcome::aggregate(&subjects),
                subjects,
                remediation: c.remediation.trim().to_string(),
                duration_ms,
            }
        })
        .collect();
    Report::new(ev, policy, checks, only, skip)
}

/// The span, in ms, of the evidence windows of `probes`: from the earliest
/// start (`observed_at - duration_ms`) to the latest end. 0 with none.
fn window_ms(ev: &EvidenceSet, probes: &[ProbeId]) -> u64 {
    let mut span: Option<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)> = None;
    for i in ev.items.iter().filter(|i| probes.contains(&i.probe)) {
        let end = i.observed_at;
        let start = end - chrono::Duration::milliseconds(i.duration_ms as i64);
        span = Some(match span {
            None => (start, end),
            Some((a, b)) => (a.min(start), b.max(end)),
        });
    }
    span.map_or(0, |(a, b)| (b - a).num_milliseconds().max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;

    fn ctx() -> ProbeContext {
        crate::probes::fixture_context()
    }

    #[tokio::test]
    async fn unreachable_seeds_become_error_evidence_and_every_check_errors() {
        // Port 1 on loopback: nothing listens, the connect is refused.
        let seeds = vec![NodeAddr::parse("127.0.0.1:1").unwrap()];
        let policy = Policy::builtin().unwrap();
        let sel = policy.select(&[], &[]).unwrap();
        let ev = observe("t", &seeds, ctx(), &needed_probes(&sel)).await;
        assert_eq!(ev.targets, vec!["127.0.0.1:1"]);
        let failures: Vec<_> = ev
            .items
            .iter()
            .filter_map(|e| match &e.result {
                Observed::Failure(f) => Some((e.probe.as_str(), f.kind.as_str())),
                _ => None,
            })
            .collect();
        let probes: std::collections::BTreeSet<&str> = failures.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            probes.into_iter().collect::<Vec<_>>(),
            [
                "acl",
                "acl.commands",
                "aws",
                "cluster",
                "cluster.keyslot",
                "data.config",
                "data.sessions",
                "latency",
                "monitoring.prometheus",
                "tls.config",
                "tls.endpoint"
            ]
        );
        // Every item is a failure, except the exporter scrape, whose
        // unreachability is itself the observation (MON-001 fails on it).
        let exporter_items = ev
            .items
            .iter()
            .filter(|e| e.probe == ProbeId::Exporter)
            .count();
        assert_eq!(exporter_items, 1);
        assert_eq!(failures.len() + exporter_items, ev.items.len());
        // No master was discovered, so the latency load never started.
        assert!(
            failures.iter().all(|(p, k)| *k == "connect"
                || (matches!(*p, "latency" | "data.sessions") && *k == "not_run")
                || (matches!(*p, "aws" | "monitoring.prometheus") && *k == "not_configured")),
            "{failures:?}"
        );
        let r = judge(&ev, &policy, &sel, &[], &[]);
        for c in &r.checks {
            // No [aws] table: the AWS estate checks say so; not audited is
            // not passed (incomplete), nor skipped.
            let aws = matches!(
                c.area,
                crate::policy::Area::Network
                    | crate::policy::Area::Encryption
                    | crate::policy::Area::Backup
            ) || ["CLU-008", "CLU-009", "CLU-010"].contains(&c.id.as_str());
            // No prometheus_url: the same.
            let prometheus = ["MON-003", "MON-004", "MON-005"].contains(&c.id.as_str());
            let want = if aws || prometheus {
                Outcome::Incomplete
            } else if c.id == "MON-001" {
                Outcome::Fail
            } else {
                Outcome::Error
            };
            assert_eq!(c.outcome, want, "{}", c.id);
        }
        assert_eq!(r.exit_code, 1);
    }

    #[tokio::test]
    async fn only_the_probes_the_selection_needs_run() {
        let seeds = vec![NodeAddr::parse("127.0.0.1:1").unwrap()];
        let policy = Policy::builtin().unwrap();
        let sel = policy.select(&["CLU-001".into()], &[]).unwrap();
        let needed = needed_probes(&sel);
        assert_eq!(
            needed.into_iter().collect::<Vec<_>>(),
            vec![ProbeId::Cluster]
        );
        let ev = observe("t", &seeds, ctx(), &needed_probes(&sel)).await;
        assert!(ev.items.iter().all(|e| e.probe == ProbeId::Cluster));
    }

    #[test]
    fn worst_subject_decides_and_no_subject_is_error() {
        use crate::checks::SubjectFinding as F;
        let f = |o| F::with("s", o, crate::checks::reason::Common::NoEvidence);
        assert_eq!(Outcome::aggregate(&[]), Outcome::Error);
        assert_eq!(
            Outcome::aggregate(&[f(Outcome::Pass), f(Outcome::Warn)]),
            Outcome::Warn
        );
        assert_eq!(
            Outcome::aggregate(&[f(Outcome::Error), f(Outcome::Fail)]),
            Outcome::Fail
        );
        assert_eq!(
            Outcome::aggregate(&[f(Outcome::Skip), f(Outcome::Pass)]),
            Outcome::Pass
        );
        assert_eq!(
            Outcome::aggregate(&[f(Outcome::Pass), f(Outcome::Error)]),
            Outcome::Error
        );
    }
}

#[cfg(test)]
mod input_tests {
    use super::*;

    #[test]
    fn latency_settings_come_from_the_check_params() {
        let text = crate::policy::builtin_file("performance.toml")
            .replace("rate_per_master = 1000", "rate_per_master = 250");
        let p = Policy::from_files(vec![("performance.toml".into(), text)], "t").unwrap();
        let sel = p.select(&[], &[]).unwrap();
        let i = probe_inputs(&p, &sel);
        let l = i.latency.expect("latency settings");
        assert_eq!(l.rate_per_master, 250);
        // No TTL check in this policy, no key_pattern: the probe says so.
        assert_eq!(l.key_pattern, "");
    }

    #[test]
    fn latency_keys_follow_the_session_pattern_even_when_its_check_is_not_selected() {
        let data = crate::policy::builtin_file("data.toml").replace("\"session:*\"", "\"sess:*\"");
        let perf = crate::policy::builtin_file("performance.toml").to_string();
        let p = Policy::from_files(
            vec![
                ("data.toml".into(), data),
                ("performance.toml".into(), perf.clone()),
            ],
            "t",
        )
        .unwrap();
        let only_perf = p.select(&["performance".into()], &[]).unwrap();
        let l = probe_inputs(&p, &only_perf).latency.unwrap();
        assert_eq!(
            (l.key_pattern.as_str(), l.user.as_str()),
            ("sess:*", "app_user")
        );
        // An explicit key_pattern wins.
        let perf = perf.replace(
            "write_every = 2",
            "write_every = 2\nkey_pattern = \"probe:*\"",
        );
        let p = Policy::from_files(vec![("performance.toml".into(), perf)], "t").unwrap();
        let sel = p.select(&[], &[]).unwrap();
        assert_eq!(
            probe_inputs(&p, &sel).latency.unwrap().key_pattern,
            "probe:*"
        );
    }
}
