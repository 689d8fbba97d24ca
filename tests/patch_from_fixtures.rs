//! PATCH-001 judged from the lab's recorded evidence: the lab's Debian
//! build as recorded, then the same nodes reporting other servers and
//! releases, judged at chosen dates against the built-in advisory table.

mod common;

use chrono::{TimeZone, Utc};
use common::{fixture_evidence, observations_mut};
use epic_audit::checks::Outcome;
use epic_audit::engine::judge;
use epic_audit::evidence::{EvidenceSet, Observation, ServerIdentity, ServerSoftware};
use epic_audit::policy::Policy;

/// The lab's build id as recorded in the fixture (Debian 12's 7.0.15).
const LAB_BUILD: &str = "ae4d7c971a948f0";

fn identities(ev: &mut EvidenceSet) -> Vec<&mut Option<ServerIdentity>> {
    observations_mut(ev, |o| match o {
        Observation::ClusterNode(v) => Some(v),
        _ => None,
    })
    .into_iter()
    .map(|(_, v)| &mut v.server)
    .collect()
}

/// Every node reports `name` `version` with build id `build`.
fn running(name: &str, version: &str, build: &str) -> EvidenceSet {
    let mut ev = fixture_evidence();
    for s in identities(&mut ev) {
        *s = Some(identity(name, version, build));
    }
    ev
}

fn identity(name: &str, version: &str, build: &str) -> ServerIdentity {
    ServerIdentity {
        software: if name == "valkey" {
            ServerSoftware::Valkey
        } else if name == "redis" {
            ServerSoftware::Redis
        } else {
            ServerSoftware::Other
        },
        name: name.into(),
        version: version.into(),
        build: [("redis_build_id".to_string(), build.to_string())].into(),
    }
}

fn on(mut ev: EvidenceSet, y: i32, m: u32, d: u32) -> EvidenceSet {
    ev.finished_at = Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap();
    ev
}

/// PATCH-001's (subject, outcome, message) under `policy`.
fn judged_by(ev: &EvidenceSet, policy: &Policy) -> Vec<(String, Outcome, String)> {
    let sel = policy.select(&["PATCH-001".into()], &[]).unwrap();
    let r = judge(ev, policy, &sel, &[], &[]);
    assert_eq!(r.checks.len(), 1);
    r.checks[0]
        .subjects
        .iter()
        .map(|s| (s.subject.clone(), s.outcome, s.message.clone()))
        .collect()
}

fn judged(ev: &EvidenceSet) -> Vec<(String, Outcome, String)> {
    judged_by(ev, &Policy::builtin().unwrap())
}

/// Every node has outcome `o` and a message containing `text`.
fn all(found: &[(String, Outcome, String)], o: Outcome, text: &str) {
    assert_eq!(found.len(), 6, "{found:#?}");
    for (s, got, m) in found {
        assert_eq!(*got, o, "{s}: {m}");
        assert!(m.contains(text), "{s}: `{text}` not in: {m}");
    }
}

fn accepting(text: &str) -> (Policy, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("accepted-builds.toml");
    std::fs::write(&f, text).unwrap();
    let mut p = Policy::builtin().unwrap();
    p.accept_builds(&f, "accepted-builds.toml").unwrap();
    (p, dir)
}

const LAB_ACCEPTANCE: &str = r#"
[[build]]
server = "redis"
version = "7.0.15"
build_id = "ae4d7c971a948f0"
reason = "Debian 12 redis-server 5:7.0.15-1~deb12u10, whose changelog names CVE-2025-49844"
"#;

#[test]
fn the_labs_debian_build_fails_by_the_table_alone_naming_backports() {
    let mut ev = fixture_evidence();
    for s in identities(&mut ev) {
        let s = s.as_ref().expect("the fixture records each node's server");
        assert_eq!(
            (s.version.as_str(), s.build["redis_build_id"].as_str()),
            ("7.0.15", LAB_BUILD)
        );
    }
    let found = judged(&ev);
    all(
        &found,
        Outcome::Fail,
        "redis 7.0 is no longer maintained by its vendor",
    );
    all(&found, Outcome::Fail, "accept it by build id");
    // 8.0 ended on 2026-12-01, before the fixture's run: not offered.
    all(
        &found,
        Outcome::Fail,
        "supported branch (8.10, 8.8, 8.6, 8.4, 8.2, 7.4, 7.2, 6.2)",
    );
}

