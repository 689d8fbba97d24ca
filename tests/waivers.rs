//! Waivers from the policy directory: an unexpired one turns a failing
//! subject into `waived` (exit 0), an expired one does not and the report
//! says it expired; every report lists the waivers.

mod common;

use common::fixture_evidence;
use epic_audit::checks::Outcome;
use epic_audit::engine::judge;
use epic_audit::evidence::{Observation, Observed};
use epic_audit::policy::{Policy, BUILTIN};

fn policy_with(waivers: &str) -> (tempfile::TempDir, Policy) {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in BUILTIN {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    std::fs::write(d.path().join("waivers.toml"), waivers).unwrap();
    let p = Policy::load_dir(d.path()).unwrap();
    (d, p)
}

fn waiver(expires: &str) -> String {
    format!(
        "[[waiver]]\ncheck = \"DATA-002\"\nsubject = \"127.0.1.2:6379\"\nreason = \"cache node, CHG-1234\"\napprover = \"CISO\"\nexpires = {expires}\n"
    )
}

fn evidence_with_lru_on_node2() -> epic_audit::evidence::EvidenceSet {
    let mut ev = fixture_evidence();
    for e in ev
        .items
        .iter_mut()
        .filter(|e| e.subject == "127.0.1.2:6379")
    {
        if let Observed::Observation(Observation::DataNode(v)) = &mut e.result {
            v.config
                .insert("maxmemory-policy".into(), "allkeys-lru".into());
        }
    }
    ev
}

#[test]
fn an_unexpired_waiver_waives_and_the_gate_passes() {
    let (_d, p) = policy_with(&waiver("2026-12-31"));
    let sel = p.select(&["data".into()], &[]).unwrap();
    let r = judge(&evidence_with_lru_on_node2(), &p, &sel, &[], &[]);
    let c = r.checks.iter().find(|c| c.id == "DATA-002").unwrap();
    assert_eq!(c.outcome, Outcome::Waived);
    let s = c
        .subjects
        .iter()
        .find(|s| s.subject == "127.0.1.2:6379")
        .unwrap();
    assert!(
        s.message
            .contains("WAIVED until 2026-12-31 by CISO: cache node, CHG-1234"),
        "{}",
        s.message
    );
    assert_eq!(r.exit_code, 0);
    assert_eq!(r.waivers.len(), 1);
    assert_eq!(r.waivers[0].status, "in force");
    let json = r.to_json();
    assert!(
        json.contains("\"status\": \"in force\"") && json.contains("\"expires\": \"2026-12-31\""),
        "{json}"
    );
}

#[test]
fn an_expired_waiver_no_longer_applies_and_says_so() {
    let (_d, p) = policy_with(&waiver("2026-11-30"));
    let sel = p.select(&["data".into()], &[]).unwrap();
    let r = judge(&evidence_with_lru_on_node2(), &p, &sel, &[], &[]);
    let c = r.checks.iter().find(|c| c.id == "DATA-002").unwrap();
    assert_eq!(c.outcome, Outcome::Fail);
    assert!(c
        .subjects
        .iter()
        .any(|s| s.message.contains("waiver expired on 2026-11-30")));
    assert_eq!(r.exit_code, 1);
    assert_eq!(r.waivers[0].status, "expired");
}

#[test]
fn waivers_change_the_policy_digest_and_bad_ones_are_refused() {
    let (_d, a) = policy_with(&waiver("2026-12-31"));
    let (_e, b) = policy_with(&waiver("2027-12-31"));
    assert_ne!(a.digest, b.digest, "the digest covers the waivers");
    let d = tempfile::tempdir().unwrap();
    for (name, text) in BUILTIN {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    std::fs::write(
        d.path().join("waivers.toml"),
        waiver("2026-12-31").replace("DATA-002", "NOPE-1"),
    )
    .unwrap();
    let e = Policy::load_dir(d.path()).unwrap_err().to_string();
    assert!(
        e.contains("waivers.toml") && e.contains("line 1") && e.contains("NOPE-1"),
        "{e}"
    );
}
