//! Transport security, observed live on every node's client and bus port.
//!
//! - Protocol versions: one hand-built ClientHello per version ([`hello`]),
//!   reading only the server's first record.
//! - A full TLS 1.3 handshake (rustls) presenting the client certificate,
//!   then one round trip; and the same without a client certificate, which
//!   must be refused (with TLS 1.3 the refusal arrives on the first read).
//! - The served chain, captured by a verifier that wraps a WebPKI verifier
//!   built from the configured CA only and records why validation failed
//!   instead of failing ([`Capture`]).
//! - `CONFIG GET` of the TLS settings and a plaintext PING on any plaintext
//!   port. Credentials are only sent to a node whose certificate chains to
//!   the configured CA and names the node (expiry alone is tolerated here,
//!   and judged by its own check).
//!
//! Nothing is written: no AUTH is sent on the probing connections, and the
//! config connection only reads.

pub mod cert;
pub mod hello;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::timeout;

use super::scaffold::{per_target, Probe, ProbeContext, ProbeFuture, Target};
use crate::config::NodeAddr;
use crate::evidence::{
    CertInfo, FailureKind, HandshakeResult, Observation, PlaintextProbe, PlaintextSource, PortKind,
    ProbeFailure, ProbeId, TlsConfigView, TlsEndpointView, VersionOutcome, VersionResult,
};
use crate::resp::{as_text, RedisConn};
use hello::{client_hello, parse_server_answer, Parse, ServerAnswer, TlsVersion};

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

fn random32() -> [u8; 32] {
    crate::secret::random()
}

fn err_text(e: &rustls::Error) -> String {
    e.to_string()
}

/// Verifies like WebPKI but at a time inside the leaf's validity, so the
/// chain and name are judged without the clock.
fn verify_at_valid_time(
    inner: &WebPkiServerVerifier,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    name: &ServerName<'_>,
) -> Result<(), rustls::Error> {
    let info = cert::cert_info(end_entity).map_err(rustls::Error::General)?;
    let t = UnixTime::since_unix_epoch(Duration::from_secs(
        info.not_before.timestamp().max(0) as u64 + 1,
    ));
    inner
        .verify_server_cert(end_entity, intermediates, name, &[], t)
        .map(|_| ())
}

fn is_name_error(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    )
}

fn is_time_error(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. }
        )
    )
}

/// The signature-verification half of a `ServerCertVerifier`, delegated to
/// the wrapped WebPKI verifier in `self.inner` (shared by the verifiers
/// below, which differ only in how they judge the certificate itself).
macro_rules! delegate_signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.inner.supported_verify_schemes()
        }
    };
}

/// What the capturing verifier saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Captured {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Verification now.
    pub now: Option<Result<(), String>>,
    /// Chain-only verification at a valid time (name errors ignored).
    pub chain_only: Option<Result<(), String>>,
}

/// A verifier that records the chain and the WebPKI verdicts and lets the
/// handshake continue, so one connection yields all the evidence. Used only
/// on probing connections that carry no credentials.
#[derive(Debug)]
pub(crate) struct Capture {
    inner: Arc<WebPkiServerVerifier>,
    /// What was seen.
    pub seen: Mutex<Captured>,
}

impl Capture {
    /// A capturing verifier over the configured CA.
    pub(crate) fn new(roots: Arc<rustls::RootCertStore>) -> Result<Arc<Capture>, String> {
        let inner = WebPkiServerVerifier::builder(roots)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(Capture {
            inner,
            seen: Mutex::new(Captured::default()),
        }))
    }
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ())
            .map_err(|e| err_text(&e));
        let chain_only =
            match verify_at_valid_time(&self.inner, end_entity, intermediates, server_name) {
                Ok(()) => Ok(()),
                Err(e) if is_name_error(&e) => Ok(()),
                Err(e) => Err(err_text(&e)),
            };
        if let Ok(mut s) = self.seen.lock() {
            s.chain = std::iter::once(end_entity.clone().into_owned())
                .chain(intermediates.iter().map(|c| c.clone().into_owned()))
                .collect();
            s.now = Some(verdict);
            s.chain_only = Some(chain_only);
        }
        Ok(ServerCertVerified::assertion())
    }

    delegate_signature_checks!();
}

