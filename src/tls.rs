//! TLS client material: the organisation's CA as the only trust anchor, and
//! the auditor's client certificate (Redis `tls-auth-clients yes`).

use std::collections::BTreeMap;

pub(crate) use crate::evidence::Handshakes;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::{ConfigError, NodeAddr};

/// A ready TLS client: shared config plus an optional fixed server name.
#[derive(Clone)]
pub struct TlsClient {
    /// The rustls config (TLS 1.2 and 1.3 offered; what the server accepts
    /// is judged by the transport probes, not here).
    pub config: Arc<rustls::ClientConfig>,
    /// Verify certificates against this name instead of the node's address.
    pub server_name: Option<String>,
    /// The configured CA as the only trust anchor.
    pub roots: Arc<rustls::RootCertStore>,
    /// TLS handshakes of the connections made with [`TlsClient::config`],
    /// per node address: how the audit itself connected.
    pub handshakes: Arc<std::sync::Mutex<BTreeMap<String, Handshakes>>>,
    /// The first full handshake with each node made with
    /// [`TlsClient::config`] (which verifies the chain and name against
    /// `roots`): what the node presented, so the TLS probe need not make
    /// another full handshake with the client certificate to learn it.
    /// Share it only between clients whose config verifies in full.
    pub verified: Arc<std::sync::Mutex<BTreeMap<String, VerifiedHandshake>>>,
    /// Per node, a gate that new connections pass one at a time once the
    /// node has completed a handshake with the audit: each waits until the
    /// previous one has read its first reply (and with it the session
    /// tickets the node sent), so it resumes instead of making the node
    /// sign a full handshake again. See [`TlsClient::gate`].
    pub gates: Arc<std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// Per node (`ip:port`, as the audit keys it), the DNS name the
    /// cluster announces as its preferred endpoint: connections to the
    /// node's client port go to that name and verify the certificate
    /// against it, as a cluster client that verifies hostnames does.
    /// Filled by discovery; a node without one is dialled by its IP.
    pub names: Arc<std::sync::Mutex<BTreeMap<String, String>>>,
}

/// A full handshake the audit's own client completed with a node: its
/// certificate chain verified against the configured CA for the node's name.
#[derive(Debug, Clone)]
pub struct VerifiedHandshake {
    /// The chain the node presented, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Negotiated protocol, e.g. `TLSv1.3`.
    pub protocol: Option<String>,
    /// Negotiated cipher suite.
    pub cipher_suite: Option<String>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Loads CA, client certificate and key from PEM files.
    pub fn from_files(
        ca: &Path,
        client_cert: &Path,
        client_key: &Path,
        server_name: Option<String>,
    ) -> Result<TlsClient, ConfigError> {
        crate::install_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        let cas = read_certs(ca)?;
        for c in cas {
            roots
                .add(c)
                .map_err(|e| ConfigError::new(ca, format!("not a usable CA certificate: {e}")))?;
        }
        let chain = read_certs(client_cert)?;
        let key = PrivateKeyDer::from_pem_file(client_key).map_err(|e| {
            ConfigError::new(
                client_key,
                format!("cannot read a PEM private key from it: {e}"),
            )
        })?;
        let roots = Arc::new(roots);
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(chain, key)
            .map_err(|e| {
                ConfigError::new(
                    client_key,
                    format!("client certificate and key do not form a usable pair: {e}"),
                )
            })?;
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
            roots,
            handshakes: Default::default(),
            verified: Default::default(),
            gates: Default::default(),
            names: Default::default(),
        })
    }

    /// The client certificate and key, loaded and checked once for the run:
    /// for the other configs that present them (the TLS probe's, the
    /// expiry-tolerant one).
    pub(crate) fn client_cert(&self) -> Arc<dyn rustls::client::ResolvesClientCert> {
        self.config.client_auth_cert_resolver.clone()
    }

    /// Counts one completed handshake with `addr` and keeps what the first
    /// full one presented (see [`TlsClient::verified`]).
    pub(crate) fn record_handshake(&self, addr: &str, conn: &rustls::ClientConnection) {
        let full = conn.handshake_kind() != Some(rustls::HandshakeKind::Resumed);
        {
            let mut m = self.handshakes.lock().expect("not poisoned");
            let e = m.entry(addr.to_string()).or_default();
            if full {
                e.full += 1;
            } else {
                e.resumed += 1;
            }
        }
        if let (true, Some(chain)) = (full, conn.peer_certificates()) {
            let mut v = self.verified.lock().expect("not poisoned");
            v.entry(addr.to_string())
                .or_insert_with(|| VerifiedHandshake {
                    chain: chain.iter().map(|c| c.clone().into_owned()).collect(),
                    protocol: protocol_name(conn.protocol_version()),
                    cipher_suite: conn
                        .negotiated_cipher_suite()
                        .map(|c| format!("{:?}", c.suite())),
                });
        }
    }

    /// The connection gate of `addr`, once a handshake with it completed
    /// (a node that never answered is not gated: nothing to resume).
    pub(crate) fn gate(&self, addr: &str) -> Option<Arc<tokio::sync::Mutex<()>>> {
        if !self
            .handshakes
            .lock()
            .expect("not poisoned")
            .contains_key(addr)
        {
            return None;
        }
        let mut g = self.gates.lock().expect("not poisoned");
        Some(g.entry(addr.to_string()).or_default().clone())
    }

    /// The first verified full handshake with `addr`, if one was made.
    pub(crate) fn verified_handshake(&self, addr: &str) -> Option<VerifiedHandshake> {
        self.verified
            .lock()
            .expect("not poisoned")
            .get(addr)
            .cloned()
    }

    /// The handshakes counted so far.
    pub(crate) fn handshake_counts(&self) -> BTreeMap<String, Handshakes> {
        self.handshakes.lock().expect("not poisoned").clone()
    }

    /// The name certificates are verified against for `host`.
    pub(crate) fn server_name_for(&self, host: &str) -> Result<ServerName<'static>, String> {
        let name = self.verified_name(host);
        ServerName::try_from(name.to_string())
            .map_err(|_| format!("`{name}` is neither an IP address nor a valid DNS name"))
    }

    /// The name a certificate is verified against when `host` is dialled:
    /// the configured `server_name`, else `host` itself.
    pub(crate) fn verified_name<'a>(&'a self, host: &'a str) -> &'a str {
        self.server_name.as_deref().unwrap_or(host)
    }

    /// Records the names discovery read from the cluster (node `ip:port`
    /// -> announced DNS name).
    pub(crate) fn announce_names(&self, names: impl IntoIterator<Item = (String, String)>) {
        self.names.lock().expect("not poisoned").extend(names);
    }

    /// The host to dial for the client port of `addr`: the DNS name the
    /// cluster announces for it, else the address's own host.
    pub(crate) fn dial_host(&self, addr: &NodeAddr) -> String {
        self.names
            .lock()
            .expect("not poisoned")
            .get(&addr.to_string())
            .cloned()
            .unwrap_or_else(|| addr.host.clone())
    }
}

/// `TLSv1.3`, `TLSv1.2`, ... as evidence names a negotiated protocol.
pub(crate) fn protocol_name(v: Option<rustls::ProtocolVersion>) -> Option<String> {
    v.map(|p| match p {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
        other => format!("{other:?}"),
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| ConfigError::new(path, format!("cannot read PEM certificates: {e}")))?
        .collect();
    let certs =
        certs.map_err(|e| ConfigError::new(path, format!("malformed PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(ConfigError::new(path, "contains no PEM certificate"));
    }
    Ok(certs)
}
