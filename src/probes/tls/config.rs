//! The TLS configuration probe: each node's TLS settings (CONFIG GET over
//! a connection that proved the node's certificate) and a plaintext PING
//! on every port where a plaintext Redis could answer.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::config::NodeAddr;
use crate::evidence::{
    FailureKind, Observation, PlaintextProbe, PlaintextSource, ProbeFailure, ProbeId, TlsConfigView,
};
use crate::probes::scaffold::{per_target, Probe, ProbeContext, ProbeFuture, Target};
use crate::resp::{as_text, RedisConn};

use super::verify::*;

/// The settings read with CONFIG GET.
pub(crate) const CONFIG_KEYS: [&str; 8] = [
    "port",
    "tls-port",
    "tls-protocols",
    "tls-ciphersuites",
    "tls-ciphers",
    "tls-cluster",
    "tls-replication",
    "tls-auth-clients",
];

/// TCP connect + inline `PING` on `port`: does a plaintext Redis answer?
pub(crate) async fn plaintext_ping(
    host: &str,
    port: u16,
    source: PlaintextSource,
    connect: Duration,
    read: Duration,
) -> PlaintextProbe {
    let probe = |redis_answered: bool, detail: String| PlaintextProbe {
        port,
        source,
        redis_answered,
        detail,
    };
    let addr = NodeAddr {
        host: host.to_string(),
        port,
    }
    .to_string();
    let mut s = match timeout(connect, TcpStream::connect(&addr)).await {
        Err(_) => {
            return probe(
                false,
                format!("no TCP answer within {} ms", connect.as_millis()),
            )
        }
        Ok(Err(e)) => return probe(false, format!("no listener: {e}")),
        Ok(Ok(s)) => s,
    };
    let mut buf = [0u8; 256];
    let r = timeout(read, async {
        s.write_all(b"PING\r\n").await?;
        s.read(&mut buf).await
    })
    .await;
    match r {
        Err(_) => probe(
            false,
            format!(
                "a listener, but no answer to PING within {} ms",
                read.as_millis()
            ),
        ),
        Ok(Ok(0)) => probe(
            false,
            "a listener that closed the connection (a TLS port does this)".into(),
        ),
        Ok(Ok(n)) => {
            let first = buf[0];
            let line = String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            if matches!(first, b'+' | b'-' | b'$' | b'*' | b':') {
                probe(true, format!("Redis answered in plaintext: `{line}`"))
            } else {
                probe(
                    false,
                    format!("a listener that is not plaintext Redis (first byte 0x{first:02x})"),
                )
            }
        }
        Ok(Err(e)) => probe(false, format!("a listener that reset the connection: {e}")),
    }
}