#[test]
fn an_accepted_build_is_reported_as_accepted_with_its_reason_never_as_pass() {
    let (p, _d) = accepting(LAB_ACCEPTANCE);
    let found = judged_by(&fixture_evidence(), &p);
    all(&found, Outcome::Waived, "accepted build");
    all(&found, Outcome::Waived, "5:7.0.15-1~deb12u10");
    all(
        &found,
        Outcome::Waived,
        "without the acceptance this would fail: redis 7.0 is no longer maintained",
    );
    // The acceptance is for that build only: upstream's 7.0.15 (another
    // build id) is not covered.
    let found = judged_by(&running("redis", "7.0.15", "0123456789abcdef"), &p);
    all(&found, Outcome::Fail, "no longer maintained");
    assert_ne!(
        p.digest,
        Policy::builtin().unwrap().digest,
        "the acceptance changes verdicts, so it changes the policy digest"
    );
}

#[test]
fn an_acceptance_file_with_an_unknown_key_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("accepted-builds.toml");
    std::fs::write(
        &f,
        "[[build]]\nserver = \"redis\"\nversion = \"7.0.15\"\nbuild_id = \"x\"\nreason = \"r\"\nexpires = \"soon\"\n",
    )
    .unwrap();
    let e = Policy::builtin()
        .unwrap()
        .accept_builds(&f, "accepted-builds.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("accepted-builds.toml") && e.contains("expires"),
        "{e}"
    );
}

#[test]
fn a_release_at_the_branch_minimum_passes_while_the_table_is_fresh() {
    let found = judged(&on(running("redis", "8.10.2", "b1"), 2026, 12, 10));
    all(
        &found,
        Outcome::Pass,
        "redis 8.10.2 is at or above 8.10.2, the first 8.10 release with the fixes for",
    );
    all(&found, Outcome::Pass, "(#15673)");
    let found = judged(&on(running("valkey", "9.1.4", "b1"), 2026, 12, 10));
    all(&found, Outcome::Pass, "CVE-2026-130822");
    all(&found, Outcome::Pass, "CVE-2026-56684");
    // A row whose vendor notes could not all be read warns at its bound,
    // and says what to confirm.
    let found = judged(&on(running("redis", "7.4.11", "b1"), 2026, 12, 10));
    all(&found, Outcome::Warn, "the table is incomplete for 7.4");
    all(&found, Outcome::Warn, "#15673");
}

#[test]
fn an_old_table_turns_a_pass_into_warn_saying_its_age() {
    let found = judged(&on(running("redis", "8.10.2", "b1"), 2027, 3, 10));
    all(&found, Outcome::Warn, "advisory data is 94 days old");
    // A release below the bound still fails: the table's age only
    // weakens what it supports.
    let found = judged(&on(running("redis", "8.10.1", "b1"), 2027, 3, 10));
    all(
        &found,
        Outcome::Fail,
        "redis 8.10.1 is below 8.10.2, the first 8.10 release with the fixes for ACL revoked",
    );
}

#[test]
fn below_the_minimum_fixed_release_fails_naming_the_advisories() {
    let found = judged(&on(running("redis", "7.4.5", "b1"), 2026, 9, 1));
    all(&found, Outcome::Fail, "below 7.4.11");
    all(&found, Outcome::Fail, "CVE-2025-49844");
    // The compose lab's Valkey, by the table alone.
    let found = judged(&on(running("valkey", "8.1.1", "b1"), 2026, 9, 1));
    all(&found, Outcome::Fail, "valkey 8.1.1 is below 8.1.12");
}

#[test]
fn an_end_of_life_branch_fails_from_its_date_and_an_incomplete_bound_warns_before() {
    // Redis 8.0: Redis's notes have no 8.0 release with the May 2026 fixes.
    let found = judged(&on(running("redis", "8.0.6", "b1"), 2026, 9, 1));
    all(&found, Outcome::Warn, "the table is incomplete for 8.0");
    let found = judged(&on(running("redis", "8.0.6", "b1"), 2026, 12, 1));
    all(&found, Outcome::Fail, "reached end of life on 2026-12-01");
    // 7.2: the bound reflects only what could be read.
    let found = judged(&on(running("redis", "7.2.16", "b1"), 2026, 9, 1));
    all(
        &found,
        Outcome::Warn,
        "confirm the 7.2 release that fixes them",
    );
    // A branch the table does not list and older than its newest: gone.
    let found = judged(&on(running("redis", "6.0.20", "b1"), 2026, 9, 1));
    all(
        &found,
        Outcome::Fail,
        "redis 6.0 is not a branch the advisory table lists",
    );
}

