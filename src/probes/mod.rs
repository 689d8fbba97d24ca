//! Probes observe; they never judge and never change what they audit.
//!
//! Discovery (the cluster probe run on the seeds, then on every node they
//! announce) always runs first, because every other probe needs the node
//! list. Further probes implement [`Probe`] and are registered in
//! [`registry`]: adding one is one file plus one line there.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::{NodeAddr, Timeouts};
use crate::evidence::Evidence;
use crate::secret::Secret;
use crate::tls::TlsClient;

pub mod acl;
pub mod aws;
pub mod cluster;
pub mod data;
pub mod latency;
pub mod tls;

/// What every probe gets: where to look, how to connect, how long it may take.
#[derive(Debug, Clone)]
pub struct ProbeContext {
    /// Nodes to probe (seeds plus discovered), as advertised by the cluster.
    pub targets: Vec<NodeAddr>,
    /// TLS client material.
    pub tls: TlsClient,
    /// Deadlines.
    pub timeouts: Timeouts,
    /// User the audit reads as.
    pub user: String,
    /// Its password (redacted in every format).
    pub password: Secret,
    /// Passwords of every configured user, for live authentication checks.
    pub credentials: BTreeMap<String, Secret>,
    /// What the selected checks ask probes to look at.
    pub inputs: ProbeInputs,
    /// What discovery learned about the cluster.
    pub topology: Topology,
    /// Where each node's exporter listens.
    pub monitoring: data::MonitoringSettings,
    /// Key for the keyed hashes of session key names (this run only).
    pub session_salt: data::RunSalt,
    /// The environment's AWS settings (`None`: the AWS checks skip).
    pub aws: Option<crate::config::AwsSettings>,
}

/// Facts from discovery that later probes need, by node address.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    /// Cluster-bus port each node announces (CLUSTER NODES, `myself`).
    pub bus_ports: BTreeMap<String, u16>,
    /// Plaintext ports the cluster advertises for a node (CLUSTER SHARDS
    /// `port`): probed, not trusted.
    pub advertised_plaintext: BTreeMap<String, BTreeSet<u16>>,
    /// Masters serving slots, with their slot ranges (majority view).
    pub masters: BTreeMap<String, Vec<crate::evidence::SlotRange>>,
}

impl Topology {
    /// Derives the topology from discovery evidence.
    pub fn from_evidence(items: &[crate::evidence::Evidence]) -> Topology {
        use crate::evidence::{Observation, Observed};
        let mut t = Topology::default();
        let mut master_views: BTreeMap<Vec<(String, Vec<crate::evidence::SlotRange>)>, usize> =
            BTreeMap::new();
        for e in items {
            let Observed::Observation(Observation::ClusterNode(v)) = &e.result else {
                continue;
            };
            if let Some(p) = v.me().and_then(|m| m.bus_port) {
                t.bus_ports.insert(e.subject.clone(), p);
            }
            for n in v.shards.iter().flat_map(|s| &s.nodes) {
                if let (Some(p), Some(tls)) = (n.port, n.tls_port) {
                    let addr = NodeAddr {
                        host: n.ip.clone(),
                        port: tls,
                    }
                    .to_string();
                    t.advertised_plaintext.entry(addr).or_default().insert(p);
                }
            }
            let masters: Vec<_> = v
                .nodes
                .iter()
                .filter(|n| n.is_master() && !n.slots.is_empty() && !n.has_flag("fail"))
                .map(|n| (n.addr.clone(), n.slots.clone()))
                .collect();
            *master_views.entry(masters).or_default() += 1;
        }
        if let Some((masters, _)) = master_views.into_iter().max_by_key(|(_, n)| *n) {
            t.masters = masters.into_iter().collect();
        }
        t
    }
}

/// Inputs the policy gives probes: which users the DRYRUN sweep covers and
/// the explicit cases to evaluate. Filled by the engine from the `user` and
/// `cases` parameters of the selected checks.
#[derive(Debug, Clone, Default)]
pub struct ProbeInputs {
    /// Users whose permissions are swept with ACL DRYRUN.
    pub dryrun_users: BTreeSet<String>,
    /// Explicit (user, command line) cases.
    pub dryrun_cases: Vec<DryRunCase>,
    /// Extra ports on every node where no plaintext Redis may answer.
    pub plaintext_ports: BTreeSet<u16>,
    /// The latency workload, when a latency check is selected.
    pub latency: Option<latency::LatencySettings>,
    /// The session scan, when the session TTL check is selected.
    pub sessions: Option<data::SessionScanSettings>,
}

/// One explicit DRYRUN case from the policy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunCase {
    /// The user.
    pub user: String,
    /// The command line, words separated by spaces.
    pub command: String,
    /// `allow` or `deny` (judged by the check, not the probe).
    pub expect: String,
}

/// Waits for every task of `set`. A task that panicked is a bug and has no
/// subject to attach to: it is dropped, so its subject shows up as not
/// observed (`error`) in the checks.
pub async fn join_all<T: 'static>(mut set: tokio::task::JoinSet<T>) -> Vec<T> {
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(v) = r {
            out.push(v);
        }
    }
    out
}

/// A boxed future, so probes can live in one registry.
pub type ProbeFuture = Pin<Box<dyn Future<Output = Vec<Evidence>> + Send>>;

/// A family of observations. Implementations bound every network await by
/// the context's timeouts and turn every failure into evidence of it.
pub trait Probe: Send + Sync {
    /// Stable name, recorded in each evidence item's `probe` field and used
    /// by checks to declare what they need.
    fn name(&self) -> &'static str;
    /// Observe. Must return (not hang, not panic) for dead or silent nodes.
    fn run(&self, ctx: Arc<ProbeContext>) -> ProbeFuture;
}

/// Every probe that runs after discovery.
pub fn registry() -> Vec<Box<dyn Probe>> {
    vec![
        Box::new(cluster::KeySlotProbe),
        Box::new(acl::AclProbe),
        Box::new(tls::TlsEndpointProbe),
        Box::new(tls::TlsConfigProbe),
        Box::new(latency::LatencyProbe),
        Box::new(data::DataConfigProbe),
        Box::new(data::SessionScanProbe),
        Box::new(data::ExporterProbe),
        Box::new(aws::AwsProbe),
    ]
}
