//! What the AWS probe observes in one region: the cluster's EC2 instances,
//! their security groups, EBS volumes and KMS keys, and where each Redis node
//! sits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything the AWS checks judge, as seen in one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsInventory {
    /// Region queried.
    pub region: String,
    /// Endpoint override, when one is configured (the emulator).
    pub endpoint: Option<String>,
    /// The discovery filter, e.g. `tag:redis-cluster=clinical-sessions`.
    pub discovery: String,
    /// The instances the filter found.
    pub instances: Vec<Ec2Instance>,
    /// Each Redis node and the instance it was joined to (by IP).
    pub nodes: Vec<NodePlacement>,
    /// Every security group attached to a cluster instance.
    pub security_groups: Vec<SecurityGroup>,
    /// Names of security groups referenced by rules (id -> name), where
    /// they could be described.
    pub referenced_groups: BTreeMap<String, String>,
    /// Managed prefix lists referenced by rules, resolved to CIDRs.
    pub prefix_lists: Vec<PrefixList>,
    /// The VPCs of the cluster instances.
    pub vpcs: Vec<Vpc>,
    /// Every EBS volume attached to a cluster instance.
    pub volumes: Vec<Volume>,
    /// Every KMS key a volume or snapshot names, resolved.
    pub keys: Vec<KmsKey>,
    /// The snapshots of the cluster's volumes (absent: not read, in
    /// evidence recorded before they were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<Vec<Snapshot>>,
    /// Why the snapshots could not be read (names the call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots_error: Option<String>,
    /// Account-level EBS encryption by default in this region.
    pub ebs_encryption_by_default: Option<bool>,
    /// Why `ebs_encryption_by_default` is unknown.
    pub ebs_encryption_by_default_error: Option<String>,
}

/// One EC2 instance of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec2Instance {
    /// `i-...`.
    pub id: String,
    /// `Name` tag.
    pub name: Option<String>,
    /// `running`, `stopped`, ...
    pub state: String,
    /// Every private IPv4 address (all network interfaces).
    pub private_ips: Vec<String>,
    /// Availability zone.
    pub availability_zone: Option<String>,
    /// VPC.
    pub vpc_id: Option<String>,
    /// Subnet.
    pub subnet_id: Option<String>,
    /// Security groups (instance and network interfaces), ids.
    pub security_groups: Vec<String>,
    /// Block devices: (device name, volume id).
    pub block_devices: Vec<(String, String)>,
    /// The root device's name (`/dev/xvda`): every other block device is
    /// a data volume (absent in evidence recorded before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_device: Option<String>,
}

/// A Redis node joined to its instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePlacement {
    /// The node as the cluster advertises it.
    pub node: String,
    /// The private IP it was looked up by.
    pub ip: String,
    /// How the node was joined to an instance.
    pub joined_by: JoinedBy,
    /// The instance with that private IP, if any.
    pub instance: Option<String>,
}

/// A security group and its ingress rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    /// `sg-...`.
    pub id: String,
    /// Group name.
    pub name: String,
    /// VPC.
    pub vpc_id: Option<String>,
    /// Ingress rules, one per (permission, source).
    pub ingress: Vec<IngressRule>,
}

/// One ingress permission for one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressRule {
    /// `tcp`, `udp`, `icmp`, `-1` (all traffic), or a protocol number.
    pub protocol: String,
    /// First port (absent for all traffic).
    pub from_port: Option<i32>,
    /// Last port.
    pub to_port: Option<i32>,
    /// The source.
    pub source: Source,
    /// The rule's description, if any.
    pub description: Option<String>,
}

/// Where ingress traffic may come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Source {
    /// An IPv4 CIDR.
    Cidr4(String),
    /// An IPv6 CIDR.
    Cidr6(String),
    /// A managed prefix list id.
    PrefixList(String),
    /// A security-group id (traffic from instances in that group).
    Group(String),
}

/// A managed prefix list's entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixList {
    /// `pl-...`.
    pub id: String,
    /// Its CIDRs.
    pub cidrs: Vec<String>,
    /// Why the entries could not be read.
    pub error: Option<String>,
}

