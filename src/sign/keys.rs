//! Public keys that verify evidence (Ed25519, ECDSA P-256), as SPKI PEM,
//! with the key ids securesystemslib computes.

use std::path::Path;

use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use crate::config::ConfigError;

const OID_ED25519: &str = "1.3.101.112";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";

/// A public key that verifies evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Ed25519 (file keys from `epic-audit keygen`).
    Ed25519(VerifyingKey),
    /// ECDSA P-256 with SHA-256 (KMS keys), as SPKI DER.
    EcdsaP256(Vec<u8>),
}

impl PublicKey {
    /// Reads an SPKI DER public key of either type.
    pub fn from_spki_der(der: &[u8]) -> Option<PublicKey> {
        use x509_parser::prelude::FromDer;
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der).ok()?;
        match spki.algorithm.algorithm.to_id_string().as_str() {
            OID_ED25519 => {
                let raw = <[u8; 32]>::try_from(spki.subject_public_key.data.as_ref()).ok()?;
                VerifyingKey::from_bytes(&raw).ok().map(PublicKey::Ed25519)
            }
            OID_EC_PUBLIC_KEY => {
                let curve = spki.algorithm.parameters.as_ref()?.as_oid().ok()?;
                (curve.to_id_string() == OID_P256).then(|| PublicKey::EcdsaP256(der.to_vec()))
            }
            _ => None,
        }
    }

    /// Reads an SPKI PEM public key of either type.
    pub(crate) fn from_pem(pem: &str) -> Option<PublicKey> {
        let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
        (p.label == "PUBLIC KEY")
            .then(|| PublicKey::from_spki_der(&p.contents))
            .flatten()
    }

    /// SPKI DER.
    pub(crate) fn spki_der(&self) -> Vec<u8> {
        match self {
            PublicKey::Ed25519(k) => k
                .to_public_key_der()
                .expect("an Ed25519 key encodes")
                .into_vec(),
            PublicKey::EcdsaP256(der) => der.clone(),
        }
    }

    /// SPKI PEM, as OpenSSL and Python's `cryptography` write it.
    pub fn to_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki_der())
    }

    /// `Ed25519` or `ECDSA P-256`.
    pub(crate) fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::Ed25519(_) => "Ed25519",
            PublicKey::EcdsaP256(_) => "ECDSA P-256",
        }
    }

    /// The key as securesystemslib describes it: (keytype, scheme, public).
    fn sslib_fields(&self) -> (&'static str, &'static str, String) {
        match self {
            PublicKey::Ed25519(k) => ("ed25519", "ed25519", hex::encode(k.as_bytes())),
            PublicKey::EcdsaP256(_) => ("ecdsa", "ecdsa-sha2-nistp256", self.to_pem()),
        }
    }

    /// The key id securesystemslib computes for this key by default
    /// (`SSlibKey.from_crypto(...).keyid`): SHA-256 hex of the canonical
    /// JSON of keytype, keyval and scheme.
    pub fn key_id(&self) -> String {
        let (keytype, scheme, public) = self.sslib_fields();
        // OLPC canonical JSON: sorted keys, no spaces, strings with only
        // `\` and `"` escaped (a PEM's newlines stay as they are).
        let s = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
        let canonical = format!(
            "{{\"keytype\":{},\"keyval\":{{\"public\":{}}},\"scheme\":{}}}",
            s(keytype),
            s(&public),
            s(scheme)
        );
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }

    /// Whether `sig` is this key's signature over `message`.
    pub(crate) fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            PublicKey::Ed25519(k) => <[u8; 64]>::try_from(sig).is_ok_and(|b| {
                k.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&b))
                    .is_ok()
            }),
            PublicKey::EcdsaP256(der) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, der)
                .verify(message, sig)
                .is_ok(),
        }
    }
}

/// PEM with 64-column lines, as OpenSSL writes it.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Reads an SPKI PEM public key (Ed25519 or ECDSA P-256).
pub(crate) fn load_public(path: &Path) -> Result<PublicKey, ConfigError> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, format!("cannot read the public key: {}", e.kind())))?;
    PublicKey::from_pem(&pem).ok_or_else(|| {
        ConfigError::new(
            path,
            "not an SPKI PEM public key of a supported type (Ed25519, or ECDSA P-256)",
        )
    })
}
