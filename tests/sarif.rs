//! report.sarif is a valid SARIF 2.1.0 log (validated with the
//! `jsonschema` crate against OASIS's schema in fixtures/sarif), holds one
//! rule per check and exactly one result per failing or undecided subject,
//! and is part of every signed run.

mod common;

use std::collections::BTreeSet;

use common::{evaluate_signed, fixture_evidence, fixture_evidence_bad, keygen};
use epic_audit::engine::judge;
use epic_audit::evidence::EvidenceSet;
use epic_audit::policy::Policy;
use serde_json::Value;

fn schema() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sarif/sarif-schema-2.1.0.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Validation errors of `doc`, as `path: message` lines.
fn errors(doc: &Value) -> Vec<String> {
    let v = jsonschema::draft7::new(&schema()).expect("the SARIF schema compiles");
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// (report.json as a value, report.sarif as a value) of `ev` judged by the
/// built-in policy.
fn render(ev: &EvidenceSet) -> (Value, Value) {
    let p = Policy::builtin().unwrap();
    let sel = p.select(&[], &[]).unwrap();
    let r = judge(ev, &p, &sel, &[], &[]);
    let sarif = epic_audit::report::sarif::render(&r, &|id| {
        p.get(id).map(|c| c.rationale.clone()).unwrap_or_default()
    });
    (
        serde_json::from_str(&r.to_json()).unwrap(),
        serde_json::from_str(&sarif).unwrap(),
    )
}

/// (check id, subject) of every failing or undecided subject in a report.
fn bad_subjects(report: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for c in report["checks"].as_array().unwrap() {
        for s in c["subjects"].as_array().unwrap() {
            let o = s["outcome"].as_str().unwrap();
            if o == "fail" || o == "error" {
                out.push((
                    c["id"].as_str().unwrap().to_string(),
                    s["subject"].as_str().unwrap().to_string(),
                    o.to_string(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn results(sarif: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["ruleId"].as_str().unwrap().to_string(),
                r["locations"][0]["logicalLocations"][0]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                r["properties"]["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_run_with_failures_has_one_result_per_failing_subject_and_validates() {
    let (report, sarif) = render(&fixture_evidence_bad());
    let errs = errors(&sarif);
    assert!(
        errs.is_empty(),
        "report.sarif is not valid SARIF 2.1.0:\n{errs:#?}"
    );
    let bad = bad_subjects(&report);
    assert!(
        bad.iter().any(|b| b.2 == "fail") && bad.iter().any(|b| b.2 == "error"),
        "the fixture must have failing and undecided subjects: {bad:?}"
    );
    assert_eq!(
        results(&sarif),
        bad,
        "exactly one result per failing or undecided subject"
    );
    // Levels follow the outcome; every result points at its rule.
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), report["checks"].as_array().unwrap().len());
    for r in run["results"].as_array().unwrap() {
        let level = r["level"].as_str().unwrap();
        match r["properties"]["outcome"].as_str().unwrap() {
            "fail" => assert_eq!(level, "error"),
            _ => assert_eq!(level, "warning"),
        }
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
    }
    assert_eq!(run["invocations"][0]["exitCode"], report["exit_code"]);
    // A rule carries the rationale, the remediation and the citations.
    let clu = rules.iter().find(|r| r["id"] == "CLU-001").unwrap();
    let p = Policy::builtin().unwrap();
    let def = p.get("CLU-001").unwrap();
    assert!(clu["help"]["text"]
        .as_str()
        .unwrap()
        .contains(def.remediation.trim()));
    assert_eq!(clu["fullDescription"]["text"], def.rationale.as_str());
    let cited: Vec<String> = def
        .hipaa
        .iter()
        .map(|h| format!("45 CFR {} ({})", h.reference, h.relation.as_str()))
        .collect();
    assert_eq!(clu["properties"]["hipaa"], serde_json::json!(cited));
}

#[test]
fn a_passing_run_has_no_results_and_validates() {
    let (report, sarif) = render(&fixture_evidence());
    assert!(errors(&sarif).is_empty(), "{:#?}", errors(&sarif));
    assert_eq!(bad_subjects(&report), results(&sarif));
    // Fingerprints are unique within a run.
    let fps: BTreeSet<String> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["partialFingerprints"].to_string())
        .collect();
    assert_eq!(fps.len(), results(&sarif).len());
}

#[test]
fn every_signed_run_writes_report_sarif_under_its_signature() {
    let t = tempfile::tempdir().unwrap();
    let (key, _) = keygen(t.path());
    let out = t.path().join("run");
    let r = evaluate_signed(t.path(), &fixture_evidence_bad(), &key, &out, None);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.sarif")).unwrap()).unwrap();
    assert!(errors(&sarif).is_empty(), "{:#?}", errors(&sarif));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(results(&sarif), bad_subjects(&report));
    let st = common::manifest_statement(&out);
    let names: Vec<&str> = st["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"report.sarif"), "{names:?}");
    assert!(r.stdout.contains("report.sarif"), "{}", r.stdout);
}
