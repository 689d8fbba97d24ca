//! The chain of an environment's signed runs, on real runs written by
//! `evaluate` into one reports directory: an intact chain verifies; a run
//! removed is named by `verify` and stops the export until a signed
//! acknowledgement says why; a predecessor rewritten after its successor
//! was signed is named; two runs claiming the same predecessor are a fork.

mod common;

use std::path::{Path, PathBuf};

use common::{epic_audit, fixture_evidence, RunResult};

struct Setup {
    dir: tempfile::TempDir,
    key: PathBuf,
    public: PathBuf,
}

impl Setup {
    fn reports(&self) -> PathBuf {
        self.dir.path().join("reports")
    }
    fn env_dir(&self) -> PathBuf {
        self.reports().join("local")
    }

    /// Signs one run started at `when` into reports/local/<run-id>/ and
    /// returns its directory name.
    fn run(&self, when: &str) -> String {
        let mut ev = fixture_evidence();
        let t: chrono::DateTime<chrono::Utc> = when.parse().unwrap();
        ev.started_at = t;
        ev.finished_at = t + chrono::Duration::seconds(7);
        ev.run_id = epic_audit::engine::run_id(t);
        let out = self.env_dir().join(&ev.run_id);
        let r = common::evaluate_signed(self.dir.path(), &ev, &self.key, &out, None);
        assert!(r.code <= 2, "{}\n{}", r.stdout, r.stderr);
        ev.run_id
    }

    fn verify(&self, path: &Path) -> RunResult {
        epic_audit(
            &[
                "verify",
                path.to_str().unwrap(),
                "--pubkey",
                self.public.to_str().unwrap(),
            ],
            self.dir.path(),
        )
    }

    fn export(&self, name: &str) -> (RunResult, PathBuf) {
        let out = self.dir.path().join(name);
        let r = epic_audit(
            &[
                "export",
                "--env",
                "local",
                "--quarter",
                "2026-Q4",
                "--reports",
                self.reports().to_str().unwrap(),
                "--signing-key",
                self.key.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            self.dir.path(),
        );
        (r, out)
    }

    fn acknowledge(&self, missing: &str, reason: &str) -> RunResult {
        epic_audit(
            &[
                "acknowledge",
                "--env",
                "local",
                "--missing",
                missing,
                "--reason",
                reason,
                "--reports",
                self.reports().to_str().unwrap(),
                "--signing-key",
                self.key.to_str().unwrap(),
            ],
            self.dir.path(),
        )
    }

    /// The chain link a run's signed manifest carries.
    fn link(&self, run: &str) -> serde_json::Value {
        common::manifest_statement(&self.env_dir().join(run))["predicate"]["chain"].clone()
    }
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = common::keygen(dir.path());
    Setup { key, public, dir }
}

/// Three signed runs, the second removed: (the setup, the three runs).
fn with_run_2_lost() -> (Setup, Vec<String>) {
    let s = setup();
    let runs: Vec<String> = DAYS.iter().map(|d| s.run(d)).collect();
    std::fs::remove_dir_all(s.env_dir().join(&runs[1])).unwrap();
    (s, runs)
}

const DAYS: [&str; 3] = [
    "2026-11-13T08:00:00Z",
    "2026-11-14T08:00:00Z",
    "2026-11-15T08:00:00Z",
];

#[test]
fn each_run_names_its_predecessor_and_the_chain_verifies() {
    let s = setup();
    let runs: Vec<String> = DAYS.iter().map(|d| s.run(d)).collect();
    assert_eq!(
        s.link(&runs[0]),
        serde_json::json!({"sequence": 1, "previous": null})
    );
    let second = s.link(&runs[1]);
    assert_eq!(second["sequence"], 2);
    assert_eq!(second["previous"]["dir"], runs[0].as_str());
    // Runs made by `evaluate` are re-evaluations of the observed run, with
    // ids of their own.
    assert!(
        second["previous"]["run_id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}-evaluated-", runs[0])),
        "{second}"
    );
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            std::fs::read(s.env_dir().join(&runs[0]).join("manifest.dsse.json")).unwrap(),
        ))
    };
    assert_eq!(second["previous"]["manifest_sha256"], digest.as_str());
    assert_eq!(s.link(&runs[2])["sequence"], 3);
    let r = s.verify(&s.env_dir());
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("VALID: 3 run(s)"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!(
            "(run 2, re-evaluation of observed run {}): valid",
            runs[1]
        )),
        "{}",
        r.stdout
    );
    let (r, _) = s.export("q4.tar.gz");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("chain: signed runs 1 to 3"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_removed_run_fails_verify_and_export_until_acknowledged() {
    let (s, runs) = with_run_2_lost();
    let gap = format!("run 2 is missing (between {} and {})", runs[0], runs[2]);

    let r = s.verify(&s.env_dir());
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("CHAIN BROKEN: {gap}")),
        "{}",
        r.stdout
    );
    let (r, out) = s.export("broken.tar.gz");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&gap), "{}", r.stderr);
    assert!(!out.exists(), "no archive for a broken chain");

    let why = "run of 2026-11-14 lost with the CI runner's disk (OPS-123)";
    let r = s.acknowledge("2", why);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = s.verify(&s.env_dir());
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("acknowledged gap"), "{}", r.stdout);
    let (r, out) = s.export("acknowledged.tar.gz");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(why), "{}", r.stdout);
    let (_, files) = epic_audit::export::unpack(&out).unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&files["export.json"]).unwrap();
    let acked = &meta["chain"]["acknowledged_gaps"][0];
    assert_eq!(acked["gap"], gap.as_str());
    assert_eq!(acked["reason"], why);
    assert!(files.contains_key("acknowledgements/gap-2-2.dsse.json"));
    assert!(String::from_utf8_lossy(&files["index.html"]).contains("lost with the CI runner"));
    let r = s.verify(&out);
    assert_eq!(r.code, 0, "{}", r.stdout);

    // An acknowledgement signed by another key covers nothing.
    let other = s.dir.path().join("other");
    epic_audit(&["keygen", "--out", other.to_str().unwrap()], s.dir.path());
    std::fs::remove_file(s.env_dir().join("acknowledgements/gap-2-2.dsse.json")).unwrap();
    let r = epic_audit(
        &[
            "acknowledge",
            "--env",
            "local",
            "--missing",
            "2",
            "--reason",
            "forged",
            "--reports",
            s.reports().to_str().unwrap(),
            "--signing-key",
            other.join("epic-audit-signing.key").to_str().unwrap(),
        ],
        s.dir.path(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = s.verify(&s.env_dir());
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("no valid signature"), "{}", r.stdout);
}

