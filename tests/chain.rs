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
    assert_eq!(second["previous"]["run_id"], runs[0].as_str());
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
    assert!(r.stdout.contains("(run 2): valid"), "{}", r.stdout);
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
    let s = setup();
    let runs: Vec<String> = DAYS.iter().map(|d| s.run(d)).collect();
    std::fs::remove_dir_all(s.env_dir().join(&runs[1])).unwrap();
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
