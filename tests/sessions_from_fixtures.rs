//! DATA-005 at any size: the keyspace arithmetic (INFO keyspace's `keys`
//! and `expires` per database, read before and after the scan) judged from
//! fixture evidence recorded on the lab, with the counts edited to each
//! case. The lab proof is in tests/lab_scale.rs.

mod common;

use common::{codes, fixture_evidence, judge_areas, messages, not_passing, observations_mut, only};
use epic_audit::checks::Outcome;
use epic_audit::evidence::{
    DbKeys, EvidenceSet, KeyspaceView, Observation, ReplicationRole, SessionScanView,
};
use epic_audit::report::Report;

fn scans(ev: &mut EvidenceSet) -> Vec<&mut SessionScanView> {
    observations_mut(ev, |o| match o {
        Observation::SessionScan(v) => Some(v),
        _ => None,
    })
    .into_iter()
    .map(|(_, v)| v.as_mut())
    .collect()
}

fn db(db: u32, keys: u64, expires: u64) -> DbKeys {
    DbKeys { db, keys, expires }
}

/// Both reads of the keyspace give `dbs`.
fn keyspace(dbs: Vec<DbKeys>) -> Option<KeyspaceView> {
    Some(KeyspaceView {
        role: ReplicationRole::Master,
        before: dbs.clone(),
        after: dbs,
    })
}

fn judge(ev: &EvidenceSet) -> Report {
    judge_areas(ev, &["DATA-005"])
}

/// The code and the `subject [outcome]: observed | message` line of the
/// first subject that did not pass (the master whose scan was edited).
fn first(r: &Report) -> (String, String) {
    (
        codes(r, "DATA-005")[0].1.clone(),
        messages(r, "DATA-005")[0].clone(),
    )
}

#[test]
fn the_recorded_lab_counts_every_key_and_passes() {
    let r = judge(&fixture_evidence());
    assert_eq!(not_passing(&r), vec![]);
    for s in &common::result(&r, "DATA-005").subjects {
        assert!(
            s.message.contains(" of ") && s.message.contains("keys have no TTL (INFO keyspace)"),
            "{}",
            s.message
        );
    }
}

#[test]
fn three_keys_without_ttl_among_a_million_fail_though_the_sample_missed_them() {
    let mut ev = fixture_evidence();
    let s = &mut scans(&mut ev)[0];
    s.complete = false;
    s.scanned = 100_000;
    s.keyspace = keyspace(vec![db(0, 1_000_000, 999_997)]);
    let r = judge(&ev);
    assert_eq!(not_passing(&r), only("DATA-005", Outcome::Fail));
    let (code, m) = first(&r);
    assert_eq!(code, "DATA-005/keys-without-ttl");
    assert!(
        m.contains("3 of 1,000,000 keys have no TTL (INFO keyspace)")
            && m.contains("the sample of 100,000 keys matching session:* found 0 without TTL")
            && m.contains("beyond the sample or do not match session:*")
            && m.contains("other_keys_without_ttl = \"fail\""),
        "{m}"
    );
}

#[test]
fn the_sample_and_the_counts_are_both_said_when_the_sample_found_some() {
    let mut ev = fixture_evidence();
    let s = &mut scans(&mut ev)[0];
    s.complete = false;
    s.scanned = 100_000;
    s.no_ttl = vec!["a1b2c3d4e5f6".into()];
    // expires > 0 but not on every key.
    s.keyspace = keyspace(vec![db(0, 1_000_000, 999_997)]);
    let (code, m) = first(&judge(&ev));
    assert_eq!(code, "DATA-005/session-without-ttl");
    assert!(
        m.contains("| 3 of 1,000,000 keys have no TTL (INFO keyspace); the sample of 100,000 keys matching session:* found 1 without TTL"),
        "{m}"
    );
}

#[test]
fn keys_without_ttl_in_other_databases_count_and_are_named() {
    let mut ev = fixture_evidence();
    let s = &mut scans(&mut ev)[0];
    let n = s.scanned;
    s.keyspace = keyspace(vec![db(0, n, n), db(1, 5, 3), db(2, 4, 4)]);
    let r = judge(&ev);
    assert_eq!(not_passing(&r), only("DATA-005", Outcome::Fail));
    let (code, m) = first(&r);
    assert_eq!(code, "DATA-005/keys-without-ttl");
    assert!(
        m.contains(&format!("2 of {} keys have no TTL", n + 9))
            && m.contains("db1 outside db0, which the scan does not read")
            && !m.contains("db2")
            && m.contains("the scan was complete, so they do not match session:*"),
        "{m}"
    );
}

