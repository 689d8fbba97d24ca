//! The backup rule: every data volume of every cluster instance has a
//! recent completed EBS snapshot, encrypted with a customer-managed key,
//! and snapshots kept long enough (HIPAA's data backup plan,
//! 164.308(a)(7)(ii)(A), asks for retrievable exact copies; the AOF of
//! DATA-001 sits on the volume it would have to restore).
//!
//! Each data volume is a subject named volume -> instance -> Redis node(s).

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::reason::reasons;
use super::rule::{joined, with_aws, Rule, SubjectFinding};
use crate::evidence::{AwsInventory, EvidenceSet, ProbeId, Snapshot, Volume};

reasons! {
    /// Why a data volume's backups got their outcome (BAK).
    Backup => Why {
        /// Recent, encrypted on a customer-managed key, kept long enough.
        BackedUp = "backed-up",
        /// DescribeSnapshots failed.
        SnapshotsNotRead = "snapshots-not-read",
        /// The instance reported no root device: data volumes unknown.
        RootDeviceUnknown = "root-device-unknown",
        /// The instance has no data volume besides its root.
        NoDataVolume = "no-data-volume",
        /// No completed snapshot of the volume.
        NoCompletedSnapshot = "no-completed-snapshot",
        /// The newest completed snapshot is older than the policy allows.
        NewestTooOld = "newest-too-old",
        /// A snapshot is not encrypted.
        SnapshotNotEncrypted = "snapshot-not-encrypted",
        /// A snapshot is encrypted with the AWS-managed key.
        SnapshotOnAwsManagedKey = "snapshot-on-aws-managed-key",
        /// A snapshot's key could not be described.
        SnapshotKeyUnknown = "snapshot-key-unknown",
        /// A young volume's first snapshot came long after it was created.
        StartNotCovered = "start-not-covered",
        /// Snapshots are not kept for the retention period.
        RetentionShort = "retention-short",
    }
}

const METHOD: &str = "AWS SDK: ec2 DescribeInstances by the discovery tag (root device of each), \
DescribeVolumes filtered by attachment.instance-id, DescribeSnapshots owned by this account \
filtered by volume-id (paginated), and kms DescribeKey/ListAliases for each snapshot's key. \
Read-only.";

/// The backup rules.
pub(crate) fn rules() -> Vec<Rule> {
    vec![Rule::new(
        "backup.snapshots",
        &[ProbeId::Aws],
        METHOD,
        snapshots,
    )]
}

/// Which volumes hold Redis data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Volumes {
    /// Every volume but the instance's root device.
    Data,
    /// Every attached volume, the root device included (Redis's `dir` on
    /// the root volume).
    All,
}

/// Parameters of `backup.snapshots`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SnapshotParams {
    /// The newest completed snapshot may be at most this old.
    pub max_age_hours: i64,
    /// The oldest kept snapshot must be at least this old (or cover the
    /// volume's whole life, when the volume is younger).
    pub retention_days: i64,
    /// Which volumes hold Redis data.
    pub volumes: Volumes,
}

fn age(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let h = (now - t).num_hours();
    if h >= 48 {
        format!("{} days", h / 24)
    } else if h >= 1 {
        format!("{h} h")
    } else {
        format!("{} min", (now - t).num_minutes().max(0))
    }
}

