//! The evidence set of one run and its items: what was observed, of which
//! subject, by which probe, how and when, or why nothing could be; with the
//! typed views the checks read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::acl::{AclView, CommandTable};
use super::aws::AwsInventory;
use super::cluster::{ClusterNodeView, KeySlotSamples};
use super::data::{DataNodeView, ExporterView, SessionScanView};
use super::latency::LatencyView;
use super::monitoring::PrometheusView;
use super::tls::{TlsConfigView, TlsEndpointView};

/// Version of the evidence file format; bumped on incompatible change.
pub(crate) const SCHEMA_VERSION: u32 = 1;

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
    /// How the audit connected to each node (`ip:port`): its TLS
    /// handshakes, full or resumed, over every connection the probes made
    /// with the audit's client certificate (the transport probe's version
    /// and no-certificate handshakes are in its own items). Absent in
    /// evidence from before it was recorded.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tls_handshakes: std::collections::BTreeMap<String, Handshakes>,
}

/// How many TLS handshakes with one node were full (the server signed
/// with its certificate key) and how many resumed an earlier session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handshakes {
    /// Full handshakes.
    pub full: u32,
    /// Resumed (TLS 1.3 PSK) handshakes.
    pub resumed: u32,
}

/// One observation (or one failure to observe) of one subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    /// Probe that produced it (`cluster`, ...).
    pub probe: ProbeId,
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

impl Evidence {
    /// An item recording that `subject` could not be observed, and why.
    pub(crate) fn not_observed(
        probe: ProbeId,
        subject: impl Into<String>,
        method: impl Into<String>,
        failure: ProbeFailure,
    ) -> Evidence {
        Evidence {
            probe,
            subject: subject.into(),
            method: method.into(),
            observed_at: Utc::now(),
            duration_ms: 0,
            result: Observed::Failure(failure),
        }
    }
}

/// Which probe made an observation: the one name shared by the probes that
/// record it, the checks that declare what they read, and evidence.json
/// (where it is the string of [`ProbeId::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProbeId {
    /// Each node's view of the cluster (discovery).
    #[serde(rename = "cluster")]
    Cluster,
    /// Server-computed hash slots of sample keys.
    #[serde(rename = "cluster.keyslot")]
    KeySlots,
    /// Each node's ACL users, log, DRYRUN matrix and live logins.
    #[serde(rename = "acl")]
    Acl,
    /// The COMMAND table the DRYRUN sweep used.
    #[serde(rename = "acl.commands")]
    AclCommands,
    /// Each TLS endpoint (client and bus port of every node).
    #[serde(rename = "tls.endpoint")]
    TlsEndpoint,
    /// Each node's TLS settings and plaintext listeners.
    #[serde(rename = "tls.config")]
    TlsConfig,
    /// Session latency per master.
    #[serde(rename = "latency")]
    Latency,
    /// Each node's persistence, hardening and replication settings.
    #[serde(rename = "data.config")]
    DataConfig,
    /// Each master's session-key TTL scan.
    #[serde(rename = "data.sessions")]
    Sessions,
    /// Each node's exporter scrape.
    #[serde(rename = "monitoring.exporter")]
    Exporter,
    /// Prometheus's targets, alerting rules, Alertmanagers and reload state.
    #[serde(rename = "monitoring.prometheus")]
    Prometheus,
    /// The AWS estate of one region.
    #[serde(rename = "aws")]
    Aws,
}

impl ProbeId {
    /// Every probe id.
    pub(crate) const ALL: [ProbeId; 12] = [
        ProbeId::Cluster,
        ProbeId::KeySlots,
        ProbeId::Acl,
        ProbeId::AclCommands,
        ProbeId::TlsEndpoint,
        ProbeId::TlsConfig,
        ProbeId::Latency,
        ProbeId::DataConfig,
        ProbeId::Sessions,
        ProbeId::Exporter,
        ProbeId::Prometheus,
        ProbeId::Aws,
    ];

    /// The name recorded in evidence.json and shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeId::Cluster => "cluster",
            ProbeId::KeySlots => "cluster.keyslot",
            ProbeId::Acl => "acl",
            ProbeId::AclCommands => "acl.commands",
            ProbeId::TlsEndpoint => "tls.endpoint",
            ProbeId::TlsConfig => "tls.config",
            ProbeId::Latency => "latency",
            ProbeId::DataConfig => "data.config",
            ProbeId::Sessions => "data.sessions",
            ProbeId::Exporter => "monitoring.exporter",
            ProbeId::Prometheus => "monitoring.prometheus",
            ProbeId::Aws => "aws",
        }
    }
}

