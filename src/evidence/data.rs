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
}

fn default_cap_per_master() -> u64 {
    100_000
}

fn default_scan_count() -> u64 {
    1000
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

impl DataNodeView {
    /// The node's replication role (INFO replication's `role`); `Other("?")`
    /// when the node did not report one.
    pub fn replication_role(&self) -> ReplicationRole {
        self.replication
            .get("role")
            .cloned()
            .unwrap_or_else(|| "?".into())
            .into()
    }
}