fn snapshots(ev: &EvidenceSet, p: &SnapshotParams) -> Vec<SubjectFinding> {
    let expected = format!(
        "every Redis data volume: a completed snapshot no older than {} h, encrypted with a \
         customer-managed key, and snapshots kept for {} days",
        p.max_age_hours, p.retention_days
    );
    let now = ev.finished_at;
    with_aws(ev, &expected, |inv| {
        let Some(snaps) = inv.snapshots.as_deref() else {
            return vec![SubjectFinding::error(format!("aws:{}", inv.region), Why::SnapshotsNotRead).observed("snapshots not read").expected(expected.clone()).message(match &inv.snapshots_error {
                    Some(e) => format!(
                        "could not be checked: {e}; grant the audit's AWS identity ec2:DescribeSnapshots"
                    ),
                    None => "could not be checked: the evidence has no snapshot list (recorded by an \
                             older epic-audit)"
                        .to_string(),
                })];
        };
        let mut out = Vec::new();
        for i in &inv.instances {
            let data: Vec<&Volume> = i
                .block_devices
                .iter()
                .filter(|(dev, _)| {
                    p.volumes == Volumes::All || i.root_device.as_deref() != Some(dev.as_str())
                })
                .filter_map(|(_, vol)| inv.volumes.iter().find(|v| &v.id == vol))
                .collect();
            let nodes = inv.nodes_on(&i.id);
            if p.volumes == Volumes::Data && i.root_device.is_none() {
                out.push(SubjectFinding::error(format!("{} (node(s) {})", i.id, nodes.join(", ")), Why::RootDeviceUnknown).observed("root device not reported").expected(expected.clone()).message("could not tell the data volumes from the root volume: DescribeInstances gave no \
                     RootDeviceName for this instance"));
                continue;
            }
            if data.is_empty() {
                out.push(SubjectFinding::error(format!("{} (node(s) {})", i.id, nodes.join(", ")), Why::NoDataVolume).observed(format!(
                        "no EBS volume besides the root device ({})",
                        i.root_device.as_deref().unwrap_or("?")
                    )).expected(expected.clone()).message("where this instance keeps its Redis data was not found: it has no EBS data \
                     volume (instance store, or data on the root volume). Set this check's \
                     `volumes = \"all\"` if Redis's `dir` is on the root volume; data on an instance \
                     store has no EBS snapshot to judge"));
                continue;
            }
            for v in data {
                out.push(judge_volume(inv, v, snaps, p, now, &expected));
            }
        }
        out
    })
}

/// The snapshots' keys: every completed snapshot is a copy someone could
/// restore, so each must be encrypted on a customer-managed key (as ENC-002
/// asks of volumes). A key that was not described goes to `unknown`.
fn key_problems(
    inv: &AwsInventory,
    completed: &[(&Snapshot, DateTime<Utc>)],
    problems: &mut Vec<(Why, String)>,
    unknown: &mut Vec<String>,
) {
    for (s, _) in completed {
        match (s.encrypted, s.kms_key_id.as_deref()) {
            (false, _) => problems.push((
                Why::SnapshotNotEncrypted,
                format!("snapshot {} is not encrypted", s.id),
            )),
            (true, None) => unknown.push(format!("snapshot {} names no KMS key", s.id)),
            (true, Some(r)) => match inv.key(r) {
                Some(k) if k.key_id.is_some() && k.aws_managed() => problems.push((
                    Why::SnapshotOnAwsManagedKey,
                    format!(
                        "snapshot {} is encrypted with the AWS-managed key {}: copy it onto the \
                         customer-managed key",
                        s.id,
                        k.label()
                    ),
                )),
                Some(k) if k.key_id.is_some() => {}
                _ => unknown.push(format!(
                    "the key {r} of snapshot {} was not described",
                    s.id
                )),
            },
        }
    }
}

/// Whether the kept snapshots reach back far enough: the retention period,
/// or for a volume younger than it, the volume's start (its first snapshot
/// within `max_age_hours` of its creation).
fn retention_problem(
    v: &Volume,
    oldest: DateTime<Utc>,
    p: &SnapshotParams,
    now: DateTime<Utc>,
) -> Option<(Why, String)> {
    let retention = Duration::days(p.retention_days);
    if now - oldest >= retention {
        return None;
    }
    // A volume younger than the retention period cannot have older
    // snapshots: its first must cover its start instead.
    match v.created {
        Some(c) if now - c < retention && oldest - c <= Duration::hours(p.max_age_hours) => None,
        Some(c) if now - c < retention => {
            let gap = age(oldest, c);
            Some((
                Why::StartNotCovered,
                format!(
                    "the volume is {} old, younger than the {}-day retention, but its oldest snapshot \
                     was taken {gap} after it was created: its first {gap} are in no backup",
                    age(now, c),
                    p.retention_days,
                ),
            ))
        }
        _ => Some((
            Why::RetentionShort,
            format!(
                "the oldest kept snapshot is {} old, less than the {}-day retention: older copies \
                 were deleted (or never taken); keep snapshots for {} days",
                age(now, oldest),
                p.retention_days,
                p.retention_days
            ),
        )),
    }
}

