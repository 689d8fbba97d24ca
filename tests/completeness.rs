//! No pass without evidence, for every check of the built-in policy, from
//! the evidence recorded on the real lab (fixtures/evidence/lab-good.json):
//!
//! (a) no evidence at all;
//! (b) evidence for all but one expected subject (one item of a probe the
//!     check reads removed);
//! (c) the observations the check reads present but emptied (every list
//!     and map inside them empty, every count zero);
//! (d) an observation of the wrong kind in their place.
//!
//! None may pass. (a), (b) and (d) must end `error`, `fail` or
//! `incomplete` (a warning would let the run pass), and (b) must name the
//! missing subject or its probe. (c) may `warn` where the absence is
//! plausible and stated (no session key matches the pattern), never pass.

mod common;

use common::fixture_evidence;
use epic_audit::checks::{registry, Outcome};
use epic_audit::engine::judge;
use epic_audit::evidence::{Evidence, EvidenceSet, Observed, ProbeId};
use epic_audit::policy::Policy;
use epic_audit::report::CheckResult;
use serde_json::Value;

fn judge_one(ev: &EvidenceSet, policy: &Policy, id: &str) -> CheckResult {
    let sel = policy.select(&[id.into()], &[]).unwrap();
    judge(ev, policy, &sel, &[], &[])
        .checks
        .into_iter()
        .next()
        .unwrap()
}

/// Every check id with the probes its rule reads.
fn checks(policy: &Policy) -> Vec<(String, Vec<ProbeId>)> {
    let rules = registry();
    policy
        .checks
        .iter()
        .map(|c| (c.id.clone(), rules[c.rule.as_str()].needs.to_vec()))
        .collect()
}

/// With `COMPLETENESS_TABLE=1`, prints `case id outcome` (the per-check
/// table of the closing note).
fn record(case: &str, id: &str, o: Outcome) {
    if std::env::var_os("COMPLETENESS_TABLE").is_some() {
        println!("{case}\t{id}\t{o}");
    }
}

fn is_undecided_or_worse(o: Outcome) -> bool {
    matches!(o, Outcome::Error | Outcome::Fail | Outcome::Incomplete)
}

/// Records case `case` of check `id` and asserts it ended `error`,
/// `fail` or `incomplete` (a warning would let the run pass).
fn undecided_or_worse(case: &str, id: &str, c: &CheckResult) {
    record(case, id, c.outcome);
    assert!(
        is_undecided_or_worse(c.outcome),
        "{id}: {}\n{}",
        c.outcome,
        text(c)
    );
}

