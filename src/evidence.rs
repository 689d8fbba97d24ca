//! What the probes saw: typed, serialisable, with subject, time and method.
//!
//! An [`EvidenceSet`] is the complete record of one run's observations. It is
//! written as `evidence.json` and can be judged again offline with
//! `epic-audit evaluate`, so everything a check needs must be in here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the evidence file format; bumped on incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// All observations of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvidenceSet {
    /// File format version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Version of epic-audit that observed this.
    pub tool_version: String,
    /// Environment name from the config.
    pub environment: String,
    /// Run id (UTC timestamp) of the run that observed this.
    pub run_id: String,
    /// When probing started.
    pub started_at: DateTime<Utc>,
    /// When probing ended.
    pub finished_at: DateTime<Utc>,
    /// Seed addresses from the config.
    pub seeds: Vec<String>,
    /// Every node the run probed (seeds plus discovered), as advertised.
    pub targets: Vec<String>,
    /// The observations.
    pub items: Vec<Evidence>,
}

/// One observation (or one failure to observe) of one subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    /// Probe that produced it (`cluster`, ...).
    pub probe: String,
    /// What was observed: a node `ip:port`, or `cluster` for cluster-wide.
    pub subject: String,
    /// How: the commands sent and the identity used.
    pub method: String,
    /// When the observation finished.
    pub observed_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: u64,
    /// What was seen, or why nothing could be.
    pub result: Observed,
}

/// Either an observation or the reason there is none.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observed {
    /// The probe saw this.
    Observation(Observation),
    /// The probe could not observe; every check needing it is `error`.
    Failure(ProbeFailure),
}

/// Why a probe has no observation for a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeFailure {
    /// Stable kind: `timeout`, `connect`, `tls`, `auth`, `server_error`,
    /// `io`, `protocol`, `unexpected_reply`, `deadline`.
    pub kind: String,
    /// Human message naming the node and operation (never a secret).
    pub message: String,
}

impl From<crate::resp::ConnError> for ProbeFailure {
    fn from(e: crate::resp::ConnError) -> Self {
        ProbeFailure {
            kind: e.kind().to_string(),
            message: e.to_string(),
        }
    }
}

/// The typed observations, one variant per kind of thing probed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Observation {
    /// One node's view of the cluster.
    ClusterNode(ClusterNodeView),
    /// Server-computed hash slots of sample keys.
    KeySlots(KeySlotSamples),
}

/// One node's view of the cluster: CLUSTER INFO, NODES and SHARDS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNodeView {
    /// The node's own id (`myself` in CLUSTER NODES).
    pub myself: String,
    /// `redis_version` from INFO server.
    pub redis_version: Option<String>,
    /// CLUSTER INFO fields.
    pub info: BTreeMap<String, String>,
    /// CLUSTER NODES, parsed.
    pub nodes: Vec<NodeEntry>,
    /// CLUSTER SHARDS, parsed.
    pub shards: Vec<Shard>,
}

impl ClusterNodeView {
    /// This node's own entry.
    pub fn me(&self) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.id == self.myself)
    }
}

/// One line of CLUSTER NODES.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// 40-hex node id.
    pub id: String,
    /// Advertised `ip:port` (the TLS port when `tls-cluster yes`).
    pub addr: String,
    /// Cluster bus port.
    pub bus_port: Option<u16>,
    /// Announced hostname, if any.
    pub hostname: Option<String>,
    /// Flags: myself, master, slave, fail?, fail, handshake, noaddr, ...
    pub flags: Vec<String>,
    /// Master id for replicas.
    pub master: Option<String>,
    /// `connected` or `disconnected`.
    pub link_state: String,
    /// Config epoch.
    pub config_epoch: u64,
    /// Slots served (masters).
    pub slots: Vec<SlotRange>,
    /// Slots this node is migrating away (only reported for `myself`).
    pub migrating: Vec<OpenSlot>,
    /// Slots this node is importing (only reported for `myself`).
    pub importing: Vec<OpenSlot>,
}

impl NodeEntry {
    /// True when the node has `flag`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
    /// True for masters.
    pub fn is_master(&self) -> bool {
        self.has_flag("master")
    }
}

/// An inclusive slot range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SlotRange {
    /// First slot.
    pub start: u16,
    /// Last slot (inclusive).
    pub end: u16,
}

impl std::fmt::Display for SlotRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// A slot in migration, with the peer node id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSlot {
    /// The slot.
    pub slot: u16,
    /// The other node of the migration.
    pub node: String,
}

/// One shard of CLUSTER SHARDS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Slot ranges of the shard.
    pub slots: Vec<SlotRange>,
    /// Its nodes.
    pub nodes: Vec<ShardNode>,
}

/// One node inside a CLUSTER SHARDS shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardNode {
    /// Node id.
    pub id: String,
    /// Preferred endpoint (IP by default).
    pub endpoint: String,
    /// IP address.
    pub ip: String,
    /// Plaintext port, when one is open.
    pub port: Option<u16>,
    /// TLS port.
    pub tls_port: Option<u16>,
    /// `master` or `replica`.
    pub role: String,
    /// `online`, `failed` or `loading`.
    pub health: String,
}

impl ShardNode {
    /// The address clients should use: endpoint and TLS port (else port).
    pub fn client_addr(&self) -> Option<String> {
        let port = self.tls_port.or(self.port)?;
        let host = if self.endpoint.is_empty() || self.endpoint == "?" {
            &self.ip
        } else {
            &self.endpoint
        };
        Some(if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        })
    }
}

/// CLUSTER KEYSLOT answers for sample keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySlotSamples {
    /// The node that answered.
    pub node: String,
    /// Key and the slot the server computed.
    pub samples: Vec<KeySlotSample>,
}

/// One sample key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySlotSample {
    /// A synthetic key (never a real session key).
    pub key: String,
    /// `CLUSTER KEYSLOT key`.
    pub server_slot: u16,
}

impl EvidenceSet {
    /// Items of one probe.
    pub fn of_probe<'a>(&'a self, probe: &'a str) -> impl Iterator<Item = &'a Evidence> + 'a {
        self.items.iter().filter(move |e| e.probe == probe)
    }

    /// Every node's cluster view (or why there is none), by subject.
    pub fn cluster_views(&self) -> Vec<(&str, Result<&ClusterNodeView, &ProbeFailure>)> {
        self.of_probe(crate::probes::cluster::PROBE)
            .filter_map(|e| match &e.result {
                Observed::Observation(Observation::ClusterNode(v)) => {
                    Some((e.subject.as_str(), Ok(v)))
                }
                Observed::Failure(f) => Some((e.subject.as_str(), Err(f))),
                _ => None,
            })
            .collect()
    }

    /// The key-slot samples, or why there are none.
    pub fn key_slots(&self) -> Option<Result<&KeySlotSamples, &ProbeFailure>> {
        self.of_probe(crate::probes::cluster::KEYSLOT_PROBE)
            .find_map(|e| match &e.result {
                Observed::Observation(Observation::KeySlots(k)) => Some(Ok(k)),
                Observed::Failure(f) => Some(Err(f)),
                _ => None,
            })
    }
}
