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
    /// One node's ACL users, ACL LOG summary, DRYRUN matrix and live auth.
    AclNode(AclView),
    /// The COMMAND table (flags, ACL categories) the DRYRUN sweep used.
    CommandTable(CommandTable),
    /// One TLS endpoint (client or bus port of a node).
    TlsEndpoint(Box<TlsEndpointView>),
    /// One node's TLS-related configuration and plaintext listeners.
    TlsConfig(TlsConfigView),
    /// Session latency on one master.
    Latency(Box<crate::probes::latency::LatencyView>),
    /// One node's persistence, hardening and replication settings.
    DataNode(crate::probes::data::DataNodeView),
    /// One master's session-key TTL scan.
    SessionScan(crate::probes::data::SessionScanView),
    /// One node's exporter scrape.
    Exporter(crate::probes::data::ExporterView),
    /// The AWS estate: instances, security groups, volumes, keys.
    Aws(Box<crate::probes::aws::AwsInventory>),
}

/// What a TLS endpoint (a node's client or bus port) negotiates and serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsEndpointView {
    /// The node (advertised client address).
    pub node: String,
    /// `client` or `bus`.
    pub port_kind: String,
    /// The address probed.
    pub address: String,
    /// One hand-built ClientHello per version.
    pub versions: Vec<VersionResult>,
    /// A full TLS 1.3 handshake presenting the client certificate.
    pub handshake: HandshakeResult,
    /// The same without a client certificate.
    pub without_client_cert: HandshakeResult,
    /// The chain the server sent, leaf first.
    pub chain: Vec<CertInfo>,
    /// Verification against the configured CA and the node's name, now:
    /// `ok` or the reason.
    pub verification: String,
    /// Verification of the chain alone, at a time inside the leaf's
    /// validity (so expiry and name are judged separately): `ok` or why.
    pub chain_verification: String,
}

/// One offered protocol version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionResult {
    /// `TLSv1.0` ... `TLSv1.3`.
    pub version: String,
    /// `accepted`, `refused` or `undetermined`.
    pub outcome: String,
    /// What decided it: the ServerHello, the alert, EOF, a timeout.
    pub detail: String,
}

/// A full handshake attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeResult {
    /// Handshake done and one round trip without an alert.
    pub completed: bool,
    /// Negotiated protocol.
    pub protocol: Option<String>,
    /// Negotiated cipher suite.
    pub cipher_suite: Option<String>,
    /// What happened after the handshake (reply to PING, or silence on
    /// the bus), or the error.
    pub detail: String,
}

/// Facts of one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial (hex).
    pub serial: String,
    /// SHA-256 fingerprint of the DER.
    pub sha256: String,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// `RSA`, `EC`, ...
    pub key_type: String,
    /// Key size in bits (RSA: from the modulus).
    pub key_bits: u32,
    /// Signature algorithm.
    pub signature_algorithm: String,
    /// IP SANs.
    pub san_ip: Vec<String>,
    /// DNS SANs.
    pub san_dns: Vec<String>,
    /// EKU serverAuth.
    pub eku_server_auth: bool,
    /// EKU clientAuth.
    pub eku_client_auth: bool,
    /// CA certificate.
    pub is_ca: bool,
    /// Subject equals issuer.
    pub self_signed: bool,
}

/// One node's TLS settings (CONFIG GET) and plaintext listener probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsConfigView {
    /// port, tls-port, tls-protocols, tls-ciphersuites, tls-ciphers,
    /// tls-cluster, tls-replication, tls-auth-clients.
    pub config: BTreeMap<String, String>,
    /// Ports tried for a plaintext Redis.
    pub plaintext: Vec<PlaintextProbe>,
}

/// A TCP connect + inline PING on one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaintextProbe {
    /// Port tried.
    pub port: u16,
    /// Why it was tried (`CONFIG GET port`, `policy`).
    pub source: String,
    /// A Redis answered in plaintext.
    pub redis_answered: bool,
    /// What happened.
    pub detail: String,
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

