//! The evidence store against a real S3 emulator (moto on 127.0.0.1, its
//! own port per test) through the real AWS SDK: a signed run is uploaded
//! with Object Lock (COMPLIANCE, retained six years from the run) and
//! SHA-256 checksums, and a delete of a stored version is refused; runs
//! from two machines (two reports directories) sharing a store form one
//! chain, and `export --from` the store builds a quarter that verifies with
//! epic-audit and securesystemslib; two runs that read the same chain head
//! are a fork the second one reports; a bucket without Object Lock fails
//! the run (exit 4) and keeps the local copy.

mod common;

use std::path::{Path, PathBuf};

use aws_sdk_s3::types::ChecksumMode;
use common::{epic_audit, fixture_evidence, Moto, RunResult};
use serde_json::Value;

const BUCKET: &str = "hipaa-evidence";
const STORE: &str = "s3://hipaa-evidence/epic-audit";

struct Setup {
    moto: Moto,
    dir: tempfile::TempDir,
    key: PathBuf,
    public: PathBuf,
}

/// The config of one machine: environment `local` reaching the emulator.
fn config(endpoint: &str) -> String {
    format!(
        r#"
[environments.local]
seeds = ["127.0.0.1:7000"]
audit_user = "auditor"
[environments.local.tls]
ca = "ca.crt"
client_cert = "c.crt"
client_key = "c.key"
[environments.local.users.auditor]
password_env = "EPIC_AUDIT_TEST_NEVER_SET_VAR"
[environments.local.aws]
region = "us-east-1"
endpoint = "{endpoint}"
credentials = "emulator"
discovery = {{ tag = "redis-cluster", value = "x" }}
"#
    )
}

impl Setup {
    /// A machine: its own working directory (and so reports directory)
    /// with the config.
    fn machine(&self, name: &str) -> PathBuf {
        let m = self.dir.path().join(name);
        if !m.exists() {
            std::fs::create_dir_all(&m).unwrap();
            std::fs::write(m.join("epic-audit.toml"), config(&self.moto.endpoint())).unwrap();
        }
        m
    }

