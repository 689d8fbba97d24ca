//! Snapshots of report.json and junit.xml for fixed evidence files, so any
//! change to what auditors and CI receive is reviewed (`cargo insta review`).

mod common;

use common::{fixture_evidence, fixture_evidence_bad as bad};
use epic_audit::engine::judge;
use epic_audit::evidence::EvidenceSet;
use epic_audit::policy::Policy;
use epic_audit::report::junit;

fn stable(text: String, p: &Policy) -> String {
    text.replace(&p.digest, "[policy-digest]")
        .replace(env!("CARGO_PKG_VERSION"), "[version]")
}

fn render(ev: &EvidenceSet) -> (String, String) {
    let p = common::lab_policy();
    let sel = p.select(&[], &[]).unwrap();
    let r = judge(ev, &p, &sel, &[], &[]);
    (stable(r.to_json(), &p), stable(junit::render(&r), &p))
}

#[test]
fn report_json_good() {
    insta::assert_snapshot!(render(&fixture_evidence()).0);
}

#[test]
fn junit_good() {
    insta::assert_snapshot!(render(&fixture_evidence()).1);
}

#[test]
fn report_json_bad() {
    insta::assert_snapshot!(render(&bad()).0);
}

#[test]
fn junit_bad() {
    insta::assert_snapshot!(render(&bad()).1);
}

fn render_human(ev: &EvidenceSet) -> (String, String) {
    let p = common::lab_policy();
    let sel = p.select(&[], &[]).unwrap();
    let r = judge(ev, &p, &sel, &[], &[]);
    (
        stable(epic_audit::report::markdown::render(&r), &p),
        stable(epic_audit::report::html::render(&r, ev), &p),
    )
}

#[test]
fn report_md_good() {
    insta::assert_snapshot!(render_human(&fixture_evidence()).0);
}

#[test]
fn report_md_bad() {
    insta::assert_snapshot!(render_human(&bad()).0);
}

#[test]
fn report_html_is_self_contained_and_shows_verdict_and_every_failing_check() {
    let (_, html) = render_human(&bad());
    assert!(html.starts_with("<!DOCTYPE html>"));
    for banned in [
        "<script", "http://", "https://", "src=", "<link", "@import", "url(",
    ] {
        assert!(!html.contains(banned), "report.html references `{banned}`");
    }
    assert!(
        html.contains("Verdict: <span class=\"b fail\">FAIL</span>"),
        "verdict"
    );
    let p = common::lab_policy();
    let sel = p.select(&[], &[]).unwrap();
    let r = judge(&bad(), &p, &sel, &[], &[]);
    for c in r
        .checks
        .iter()
        .filter(|c| c.outcome == epic_audit::checks::Outcome::Fail)
    {
        assert!(
            html.contains(&format!("<section class=\"finding\" id=\"{}\">", c.id)),
            "{} missing",
            c.id
        );
    }
}
