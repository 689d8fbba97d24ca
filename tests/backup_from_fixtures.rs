//! BAK-001 judged from the fixture evidence recorded on the real lab (its
//! emulator's three data volumes, each with a snapshot copied onto the
//! customer-managed key), unmodified and with one defect each.

mod common;

use chrono::{Duration, Utc};
use common::{
    distinct_codes, fixture_evidence, inventory, judge_areas, messages, not_passing, only,
};
use epic_audit::checks::Outcome;
use epic_audit::evidence::EvidenceSet;

fn judge(ev: &EvidenceSet) -> epic_audit::report::Report {
    judge_areas(ev, &["BAK-001"])
}

/// The fixture with its clock moved: the run finishes `now`, the volumes
/// were created `volume_age` before, and every snapshot was taken
/// `snapshot_age` before.
fn aged(volume_age: Duration, snapshot_age: Duration) -> EvidenceSet {
    let mut ev = fixture_evidence();
    let now = Utc::now();
    ev.finished_at = now;
    let inv = inventory(&mut ev);
    for v in inv.volumes.iter_mut() {
        v.created = Some(now - volume_age);
    }
    for s in inv.snapshots.as_mut().unwrap() {
        s.started = Some(now - snapshot_age);
    }
    ev
}

#[test]
fn the_lab_passes_one_subject_per_data_volume() {
    let r = judge(&fixture_evidence());
    assert_eq!(not_passing(&r), vec![]);
    let c = &r.checks[0];
    assert_eq!(c.subjects.len(), 3);
    assert!(c.subjects.iter().all(|s| s.subject.contains("/dev/sdf")));
    // A volume older than the retention, with copies as old as it: pass.
    let mut ev = aged(Duration::days(40), Duration::days(20));
    let inv = inventory(&mut ev);
    let mut fresh = inv.snapshots.as_ref().unwrap().clone();
    for s in fresh.iter_mut() {
        s.id.push_str("-today");
        s.started = Some(Utc::now() - Duration::hours(3));
    }
    inv.snapshots.as_mut().unwrap().extend(fresh);
    let r = judge(&ev);
    assert_eq!(not_passing(&r), vec![], "{:?}", messages(&r, "BAK-001"));
    assert!(r.checks[0]
        .subjects
        .iter()
        .all(|s| s.message.contains("copies kept for at least 15 days")));
}

#[test]
fn each_backup_defect_fails_the_volume_it_is_on() {
    // (what is wrong, the evidence, the reason of every failing subject)
    let cases: Vec<(&str, EvidenceSet, &str)> = vec![
        (
            "no snapshot of one volume",
            {
                let mut ev = fixture_evidence();
                let inv = inventory(&mut ev);
                inv.snapshots.as_mut().unwrap().remove(0);
                ev
            },
            "no-completed-snapshot",
        ),
        (
            "only a pending snapshot",
            {
                let mut ev = fixture_evidence();
                inventory(&mut ev).snapshots.as_mut().unwrap()[0].state = "pending".into();
                ev
            },
            "no-completed-snapshot",
        ),
        (
            "the newest snapshot is three days old",
            aged(Duration::days(30), Duration::days(3)),
            "newest-too-old",
        ),
        (
            "an unencrypted snapshot",
            {
                let mut ev = fixture_evidence();
                let s = &mut inventory(&mut ev).snapshots.as_mut().unwrap()[0];
                s.encrypted = false;
                s.kms_key_id = None;
                ev
            },
            "snapshot-not-encrypted",
        ),
        (
            "a volume older than the retention with only a day of copies",
            aged(Duration::days(60), Duration::hours(20)),
            "retention-short",
        ),
        (
            "a young volume backed up only days after it was created",
            aged(Duration::days(5), Duration::hours(2)),
            "start-not-covered",
        ),
    ];
    for (what, ev, why) in cases {
        let r = judge(&ev);
        assert_eq!(not_passing(&r), only("BAK-001", Outcome::Fail), "{what}");
        assert_eq!(
            distinct_codes(&r, "BAK-001"),
            vec![format!("BAK-001/{why}")],
            "{what}: {:#?}",
            messages(&r, "BAK-001")
        );
    }
}

#[test]
fn a_snapshot_on_the_aws_managed_key_fails() {
    let mut ev = fixture_evidence();
    let inv = inventory(&mut ev);
    let mut aws_key = inv.keys[0].clone();
    aws_key.reference = "alias/aws/ebs".into();
    aws_key.aliases = vec!["alias/aws/ebs".into()];
    aws_key.key_id = Some("aws-managed-1".into());
    inv.keys.push(aws_key);
    inv.snapshots.as_mut().unwrap()[1].kms_key_id = Some("alias/aws/ebs".into());
    let r = judge(&ev);
    assert_eq!(not_passing(&r), only("BAK-001", Outcome::Fail));
    assert_eq!(
        distinct_codes(&r, "BAK-001"),
        vec!["BAK-001/snapshot-on-aws-managed-key"]
    );
    // The wording names the key (one snapshot of the message's prose).
    assert!(messages(&r, "BAK-001")
        .iter()
        .any(|m| m.contains("encrypted with the AWS-managed key alias/aws/ebs")));
}

#[test]
fn what_could_not_be_read_is_an_error_never_a_pass() {
    // DescribeSnapshots refused: the one subject names the call.
    let mut ev = fixture_evidence();
    let inv = inventory(&mut ev);
    inv.snapshots = None;
    inv.snapshots_error = Some("ec2:DescribeSnapshots failed: UnauthorizedOperation".into());
    let r = judge(&ev);
    assert_eq!(not_passing(&r), only("BAK-001", Outcome::Error));
    assert_eq!(
        distinct_codes(&r, "BAK-001"),
        vec!["BAK-001/snapshots-not-read"]
    );
    assert!(
        messages(&r, "BAK-001")[0].contains("grant the audit's AWS identity ec2:DescribeSnapshots")
    );
    // An instance whose only volume is its root device: where its data
    // lives was not found.
    let mut ev = fixture_evidence();
    let inv = inventory(&mut ev);
    let first = inv.instances[0].id.clone();
    inv.instances[0]
        .block_devices
        .retain(|(d, _)| d == "/dev/xvda");
    let r = judge(&ev);
    assert_eq!(not_passing(&r), only("BAK-001", Outcome::Error));
    let c = &r.checks[0];
    let err: Vec<_> = c
        .subjects
        .iter()
        .filter(|s| s.outcome == Outcome::Error)
        .collect();
    assert_eq!(err.len(), 1);
    assert!(err[0].subject.starts_with(&first), "{}", err[0].subject);
    assert_eq!(err[0].code, "BAK-001/no-data-volume");
    // A snapshot whose key KMS did not describe.
    let mut ev = fixture_evidence();
    inventory(&mut ev).snapshots.as_mut().unwrap()[2].kms_key_id = Some("alias/unknown".into());
    let r = judge(&ev);
    assert_eq!(not_passing(&r), only("BAK-001", Outcome::Error));
    assert_eq!(
        distinct_codes(&r, "BAK-001"),
        vec!["BAK-001/snapshot-key-unknown"]
    );
    // Evidence from before root devices were kept.
    let mut ev = fixture_evidence();
    for i in inventory(&mut ev).instances.iter_mut() {
        i.root_device = None;
    }
    let r = judge(&ev);
    assert_eq!(not_passing(&r), only("BAK-001", Outcome::Error));
    assert_eq!(
        distinct_codes(&r, "BAK-001"),
        vec!["BAK-001/root-device-unknown"]
    );
}
