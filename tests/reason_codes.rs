//! Reason codes (issue #41): every finding carries a stable code
//! `CHECK-ID/slug` in report.json, SARIF and JUnit, and adding them
//! changed nothing else: evidence recorded before they existed evaluates
//! to the report recorded then, apart from the new `code` fields
//! (fixtures/before-reason-codes/, recorded with the binary of c3aa448:
//! `epic-audit evaluate EVIDENCE --unsigned --accepted-builds
//! fixtures/evidence/lab-accepted-builds.toml`). The evidence and the
//! policy of that time are kept beside the reports (good-evidence.json,
//! policy/), so later checks and policy changes leave this proof as it was;
//! a rule a later issue changed on purpose is listed in `CHANGED_LATER`
//! and compared as that issue says.

mod common;

use std::path::Path;

use serde_json::Value;

use common::{epic_audit, LAB_ACCEPTED};

const BEFORE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/before-reason-codes");

/// Rules changed by later issues on purpose, so that this evidence no
/// longer judges as it did: (check, the code every subject has now, why).
/// The proof compares everything else as recorded, and these as stated.
const CHANGED_LATER: &[(&str, &str, &str)] = &[(
    "DATA-005",
    "DATA-005/keyspace-unobserved",
    "#40: keys without a TTL are counted from INFO keyspace around the scan; evidence without \
     those counts (all evidence recorded before) is an error, never a pass",
)];

/// The accepted-builds file as it is named in a report, wherever the
/// checkout is (the recorded reports name it from /work/main).
const ACCEPTED: &str = "[accepted-builds]";

/// A recorded report, with the accepted-builds path it names made
/// independent of where it was recorded.
fn recorded(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{BEFORE}/{name}-report.json"))
        .unwrap()
        .replace(
            "/work/main/fixtures/evidence/lab-accepted-builds.toml",
            ACCEPTED,
        );
    serde_json::from_str(&text).unwrap()
}

/// Evaluates `evidence` as the recorded report was made; returns the new
/// report.json, junit.xml and report.sarif.
fn evaluate(evidence: &Path, out: &Path) -> (Value, String, Value) {
    let r = epic_audit(
        &[
            "--policy",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/before-reason-codes/policy"
            ),
            "evaluate",
            evidence.to_str().unwrap(),
            "--unsigned",
            "--accepted-builds",
            LAB_ACCEPTED,
            "--out",
            out.to_str().unwrap(),
        ],
        out.parent().unwrap(),
    );
    assert!(r.code <= 2, "{}{}", r.stdout, r.stderr);
    let read = |f: &str| {
        std::fs::read_to_string(out.join(f))
            .unwrap()
            .replace(LAB_ACCEPTED, ACCEPTED)
    };
    (
        serde_json::from_str(&read("report.json")).unwrap(),
        read("junit.xml"),
        serde_json::from_str(&read("report.sarif")).unwrap(),
    )
}

/// Removes check `id` from `report["checks"]` and returns it.
fn take_check(report: &mut Value, id: &str) -> Value {
    let checks = report["checks"].as_array_mut().unwrap();
    let i = checks
        .iter()
        .position(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id}"));
    checks.remove(i)
}

/// The checks of a report with every subject's `code` taken out (and
/// returned beside it, in order).
fn without_codes(report: &Value) -> (Value, Vec<String>) {
    let mut checks = report["checks"].clone();
    let mut codes = Vec::new();
    for c in checks.as_array_mut().unwrap() {
        for s in c["subjects"].as_array_mut().unwrap() {
            if let Some(code) = s.as_object_mut().unwrap().remove("code") {
                codes.push(code.as_str().unwrap().to_string());
            }
        }
    }
    (checks, codes)
}

