//! Signed evidence: every run directory gets `manifest.dsse.json`, a DSSE
//! envelope around an in-toto Statement whose subjects are the run's files
//! with their SHA-256 digests and whose predicate says what was audited, by
//! which tool and policy, when, and with what verdict. Beside it,
//! `manifest.sigstore.json` holds the same signature as a Sigstore bundle
//! (v0.3), the form cosign prefers.
//!
//! Keys: an Ed25519 or ECDSA P-256 private key in a PKCS#8 PEM file, or an
//! AWS KMS asymmetric key (`awskms:alias/NAME`, ECC_NIST_P256 /
//! ECDSA_SHA_256) that never leaves KMS. Public keys are SPKI PEM, so
//! `openssl pkey` reads them too. Key ids are the ones securesystemslib
//! computes itself (SHA-256 over the canonical JSON of the key), so a
//! third-party verifier needs only the public key.
//!
//! `verify` checks the signature and every digest, and names each file that
//! was changed, removed or added.

mod envelope;
mod keys;
mod verify_envelope;

pub use envelope::{pae, sigstore_bundle, Envelope, EnvelopeSignature, PAYLOAD_TYPE};
pub(crate) use envelope::{BUNDLE, ENVELOPE, PREDICATE_TYPE, STATEMENT_TYPE};
pub(crate) use keys::load_public;
pub use keys::{pem, PublicKey};
pub(crate) use verify_envelope::{verify_digests, verify_files, Verification};
pub use verify_envelope::{verify_statement, Verified};

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_ASN1_SIGNING};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};

use crate::config::ConfigError;

/// Environment variable naming the private key file (or `awskms:` key).
pub(crate) const KEY_ENV: &str = "EPIC_AUDIT_SIGNING_KEY";
/// Prefix of a signing-key reference that names an AWS KMS key.
pub(crate) const KMS_PREFIX: &str = "awskms:";
/// The largest message KMS `Sign` takes as RAW; longer ones go as DIGEST.
pub const KMS_RAW_LIMIT: usize = 4096;

/// What KMS `Sign` is asked to sign for a PAE: the message itself while it
/// fits KMS's RAW limit, else its SHA-256 as a DIGEST. Either way the
/// signature is ECDSA-SHA256 over the PAE, which is what verifiers check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KmsMessage {
    /// `MessageType=RAW`: KMS hashes it with SHA-256.
    Raw(Vec<u8>),
    /// `MessageType=DIGEST`: the SHA-256 of the PAE.
    Digest([u8; 32]),
}

impl KmsMessage {
    /// The request for `pae`.
    pub(crate) fn for_pae(pae: &[u8]) -> KmsMessage {
        if pae.len() <= KMS_RAW_LIMIT {
            KmsMessage::Raw(pae.to_vec())
        } else {
            KmsMessage::Digest(Sha256::digest(pae).into())
        }
    }

    /// `RAW` or `DIGEST`, as KMS names them.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            KmsMessage::Raw(_) => "RAW",
            KmsMessage::Digest(_) => "DIGEST",
        }
    }
}

/// Who performs KMS's `Sign`.
enum KmsService {
    /// AWS KMS (or its emulator), each call under `deadline`.
    Aws {
        client: aws_sdk_kms::Client,
        key: String,
        deadline: Duration,
    },
    /// A local P-256 key doing what KMS does with each message type (for
    /// tests of the DIGEST path, which the emulator does not implement).
    Local(EcdsaKeyPair),
}

enum Backend {
    Ed25519(SigningKey),
    EcdsaP256(EcdsaKeyPair),
    Kms(KmsService),
}

/// A signing key: a private key file, or a KMS key that never leaves KMS.
pub struct RunSigner {
    backend: Backend,
    public: PublicKey,
    /// Where it came from (for messages; never its content).
    pub source: String,
    /// How the last KMS `Sign` was asked (`RAW` or `DIGEST`).
    last_kms_message: std::sync::Mutex<Option<&'static str>>,
}

impl std::fmt::Debug for RunSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RunSigner({}, {} key id {})",
            self.source,
            self.public.algorithm(),
            self.key_id()
        )
    }
}

/// Why a KMS key cannot sign (never holds credentials).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SignError(pub String);

