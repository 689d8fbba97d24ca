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
