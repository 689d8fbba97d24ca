//! The transport probe of each TLS endpoint (a node's client port and
//! announced bus port): one hand-built ClientHello per protocol version,
//! and full TLS 1.3 handshakes with and without the client certificate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::timeout;

use super::hello::{client_hello, parse_server_answer, wire, Parse, ServerAnswer, TlsVersion};
use crate::config::NodeAddr;
use crate::evidence::{
    CertInfo, FailureKind, HandshakeResult, Observation, PortKind, ProbeFailure, ProbeId, Reach,
    TlsEndpointView, VersionOutcome, VersionResult,
};
use crate::probes::scaffold::{per_target, Probe, ProbeContext, ProbeFuture, Target};

use super::bus::*;
use super::verify::*;

pub(crate) fn random32() -> [u8; 32] {
    crate::secret::random()
}

/// Offers exactly `version` and reads the first record of the answer.
pub(crate) async fn offer_version(
    addr: &str,
    sni: &str,
    version: TlsVersion,
    connect: Duration,
    read: Duration,
) -> VersionResult {
    let result = |outcome: VersionOutcome, detail: String| VersionResult {
        version,
        outcome,
        detail,
    };
    let mut s = match timeout(connect, TcpStream::connect(addr)).await {
        Err(_) => {
            return result(
                VersionOutcome::Undetermined,
                format!("TCP connect timed out after {} ms", connect.as_millis()),
            )
        }
        Ok(Err(e)) => {
            return result(
                VersionOutcome::Undetermined,
                format!("TCP connect failed: {e}"),
            )
        }
        Ok(Ok(s)) => s,
    };
    let hello = client_hello(version, Some(sni), random32(), random32(), random32());
    if let Err(e) = timeout(read, s.write_all(&hello))
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    {
        return result(
            VersionOutcome::Refused,
            format!("connection closed while sending the ClientHello: {e}"),
        );
    }
    let mut buf = Vec::with_capacity(4096);
    let deadline = Instant::now() + read;
    loop {
        match parse_server_answer(&buf) {
            Parse::Done(ServerAnswer::Hello { version: v, cipher }) => {
                let a = ServerAnswer::Hello { version: v, cipher };
                return if v == wire(version) {
                    result(VersionOutcome::Accepted, a.to_string())
                } else {
                    result(
                        VersionOutcome::Refused,
                        format!("server answered with another version: {a}"),
                    )
                };
            }
            Parse::Done(a @ ServerAnswer::Alert { .. }) => {
                return result(VersionOutcome::Refused, a.to_string())
            }
            Parse::Done(a @ ServerAnswer::Garbage(_)) => {
                return result(VersionOutcome::Undetermined, a.to_string())
            }
            Parse::NeedMore => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let mut chunk = [0u8; 4096];
        match timeout(left, s.read(&mut chunk)).await {
            Err(_) => {
                return result(
                    VersionOutcome::Undetermined,
                    format!("no answer within {} ms", read.as_millis()),
                )
            }
            Ok(Ok(0)) => {
                return if buf.is_empty() {
                    result(
                        VersionOutcome::Refused,
                        "connection closed without an answer (EOF)".into(),
                    )
                } else {
                    result(
                        VersionOutcome::Undetermined,
                        format!(
                            "connection closed after {} bytes of a partial record",
                            buf.len()
                        ),
                    )
                }
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) if buf.is_empty() => {
                return result(
                    VersionOutcome::Refused,
                    format!("connection reset without an answer: {e}"),
                )
            }
            Ok(Err(e)) => return result(VersionOutcome::Undetermined, format!("read failed: {e}")),
        }
    }
}

/// A full TLS 1.3 handshake, with or without the client certificate, and
/// what [`After`] says to do once it completed.
pub(crate) async fn full_handshake(
    ctx: &ProbeContext,
    host: &str,
    addr: &str,
    after: After,
    with_cert: bool,
    capture: Arc<Capture>,
) -> HandshakeResult {
    let fail = |detail: String| HandshakeResult {
        completed: false,
        protocol: None,
        cipher_suite: None,
        detail,
    };
    let builder = rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
        .dangerous()
        .with_custom_certificate_verifier(capture);
    let mut config = if with_cert {
        builder.with_client_cert_resolver(ctx.tls.client_cert())
    } else {
        builder.with_no_client_auth()
    };
    // Nothing is resumed from here; a ticket only tells that the server
    // accepted the handshake (see [`AlertWait`]).
    let tickets = Arc::new(TicketSignal::default());
    config.resumption = rustls::client::Resumption::store(tickets.clone());
    let name = match ctx.tls.server_name_for(host) {
        Ok(n) => n,
        Err(e) => return fail(e),
    };
    let connect = ctx.timeouts.connect();
    let tcp = match timeout(connect, TcpStream::connect(addr)).await {
        Err(_) => {
            return fail(format!(
                "TCP connect timed out after {} ms",
                connect.as_millis()
            ))
        }
        Ok(Err(e)) => return fail(format!("TCP connect failed: {e}")),
        Ok(Ok(s)) => s,
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut tls = match timeout(connect, connector.connect(name, tcp)).await {
        Err(_) => {
            return fail(format!(
                "TLS handshake timed out after {} ms",
                connect.as_millis()
            ))
        }
        Ok(Err(e)) => return fail(format!("TLS handshake failed: {e}")),
        Ok(Ok(s)) => s,
    };
    let (protocol, cipher_suite) = {
        let (_, c) = tls.get_ref();
        (
            crate::tls::protocol_name(c.protocol_version()),
            c.negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite())),
        )
    };
    let mut buf = [0u8; 256];
    let (completed, detail) = if let After::Alert(wait) = after {
        let ticket = tickets.0.notified();
        await_alert(&mut tls, &mut buf, wait, ctx.timeouts.command(), ticket).await
    } else {
        let ping = b"*1\r\n$4\r\nPING\r\n";
        match timeout(ctx.timeouts.command(), async {
            tls.write_all(ping).await?;
            tls.flush().await?;
            tls.read(&mut buf).await
        })
        .await
        {
            Err(_) => (
                false,
                format!("no answer to PING within {} ms", ctx.timeouts.command_ms),
            ),
            Ok(Ok(0)) => (
                false,
                "closed by the server after the handshake".to_string(),
            ),
            Ok(Ok(n)) => {
                let line = String::from_utf8_lossy(&buf[..n]);
                (
                    true,
                    format!(
                        "PING answered `{}`",
                        line.lines().next().unwrap_or("").trim()
                    ),
                )
            }
            Ok(Err(e)) => (false, format!("refused after the handshake: {e}")),
        }
    };
    HandshakeResult {
        completed,
        protocol,
        cipher_suite,
        detail,
    }
}