impl RunSigner {
    /// Reads a PKCS#8 PEM private key: Ed25519 or ECDSA P-256.
    pub fn load(path: &Path) -> Result<RunSigner, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(path, format!("cannot read the signing key: {}", e.kind()))
        })?;
        let not_a_key = || {
            ConfigError::new(
                path,
                "not a PKCS#8 PEM private key of a supported type (Ed25519, or ECDSA P-256; \
                 make one with `epic-audit keygen`)",
            )
        };
        let (backend, public) = if let Ok(k) = SigningKey::from_pkcs8_pem(&text) {
            let public = PublicKey::Ed25519(k.verifying_key());
            (Backend::Ed25519(k), public)
        } else {
            let (_, p) =
                x509_parser::pem::parse_x509_pem(text.as_bytes()).map_err(|_| not_a_key())?;
            let k = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &p.contents)
                .map_err(|_| not_a_key())?;
            let public = PublicKey::EcdsaP256(p256_spki(&k));
            (Backend::EcdsaP256(k), public)
        };
        Ok(RunSigner::new(backend, public, path.display().to_string()))
    }

    fn new(backend: Backend, public: PublicKey, source: String) -> RunSigner {
        RunSigner {
            backend,
            public,
            source,
            last_kms_message: Default::default(),
        }
    }

    /// A KMS key (`reference` without the `awskms:` prefix: a key id, ARN,
    /// or `alias/NAME`). Its public key comes from `GetPublicKey`, which
    /// also proves the key exists, is allowed to us, and is an
    /// ECC_NIST_P256 SIGN_VERIFY key with ECDSA_SHA_256.
    pub(crate) fn kms(
        reference: &str,
        conf: &aws_config::SdkConfig,
        deadline: Duration,
    ) -> Result<RunSigner, SignError> {
        let client = aws_sdk_kms::Client::new(conf);
        let named = format!("{KMS_PREFIX}{reference}");
        let out = crate::aws::block_on(tokio::time::timeout(
            deadline,
            client.get_public_key().key_id(reference).send(),
        ))
        .map_err(|_| {
            SignError(format!(
                "{named}: KMS GetPublicKey did not answer within {} ms",
                deadline.as_millis()
            ))
        })?
        .map_err(|e| {
            SignError(format!(
                "{named}: {}",
                crate::aws::api_failure("kms:GetPublicKey", &e).message
            ))
        })?;
        use aws_sdk_kms::types::{KeyUsageType, SigningAlgorithmSpec};
        // The public key itself proves the curve (KMS names it in KeySpec;
        // older answers only in the deprecated CustomerMasterKeySpec).
        let public = out
            .public_key()
            .and_then(|b| PublicKey::from_spki_der(b.as_ref()))
            .filter(|k| matches!(k, PublicKey::EcdsaP256(_)));
        let (Some(public), Some(KeyUsageType::SignVerify), true) = (
            public,
            out.key_usage(),
            out.signing_algorithms()
                .contains(&SigningAlgorithmSpec::EcdsaSha256),
        ) else {
            #[allow(deprecated)]
            let spec = out
                .key_spec()
                .map(|s| s.as_str())
                .or(out.customer_master_key_spec().map(|s| s.as_str()))
                .unwrap_or("of unknown type");
            return Err(SignError(format!(
                "{named}: the key is {spec} for {}; evidence is signed with an ECC_NIST_P256 \
                 SIGN_VERIFY key (ECDSA_SHA_256), the one KMS key type every DSSE verifier accepts",
                out.key_usage()
                    .map(|s| s.as_str())
                    .unwrap_or("no stated usage"),
            )));
        };
        Ok(RunSigner::new(
            Backend::Kms(KmsService::Aws {
                client,
                key: reference.to_string(),
                deadline,
            }),
            public,
            named,
        ))
    }

    /// A local P-256 key (PKCS#8 DER) standing in for KMS: it signs exactly
    /// what [`KmsMessage::for_pae`] would send, RAW or DIGEST, the way KMS
    /// does. For tests of the DIGEST path (the emulator hashes a DIGEST
    /// again, so it cannot check it).
    #[doc(hidden)]
    pub fn kms_stand_in(pkcs8_der: &[u8]) -> RunSigner {
        let k = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8_der)
            .expect("a P-256 PKCS#8 key");
        let public = PublicKey::EcdsaP256(p256_spki(&k));
        RunSigner::new(
            Backend::Kms(KmsService::Local(k)),
            public,
            "kms stand-in (local P-256 key)".into(),
        )
    }

    /// How the last KMS signature was requested (`RAW` or `DIGEST`); `None`
    /// for a file key.
    pub fn last_kms_message(&self) -> Option<&'static str> {
        *self.last_kms_message.lock().expect("not poisoned")
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Key id of the matching public key.
    pub fn key_id(&self) -> String {
        self.public.key_id()
    }

    /// The signature over `message` (a PAE).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let der = |r: Result<aws_lc_rs::signature::Signature, aws_lc_rs::error::Unspecified>| {
            r.map(|s| s.as_ref().to_vec())
                .map_err(|_| SignError("ECDSA signing failed".into()))
        };
        match &self.backend {
            Backend::Ed25519(k) => Ok(k.sign(message).to_bytes().to_vec()),
            Backend::EcdsaP256(k) => der(k.sign(&rng, message)),
            Backend::Kms(service) => {
                let m = KmsMessage::for_pae(message);
                *self.last_kms_message.lock().expect("not poisoned") = Some(m.kind());
                match service {
                    KmsService::Local(k) => match &m {
                        KmsMessage::Raw(raw) => der(k.sign(&rng, raw)),
                        KmsMessage::Digest(d) => {
                            let digest = aws_lc_rs::digest::Digest::import_less_safe(
                                d,
                                &aws_lc_rs::digest::SHA256,
                            )
                            .map_err(|_| SignError("bad digest".into()))?;
                            der(k.sign_digest(&digest))
                        }
                    },
                    KmsService::Aws {
                        client,
                        key,
                        deadline,
                    } => kms_sign(client, key, *deadline, &m),
                }
            }
        }
    }

    /// The envelope for `files` (name, contents) with a run `predicate`.
    pub fn envelope(
        &self,
        files: &[(&str, Vec<u8>)],
        predicate: serde_json::Value,
    ) -> Result<Envelope, SignError> {
        let digests: Vec<(String, String)> = files
            .iter()
            .map(|(name, data)| (name.to_string(), hex::encode(Sha256::digest(data))))
            .collect();
        self.envelope_for_digests(&digests, PREDICATE_TYPE, predicate)
    }

    /// The envelope for files given as (name, SHA-256 hex), so large files
    /// can be hashed while streaming.
    pub(crate) fn envelope_for_digests(
        &self,
        digests: &[(String, String)],
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Result<Envelope, SignError> {
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
        let sig = self.sign(&pae(PAYLOAD_TYPE, &payload))?;
        Ok(Envelope {
            payload_type: PAYLOAD_TYPE.into(),
            payload: B64.encode(&payload),
            signatures: vec![EnvelopeSignature {
                keyid: self.key_id(),
                sig: B64.encode(sig),
            }],
        })
    }
}