/// A VPC and its CIDR blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vpc {
    /// `vpc-...`.
    pub id: String,
    /// IPv4 CIDR blocks.
    pub cidrs: Vec<String>,
    /// IPv6 CIDR blocks.
    pub ipv6_cidrs: Vec<String>,
}

/// An EBS volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// `vol-...`.
    pub id: String,
    /// Size, GiB.
    pub size_gib: Option<i32>,
    /// Encrypted at rest.
    pub encrypted: bool,
    /// The KMS key as EC2 reports it (id, ARN or alias).
    pub kms_key_id: Option<String>,
    /// Attachments: (instance id, device).
    pub attachments: Vec<(String, String)>,
    /// When the volume was created (absent in older evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<chrono::DateTime<chrono::Utc>>,
}

/// An EBS snapshot of a cluster volume (DescribeSnapshots, owner self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `snap-...`.
    pub id: String,
    /// The volume it was taken of.
    pub volume_id: String,
    /// `pending`, `completed`, `error`, ...
    pub state: String,
    /// When it was started (its point in time).
    pub started: Option<chrono::DateTime<chrono::Utc>>,
    /// Encrypted.
    pub encrypted: bool,
    /// Its KMS key as EC2 reports it.
    pub kms_key_id: Option<String>,
}

/// A KMS key as DescribeKey, GetKeyRotationStatus and ListAliases see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsKey {
    /// The reference a volume uses (id, ARN or alias).
    pub reference: String,
    /// Key id.
    pub key_id: Option<String>,
    /// Key ARN.
    pub arn: Option<String>,
    /// Aliases pointing at the key.
    pub aliases: Vec<String>,
    /// `CUSTOMER` or `AWS` as KMS reports it (emulators get this wrong).
    pub key_manager: Option<String>,
    /// `Enabled`, `Disabled`, `PendingDeletion`, ...
    pub key_state: Option<String>,
    /// `SYMMETRIC_DEFAULT`, `RSA_2048`, ...
    pub key_spec: Option<String>,
    /// `ENCRYPT_DECRYPT`, `SIGN_VERIFY`, ...
    pub key_usage: Option<String>,
    /// Automatic rotation.
    pub rotation_enabled: Option<bool>,
    /// Why some of the above is unknown (names the call).
    pub error: Option<String>,
}

impl KmsKey {
    /// True for an AWS-managed key (`alias/aws/...`): by its manager, its
    /// aliases, or the reference itself. Emulators report the default
    /// `alias/aws/ebs` key as `CUSTOMER`, so the alias decides too.
    pub(crate) fn aws_managed(&self) -> bool {
        self.key_manager.as_deref() == Some("AWS")
            || self.aliases.iter().any(|a| a.starts_with("alias/aws/"))
            || self.reference.starts_with("alias/aws/")
            || self.reference.contains(":alias/aws/")
    }

    /// `alias (key id)` for messages.
    pub(crate) fn label(&self) -> String {
        let id = self.key_id.as_deref().unwrap_or(&self.reference);
        match self.aliases.first() {
            Some(a) => format!("{a} ({id})"),
            None => id.to_string(),
        }
    }
}

impl AwsInventory {
    /// The instance with this id.
    pub(crate) fn instance(&self, id: &str) -> Option<&Ec2Instance> {
        self.instances.iter().find(|i| i.id == id)
    }

    /// The key record for a volume's key reference.
    pub(crate) fn key(&self, reference: &str) -> Option<&KmsKey> {
        self.keys.iter().find(|k| k.reference == reference)
    }

    /// Redis nodes on an instance.
    pub(crate) fn nodes_on(&self, instance: &str) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.instance.as_deref() == Some(instance))
            .map(|n| n.node.as_str())
            .collect()
    }

    /// The placement record of a node.
    pub(crate) fn placement(&self, node: &str) -> Option<&NodePlacement> {
        self.nodes.iter().find(|n| n.node == node)
    }
}

/// How a node was matched to an EC2 instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinedBy {
    /// Through the environment's explicit `aws.node_ip_map`.
    NodeIpMap,
    /// The node's own address, taken as the instance's private IP.
    Address,
}

impl JoinedBy {
    /// The name recorded in evidence.json.
    #[cfg(test)]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            JoinedBy::NodeIpMap => "node_ip_map",
            JoinedBy::Address => "address",
        }
    }
}
