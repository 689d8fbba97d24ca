//! A small Redis client over TLS where every await has a deadline.
//!
//! The protocol is the `redis` crate's: replies are [`redis::Value`]s read
//! by its incremental parser ([`redis::parse_redis_value_async`]) and
//! commands are packed by [`redis::pack_command`]. What is ours is only the
//! connection around it, for three reasons the crate's connection types do
//! not meet: the auditor's own rustls configuration (its CA only, a client
//! certificate, a recording verifier, an optional fixed server name), a
//! deadline on every await that names the operation that stalled, and
//! errors that can never contain an argument (AUTH carries a password).

use std::time::Duration;

use combine::parser::combinator::AnySendSyncPartialState;
use combine::stream::{Decoder, PointerOffset};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use crate::evidence::{FailureKind, ProbeFailure, Reach};
use crate::net::{NodeAddr, Timeouts};
use crate::secret::Secret;
use crate::tls::TlsClient;

/// A decoded reply: the `redis` crate's own type, re-exported for the lab
/// and the tests (they do not depend on `redis` themselves).
pub use redis::Value;

/// The text of an error reply as the server sent it (`NOPERM ...`).
pub fn error_text(e: &redis::ServerError) -> String {
    match e.details() {
        Some(d) => format!("{} {d}", e.code()),
        None => e.code().to_string(),
    }
}

/// The incremental RESP parser's state for one connection: bytes read but
/// not yet decoded stay here between replies (pipelines).
pub struct ReplyDecoder(Decoder<AnySendSyncPartialState, PointerOffset<[u8]>>);

impl Default for ReplyDecoder {
    fn default() -> Self {
        ReplyDecoder(Decoder::new())
    }
}

impl ReplyDecoder {
    /// Reads the next reply from `rd` (no deadline of its own: callers
    /// bound it). The error says what went wrong, never what was sent.
    ///
    /// At most [`MAX_REPLY_BYTES`] are read for one reply: a node that
    /// sends more (a hostile or broken peer announcing a 1 GiB bulk string)
    /// ends this connection with [`ReadError::TooLarge`] instead of
    /// growing the buffer without bound. Whether the peer closed the
    /// connection is decided by observing a zero-byte read, not by the
    /// parser's error text.
    pub(crate) async fn next<R: AsyncRead + Unpin>(
        &mut self,
        rd: &mut R,
    ) -> Result<redis::Value, ReadError> {
        self.next_capped(rd, MAX_REPLY_BYTES).await
    }

    /// [`ReplyDecoder::next`] with another cap (tests).
    pub async fn next_capped<R: AsyncRead + Unpin>(
        &mut self,
        rd: &mut R,
        limit: usize,
    ) -> Result<redis::Value, ReadError> {
        let mut metered = Metered {
            inner: rd,
            read: 0,
            limit,
            eof: false,
        };
        let r = redis::parse_redis_value_async(&mut self.0, &mut metered).await;
        r.map_err(|e| {
            if metered.read > limit {
                ReadError::TooLarge(limit)
            } else if metered.eof {
                ReadError::Closed
            } else if e.kind() == redis::ErrorKind::Io {
                ReadError::Io(e.to_string())
            } else {
                ReadError::NotResp(e.to_string())
            }
        })
    }
}

/// The most bytes read for one reply (16 MiB). The largest replies the
/// audit asks for (CLUSTER NODES of a large cluster, COMMAND DOCS, a SCAN
/// batch) are well under 1 MiB.
pub(crate) const MAX_REPLY_BYTES: usize = 16 << 20;

/// Counts the bytes read for one reply and notes a zero-byte read (the
/// peer closed the connection).
struct Metered<'a, R> {
    inner: &'a mut R,
    read: usize,
    limit: usize,
    eof: bool,
}

fn over_cap() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, "reply over the size cap")
}

impl<R: AsyncRead + Unpin> AsyncRead for Metered<'_, R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.read > this.limit {
            return Poll::Ready(Err(over_cap()));
        }
        let before = buf.filled().len();
        let wanted = buf.remaining();
        let r = std::pin::Pin::new(&mut *this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let n = buf.filled().len() - before;
            this.read += n;
            this.eof |= n == 0 && wanted > 0;
            if this.read > this.limit {
                return Poll::Ready(Err(over_cap()));
            }
        }
        r
    }
}

