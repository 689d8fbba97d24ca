//! Where a node is and how long talking to it may take: the two facts every
//! connection needs, in a leaf module that imports nothing of the crate.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Deadlines. Every network operation is bounded by one of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// TCP connect, and separately the TLS handshake, per connection.
    pub connect_ms: u64,
    /// One command (or one pipelined batch) round trip.
    pub command_ms: u64,
    /// Everything one probe does against one node.
    pub probe_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect_ms: 3_000,
            command_ms: 5_000,
            probe_ms: 30_000,
        }
    }
}

impl Timeouts {
    /// Connect deadline as a `Duration`.
    pub(crate) fn connect(&self) -> Duration {
        Duration::from_millis(self.connect_ms)
    }
    /// Command deadline as a `Duration`.
    pub(crate) fn command(&self) -> Duration {
        Duration::from_millis(self.command_ms)
    }
    /// Per-node probe deadline as a `Duration`.
    pub(crate) fn probe(&self) -> Duration {
        Duration::from_millis(self.probe_ms)
    }
}

/// A `host:port` address of a Redis node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(into = "String")]
pub struct NodeAddr {
    /// IP address or DNS name, exactly as given or advertised.
    pub host: String,
    /// TLS client port.
    pub port: u16,
}

impl NodeAddr {
    /// Parses `host:port`, `[v6]:port`.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, p) = rest
                .split_once("]:")
                .ok_or_else(|| format!("`{s}` is not host:port ([v6]:port for IPv6)"))?;
            (h, p)
        } else {
            s.rsplit_once(':')
                .ok_or_else(|| format!("`{s}` is not host:port"))?
        };
        if host.is_empty() {
            return Err(format!("`{s}` has an empty host"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| format!("`{s}`: port `{port}` is not a number from 1 to 65535"))?;
        if port == 0 {
            return Err(format!("`{s}`: port 0 is not a listening port"));
        }
        Ok(NodeAddr {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl From<NodeAddr> for String {
    fn from(a: NodeAddr) -> String {
        a.to_string()
    }
}

impl<'de> Deserialize<'de> for NodeAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NodeAddr::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Why [`dial`] made no connection. Each names the host as dialled and,
/// for a name, what the resolver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DialError {
    /// The resolver gave no address for the name (or failed).
    Resolve(String),
    /// Resolving or connecting took longer than the connect deadline.
    Timeout(String),
    /// Every resolved address refused (or was unreachable).
    Connect(String),
}

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialError::Resolve(s) | DialError::Timeout(s) | DialError::Connect(s) => f.write_str(s),
        }
    }
}

/// A TCP connection made by [`dial`] and where it went.
pub(crate) struct Dialed {
    /// The stream.
    pub stream: tokio::net::TcpStream,
    /// The socket address it connected to (the resolver's answer for a
    /// name).
    pub peer: std::net::SocketAddr,
}

/// Connects to `host:port` as a cluster client would: an IP literal as
/// it is, a DNS name through the system resolver (/etc/hosts, DNS), then
/// each resolved address in turn. Resolving and connecting together are
/// bounded by `deadline`, so a name the resolver does not answer for
/// cannot stall the audit.
pub(crate) async fn dial(host: &str, port: u16, deadline: Duration) -> Result<Dialed, DialError> {
    dial_with(host, port, deadline, |h, p| async move {
        Ok(tokio::net::lookup_host((h.as_str(), p)).await?.collect())
    })
    .await
}

/// [`dial`] with the resolver given (tests resolve without a network).
async fn dial_with<F, Fut>(
    host: &str,
    port: u16,
    deadline: Duration,
    resolve: F,
) -> Result<Dialed, DialError>
where
    F: FnOnce(String, u16) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<Vec<std::net::SocketAddr>>>,
{
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let work = async {
        let addrs = match resolve(host.to_string(), port).await {
            Ok(a) => a,
            Err(e) => {
                return Err(DialError::Resolve(format!(
                    "the name `{host}` does not resolve (the system resolver answered: {e})"
                )))
            }
        };
        if addrs.is_empty() {
            return Err(DialError::Resolve(format!(
                "the name `{host}` does not resolve (the system resolver returned no address)"
            )));
        }
        let mut last = String::new();
        for a in &addrs {
            match tokio::net::TcpStream::connect(a).await {
                Ok(stream) => return Ok(Dialed { stream, peer: *a }),
                Err(e) => last = format!("{a}: {e}"),
            }
        }
        Err(DialError::Connect(if is_ip {
            last.split_once(": ")
                .map_or(last.clone(), |(_, e)| e.to_string())
        } else {
            let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
            format!("`{host}` resolved to {}; {last}", list.join(", "))
        }))
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(r) => r,
        Err(_) => Err(DialError::Timeout(format!(
            "{}{shown} got no answer within {} ms",
            if is_ip {
                "TCP connect to "
            } else {
                "resolving and connecting to "
            },
            deadline.as_millis()
        ))),
    }
}

#[cfg(test)]
mod dial_tests {
    use super::*;

    #[tokio::test]
    async fn dials_names_and_ips_and_names_what_the_resolver_said() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        // `localhost` is answered from /etc/hosts: no query leaves the host.
        let d = dial("localhost", port, Duration::from_secs(3))
            .await
            .unwrap();
        assert!(d.peer.ip().is_loopback());
        let d = dial("127.0.0.1", port, Duration::from_secs(3))
            .await
            .unwrap();
        assert_eq!(d.peer.to_string(), format!("127.0.0.1:{port}"));
        // A resolver failure and an empty answer (stand-in resolvers: a
        // real unknown name would send a DNS query off the machine).
        let e = dial_with(
            "redis-9.example.test",
            port,
            Duration::from_secs(3),
            |_, _| async {
                Err(std::io::Error::other(
                    "failed to lookup address information: Name or service not known",
                ))
            },
        )
        .await
        .err()
        .unwrap();
        assert!(matches!(e, DialError::Resolve(_)), "{e}");
        assert!(
            e.to_string()
                .contains("`redis-9.example.test` does not resolve")
                && e.to_string().contains("Name or service not known"),
            "{e}"
        );
        let e = dial_with(
            "redis-9.example.test",
            port,
            Duration::from_secs(3),
            |_, _| async { Ok(Vec::new()) },
        )
        .await
        .err()
        .unwrap();
        assert!(e.to_string().contains("returned no address"), "{e}");
        // A resolver that never answers is bounded by the deadline.
        let e = dial_with(
            "slow.example.test",
            port,
            Duration::from_millis(200),
            |_, _| async {
                std::future::pending::<std::io::Result<Vec<std::net::SocketAddr>>>().await
            },
        )
        .await
        .err()
        .unwrap();
        assert!(matches!(e, DialError::Timeout(_)), "{e}");
        assert!(
            e.to_string()
                .contains("resolving and connecting to slow.example.test"),
            "{e}"
        );
        drop(l);
        let e = dial("127.0.0.1", port, Duration::from_secs(3))
            .await
            .err()
            .unwrap();
        assert!(matches!(e, DialError::Connect(_)), "{e}");
    }
}
