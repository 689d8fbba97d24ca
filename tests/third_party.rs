//! Evidence verified with tools an auditor may already have, without our
//! code: securesystemslib (DSSE), sigstore-protobuf-specs (the Sigstore
//! bundle) and sha256 over every subject, from the project's venv
//! (scripts/setup.sh installs them). Keys: an Ed25519 file key, a P-256
//! file key, a KMS key on the emulator (the RAW path), and a local P-256
//! key standing in for KMS on the DIGEST path (the emulator hashes a
//! DIGEST again, so it cannot check that path).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::{epic_audit, python, third_party};

fn fixture() -> String {
    format!(
        "{}/fixtures/evidence/lab-good.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Signs the fixture evidence with `key` into `dir/run`; returns the run.
fn signed_run(dir: &Path, key: &str, envs: &[(&str, String)]) -> PathBuf {
    let run = dir.join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_epic-audit"))
        .args([
            "evaluate",
            "--accepted-builds",
            common::LAB_ACCEPTED,
            &fixture(),
            "--out",
            run.to_str().unwrap(),
            "--signing-key",
            key,
        ])
        // Where no config names the evidence's environment: the KMS key
        // is reached through the SDK's own settings (`envs`), as an
        // auditor's machine would.
        .current_dir(dir)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    run
}

/// A key pair from `epic-audit keygen` in `dir/keys`, and the fixture
/// evidence signed with it into `dir/run`: (run, keys directory).
fn ed25519_run(dir: &Path) -> (PathBuf, PathBuf) {
    let keys = dir.join("keys");
    assert_eq!(
        epic_audit(&["keygen", "--out", keys.to_str().unwrap()], dir).code,
        0
    );
    let key = keys.join("epic-audit-signing.key");
    (signed_run(dir, key.to_str().unwrap(), &[]), keys)
}

/// Flips one byte of the signed payload, then of a signed file: each is
/// rejected by the third-party check, and by ours.
fn tamper_is_rejected(run: &Path, pubkey: &Path) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let env_path = run.join("manifest.dsse.json");
    let original = std::fs::read(&env_path).unwrap();
    let mut env: serde_json::Value = serde_json::from_slice(&original).unwrap();
    let mut payload = b64.decode(env["payload"].as_str().unwrap()).unwrap();
    payload[40] ^= 0x01;
    env["payload"] = b64.encode(&payload).into();
    std::fs::write(&env_path, serde_json::to_vec(&env).unwrap()).unwrap();
    let (code, out) = third_party(run, pubkey);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("securesystemslib: REJECTED"), "{out}");
    std::fs::write(&env_path, &original).unwrap();

    let report = run.join("report.json");
    let mut data = std::fs::read(&report).unwrap();
    data[10] ^= 0x01;
    std::fs::write(&report, &data).unwrap();
    let (code, out) = third_party(run, pubkey);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("sha256: report.json: MODIFIED"), "{out}");
    let ours = epic_audit(
        &[
            "verify",
            run.to_str().unwrap(),
            "--pubkey",
            pubkey.to_str().unwrap(),
        ],
        run,
    );
    assert_eq!(ours.code, 1, "{}", ours.stdout);
    assert!(
        ours.stdout.contains("report.json: modified"),
        "{}",
        ours.stdout
    );
    data[10] ^= 0x01;
    std::fs::write(&report, &data).unwrap();
}

