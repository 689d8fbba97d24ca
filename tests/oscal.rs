//! assessment-results.json is valid NIST OSCAL (validated with the
//! `jsonschema` crate against NIST's official OSCAL JSON schema in
//! fixtures/oscal), maps checks to HIPAA controls correctly, and is stable
//! (insta snapshot with the fixed timestamps of the fixture evidence).

mod common;

use common::{fixture_evidence, fixture_evidence_bad};
use epic_audit::engine::judge;
use epic_audit::evidence::EvidenceSet;
use epic_audit::policy::Policy;
use serde_json::Value;

fn schema() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/oscal/oscal_complete_schema.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The official schema with its root narrowed to the assessment-results
/// branch of its `oneOf`, so errors name the offending path instead of
/// "matches none of eight models".
fn ar_schema() -> Value {
    let mut s = schema();
    let branch = s["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["required"][0] == "assessment-results")
        .unwrap()
        .clone();
    let obj = s.as_object_mut().unwrap();
    obj.remove("oneOf");
    for (k, v) in branch.as_object().unwrap() {
        obj.insert(k.clone(), v.clone());
    }
    s
}

/// Validation errors of `doc`, as `path: message` lines.
fn errors(schema: &Value, doc: &Value) -> Vec<String> {
    let v = jsonschema::draft7::new(schema).expect("the OSCAL schema compiles");
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn render(ev: &EvidenceSet) -> String {
    let p = Policy::builtin().unwrap();
    let sel = p.select(&[], &[]).unwrap();
    let r = judge(ev, &p, &sel, &[], &[]);
    epic_audit::report::oscal::render(&r, ev, &|id| p.probes_of(id))
        .replace(&p.digest, "[policy-digest]")
        .replace(env!("CARGO_PKG_VERSION"), "[version]")
}

fn finding<'a>(doc: &'a Value, citation: &str) -> &'a Value {
    doc["assessment-results"]["results"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"] == format!("45 CFR {citation}"))
        .unwrap_or_else(|| panic!("no finding for {citation}"))
}

#[test]
fn documents_of_a_good_and_a_bad_run_are_valid_oscal() {
    let full = schema();
    let narrow = ar_schema();
    for (name, ev) in [
        ("good", fixture_evidence()),
        ("bad", fixture_evidence_bad()),
    ] {
        let doc: Value = serde_json::from_str(&render(&ev)).unwrap();
        let e = errors(&narrow, &doc);
        assert!(e.is_empty(), "{name}: {e:#?}");
        // And against the unmodified official schema as published.
        assert!(errors(&full, &doc).is_empty(), "{name}");
        assert_eq!(
            doc["assessment-results"]["metadata"]["oscal-version"],
            "1.1.2"
        );
    }
}

#[test]
fn the_schema_check_is_not_vacuous() {
    let narrow = ar_schema();
    let good: Value = serde_json::from_str(&render(&fixture_evidence())).unwrap();
    // A finding state outside satisfied/not-satisfied, a missing required
    // field, a malformed UUID and a control id that is not a token.
    let mut a = good.clone();
    a["assessment-results"]["results"][0]["findings"][0]["target"]["status"]
        .as_object_mut()
        .unwrap()
        .remove("state");
    let mut b = good.clone();
    b["assessment-results"]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("last-modified");
    let mut c = good.clone();
    c["assessment-results"]["uuid"] = "not-a-uuid".into();
    let mut d = good.clone();
    d["assessment-results"]["results"][0]["reviewed-controls"]["control-selections"][0]
        ["include-controls"][0]["control-id"] = "164.312(e)(1)".into();
    for (name, doc) in [
        ("state", a),
        ("last-modified", b),
        ("uuid", c),
        ("control-id", d),
    ] {
        assert!(
            !errors(&narrow, &doc).is_empty(),
            "{name} should be invalid"
        );
    }
}

#[test]
fn findings_follow_the_checks_of_each_control() {
    let good: Value = serde_json::from_str(&render(&fixture_evidence())).unwrap();
    let bad: Value = serde_json::from_str(&render(&fixture_evidence_bad())).unwrap();
    let results = &good["assessment-results"]["results"][0];
    // Every evidence item is an observation; every finding relates some.
    assert_eq!(
        results["observations"].as_array().unwrap().len(),
        fixture_evidence().items.len()
    );
    for f in results["findings"].as_array().unwrap() {
        assert_eq!(
            f["target"]["status"]["state"], "satisfied",
            "{}",
            f["title"]
        );
        assert!(f["related-observations"]
            .as_array()
            .is_some_and(|r| !r.is_empty()));
    }
    // CLU-001 (slot coverage) fails in the bad run: its controls are not
    // satisfied and the finding names the check and the missing range.
    let f = finding(&bad, "164.312(c)(1)");
    assert_eq!(f["target"]["status"]["state"], "not-satisfied");
    assert_eq!(f["target"]["target-id"], "hipaa-164.312-c-1");
    let text = f["description"].as_str().unwrap();
    assert!(text.contains("CLU-001") && text.contains("0-99"), "{text}");
    // Encryption at rest is not touched by that defect.
    assert_eq!(
        finding(&bad, "164.312(a)(2)(iv)")["target"]["status"]["state"],
        "satisfied"
    );
}

#[test]
fn assessment_results_snapshot() {
    insta::assert_snapshot!(render(&fixture_evidence()));
}