impl std::fmt::Display for ProbeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the recorded name (`e.probe == "acl"`).
impl PartialEq<&str> for ProbeId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Ordered by name, so evidence.json lists items in the same order as when
/// probe names were plain strings.
impl Ord for ProbeId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for ProbeId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
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
    /// What kind of failure: a closed set, recorded as its snake_case name.
    pub kind: FailureKind,
    /// Human message naming the node and operation (never a secret).
    pub message: String,
}

/// The kinds of [`ProbeFailure`]: exactly the ones the probes, the engine
/// and the evidence readers emit. evidence.json records the snake_case
/// name (`"timeout"`, `"unexpected_reply"`, ...), as when kinds were
/// strings, so old evidence reads unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// An operation on a connection exceeded its deadline.
    Timeout,
    /// The TCP connection could not be made (refused, unreachable, ...),
    /// or an AWS endpoint could not be reached.
    Connect,
    /// The TLS handshake or certificate verification failed.
    Tls,
    /// AUTH was refused.
    Auth,
    /// The server answered a command with an error reply.
    ServerError,
    /// The connection broke mid-reply, or a local I/O facility failed.
    Io,
    /// Bytes that are not RESP.
    Protocol,
    /// A well-formed reply the probe cannot read as the command's answer.
    UnexpectedReply,
    /// The probe's own deadline for the subject (or the engine's) passed.
    Deadline,
    /// The probe had no node to run on (every seed and node failed).
    NoTarget,
    /// Not run because what it builds on failed or found nothing.
    NotRun,
    /// A configured AWS object (an instance's group, a key) was not found.
    NotFound,
    /// The environment's configuration lacks what the probe needs.
    Config,
    /// AWS throttled the call.
    Throttled,
    /// AWS denied the call (IAM).
    Denied,
    /// Another AWS API error.
    ApiError,
    /// The environment has no configuration for this probe (e.g. no
    /// `[aws]` table): its checks are "not audited", never passed.
    NotConfigured,
    /// A probe panicked; a bug, recorded as that subject's failure.
    Internal,
    /// The item holds another kind of observation than its probe records.
    WrongKind,
    /// The observation is present but partial (hand-edited or corrupt).
    Incomplete,
}

impl FailureKind {
    /// Every kind, in declaration order.
    #[cfg(test)]
    pub(crate) const ALL: [FailureKind; 20] = [
        FailureKind::Timeout,
        FailureKind::Connect,
        FailureKind::Tls,
        FailureKind::Auth,
        FailureKind::ServerError,
        FailureKind::Io,
        FailureKind::Protocol,
        FailureKind::UnexpectedReply,
        FailureKind::Deadline,
        FailureKind::NoTarget,
        FailureKind::NotRun,
        FailureKind::NotFound,
        FailureKind::Config,
        FailureKind::Throttled,
        FailureKind::Denied,
        FailureKind::ApiError,
        FailureKind::NotConfigured,
        FailureKind::Internal,
        FailureKind::WrongKind,
        FailureKind::Incomplete,
    ];

    /// The name recorded in evidence.json.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Connect => "connect",
            FailureKind::Tls => "tls",
            FailureKind::Auth => "auth",
            FailureKind::ServerError => "server_error",
            FailureKind::Io => "io",
            FailureKind::Protocol => "protocol",
            FailureKind::UnexpectedReply => "unexpected_reply",
            FailureKind::Deadline => "deadline",
            FailureKind::NoTarget => "no_target",
            FailureKind::NotRun => "not_run",
            FailureKind::NotFound => "not_found",
            FailureKind::Config => "config",
            FailureKind::Throttled => "throttled",
            FailureKind::Denied => "denied",
            FailureKind::ApiError => "api_error",
            FailureKind::NotConfigured => "not_configured",
            FailureKind::Internal => "internal",
            FailureKind::WrongKind => "wrong_kind",
            FailureKind::Incomplete => "incomplete",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the recorded name (`f.kind == "timeout"`).
impl PartialEq<&str> for FailureKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The failure reported for an item whose observation is not of the kind
/// its probe records.
static WRONG_KIND: std::sync::LazyLock<ProbeFailure> = std::sync::LazyLock::new(|| {
    ProbeFailure::new(
        FailureKind::WrongKind,
        "the evidence item holds another kind of observation than its probe records \
         (hand-edited or corrupt evidence)",
    )
});

/// The failure reported for a cluster view whose CLUSTER NODES has no
/// entry for the node itself: the probe never records one (it fails
/// instead), so the evidence is partial or hand-edited.
static NO_MYSELF: std::sync::LazyLock<ProbeFailure> = std::sync::LazyLock::new(|| {
    ProbeFailure::new(
        FailureKind::Incomplete,
        "the recorded CLUSTER NODES has no entry for the node itself: the observation is \
         incomplete (partial or hand-edited evidence)",
    )
});

/// The failure reported for an ACL view that lists no user: every Redis
/// has at least `default`, so ACL LIST was not really read.
static NO_USERS: std::sync::LazyLock<ProbeFailure> = std::sync::LazyLock::new(|| {
    ProbeFailure::new(
        FailureKind::Incomplete,
        "the recorded ACL LIST has no user, not even `default`: the observation is incomplete \
         (partial or hand-edited evidence)",
    )
});

impl ProbeFailure {
    /// A failure of `kind` with `message`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        ProbeFailure {
            kind,
            message: message.into(),
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
    AclNode(Box<AclView>),
    /// The COMMAND table (flags, ACL categories) the DRYRUN sweep used.
    CommandTable(CommandTable),
    /// One TLS endpoint (client or bus port of a node).
    TlsEndpoint(Box<TlsEndpointView>),
    /// One node's TLS-related configuration and plaintext listeners.
    TlsConfig(TlsConfigView),
    /// Session latency on one master.
    Latency(Box<LatencyView>),
    /// One node's persistence, hardening and replication settings.
    DataNode(DataNodeView),
    /// One master's session-key TTL scan.
    SessionScan(Box<SessionScanView>),
    /// One node's exporter scrape.
    Exporter(ExporterView),
    /// What Prometheus's HTTP API said.
    Prometheus(Box<PrometheusView>),
    /// The AWS estate: instances, security groups, volumes, keys.
    Aws(Box<AwsInventory>),
}

impl EvidenceSet {
    /// Items of one probe.
    pub(crate) fn of_probe(&self, probe: ProbeId) -> impl Iterator<Item = &Evidence> + '_ {
        self.items.iter().filter(move |e| e.probe == probe)
    }