fn accepted(run: &Path, pubkey: &Path, algorithm: &str) -> String {
    let (code, out) = third_party(run, pubkey);
    assert_eq!(code, 0, "{out}");
    let ours = epic_audit(
        &[
            "verify",
            run.to_str().unwrap(),
            "--pubkey",
            pubkey.to_str().unwrap(),
        ],
        run,
    );
    assert_eq!(ours.code, 0, "{}{}", ours.stdout, ours.stderr);
    assert!(
        ours.stdout.contains(&format!("signed by {algorithm} key")),
        "{}",
        ours.stdout
    );
    // The key id is the one securesystemslib computes itself from the key.
    let keyid = out
        .lines()
        .find_map(|l| l.strip_prefix("securesystemslib: signature valid, keyid "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    assert!(ours.stdout.contains(&keyid), "{}\n{out}", ours.stdout);
    assert!(
        out.contains("predicateType https://epic-audit.invalid/predicate/run/v1"),
        "{out}"
    );
    assert!(out.contains(&format!("public-key hint {keyid}")), "{out}");
    keyid
}

#[test]
fn an_ed25519_run_verifies_with_securesystemslib_and_its_bundle_parses() {
    let t = tempfile::tempdir().unwrap();
    let (run, keys) = ed25519_run(t.path());
    let pubkey = keys.join("epic-audit-signing.pub");
    accepted(&run, &pubkey, "Ed25519");
    tamper_is_rejected(&run, &pubkey);
}

#[test]
fn a_p256_file_key_signs_and_verifies_the_same_way() {
    let t = tempfile::tempdir().unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &rng,
    )
    .unwrap();
    let key = t.path().join("p256.key");
    std::fs::write(&key, epic_audit::sign::pem("PRIVATE KEY", pkcs8.as_ref())).unwrap();
    let signer = epic_audit::sign::RunSigner::load(&key).unwrap();
    let pubkey = t.path().join("p256.pub");
    std::fs::write(&pubkey, signer.public_key().to_pem()).unwrap();
    let run = signed_run(t.path(), key.to_str().unwrap(), &[]);
    assert_eq!(accepted(&run, &pubkey, "ECDSA P-256"), signer.key_id());
    tamper_is_rejected(&run, &pubkey);
}

/// The EC2/KMS emulator on its own loopback port, stopped by pid on drop.
struct Moto(Child, u16);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn moto() -> Moto {
    let bin = epic_audit_lab::aws::find_moto().or_else(|| {
        let v = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
        v.is_file().then_some(v)
    });
    let bin = bin.expect("moto_server not found: run scripts/setup.sh");
    let port = epic_audit_lab::pick_free_port(&[std::net::Ipv4Addr::LOCALHOST]);
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let m = Moto(child, port);
    epic_audit_lab::aws::wait_ready(port, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kms_key_on_the_emulator_signs_a_run_raw_and_both_verifiers_accept_it() {
    epic_audit::install_crypto_provider();
    let m = moto().await;
    let endpoint = format!("http://127.0.0.1:{}", m.1);
    let envs = [
        ("AWS_ENDPOINT_URL", endpoint.clone()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("AWS_CONFIG_FILE", "/dev/null".to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_string()),
    ];
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(aws_sdk_kms::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let kms = aws_sdk_kms::Client::new(&conf);
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};
    let key = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .description("epic-audit evidence signing (test)")
        .send()
        .await
        .unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    kms.create_alias()
        .alias_name("alias/epic-audit-evidence")
        .target_key_id(&key_id)
        .send()
        .await
        .unwrap();
    // A symmetric key is refused by name, before anything is signed.
    let sym = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let t = tempfile::tempdir().unwrap();
    let wrong = Command::new(env!("CARGO_BIN_EXE_epic-audit"))
        .args([
            "evaluate",
            "--accepted-builds",
            common::LAB_ACCEPTED,
            &fixture(),
            "--out",
            t.path().join("sym").to_str().unwrap(),
            "--signing-key",
            &format!("awskms:{sym}"),
        ])
        .current_dir(t.path())
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert_ne!(wrong.status.code(), Some(0), "{err}");
    assert!(err.contains("ECC_NIST_P256 SIGN_VERIFY"), "{err}");
    assert!(
        !t.path().join("sym").exists(),
        "nothing is written when the key cannot sign"
    );

    let run = signed_run(t.path(), "awskms:alias/epic-audit-evidence", &envs);
    // The auditor's public key, as `aws kms get-public-key` gives it.
    let der = kms
        .get_public_key()
        .key_id("alias/epic-audit-evidence")
        .send()
        .await
        .unwrap();
    let public =
        epic_audit::sign::PublicKey::from_spki_der(der.public_key().unwrap().as_ref()).unwrap();
    let pubkey = t.path().join("kms.pub");
    std::fs::write(&pubkey, public.to_pem()).unwrap();
    assert_eq!(accepted(&run, &pubkey, "ECDSA P-256"), public.key_id());
    // A run's statement is well under KMS's 4096-byte RAW limit.
    use base64::Engine;
    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("manifest.dsse.json")).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    assert!(
        epic_audit::sign::pae(epic_audit::sign::PAYLOAD_TYPE, &payload).len()
            <= epic_audit::sign::KMS_RAW_LIMIT
    );
    tamper_is_rejected(&run, &pubkey);
}

#[test]
fn a_manifest_over_4096_bytes_is_signed_as_a_digest_with_the_same_math() {
    let t = tempfile::tempdir().unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &rng,
    )
    .unwrap();
    let signer = epic_audit::sign::RunSigner::kms_stand_in(pkcs8.as_ref());
    // A quarterly export lists hundreds of files: 300 here.
    let run = t.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let files: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| {
            (
                format!("report-{i:03}.json"),
                format!("{{\"run\":{i}}}").into_bytes(),
            )
        })
        .collect();
    for (n, d) in &files {
        std::fs::write(run.join(n), d).unwrap();
    }
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
    let env = signer
        .envelope(&refs, serde_json::json!({"environment": "t"}))
        .unwrap();
    assert_eq!(signer.last_kms_message(), Some("DIGEST"));
    std::fs::write(
        run.join("manifest.dsse.json"),
        serde_json::to_vec_pretty(&env).unwrap(),
    )
    .unwrap();
    std::fs::write(
        run.join("manifest.sigstore.json"),
        serde_json::to_vec_pretty(&epic_audit::sign::sigstore_bundle(&env)).unwrap(),
    )
    .unwrap();
    let pubkey = t.path().join("p256.pub");
    std::fs::write(&pubkey, signer.public_key().to_pem()).unwrap();
    let (code, out) = third_party(&run, &pubkey);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("sha256: 300 subjects match"), "{out}");
    let ours = epic_audit(
        &[
            "verify",
            run.to_str().unwrap(),
            "--pubkey",
            pubkey.to_str().unwrap(),
        ],
        &run,
    );
    assert_eq!(ours.code, 0, "{}{}", ours.stdout, ours.stderr);
    tamper_is_rejected_payload_only(&run, &pubkey);
}

