//! What the cluster probes observe: each node's view of the cluster (CLUSTER
//! INFO, NODES, SHARDS) and the server's hash slots of sample keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One node's view of the cluster: CLUSTER INFO, NODES and SHARDS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNodeView {
    /// The node's own id (`myself` in CLUSTER NODES).
    pub myself: String,
    /// `redis_version` from INFO server (Valkey reports a fixed
    /// compatibility value here: its own version is in `server`).
    pub redis_version: Option<String>,
    /// The server software and its own version (INFO server); absent in
    /// evidence recorded before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerIdentity>,
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
    /// The name the audit reached the node by and the address it resolved
    /// to (absent in evidence recorded before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached_by: Option<Box<super::tls::Reach>>,
}

/// Which server software a node runs, where the two differ in behaviour
/// (ACL text, NOPERM wording, INFO field names such as Valkey's
/// `server_mode` for `redis_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerSoftware {
    /// Redis (no `server_name`, or `server_name:redis`).
    Redis,
    /// Valkey (`server_name:valkey`, `valkey_version`).
    Valkey,
    /// Another server speaking the protocol (its `server_name` is kept).
    Other,
}

/// A node's server software and its own version, from INFO server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServerIdentity {
    /// The software family.
    pub software: ServerSoftware,
    /// Its name as the server reports it (`server_name`), else `redis`.
    pub name: String,
    /// Its own version: `valkey_version` for Valkey, `redis_version` for
    /// Redis (Valkey's `redis_version` is a fixed compatibility value).
    pub version: String,
    /// `redis_build_id` and `redis_git_sha1`, `os`: what tells two builds
    /// of one version apart (a distribution's patched build, say).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build: BTreeMap<String, String>,
}

impl ServerIdentity {
    /// The identity INFO server's fields give; `None` without a version.
    pub fn from_info(info: &BTreeMap<String, String>) -> Option<ServerIdentity> {
        let named = info
            .get("server_name")
            .map(|n| n.trim().to_ascii_lowercase());
        let software = match named.as_deref() {
            Some("valkey") => ServerSoftware::Valkey,
            None if info.contains_key("valkey_version") => ServerSoftware::Valkey,
            None | Some("redis") => ServerSoftware::Redis,
            Some(_) => ServerSoftware::Other,
        };
        let own = match software {
            ServerSoftware::Valkey => "valkey_version",
            _ => "redis_version",
        };
        let version = info
            .get(own)
            .or_else(|| {
                named
                    .as_ref()
                    .and_then(|n| info.get(&format!("{n}_version")))
            })
            .or_else(|| info.get("redis_version"))?
            .clone();
        let build = ["redis_build_id", "redis_git_sha1", "os"]
            .iter()
            .filter_map(|k| info.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        Some(ServerIdentity {
            software,
            name: named.unwrap_or_else(|| "redis".into()),
            version,
            build,
        })
    }
}

impl std::fmt::Display for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, self.version)
    }
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
    /// Preferred endpoint (`cluster-preferred-endpoint-type`): the IP by
    /// default, the announced hostname where the cluster prefers
    /// hostnames, `?` where it hands out none.
    pub endpoint: String,
    /// The announced hostname (`cluster-announce-hostname`), where set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// IP address.
    pub ip: String,
    /// Plaintext port, when one is open.
    pub port: Option<u16>,
    /// TLS port.
    pub tls_port: Option<u16>,
    /// `master` or `replica`.
    pub role: ShardRole,
    /// `online`, `failed` or `loading`.
    pub health: ShardHealth,
}

server_words! {
    /// A node's role in CLUSTER SHARDS.
    ShardRole {
        /// `master`.
        Master = "master",
        /// `replica`.
        Replica = "replica",
    }
}

server_words! {
    /// A node's health in CLUSTER SHARDS.
    ShardHealth {
        /// `online`: serving.
        Online = "online",
        /// `failed`: failed over or unreachable.
        Failed = "failed",
        /// `loading`: loading or syncing its data set.
        Loading = "loading",
    }
}

impl ShardNode {
    /// The node's address as the audit keys it (its subject): IP and TLS
    /// port (else port), as CLUSTER NODES gives it.
    pub(crate) fn client_addr(&self) -> Option<String> {
        let port = self.tls_port.or(self.port)?;
        let host = if self.ip.is_empty() {
            &self.endpoint
        } else {
            &self.ip
        };
        Some(if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        })
    }
}

impl ShardNode {
    /// The DNS name clients are told to connect by: the preferred
    /// endpoint when it is a name (the cluster prefers hostnames), else
    /// none (clients get the IP, or `?` and keep the address they used).
    pub(crate) fn announced_name(&self) -> Option<&str> {
        let e = self.endpoint.as_str();
        (!e.is_empty() && e != "?" && e.parse::<std::net::IpAddr>().is_err()).then_some(e)
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
/// key, mod 16384): CRC16-CCITT (XMODEM: polynomial 0x1021, initial value
/// 0, no reflection) of the key, or of its hash tag (what lies between the
/// first `{` and the next `}`, when that is not empty).
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    let mut crc: u16 = 0;
    for &b in hashed {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc & 0x3fff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_slots_are_the_redis_crates_and_the_specs() {
        use redis::cluster_routing::Slot;
        // The cluster specification's check value: CRC16 of "123456789" is
        // 0x31C3.
        assert_eq!(key_slot(b"123456789"), 0x31c3 & 0x3fff);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        for k in [
            &b"session:7f3a9c"[..],
            b"",
            b"{",
            b"}{",
            b"a{b}c",
            b"session:{t1-3}:000000000042",
            b"\xff\x00\x80",
        ] {
            let n = key_slot(k);
            assert_eq!(Slot::new(n), Some(Slot::for_key(k)), "{k:?}");
        }
    }

    fn info(text: &str) -> BTreeMap<String, String> {
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn valkey_is_named_by_its_own_version_not_its_compatibility_field() {
        // INFO server of Debian 13's valkey-server 8.1.1 (abridged).
        let v = ServerIdentity::from_info(&info(
            "redis_version:7.2.4\nserver_name:valkey\nvalkey_version:8.1.1\nvalkey_release_stage:ga\n\
             redis_git_sha1:00000000\nserver_mode:cluster\nos:Linux 6.1.0 x86_64",
        ))
        .unwrap();
        assert_eq!(v.software, ServerSoftware::Valkey);
        assert_eq!(v.to_string(), "valkey 8.1.1");
        assert_eq!(v.build["os"], "Linux 6.1.0 x86_64");
        let r = ServerIdentity::from_info(&info(
            "redis_version:8.0.2\nredis_git_sha1:00000000\nredis_build_id:5c5b3b1a7c0a7b5e\nredis_mode:cluster",
        ))
        .unwrap();
        assert_eq!(
            (r.software, r.to_string()),
            (ServerSoftware::Redis, "redis 8.0.2".into())
        );
        let o =
            ServerIdentity::from_info(&info("redis_version:7.2.0\nserver_name:keydb-ish")).unwrap();
        assert_eq!(
            (o.software, o.to_string()),
            (ServerSoftware::Other, "keydb-ish 7.2.0".into())
        );
        assert_eq!(ServerIdentity::from_info(&info("server_name:valkey")), None);
    }
}
