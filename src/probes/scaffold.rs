//! The scaffold every probe stands on: the [`ProbeContext`] it gets, the
//! [`Probe`] trait it implements, and [`per_target`], which turns one
//! observing function into exactly one evidence item per target (a
//! deadline or a panic being that target's failure). The probes' files
//! import this file; `probes/mod.rs` only lists them and registers them.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::cleanup::LatencyCleanup;
use super::conns;
use crate::config::{NodeAddr, Timeouts};
use crate::evidence::DryRunCase;
use crate::evidence::{
    Evidence, FailureKind, Observation, Observed, ProbeFailure, ProbeId, Topology,
};
use crate::secret::Secret;
use crate::tls::TlsClient;

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
    /// Where each node's exporter listens, and Prometheus's URL.
    pub monitoring: crate::config::MonitoringSettings,
    /// Prometheus's credentials, resolved from their references.
    pub prometheus_auth: crate::http::HttpAuth,
    /// The name CONFIG has on the nodes (the environment's `config_command`).
    pub config_command: String,
    /// Key for the keyed hashes of session key names (this run only).
    pub session_salt: RunSalt,
    /// The environment's AWS settings (`None`: the AWS checks skip).
    pub aws: Option<crate::config::AwsSettings>,
    /// The audit's one authenticated connection per node (see [`conns`]).
    pub conns: conns::NodeConns,
    /// The process's latency clean-up handle (its Ctrl-C path deletes the
    /// latency probe's keys through it).
    pub latency: LatencyCleanup,
}

impl ProbeContext {
    /// The node's shared connection as the audit user, for one step.
    pub(crate) async fn conn(
        &self,
        addr: &NodeAddr,
    ) -> Result<conns::Shared, crate::resp::ConnError> {
        self.conns
            .get(addr, &self.tls, &self.timeouts, &self.user, &self.password)
            .await
    }
}

/// A context for unit tests: the fixture PKI, short deadlines, no
/// targets, `admin_user` with a dummy password.
#[cfg(test)]
pub(crate) fn fixture_context() -> ProbeContext {
    let pki = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pki"));
    ProbeContext {
        targets: Vec::new(),
        tls: TlsClient::from_files(
            &pki.join("ca.crt"),
            &pki.join("client.crt"),
            &pki.join("client.key"),
            None,
        )
        .expect("fixture PKI loads"),
        timeouts: Timeouts {
            connect_ms: 300,
            command_ms: 300,
            probe_ms: 1000,
        },
        user: "admin_user".into(),
        password: Secret::new("x"),
        credentials: Default::default(),
        inputs: Default::default(),
        topology: Default::default(),
        monitoring: Default::default(),
        prometheus_auth: Default::default(),
        config_command: "CONFIG".into(),
        session_salt: Default::default(),
        aws: None,
        conns: Default::default(),
        latency: Default::default(),
    }
}

/// A loopback address nothing listens on (a port the OS just gave out and
/// took back), for tests of refused connections.
#[cfg(test)]
pub(crate) fn closed_loopback_addr() -> NodeAddr {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("loopback bind")
        .port();
    NodeAddr {
        host: "127.0.0.1".into(),
        port,
    }
}

/// Inputs the policy gives probes: which users the DRYRUN sweep covers and
/// the explicit cases to evaluate. Filled by the engine from the `user` and
/// `cases` parameters of the selected checks.
#[derive(Debug, Clone, Default)]
pub struct ProbeInputs {
    /// Users whose permissions are swept with ACL DRYRUN, each with the
    /// key patterns the policy allows it (`key_patterns`; `*` where a
    /// check does not say): the sweep's sample keys come from these and
    /// from the patterns Redis grants the user.
    pub dryrun_users: BTreeMap<String, Vec<String>>,
    /// Explicit (user, command line) cases.
    pub dryrun_cases: Vec<DryRunCase>,
    /// Extra ports on every node where no plaintext Redis may answer.
    pub plaintext_ports: BTreeSet<u16>,
    /// The latency workload, when a latency check is selected.
    pub latency: Option<crate::evidence::LatencySettings>,
    /// The session scan, when the session TTL check is selected.
    pub sessions: Option<crate::evidence::SessionScanSettings>,
    /// Session-key patterns an exporter's /metrics must not name.
    pub exporter_patterns: Vec<String>,
}

/// One subject of a per-target probe: the name its evidence is recorded
/// under, how it is observed (the evidence's `method`), and what the
/// observing function gets.
pub(crate) struct Target<T> {
    /// Evidence subject (a node `ip:port`, an endpoint `ip:port bus`, ...).
    pub subject: String,
    /// Evidence method: the commands sent and the identity used.
    pub method: String,
    /// Handed to the observing function.
    pub input: T,
}

impl Target<NodeAddr> {
    /// A node target whose subject is the node's address.
    pub(crate) fn node(addr: NodeAddr, method: impl Into<String>) -> Self {
        Target {
            subject: addr.to_string(),
            method: method.into(),
            input: addr,
        }
    }
}