/// Why a reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The server closed the connection.
    #[error("closed by the server")]
    Closed,
    /// The reply exceeded the size cap (bytes).
    #[error("the reply exceeded {} MiB, the most epic-audit reads for one reply; the connection was dropped", .0 >> 20)]
    TooLarge(usize),
    /// The connection broke.
    #[error("{0}")]
    Io(String),
    /// Bytes that are not RESP.
    #[error("{0}")]
    NotResp(String),
}

/// Why talking to a node failed. Messages name the node and the command
/// (never its arguments), so they are safe to put in a report.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConnError {
    /// TCP connect failed (refused, unreachable, ...).
    #[error("TCP connect to {addr} failed: {reason}")]
    Connect { addr: String, reason: String },
    /// An operation exceeded its deadline.
    #[error("{op} on {addr} got no answer within {ms} ms")]
    Timeout { addr: String, op: String, ms: u64 },
    /// TLS handshake or certificate verification failed.
    #[error("TLS with {addr} failed: {reason}")]
    Tls { addr: String, reason: String },
    /// AUTH was refused.
    #[error("authentication as {user} on {addr} was refused: {reply}")]
    Auth {
        addr: String,
        user: String,
        reply: String,
    },
    /// The server answered a command with an error reply.
    #[error("{addr} answered {cmd} with: {reply}")]
    Server {
        addr: String,
        cmd: String,
        reply: String,
    },
    /// The connection was closed or broke mid-reply.
    #[error("connection to {addr} broke during {op}: {reason}")]
    Io {
        addr: String,
        op: String,
        reason: String,
    },
    /// Bytes that are not RESP.
    #[error("{addr} sent a reply to {op} that is not valid RESP: {reason}")]
    Protocol {
        addr: String,
        op: String,
        reason: String,
    },
}

impl ConnError {
    /// A short stable kind for evidence (`timeout`, `connect`, ...).
    pub(crate) fn kind(&self) -> FailureKind {
        match self {
            ConnError::Connect { .. } => FailureKind::Connect,
            ConnError::Timeout { .. } => FailureKind::Timeout,
            ConnError::Tls { .. } => FailureKind::Tls,
            ConnError::Auth { .. } => FailureKind::Auth,
            ConnError::Server { .. } => FailureKind::ServerError,
            ConnError::Io { .. } => FailureKind::Io,
            ConnError::Protocol { .. } => FailureKind::Protocol,
        }
    }
}

