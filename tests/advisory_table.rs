//! The advisory table PATCH-001 judges with: never shipped older than the
//! policy allows at the date of the commit under test, named (date and
//! sources) by `epic-audit checks` and by every report, and replaceable
//! between releases with `--policy DIR`.

mod common;

use std::path::Path;
use std::process::Command;

use chrono::{NaiveDate, TimeZone, Utc};
use common::{epic_audit, fixture_evidence, observations_mut};
use epic_audit::checks::{AdvisoryTable, Outcome};
use epic_audit::engine::judge;
use epic_audit::evidence::{Observation, ServerIdentity, ServerSoftware};
use epic_audit::policy::Policy;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

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
        .current_dir(repo())
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

/// A copy of the built-in policy with checks/patching.toml edited by `edit`.
fn policy_dir(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(repo().join("checks")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let mut text = std::fs::read_to_string(&p).unwrap();
            if p.file_name().unwrap() == "patching.toml" {
                text = edit(text);
            }
            std::fs::write(dir.path().join(p.file_name().unwrap()), text).unwrap();
        }
    }
    dir
}

fn running(version: &str) -> epic_audit::evidence::EvidenceSet {
    let mut ev = fixture_evidence();
    for (_, o) in observations_mut(&mut ev, |o| match o {
        Observation::ClusterNode(v) => Some(v),
        _ => None,
    }) {
        o.server = Some(ServerIdentity {
            software: ServerSoftware::Redis,
            name: "redis".into(),
            version: version.into(),
            build: [("redis_build_id".to_string(), "b1".to_string())].into(),
        });
    }
    ev.finished_at = Utc.with_ymd_and_hms(2027, 4, 1, 12, 0, 0).unwrap();
    ev
}

fn patch_findings(ev: &epic_audit::evidence::EvidenceSet, p: &Policy) -> Vec<(Outcome, String)> {
    let sel = p.select(&["PATCH-001".into()], &[]).unwrap();
    let r = judge(ev, p, &sel, &[], &[]);
    r.checks[0]
        .subjects
        .iter()
        .map(|s| (s.outcome, s.message.clone()))
        .collect()
}

#[test]
fn a_newer_table_given_with_policy_dir_is_the_one_judged_and_reported() {
    let t = builtin_table();
    // Months after the release: the shipped table is stale and says so.
    let ev = running("8.10.2");
    let shipped = patch_findings(&ev, &Policy::builtin().unwrap());
    assert!(shipped
        .iter()
        .all(|(o, m)| *o == Outcome::Warn && m.contains("advisory data is")));

    // The user's newer table: a later date, a new 8.10 release and a
    // source of their own.
    let old_date = format!("advisories_date = {}", t.date);
    let dir = policy_dir(|s| {
        assert!(s.contains(&old_date));
        s.replace(&old_date, "advisories_date = 2027-03-20")
            .replace("min_fixed = \"8.10.2\"", "min_fixed = \"8.10.3\"")
            .replace(
                "advisories_sources = [\n",
                "advisories_sources = [\n  \"https://example.invalid/our-redis-advisories\",\n",
            )
    });
    let p = Policy::load_dir(dir.path()).unwrap();
    let found = patch_findings(&ev, &p);
    assert!(
        found
            .iter()
            .all(|(o, m)| *o == Outcome::Fail && m.contains("redis 8.10.2 is below 8.10.3")),
        "{found:?}"
    );
    let found = patch_findings(&running("8.10.3"), &p);
    assert!(found.iter().all(|(o, _)| *o == Outcome::Pass), "{found:?}");

    // The report names the table judged with, and the CLI lists it.
    let sel = p.select(&["PATCH-001".into()], &[]).unwrap();
    let r = judge(&ev, &p, &sel, &[], &[]);
    let tables = &r.policy.advisory_tables;
    assert_eq!(tables.len(), 1);
    assert_eq!(tables[0].date.to_string(), "2027-03-20");
    assert!(tables[0].sources[0].contains("our-redis-advisories"));
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["policy"]["advisory_tables"][0]["date"], "2027-03-20");
    let out = epic_audit(
        &["--policy", dir.path().to_str().unwrap(), "checks"],
        dir.path(),
    );
    assert!(
        out.stdout
            .contains("PATCH-001 advisory table of 2027-03-20"),
        "{}",
        out.stdout
    );
}
