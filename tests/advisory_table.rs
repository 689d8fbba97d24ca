//! The advisory table PATCH-001 judges with: never shipped older than the
//! policy allows at the date of the commit under test, and named (date and
//! sources) by `epic-audit checks`. A newer table given with `--policy DIR`
//! is tests/patch_from_fixtures.rs's.

mod common;

use std::process::Command;

use chrono::{NaiveDate, TimeZone, Utc};
use common::epic_audit;
use epic_audit::checks::AdvisoryTable;
use epic_audit::policy::Policy;

/// The day of the commit under test: `SOURCE_DATE_EPOCH` when set (a
/// source tarball built reproducibly), else the committer date of HEAD.
/// Never today: an old commit must stay reproducible.
fn commit_day() -> NaiveDate {
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        let secs: i64 = epoch.trim().parse().expect("SOURCE_DATE_EPOCH is seconds");
        return Utc.timestamp_opt(secs, 0).unwrap().date_naive();
    }
    let out = Command::new("git")
        .args(["log", "-1", "--format=%cs", "HEAD"])
        .current_dir(common::repo())
        .output()
        .expect("git runs (the staleness test needs the commit's date)");
    assert!(
        out.status.success(),
        "cannot read HEAD's commit date ({}); outside a git checkout set SOURCE_DATE_EPOCH",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let day = String::from_utf8_lossy(&out.stdout).trim().to_string();
    NaiveDate::parse_from_str(&day, "%Y-%m-%d").expect("git prints %cs as YYYY-MM-DD")
}

/// Why `t` could not ship in a commit of `day`, if it could not.
fn stale_at(t: &AdvisoryTable, day: NaiveDate) -> Option<String> {
    let age = (day - t.date).num_days();
    if age > t.max_age_days {
        Some(format!(
            "{}'s advisory table (checks/patching.toml, advisories_date = {}) is {age} days old at \
             this commit's date {day}; the policy allows {}: refresh it from the vendors' notes \
             (and advisories_sources) before committing",
            t.check, t.date, t.max_age_days
        ))
    } else if t.date > day {
        Some(format!(
            "{}'s advisory table is dated {}, after this commit's date {day}: a table cannot be \
             read in the future",
            t.check, t.date
        ))
    } else if t.sources.is_empty() {
        Some(format!("{}'s advisory table names no sources", t.check))
    } else {
        None
    }
}

fn builtin_table() -> AdvisoryTable {
    let tables = Policy::builtin().unwrap().advisory_tables();
    assert_eq!(tables.len(), 1, "{tables:?}");
    tables.into_iter().next().unwrap()
}

#[test]
fn the_shipped_table_is_not_stale_at_the_commit_date() {
    let t = builtin_table();
    let day = commit_day();
    if let Some(why) = stale_at(&t, day) {
        panic!("{why}");
    }
}

#[test]
fn the_staleness_rule_fails_a_table_older_than_allowed() {
    // The rule above, on the shipped table at later commit dates: it holds
    // for exactly max_age_days, then fails, and fails a table from the
    // future or one without sources.
    let t = builtin_table();
    let last = t.date + chrono::Duration::days(t.max_age_days);
    assert_eq!(stale_at(&t, last), None);
    let why = stale_at(&t, last + chrono::Duration::days(1)).expect("stale a day later");
    assert!(
        why.contains(&format!("is {} days old", t.max_age_days + 1)),
        "{why}"
    );
    assert!(stale_at(&t, t.date - chrono::Duration::days(1)).is_some());
    let unsourced = AdvisoryTable {
        sources: vec![],
        ..t.clone()
    };
    assert!(stale_at(&unsourced, t.date).is_some());
}

#[test]
fn checks_names_the_tables_date_and_sources() {
    let t = builtin_table();
    let dir = tempfile::tempdir().unwrap();
    let r = epic_audit(&["checks"], dir.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains(&format!("PATCH-001 advisory table of {}", t.date)),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("policy allows 90"), "{}", r.stdout);
    for src in &t.sources {
        assert!(
            r.stdout.contains(src.as_str()),
            "{src} missing:\n{}",
            r.stdout
        );
    }
    // JSON keeps them as parameters.
    let r = epic_audit(&["checks", "--format", "json"], dir.path());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let patch = v
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "PATCH-001")
        .unwrap();
    assert_eq!(patch["params"]["advisories_date"], t.date.to_string());
    assert_eq!(
        patch["params"]["advisories_sources"]
            .as_array()
            .unwrap()
            .len(),
        t.sources.len()
    );
}