    /// Every node's cluster view (or why there is none), by subject. A
    /// view without the node's own entry is a failure (`incomplete`).
    pub fn cluster_views(&self) -> Vec<(&str, Result<&ClusterNodeView, &ProbeFailure>)> {
        let mut v = self.views(ProbeId::Cluster, |o| match o {
            Observation::ClusterNode(v) => Some(v),
            _ => None,
        });
        for (_, r) in v.iter_mut() {
            if r.is_ok_and(|c| c.me().is_none()) {
                *r = Err(&*NO_MYSELF);
            }
        }
        v
    }

    /// Every node's ACL view (or why there is none), by subject. A view
    /// listing no user is a failure (`incomplete`).
    pub(crate) fn acl_views(&self) -> Vec<(&str, Result<&AclView, &ProbeFailure>)> {
        let mut v = self.views(ProbeId::Acl, |o| match o {
            Observation::AclNode(v) => Some(v.as_ref()),
            _ => None,
        });
        for (_, r) in v.iter_mut() {
            if r.is_ok_and(|a| a.users.is_empty()) {
                *r = Err(&*NO_USERS);
            }
        }
        v
    }

    /// Every TLS endpoint view (or why there is none), by subject.
    pub fn tls_endpoints(&self) -> Vec<(&str, Result<&TlsEndpointView, &ProbeFailure>)> {
        self.views(ProbeId::TlsEndpoint, |o| match o {
            Observation::TlsEndpoint(v) => Some(v.as_ref()),
            _ => None,
        })
    }

    /// Every node's TLS configuration (or why there is none), by subject.
    pub(crate) fn tls_configs(&self) -> Vec<(&str, Result<&TlsConfigView, &ProbeFailure>)> {
        self.views(ProbeId::TlsConfig, |o| match o {
            Observation::TlsConfig(v) => Some(v),
            _ => None,
        })
    }

    /// Every master's latency view (or why there is none), by subject.
    pub fn latency_views(&self) -> Vec<(&str, Result<&LatencyView, &ProbeFailure>)> {
        self.views(ProbeId::Latency, |o| match o {
            Observation::Latency(v) => Some(v.as_ref()),
            _ => None,
        })
    }

    /// The AWS inventory (or why there is none), by subject (`aws:<region>`).
    pub(crate) fn aws_views(&self) -> Vec<(&str, Result<&AwsInventory, &ProbeFailure>)> {
        self.views(ProbeId::Aws, |o| match o {
            Observation::Aws(v) => Some(v.as_ref()),
            _ => None,
        })
    }

