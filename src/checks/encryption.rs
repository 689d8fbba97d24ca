//! Encryption-at-rest rules: every EBS volume of every cluster instance is
//! encrypted with a customer-managed KMS key that is enabled, symmetric
//! AES-256 and rotating; and the account encrypts new volumes by default.
//!
//! Each volume is a subject named volume -> instance -> Redis node(s), and
//! the observation names the key, so a finding can be followed end to end.

use serde::Deserialize;

use super::reason::reasons;
use super::rule::{joined, with_aws, NoParams, Outcome, Rule, SubjectFinding};
use crate::evidence::EvidenceSet;
use crate::evidence::{AwsInventory, KmsKey, ProbeId, Volume};

reasons! {
    /// Why a volume, its key or a region got its outcome (ENC).
    Encryption => Why {
        /// The volume is encrypted.
        VolumeEncrypted = "volume-encrypted",
        /// The volume is not encrypted (ENC-001 fails it; the key checks skip it).
        VolumeNotEncrypted = "volume-not-encrypted",
        /// KMS could not describe the volume's key.
        KeyNotDescribed = "key-not-described",
        /// The volume's key was not read.
        KeyNotRead = "key-not-read",
        /// A customer-managed key.
        CustomerManagedKey = "customer-managed-key",
        /// The AWS-managed default key.
        AwsManagedKey = "aws-managed-key",
        /// Key state Enabled.
        KeyEnabled = "key-enabled",
        /// Key scheduled for deletion.
        KeyPendingDeletion = "key-pending-deletion",
        /// Key disabled or otherwise not usable.
        KeyNotEnabled = "key-not-enabled",
        /// AWS rotates an AWS-managed key itself: not judged here.
        AwsManagedKeyRotation = "aws-managed-key-rotation",
        /// Automatic rotation on.
        RotationOn = "rotation-on",
        /// Automatic rotation off.
        RotationOff = "rotation-off",
        /// Rotation status not read.
        RotationUnknown = "rotation-unknown",
        /// Not a symmetric key: AWS cannot rotate it (ENC-005 fails it).
        RotationNotApplicable = "rotation-not-applicable",
        /// Symmetric key of the policy's spec, for encryption.
        KeySpecOk = "key-spec-ok",
        /// A key spec other than the policy's.
        WrongKeySpec = "wrong-key-spec",
        /// A key whose usage is not ENCRYPT_DECRYPT.
        NotAnEncryptionKey = "not-an-encryption-key",
        /// The region holds no instance of the cluster.
        NoInstanceInRegion = "no-instance-in-region",
        /// EBS encryption by default on.
        DefaultEncryptionOn = "default-encryption-on",
        /// EBS encryption by default off.
        DefaultEncryptionOff = "default-encryption-off",
        /// EBS encryption by default not read.
        DefaultEncryptionUnknown = "default-encryption-unknown",
    }
}

const VOLUME_METHOD: &str = "AWS SDK: ec2 DescribeInstances by the discovery tag, \
DescribeVolumes filtered by attachment.instance-id (paginated). Read-only.";
const KEY_METHOD: &str = "AWS SDK: ec2 DescribeVolumes for the cluster instances, then for each \
volume's key kms DescribeKey (resolves ids, ARNs and aliases), GetKeyRotationStatus and \
ListAliases. AWS-managed keys are recognised by alias/ARN (`alias/aws/...`) as well as \
KeyManager. Read-only.";

/// The encryption rules.
pub(crate) fn rules() -> Vec<Rule> {
    vec![
        Rule::new(
            "encryption.volumes",
            &[ProbeId::Aws],
            VOLUME_METHOD,
            volumes_encrypted,
        ),
        Rule::new(
            "encryption.customer_key",
            &[ProbeId::Aws],
            KEY_METHOD,
            customer_key,
        ),
        Rule::new(
            "encryption.key_enabled",
            &[ProbeId::Aws],
            KEY_METHOD,
            key_enabled,
        ),
        Rule::new(
            "encryption.key_rotation",
            &[ProbeId::Aws],
            KEY_METHOD,
            key_rotation,
        ),
        Rule::new("encryption.key_spec", &[ProbeId::Aws], KEY_METHOD, key_spec),
        Rule::new(
            "encryption.ebs_default",
            &[ProbeId::Aws],
            "AWS SDK: ec2 GetEbsEncryptionByDefault in the environment's region. Read-only.",
            ebs_default,
        ),
    ]
}