#[test]
fn a_rewritten_predecessor_and_a_fork_are_named() {
    let s = setup();
    let runs: Vec<String> = DAYS.iter().map(|d| s.run(d)).collect();
    // Run 1's manifest re-serialised after run 2 was signed: its own
    // signature still holds, but it is no longer the manifest run 2 names.
    let m = s.env_dir().join(&runs[0]).join("manifest.dsse.json");
    let original = std::fs::read(&m).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&original).unwrap();
    std::fs::write(&m, serde_json::to_vec(&v).unwrap()).unwrap();
    let r = s.verify(&s.env_dir().join(&runs[0]));
    assert_eq!(r.code, 0, "the run alone still verifies: {}", r.stdout);
    let r = s.verify(&s.env_dir());
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout
            .contains(&format!("{} names a predecessor manifest sha256", runs[1]))
            && r.stdout.contains(&format!("but {}'s is", runs[0])),
        "{}",
        r.stdout
    );
    let (r, _) = s.export("rewritten.tar.gz");
    assert_eq!(r.code, 1, "{}", r.stderr);
    std::fs::write(&m, original).unwrap();
    assert_eq!(s.verify(&s.env_dir()).code, 0);

    // Two runs written against the same head (as two machines with their
    // own reports directories would): the newest run hidden while another
    // is written, then put back.
    let hidden = s.env_dir().join(format!(".{}", runs[2]));
    std::fs::rename(s.env_dir().join(&runs[2]), &hidden).unwrap();
    let fork = s.run("2026-11-15T09:00:00Z");
    std::fs::rename(&hidden, s.env_dir().join(&runs[2])).unwrap();
    assert_eq!(s.link(&fork)["sequence"], 3);
    let r = s.verify(&s.env_dir());
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("fork: ") && r.stdout.contains("all claim run number 3"),
        "{}",
        r.stdout
    );
}

/// `acknowledge --env local --missing MISSING` signed with `key`.
fn acknowledge_with(s: &Setup, missing: &str, key: &Path) -> RunResult {
    epic_audit(
        &[
            "acknowledge",
            "--env",
            "local",
            "--missing",
            missing,
            "--reason",
            "lost",
            "--reports",
            s.reports().to_str().unwrap(),
            "--signing-key",
            key.to_str().unwrap(),
        ],
        s.dir.path(),
    )
}

