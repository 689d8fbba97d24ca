//! The DSSE envelope and the in-toto Statement inside it, the file names a
//! signed directory carries, and the same envelope as a Sigstore bundle.

use serde::{Deserialize, Serialize};

/// File name of the envelope inside a run directory.
pub(crate) const ENVELOPE: &str = "manifest.dsse.json";
/// File name of the Sigstore bundle holding the same envelope.
pub(crate) const BUNDLE: &str = "manifest.sigstore.json";
/// Media type of a Sigstore bundle v0.3.
pub(crate) const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// DSSE payload type of an in-toto Statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// in-toto Statement type.
pub(crate) const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// Our predicate type: a URI (cosign's `--type` takes URIs). The `.invalid`
/// top-level domain (RFC 2606) never resolves, so no one else's page can
/// ever answer for it.
pub(crate) const PREDICATE_TYPE: &str = "https://epic-audit.invalid/predicate/run/v1";
/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Media type of the payload.
    pub payload_type: String,
    /// Base64 of the payload (the Statement JSON).
    pub payload: String,
    /// Signatures over PAE(payloadType, payload).
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The signing key's id ([`PublicKey::key_id`]).
    pub keyid: String,
    /// Base64 signature: raw Ed25519, or DER ECDSA.
    pub sig: String,
}

/// DSSE pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The Sigstore bundle (v0.3) for `env`: the same DSSE envelope, with the
/// key id as the public-key hint and no transparency-log entry (the key is
/// the trust root; cosign verifies it with `--key ... --insecure-ignore-tlog`).
pub fn sigstore_bundle(env: &Envelope) -> serde_json::Value {
    serde_json::json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": env.signatures.first().map(|s| s.keyid.as_str()).unwrap_or("")},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": env.payload,
            "payloadType": env.payload_type,
            "signatures": env.signatures.iter()
                .map(|s| serde_json::json!({"sig": s.sig, "keyid": s.keyid}))
                .collect::<Vec<_>>(),
        },
    })
}

/// Whether `bundle` (the bytes of [`BUNDLE`]) carries exactly `env`.
pub(crate) fn bundle_problem(bundle: &[u8], env: &Envelope) -> Option<String> {
    let b: serde_json::Value = match serde_json::from_slice(bundle) {
        Ok(b) => b,
        Err(e) => return Some(format!("{BUNDLE}: not JSON: {e}")),
    };
    if b["mediaType"] != BUNDLE_MEDIA_TYPE {
        return Some(format!("{BUNDLE}: media type is not {BUNDLE_MEDIA_TYPE}"));
    }
    let inner: Option<Envelope> = serde_json::from_value(b["dsseEnvelope"].clone()).ok();
    (inner.as_ref() != Some(env)).then(|| format!("{BUNDLE}: its envelope differs from {ENVELOPE}"))
}