#[test]
fn evidence_from_before_reason_codes_judges_the_same_and_every_finding_gains_a_code() {
    let d = tempfile::tempdir().unwrap();
    for (name, evidence) in [
        (
            "good",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/before-reason-codes/good-evidence.json"
            ),
        ),
        (
            "defects",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/before-reason-codes/defects-evidence.json"
            ),
        ),
    ] {
        let mut before = recorded(name);
        let (mut after, junit, sarif) = evaluate(Path::new(evidence), &d.path().join(name));
        // The checks a later issue changed: now exactly as that issue says,
        // and set aside (with their counts and the verdict they make) for
        // the comparison of everything else.
        for (id, code, why) in CHANGED_LATER {
            let was = take_check(&mut before, id);
            let now = take_check(&mut after, id);
            assert_eq!(now["outcome"], "error", "{name} {id}: {why}");
            for s in now["subjects"].as_array().unwrap() {
                assert_eq!(s["code"], *code, "{name} {id}: {why}");
            }
            for (r, o) in [(&mut before, &was), (&mut after, &now)] {
                let k = o["outcome"].as_str().unwrap();
                let n = r["counts"][k].as_u64().unwrap();
                r["counts"][k] = (n - 1).into();
            }
        }
        if !CHANGED_LATER.is_empty() && before["verdict"] != "fail" {
            // A failing run still fails; a passing one is an error now (an
            // error outranks pass and warn, a fail outranks an error).
            assert_eq!(after["verdict"], "error", "{name}");
            assert_eq!(after["exit_code"], 2, "{name}");
            for r in [&mut before, &mut after] {
                r["verdict"] = Value::Null;
                r["exit_code"] = Value::Null;
            }
        }
        let (old_checks, old_codes) = without_codes(&before);
        assert!(
            old_codes.is_empty(),
            "{name}: the recorded report has codes"
        );
        let (new_checks, new_codes) = without_codes(&after);
        assert_eq!(old_checks, new_checks, "{name}: the judgement changed");
        for k in ["verdict", "exit_code", "counts"] {
            assert_eq!(before[k], after[k], "{name}: {k}");
        }
        assert_eq!(before["policy"]["digest"], after["policy"]["digest"]);
        // Every subject has a code under its own check's id.
        let subjects: usize = after["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let id = c["id"].as_str().unwrap();
                for s in c["subjects"].as_array().unwrap() {
                    let code = s["code"].as_str().unwrap_or_default();
                    let slug = code.strip_prefix(&format!("{id}/")).unwrap_or_else(|| {
                        panic!("{name}: {id} subject {} has code `{code}`", s["subject"])
                    });
                    assert!(!slug.is_empty() && !slug.contains('/'), "{code}");
                }
                c["subjects"].as_array().unwrap().len()
            })
            .sum();
        assert_eq!(subjects, new_codes.len());
        // SARIF results and JUnit details carry the codes of what failed.
        for r in sarif["runs"][0]["results"].as_array().unwrap() {
            let code = r["properties"]["code"].as_str().unwrap_or_default();
            if r["properties"]["outcome"].is_string() {
                assert!(
                    code.starts_with(&format!("{}/", r["ruleId"].as_str().unwrap())),
                    "{r}"
                );
            }
        }
        if name == "defects" {
            for code in [
                "DATA-001/aof-off",
                "DATA-002/eviction-policy",
                "DATA-006/idle-never-closed",
                "ACC-003/nopass-user",
                "TLS-010/internode-plaintext",
            ] {
                assert!(new_codes.iter().any(|c| c == code), "{code}: {new_codes:?}");
                assert!(junit.contains(code), "junit lacks {code}");
                assert!(
                    sarif["runs"][0]["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r["properties"]["code"] == code),
                    "sarif lacks {code}"
                );
            }
        }
    }
}

#[test]
fn every_reason_code_in_the_binary_is_listed_in_the_docs() {
    // docs/checks.md lists every area's reasons (the slugs a report can
    // carry), generated from the enums: a new reason without a docs line
    // fails here.
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/checks.md")).unwrap();
    for r in epic_audit::checks::reasons() {
        assert!(
            docs.contains(&format!("`{}`", r.slug())),
            "docs/checks.md does not list the reason `{}` ({r:?})",
            r.slug()
        );
    }
}

#[test]
fn the_wording_of_the_planted_defects_is_reviewed_as_a_snapshot() {
    // Tests compare codes; the sentences people act on are reviewed here,
    // one line per failing subject: `code subject: message`.
    let d = tempfile::tempdir().unwrap();
    let (after, _, _) = evaluate(
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/before-reason-codes/defects-evidence.json"
        )),
        &d.path().join("defects"),
    );
    let mut lines = Vec::new();
    for c in after["checks"].as_array().unwrap() {
        for s in c["subjects"].as_array().unwrap() {
            if s["outcome"] == "fail" {
                lines.push(format!(
                    "{} {}: {}",
                    s["code"].as_str().unwrap(),
                    s["subject"].as_str().unwrap(),
                    s["message"].as_str().unwrap()
                ));
            }
        }
    }
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn evidence_from_before_the_typed_closed_sets_reads_and_writes_back_unchanged() {
    // DRYRUN letters, TLS versions, shard roles and health, replication
    // roles are typed now; evidence recorded before (as strings) must load
    // and serialise to exactly the same JSON.
    for f in [
        "/fixtures/evidence/lab-good.json",
        "/fixtures/before-reason-codes/defects-evidence.json",
    ] {
        let text = std::fs::read_to_string(format!("{}{f}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let raw: Value = serde_json::from_str(&text).unwrap();
        let ev: epic_audit::evidence::EvidenceSet = serde_json::from_str(&text).unwrap();
        let again = serde_json::to_value(&ev).unwrap();
        assert_eq!(first_difference(&raw, &again, "$"), None, "{f}");
    }
    // An unknown word is kept, not dropped or refused.
    let health: epic_audit::evidence::ShardHealth = serde_json::from_str("\"rebooting\"").unwrap();
    assert_eq!(serde_json::to_string(&health).unwrap(), "\"rebooting\"");
    // A DRYRUN letter that never existed is refused with the reason.
    let bad = serde_json::from_str::<epic_audit::evidence::DryRunLetters>("\"AZ\"");
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("not a string of DRYRUN letters"));
}

/// The path of the first value of `a` (recorded) that `b` (written back)
/// does not hold the same; fields `b` adds with their defaults (added to
/// the format since `a` was recorded) are not differences.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys() {
                let (va, vb) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                if let Some(d) = first_difference(va, vb, &format!("{path}.{k}")) {
                    return Some(d);
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (va, vb))| first_difference(va, vb, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: recorded {a}, written back {b}")),
    }
}