fn tamper_is_rejected_payload_only(run: &Path, pubkey: &Path) {
    let p = run.join("report-007.json");
    std::fs::write(&p, b"{\"run\":8}").unwrap();
    let (code, out) = third_party(run, pubkey);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("report-007.json: MODIFIED"), "{out}");
}

#[test]
fn junit_reads_well_in_junitparser_with_real_times_and_findings_in_message_and_text() {
    let t = tempfile::tempdir().unwrap();
    let ev = t.path().join("evidence.json");
    std::fs::write(
        &ev,
        serde_json::to_vec(&common::fixture_evidence_bad()).unwrap(),
    )
    .unwrap();
    let out = t.path().join("run");
    let r = epic_audit(
        &[
            "evaluate",
            "--accepted-builds",
            common::LAB_ACCEPTED,
            ev.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--unsigned",
        ],
        t.path(),
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let junit = out.join("junit.xml");
    let (code, text) = common::junit_check(&junit);
    assert_eq!(code, 0, "{text}");
    assert!(text.trim_end().ends_with("ok"), "{text}");
    // Failures and errors both happened, so both element kinds were checked.
    assert!(text.lines().any(|l| !l.contains("failures=0")), "{text}");
    assert!(text.lines().any(|l| !l.contains("errors=0")), "{text}");
    // Times come from the probe windows: CLU-001's is the span of the
    // cluster probe's evidence, not zero.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let report = common::report(&out);
    let clu = common::check(&report, "CLU-001");
    let ms = clu["duration_ms"].as_u64().unwrap();
    assert!(ms > 0, "{clu}");
    assert!(
        xml.contains(&format!("time=\"{}.{:03}\"", ms / 1000, ms % 1000)),
        "{xml}"
    );
    // The failure's finding is in the message and in the text, with its
    // reason code.
    let fail = xml.split("<failure").nth(1).unwrap();
    let (attrs, rest) = fail.split_once('>').unwrap();
    assert!(attrs.contains("message=\"") && attrs.len() > 30, "{attrs}");
    assert!(
        rest.split("</failure>")
            .next()
            .unwrap()
            .contains("[fail CLU-001/slots-unassigned]"),
        "{rest}"
    );
}

/// docs/evidence.md's "Verifying without epic-audit" snippet, as printed there.
fn docs_snippet() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/evidence.md")).unwrap();
    let section = readme
        .split("## Verifying without epic-audit")
        .nth(1)
        .unwrap();
    let code = section.split("```sh\n").nth(1).unwrap();
    code.split("```").next().unwrap().to_string()
}

#[test]
fn the_documented_one_liner_verifies_a_run_and_names_a_changed_file() {
    let t = tempfile::tempdir().unwrap();
    let (run, keys) = ed25519_run(t.path());
    std::fs::copy(
        keys.join("epic-audit-signing.pub"),
        t.path().join("epic-audit-signing.pub"),
    )
    .unwrap();
    let snippet = docs_snippet()
        .replacen("python3 ", &format!("{} ", python().display()), 1)
        .replace(" epic-audit-signing.pub", " ../epic-audit-signing.pub");
    let sh = |dir: &Path| {
        let o = Command::new("bash")
            .arg("-c")
            .arg(&snippet)
            .current_dir(dir)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (code, out) = sh(&run);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.trim(), "valid: 7 files, pass");
    std::fs::write(run.join("junit.xml"), "<testsuites/>").unwrap();
    let (code, out) = sh(&run);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("MODIFIED: junit.xml"), "{out}");
}