/// SPKI DER of a P-256 key pair's public key.
fn p256_spki(k: &EcdsaKeyPair) -> Vec<u8> {
    use aws_lc_rs::encoding::AsDer as _;
    k.public_key()
        .as_der()
        .expect("a P-256 public key encodes")
        .as_ref()
        .to_vec()
}

/// One KMS `Sign` call (ECDSA_SHA_256) under its deadline: the DER
/// signature.
fn kms_sign(
    client: &aws_sdk_kms::Client,
    key: &str,
    deadline: Duration,
    m: &KmsMessage,
) -> Result<Vec<u8>, SignError> {
    use aws_sdk_kms::primitives::Blob;
    use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
    let (kind, bytes) = match m {
        KmsMessage::Raw(r) => (MessageType::Raw, r.clone()),
        KmsMessage::Digest(d) => (MessageType::Digest, d.to_vec()),
    };
    let named = format!("{KMS_PREFIX}{key}");
    let out = crate::aws::block_on(tokio::time::timeout(
        deadline,
        client
            .sign()
            .key_id(key)
            .message(Blob::new(bytes))
            .message_type(kind)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send(),
    ))
    .map_err(|_| {
        SignError(format!(
            "{named}: KMS Sign did not answer within {} ms",
            deadline.as_millis()
        ))
    })?
    .map_err(|e| {
        SignError(format!(
            "{named}: {}",
            crate::aws::api_failure("kms:Sign", &e).message
        ))
    })?;
    out.signature()
        .map(|b| b.as_ref().to_vec())
        .ok_or_else(|| SignError(format!("{named}: KMS Sign returned no signature")))
}

