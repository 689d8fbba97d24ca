//! What the data-protection and monitoring probes observe: persistence and
//! hardening settings, replication state, the session-key TTL scan (key names
//! only as keyed hashes) and exporter scrapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One node's data-protection settings and replication state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataNodeView {
    /// CONFIG GET of [`CONFIG_KEYS`].
    pub config: BTreeMap<String, String>,
    /// INFO persistence (the aof_* fields and rdb_last_bgsave_status).
    pub persistence: BTreeMap<String, String>,
    /// INFO replication (role, connected_slaves, slaveN, master_link_status).
    pub replication: BTreeMap<String, String>,
    /// The loaded modules (INFO modules); absent in evidence recorded
    /// before they were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules: Option<Vec<ModuleInfo>>,
    /// Why CONFIG GET gave no settings (CONFIG renamed or disabled, or an
    /// unexpected reply), when it did not: the INFO sections were still
    /// read, and every check that needs a setting says this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_unread: Option<String>,
    /// The settings in `config` that were taken from INFO because CONFIG
    /// GET gave none (setting → `INFO <section> <field>:<value>`). Every
    /// other setting in `config` came from CONFIG GET.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub from_info: BTreeMap<String, String>,
}

/// One loaded module, as INFO modules lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    /// `name=`.
    pub name: String,
    /// `ver=`: the module's version as an integer (e.g. `80002` for 8.0.2,
    /// `1` for Redis 8's built-in vectorset).
    pub version: String,
}

/// Session-scan settings, from the TTL check's parameters. The pattern and
/// the TTL limit are the policy's to say: nothing is assumed about a
/// cluster's key namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionScanSettings {
    /// SCAN MATCH pattern of session keys.
    pub pattern: String,
    /// Longest allowed TTL (automatic logoff), seconds.
    pub max_ttl_s: i64,
    /// Keys examined per master at most (then the scan is a sample).
    #[serde(default = "default_cap_per_master")]
    pub cap_per_master: u64,
    /// SCAN COUNT per call.
    #[serde(default = "default_scan_count")]
    pub scan_count: u64,
    /// Keys examined per second per master at most: the scan waits between
    /// pages so that it never exceeds this rate on a node.
    #[serde(default = "default_max_keys_per_s")]
    pub max_keys_per_s: u64,
    /// What DATA-005 says about keys that INFO keyspace counts as having
    /// no TTL but the scan did not find among the session keys: keys
    /// outside the pattern, or beyond the sample. Which pattern they match
    /// cannot be told without reading them.
    #[serde(default)]
    pub other_keys_without_ttl: Unattributed,
}

/// The outcome DATA-005 gives keys without a TTL that the scan could not
/// attribute (`other_keys_without_ttl`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unattributed {
    /// A finding: on a store that holds sessions, a key that never
    /// expires is presumed to be one until shown otherwise.
    #[default]
    Fail,
    /// A warning: the cluster also holds other data that never expires.
    Warn,
}

fn default_max_keys_per_s() -> u64 {
    20_000
}

/// One database's line of INFO keyspace (`db0:keys=N,expires=M,...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbKeys {
    /// The database number.
    pub db: u32,
    /// Keys in it (`keys=`).
    pub keys: u64,
    /// Keys with an expiry (`expires=`).
    pub expires: u64,
}

impl DbKeys {
    /// Keys without any TTL.
    pub fn without_ttl(&self) -> u64 {
        self.keys.saturating_sub(self.expires)
    }
}

/// INFO keyspace of one master, read just before and just after the
/// session scan: the exact count of keys without a TTL, whatever their
/// pattern, at no cost to the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyspaceView {
    /// INFO replication's `role` at the first read (counts of a node that
    /// is no longer a master are not the ones its sessions live in).
    pub role: ReplicationRole,
    /// The databases before the scan (a database without keys is not
    /// listed by the server).
    pub before: Vec<DbKeys>,
    /// The databases after the scan.
    pub after: Vec<DbKeys>,
}

impl KeyspaceView {
    /// Keys in all databases, as last read.
    pub fn keys(&self) -> u64 {
        self.after.iter().map(|d| d.keys).sum()
    }