#[test]
fn nothing_can_be_acknowledged_in_advance_or_while_it_is_there() {
    let s = setup();
    let runs: Vec<String> = DAYS.iter().map(|d| s.run(d)).collect();
    let refused = |missing: &str, says: &str| {
        let r = acknowledge_with(&s, missing, &s.key);
        assert_eq!(r.code, 3, "--missing {missing}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(says), "--missing {missing}: {}", r.stderr);
        assert!(
            !s.env_dir().join("acknowledgements").exists(),
            "no record was written for --missing {missing}"
        );
    };
    // A run that does not exist yet: the issue's pre-acknowledgement.
    refused("4", "the newest signed run is run 3");
    refused("4-9", "the newest signed run is run 3");
    // One record for every future deletion.
    refused("1-18446744073709551615", "more than 10000 runs");
    // A run that is on disk.
    refused(
        "1",
        &format!("run 1 is not missing: it is on disk as {}", runs[0]),
    );
    refused("0", "numbered from 1");
    refused("3-2", "numbered from 1");
    // The gap must be acknowledged whole.
    let fourth = s.run("2026-11-16T08:00:00Z");
    let _ = s.run("2026-11-17T08:00:00Z");
    std::fs::remove_dir_all(s.env_dir().join(&runs[1])).unwrap();
    std::fs::remove_dir_all(s.env_dir().join(&fourth)).unwrap(); // runs 2 and 4 missing
    refused("2-4", "run 3 is not missing");
    // (An environment name that is a path: tests/bad_inputs.rs.)
    // The real gaps are accepted, each naming its neighbours.
    let r = acknowledge_with(&s, "2", &s.key);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(&format!(
            "missing between run 1 ({}) and run 3 ({})",
            runs[0], runs[2]
        )),
        "{}",
        r.stdout
    );
    assert_eq!(acknowledge_with(&s, "4", &s.key).code, 0);
    let r = s.verify(&s.env_dir());
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[test]
fn a_record_whose_neighbour_was_replaced_is_rejected_by_verify_and_export() {
    let (s, runs) = with_run_2_lost();
    assert_eq!(acknowledge_with(&s, "2", &s.key).code, 0);
    assert_eq!(s.verify(&s.env_dir()).code, 0);
    // Run 3's manifest re-serialised after the record was signed: its own
    // signature holds, but it is not the run the record names.
    let m = s.env_dir().join(&runs[2]).join("manifest.dsse.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
    std::fs::write(&m, serde_json::to_vec(&v).unwrap()).unwrap();
    let r = s.verify(&s.env_dir());
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("gap-2-2.dsse.json names run")
            && r.stdout.contains(&runs[2])
            && r.stdout
                .contains("replaced after the acknowledgement was signed"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("CHAIN BROKEN: run 2 is missing"),
        "{}",
        r.stdout
    );
    let (r, out) = s.export("replaced.tar.gz");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("replaced after the acknowledgement"),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
    // The run before the gap removed: the record names a run not there.
    std::fs::write(&m, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    std::fs::remove_dir_all(s.env_dir().join(&runs[0])).unwrap();
    let r = s.verify(&s.env_dir());
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout
            .contains(&format!("names run {} (run 1) that is not there", runs[0])),
        "{}",
        r.stdout
    );
}

#[test]
fn with_acknowledgement_keys_the_run_key_excuses_nothing() {
    let (s, runs) = with_run_2_lost();
    let officer = s.dir.path().join("officer");
    let r = epic_audit(
        &["keygen", "--out", officer.to_str().unwrap()],
        s.dir.path(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let config = s.dir.path().join("epic-audit.toml");
    std::fs::write(
        &config,
        r#"[environments.local]
seeds = ["127.0.0.1:1"]
audit_user = "auditor"
acknowledgement_pubkeys = ["officer/epic-audit-signing.pub"]
[environments.local.tls]
ca = "ca.crt"
client_cert = "c.crt"
client_key = "c.key"
[environments.local.users.auditor]
password_env = "EPIC_AUDIT_TEST_NEVER_SET"
"#,
    )
    .unwrap();
    // The CI runner's key (the runs' key) signs a record: it covers
    // nothing where the environment names its acknowledgement keys.
    assert_eq!(acknowledge_with(&s, "2", &s.key).code, 0);
    let r = s.verify(&s.env_dir());
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("not signed by any of the environment's 1 acknowledgement key(s)")
            && r.stdout.contains("CHAIN BROKEN: run 2 is missing"),
        "{}",
        r.stdout
    );
    let (r, _) = s.export("by-runner.tar.gz");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    // The compliance officer's key covers it; the export says who signed.
    std::fs::remove_file(s.env_dir().join("acknowledgements/gap-2-2.dsse.json")).unwrap();
    let officer_key = officer.join("epic-audit-signing.key");
    let r = acknowledge_with(&s, "2", &officer_key);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let officer_id = r
        .stdout
        .split("(signed by key ")
        .nth(1)
        .and_then(|t| t.split(')').next())
        .unwrap()
        .to_string();
    let r = s.verify(&s.env_dir());
    assert_eq!(r.code, 0, "{}", r.stdout);
    let (r, out) = s.export("by-officer.tar.gz");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&format!("by key {officer_id})")),
        "{}",
        r.stdout
    );
    let (_, files) = epic_audit::export::unpack(&out).unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&files["export.json"]).unwrap();
    assert_eq!(
        meta["chain"]["acknowledged_gaps"][0]["signed_by_key"],
        officer_id.as_str()
    );
    assert_eq!(
        meta["chain"]["acknowledged_gaps"][0]["before"]["dir"],
        runs[2].as_str()
    );
    // --ack-pubkey overrides the config: with the runs' key named, the
    // officer's record is not accepted.
    let r = epic_audit(
        &[
            "verify",
            s.env_dir().to_str().unwrap(),
            "--pubkey",
            s.public.to_str().unwrap(),
            "--ack-pubkey",
            s.public.to_str().unwrap(),
        ],
        s.dir.path(),
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
}
