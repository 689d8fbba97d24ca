//! Honest re-judging (issue #39): `evaluate` is a re-evaluation of the
//! run that observed, with an id of its own and the observed run's beside
//! it in the verdict line, the report, `diff`, the chain and the export;
//! it says what it judged with, and never judges with fewer accepted
//! builds than the observed run used without being told to.

mod common;

use std::path::Path;

use common::{epic_audit, evaluate_signed, fixture_evidence, keygen, LAB_ACCEPTED};

/// `epic-audit evaluate EVIDENCE --unsigned --out OUT` with `extra`, in `cwd`.
fn evaluate(cwd: &Path, evidence: &Path, out: &Path, extra: &[&str]) -> common::RunResult {
    let mut args = vec![
        "evaluate",
        evidence.to_str().unwrap(),
        "--unsigned",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    epic_audit(&args, cwd)
}

/// The terminal's verdict line of `r`.
fn verdict_line(r: &common::RunResult) -> &str {
    r.stdout
        .lines()
        .find(|l| l.starts_with("verdict:"))
        .unwrap_or_else(|| panic!("no verdict line: {}{}", r.stdout, r.stderr))
}

#[test]
fn a_rejudged_run_is_labelled_and_never_loses_its_accepted_builds_silently() {
    let d = tempfile::tempdir().unwrap();
    let (key, _) = keygen(d.path());
    let ev = fixture_evidence();
    let observed_id = ev.run_id.clone();
    // A signed run judged with the lab's accepted builds.
    let first = d.path().join("reports/local/first");
    let r = evaluate_signed(d.path(), &ev, &key, &first, None);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let rep = common::report(&first);
    let own_id = rep["run_id"].as_str().unwrap().to_string();
    assert!(
        own_id.starts_with(&format!("{observed_id}-evaluated-")),
        "{own_id}"
    );
    assert_eq!(rep["reevaluation"]["observed_run_id"], observed_id.as_str());
    assert!(
        rep["policy"]["accepted_builds"][0]
            .as_str()
            .unwrap()
            .contains("(--accepted-builds)"),
        "{rep:#}"
    );
    let verdict = verdict_line(&r);
    assert!(
        verdict.contains(&format!(
            "· re-evaluation of run {observed_id} with policy built-in (sha256 "
        )) && verdict.contains(&format!(
            "), accepted builds: {LAB_ACCEPTED} (--accepted-builds), 0 waiver(s) · exit code 0"
        )),
        "the verdict line says what it was judged with: {verdict}"
    );

    // An auditor elsewhere, with the run directory and no config: the
    // observed run's report says it used accepted builds, so evaluate
    // stops and says how to pass them instead of flipping the verdict.
    let elsewhere = tempfile::tempdir().unwrap();
    let evidence = first.join("evidence.json");
    let r = evaluate(
        elsewhere.path(),
        &evidence,
        &elsewhere.path().join("a"),
        &[],
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "run {own_id} was judged with accepted builds from"
        )) && r.stderr.contains("--accepted-builds FILE")
            && r.stderr.contains("--accepted-builds none"),
        "{}",
        r.stderr
    );
    assert!(!elsewhere.path().join("a").exists());
    // Told to judge without: PATCH-001 fails by the table alone, and the
    // verdict line says what it was judged with.
    let without = elsewhere.path().join("without");
    let r = evaluate(
        elsewhere.path(),
        &evidence,
        &without,
        &["--accepted-builds", "none"],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let verdict = verdict_line(&r);
    assert!(
        verdict.starts_with(&format!(
            "verdict: FAIL (56 checks: 54 pass, 1 fail, 1 warn) · re-evaluation of run {observed_id} with policy built-in (sha256 "
        )) && verdict.ends_with(
            "accepted builds: none (--accepted-builds none), 0 waiver(s) · exit code 1"
        ),
        "the verdict line says what it was judged with: {verdict}"
    );
    assert!(
        r.stdout
            .contains(&format!("re-evaluation {observed_id}-evaluated-"))
            && r.stdout.contains(&format!("of observed run {observed_id}")),
        "{}",
        r.stdout
    );
    // With them: the same verdict as the observed run's.
    let with = elsewhere.path().join("with");
    let r = evaluate(
        elsewhere.path(),
        &evidence,
        &with,
        &["--accepted-builds", LAB_ACCEPTED],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    // diff names both as re-evaluations of one observation.
    let r = epic_audit(
        &["diff", with.to_str().unwrap(), without.to_str().unwrap()],
        elsewhere.path(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(&format!(
            "of observed run {observed_id} (pass) -> re-evaluation"
        )) && r.stdout.contains("the same observation judged twice"),
        "{}",
        r.stdout
    );
}

#[test]
fn an_export_counts_an_observation_once_however_often_it_was_rejudged() {
    let d = tempfile::tempdir().unwrap();
    let (key, _) = keygen(d.path());
    let mut ev = fixture_evidence();
    let t: chrono::DateTime<chrono::Utc> = "2026-11-13T08:00:00Z".parse().unwrap();
    ev.started_at = t;
    ev.finished_at = t + chrono::Duration::seconds(7);
    ev.run_id = epic_audit::engine::run_id(t);
    let env_dir = d.path().join("reports/local");
    for name in ["a", "b", "c"] {
        // Moved to November, the fixture's certificates are not yet valid:
        // TLS-004 fails, which is no matter here.
        let r = evaluate_signed(d.path(), &ev, &key, &env_dir.join(name), None);
        assert!(r.code <= 2, "{}{}", r.stdout, r.stderr);
    }
    let out = d.path().join("q4.tar.gz");
    let r = epic_audit(
        &[
            "export",
            "--env",
            "local",
            "--quarter",
            "2026-Q4",
            "--reports",
            d.path().join("reports").to_str().unwrap(),
            "--signing-key",
            key.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        d.path(),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("exported 3 run(s) of `local` in 2026-Q4")
            && r.stdout.contains("1 observation(s), 3 re-evaluation(s)")
            && r.stdout.contains(&format!(
                "observation {} (its own run is not in this export):",
                ev.run_id
            ))
            && r.stdout.matches("    re-evaluation ").count() == 3,
        "{}",
        r.stdout
    );
    let (_, files) = epic_audit::export::unpack(&out).unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&files["export.json"]).unwrap();
    assert_eq!(meta["observations"], 1);
    assert_eq!(meta["reevaluations"], 3);
    let history: Vec<serde_json::Value> = serde_json::from_slice(&files["history.json"]).unwrap();
    let clu1 = history.iter().find(|h| h["id"] == "CLU-001").unwrap();
    assert_eq!(
        clu1["outcomes"].as_array().unwrap().len(),
        1,
        "one observation, one column: {clu1}"
    );
}