#[test]
fn what_the_table_cannot_judge_is_warn_not_pass() {
    let found = judged(&on(running("valkey", "9.2.0", "b1"), 2026, 9, 1));
    all(
        &found,
        Outcome::Warn,
        "valkey 9.2 is newer than every branch in the advisory table",
    );
    // A version the table cannot place stays `error`, however old the
    // table is.
    let found = judged(&on(running("redis", "8.10-rc1", "b1"), 2026, 12, 1));
    all(&found, Outcome::Error, "is not MAJOR.MINOR.PATCH");
    let found = judged(&on(running("keydb", "6.3.4", "b1"), 2026, 9, 1));
    all(
        &found,
        Outcome::Warn,
        "the advisory table has no entry for the server `keydb`",
    );
}

#[test]
fn nodes_on_different_releases_fail_everywhere_naming_each() {
    let mut ev = on(running("redis", "7.4.11", "b1"), 2026, 9, 1);
    *identities(&mut ev)[2] = Some(identity("redis", "7.4.9", "b0"));
    let found = judged(&ev);
    all(
        &found,
        Outcome::Fail,
        "the nodes do not run the same server build",
    );
    all(&found, Outcome::Fail, "redis 7.4.9 (build b0)");
    // The outdated node also says why its release fails.
    assert!(found[2].2.contains("below 7.4.11"), "{}", found[2].2);
    // Mixed builds are not accepted away either.
    let (p, _d) = accepting(LAB_ACCEPTANCE);
    let mut ev = fixture_evidence();
    *identities(&mut ev)[0] = Some(identity("redis", "7.0.15", "another"));
    all(
        &judged_by(&ev, &p),
        Outcome::Fail,
        "do not run the same server build",
    );
}

#[test]
fn a_node_without_its_server_identity_is_error() {
    let mut ev = fixture_evidence();
    *identities(&mut ev)[4] = None;
    let found = judged(&ev);
    assert_eq!(found[4].1, Outcome::Error, "{:?}", found[4]);
    assert!(found[4].2.contains("no server name and version"));
}

#[test]
fn a_newer_table_given_with_policy_dir_is_the_one_judged_and_reported() {
    let shipped = Policy::builtin().unwrap().advisory_tables().remove(0);
    // Months after the release: the shipped table is stale and says so.
    let ev = on(running("redis", "8.10.2", "b1"), 2027, 4, 1);
    all(&judged(&ev), Outcome::Warn, "advisory data is");

    // The user's newer table: a later date, a new 8.10 release and a
    // source of their own.
    let old_date = format!("advisories_date = {}", shipped.date);
    let dir = tempfile::tempdir().unwrap();
    common::policy_copy_in(dir.path(), |s| {
        s.replace(&old_date, "advisories_date = 2027-03-20")
            .replace("min_fixed = \"8.10.2\"", "min_fixed = \"8.10.3\"")
            .replace(
                "advisories_sources = [\n",
                "advisories_sources = [\n  \"https://example.invalid/our-redis-advisories\",\n",
            )
    });
    let p = Policy::load_dir(dir.path()).unwrap();
    all(
        &judged_by(&ev, &p),
        Outcome::Fail,
        "redis 8.10.2 is below 8.10.3",
    );
    let newer = on(running("redis", "8.10.3", "b1"), 2027, 4, 1);
    all(&judged_by(&newer, &p), Outcome::Pass, "8.10.3");

    // The report names the table judged with, and the CLI lists it.
    let sel = p.select(&["PATCH-001".into()], &[]).unwrap();
    let r = judge(&ev, &p, &sel, &[], &[]);
    let tables = &r.policy.advisory_tables;
    assert_eq!(tables.len(), 1);
    assert_eq!(tables[0].date.to_string(), "2027-03-20");
    assert!(tables[0].sources[0].contains("our-redis-advisories"));
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["policy"]["advisory_tables"][0]["date"], "2027-03-20");
    let out = common::epic_audit(
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