/// WebPKI verification that tolerates only an expired or not-yet-valid
/// leaf (judged by its own check), for the connection that reads config:
/// the node must still prove it holds a CA-issued certificate for its name
/// before credentials are sent.
#[derive(Debug)]
pub(crate) struct TimeTolerant {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for TimeTolerant {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(e) if is_time_error(&e) => {
                verify_at_valid_time(&self.inner, end_entity, intermediates, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    delegate_signature_checks!();
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
        version: version.name().to_string(),
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
                return if v == version.wire() {
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

/// What a full handshake does once it completed.
enum After {
    /// A client port: one PING, which must be answered.
    Ping,
    /// A bus port, which speaks only the cluster protocol and so answers
    /// nothing: wait for the server's verdict (see [`AlertWait`]).
    Alert(AlertWait),
}

/// How a bus-port handshake learns whether the server accepted it. With
/// TLS 1.3 the server judges the client's certificate after the client
/// finished its handshake, so its verdict comes one round trip later: a
/// session ticket, or a refusal alert. OpenSSL issues tickets only once it
/// accepted the client's certificate and Finished, and a server that
/// requested client authentication cannot compute one before it has them
/// (RFC 8446 4.6.1). A server that issues no tickets (OpenSSL
/// `NumTickets = 0`; Redis's `tls-session-caching no` still issues them)
/// answers an accepted handshake with silence, which is evidence of
/// acceptance only once a refusal would surely have arrived: the wait
/// below.
enum AlertWait {
    /// The handshake without a client certificate, which the port should
    /// refuse: wait [`rtt_wait`], and report how long after the handshake
    /// the refusal came (`None`: none came).
    Report(Duration, oneshot::Sender<Option<Duration>>),
    /// The handshake with the client certificate, which runs at the same
    /// time on the same port: wait four times the latency of that port's
    /// refusal of the other handshake (the same alert at the same protocol
    /// point, measured on this server under the audit's own load), at least
    /// 100 ms. When the other handshake was not refused, wait [`rtt_wait`].
    SizedBy(Duration, oneshot::Receiver<Option<Duration>>),
}

/// The wait for an alert when nothing better is known: twenty times the
/// TCP connect time, 100–500 ms. The connect time grows with the audit's
/// own load, not only with the network, so this is a fallback.
fn rtt_wait(rtt: Duration, command: Duration) -> (Duration, String) {
    let wait = (rtt * 20)
        .clamp(Duration::from_millis(100), Duration::from_millis(500))
        .min(command);
    (
        wait,
        format!(
            "20x the {} ms TCP connect time, 100-500 ms",
            rtt.as_millis()
        ),
    )
}

/// The wait for an alert after the handshake with the client certificate,
/// given the `latency` in which the same port refused the handshake
/// without one: four times that, at least 100 ms.
fn refusal_wait(latency: Duration, command: Duration) -> (Duration, String) {
    let floor = Duration::from_millis(100);
    (
        (latency * 4).clamp(floor, command.max(floor)),
        format!(
            "4x the {} ms in which this port refused the handshake without a client certificate, \
             at least 100 ms",
            latency.as_millis()
        ),
    )
}

/// A session store that keeps nothing and says when the server issued a
/// ticket: on a probing connection, the server's word that it accepted
/// the handshake.
#[derive(Debug, Default)]
struct TicketSignal(tokio::sync::Notify);

impl rustls::client::ClientSessionStore for TicketSignal {
    fn set_kx_hint(&self, _: ServerName<'static>, _: rustls::NamedGroup) {}
    fn kx_hint(&self, _: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        None
    }
    fn set_tls12_session(
        &self,
        _: ServerName<'static>,
        _: rustls::client::Tls12ClientSessionValue,
    ) {
    }
    fn tls12_session(&self, _: &ServerName<'_>) -> Option<rustls::client::Tls12ClientSessionValue> {
        None
    }
    fn remove_tls12_session(&self, _: &ServerName<'static>) {}
    fn insert_tls13_ticket(
        &self,
        _: ServerName<'static>,
        _: rustls::client::Tls13ClientSessionValue,
    ) {
        self.0.notify_one();
    }
    fn take_tls13_ticket(
        &self,
        _: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        None
    }
}

/// What ended the wait after a bus-port handshake.
enum Answer {
    Read(std::io::Result<usize>),
    Ticket,
    Silence,
}

/// Reads after a bus-port handshake until the server answers (a session
/// ticket or cluster protocol is acceptance; an alert or a close is a
/// refusal) or the wait `how` sizes ends in silence, which counts as
/// acceptance. `ticket` completes when the server issued a session ticket.
async fn await_alert<S: tokio::io::AsyncRead + Unpin>(
    tls: &mut S,
    buf: &mut [u8],
    how: AlertWait,
    command: Duration,
    ticket: impl std::future::Future<Output = ()>,
) -> (bool, String) {
    let started = Instant::now();
    let read = tls.read(buf);
    tokio::pin!(read, ticket);
    let (rtt, mut wait, mut basis, report, mut peer) = match how {
        AlertWait::Report(rtt, report) => {
            let (wait, basis) = rtt_wait(rtt, command);
            (rtt, wait, basis, Some(report), None)
        }
        // Until the other handshake reports, wait up to the command
        // deadline; its report then sets the real deadline (which may
        // already have passed).
        AlertWait::SizedBy(rtt, peer) => (
            rtt,
            command,
            format!("the {} ms command deadline", command.as_millis()),
            None,
            Some(peer),
        ),
    };
    let mut heard = false;
    let answer = loop {
        tokio::select! {
            r = &mut read => break Answer::Read(r),
            _ = &mut ticket => break Answer::Ticket,
            _ = tokio::time::sleep_until((started + wait).into()) => break Answer::Silence,
            latency = async {
                match peer.as_mut() {
                    Some(rx) => rx.await.ok().flatten(),
                    None => std::future::pending().await,
                }
            }, if peer.is_some() && !heard => {
                heard = true;
                (wait, basis) = match latency {
                    Some(l) => refusal_wait(l, command),
                    None => rtt_wait(rtt, command),
                };
            }
        }
    };
    if let Some(report) = report {
        let refused = matches!(answer, Answer::Read(Ok(0)) | Answer::Read(Err(_)));
        let _ = report.send(refused.then(|| started.elapsed()));
    }
    match answer {
        Answer::Ticket => (
            true,
            "the server issued a session ticket after the handshake, so it accepted it".to_string(),
        ),
        Answer::Silence => (
            true,
            format!(
                "no alert within {} ms after the handshake ({basis})",
                wait.as_millis()
            ),
        ),
        Answer::Read(Ok(0)) => (
            false,
            "closed by the server right after the handshake".to_string(),
        ),
        Answer::Read(Ok(n)) => (true, format!("{n} bytes of cluster protocol")),
        Answer::Read(Err(e)) => (false, format!("refused after the handshake: {e}")),
    }
}

/// A full TLS 1.3 handshake, with or without the client certificate, and
/// what [`After`] says to do once it completed.
async fn full_handshake(
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

async fn observe_endpoint(
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
    // An endpoint that does not accept TCP is unobserved, not "refused".
    // The connect time is also the fallback size of a bus-port alert wait.
    let t0 = Instant::now();
    match timeout(ctx.timeouts.connect(), TcpStream::connect(&addr)).await {
        Err(_) => {
            return Err(ProbeFailure {
                kind: FailureKind::Timeout,
                message: format!(
                    "TCP connect to {addr} got no answer within {} ms",
                    ctx.timeouts.connect_ms
                ),
            })
        }
        Ok(Err(e)) => {
            return Err(ProbeFailure {
                kind: FailureKind::Connect,
                message: format!("TCP connect to {addr} failed: {e}"),
            })
        }
        Ok(Ok(_)) => {}
    }
    let rtt = t0.elapsed();
    let sni = ctx
        .tls
        .server_name
        .clone()
        .unwrap_or_else(|| node.host.clone());
    // The version probes below TLS 1.3 and the two full handshakes are
    // independent connections: run them together. TLS 1.3 itself is
    // proven by the full handshake (a TLS 1.3-only ClientHello that
    // completed), which spares the node one more signature; a separate
    // TLS 1.3-only ClientHello is sent only when that handshake did not
    // complete, to tell a refused version from another failure.
    let offer = |v| {
        offer_version(
            &addr,
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
                    full_handshake(&ctx, &node.host, &addr, after_with, true, cap.clone()).await;
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
            Ok(cap) => full_handshake(&ctx, &node.host, &addr, after_without, false, cap).await,
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
                version: TlsVersion::Tls13.name().to_string(),
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
        .filter_map(|c| cert::cert_info(c).ok())
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

async fn observe_config(
    ctx: &ProbeContext,
    node: &NodeAddr,
) -> Result<TlsConfigView, ProbeFailure> {
    // The audit's shared connection first (the node's certificate was
    // verified in full when discovery opened it). Only when that
    // verification failed is the node given
    // a chance with an expired or not-yet-valid leaf (`TimeTolerant`, a
    // full handshake of its own, never sharing sessions with the first).
    let mut words = vec!["CONFIG", "GET"];
    words.extend(CONFIG_KEYS);
    let f = match ctx.conn(node).await {
        Ok(mut c) => c.cmd_str(&words).await?,
        Err(crate::resp::ConnError::Tls { .. }) => {
            let mut c = tolerant_connect(ctx, node).await?;
            c.auth(&ctx.user, &ctx.password).await?;
            c.cmd_str(&words).await?
        }
        Err(e) => return Err(e.into()),
    };
    let mut config = std::collections::BTreeMap::new();
    if let crate::resp::Frame::Array(items) = &f {
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
                "{node}: CONFIG GET returned {}",
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
async fn tolerant_connect(ctx: &ProbeContext, node: &NodeAddr) -> Result<RedisConn, ProbeFailure> {
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
                "CONFIG GET {} as {} (sent only after the node's certificate chains to the configured CA \
                 for its name); TCP connect + inline PING on the plaintext port if one is configured, \
                 on any plaintext port the cluster advertises for the node, and on the policy's extra ports",
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const COMMAND: Duration = Duration::from_secs(5);

    /// [`await_alert`] on `near`, from a server that issues no ticket.
    async fn answer(near: &mut tokio::io::DuplexStream, how: AlertWait) -> (bool, String) {
        let mut buf = [0u8; 16];
        await_alert(near, &mut buf, how, COMMAND, std::future::pending()).await
    }

    /// A bus-port wait with a silent server (the far end stays open and
    /// sends nothing), its sizing given by `how`.
    async fn silent(how: AlertWait) -> (bool, String) {
        let (mut near, _far) = tokio::io::duplex(64);
        answer(&mut near, how).await
    }

    #[tokio::test]
    async fn the_wait_is_four_times_the_ports_refusal_of_the_other_handshake() {
        let (tx, rx) = oneshot::channel();
        tx.send(Some(30 * MS)).unwrap();
        // A slow connect (200 ms) would have meant the 500 ms cap.
        let (accepted, detail) = silent(AlertWait::SizedBy(200 * MS, rx)).await;
        assert!(accepted, "{detail}");
        assert_eq!(
            detail,
            "no alert within 120 ms after the handshake (4x the 30 ms in which this port refused \
             the handshake without a client certificate, at least 100 ms)"
        );
    }

    #[tokio::test]
    async fn a_fast_refusal_still_means_a_wait_of_100_ms() {
        let (tx, rx) = oneshot::channel();
        tx.send(Some(2 * MS)).unwrap();
        let (_, detail) = silent(AlertWait::SizedBy(MS, rx)).await;
        assert!(detail.starts_with("no alert within 100 ms "), "{detail}");
    }

    #[tokio::test]
    async fn without_a_refusal_to_measure_the_connect_time_sizes_the_wait() {
        for sent in [true, false] {
            let (tx, rx) = oneshot::channel();
            if sent {
                // The other handshake was not refused.
                tx.send(None).unwrap();
            } else {
                // The other handshake ended without a report.
                drop(tx);
            }
            let (_, detail) = silent(AlertWait::SizedBy(12 * MS, rx)).await;
            assert_eq!(
                detail,
                "no alert within 240 ms after the handshake (20x the 12 ms TCP connect time, \
                 100-500 ms)"
            );
        }
    }

    #[tokio::test]
    async fn a_refusal_is_reported_with_its_latency_and_is_a_refusal() {
        let (mut near, far) = tokio::io::duplex(64);
        tokio::spawn(async move {
            tokio::time::sleep(40 * MS).await;
            drop(far);
        });
        let (tx, rx) = oneshot::channel();
        let (accepted, detail) = answer(&mut near, AlertWait::Report(25 * MS, tx)).await;
        assert!(!accepted, "{detail}");
        assert_eq!(detail, "closed by the server right after the handshake");
        let latency = rx.await.unwrap().expect("a refusal reports its latency");
        assert!(latency >= 40 * MS, "{latency:?}");
    }

    #[tokio::test]
    async fn silence_on_the_refusing_side_reports_no_latency() {
        let (tx, rx) = oneshot::channel();
        let (accepted, detail) = silent(AlertWait::Report(MS, tx)).await;
        assert!(accepted, "{detail}");
        assert_eq!(rx.await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_alert_before_the_other_handshake_reports_is_a_refusal() {
        let (mut near, far) = tokio::io::duplex(64);
        drop(far);
        // The other handshake never reports (its sender is kept alive).
        let (_tx, rx) = oneshot::channel();
        let (accepted, detail) = answer(&mut near, AlertWait::SizedBy(MS, rx)).await;
        assert!(!accepted, "{detail}");
    }

    #[tokio::test]
    async fn cluster_protocol_after_the_handshake_is_acceptance() {
        let (mut near, mut far) = tokio::io::duplex(64);
        far.write_all(b"RCmb").await.unwrap();
        let (_tx, rx) = oneshot::channel();
        let (accepted, detail) = answer(&mut near, AlertWait::SizedBy(MS, rx)).await;
        assert!(accepted, "{detail}");
        assert_eq!(detail, "4 bytes of cluster protocol");
    }

    /// A session ticket is the server's word that it accepted the
    /// handshake: no wait, and on the refusing side nothing to report.
    #[tokio::test]
    async fn a_session_ticket_is_acceptance_at_once() {
        let (mut near, _far) = tokio::io::duplex(64);
        let signal = TicketSignal::default();
        let (tx, rx) = oneshot::channel();
        let mut buf = [0u8; 16];
        signal.0.notify_one();
        let (accepted, detail) = await_alert(
            &mut near,
            &mut buf,
            AlertWait::Report(Duration::from_secs(1), tx),
            COMMAND,
            signal.0.notified(),
        )
        .await;
        assert!(accepted, "{detail}");
        assert_eq!(
            detail,
            "the server issued a session ticket after the handshake, so it accepted it"
        );
        assert_eq!(rx.await.unwrap(), None);
    }
}