/// `vol-1 (i-1 /dev/sdf; nodes 127.0.1.1:6379)`.
pub(crate) fn volume_subject(inv: &AwsInventory, v: &Volume) -> String {
    let att: Vec<String> = v
        .attachments
        .iter()
        .map(|(i, d)| {
            let nodes = inv.nodes_on(i);
            if nodes.is_empty() {
                format!("{i} {d}")
            } else {
                let word = if nodes.len() == 1 { "node" } else { "nodes" };
                format!("{i} {d}; {word} {}", nodes.join(", "))
            }
        })
        .collect();
    format!("{} ({})", v.id, att.join(" | "))
}

fn volumes_encrypted(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "encrypted";
    with_aws(ev, expected, |inv| {
        inv.volumes
            .iter()
            .map(|v| {
                let subject = volume_subject(inv, v);
                let size = v.size_gib.map(|s| format!("{s} GiB, ")).unwrap_or_default();
                if v.encrypted {
                    SubjectFinding::pass(subject, Why::VolumeEncrypted)
                        .observed(format!(
                            "{size}encrypted with {}",
                            v.kms_key_id.as_deref().unwrap_or("?")
                        ))
                        .expected(expected)
                        .message("encrypted at rest")
                } else {
                    SubjectFinding::fail(subject, Why::VolumeNotEncrypted)
                        .observed(format!("{size}not encrypted"))
                        .expected(expected)
                        .message(
                            "this volume stores the node's data (AOF, RDB, logs) unencrypted; \
                         an EBS volume cannot be encrypted in place: snapshot it, copy the \
                         snapshot with encryption on the customer-managed key, and replace \
                         the volume from the copy",
                        )
                }
            })
            .collect()
    })
}

/// Judges the key of each encrypted volume with `f`; an unencrypted
/// volume is `skip` here (the volume rule fails it), and a key KMS could
/// not describe is `error`.
fn per_key(
    ev: &EvidenceSet,
    expected: &str,
    f: impl Fn(&KmsKey) -> (Outcome, Why, String, String),
) -> Vec<SubjectFinding> {
    with_aws(ev, expected, |inv| {
        inv.volumes
            .iter()
            .map(|v| {
                let subject = volume_subject(inv, v);
                let Some(reference) = v.kms_key_id.as_deref().filter(|_| v.encrypted) else {
                    return SubjectFinding::skip(subject, Why::VolumeNotEncrypted).observed("not encrypted").expected(expected).message("no key to judge: the volume is not encrypted (the volume check fails it)");
                };
                match inv.key(reference) {
                    Some(k) if k.key_id.is_some() => {
                        let (outcome, why, observed, message) = f(k);
                        SubjectFinding::with(subject, outcome, why).observed(format!("key {}: {observed}", k.label())).expected(expected).message(message)
                    }
                    Some(k) => SubjectFinding::error(subject, Why::KeyNotDescribed).observed(format!("key {reference}: not described")).expected(expected).message(format!(
                            "could not be checked: {}",
                            k.error.as_deref().unwrap_or("KMS returned no key metadata")
                        )),
                    None => SubjectFinding::error(subject, Why::KeyNotRead).observed(format!("key {reference}: not described")).expected(expected).message("could not be checked: the key was not read"),
                }
            })
            .collect()
    })
}

fn customer_key(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    per_key(ev, "a customer-managed KMS key", |k| {
        let observed = format!(
            "KeyManager {}, aliases [{}]",
            k.key_manager.as_deref().unwrap_or("?"),
            k.aliases.join(", ")
        );
        if k.aws_managed() {
            (
                Outcome::Fail,
                Why::AwsManagedKey,
                observed,
                "the volume uses the AWS-managed default key: its policy cannot be restricted, \
                 it cannot be disabled or audited as the organisation's own key, and access to it \
                 follows the account, not the data; re-encrypt onto a customer-managed key"
                    .into(),
            )
        } else {
            (
                Outcome::Pass,
                Why::CustomerManagedKey,
                observed,
                "customer-managed key".into(),
            )
        }
    })
}

fn key_enabled(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    per_key(ev, "key state Enabled", |k| {
        let state = k.key_state.as_deref().unwrap_or("?");
        let observed = format!("KeyState {state}");
        match state {
            "Enabled" => (
                Outcome::Pass,
                Why::KeyEnabled,
                observed,
                "the key is enabled".into(),
            ),
            "PendingDeletion" => (
                Outcome::Fail,
                Why::KeyPendingDeletion,
                observed,
                "the key is scheduled for deletion: when it is deleted the volume's data is \
                 unrecoverable; cancel the deletion (kms cancel-key-deletion) now"
                    .into(),
            ),
            _ => (
                Outcome::Fail,
                Why::KeyNotEnabled,
                observed,
                format!(
                    "the key is {state}: the instance cannot decrypt the volume after a stop/start \
                     or reattach, and new data keys cannot be issued; enable it (kms enable-key) \
                     if the disabling was not a deliberate response to an incident"
                ),
            ),
        }
    })
}