/// One node's access-control state, observed without changing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclView {
    /// `ACL USERS` with `ACL GETUSER` of each.
    pub users: Vec<AclUser>,
    /// `ACL LOG` summary (read before this run's own auth attempts).
    pub log: AclLogSummary,
    /// DRYRUN sweep: user -> command -> verdicts, one letter per sample key
    /// tried ([`DRYRUN_KEYS`]) or one letter for commands without keys:
    /// `A` allowed, `C` command denied, `K` key denied, `H` channel denied,
    /// `E` error (see `dryrun_errors`).
    pub dryrun: BTreeMap<String, BTreeMap<String, String>>,
    /// DRYRUN replies that were neither OK nor a permission denial.
    pub dryrun_errors: Vec<DryRunError>,
    /// Number of ACL DRYRUN calls made on this node.
    pub dryrun_calls: usize,
    /// The policy's explicit cases.
    pub cases: Vec<CaseResult>,
    /// Live authentication attempts.
    pub auth: AuthObservation,
}

/// The sample keys the DRYRUN sweep tries for commands that take keys: one
/// in the session namespace, one outside every pattern of the seed policy.
pub const DRYRUN_KEYS: [&str; 2] = ["session:epic-audit-dryrun", "epic-audit-dryrun:outside"];

/// One ACL user as `ACL GETUSER` and `ACL LIST` show it. Password hashes are
/// never recorded: only how many there are and salted fingerprints that are
/// comparable within one run (the salt is not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclUser {
    /// User name.
    pub name: String,
    /// Flags: on/off, nopass, sanitize-payload, ...
    pub flags: Vec<String>,
    /// Number of passwords.
    pub password_count: usize,
    /// Salted fingerprints of the password hashes (this run only).
    pub password_fingerprints: Vec<String>,
    /// Command rules as GETUSER prints them.
    pub commands: String,
    /// Key patterns.
    pub keys: String,
    /// Channel patterns.
    pub channels: String,
    /// Selectors, if any.
    pub selectors: Vec<String>,
    /// The user's `ACL LIST` line with hashes replaced by fingerprints.
    pub rule: String,
}

impl AclUser {
    /// True when the user has `flag`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// Counts of ACL LOG entries; never the objects (a denied key may be a
/// session id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclLogSummary {
    /// Entries returned (ACL LOG keeps the newest `acllog-max-len`).
    pub entries: usize,
    /// Summed `count` by reason and user.
    pub by_reason_user: Vec<AclLogCount>,
}

/// One bucket of the ACL LOG summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclLogCount {
    /// `auth`, `command`, `key` or `channel`.
    pub reason: String,
    /// The user the entry names.
    pub username: String,
    /// Sum of the entries' `count`.
    pub count: u64,
    /// Age of the newest of these entries, in seconds.
    pub newest_age_seconds: u64,
}

/// A DRYRUN reply that decided nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRunError {
    /// User.
    pub user: String,
    /// Command (`parent|sub` for subcommands).
    pub command: String,
    /// The reply.
    pub reply: String,
}

/// A policy case and what DRYRUN said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResult {
    /// User.
    pub user: String,
    /// The command line as given in the policy.
    pub command: String,
    /// `A`, `C`, `K`, `H` or `E` (as in the sweep).
    pub verdict: String,
    /// DRYRUN's reply.
    pub reply: String,
}

/// Live authentication on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthObservation {
    /// Reply to PING on a connection that never authenticated.
    pub unauthenticated_ping: String,
    /// Reply to `AUTH default <random>` (adds an `auth` entry to ACL LOG).
    pub default_wrong_password: String,
    /// Each configured user: did AUTH succeed, and what ACL WHOAMI said.
    pub users: Vec<UserAuth>,
}

/// One configured user's live login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAuth {
    /// The user.
    pub user: String,
    /// AUTH succeeded.
    pub authenticated: bool,
    /// AUTH's error, if any.
    pub error: Option<String>,
    /// ACL WHOAMI after AUTH.
    pub whoami: Option<String>,
}

/// The COMMAND table: what each command is (flags, ACL categories).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandTable {
    /// Node it was read from.
    pub node: String,
    /// Commands, subcommands as `parent|sub`.
    pub commands: Vec<CommandInfo>,
}