impl From<ConnError> for ProbeFailure {
    fn from(e: ConnError) -> Self {
        ProbeFailure {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// A byte stream a connection runs over (TLS or plain TCP).
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One connection to one node.
pub struct RedisConn {
    stream: Box<dyn Stream>,
    decoder: ReplyDecoder,
    addr: String,
    command_timeout: Duration,
    /// Held from before the handshake until the first reply was read (see
    /// [`TlsClient::gate`]).
    gate: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// Set while a command is in flight and left set when it did not
    /// complete (deadline, broken stream, cancelled caller): replies may be
    /// pending, so the connection must not be used again.
    broken: bool,
    /// How the connection reached the node (`None`: wrapped stream).
    reached: Option<Reach>,
}

/// Name of a command for messages: the command word and, for container
/// commands, the subcommand. Never any other argument.
pub(crate) fn command_name(args: &[&[u8]]) -> String {
    let word = |b: &[u8]| String::from_utf8_lossy(b).to_ascii_uppercase();
    match args {
        [] => "(empty)".to_string(),
        [c, sub, ..]
            if matches!(
                word(c).as_str(),
                "CLUSTER" | "CONFIG" | "ACL" | "CLIENT" | "COMMAND" | "MEMORY" | "OBJECT"
            ) =>
        {
            format!("{} {}", word(c), word(sub))
        }
        [c, ..] => word(c),
    }
}

/// Encodes one command as a RESP array of bulk strings (redis-rs packing).
pub(crate) fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    let mut cmd = redis::Cmd::new();
    for a in args {
        cmd.arg(*a);
    }
    cmd.write_packed_command(out);
}

impl RedisConn {
    /// Opens TCP then TLS to `addr`, each step bounded by `connect_ms`.
    pub async fn connect(
        addr: &NodeAddr,
        tls: &TlsClient,
        timeouts: &Timeouts,
    ) -> Result<RedisConn, ConnError> {
        let a = addr.to_string();
        // Bounded: past the connect deadline, connect without the gate.
        let gate = match tls.gate(&a) {
            Some(g) => timeout(timeouts.connect(), g.lock_owned()).await.ok(),
            None => None,
        };
        // The client port is dialled by the name the cluster announces for
        // the node (else its IP) and its certificate verified against that
        // name: a name that does not resolve, or a certificate that does
        // not name it, ends here, before any credential is sent.
        let host = tls.dial_host(addr);
        let by_name = if host == addr.host {
            String::new()
        } else {
            format!(" (dialled as `{host}`, the name the cluster announces for it)")
        };
        let dialed = match crate::net::dial(&host, addr.port, timeouts.connect()).await {
            Ok(d) => d,
            Err(crate::net::DialError::Timeout(_)) => {
                return Err(ConnError::Timeout {
                    addr: a,
                    op: if by_name.is_empty() {
                        "TCP connect".into()
                    } else {
                        format!("resolving `{host}` and TCP connect")
                    },
                    ms: timeouts.connect_ms,
                })
            }
            Err(e) => {
                return Err(ConnError::Connect {
                    addr: a,
                    reason: format!("{e}{by_name}"),
                })
            }
        };
        let tcp = dialed.stream;
        let _ = tcp.set_nodelay(true);
        let reached = Reach {
            name: host.clone(),
            address: dialed.peer.to_string(),
            verified_as: tls.verified_name(&host).to_string(),
        };
        let name = tls
            .server_name_for(&host)
            .map_err(|reason| ConnError::Tls {
                addr: a.clone(),
                reason,
            })?;
        let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
        let stream = match timeout(timeouts.connect(), connector.connect(name, tcp)).await {
            Err(_) => {
                return Err(ConnError::Timeout {
                    addr: a,
                    op: "TLS handshake".into(),
                    ms: timeouts.connect_ms,
                })
            }
            Ok(Err(e)) => {
                let e = e.to_string();
                // A certificate that names only DNS names, reached by IP:
                // say how a cluster client would reach it instead.
                let hint = if host.parse::<std::net::IpAddr>().is_ok()
                    && tls.server_name.is_none()
                    && e.contains("not valid for name")
                    && e.contains("DnsName(")
                {
                    "; the certificate names only DNS names: if the cluster announces hostnames \
                     (cluster-preferred-endpoint-type hostname), give the seeds by DNS name and the audit \
                     dials every node by its announced name; if it hands clients IPs, the certificate \
                     needs the IP SAN (TLS-006); `server_name` names one certificate shared by every node"
                } else {
                    ""
                };
                return Err(ConnError::Tls {
                    addr: a,
                    reason: format!("{e}{by_name}{hint}"),
                });
            }
            Ok(Ok(s)) => s,
        };
        tls.record_handshake(&a, stream.get_ref().1);
        Ok(RedisConn {
            stream: Box::new(stream),
            decoder: ReplyDecoder::default(),
            addr: a,
            command_timeout: timeouts.command(),
            gate,
            broken: false,
            reached: Some(reached),
        })
    }

    /// Wraps an already-connected stream (plaintext probes, tests).
    #[cfg(test)]
    pub(crate) fn from_stream<S>(stream: S, addr: String, command_timeout: Duration) -> RedisConn
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        RedisConn {
            stream: Box::new(stream),
            decoder: ReplyDecoder::default(),
            addr,
            command_timeout,
            gate: None,
            broken: false,
            reached: None,
        }
    }

    /// Opens a connection and authenticates as `user`.
    pub async fn connect_as(
        addr: &NodeAddr,
        tls: &TlsClient,
        timeouts: &Timeouts,
        user: &str,
        password: &Secret,
    ) -> Result<RedisConn, ConnError> {
        let mut c = RedisConn::connect(addr, tls, timeouts).await?;
        c.auth(user, password).await?;
        Ok(c)
    }

    /// Whether a command did not complete on this connection (its replies
    /// may still be pending): such a connection is never reused.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// The name this connection dialled and the address it resolved to.
    pub(crate) fn reached(&self) -> Option<&Reach> {
        self.reached.as_ref()
    }

    /// The address this connection goes to.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// The underlying stream and the decoder (with any bytes already read
    /// but not decoded), for callers that drive the protocol themselves
    /// (open-loop load).
    pub(crate) fn into_parts(self) -> (Box<dyn Stream>, ReplyDecoder) {
        (self.stream, self.decoder)
    }

    /// `AUTH user password`. The error names the user, never the password.
    pub(crate) async fn auth(&mut self, user: &str, password: &Secret) -> Result<(), ConnError> {
        let args: [&[u8]; 3] = [b"AUTH", user.as_bytes(), password.expose().as_bytes()];
        match self.raw(&[&args[..]], "AUTH").await?.pop() {
            Some(redis::Value::Okay | redis::Value::SimpleString(_)) => Ok(()),
            Some(redis::Value::ServerError(e)) => Err(ConnError::Auth {
                addr: self.addr.clone(),
                user: user.to_string(),
                reply: error_text(&e),
            }),
            other => Err(ConnError::Protocol {
                addr: self.addr.clone(),
                op: "AUTH".into(),
                reason: format!("unexpected reply {}", describe(other.as_ref())),
            }),
        }
    }

    /// Sends one command; an error reply becomes [`ConnError::Server`].
    pub(crate) async fn cmd(&mut self, args: &[&[u8]]) -> Result<redis::Value, ConnError> {
        let name = command_name(args);
        match self.raw(&[args], &name).await?.pop() {
            Some(redis::Value::ServerError(e)) => Err(ConnError::Server {
                addr: self.addr.clone(),
                cmd: name,
                reply: error_text(&e),
            }),
            Some(f) => Ok(f),
            None => Err(ConnError::Protocol {
                addr: self.addr.clone(),
                op: name,
                reason: "no reply".into(),
            }),
        }
    }

    /// Convenience: a command given as string words.
    pub async fn cmd_str(&mut self, words: &[&str]) -> Result<redis::Value, ConnError> {
        let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        self.cmd(&args).await
    }

    /// Sends many commands in one write and reads all replies, under one
    /// deadline. Error replies are returned in place as `redis::Value::ServerError`.
    pub async fn pipeline(
        &mut self,
        cmds: &[Vec<Vec<u8>>],
    ) -> Result<Vec<redis::Value>, ConnError> {
        let refs: Vec<Vec<&[u8]>> = cmds
            .iter()
            .map(|c| c.iter().map(Vec::as_slice).collect())
            .collect();
        let slices: Vec<&[&[u8]]> = refs.iter().map(Vec::as_slice).collect();
        let op = match slices.first() {
            Some(first) => format!("pipeline of {} ({}...)", slices.len(), command_name(first)),
            None => return Ok(Vec::new()),
        };
        self.raw(&slices, &op).await
    }

    async fn raw(&mut self, cmds: &[&[&[u8]]], op: &str) -> Result<Vec<redis::Value>, ConnError> {
        let deadline = self.command_timeout;
        let addr = self.addr.clone();
        self.broken = true;
        let r = timeout(deadline, self.exchange(cmds, op)).await;
        // The first reply came with the node's session tickets (or the
        // connection failed): the next connection may go.
        self.gate = None;
        match r {
            Ok(Ok(frames)) => {
                self.broken = false;
                Ok(frames)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ConnError::Timeout {
                addr,
                op: op.to_string(),
                ms: deadline.as_millis() as u64,
            }),
        }
    }

    async fn exchange(
        &mut self,
        cmds: &[&[&[u8]]],
        op: &str,
    ) -> Result<Vec<redis::Value>, ConnError> {
        let mut out = Vec::new();
        for c in cmds {
            encode_command(&mut out, c);
        }
        let io_err = |e: std::io::Error| ConnError::Io {
            addr: self.addr.clone(),
            op: op.to_string(),
            reason: e.to_string(),
        };
        self.stream.write_all(&out).await.map_err(io_err)?;
        self.stream.flush().await.map_err(io_err)?;
        let mut frames = Vec::with_capacity(cmds.len());
        while frames.len() < cmds.len() {
            match self.decoder.next(&mut self.stream).await {
                Ok(f) => frames.push(f),
                Err(e @ (ReadError::NotResp(_) | ReadError::TooLarge(_))) => {
                    return Err(ConnError::Protocol {
                        addr: self.addr.clone(),
                        op: op.to_string(),
                        reason: e.to_string(),
                    })
                }
                Err(e) => {
                    return Err(ConnError::Io {
                        addr: self.addr.clone(),
                        op: op.to_string(),
                        reason: e.to_string(),
                    })
                }
            }
        }
        Ok(frames)
    }
}

/// Short description of a frame for "unexpected reply" messages.
pub(crate) fn describe(f: Option<&redis::Value>) -> String {
    match f {
        None => "nothing".into(),
        Some(redis::Value::Okay) => "status `OK`".into(),
        Some(redis::Value::SimpleString(s)) => format!("status `{s}`"),
        Some(redis::Value::ServerError(e)) => format!("error `{}`", error_text(e)),
        Some(redis::Value::Int(i)) => format!("integer {i}"),
        Some(redis::Value::BulkString(b)) => format!("a {}-byte string", b.len()),
        Some(redis::Value::Array(a)) => format!("an array of {}", a.len()),
        Some(redis::Value::Nil) => "null".into(),
        Some(_) => "a RESP3 value".into(),
    }
}

/// The frame as UTF-8 text (simple or bulk string).
pub fn as_text(f: &redis::Value) -> Option<String> {
    match f {
        redis::Value::Okay => Some("OK".into()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into()),
        _ => None,
    }
}

/// The (key, value) pairs of a map reply: a RESP3 map, or the RESP2 flat
/// array of alternating keys and values (CLUSTER SHARDS, ACL GETUSER, ACL
/// LOG entries, COMMAND DOCS).
pub(crate) fn map_pairs(f: &redis::Value) -> Result<Vec<(String, &redis::Value)>, String> {
    match f {
        redis::Value::Map(kv) => kv
            .iter()
            .map(|(k, v)| {
                as_text(k)
                    .map(|k| (k, v))
                    .ok_or_else(|| format!("map key is {}", describe(Some(k))))
            })
            .collect(),
        redis::Value::Array(items) if items.len() % 2 == 0 => items
            .chunks(2)
            .map(|kv| {
                as_text(&kv[0])
                    .map(|k| (k, &kv[1]))
                    .ok_or_else(|| format!("map key is {}", describe(Some(&kv[0]))))
            })
            .collect(),
        redis::Value::Array(_) => Err("map with an odd number of elements".into()),
        other => Err(format!("expected a map, got {}", describe(Some(other)))),
    }
}

/// Parses `key:value` lines (INFO, CLUSTER INFO) into a map.
pub fn parse_info(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn command_names_never_include_arguments() {
        assert_eq!(command_name(&[b"auth", b"user", b"pw"]), "AUTH");
        assert_eq!(command_name(&[b"cluster", b"nodes"]), "CLUSTER NODES");
        assert_eq!(command_name(&[b"get", b"session:abc"]), "GET");
    }

    #[test]
    fn encodes_resp_arrays() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"PING"]);
        assert_eq!(out, b"*1\r\n$4\r\nPING\r\n");
    }

    #[tokio::test]
    async fn silent_server_times_out_naming_the_command() {
        let (client, _server) = tokio::io::duplex(64);
        let mut c = RedisConn::from_stream(client, "x:1".into(), Duration::from_millis(50));
        let e = c.cmd_str(&["CLUSTER", "INFO"]).await.unwrap_err();
        assert_eq!(
            e,
            ConnError::Timeout {
                addr: "x:1".into(),
                op: "CLUSTER INFO".into(),
                ms: 50
            }
        );
    }

    /// A command that did not complete (its caller's deadline cancelled
    /// it, or the server was silent) leaves its reply pending: the
    /// connection says it is broken, so the shared pool never hands the
    /// next probe a reply meant for another command. A server error reply
    /// is a completed exchange and leaves it usable.
    #[tokio::test]
    async fn an_unfinished_command_leaves_the_connection_broken() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut c = RedisConn::from_stream(client, "x:1".into(), Duration::from_secs(5));
        let cancelled = tokio::time::timeout(Duration::from_millis(30), c.cmd_str(&["PING"])).await;
        assert!(cancelled.is_err());
        assert!(c.is_broken());
        let mut b = [0u8; 256];
        let _ = server.read(&mut b).await;
        let _ = server.write_all(b"+PONG\r\n").await;

        let (client, mut server) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            let mut b = [0u8; 256];
            let _ = server.read(&mut b).await;
            let _ = server.write_all(b"-NOPERM no\r\n").await;
        });
        let mut c = RedisConn::from_stream(client, "x:1".into(), Duration::from_secs(5));
        assert!(!c.is_broken());
        let e = c.cmd_str(&["CONFIG", "GET", "x"]).await.unwrap_err();
        assert_eq!(e.kind(), "server_error");
        assert!(!c.is_broken());

        let (client, _server) = tokio::io::duplex(64);
        let mut c = RedisConn::from_stream(client, "x:1".into(), Duration::from_millis(30));
        assert_eq!(c.cmd_str(&["PING"]).await.unwrap_err().kind(), "timeout");
        assert!(c.is_broken());
    }

    #[tokio::test]
    async fn auth_error_never_contains_the_password() {
        let (client, mut server) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            let mut b = [0u8; 256];
            let _ = server.read(&mut b).await;
            let _ = server
                .write_all(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
                .await;
        });
        let mut c = RedisConn::from_stream(client, "x:1".into(), Duration::from_secs(2));
        let e = c
            .auth("app_user", &Secret::new("pw-123-xyz"))
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("WRONGPASS") && msg.contains("app_user"),
            "{msg}"
        );
        assert!(!msg.contains("pw-123-xyz"), "{msg}");
    }

    #[tokio::test]
    async fn garbage_reply_is_a_protocol_error_not_a_panic() {
        let (client, mut server) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            let mut b = [0u8; 256];
            let _ = server.read(&mut b).await;
            let _ = server.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        });
        let mut c = RedisConn::from_stream(client, "x:1".into(), Duration::from_secs(2));
        let e = c.cmd_str(&["PING"]).await.unwrap_err();
        assert_eq!(e.kind(), "protocol", "{e}");
    }

    #[tokio::test]
    async fn an_oversized_reply_is_refused_not_buffered() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            // Announces 1 GiB and keeps sending.
            let _ = server.write_all(b"$1073741824\r\n").await;
            let chunk = vec![b'x'; 1 << 15];
            for _ in 0..64 {
                if server.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        let mut d = ReplyDecoder::default();
        let e = d.next_capped(&mut client, 1 << 20).await.unwrap_err();
        assert_eq!(e, ReadError::TooLarge(1 << 20));
        assert!(e.to_string().contains("1 MiB"), "{e}");
    }

    #[tokio::test]
    async fn a_closed_connection_is_closed_and_a_short_reply_too() {
        for sent in [&b""[..], b"$10\r\nabc", b"*3\r\n:1\r\n"] {
            let (mut client, mut server) = tokio::io::duplex(1024);
            server.write_all(sent).await.unwrap();
            drop(server);
            let e = ReplyDecoder::default().next(&mut client).await.unwrap_err();
            assert_eq!(e, ReadError::Closed, "{sent:?}");
        }
    }

    #[tokio::test]
    async fn a_reply_under_the_cap_is_read_whole() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        let body = vec![b'y'; 100_000];
        let mut wire = b"$100000\r\n".to_vec();
        wire.extend_from_slice(&body);
        wire.extend_from_slice(b"\r\n+OK\r\n");
        tokio::spawn(async move { server.write_all(&wire).await });
        let mut d = ReplyDecoder::default();
        assert_eq!(
            d.next(&mut client).await.unwrap(),
            redis::Value::BulkString(body)
        );
        assert_eq!(d.next(&mut client).await.unwrap(), redis::Value::Okay);
    }
}
