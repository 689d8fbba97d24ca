//! Transport security, observed live on every node's client and bus port.
//!
//! - Protocol versions: one hand-built ClientHello per version ([`hello`]),
//!   reading only the server's first record.
//! - A full TLS 1.3 handshake (rustls) presenting the client certificate,
//!   then one round trip; and the same without a client certificate, which
//!   must be refused (with TLS 1.3 the refusal arrives on the first read).
//! - The served chain, captured by a verifier that wraps a WebPKI verifier
//!   built from the configured CA only and records why validation failed
//!   instead of failing ([`verify::Capture`]).
//! - `CONFIG GET` of the TLS settings and a plaintext PING on any plaintext
//!   port. Credentials are only sent to a node whose certificate chains to
//!   the configured CA and names the node (expiry alone is tolerated here,
//!   and judged by its own check).
//!
//! Nothing is written: no AUTH is sent on the probing connections, and the
//! config connection only reads.

pub(crate) mod bus;
pub mod cert;
pub(crate) mod config;
pub(crate) mod endpoint;
pub mod hello;
pub(crate) mod verify;

pub(crate) use config::TlsConfigProbe;
pub(crate) use endpoint::TlsEndpointProbe;