/// One command of the COMMAND table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandInfo {
    /// Lower-case name, `parent|sub` for subcommands.
    pub name: String,
    /// Arity (negative: at least).
    pub arity: i64,
    /// Flags (write, readonly, admin, ...).
    pub flags: Vec<String>,
    /// ACL categories (`@read`, ...).
    pub categories: Vec<String>,
    /// First key position (0: none or movable).
    pub first_key: i64,
    /// Last key position (negative: from the end).
    pub last_key: i64,
    /// Step between keys.
    pub step: i64,
    /// Has subcommands (the sweep tests those instead).
    pub container: bool,
}

impl EvidenceSet {
    /// Items of one probe.
    pub fn of_probe<'a>(&'a self, probe: &'a str) -> impl Iterator<Item = &'a Evidence> + 'a {
        self.items.iter().filter(move |e| e.probe == probe)
    }

    /// Every node's cluster view (or why there is none), by subject.
    pub fn cluster_views(&self) -> Vec<(&str, Result<&ClusterNodeView, &ProbeFailure>)> {
        self.views(crate::probes::cluster::PROBE, |o| match o {
            Observation::ClusterNode(v) => Some(v),
            _ => None,
        })
    }

    /// Every node's ACL view (or why there is none), by subject.
    pub fn acl_views(&self) -> Vec<(&str, Result<&AclView, &ProbeFailure>)> {
        self.views(crate::probes::acl::PROBE, |o| match o {
            Observation::AclNode(v) => Some(v),
            _ => None,
        })
    }

    /// Every TLS endpoint view (or why there is none), by subject.
    pub fn tls_endpoints(&self) -> Vec<(&str, Result<&TlsEndpointView, &ProbeFailure>)> {
        self.views(crate::probes::tls::ENDPOINT_PROBE, |o| match o {
            Observation::TlsEndpoint(v) => Some(v.as_ref()),
            _ => None,
        })
    }

    /// Every node's TLS configuration (or why there is none), by subject.
    pub fn tls_configs(&self) -> Vec<(&str, Result<&TlsConfigView, &ProbeFailure>)> {
        self.views(crate::probes::tls::CONFIG_PROBE, |o| match o {
            Observation::TlsConfig(v) => Some(v),
            _ => None,
        })
    }

    /// Every master's latency view (or why there is none), by subject.
    pub fn latency_views(
        &self,
    ) -> Vec<(
        &str,
        Result<&crate::probes::latency::LatencyView, &ProbeFailure>,
    )> {
        self.views(crate::probes::latency::PROBE, |o| match o {
            Observation::Latency(v) => Some(v.as_ref()),
            _ => None,
        })
    }

    /// The AWS inventory (or why there is none), by subject (`aws:<region>`).
    pub fn aws_views(
        &self,
    ) -> Vec<(
        &str,
        Result<&crate::probes::aws::AwsInventory, &ProbeFailure>,
    )> {
        self.views(crate::probes::aws::PROBE, |o| match o {
            Observation::Aws(v) => Some(v.as_ref()),
            _ => None,
        })
    }

    /// Items of `probe` as (subject, observation or failure), picking the
    /// observation with `pick`.
    pub fn views<'a, T: 'a>(
        &'a self,
        probe: &'a str,
        pick: impl Fn(&'a Observation) -> Option<&'a T>,
    ) -> Vec<(&'a str, Result<&'a T, &'a ProbeFailure>)> {
        self.of_probe(probe)
            .filter_map(|e| match &e.result {
                Observed::Observation(o) => pick(o).map(|v| (e.subject.as_str(), Ok(v))),
                Observed::Failure(f) => Some((e.subject.as_str(), Err(f))),
            })
            .collect()
    }

    /// The COMMAND table, or why there is none.
    pub fn command_table(&self) -> Option<Result<&CommandTable, &ProbeFailure>> {
        self.of_probe(crate::probes::acl::COMMANDS_PROBE)
            .find_map(|e| match &e.result {
                Observed::Observation(Observation::CommandTable(t)) => Some(Ok(t)),
                Observed::Failure(f) => Some(Err(f)),
                _ => None,
            })
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