pub(crate) async fn observe_endpoint(
    ctx: Arc<ProbeContext>,
    node: NodeAddr,
    port: u16,
    bus: bool,
) -> Result<TlsEndpointView, ProbeFailure> {
    let addr = NodeAddr {
        host: node.host.clone(),
        port,
    }
    .to_string();
    // A client port is dialled as clients dial it: by the name the cluster
    // announces for the node (else its IP). The nodes reach each other's
    // bus port by IP (CLUSTER NODES), so a bus port is dialled by IP.
    let host = if bus {
        node.host.clone()
    } else {
        ctx.tls.dial_host(&node)
    };
    let dial_addr = NodeAddr {
        host: host.clone(),
        port,
    }
    .to_string();
    let named = if host == node.host {
        String::new()
    } else {
        format!(" (dialled as {dial_addr})")
    };
    // An endpoint that does not accept TCP is unobserved, not "refused".
    // The connect time is also the fallback size of a bus-port alert wait.
    let t0 = Instant::now();
    let peer = match crate::net::dial(&host, port, ctx.timeouts.connect()).await {
        Err(crate::net::DialError::Timeout(m)) => {
            return Err(ProbeFailure {
                kind: FailureKind::Timeout,
                message: format!("{addr}{named}: {m}"),
            })
        }
        Err(e) => {
            return Err(ProbeFailure {
                kind: FailureKind::Connect,
                message: format!("cannot reach {addr}{named}: {e}"),
            })
        }
        Ok(d) => d.peer,
    };
    let rtt = t0.elapsed();
    let sni = ctx.tls.verified_name(&host).to_string();
    // The version probes below TLS 1.3 and the two full handshakes are
    // independent connections: run them together. TLS 1.3 itself is
    // proven by the full handshake (a TLS 1.3-only ClientHello that
    // completed), which spares the node one more signature; a separate
    // TLS 1.3-only ClientHello is sent only when that handshake did not
    // complete, to tell a refused version from another failure.
    let offer = |v| {
        offer_version(
            &dial_addr,
            &sni,
            v,
            ctx.timeouts.connect(),
            ctx.timeouts.command(),
        )
    };
    let offers = async {
        let (a, b, c) = tokio::join!(
            offer(TlsVersion::Tls10),
            offer(TlsVersion::Tls11),
            offer(TlsVersion::Tls12)
        );
        vec![a, b, c]
    };
    // On a client port the audit's own connection (discovery's, made
    // before any other probe) already completed a full handshake with the
    // client certificate and verified the chain in full: its record is the
    // evidence, and the node signs one handshake fewer. Where there is no
    // such record (the chain failed verification, the node did not answer
    // then), this probe makes its own capturing handshake.
    let reused = if bus {
        None
    } else {
        ctx.tls.verified_handshake(&addr)
    };
    // On a bus port the handshake without a client certificate tells the
    // one with it how long a refusal takes there (see [`AlertWait`]).
    let (after_with, after_without) = if bus {
        let (tx, rx) = oneshot::channel();
        (
            After::Alert(AlertWait::SizedBy(rtt, rx)),
            After::Alert(AlertWait::Report(rtt, tx)),
        )
    } else {
        (After::Ping, After::Ping)
    };
    let with_cert = async {
        if let Some(v) = reused {
            return (
                HandshakeResult {
                    completed: true,
                    protocol: v.protocol,
                    cipher_suite: v.cipher_suite,
                    detail: "the audit's own connection to this node: a full handshake with the client \
                             certificate, the chain verified against the configured CA for the node's name, \
                             then AUTH and commands answered"
                        .into(),
                },
                Captured {
                    chain: v.chain,
                    now: Some(Ok(())),
                    chain_only: Some(Ok(())),
                },
            );
        }
        match Capture::new(ctx.tls.roots.clone()) {
            Ok(cap) => {
                let h =
                    full_handshake(&ctx, &host, &dial_addr, after_with, true, cap.clone()).await;
                let seen = cap.seen.lock().map(|s| s.clone()).unwrap_or_default();
                (h, seen)
            }
            Err(e) => (
                HandshakeResult {
                    completed: false,
                    protocol: None,
                    cipher_suite: None,
                    detail: format!("cannot build a verifier from the configured CA: {e}"),
                },
                Captured::default(),
            ),
        }
    };
    let without_cert = async {
        match Capture::new(ctx.tls.roots.clone()) {
            Ok(cap) => full_handshake(&ctx, &host, &dial_addr, after_without, false, cap).await,
            Err(e) => HandshakeResult {
                completed: false,
                protocol: None,
                cipher_suite: None,
                detail: e,
            },
        }
    };
    let (mut versions, (handshake, captured), without_client_cert) =
        tokio::join!(offers, with_cert, without_cert);
    versions.push(
        if handshake.completed && handshake.protocol.as_deref() == Some("TLSv1.3") {
            VersionResult {
                version: TlsVersion::Tls13,
                outcome: VersionOutcome::Accepted,
                detail: format!(
                    "a full handshake with the client certificate negotiated TLSv1.3 ({}), so no \
                     separate TLSv1.3 ClientHello was sent",
                    handshake.cipher_suite.as_deref().unwrap_or("?")
                ),
            }
        } else {
            offer(TlsVersion::Tls13).await
        },
    );
    let chain: Vec<CertInfo> = captured
        .chain
        .iter()
        .filter_map(|c| super::cert::cert_info(c).ok())
        .collect();
    let verdict = |r: Option<Result<(), String>>| match r {
        Some(Ok(())) => "ok".to_string(),
        Some(Err(e)) => e,
        None => "no certificate was received".to_string(),
    };
    Ok(TlsEndpointView {
        node: node.to_string(),
        port_kind: if bus { PortKind::Bus } else { PortKind::Client },
        address: addr,
        versions,
        handshake,
        without_client_cert,
        chain,
        verification: verdict(captured.now),
        chain_verification: verdict(captured.chain_only),
        reached_by: Some(Reach {
            verified_as: sni,
            name: host,
            address: peer.to_string(),
        }),
    })
}

