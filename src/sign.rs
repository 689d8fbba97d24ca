//! Signed evidence: every run directory gets `manifest.dsse.json`, a DSSE
//! envelope (Ed25519) around an in-toto Statement whose subjects are the
//! run's files with their SHA-256 digests and whose predicate says what was
//! audited, by which tool and policy, when, and with what verdict.
//!
//! `verify` checks the signature and every digest, and names each file that
//! was changed, removed or added. Keys are PKCS#8 (private) and SPKI
//! (public) PEM, so `openssl pkey` reads them too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::ConfigError;

/// File name of the envelope inside a run directory.
pub const ENVELOPE: &str = "manifest.dsse.json";
/// DSSE payload type of an in-toto Statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// Our predicate type.
pub const PREDICATE_TYPE: &str = "urn:epic-audit:predicate:run:v1";
/// Environment variable naming the private key file.
pub const KEY_ENV: &str = "EPIC_AUDIT_SIGNING_KEY";

/// A DSSE envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// First 16 hex digits of SHA-256 of the public key (raw 32 bytes).
    pub keyid: String,
    /// Base64 Ed25519 signature.
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

/// Key id of a public key.
pub fn key_id(k: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(k.as_bytes())[..8])
}

/// A loaded private key.
pub struct RunSigner {
    key: SigningKey,
    /// Where it came from (for messages; never its content).
    pub source: String,
}

impl std::fmt::Debug for RunSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RunSigner({}, key id {})", self.source, self.key_id())
    }
}

impl RunSigner {
    /// Reads a PKCS#8 PEM Ed25519 private key.
    pub fn load(path: &Path) -> Result<RunSigner, ConfigError> {
        let pem = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(path, format!("cannot read the signing key: {}", e.kind()))
        })?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|_| {
            ConfigError::new(
                path,
                "not a PKCS#8 PEM Ed25519 private key (make one with `epic-audit keygen`)",
            )
        })?;
        Ok(RunSigner {
            key,
            source: path.display().to_string(),
        })
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Key id of the matching public key.
    pub fn key_id(&self) -> String {
        key_id(&self.key.verifying_key())
    }

    /// The envelope for `files` (name, contents) with a run `predicate`.
    pub fn envelope(&self, files: &[(&str, Vec<u8>)], predicate: serde_json::Value) -> Envelope {
        self.envelope_typed(files, PREDICATE_TYPE, predicate)
    }

    /// The envelope for `files` with a predicate of type `predicate_type`.
    pub fn envelope_typed(
        &self,
        files: &[(&str, Vec<u8>)],
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Envelope {
        let digests: Vec<(String, String)> = files
            .iter()
            .map(|(name, data)| (name.to_string(), hex::encode(Sha256::digest(data))))
            .collect();
        self.envelope_for_digests(&digests, predicate_type, predicate)
    }

    /// The envelope for files given as (name, SHA-256 hex), so large files
    /// can be hashed while streaming.
    pub fn envelope_for_digests(
        &self,
        digests: &[(String, String)],
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Envelope {
        let subject: Vec<serde_json::Value> = digests
            .iter()
            .map(|(name, d)| serde_json::json!({"name": name, "digest": {"sha256": d}}))
            .collect();
        let statement = serde_json::json!({
            "_type": STATEMENT_TYPE,
            "subject": subject,
            "predicateType": predicate_type,
            "predicate": predicate,
        });
        let payload = serde_json::to_vec(&statement).expect("statement serialises");
        let sig = self.key.sign(&pae(PAYLOAD_TYPE, &payload));
        Envelope {
            payload_type: PAYLOAD_TYPE.into(),
            payload: B64.encode(&payload),
            signatures: vec![EnvelopeSignature {
                keyid: self.key_id(),
                sig: B64.encode(sig.to_bytes()),
            }],
        }
    }
}

/// Writes a new key pair into `dir`: `epic-audit-signing.key` (0600) and
/// `epic-audit-signing.pub`. Refuses to overwrite either.
pub fn keygen(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    let (priv_path, pub_path) = (
        dir.join("epic-audit-signing.key"),
        dir.join("epic-audit-signing.pub"),
    );
    for p in [&priv_path, &pub_path] {
        if p.exists() {
            anyhow::bail!(
                "{} already exists; refusing to overwrite a signing key",
                p.display()
            );
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(Default::default())
        .map_err(|e| anyhow::anyhow!("encoding the key: {e}"))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&priv_path)?;
    f.write_all(pem.as_bytes())?;
    let public = key
        .verifying_key()
        .to_public_key_pem(Default::default())
        .map_err(|e| anyhow::anyhow!("encoding the public key: {e}"))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&pub_path)?
        .write_all(public.as_bytes())?;
    Ok((priv_path, pub_path))
}

/// Reads an SPKI PEM Ed25519 public key.
pub fn load_public(path: &Path) -> Result<VerifyingKey, ConfigError> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, format!("cannot read the public key: {}", e.kind())))?;
    VerifyingKey::from_public_key_pem(&pem)
        .map_err(|_| ConfigError::new(path, "not an SPKI PEM Ed25519 public key"))
}

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

