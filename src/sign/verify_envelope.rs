//! Verifying signed evidence: an envelope's signature, then every digest
//! it lists against the files present.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::envelope::*;
use super::keys::*;

/// A successful verification.
#[derive(Debug)]
pub struct Verified {
    /// Files covered (name).
    pub files: Vec<String>,
    /// Key id that signed.
    pub key_id: String,
    /// The predicate.
    pub predicate: serde_json::Value,
}

/// What verifying a signed run found (`crate::run::verify_run::check`), as an
/// export lists it. Serialised as the
/// sentence it always was (`valid (key <id>)`, or what failed), so
/// export.json keeps its form; code decides by the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verification {
    /// Signature and every digest hold, and report.json is readable.
    Valid {
        /// The key id that signed.
        key_id: String,
    },
    /// The signature holds but report.json is not a readable report.
    UnreadableReport,
    /// What failed: a bad signature, modified, missing or added files.
    Invalid(Vec<String>),
}

impl Verification {
    /// True when the run verified.
    pub(crate) fn is_valid(&self) -> bool {
        matches!(self, Verification::Valid { .. })
    }
}

impl std::fmt::Display for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verification::Valid { key_id } => write!(f, "valid (key {key_id})"),
            Verification::UnreadableReport => {
                f.write_str("report.json is not a readable epic-audit report")
            }
            Verification::Invalid(problems) => f.write_str(&problems.join("; ")),
        }
    }
}

impl serde::Serialize for Verification {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The in-toto Statement of an envelope (the bytes of a `.dsse.json`
/// file) whose signature `key` made; why not otherwise. Checks the
/// signature only: the caller judges the statement.
pub fn verify_statement(text: &[u8], key: &PublicKey) -> Result<serde_json::Value, String> {
    let env: Envelope =
        serde_json::from_slice(text).map_err(|e| format!("not a DSSE envelope: {e}"))?;
    if env.payload_type != PAYLOAD_TYPE {
        return Err(format!(
            "payload type {} is not {PAYLOAD_TYPE}",
            env.payload_type
        ));
    }
    let payload = B64
        .decode(&env.payload)
        .map_err(|_| "payload is not base64".to_string())?;
    let message = pae(&env.payload_type, &payload);
    if !env
        .signatures
        .iter()
        .any(|s| B64.decode(&s.sig).is_ok_and(|b| key.verifies(&message, &b)))
    {
        return Err(format!(
            "no valid signature by {} key {}",
            key.algorithm(),
            key.key_id()
        ));
    }
    serde_json::from_slice(&payload).map_err(|e| format!("statement is not JSON: {e}"))
}

/// Verifies a set of files (relative path -> contents) holding
/// [`ENVELOPE`] (and, if present, [`BUNDLE`]) at its root: the signature
/// by `key`, then every listed digest, every missing file and every file
/// the manifest does not list. Subject names may be relative paths
/// (`runs/<id>/report.json` in an export) but never absolute or with `..`.
pub(crate) fn verify_files(
    files: &BTreeMap<String, Vec<u8>>,
    key: &PublicKey,
) -> Result<Verified, Vec<String>> {
    let text = files
        .get(ENVELOPE)
        .ok_or_else(|| vec![format!("{ENVELOPE}: missing")])?;
    let digests: BTreeMap<String, String> = files
        .iter()
        .filter(|(n, _)| n.as_str() != ENVELOPE && n.as_str() != BUNDLE)
        .map(|(n, d)| (n.clone(), hex::encode(Sha256::digest(d))))
        .collect();
    verify_digests(text, files.get(BUNDLE).map(Vec::as_slice), &digests, key)
}

/// The verification core: `envelope` (the bytes of [`ENVELOPE`]) against
/// the files present, given as relative path -> SHA-256 hex (the envelope
/// and the bundle excluded), and `bundle` (the bytes of [`BUNDLE`], if
/// present), which must carry the same envelope. Names a bad signature,
/// every modified or missing file, and every file the manifest does not
/// list.
pub(crate) fn verify_digests(
    text: &[u8],
    bundle: Option<&[u8]>,
    files: &BTreeMap<String, String>,
    key: &PublicKey,
) -> Result<Verified, Vec<String>> {
    let env: Envelope = serde_json::from_slice(text)
        .map_err(|e| vec![format!("{ENVELOPE}: not a DSSE envelope: {e}")])?;
    if env.payload_type != PAYLOAD_TYPE {
        return Err(vec![format!(
            "{ENVELOPE}: payload type {} is not {PAYLOAD_TYPE}",
            env.payload_type
        )]);
    }
    let payload = B64
        .decode(&env.payload)
        .map_err(|_| vec![format!("{ENVELOPE}: payload is not base64")])?;
    let message = pae(&env.payload_type, &payload);
    let good = env
        .signatures
        .iter()
        .any(|s| B64.decode(&s.sig).is_ok_and(|b| key.verifies(&message, &b)));
    if !good {
        return Err(vec![format!(
            "{ENVELOPE}: no valid signature by {} key {} (signed by {}): the manifest was altered or another key signed it",
            key.algorithm(),
            key.key_id(),
            env.signatures.iter().map(|s| s.keyid.as_str()).collect::<Vec<_>>().join(", ")
        )]);
    }
    let statement: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|e| vec![format!("{ENVELOPE}: statement is not JSON: {e}")])?;
    let mut problems = Vec::new();
    if let Some(b) = bundle {
        problems.extend(bundle_problem(b, &env));
    }
    let mut named = BTreeSet::new();
    let subjects = statement["subject"].as_array().cloned().unwrap_or_default();
    for s in &subjects {
        let (Some(name), Some(want)) = (s["name"].as_str(), s["digest"]["sha256"].as_str()) else {
            problems.push("a subject without name or sha256".to_string());
            continue;
        };
        if name.starts_with('/') || name.split('/').any(|c| c == ".." || c.is_empty()) {
            problems.push(format!(
                "{name}: subject names must be relative paths without `..`"
            ));
            continue;
        }
        named.insert(name.to_string());
        match files.get(name) {
            None => problems.push(format!("{name}: missing (listed in the manifest)")),
            Some(got) => {
                if got != want {
                    problems.push(format!(
                        "{name}: modified (sha256 {got}, manifest says {want})"
                    ));
                }
            }
        }
    }
    problems.extend(
        files
            .keys()
            .filter(|n| n.as_str() != ENVELOPE && !named.contains(*n))
            .map(|n| format!("{n}: not in the manifest (added after signing)")),
    );
    if problems.is_empty() {
        Ok(Verified {
            files: named.into_iter().collect(),
            key_id: key.key_id(),
            predicate: statement["predicate"].clone(),
        })
    } else {
        Err(problems)
    }
}