    /// Keys without a TTL: per database the lower of the two reads, so
    /// that a key caught between its write and its EXPIRE (a session
    /// manager's HSET then EXPIRE) is not counted; a key that never
    /// expires is in both.
    pub fn without_ttl(&self) -> u64 {
        let of =
            |v: &[DbKeys], db: u32| v.iter().find(|d| d.db == db).map_or(0, DbKeys::without_ttl);
        self.before
            .iter()
            .map(|d| d.without_ttl().min(of(&self.after, d.db)))
            .sum()
    }

    /// The databases other than 0 that hold keys without a TTL (the scan
    /// reads database 0 only, the one a cluster serves).
    pub fn other_dbs_without_ttl(&self) -> Vec<u32> {
        self.after
            .iter()
            .filter(|d| d.db != 0 && d.without_ttl() > 0)
            .map(|d| d.db)
            .collect()
    }
}

/// What one master's session scan cost it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanCost {
    /// SCAN calls.
    pub pages: u64,
    /// Commands sent (SCAN, TTL, TYPE and the INFO reads).
    pub commands: u64,
    /// Wall time from the first to the last reply, milliseconds.
    pub elapsed_ms: u64,
    /// Time spent waiting to stay within `max_keys_per_s`, milliseconds.
    pub paced_ms: u64,
}

fn default_cap_per_master() -> u64 {
    100_000
}

fn default_scan_count() -> u64 {
    100
}

/// What the session scan found on one master. Key names appear only as
/// keyed hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionScanView {
    /// The settings used.
    pub settings: SessionScanSettings,
    /// Keys examined (TTL and TYPE read; keys that expired between SCAN
    /// and TTL and keys whose replies were errors are not counted).
    pub scanned: u64,
    /// Whether the SCAN reached the end (false: a sample up to the cap).
    pub complete: bool,
    /// Keys without a TTL (keyed hashes).
    pub no_ttl: Vec<String>,
    /// Keys whose TTL exceeds the maximum (keyed hash, TTL).
    pub ttl_too_long: Vec<(String, i64)>,
    /// Keys that are not hashes (keyed hash, type).
    pub not_hash: Vec<(String, String)>,
    /// Longest TTL seen.
    pub longest_ttl_s: Option<i64>,
    /// How the keyed hashes are made.
    pub key_hash: String,
    /// Keys whose TTL or TYPE was answered with an error (keyed hash, the
    /// error reply, e.g. `NOPERM ...` or `MOVED ...`): not judged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<(String, String)>,
    /// Whether the scan stopped before the cap to end within the probe
    /// deadline (`probe_ms`; at `max_keys_per_s` the cap would outlast it):
    /// then it is a sample, as when the cap is reached.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped_early: bool,
    /// INFO keyspace around the scan (absent in evidence recorded before
    /// it was read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyspace: Option<KeyspaceView>,
    /// What the scan cost the node (absent in older evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<ScanCost>,
}

/// One exporter scrape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExporterView {
    /// The URL scraped.
    pub url: String,
    /// Whether /metrics answered 200 and parsed.
    pub reachable: bool,
    /// Why not, if not.
    pub error: Option<String>,
    /// redis_up, redis_cluster_state, redis_exporter_last_scrape_error, ...
    pub metrics: BTreeMap<String, f64>,
    /// What the rest of /metrics exposes (absent in evidence from before
    /// it was recorded, and when /metrics could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaks: Option<super::monitoring::ExporterLeaks>,
}

server_words! {
    /// A node's replication role, as INFO replication's `role` says it.
    ReplicationRole {
        /// `master`.
        Master = "master",
        /// `slave`: a replica.
        Replica = "slave",
    }
}

impl ReplicationRole {
    /// The role INFO replication reports in `info` (its fields); `Other("?")`
    /// when it reports none.
    pub fn of_info(info: &BTreeMap<String, String>) -> ReplicationRole {
        info.get("role")
            .cloned()
            .unwrap_or_else(|| "?".into())
            .into()
    }
}

impl DataNodeView {
    /// The node's replication role (INFO replication's `role`); `Other("?")`
    /// when the node did not report one.
    pub fn replication_role(&self) -> ReplicationRole {
        ReplicationRole::of_info(&self.replication)
    }
}