pub(crate) async fn observe_config(
    ctx: &ProbeContext,
    node: &NodeAddr,
) -> Result<TlsConfigView, ProbeFailure> {
    // The audit's shared connection first (the node's certificate was
    // verified in full when discovery opened it). Only when that
    // verification failed is the node given
    // a chance with an expired or not-yet-valid leaf (`TimeTolerant`, a
    // full handshake of its own, never sharing sessions with the first).
    let words = crate::probes::config_get(&ctx.config_command, &CONFIG_KEYS);
    let refused = |e: crate::resp::ConnError| match e {
        crate::resp::ConnError::Server { reply, .. }
            if reply.to_ascii_lowercase().contains("unknown command") =>
        {
            crate::probes::config_failure(&node.to_string(), &ctx.config_command, &reply)
        }
        e => e.into(),
    };
    let f = match ctx.conn(node).await {
        Ok(mut c) => c.cmd_str(&words).await.map_err(refused)?,
        Err(crate::resp::ConnError::Tls { .. }) => {
            let mut c = tolerant_connect(ctx, node).await?;
            c.auth(&ctx.user, &ctx.password).await?;
            c.cmd_str(&words).await.map_err(refused)?
        }
        Err(e) => return Err(e.into()),
    };
    let mut config = std::collections::BTreeMap::new();
    if let redis::Value::Array(items) = &f {
        for kv in items.chunks(2) {
            if let [k, v] = kv {
                if let (Some(k), Some(v)) = (as_text(k), as_text(v)) {
                    config.insert(k, v);
                }
            }
        }
    }
    if config.is_empty() {
        return Err(ProbeFailure {
            kind: FailureKind::UnexpectedReply,
            message: format!(
                "{node}: {} GET returned {}",
                ctx.config_command,
                crate::resp::describe(Some(&f))
            ),
        });
    }
    let mut ports: Vec<(u16, PlaintextSource)> = Vec::new();
    if let Some(p) = config
        .get("port")
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p != 0)
    {
        ports.push((p, PlaintextSource::ConfigPort));
    }
    let advertised = ctx
        .topology
        .advertised_plaintext
        .get(&node.to_string())
        .cloned()
        .unwrap_or_default();
    for p in &advertised {
        if !ports.iter().any(|(q, _)| q == p) {
            ports.push((*p, PlaintextSource::Advertised));
        }
    }
    for p in &ctx.inputs.plaintext_ports {
        if !ports.iter().any(|(q, _)| q == p) {
            ports.push((*p, PlaintextSource::Policy));
        }
    }
    let mut plaintext = Vec::new();
    for (p, source) in ports {
        plaintext.push(
            plaintext_ping(
                &node.host,
                p,
                source,
                ctx.timeouts.connect(),
                ctx.timeouts.command(),
            )
            .await,
        );
    }
    Ok(TlsConfigView { config, plaintext })
}

/// The config probe's connection to a node whose certificate failed full
/// verification: WebPKI that tolerates only the leaf's validity period.
pub(crate) async fn tolerant_connect(
    ctx: &ProbeContext,
    node: &NodeAddr,
) -> Result<RedisConn, ProbeFailure> {
    let verifier = WebPkiServerVerifier::builder(ctx.tls.roots.clone())
        .build()
        .map_err(|e| ProbeFailure {
            kind: FailureKind::Tls,
            message: e.to_string(),
        })?;
    let config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(TimeTolerant { inner: verifier }))
        .with_client_cert_resolver(ctx.tls.client_cert());
    let tls = crate::tls::TlsClient {
        config: Arc::new(config),
        // Not fully verified: never recorded where the TLS probe reads.
        verified: Default::default(),
        ..ctx.tls.clone()
    };
    match RedisConn::connect(node, &tls, &ctx.timeouts).await {
        Ok(c) => Ok(c),
        Err(crate::resp::ConnError::Tls { addr, reason }) => {
            Err(ProbeFailure {
                kind: FailureKind::Tls,
                message: format!(
                    "{addr}: credentials withheld, the certificate does not prove this node ({reason}); \
                     its configuration cannot be read"
                ),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads every node's TLS configuration and tries its plaintext ports.
pub(crate) struct TlsConfigProbe;

impl Probe for TlsConfigProbe {
    fn name(&self) -> ProbeId {
        ProbeId::TlsConfig
    }

    fn run(&self, ctx: Arc<ProbeContext>) -> ProbeFuture {
        Box::pin(async move {
            let method = format!(
                "{} GET {} as {} (sent only after the node's certificate chains to the configured CA \
                 for its name); TCP connect + inline PING on the plaintext port if one is configured, \
                 on any plaintext port the cluster advertises for the node, and on the policy's extra ports",
                ctx.config_command,
                CONFIG_KEYS.join(" "),
                ctx.user
            );
            let targets = ctx
                .targets
                .iter()
                .map(|n| Target::node(n.clone(), method.clone()))
                .collect();
            per_target(
                ProbeId::TlsConfig,
                "TLS config probe",
                ctx.timeouts.probe(),
                targets,
                |node| {
                    let ctx = ctx.clone();
                    async move {
                        observe_config(&ctx, &node)
                            .await
                            .map(Observation::TlsConfig)
                    }
                },
            )
            .await
        })
    }
}
