//! report.sarif is a valid SARIF 2.1.0 log (validated with the
//! `jsonschema` crate against OASIS's schema in fixtures/sarif), holds one
//! rule per check and exactly one result per failing or undecided subject,
//! and is part of every signed run; and GitHub code scanning's ingestion
//! rules, which the schema does not enforce, hold for every result (a file
//! location relative to the repository root, no `originalUriBaseIds`, rule
//! ids and fingerprints stable across runs).

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

/// Where GitHub code scanning would refuse `sarif` (its published ingestion
/// rules, beyond the schema: "SARIF support for code scanning"; an upload
/// with any result lacking a file location is rejected whole, e.g.
/// "locationFromSarifResult: expected artifact location"), as one line
/// per violation.
fn github_violations(sarif: &Value) -> Vec<String> {
    let mut v = Vec::new();
    if sarif.to_string().contains("originalUriBaseIds") {
        v.push("originalUriBaseIds: uris must be relative to the repository root".into());
    }
    let run = &sarif["runs"][0];
    let rules: BTreeSet<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for (i, r) in run["results"].as_array().unwrap().iter().enumerate() {
        let id = r["ruleId"].as_str().unwrap_or_default();
        if !rules.contains(id) {
            v.push(format!(
                "result {i}: ruleId `{id}` is not a rule of the run"
            ));
        }
        let loc = &r["locations"][0]["physicalLocation"];
        match loc["artifactLocation"]["uri"].as_str() {
            None | Some("") => v.push(format!(
                "result {i} ({id}): no physicalLocation.artifactLocation.uri"
            )),
            Some(uri) => {
                if uri.starts_with('/')
                    || uri.contains("://")
                    || uri.starts_with("file:")
                    || uri.contains('\\')
                    || uri.split('/').any(|p| p == "..")
                {
                    v.push(format!(
                        "result {i} ({id}): uri `{uri}` is not relative to the repository root"
                    ));
                }
            }
        }
        if let Some(line) = loc.get("region").map(|r| &r["startLine"]) {
            if line.as_u64().unwrap_or(0) < 1 {
                v.push(format!("result {i} ({id}): region.startLine {line}"));
            }
        }
        let fps = r["partialFingerprints"].as_object();
        if fps.is_none_or(|f| {
            f.is_empty() || f.values().any(|x| x.as_str().is_none_or(str::is_empty))
        }) {
            v.push(format!("result {i} ({id}): no partialFingerprints"));
        }
    }
    v
}

/// (ruleId, fingerprints) of every result, to compare runs.
fn identities(sarif: &Value) -> BTreeSet<(String, String)> {
    sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["ruleId"].as_str().unwrap().to_string(),
                r["partialFingerprints"].to_string(),
            )
        })
        .collect()
}

#[test]
fn github_code_scanning_would_accept_every_result_with_fail_and_error_subjects() {
    let t = tempfile::tempdir().unwrap();
    let (key, _) = keygen(t.path());
    // The config of the environment the evidence names, in the directory
    // the command runs in (a repository's root in CI).
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/epic-audit.toml")).unwrap();
    let line = config
        .lines()
        .position(|l| l.trim() == "[environments.local]")
        .unwrap()
        + 1;
    std::fs::write(t.path().join("epic-audit.toml"), &config).unwrap();
    let mut seen = Vec::new();
    for run in ["one", "two"] {
        let out = t.path().join(run);
        let r = evaluate_signed(t.path(), &fixture_evidence_bad(), &key, &out, None);
        assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
        let sarif: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.sarif")).unwrap())
                .unwrap();
        assert!(errors(&sarif).is_empty(), "{:#?}", errors(&sarif));
        assert_eq!(github_violations(&sarif), Vec::<String>::new());
        let outcomes: BTreeSet<&str> = sarif["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["properties"]["outcome"].as_str().unwrap())
            .collect();
        assert!(
            outcomes.contains("fail") && outcomes.contains("error"),
            "{outcomes:?}"
        );
        // Every result points at the environment's table, the node or
        // resource kept as the logical location.
        for r in sarif["runs"][0]["results"].as_array().unwrap() {
            let p = &r["locations"][0]["physicalLocation"];
            assert_eq!(p["artifactLocation"]["uri"], "epic-audit.toml", "{r}");
            assert_eq!(p["region"]["startLine"], line, "{r}");
            assert!(r["locations"][0]["logicalLocations"][0]["name"].is_string());
        }
        seen.push(identities(&sarif));
    }
    // Rule ids and fingerprints are stable across runs: code scanning
    // tracks each finding instead of opening it again.
    assert_eq!(seen[0], seen[1]);

    // Without a config naming the environment, results point at the
    // evidence judged, still a relative path GitHub accepts.
    std::fs::remove_file(t.path().join("epic-audit.toml")).unwrap();
    let out = t.path().join("three");
    let r = evaluate_signed(t.path(), &fixture_evidence_bad(), &key, &out, None);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.sarif")).unwrap()).unwrap();
    assert_eq!(github_violations(&sarif), Vec::<String>::new());
    let uri = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
        ["artifactLocation"]["uri"]
        .as_str()
        .unwrap();
    assert!(uri.ends_with(".json") && !uri.contains('/'), "{uri}");
    // A report from before it said where its environment is defined still
    // names a file (the default config's).
    let (_, sarif) = render(&fixture_evidence_bad());
    assert_eq!(github_violations(&sarif), Vec::<String>::new());
}

#[test]
fn the_github_rules_above_refuse_what_github_refuses() {
    // The check itself must be able to fail: a result with only a logical
    // location, an absolute uri, and a base id are each found.
    let (_, mut sarif) = render(&fixture_evidence_bad());
    let results = sarif["runs"][0]["results"].as_array_mut().unwrap();
    results[0]["locations"][0]
        .as_object_mut()
        .unwrap()
        .remove("physicalLocation");
    results[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] =
        "/home/runner/work/epic-audit.toml".into();
    sarif["runs"][0]["originalUriBaseIds"] = serde_json::json!({"SRC": {"uri": "file:///x/"}});
    let v = github_violations(&sarif);
    assert_eq!(v.len(), 3, "{v:#?}");
}