fn key_rotation(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    per_key(ev, "automatic key rotation on", |k| {
        let observed = match k.rotation_enabled {
            Some(true) => "rotation on".to_string(),
            Some(false) => "rotation off".to_string(),
            None => format!(
                "rotation unknown ({})",
                k.error.as_deref().unwrap_or("not read")
            ),
        };
        if k.aws_managed() {
            return (
                Outcome::Skip,
                Why::AwsManagedKeyRotation,
                observed,
                "AWS-managed key: AWS rotates it every year and it cannot be changed (the \
                 customer-managed key check fails its use)"
                    .into(),
            );
        }
        // AWS rotates only symmetric encryption keys: another key spec
        // cannot rotate, and ENC-005 fails it.
        if let Some(spec) = k.key_spec.as_deref().filter(|s| *s != "SYMMETRIC_DEFAULT") {
            return (
                Outcome::Skip,
                Why::RotationNotApplicable,
                observed,
                format!(
                    "a {spec} key cannot rotate automatically (AWS rotates only symmetric \
                     encryption keys); the key spec check fails its use for a volume"
                ),
            );
        }
        match k.rotation_enabled {
            Some(true) => (
                Outcome::Pass,
                Why::RotationOn,
                observed,
                "rotation is on".into(),
            ),
            Some(false) => (
                Outcome::Fail,
                Why::RotationOff,
                observed,
                "automatic rotation is off: the same key material protects the data \
                 indefinitely; turn it on (kms enable-key-rotation)"
                    .into(),
            ),
            None => (
                Outcome::Error,
                Why::RotationUnknown,
                observed,
                "could not read the rotation status".into(),
            ),
        }
    })
}

/// Parameters of `encryption.key_spec`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeySpecParams {
    /// Required key spec (AES-256-GCM is `SYMMETRIC_DEFAULT`).
    pub key_spec: String,
}

fn key_spec(ev: &EvidenceSet, p: &KeySpecParams) -> Vec<SubjectFinding> {
    let expected = format!("KeySpec {}, KeyUsage ENCRYPT_DECRYPT", p.key_spec);
    per_key(ev, &expected, |k| {
        let spec = k.key_spec.as_deref().unwrap_or("?");
        let usage = k.key_usage.as_deref();
        let observed = format!("KeySpec {spec}, KeyUsage {}", usage.unwrap_or("?"));
        let mut problems = Vec::new();
        if spec != p.key_spec {
            problems.push((
                Why::WrongKeySpec,
                format!("the key spec is {spec}, not {}", p.key_spec),
            ));
        }
        if usage.is_some_and(|u| u != "ENCRYPT_DECRYPT") {
            problems.push((
                Why::NotAnEncryptionKey,
                "the key is not an encryption key".to_string(),
            ));
        }
        if problems.is_empty() {
            (
                Outcome::Pass,
                Why::KeySpecOk,
                observed,
                "symmetric AES-256 encryption key".into(),
            )
        } else {
            (Outcome::Fail, problems[0].0, observed, joined(&problems))
        }
    })
}

fn ebs_default(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "EBS encryption by default on";
    with_aws(ev, expected, |inv| {
        let subject = format!("account EBS defaults ({})", inv.region);
        // A region holding none of the cluster's instances (a wrong region
        // or discovery tag) says nothing about the cluster's volumes.
        if inv.instances.is_empty() {
            return vec![SubjectFinding::error(subject, Why::NoInstanceInRegion).observed("no instance of the cluster in this region").expected(expected).message(format!(
                    "no EC2 instance with the discovery tag was found in {}, so this region's default \
                     cannot be tied to the cluster: check [aws] region and the discovery tag",
                    inv.region
                ))];
        }
        vec![match (inv.ebs_encryption_by_default, &inv.ebs_encryption_by_default_error) {
            (Some(true), _) => SubjectFinding::pass(subject, Why::DefaultEncryptionOn).observed("encryption by default on").expected(expected).message("new volumes in this region are encrypted even if a launch template forgets"),
            (Some(false), _) => SubjectFinding::warn(subject, Why::DefaultEncryptionOff).observed("encryption by default off").expected(expected).message("a replacement node launched without an explicit encrypted block-device mapping \
                 would get an unencrypted volume; turn it on (ec2 enable-ebs-encryption-by-default) \
                 and set the default key to the customer-managed key"),
            (None, e) => SubjectFinding::error(subject, Why::DefaultEncryptionUnknown).observed("unknown").expected(expected).message(format!(
                    "could not be checked: {}",
                    e.as_deref().unwrap_or("not read")
                )),
        }]
    })
}