/// Probes every node's client port and announced bus port.
pub(crate) struct TlsEndpointProbe;

impl Probe for TlsEndpointProbe {
    fn name(&self) -> ProbeId {
        ProbeId::TlsEndpoint
    }

    fn run(&self, ctx: Arc<ProbeContext>) -> ProbeFuture {
        Box::pin(async move {
            let mut targets = Vec::new();
            for node in &ctx.targets {
                let (bus_port, bus_source) = match ctx.topology.bus_ports.get(&node.to_string()) {
                    Some(p) => (*p, "announced in CLUSTER NODES"),
                    None => (
                        node.port.saturating_add(10000),
                        "not announced (node not observed): port + 10000",
                    ),
                };
                for (port, bus) in [(node.port, false), (bus_port, true)] {
                    targets.push(Target {
                        subject: format!("{}:{port} {}", node.host, if bus { "bus" } else { "client" }),
                        method: format!(
                            "one ClientHello per version TLSv1.0-1.2 (first record read only); full TLS 1.3 handshake with \
                             and without the client certificate and one round trip (TLSv1.3 is accepted when the one with \
                             the certificate completes; a TLSv1.3-only ClientHello is sent only when it does not); chain \
                             verified against the configured CA{}",
                            if bus { format!("; bus port {bus_source}") } else { String::new() }
                        ),
                        input: (node.clone(), port, bus),
                    });
                }
            }
            per_target(
                ProbeId::TlsEndpoint,
                "TLS probe",
                ctx.timeouts.probe(),
                targets,
                |(node, port, bus)| {
                    let ctx = ctx.clone();
                    async move {
                        observe_endpoint(ctx, node, port, bus)
                            .await
                            .map(|v| Observation::TlsEndpoint(Box::new(v)))
                    }
                },
            )
            .await
        })
    }
}