    /// Items of `probe` as (subject, observation or failure), picking the
    /// observation with `pick`. An item holding another kind of observation
    /// than `pick` accepts (hand-edited or corrupt evidence) is a failure for
    /// its subject, never silently left out.
    pub(crate) fn views<'a, T: 'a>(
        &'a self,
        probe: ProbeId,
        pick: impl Fn(&'a Observation) -> Option<&'a T>,
    ) -> Vec<(&'a str, Result<&'a T, &'a ProbeFailure>)> {
        self.of_probe(probe)
            .map(|e| match &e.result {
                Observed::Observation(o) => match pick(o) {
                    Some(v) => (e.subject.as_str(), Ok(v)),
                    None => (e.subject.as_str(), Err(&*WRONG_KIND)),
                },
                Observed::Failure(f) => (e.subject.as_str(), Err(f)),
            })
            .collect()
    }

    /// The COMMAND table, or why there is none.
    pub(crate) fn command_table(&self) -> Option<Result<&CommandTable, &ProbeFailure>> {
        self.of_probe(ProbeId::AclCommands)
            .find_map(|e| match &e.result {
                Observed::Observation(Observation::CommandTable(t)) => Some(Ok(t)),
                Observed::Failure(f) => Some(Err(f)),
                _ => None,
            })
    }

    /// The key-slot samples, or why there are none.
    pub(crate) fn key_slots(&self) -> Option<Result<&KeySlotSamples, &ProbeFailure>> {
        self.of_probe(ProbeId::KeySlots)
            .find_map(|e| match &e.result {
                Observed::Observation(Observation::KeySlots(k)) => Some(Ok(k)),
                Observed::Failure(f) => Some(Err(f)),
                _ => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{
        DryRunVerdict, Expect, JoinedBy, PlaintextSource, PortKind, VersionOutcome,
    };

    /// The strings evidence.json held when kinds were plain strings: every
    /// kind must serialise to exactly its old string and read back.
    #[test]
    fn every_failure_kind_round_trips_with_its_old_string() {
        let old = [
            (FailureKind::Timeout, "timeout"),
            (FailureKind::Connect, "connect"),
            (FailureKind::Tls, "tls"),
            (FailureKind::Auth, "auth"),
            (FailureKind::ServerError, "server_error"),
            (FailureKind::Io, "io"),
            (FailureKind::Protocol, "protocol"),
            (FailureKind::UnexpectedReply, "unexpected_reply"),
            (FailureKind::Deadline, "deadline"),
            (FailureKind::NoTarget, "no_target"),
            (FailureKind::NotRun, "not_run"),
            (FailureKind::NotFound, "not_found"),
            (FailureKind::Config, "config"),
            (FailureKind::Throttled, "throttled"),
            (FailureKind::Denied, "denied"),
            (FailureKind::ApiError, "api_error"),
            (FailureKind::NotConfigured, "not_configured"),
            (FailureKind::Internal, "internal"),
            (FailureKind::WrongKind, "wrong_kind"),
            (FailureKind::Incomplete, "incomplete"),
        ];
        assert_eq!(
            old.len(),
            FailureKind::ALL.len(),
            "a kind without its old string"
        );
        for (kind, s) in old {
            let f = ProbeFailure::new(kind, "m");
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!(r#"{{"kind":"{s}","message":"m"}}"#));
            let back: ProbeFailure = serde_json::from_str(&json).unwrap();
            assert_eq!(back, f);
            assert_eq!(kind.as_str(), s);
            assert_eq!(kind.to_string(), s);
        }
        assert!(serde_json::from_str::<FailureKind>(r#""timed_out""#).is_err());
    }

    /// The other closed sets keep their recorded strings too.
    #[test]
    fn closed_sets_keep_their_recorded_strings() {
        let s = |v: serde_json::Value| v.as_str().unwrap().to_string();
        for (v, want) in [
            (
                serde_json::to_value(VersionOutcome::Accepted).unwrap(),
                "accepted",
            ),
            (
                serde_json::to_value(VersionOutcome::Refused).unwrap(),
                "refused",
            ),
            (
                serde_json::to_value(VersionOutcome::Undetermined).unwrap(),
                "undetermined",
            ),
            (serde_json::to_value(PortKind::Client).unwrap(), "client"),
            (serde_json::to_value(PortKind::Bus).unwrap(), "bus"),
            (
                serde_json::to_value(PlaintextSource::ConfigPort).unwrap(),
                "CONFIG GET port",
            ),
            (
                serde_json::to_value(PlaintextSource::Advertised).unwrap(),
                "advertised in CLUSTER SHARDS",
            ),
            (
                serde_json::to_value(PlaintextSource::Policy).unwrap(),
                "policy extra_plaintext_ports",
            ),
            (
                serde_json::to_value(JoinedBy::NodeIpMap).unwrap(),
                "node_ip_map",
            ),
            (serde_json::to_value(JoinedBy::Address).unwrap(), "address"),
            (serde_json::to_value(Expect::Allow).unwrap(), "allow"),
            (serde_json::to_value(Expect::Deny).unwrap(), "deny"),
        ] {
            assert_eq!(s(v), want);
        }
        for c in ['A', 'C', 'K', 'H', 'E'] {
            let v = DryRunVerdict::from_letter(c).unwrap();
            assert_eq!(v.letter(), c);
            assert_eq!(s(serde_json::to_value(v).unwrap()), c.to_string());
        }
        assert_eq!(DryRunVerdict::from_letter('x'), None);
    }
}
