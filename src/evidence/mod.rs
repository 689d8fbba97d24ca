//! What the probes saw: typed, serialisable, with subject, time and method.
//!
//! An [`EvidenceSet`] is the complete record of one run's observations. It is
//! written as `evidence.json` and can be judged again offline with
//! `epic-audit evaluate`, so everything a check needs must be in here.

/// Declares a closed set read from a server's text reply: the values the
/// server documents, and `Other` keeping any other word as it was sent
/// (judged, never dropped). Serialised as the word itself, so evidence.json
/// holds exactly what it held when these were strings.
macro_rules! server_words {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $word:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($(#[$vm])* $v,)*
            /// A word the server's documentation does not list.
            Other(String),
        }
        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $($word => $name::$v,)*
                    _ => $name::Other(s),
                }
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                match v {
                    $($name::$v => $word.to_string(),)*
                    $name::Other(s) => s,
                }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $($name::$v => f.write_str($word),)*
                    $name::Other(s) => f.write_str(s),
                }
            }
        }
    };
}

pub(crate) mod acl;
pub(crate) mod aws;
pub(crate) mod cluster;
pub(crate) mod data;
pub(crate) mod latency;
pub(crate) mod monitoring;
pub(crate) mod set;
pub mod tls;
pub mod topology;

pub(crate) use acl::{acl_key_patterns, dryrun_sample_keys, glob, sample_key_with, selector_text};
pub use acl::{
    AclLogCount, AclLogSummary, AclUser, AclView, AuthObservation, CaseResult, CommandInfo,
    CommandTable, DryRunCase, DryRunError, DryRunLetters, DryRunVerdict, Expect, UserAuth,
};
pub use aws::{
    AwsInventory, Ec2Instance, IngressRule, JoinedBy, KmsKey, NodePlacement, PrefixList,
    SecurityGroup, Snapshot, Source, Volume, Vpc,
};
pub(crate) use cluster::OWN_STATE_FIELDS;
pub use cluster::{
    key_slot, ClusterNodeView, KeySlotSample, KeySlotSamples, NodeEntry, OpenSlot, ServerIdentity,
    ServerSoftware, Shard, ShardHealth, ShardNode, ShardRole, SlotRange,
};
pub use data::{
    DataNodeView, DbKeys, ExporterView, KeyspaceView, ModuleInfo, ReplicationRole, ScanCost,
    SessionScanSettings, SessionScanView, Unattributed,
};
pub use latency::{Distribution, HostNoise, LatencySettings, LatencyView};
pub use monitoring::{
    endpoint, prom_duration_s, promql_metrics, AlertRule, AlertmanagerView, ExporterLeaks,
    IntervalSource, PrometheusView, RuleHealth, ScrapeTarget, TargetHealth,
};
pub(crate) use set::SCHEMA_VERSION;
pub use set::{
    Evidence, EvidenceSet, FailureKind, Handshakes, Observation, Observed, ProbeFailure, ProbeId,
};
pub use tls::{
    CertInfo, HandshakeResult, PlaintextProbe, PlaintextSource, PortKind, Reach, TlsConfigView,
    TlsEndpointView, TlsVersion, VersionOutcome, VersionResult,
};
pub(crate) use topology::Topology;