/// The per-target scaffold every per-node probe uses: observes every target
/// concurrently, each under `deadline`, and returns exactly one evidence
/// item per target, in the order given. A target whose observation fails,
/// overruns its deadline or whose task panics gets a failure item naming
/// why (a panic is a bug in this tool, said as such); none is ever missing,
/// so the checks see every expected subject. `what` names the probe in
/// deadline messages ("access probe"). The second value of each pair is the
/// side result of a successful observation (e.g. the COMMAND table).
pub(crate) async fn per_target_with<T, X, F, Fut>(
    probe: ProbeId,
    what: &'static str,
    deadline: Duration,
    targets: Vec<Target<T>>,
    observe: F,
) -> Vec<(Evidence, Option<X>)>
where
    T: Send + 'static,
    X: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<(Observation, X), ProbeFailure>> + Send + 'static,
{
    let mut tasks = Vec::with_capacity(targets.len());
    for t in targets {
        let fut = observe(t.input);
        let subject = t.subject.clone();
        let handle = tokio::spawn(async move {
            let t0 = Instant::now();
            let (result, extra) = match tokio::time::timeout(deadline, fut).await {
                Ok(Ok((o, x))) => (Observed::Observation(o), Some(x)),
                Ok(Err(f)) => (Observed::Failure(f), None),
                Err(_) => (
                    Observed::Failure(ProbeFailure {
                        kind: FailureKind::Deadline,
                        message: format!(
                            "{subject}: {what} did not finish within {} ms",
                            deadline.as_millis()
                        ),
                    }),
                    None,
                ),
            };
            // Stamped here, when the observation ended: the results are
            // collected in order, so a later target would otherwise be
            // stamped when an earlier, slower one finished.
            (result, extra, t0.elapsed(), Utc::now())
        });
        tasks.push((t.subject, t.method, handle));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for (subject, method, handle) in tasks {
        let (result, extra, took, observed_at) = match handle.await {
            Ok(r) => r,
            Err(e) => {
                let why = if e.is_panic() {
                    let p = e.into_panic();
                    p.downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panic".into())
                } else {
                    "task cancelled".into()
                };
                let failure = ProbeFailure {
                    kind: FailureKind::Internal,
                    message: format!(
                        "{subject}: the {what} stopped on an internal error ({why}); this is a bug \
                         in epic-audit, and nothing was observed"
                    ),
                };
                (Observed::Failure(failure), None, Duration::ZERO, Utc::now())
            }
        };
        out.push((
            Evidence {
                probe,
                subject,
                method,
                observed_at,
                duration_ms: took.as_millis() as u64,
                result,
            },
            extra,
        ));
    }
    out
}

/// [`per_target_with`] for probes without a side result.
pub(crate) async fn per_target<T, F, Fut>(
    probe: ProbeId,
    what: &'static str,
    deadline: Duration,
    targets: Vec<Target<T>>,
    observe: F,
) -> Vec<Evidence>
where
    T: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<Observation, ProbeFailure>> + Send + 'static,
{
    per_target_with(probe, what, deadline, targets, |t| {
        let fut = observe(t);
        async move { fut.await.map(|o| (o, ())) }
    })
    .await
    .into_iter()
    .map(|(e, _)| e)
    .collect()
}

/// A boxed future, so probes can live in one registry.
pub(crate) type ProbeFuture = Pin<Box<dyn Future<Output = Vec<Evidence>> + Send>>;

/// A family of observations. Implementations bound every network await by
/// the context's timeouts and turn every failure into evidence of it.
pub trait Probe: Send + Sync {
    /// Stable name, recorded in each evidence item's `probe` field and used
    /// by checks to declare what they need.
    fn name(&self) -> ProbeId;
    /// Observe. Must return (not hang, not panic) for dead or silent nodes.
    fn run(&self, ctx: Arc<ProbeContext>) -> ProbeFuture;
    /// The engine's safety net: past it, `run` is abandoned and the probe
    /// recorded as not finished (one `cluster` subject, its per-node
    /// evidence lost). It must lie beyond the probe's own per-node
    /// deadlines; by default [`engine_margin`] past one `probe_ms`.
    fn deadline(&self, ctx: &ProbeContext) -> Duration {
        ctx.timeouts.probe() + engine_margin(&ctx.timeouts)
    }
}

/// What the engine's net allows past a probe's own deadline: two connects
/// and a second.
pub(crate) fn engine_margin(t: &Timeouts) -> Duration {
    Duration::from_millis(t.connect_ms.saturating_mul(2).saturating_add(1_000))
}

/// A per-run secret for the keyed hashes of session key names. Never
/// printed; written only to the local salt file next to the report.
#[derive(Clone, Default)]
pub struct RunSalt(pub [u8; 32]);

impl std::fmt::Debug for RunSalt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunSalt([redacted])")
    }
}

impl RunSalt {
    /// A fresh random salt; an error if the OS random source fails (a
    /// zero salt would make every reported key hash reversible).
    pub(crate) fn random() -> Result<RunSalt, getrandom::Error> {
        crate::secret::try_random().map(RunSalt)
    }

    /// The keyed hash of a key name: HMAC-SHA256(salt, key), 12 hex digits.
    pub(crate) fn key_hash(&self, key: &[u8]) -> String {
        let mut m =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(key);
        hex::encode(&m.finalize().into_bytes()[..6])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each item is stamped when its own observation ended, not when the
    /// scaffold got round to collecting it (targets are collected in
    /// order, so a fast target after a slow one was stamped late).
    #[tokio::test]
    async fn each_item_is_stamped_when_its_observation_ended() {
        let targets = [("slow", 400u64), ("fast", 0)]
            .into_iter()
            .map(|(subject, ms)| Target {
                subject: subject.into(),
                method: "sleep".into(),
                input: ms,
            })
            .collect();
        let items = per_target(
            ProbeId::Cluster,
            "test probe",
            Duration::from_secs(5),
            targets,
            |ms| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Err(ProbeFailure {
                    kind: FailureKind::Internal,
                    message: format!("slept {ms} ms"),
                })
            },
        )
        .await;
        let (slow, fast) = (&items[0], &items[1]);
        assert_eq!(
            (slow.subject.as_str(), fast.subject.as_str()),
            ("slow", "fast")
        );
        assert!(
            fast.observed_at < slow.observed_at,
            "the fast target ended first, so it is stamped first: fast {} slow {}",
            fast.observed_at,
            slow.observed_at
        );
    }
}