fn judge_volume(
    inv: &AwsInventory,
    v: &Volume,
    snaps: &[Snapshot],
    p: &SnapshotParams,
    now: DateTime<Utc>,
    expected: &str,
) -> SubjectFinding {
    let subject = super::encryption::volume_subject(inv, v);
    let completed: Vec<(&Snapshot, DateTime<Utc>)> = snaps
        .iter()
        .filter(|s| s.volume_id == v.id && s.state == "completed")
        .filter_map(|s| s.started.map(|t| (s, t)))
        .collect();
    let pending = snaps
        .iter()
        .filter(|s| s.volume_id == v.id && s.state != "completed")
        .count();
    let (Some(newest), Some(oldest)) = (
        completed.iter().max_by_key(|(_, t)| *t),
        completed.iter().min_by_key(|(_, t)| *t),
    ) else {
        return SubjectFinding::fail(subject, Why::NoCompletedSnapshot).observed(format!("no completed snapshot ({pending} not completed)")).expected(expected).message("this data volume has no completed snapshot: nothing to restore it from if the volume \
             or the node is lost (AOF and replicas do not survive a FLUSHALL or a bad write); back it \
             up with AWS Backup or a Data Lifecycle Manager policy (daily, encrypted, retained)");
    };
    let observed = format!(
        "{} completed snapshot(s); newest {} ({} ago, {}), oldest {} ({} ago){}",
        completed.len(),
        newest.0.id,
        age(now, newest.1),
        if newest.0.encrypted {
            format!(
                "encrypted with {}",
                newest.0.kms_key_id.as_deref().unwrap_or("?")
            )
        } else {
            "not encrypted".to_string()
        },
        oldest.0.id,
        age(now, oldest.1),
        v.created
            .map(|c| format!("; volume created {} ago", age(now, c)))
            .unwrap_or_default()
    );
    let mut problems = Vec::new();
    let mut unknown = Vec::new();
    if now - newest.1 > Duration::hours(p.max_age_hours) {
        problems.push((
            Why::NewestTooOld,
            format!(
                "the newest completed snapshot is {} old, more than {} h: a restore loses everything since",
                age(now, newest.1),
                p.max_age_hours
            ),
        ));
    }
    key_problems(inv, &completed, &mut problems, &mut unknown);
    let retention = Duration::days(p.retention_days);
    problems.extend(retention_problem(v, oldest.1, p, now));
    if !problems.is_empty() {
        return SubjectFinding::fail(subject, problems[0].0)
            .observed(observed)
            .expected(expected)
            .message(joined(&problems));
    }
    if !unknown.is_empty() {
        return SubjectFinding::error(subject, Why::SnapshotKeyUnknown)
            .observed(observed)
            .expected(expected)
            .message(format!(
                "could not be checked in full: {}",
                unknown.join("; ")
            ));
    }
    SubjectFinding::pass(subject, Why::BackedUp).observed(observed).expected(expected).message(match v.created {
            Some(c) if now - c < retention => format!(
                "backed up: a snapshot within {} h, encrypted on a customer-managed key; the volume is \
                 younger than the {}-day retention and its snapshots cover it since it was created",
                p.max_age_hours, p.retention_days
            ),
            _ => format!(
                "backed up: a snapshot within {} h, encrypted on a customer-managed key, copies kept \
                 for at least {} days",
                p.max_age_hours, p.retention_days
            ),
        })
}
