//! What the cluster probes observe: each node's view of the cluster (CLUSTER
//! INFO, NODES, SHARDS) and the server's hash slots of sample keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    /// The node's own replication and loading state, from its INFO
    /// replication and INFO persistence: `role`, `master_link_status`,
    /// `master_sync_in_progress`, `loading` (where the node answered).
    /// Peers' views of a replica lag behind by gossip; this does not.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub own_state: BTreeMap<String, String>,
}

/// The `own_state` fields kept from INFO replication / persistence.
pub(crate) const OWN_STATE_FIELDS: [&str; 4] = [
    "role",
    "master_link_status",
    "master_sync_in_progress",
    "loading",
];

impl ClusterNodeView {
    /// True when the node's own INFO says it is a replica whose link to
    /// its master is up, not syncing and not loading.
    pub(crate) fn own_replica_in_sync(&self) -> bool {
        let f = |k: &str| self.own_state.get(k).map(String::as_str);
        f("role") == Some("slave")
            && f("master_link_status") == Some("up")
            && f("master_sync_in_progress") == Some("0")
            && f("loading") == Some("0")
    }

    /// This node's own entry.
    pub(crate) fn me(&self) -> Option<&NodeEntry> {
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
    pub(crate) fn client_addr(&self) -> Option<String> {
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

/// The client-side hash slot of `key` as redis-rs computes it
/// ([`redis::cluster_routing::Slot::for_key`], CRC16 of the hash tag or the
/// key, mod 16384). The crate exposes a slot's number only by comparison,
/// so the number is found among the 16384 valid slots.
pub fn key_slot(key: &[u8]) -> u16 {
    use redis::cluster_routing::Slot;
    let slot = Slot::for_key(key);
    (0..16384u16)
        .find(|&n| Slot::new(n) == Some(slot))
        .unwrap_or_default()
}
