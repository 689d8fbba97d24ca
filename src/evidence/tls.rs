//! What the TLS probes observe: each endpoint's protocol versions, handshakes
//! and certificate chain, and each node's TLS settings and plaintext listeners.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a TLS endpoint (a node's client or bus port) negotiates and serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsEndpointView {
    /// The node (advertised client address).
    pub node: String,
    /// The node's client port or its cluster bus port.
    pub port_kind: PortKind,
    /// The address probed.
    pub address: String,
    /// One hand-built ClientHello per version.
    pub versions: Vec<VersionResult>,
    /// A full TLS 1.3 handshake presenting the client certificate.
    pub handshake: HandshakeResult,
    /// The same without a client certificate.
    pub without_client_cert: HandshakeResult,
    /// The chain the server sent, leaf first.
    pub chain: Vec<CertInfo>,
    /// Verification against the configured CA and the node's name, now:
    /// `ok` or the reason.
    pub verification: String,
    /// Verification of the chain alone, at a time inside the leaf's
    /// validity (so expiry and name are judged separately): `ok` or why.
    pub chain_verification: String,
    /// The name this endpoint was reached by and the address it resolved
    /// to (absent in evidence recorded before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached_by: Option<Reach>,
}

/// How the audit reached a node: the host it dialled (and verified the
/// certificate against, unless one `server_name` is configured for every
/// node) and the address that host resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reach {
    /// The host dialled: for a client port, the endpoint the cluster
    /// announces for the node (its DNS name where the cluster prefers
    /// hostnames, else its IP), or a seed as configured; for a bus port,
    /// the IP, as the nodes reach each other.
    pub name: String,
    /// The socket address the TCP connection went to.
    pub address: String,
    /// The name the certificate was verified against.
    pub verified_as: String,
}

/// A TLS protocol version, named as Redis' `tls-protocols` spells it (and
/// as evidence.json and the policy have always written it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.0.
    #[serde(rename = "TLSv1.0")]
    Tls10,
    /// TLS 1.1.
    #[serde(rename = "TLSv1.1")]
    Tls11,
    /// TLS 1.2.
    #[serde(rename = "TLSv1.2")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "TLSv1.3")]
    Tls13,
}

impl TlsVersion {
    /// Every version, oldest first.
    pub const ALL: [TlsVersion; 4] = [
        TlsVersion::Tls10,
        TlsVersion::Tls11,
        TlsVersion::Tls12,
        TlsVersion::Tls13,
    ];

    /// `TLSv1.0` ... `TLSv1.3`.
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLSv1.0",
            TlsVersion::Tls11 => "TLSv1.1",
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One offered protocol version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionResult {
    /// The version offered.
    pub version: TlsVersion,
    /// What the server did with it.
    pub outcome: VersionOutcome,
    /// What decided it: the ServerHello, the alert, EOF, a timeout.
    pub detail: String,
}

/// Which of a node's TLS listeners an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortKind {
    /// The client port (`tls-port`).
    Client,
    /// The cluster bus port (client port + 10000 unless announced).
    Bus,
}

impl PortKind {
    /// The name recorded in evidence.json (`client`, `bus`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PortKind::Client => "client",
            PortKind::Bus => "bus",
        }
    }
}

impl std::fmt::Display for PortKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a server did with a ClientHello offering one protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionOutcome {
    /// A ServerHello that negotiated the version.
    Accepted,
    /// An alert, a close, or a ServerHello for another version.
    Refused,
    /// No answer that decides it (connect failed, timeout, garbage).
    Undetermined,
}

/// A full handshake attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeResult {
    /// Handshake done and one round trip without an alert.
    pub completed: bool,
    /// Negotiated protocol.
    pub protocol: Option<String>,
    /// Negotiated cipher suite.
    pub cipher_suite: Option<String>,
    /// What happened after the handshake (reply to PING, or silence on
    /// the bus), or the error.
    pub detail: String,
}

/// Facts of one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial (hex).
    pub serial: String,
    /// SHA-256 fingerprint of the DER.
    pub sha256: String,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// `RSA`, `EC`, ...
    pub key_type: String,
    /// Key size in bits (RSA: from the modulus).
    pub key_bits: u32,
    /// Signature algorithm.
    pub signature_algorithm: String,
    /// IP SANs.
    pub san_ip: Vec<String>,
    /// DNS SANs.
    pub san_dns: Vec<String>,
    /// EKU serverAuth.
    pub eku_server_auth: bool,
    /// EKU clientAuth.
    pub eku_client_auth: bool,
    /// CA certificate.
    pub is_ca: bool,
    /// Subject equals issuer.
    pub self_signed: bool,
}

/// One node's TLS settings (CONFIG GET) and plaintext listener probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsConfigView {
    /// port, tls-port, tls-protocols, tls-ciphersuites, tls-ciphers,
    /// tls-cluster, tls-replication, tls-auth-clients.
    pub config: BTreeMap<String, String>,
    /// Ports tried for a plaintext Redis.
    pub plaintext: Vec<PlaintextProbe>,
}

/// A TCP connect + inline PING on one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaintextProbe {
    /// Port tried.
    pub port: u16,
    /// Why it was tried.
    pub source: PlaintextSource,
    /// A Redis answered in plaintext.
    pub redis_answered: bool,
    /// What happened.
    pub detail: String,
}

/// Why a port was tried for a plaintext listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlaintextSource {
    /// The node's own `port` setting.
    #[serde(rename = "CONFIG GET port")]
    ConfigPort,
    /// A plaintext port the node advertises in CLUSTER SHARDS.
    #[serde(rename = "advertised in CLUSTER SHARDS")]
    Advertised,
    /// The policy's `extra_plaintext_ports`.
    #[serde(rename = "policy extra_plaintext_ports")]
    Policy,
}

impl std::fmt::Display for PlaintextSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PlaintextSource::ConfigPort => "CONFIG GET port",
            PlaintextSource::Advertised => "advertised in CLUSTER SHARDS",
            PlaintextSource::Policy => "policy extra_plaintext_ports",
        })
    }
}