/// Writes a new key pair into `dir`: `epic-audit-signing.key` (0600) and
/// `epic-audit-signing.pub`. Refuses to overwrite either.
pub fn keygen(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let why = |p: &Path, e: std::io::Error| {
        anyhow::anyhow!("{}: {}", p.display(), crate::output::io_reason(&e))
    };
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!(
            "--out {}: is a file; name a directory for epic-audit-signing.key and epic-audit-signing.pub",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).map_err(|e| why(dir, e))?;
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
        .open(&priv_path)
        .map_err(|e| why(&priv_path, e))?;
    f.write_all(pem.as_bytes())
        .map_err(|e| why(&priv_path, e))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&pub_path)
        .and_then(|mut f| f.write_all(PublicKey::Ed25519(key.verifying_key()).to_pem().as_bytes()))
        .map_err(|e| why(&pub_path, e))?;
    Ok((priv_path, pub_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    // The directory reader lives in `run`; these tests sign real directories.
    use crate::run::verify;

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
        let env = signer
            .envelope(&files, serde_json::json!({"environment": "t"}))
            .unwrap();
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
            .envelope(&files, serde_json::json!({}))
            .unwrap();
        let mut swapped = env.clone();
        swapped.signatures = env2.signatures;
        std::fs::write(run.join(ENVELOPE), serde_json::to_vec(&swapped).unwrap()).unwrap();
        assert!(verify(&run, &public).unwrap_err()[0].contains("no valid signature"));
        // A payload edited to match a tampered file.
        let mut edited = env.clone();
        edited.payload = B64.encode(br#"{"subject":[]}"#);
        std::fs::write(run.join(ENVELOPE), serde_json::to_vec(&edited).unwrap()).unwrap();
        assert!(verify(&run, &public).unwrap_err()[0].contains("no valid signature"));
        // The Sigstore bundle must carry the very same envelope.
        std::fs::write(run.join(ENVELOPE), serde_json::to_vec(&env).unwrap()).unwrap();
        let bundle = serde_json::to_vec(&sigstore_bundle(&env)).unwrap();
        std::fs::write(run.join(BUNDLE), &bundle).unwrap();
        assert_eq!(verify(&run, &public).unwrap().files.len(), 2);
        let mut other = sigstore_bundle(&env);
        other["dsseEnvelope"]["signatures"][0]["sig"] = swapped.signatures[0].sig.clone().into();
        std::fs::write(run.join(BUNDLE), serde_json::to_vec(&other).unwrap()).unwrap();
        assert_eq!(
            verify(&run, &public).unwrap_err(),
            [format!("{BUNDLE}: its envelope differs from {ENVELOPE}")]
        );
    }

    #[test]
    fn public_keys_round_trip_through_pem_and_reject_other_types() {
        let ed = PublicKey::Ed25519(SigningKey::from_bytes(&[7; 32]).verifying_key());
        assert_eq!(PublicKey::from_pem(&ed.to_pem()), Some(ed.clone()));
        assert_eq!(ed.key_id().len(), 64);
        let p256 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let ec = PublicKey::EcdsaP256(p256_spki(&p256));
        assert_eq!(PublicKey::from_pem(&ec.to_pem()), Some(ec.clone()));
        assert!(ec.to_pem().lines().all(|l| l.len() <= 64));
        // An RSA key, from the fixtures' PKI, is refused.
        let rsa =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pki/ca.crt")).unwrap();
        let (_, cert) = x509_parser::pem::parse_x509_pem(&rsa).unwrap();
        let cert = cert.parse_x509().unwrap();
        assert_eq!(PublicKey::from_spki_der(cert.public_key().raw), None);
    }

    #[test]
    fn the_kms_request_is_raw_up_to_4096_bytes_and_a_digest_beyond() {
        assert_eq!(KmsMessage::for_pae(&[1; 4096]).kind(), "RAW");
        let big = vec![2u8; 4097];
        assert_eq!(
            KmsMessage::for_pae(&big),
            KmsMessage::Digest(Sha256::digest(&big).into())
        );
        // Both ways the signature verifies as ECDSA-SHA256 over the PAE.
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .unwrap();
        let signer = RunSigner::kms_stand_in(pkcs8.as_ref());
        for n in [3usize, 400] {
            let files: Vec<(String, String)> = (0..n)
                .map(|i| {
                    (
                        format!("runs/{i:04}/report.json"),
                        hex::encode([i as u8; 32]),
                    )
                })
                .collect();
            let env = signer
                .envelope_for_digests(&files, PREDICATE_TYPE, serde_json::json!({}))
                .unwrap();
            let want = if n == 3 { "RAW" } else { "DIGEST" };
            assert_eq!(signer.last_kms_message(), Some(want));
            let payload = B64.decode(&env.payload).unwrap();
            let sig = B64.decode(&env.signatures[0].sig).unwrap();
            assert!(
                signer
                    .public_key()
                    .verifies(&pae(PAYLOAD_TYPE, &payload), &sig),
                "{want}"
            );
            assert!(!signer
                .public_key()
                .verifies(&pae(PAYLOAD_TYPE, b"{}"), &sig));
        }
    }
}