/// Verifies the run directory `dir` against `key`. Every problem is named:
/// a bad signature, a file whose digest differs, a missing file, an extra
/// file.
pub fn verify(dir: &Path, key: &VerifyingKey) -> Result<Verified, Vec<String>> {
    let mut files = BTreeMap::new();
    let rd = std::fs::read_dir(dir)
        .map_err(|e| vec![format!("{}: cannot read: {}", dir.display(), e.kind())])?;
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().to_string();
        let p = e.path();
        if p.is_dir() {
            // A run directory is flat: a directory in it was added.
            files.insert(format!("{name}/"), Vec::new());
            continue;
        }
        let data = std::fs::read(&p)
            .map_err(|e| vec![format!("{}: cannot read: {}", p.display(), e.kind())])?;
        files.insert(name, data);
    }
    if !files.contains_key(ENVELOPE) {
        return Err(vec![format!(
            "{}: missing (not a signed run directory)",
            dir.join(ENVELOPE).display()
        )]);
    }
    verify_files(&files, key)
}

/// Verifies a set of files (relative path -> contents) holding
/// [`ENVELOPE`] at its root: the signature by `key`, then every listed
/// digest, every missing file and every file the manifest does not list.
/// Subject names may be relative paths (`runs/<id>/report.json` in an
/// export) but never absolute or with `..`.
pub fn verify_files(
    files: &BTreeMap<String, Vec<u8>>,
    key: &VerifyingKey,
) -> Result<Verified, Vec<String>> {
    let text = files
        .get(ENVELOPE)
        .ok_or_else(|| vec![format!("{ENVELOPE}: missing")])?;
    let digests: BTreeMap<String, String> = files
        .iter()
        .filter(|(n, _)| n.as_str() != ENVELOPE)
        .map(|(n, d)| (n.clone(), hex::encode(Sha256::digest(d))))
        .collect();
    verify_digests(text, &digests, key)
}

/// The verification core: `envelope` (the bytes of [`ENVELOPE`]) against
/// the files present, given as relative path -> SHA-256 hex (the envelope
/// itself excluded). Names a bad signature, every modified or missing
/// file, and every file the manifest does not list.
pub fn verify_digests(
    text: &[u8],
    files: &BTreeMap<String, String>,
    key: &VerifyingKey,
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
    let good = env.signatures.iter().any(|s| {
        B64.decode(&s.sig)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
            .is_some_and(|b| {
                key.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&b))
                    .is_ok()
            })
    });
    if !good {
        return Err(vec![format!(
            "{ENVELOPE}: no valid signature by key {} (signed by {}): the manifest was altered or another key signed it",
            key_id(key),
            env.signatures.iter().map(|s| s.keyid.as_str()).collect::<Vec<_>>().join(", ")
        )]);
    }
    let statement: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|e| vec![format!("{ENVELOPE}: statement is not JSON: {e}")])?;
    let mut problems = Vec::new();
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
            key_id: key_id(key),
            predicate: statement["predicate"].clone(),
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE protocol description.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn keygen_sign_verify_and_every_kind_of_tampering() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let (sk, pk) = keygen(&t.path().join("keys")).unwrap();
        assert_eq!(
            std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(keygen(&t.path().join("keys"))
            .unwrap_err()
            .to_string()
            .contains("refusing to overwrite"));
        let signer = RunSigner::load(&sk).unwrap();
        assert!(!format!("{signer:?}").contains("PRIVATE"));
        let public = load_public(&pk).unwrap();
        let run = t.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("report.json", b"{\"a\":1}".to_vec()),
            ("junit.xml", b"<x/>".to_vec()),
        ];
        for (n, d) in &files {
            std::fs::write(run.join(n), d).unwrap();
        }
        let env = signer.envelope(&files, serde_json::json!({"environment": "t"}));
        std::fs::write(run.join(ENVELOPE), serde_json::to_vec(&env).unwrap()).unwrap();
        let ok = verify(&run, &public).unwrap();
        assert_eq!(ok.files, ["junit.xml", "report.json"]);
        assert_eq!(ok.predicate["environment"], "t");

        // One flipped byte.
        std::fs::write(run.join("junit.xml"), b"<y/>").unwrap();
        let e = verify(&run, &public).unwrap_err();
        assert!(
            e.len() == 1 && e[0].starts_with("junit.xml: modified"),
            "{e:?}"
        );
        std::fs::write(run.join("junit.xml"), b"<x/>").unwrap();
        // A removed file.
        std::fs::remove_file(run.join("report.json")).unwrap();
        assert!(verify(&run, &public).unwrap_err()[0].starts_with("report.json: missing"));
        std::fs::write(run.join("report.json"), b"{\"a\":1}").unwrap();
        // An added file.
        std::fs::write(run.join("notes.txt"), b"x").unwrap();
        assert!(verify(&run, &public).unwrap_err()[0].starts_with("notes.txt: not in the manifest"));
        std::fs::remove_file(run.join("notes.txt")).unwrap();
        assert!(verify(&run, &public).is_ok());
        // Another key's signature swapped in.
        let (sk2, _) = keygen(&t.path().join("other")).unwrap();
        let env2 = RunSigner::load(&sk2)
            .unwrap()
            .envelope(&files, serde_json::json!({}));
        let mut swapped = env.clone();
        swapped.signatures = env2.signatures;
        std::fs::write(run.join(ENVELOPE), serde_json::to_vec(&swapped).unwrap()).unwrap();
        assert!(verify(&run, &public).unwrap_err()[0].contains("no valid signature"));
        // A payload edited to match a tampered file.
        let mut edited = env.clone();
        edited.payload = B64.encode(br#"{"subject":[]}"#);
        std::fs::write(run.join(ENVELOPE), serde_json::to_vec(&edited).unwrap()).unwrap();
        assert!(verify(&run, &public).unwrap_err()[0].contains("no valid signature"));
    }
}
