//! The AWS operations epic-audit calls, in one table, and the
//! least-privilege IAM policy made from it (`epic-audit print-iam`), as
//! `print-acl` makes the Redis ACL from the commands the probes send.
//!
//! Every SDK operation the code calls must be listed here: the test
//! `tests/iam.rs` finds each one in the sources and fails when the table
//! (and so the printed policy) or docs/configuration.md lacks it.

use serde_json::{json, Value};

/// Who calls an operation, which decides the statement it goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The AWS probe (read-only discovery of the estate).
    Audit,
    /// The evidence store (`evidence_store`, `--store`, `export --from`).
    Store,
    /// Signing with a KMS key (`--signing-key awskms:...`).
    Signing,
}

/// One SDK operation and the IAM actions it needs.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// The SDK client method (`describe_instances`).
    pub sdk_method: &'static str,
    /// The IAM actions it needs (a PutObject with Object Lock headers
    /// also needs `s3:PutObjectRetention`).
    pub actions: &'static [&'static str],
    /// Who calls it.
    pub caller: Caller,
    /// What for, in a few words.
    pub why: &'static str,
}

/// Every AWS operation epic-audit calls.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        sdk_method: "describe_instances",
        actions: &["ec2:DescribeInstances"],
        caller: Caller::Audit,
        why: "find the cluster's instances by tag and the node each runs",
    },
    Operation {
        sdk_method: "describe_security_groups",
        actions: &["ec2:DescribeSecurityGroups"],
        caller: Caller::Audit,
        why: "NET-001..: the instances' inbound rules",
    },
    Operation {
        sdk_method: "get_managed_prefix_list_entries",
        actions: &["ec2:GetManagedPrefixListEntries"],
        caller: Caller::Audit,
        why: "resolve prefix lists named in security-group rules",
    },
    Operation {
        sdk_method: "describe_vpcs",
        actions: &["ec2:DescribeVpcs"],
        caller: Caller::Audit,
        why: "the VPC CIDR the client and bus ports may be open to",
    },
    Operation {
        sdk_method: "describe_volumes",
        actions: &["ec2:DescribeVolumes"],
        caller: Caller::Audit,
        why: "ENC-*: every EBS volume of every node",
    },
    Operation {
        sdk_method: "get_ebs_encryption_by_default",
        actions: &["ec2:GetEbsEncryptionByDefault"],
        caller: Caller::Audit,
        why: "the account's default EBS encryption",
    },
    Operation {
        sdk_method: "describe_snapshots",
        actions: &["ec2:DescribeSnapshots"],
        caller: Caller::Audit,
        why: "BAK-001: the data volumes' snapshots",
    },
    Operation {
        sdk_method: "describe_key",
        actions: &["kms:DescribeKey"],
        caller: Caller::Audit,
        why: "ENC-*: the volumes' keys (manager, state, spec)",
    },
    Operation {
        sdk_method: "get_key_rotation_status",
        actions: &["kms:GetKeyRotationStatus"],
        caller: Caller::Audit,
        why: "ENC-*: key rotation",
    },
    Operation {
        sdk_method: "list_aliases",
        actions: &["kms:ListAliases"],
        caller: Caller::Audit,
        why: "tell AWS-managed keys (alias/aws/...) from customer keys",
    },
    Operation {
        sdk_method: "put_object",
        actions: &["s3:PutObject", "s3:PutObjectRetention"],
        caller: Caller::Store,
        why: "keep each run's files write-once (Object Lock) and advance the chain head",
    },
    Operation {
        sdk_method: "get_object",
        actions: &["s3:GetObject", "s3:GetObjectRetention"],
        caller: Caller::Store,
        why: "read each stored file back with its lock, the chain head, `export --from`",
    },
    Operation {
        sdk_method: "list_objects_v2",
        actions: &["s3:ListBucket"],
        caller: Caller::Store,
        why: "`export --from`, `acknowledge`: the stored runs of an environment",
    },
    Operation {
        sdk_method: "get_public_key",
        actions: &["kms:GetPublicKey"],
        caller: Caller::Signing,
        why: "the signing key's public half (and proof it is an ECC_NIST_P256 SIGN_VERIFY key)",
    },
    Operation {
        sdk_method: "sign",
        actions: &["kms:Sign"],
        caller: Caller::Signing,
        why: "sign each run's manifest",
    },
];

/// The IAM actions of `caller`'s operations, sorted, each once.
pub fn actions(caller: Caller) -> Vec<&'static str> {
    let mut v: Vec<&str> = OPERATIONS
        .iter()
        .filter(|o| o.caller == caller)
        .flat_map(|o| o.actions.iter().copied())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The policy: the audit's read-only statement (these describe calls take
/// no resource-level restriction), the evidence store's on `bucket` and
/// `prefix` when given, and signing with `kms_key_arn` when given.
pub fn policy(bucket: Option<(&str, &str)>, kms_key_arn: Option<&str>) -> Value {
    let mut statements = vec![json!({
        "Sid": "EpicAuditReadOnlyDiscovery",
        "Effect": "Allow",
        "Action": actions(Caller::Audit),
        "Resource": "*",
    })];
    if let Some((bucket, prefix)) = bucket {
        let prefix = prefix.trim_matches('/');
        let objects = if prefix.is_empty() {
            format!("arn:aws:s3:::{bucket}/*")
        } else {
            format!("arn:aws:s3:::{bucket}/{prefix}/*")
        };
        let object_actions: Vec<&str> = actions(Caller::Store)
            .into_iter()
            .filter(|a| *a != "s3:ListBucket")
            .collect();
        statements.push(json!({
            "Sid": "EpicAuditEvidenceObjects",
            "Effect": "Allow",
            "Action": object_actions,
            "Resource": objects,
        }));
        let mut list = json!({
            "Sid": "EpicAuditEvidenceList",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": format!("arn:aws:s3:::{bucket}"),
        });
        if !prefix.is_empty() {
            list["Condition"] = json!({"StringLike": {"s3:prefix": [format!("{prefix}/*")]}});
        }
        statements.push(list);
    }
    if let Some(arn) = kms_key_arn {
        statements.push(json!({
            "Sid": "EpicAuditSigning",
            "Effect": "Allow",
            "Action": actions(Caller::Signing),
            "Resource": arn,
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}