#[test]
fn a_key_caught_between_its_write_and_its_expire_is_not_counted() {
    // One read sees a key without TTL, the other does not: a session
    // manager's HSET then EXPIRE, caught in between. A key that never
    // expires is in both reads.
    let mut ev = fixture_evidence();
    let s = &mut scans(&mut ev)[0];
    let n = s.scanned;
    s.keyspace = Some(KeyspaceView {
        role: ReplicationRole::Master,
        before: vec![db(0, n + 1, n)],
        after: vec![db(0, n + 1, n + 1)],
    });
    assert_eq!(not_passing(&judge(&ev)), vec![]);
    let s = &mut scans(&mut ev)[0];
    s.keyspace = Some(KeyspaceView {
        role: ReplicationRole::Master,
        before: vec![db(0, n + 1, n)],
        after: vec![db(0, n + 2, n + 1)],
    });
    assert_eq!(not_passing(&judge(&ev)), only("DATA-005", Outcome::Fail));
}

#[test]
fn counts_read_on_a_replica_are_not_the_masters() {
    let mut ev = fixture_evidence();
    let s = &mut scans(&mut ev)[0];
    let mut k = s.keyspace.clone().expect("recorded keyspace");
    k.role = ReplicationRole::Replica;
    s.keyspace = Some(k);
    let r = judge(&ev);
    assert_eq!(not_passing(&r), only("DATA-005", Outcome::Error));
    let (code, m) = first(&r);
    assert_eq!(code, "DATA-005/keyspace-not-master");
    assert!(
        m.contains("role slave") && m.contains("run the audit again"),
        "{m}"
    );
}

#[test]
fn evidence_without_keyspace_counts_is_never_a_pass() {
    let mut ev = fixture_evidence();
    scans(&mut ev)[1].keyspace = None;
    let r = judge(&ev);
    assert_eq!(not_passing(&r), only("DATA-005", Outcome::Error));
    assert!(codes(&r, "DATA-005")
        .iter()
        .any(|(_, c)| c == "DATA-005/keyspace-unobserved"));
}

#[test]
fn the_policy_decides_whether_unattributed_keys_fail_or_warn() {
    use epic_audit::policy::Policy;
    let mut ev = fixture_evidence();
    let s = &mut scans(&mut ev)[0];
    let n = s.scanned;
    s.keyspace = keyspace(vec![db(0, n + 2, n)]);
    let text = epic_audit::policy::builtin_file("data.toml").replace(
        "other_keys_without_ttl = \"fail\"",
        "other_keys_without_ttl = \"warn\"",
    );
    assert!(text.contains("\"warn\""));
    let p = Policy::from_files(vec![("data.toml".into(), text)], "t").unwrap();
    let sel = p.select(&["DATA-005".into()], &[]).unwrap();
    let r = epic_audit::engine::judge(&ev, &p, &sel, &[], &[]);
    assert_eq!(r.checks[0].outcome, Outcome::Warn);
    assert!(messages(&r, "DATA-005")[0].contains("other_keys_without_ttl = \"warn\""));
    // A value the policy does not know is refused at load, not read as one.
    let text = epic_audit::policy::builtin_file("data.toml").replace(
        "other_keys_without_ttl = \"fail\"",
        "other_keys_without_ttl = \"ignore\"",
    );
    assert!(Policy::from_files(vec![("data.toml".into(), text)], "t").is_err());
}

#[test]
fn what_the_scan_cost_is_said_and_kept_out_of_the_observation() {
    let mut ev = fixture_evidence();
    scans(&mut ev)[0].cost = Some(epic_audit::evidence::ScanCost {
        pages: 101,
        commands: 200_105,
        elapsed_ms: 5_012,
        paced_ms: 4_100,
    });
    let r = judge(&ev);
    let c = common::result(&r, "DATA-005");
    let s = &c.subjects[0];
    assert!(
        s.message.contains("200,105 commands in 101 SCAN pages over 5.0 s, 4.1 s of it waiting to stay within 20,000 keys/s"),
        "{}",
        s.message
    );
    assert!(!s.observed.contains("5.0 s"), "{}", s.observed);
}