fn text(c: &CheckResult) -> String {
    c.subjects
        .iter()
        .filter(|s| s.outcome != Outcome::Pass)
        .map(|s| {
            format!(
                "{} | {} | {} | {}",
                s.subject, s.observed, s.expected, s.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Empties every list in `v` and zeroes every count, then every object that may be empty (maps;
/// structs whose fields all have defaults) as long as the item still
/// deserialises.
fn emptied(item: &Evidence) -> Evidence {
    fn lists(v: &mut Value) {
        match v {
            Value::Array(a) => a.clear(),
            Value::Object(m) => m.values_mut().for_each(lists),
            // Counts too: "0 keys examined" is an empty observation.
            Value::Number(n) if n.is_u64() => *v = Value::from(0u64),
            _ => {}
        }
    }
    fn object_paths(v: &Value, at: String, out: &mut Vec<String>) {
        if let Value::Object(m) = v {
            for (k, x) in m {
                object_paths(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
            out.push(at);
        }
    }
    let mut v = serde_json::to_value(item).unwrap();
    lists(&mut v["result"]);
    let mut paths = Vec::new();
    object_paths(&v["result"], "/result".into(), &mut paths);
    for p in paths {
        let Some(slot) = v.pointer_mut(&p) else {
            continue;
        };
        let saved = std::mem::replace(slot, Value::Object(Default::default()));
        if serde_json::from_value::<Evidence>(v.clone()).is_err() {
            *v.pointer_mut(&p).unwrap() = saved;
        }
    }
    serde_json::from_value(v).expect("emptied item deserialises")
}

#[test]
fn a_no_evidence_never_passes() {
    let policy = Policy::builtin().unwrap();
    let mut ev = fixture_evidence();
    ev.items.clear();
    ev.targets.clear();
    for (id, _) in checks(&policy) {
        undecided_or_worse("a", &id, &judge_one(&ev, &policy, &id));
    }
}

#[test]
fn b_all_but_one_subject_never_passes_and_names_what_is_missing() {
    let policy = Policy::builtin().unwrap();
    let good = fixture_evidence();
    let mut cases = 0;
    for (id, needs) in checks(&policy) {
        for probe in needs {
            let Some(pos) = good.items.iter().rposition(|e| e.probe == probe) else {
                continue;
            };
            let mut ev = good.clone();
            let removed = ev.items.remove(pos);
            let c = judge_one(&ev, &policy, &id);
            record(&format!("b:{}", probe.as_str()), &id, c.outcome);
            assert!(
                is_undecided_or_worse(c.outcome),
                "{id} without {} of {}: {}\n{}",
                removed.probe.as_str(),
                removed.subject,
                c.outcome,
                text(&c)
            );
            let t = text(&c);
            assert!(
                t.contains(&removed.subject) || t.contains(probe.as_str()),
                "{id} without {} of {} does not say what is missing:\n{t}",
                probe.as_str(),
                removed.subject
            );
            cases += 1;
        }
    }
    assert!(cases >= 45, "{cases}");
}

#[test]
fn c_present_but_empty_observations_never_pass() {
    let policy = Policy::builtin().unwrap();
    let good = fixture_evidence();
    let mut passing = Vec::new();
    for (id, needs) in checks(&policy) {
        let mut ev = good.clone();
        for e in ev.items.iter_mut().filter(|e| needs.contains(&e.probe)) {
            *e = emptied(e);
        }
        let c = judge_one(&ev, &policy, &id);
        record("c", &id, c.outcome);
        if c.outcome == Outcome::Pass || c.outcome == Outcome::Skip {
            passing.push(format!(
                "{id} on emptied {needs:?}: {}: {}",
                c.outcome,
                c.subjects
                    .first()
                    .map(|s| format!("{} | {}", s.observed, s.message))
                    .unwrap_or_default()
            ));
        }
    }
    assert!(passing.is_empty(), "{}", passing.join("\n"));
}

#[test]
fn d_wrong_kind_observations_never_pass() {
    let policy = Policy::builtin().unwrap();
    let good = fixture_evidence();
    let of = |p: ProbeId| {
        good.items
            .iter()
            .find(|e| e.probe == p && matches!(e.result, Observed::Observation(_)))
            .unwrap()
            .result
            .clone()
    };
    for (id, needs) in checks(&policy) {
        let mut ev = good.clone();
        for e in ev.items.iter_mut().filter(|e| needs.contains(&e.probe)) {
            // The exporter's scrape in place of everything else, and a
            // cluster view in place of the exporter's scrape.
            e.result = if e.probe == ProbeId::Exporter {
                of(ProbeId::Cluster)
            } else {
                of(ProbeId::Exporter)
            };
        }
        undecided_or_worse("d", &id, &judge_one(&ev, &policy, &id));
    }
}

#[test]
fn not_audited_is_not_passed() {
    use epic_audit::evidence::{FailureKind, ProbeFailure};
    use epic_audit::report::{junit, oscal, terminal};
    let policy = common::lab_policy();
    let mut ev = fixture_evidence();
    for e in ev.items.iter_mut().filter(|e| e.probe == ProbeId::Aws) {
        e.result = Observed::Failure(ProbeFailure::new(
            FailureKind::NotConfigured,
            "the environment has no [aws] table, so the AWS estate was not read",
        ));
    }
    let aws_checks = |id: &str| {
        id.starts_with("NET-")
            || id.starts_with("ENC-")
            || id.starts_with("BAK-")
            || ["CLU-008", "CLU-009", "CLU-010"].contains(&id)
    };
    let sel = policy.select(&[], &[]).unwrap();
    let r = judge(&ev, &policy, &sel, &[], &[]);
    for c in &r.checks {
        if aws_checks(&c.id) {
            assert_eq!(c.outcome, Outcome::Incomplete, "{}", c.id);
            assert!(
                c.subjects[0].message.contains("--skip network,encryption"),
                "{}",
                c.id
            );
        } else {
            assert!(c.outcome != Outcome::Incomplete, "{}", c.id);
        }
    }
    assert_eq!(r.verdict, Outcome::Incomplete);
    assert_eq!(r.exit_code, 2);
    let term = terminal::render(&r, false);
    assert!(
        term.lines()
            .nth(1)
            .unwrap()
            .starts_with("INCOMPLETE: 11 selected check(s) were not audited"),
        "{term}"
    );
    assert!(term.contains("verdict: INCOMPLETE"), "{term}");
    let xml = junit::render(&r);
    assert!(
        xml.contains("<skipped") && xml.contains("incomplete: not audited"),
        "{xml}"
    );
    // OSCAL: encryption at rest is not satisfied by checks that did not run.
    let doc: Value = serde_json::from_str(&oscal::render(
        &r,
        &ev,
        &|id| policy.probes_of(id),
        "evidence.json",
    ))
    .unwrap();
    let findings = doc["assessment-results"]["results"][0]["findings"]
        .as_array()
        .unwrap();
    let at_rest = findings
        .iter()
        .find(|f| {
            f["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("45 CFR 164.312(a)(2)(iv) "))
        })
        .expect("a finding for encryption at rest");
    assert_eq!(
        at_rest["target"]["status"]["state"], "not-satisfied",
        "{at_rest:#}"
    );
    assert_eq!(at_rest["target"]["status"]["reason"], "other");

    // Leaving the AWS checks out explicitly gives a clean verdict.
    let skip: Vec<String> = [
        "network",
        "encryption",
        "backup",
        "CLU-008",
        "CLU-009",
        "CLU-010",
    ]
    .map(String::from)
    .to_vec();
    let sel = policy.select(&[], &skip).unwrap();
    let r = judge(&ev, &policy, &sel, &[], &skip);
    assert!(r.checks.iter().all(|c| !aws_checks(&c.id)));
    assert_eq!(
        (r.verdict, r.exit_code),
        (Outcome::Pass, 0),
        "{:?}",
        r.counts
    );
}

#[test]
fn every_rule_refuses_an_unknown_parameter() {
    // A typo in a check's params must not silently fall back to defaults.
    let policy = Policy::builtin().unwrap();
    let rules = registry();
    for c in &policy.checks {
        let mut params = c.params.clone();
        params.insert("max_tll_s".into(), toml::Value::Integer(1));
        let e = rules[c.rule.as_str()]
            .validate(&params)
            .expect_err(&format!("{} accepted an unknown parameter", c.id));
        assert!(e.contains("max_tll_s"), "{}: {e}", c.id);
    }
}