    /// Signs the fixture evidence started at `when` on `machine` into its
    /// reports/local/<run-id>/, with `extra` arguments (e.g. --store):
    /// (run directory name, the command's result).
    fn run(&self, machine: &str, when: &str, extra: &[&str]) -> (String, RunResult) {
        let cwd = self.machine(machine);
        let mut ev = fixture_evidence();
        let t: chrono::DateTime<chrono::Utc> = when.parse().unwrap();
        ev.started_at = t;
        ev.finished_at = t + chrono::Duration::seconds(7);
        ev.run_id = epic_audit::engine::run_id(t);
        let file = cwd.join(format!("{}.json", ev.run_id));
        std::fs::write(&file, serde_json::to_string(&ev).unwrap()).unwrap();
        let out = cwd.join("reports/local").join(&ev.run_id);
        let mut args = vec![
            "evaluate",
            "--accepted-builds",
            common::LAB_ACCEPTED,
            file.to_str().unwrap(),
            "--signing-key",
            self.key.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        (ev.run_id.clone(), epic_audit(&args, &cwd))
    }

    /// `export --from` the store on `machine`, into `out` when given.
    fn export_from(&self, machine: &str, out: Option<&Path>) -> RunResult {
        let mut args = vec![
            "export",
            "--env",
            "local",
            "--quarter",
            "2026-Q4",
            "--from",
            STORE,
            "--signing-key",
            self.key.to_str().unwrap(),
        ];
        if let Some(o) = out {
            args.extend(["--out", o.to_str().unwrap()]);
        }
        epic_audit(&args, &self.machine(machine))
    }

    /// `verify PATH` on `machine`.
    fn verify(&self, machine: &str, path: &Path) -> RunResult {
        epic_audit(
            &[
                "verify",
                path.to_str().unwrap(),
                "--pubkey",
                self.public.to_str().unwrap(),
            ],
            &self.machine(machine),
        )
    }

    fn link(&self, machine: &str, run: &str) -> Value {
        common::manifest_statement(&self.machine(machine).join("reports/local").join(run))
            ["predicate"]["chain"]
            .clone()
    }
}

async fn setup(object_lock: bool) -> Setup {
    let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    let s3 = moto.s3().await;
    let mut create = s3.create_bucket().bucket(BUCKET);
    if object_lock {
        create = create.object_lock_enabled_for_bucket(true);
    }
    create.send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = common::keygen(dir.path());
    Setup {
        moto,
        dir,
        key,
        public,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_run_is_stored_write_once_and_read_back() {
    let s = setup(true).await;
    let (run, r) = s.run("a", "2026-11-13T08:00:00Z", &["--store", STORE]);
    assert!(r.code <= 2, "{}\n{}", r.stdout, r.stderr);
    let stored_line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("stored: "))
        .unwrap_or_else(|| panic!("no stored line:\n{}", r.stdout));
    assert!(
        stored_line.starts_with(&format!("stored: {STORE}/local/{run}/ (9 objects,")),
        "{stored_line}"
    );
    assert!(
        stored_line.contains("Object Lock COMPLIANCE until 2032-11-13 08:00:00Z"),
        "{stored_line}"
    );
    assert!(
        stored_line.contains("chain: run 1 (the first)"),
        "{stored_line}"
    );

    let s3 = s.moto.s3().await;
    let local = s.machine("a").join("reports/local").join(&run);
    // Every file of the run, and nothing else (the salt stays local).
    let listed = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(format!("epic-audit/local/{run}/"))
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = listed
        .contents()
        .iter()
        .map(|o| o.key().unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    names.sort();
    let mut on_disk: Vec<String> = std::fs::read_dir(&local)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    on_disk.sort();
    assert_eq!(names, on_disk);
    assert!(names.contains(&"report.sarif".to_string()));

    let key = format!("epic-audit/local/{run}/manifest.dsse.json");
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key(&key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode().unwrap().as_str(), "COMPLIANCE");
    let until = head.object_lock_retain_until_date().unwrap();
    assert_eq!(
        chrono::DateTime::from_timestamp(until.secs(), 0)
            .unwrap()
            .to_rfc3339(),
        "2032-11-13T08:00:00+00:00"
    );
    use base64::Engine;
    use sha2::Digest;
    let local_manifest = std::fs::read(local.join("manifest.dsse.json")).unwrap();
    assert_eq!(
        head.checksum_sha256().unwrap(),
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&local_manifest))
    );
    // Compliance mode: deleting the stored version is refused.
    let version = head.version_id().unwrap().to_string();
    let del = s3
        .delete_object()
        .bucket(BUCKET)
        .key(&key)
        .version_id(&version)
        .send()
        .await;
    let err = del.expect_err("a locked version must not be deletable");
    let text = format!("{}", aws_sdk_s3::error::DisplayErrorContext(&err));
    assert!(text.contains("AccessDenied"), "{text}");
    let still = s3
        .get_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(still.version_id(), Some(version.as_str()));

    // The same directory name again is never written over.
    let (_, again) = s.run("b", "2026-11-13T08:00:00Z", &["--store", STORE]);
    assert_eq!(again.code, 4, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again
            .stderr
            .contains("exists already: evidence is never overwritten"),
        "{}",
        again.stderr
    );
    assert!(
        again.stdout.contains("NOT STORED · exit code 4"),
        "{}",
        again.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_from_two_machines_chain_through_the_store_and_export_from_it() {
    let s = setup(true).await;
    let mut runs = Vec::new();
    for (machine, when) in [
        ("a", "2026-11-13T08:00:00Z"),
        ("b", "2026-11-14T08:00:00Z"),
        ("a", "2026-11-15T08:00:00Z"),
    ] {
        let (run, r) = s.run(machine, when, &["--store", STORE]);
        assert!(r.code <= 2, "{}\n{}", r.stdout, r.stderr);
        runs.push((machine, run));
    }
    let links: Vec<Value> = runs.iter().map(|(m, r)| s.link(m, r)).collect();
    // b's run follows a's first, though b's reports directory is empty;
    // a's second follows b's, which a's directory never held.
    assert_eq!(links[0]["sequence"], 1);
    assert_eq!(links[1]["sequence"], 2);
    assert_eq!(links[1]["previous"]["dir"], runs[0].1.as_str());
    assert_eq!(links[2]["sequence"], 3);
    assert_eq!(links[2]["previous"]["dir"], runs[1].1.as_str());

    // Machine a's own directory has a gap where b's run is.
    let local = s.verify("a", Path::new("reports/local"));
    assert_eq!(local.code, 1, "{}", local.stdout);
    assert!(
        local.stdout.contains("run 2 is missing"),
        "{}",
        local.stdout
    );

    // An auditor's machine: the quarter from the store.
    let archive = s.machine("auditor").join("q4.tar.gz");
    let r = s.export_from("auditor", Some(&archive));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&format!(
            "fetched 3 run(s) of `local` in 2026-Q4 from {STORE}"
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("exported 3 run(s)"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("chain: signed runs 1 to 3 of the environment's chain"),
        "{}",
        r.stdout
    );
    // The archive was also kept in the store (the environment has none,
    // so only with --store; here it was not asked for).
    let v = s.verify("auditor", &archive);
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    let unpacked = s.dir.path().join("unpacked");
    let files = common::unpack_archive(&archive, &unpacked);
    let (code, out) = common::third_party(&unpacked, &s.public);
    assert_eq!(code, 0, "{out}");
    for (_, run) in &runs {
        assert!(
            files.contains(&format!("runs/{run}/report.json")),
            "{files:?}"
        );
        let (code, out) = common::third_party(&unpacked.join("runs").join(run), &s.public);
        assert_eq!(code, 0, "{run}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_that_read_the_same_head_are_a_named_fork() {
    let s = setup(true).await;
    // Two signed runs written locally on two machines, not stored yet.
    let (a, b) = {
        let (a, ra) = s.run("a", "2026-11-13T08:00:00Z", &[]);
        let (b, rb) = s.run("b", "2026-11-13T09:00:00Z", &[]);
        assert!(ra.code <= 2 && rb.code <= 2);
        (a, b)
    };
    let url: epic_audit::store::StoreUrl = STORE.parse().unwrap();
    let store = epic_audit::store::Store::connect(
        url,
        Some(&s.moto.settings()),
        &Default::default(),
        epic_audit::store::LockMode::Compliance,
        6,
    )
    .await;
    // Both read the head before either stored: both claim run 1.
    let head = store.head("local").await.unwrap();
    assert!(head.record.is_none());
    let link = epic_audit::run::chain::Link {
        sequence: 1,
        previous: None,
    };
    let t: chrono::DateTime<chrono::Utc> = "2026-11-13T08:00:00Z".parse().unwrap();
    let dir_a = s.machine("a").join("reports/local").join(&a);
    let dir_b = s.machine("b").join("reports/local").join(&b);
    store
        .put_run("local", &dir_a, &link, &head, t, &a)
        .await
        .unwrap();
    let e = store
        .put_run("local", &dir_b, &link, &head, t, &b)
        .await
        .expect_err("the second writer of the same head must be refused");
    let text = e.to_string();
    assert!(
        text.contains(&format!("the chain head now names {a} (run 1)"))
            && text.contains("both claim run number 1"),
        "{text}"
    );
    assert_eq!(
        store.head("local").await.unwrap().record.unwrap().dir,
        a,
        "the head still names the first writer"
    );
    // Both runs are kept; the export from the store names the fork.
    let r = s.export_from("auditor", None);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains(&format!("fork: {a}, {b} all claim run number 1")),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_without_object_lock_fails_the_run_and_keeps_it_locally() {
    let s = setup(false).await;
    let (run, r) = s.run("a", "2026-11-13T08:00:00Z", &["--store", STORE]);
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("storing the run in s3://hipaa-evidence/epic-audit failed")
            && r.stderr.contains("Object Lock"),
        "{}",
        r.stderr
    );
    // What the terminal says is what the process returns.
    assert!(
        r.stdout.contains("· NOT STORED · exit code 4"),
        "{}",
        r.stdout
    );
    let local: &Path = &s.machine("a").join("reports/local").join(&run);
    let v = s.verify("a", local);
    assert_eq!(v.code, 0, "the local copy is whole: {}", v.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_adopted_mid_chain_continues_it_and_the_gap_is_acknowledged_in_the_store() {
    let s = setup(true).await;
    // Run 1 before the environment had a store; run 2 is the first stored
    // one and continues the local chain.
    let (first, r1) = s.run("a", "2026-11-13T08:00:00Z", &[]);
    assert!(r1.code <= 2, "{}", r1.stderr);
    let (second, r2) = s.run("a", "2026-11-14T08:00:00Z", &["--store", STORE]);
    assert!(r2.code <= 2, "{}", r2.stderr);
    assert!(
        r2.stdout.contains(&format!("chain: run 2 after {first}")),
        "{}",
        r2.stdout
    );
    assert_eq!(s.link("a", &second)["previous"]["dir"], first.as_str());
    // The store lacks run 1: its quarter does not export...
    let r = s.export_from("auditor", None);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "run 1 is missing (before {second}, the first run on disk)"
        )),
        "{}",
        r.stderr
    );
    // ...until an acknowledgement, kept in the store, says why.
    let ack = epic_audit(
        &[
            "acknowledge",
            "--env",
            "local",
            "--missing",
            "1",
            "--reason",
            "run 1 predates the evidence store (kept in the CI archive, OPS-7)",
            "--signing-key",
            s.key.to_str().unwrap(),
            "--store",
            STORE,
        ],
        &s.machine("a"),
    );
    assert_eq!(ack.code, 0, "{}\n{}", ack.stdout, ack.stderr);
    assert!(
        ack.stdout.contains(&format!(
            "stored: {}/local/acknowledgements/gap-1-1.dsse.json",
            STORE
        )),
        "{}",
        ack.stdout
    );
    let r = s.export_from("auditor", None);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("acknowledged gap: run 1 is missing")
            && r.stdout.contains("predates the evidence store"),
        "{}",
        r.stdout
    );
}
