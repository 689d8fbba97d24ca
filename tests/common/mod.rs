//! Shared helpers for tests that run real labs and the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use epic_audit::checks::Outcome;
use epic_audit::engine::judge;
use epic_audit::evidence::{EvidenceSet, Observation, Observed};
use epic_audit::policy::Policy;
use epic_audit::report::Report;
use epic_audit_lab::{Lab, LabSpec};
use serde_json::Value;

/// A lab for one test: own port, own state directory (removed on drop),
/// redis processes stopped by pid on drop, also when the test panics.
pub struct TestLab {
    pub lab: Lab,
    pub tmp: tempfile::TempDir,
}

pub async fn start_lab() -> TestLab {
    start_lab_with(|_| {}).await
}

pub async fn start_lab_with(tweak: impl FnOnce(&mut LabSpec)) -> TestLab {
    epic_audit::install_crypto_provider();
    let tmp = tempfile::Builder::new()
        .prefix("epic-audit-test-")
        .tempdir()
        .unwrap();
    let mut spec = LabSpec::for_test(tmp.path().join("lab"));
    spec.sessions = 20;
    // The project's venv (scripts/setup.sh), else $EPIC_AUDIT_MOTO_SERVER or PATH.
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
    if venv.is_file() {
        spec.moto = Some(venv);
    }
    tweak(&mut spec);
    let lab = Lab::up(spec)
        .await
        .unwrap_or_else(|e| panic!("lab did not start: {e}"));
    TestLab { lab, tmp }
}

impl TestLab {
    /// Runs one admin command on each of `nodes` (0-based), panicking with
    /// the node and the reply when one fails: how a test puts a defect into
    /// the lab.
    pub async fn on_nodes(&self, nodes: &[usize], words: &[&str]) {
        for &i in nodes {
            let mut c = self.lab.admin(i).await.unwrap();
            c.cmd_str(words)
                .await
                .unwrap_or_else(|e| panic!("{words:?} on node {}: {e}", i + 1));
        }
    }

    /// A copy of the shipped policy (checks/*.toml) in `name` under the
    /// test's directory, each file passed through `edit`: how a test
    /// audits with other parameters (`--policy DIR`).
    pub fn policy_copy(&self, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
        let dir = self.tmp.path().join(name);
        policy_copy_in(&dir, edit);
        dir
    }

    /// Writes a config for this lab (environment `t`) and returns its path.
    pub fn config(&self, extra_seeds: &[String], timeouts: (u64, u64, u64)) -> PathBuf {
        let dir = self.lab.spec.dir.display().to_string();
        let auditor = &self.lab.spec.names.auditor;
        let mut seeds: Vec<String> = vec![format!("\"{}\"", self.lab.spec.client_addr(0))];
        seeds.extend(extra_seeds.iter().map(|s| format!("\"{s}\"")));
        let text = format!(
            r#"[environments.t]
seeds = [{seeds}]
audit_user = "{auditor}"
signing_key = "{dir}/signing/epic-audit-signing.key"
accepted_builds = "{dir}/accepted-builds.toml"
[environments.t.tls]
ca = "{dir}/pki/ca.crt"
client_cert = "{dir}/pki/client.crt"
client_key = "{dir}/pki/client.key"
[environments.t.users.{auditor}]
password_file = "{dir}/secrets/{auditor}.pass"
[environments.t.timeouts]
connect_ms = {c}
command_ms = {m}
probe_ms = {p}
[environments.t.monitoring]
exporter_port = {e}
{prometheus}"#,
            seeds = seeds.join(", "),
            c = timeouts.0,
            m = timeouts.1,
            p = timeouts.2,
            e = self.lab.spec.port + epic_audit_lab::EXPORTER_OFFSET,
            prometheus = if self.lab.spec.monitoring {
                format!("prometheus_url = \"{}\"\n", self.lab.prometheus_url())
            } else {
                String::new()
            },
        );
        let path = self.tmp.path().join("epic-audit.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes the config of [`TestLab::config`] plus an `[aws]` table for
    /// `aws` (the lab's emulator settings, possibly altered) and returns it.
    pub fn config_with_aws(
        &self,
        timeouts: (u64, u64, u64),
        aws: &epic_audit::config::AwsSettings,
    ) -> PathBuf {
        let path = self.config(&[], timeouts);
        let map: Vec<String> = aws
            .node_ip_map
            .iter()
            .map(|(k, v)| format!("\"{k}\" = \"{v}\""))
            .collect();
        let text = format!(
            r#"{base}[environments.t.aws]
region = "{region}"
endpoint = "{endpoint}"
credentials = "emulator"
discovery = {{ tag = "{tag}", value = "{value}" }}
node_ip_map = {{ {map} }}
"#,
            base = std::fs::read_to_string(&path).unwrap(),
            region = aws.region.as_deref().unwrap(),
            endpoint = aws.endpoint.as_deref().unwrap(),
            tag = aws.discovery.tag,
            value = aws.discovery.value,
            map = map.join(", "),
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Adds password references for `users` (lab users) to the config.
    pub fn add_users(&self, cfg: &Path, users: &[&str]) {
        let mut text = std::fs::read_to_string(cfg).unwrap();
        for u in users {
            text.push_str(&format!(
                "[environments.t.users.{u}]\npassword_file = \"{}/secrets/{u}.pass\"\n",
                self.lab.spec.dir.display()
            ));
        }
        std::fs::write(cfg, text).unwrap();
    }

    /// Every key matching `pattern` on the three masters (SCAN as the
    /// lab's admin).
    pub async fn keys(&self, pattern: &str) -> Vec<String> {
        use epic_audit::resp::as_text;
        let mut out = Vec::new();
        for m in 0..3 {
            let mut c = self.lab.admin(m).await.unwrap();
            let mut cursor = "0".to_string();
            loop {
                let epic_audit::resp::Value::Array(r) = c
                    .cmd_str(&["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"])
                    .await
                    .unwrap()
                else {
                    panic!("SCAN")
                };
                cursor = as_text(&r[0]).unwrap();
                if let epic_audit::resp::Value::Array(ks) = &r[1] {
                    out.extend(ks.iter().filter_map(as_text));
                }
                if cursor == "0" {
                    break;
                }
            }
        }
        out
    }

    pub fn out(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// The checkout the tests run from.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether the tests that need Docker run here: not when scripts/test.sh
/// found no Docker and set `EPIC_AUDIT_COMPOSE_TESTS=0` (then `what` says,
/// once per test, that it was skipped).
pub fn compose_enabled(what: &str) -> bool {
    if std::env::var("EPIC_AUDIT_COMPOSE_TESTS").as_deref() == Ok("0") {
        eprintln!("{what} skipped: EPIC_AUDIT_COMPOSE_TESTS=0 (no Docker here)");
        return false;
    }
    true
}

/// Writes a copy of the shipped policy (checks/*.toml) into `dir` (made if
/// missing), each file passed through `edit`.
pub fn policy_copy_in(dir: &Path, edit: impl Fn(String) -> String) {
    std::fs::create_dir_all(dir).unwrap();
    for f in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/checks")).unwrap() {
        let f = f.unwrap().path();
        let text = std::fs::read_to_string(&f).unwrap();
        std::fs::write(dir.join(f.file_name().unwrap()), edit(text)).unwrap();
    }
}

/// The lab's own binary (`epic-audit-lab`, a workspace member), beside the
/// audit binary in the same target directory.
pub fn lab_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_epic-audit")).with_file_name("epic-audit-lab");
    assert!(
        p.is_file(),
        "{} is not built: run the tests with `cargo test --workspace`",
        p.display()
    );
    p
}

/// `epic-audit run --env t --config CFG EXTRA...` in the lab's directory.
pub fn run_env(t: &TestLab, cfg: &Path, extra: &[&str]) -> RunResult {
    let mut args = vec!["run", "--env", "t", "--config", cfg.to_str().unwrap()];
    args.extend_from_slice(extra);
    epic_audit(&args, t.tmp.path())
}

/// The result of running the binary.
pub struct RunResult {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn epic_audit(args: &[&str], cwd: &Path) -> RunResult {
    let out = Command::new(env!("CARGO_BIN_EXE_epic-audit"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    RunResult {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

pub fn report(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

pub fn check<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id}"))
}

/// (subject, outcome, message) of a check.
pub fn subjects(r: &Value, id: &str) -> Vec<(String, String, String)> {
    check(r, id)["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["subject"].as_str().unwrap().to_string(),
                s["outcome"].as_str().unwrap().to_string(),
                format!(
                    "{} | {}",
                    s["observed"].as_str().unwrap(),
                    s["message"].as_str().unwrap()
                ),
            )
        })
        .collect()
}

/// TLS-001's bus-port subjects of `r`: (subject, observed | message).
pub fn bus_handshakes(r: &Value) -> Vec<(String, String)> {
    subjects(r, "TLS-001")
        .into_iter()
        .filter(|s| s.0.ends_with(" bus"))
        .map(|s| (s.0, s.2))
        .collect()
}

/// The evidence recorded on the real lab (fixtures/evidence/lab-good.json).
/// The least-privilege `auditor` user was added since: its ACL user entry,
/// DRYRUN sweep, sample keys and policy cases on each node were recorded
/// on a real lab audited as `auditor` and spliced into the ACL items.
pub fn fixture_evidence() -> epic_audit::evidence::EvidenceSet {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/evidence/lab-good.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One node unreachable and CLU-001 failing on every node.
pub fn fixture_evidence_bad() -> epic_audit::evidence::EvidenceSet {
    let mut ev = fixture_evidence();
    for e in ev.items.iter_mut() {
        if e.subject == "127.0.1.3:6379" {
            e.result =
                epic_audit::evidence::Observed::Failure(epic_audit::evidence::ProbeFailure {
                    kind: epic_audit::evidence::FailureKind::Connect,
                    message:
                        "TCP connect to 127.0.1.3:6379 failed: Connection refused (os error 111)"
                            .into(),
                });
        } else if let epic_audit::evidence::Observed::Observation(
            epic_audit::evidence::Observation::ClusterNode(v),
        ) = &mut e.result
        {
            for n in v.nodes.iter_mut() {
                for r in n.slots.iter_mut().filter(|r| r.start == 0) {
                    r.start = 100;
                }
            }
        }
    }
    ev
}

/// Runs `epic-audit run --only AREA` against the lab (config written by
/// [`TestLab::config`]) into `out/NAME`; returns the exit code, the report
/// and the (id, outcome) of every check that did not pass.
pub fn audit_area(t: &TestLab, area: &str, name: &str) -> (i32, Value, Vec<(String, String)>) {
    let cfg = t.tmp.path().join("epic-audit.toml");
    let out = t.out(name);
    let r = run_env(t, &cfg, &["--only", area, "--out", out.to_str().unwrap()]);
    assert!(
        r.code <= 2,
        "{name}: exit {}\n{}\n{}",
        r.code,
        r.stdout,
        r.stderr
    );
    let rep = report(&out);
    let not_passing = rep["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] != "pass")
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (r.code, rep, not_passing)
}

/// `(id, "fail")` pairs.
pub fn fails(ids: &[&str]) -> Vec<(String, String)> {
    ids.iter()
        .map(|i| (i.to_string(), "fail".to_string()))
        .collect()
}

/// (subject, message) of a check's subjects that did not pass.
pub fn failing_subjects(rep: &Value, id: &str) -> Vec<(String, String)> {
    subjects(rep, id)
        .into_iter()
        .filter(|s| s.1 != "pass")
        .map(|s| (s.0, s.2))
        .collect()
}

/// The builds the lab environment accepts for PATCH-001, as `epic-audit-lab
/// up` wrote them for the lab the fixture was recorded on.
pub const LAB_ACCEPTED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/evidence/lab-accepted-builds.toml"
);

/// The built-in policy plus the lab's accepted builds: how the lab
/// environment's evidence is judged.
pub fn lab_policy() -> Policy {
    let mut p = Policy::builtin().unwrap();
    p.accept_builds(
        Path::new(LAB_ACCEPTED),
        "fixtures/evidence/lab-accepted-builds.toml",
    )
    .unwrap();
    p
}

/// Judges `ev` as the lab environment is judged (the built-in policy and
/// the lab's accepted builds), selecting `areas` (areas or ids).
pub fn judge_areas(ev: &EvidenceSet, areas: &[&str]) -> Report {
    let p = lab_policy();
    let only: Vec<String> = areas.iter().map(|a| a.to_string()).collect();
    let sel = p.select(&only, &[]).unwrap();
    judge(ev, &p, &sel, &[], &[])
}

/// The checks of `r` that are not `pass`, with their outcome.
pub fn not_passing(r: &Report) -> Vec<(String, Outcome)> {
    r.checks
        .iter()
        .filter(|c| c.outcome != Outcome::Pass)
        .map(|c| (c.id.clone(), c.outcome))
        .collect()
}

/// Exactly one check `id` with outcome `o` (to compare with [`not_passing`]).
pub fn only(id: &str, o: Outcome) -> Vec<(String, Outcome)> {
    vec![(id.to_string(), o)]
}

/// `subject [outcome]: observed | message` of every non-passing subject of
/// check `id`.
pub fn messages(r: &Report, id: &str) -> Vec<String> {
    result(r, id)
        .subjects
        .iter()
        .filter(|s| s.outcome != Outcome::Pass)
        .map(|s| {
            format!(
                "{} [{}]: {} | {}",
                s.subject, s.outcome, s.observed, s.message
            )
        })
        .collect()
}

/// Check `id`'s result in `r` (panics naming it when `r` has none).
pub fn result<'a>(r: &'a Report, id: &str) -> &'a epic_audit::report::CheckResult {
    r.checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

/// `(subject, code)` of every subject of check `id` that did not pass: the
/// typed reasons a test compares instead of prose
/// (`("127.0.1.1:6379", "DATA-001/aof-off")`).
pub fn codes(r: &Report, id: &str) -> Vec<(String, String)> {
    result(r, id)
        .subjects
        .iter()
        .filter(|s| s.outcome != Outcome::Pass)
        .map(|s| (s.subject.clone(), s.code.clone()))
        .collect()
}

/// The distinct codes of check `id`'s subjects that did not pass.
pub fn distinct_codes(r: &Report, id: &str) -> Vec<String> {
    let mut v: Vec<String> = codes(r, id).into_iter().map(|(_, c)| c).collect();
    v.sort();
    v.dedup();
    v
}

/// The AWS inventory of fixture evidence, to plant a defect in.
pub fn inventory(ev: &mut EvidenceSet) -> &mut epic_audit::evidence::AwsInventory {
    ev.items
        .iter_mut()
        .find_map(|e| match &mut e.result {
            Observed::Observation(Observation::Aws(inv)) => Some(inv.as_mut()),
            _ => None,
        })
        .expect("the fixture has an AWS inventory")
}

/// Every observation `pick` accepts, mutable, with its subject (to plant a
/// defect in fixture evidence).
pub fn observations_mut<'a, T: 'a>(
    ev: &'a mut EvidenceSet,
    pick: impl Fn(&'a mut Observation) -> Option<&'a mut T>,
) -> Vec<(String, &'a mut T)> {
    ev.items
        .iter_mut()
        .filter_map(|e| match &mut e.result {
            Observed::Observation(o) => pick(o).map(|v| (e.subject.clone(), v)),
            Observed::Failure(_) => None,
        })
        .collect()
}

/// Debian's Chromium (scripts/setup.sh installs it).
pub fn chromium() -> &'static str {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("Chromium is not installed: run scripts/setup.sh (Debian package `chromium`)")
}

/// Renders `page` (a local file) in headless Chromium with no network,
/// with `what` (`--dump-dom`, or `--screenshot=PNG`) and a window size;
/// returns stdout (the DOM for `--dump-dom`).
pub fn chromium_render(page: &Path, what: &str, profile: &Path) -> String {
    let o = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(what)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    if what == "--dump-dom" {
        assert!(
            out.contains("</html>"),
            "Chromium rendered nothing: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    out
}

/// The opening tags `<NAME ...>` in `dom` whose attributes contain `attr`.
pub fn tags_with<'a>(dom: &'a str, name: &str, attr: &str) -> Vec<&'a str> {
    dom.match_indices(&format!("<{name} "))
        .filter_map(|(i, _)| dom[i..].find('>').map(|j| &dom[i..i + j + 1]))
        .filter(|t| t.contains(attr))
        .collect()
}

/// The value of attribute `name` in an opening tag.
pub fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let k = format!(" {name}=\"");
    let i = tag.find(&k)? + k.len();
    tag[i..].split('"').next()
}

/// The project's venv Python (scripts/setup.sh makes it, with the
/// third-party verifiers the tests use).
pub fn python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/setup.sh (it installs securesystemslib, sigstore-protobuf-specs and junitparser)",
        p.display()
    );
    p
}

/// Runs `tests/py/<script>` with `args` in the project's venv: (exit code,
/// stdout then stderr).
pub fn py(script: &str, args: &[&Path]) -> (i32, String) {
    let out = Command::new(python())
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/py")
                .join(script),
        )
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs tests/py/third_party_verify.py on a directory holding
/// manifest.dsse.json: (exit code, its output).
pub fn third_party(run: &Path, pubkey: &Path) -> (i32, String) {
    py("third_party_verify.py", &[run, pubkey])
}

/// Runs tests/py/junit_check.py (junitparser) on a JUnit file: (exit code,
/// its output).
pub fn junit_check(junit: &Path) -> (i32, String) {
    py("junit_check.py", &[junit])
}

/// A compose lab for one test (`LabSpec::compose`): its own project,
/// /24 network and emulator port; `docker compose down` on drop, also when
/// the test panics. The network's third octet is picked from the pid and a
/// counter, and another is tried when Docker reports an overlap.
pub async fn start_compose_lab(tweak: impl Fn(&mut LabSpec)) -> TestLab {
    use std::sync::atomic::{AtomicU8, Ordering};
    static NEXT: AtomicU8 = AtomicU8::new(0);
    epic_audit::install_crypto_provider();
    let mut last = String::new();
    for _ in 0..8 {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let octet = 100 + ((std::process::id() % 37) as u8 * 4 + n) % 150;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tmp = tempfile::Builder::new()
            .prefix("epic-audit-compose-")
            .tempdir()
            .unwrap();
        let mut spec = LabSpec::compose(
            tmp.path().join("lab"),
            epic_audit_lab::ComposeSpec {
                project: format!("eal-test-{}-{n}", std::process::id()),
                subnet: [172, 28, octet],
                emulator_port: port,
            },
        );
        spec.sessions = 20;
        spec.node_timeout_ms = 2000;
        spec.die_with_parent = true;
        spec.aws = false;
        tweak(&mut spec);
        match Lab::up(spec).await {
            Ok(lab) => return TestLab { lab, tmp },
            Err(e) if e.to_string().contains("overlaps") => last = e.to_string(),
            Err(e) => panic!(
                "compose lab did not start: {e}\n(Docker with Compose and the image \
                 debian:bookworm-slim are needed: `bash scripts/docker-base.sh`; \
                 scripts/test.sh skips these tests, saying so, where Docker is missing)"
            ),
        }
    }
    panic!("no free /24 for a compose lab: {last}")
}

/// PATCH-001 on a lab audited as the lab environment: the Debian build
/// every node runs is accepted by the `accepted-builds.toml` the lab wrote
/// (`waived`, naming the package), never `pass`.
pub fn assert_lab_build_accepted(rep: &Value) {
    let found = subjects(rep, "PATCH-001");
    assert!(!found.is_empty(), "PATCH-001 was not judged");
    for (s, o, m) in &found {
        assert_eq!(o, "waived", "{s}: {m}");
        assert!(
            m.contains("accepted build") && m.contains("the lab's Debian package"),
            "{s}: {m}"
        );
    }
}

/// The subjects of every check, as (check id, subject, outcome, message).
pub fn all_subjects(rep: &Value) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for c in rep["checks"].as_array().unwrap() {
        for s in c["subjects"].as_array().unwrap() {
            out.push((
                c["id"].as_str().unwrap().to_string(),
                s["subject"].as_str().unwrap_or_default().to_string(),
                s["outcome"].as_str().unwrap_or_default().to_string(),
                s["message"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

/// A policy directory: the built-in policy with PERF-001's objective
/// (`threshold_us`), window and warm-up replaced, at 500 ops/s per master.
pub fn latency_policy(dir: &Path, threshold_us: u64, duration_ms: u64, warmup_ms: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in epic_audit::policy::BUILTIN {
        let text = if *name == "performance.toml" {
            text.replace(
                "threshold_us = 1000",
                &format!("threshold_us = {threshold_us}"),
            )
            .replace("rate_per_master = 1000", "rate_per_master = 500")
            .replace(
                "duration_ms = 5000",
                &format!("duration_ms = {duration_ms}"),
            )
            .replace("warmup_ms = 1000", &format!("warmup_ms = {warmup_ms}"))
        } else {
            text.to_string()
        };
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// Writes `ev` beside `out` and signs it into the run directory `out` with
/// `evaluate` (with `policy`, when given): a real signed run without a lab.
pub fn evaluate_signed(
    cwd: &Path,
    ev: &EvidenceSet,
    key: &Path,
    out: &Path,
    policy: Option<&Path>,
) -> RunResult {
    let file = cwd.join(format!("{}.json", ev.run_id));
    std::fs::write(&file, serde_json::to_string(ev).unwrap()).unwrap();
    let mut args: Vec<&str> = Vec::new();
    if let Some(p) = policy {
        args.extend(["--policy", p.to_str().unwrap()]);
    }
    args.extend([
        "evaluate",
        "--accepted-builds",
        LAB_ACCEPTED,
        file.to_str().unwrap(),
        "--signing-key",
        key.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    epic_audit(&args, cwd)
}

/// A new Ed25519 key pair in `dir/keys` (`epic-audit keygen`): (private
/// key file, public key file).
pub fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    let keys = dir.join("keys");
    let r = epic_audit(&["keygen", "--out", keys.to_str().unwrap()], dir);
    assert_eq!(r.code, 0, "{}", r.stderr);
    (
        keys.join("epic-audit-signing.key"),
        keys.join("epic-audit-signing.pub"),
    )
}

/// The in-toto Statement signed in the run directory `run`'s manifest
/// (decoded, not verified).
pub fn manifest_statement(run: &Path) -> Value {
    use base64::Engine;
    let env: Value =
        serde_json::from_slice(&std::fs::read(run.join("manifest.dsse.json")).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&payload).unwrap()
}

/// Unpacks an export archive into `dest` (its files relative to the
/// archive's top directory) and returns their names.
pub fn unpack_archive(archive: &Path, dest: &Path) -> Vec<String> {
    let (_, files) = epic_audit::export::unpack(archive).unwrap();
    for (name, data) in &files {
        let p = dest.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    files.into_keys().collect()
}

/// A moto S3 emulator of one test on 127.0.0.1 (its own port), stopped by
/// pid when dropped, also when the test panics.
pub struct Moto {
    child: std::process::Child,
    /// Its port.
    pub port: u16,
}

impl Moto {
    /// Starts `moto_server` ($EPIC_AUDIT_MOTO_SERVER or the project's
    /// venv) and waits until it answers.
    pub fn start() -> Moto {
        let bin = epic_audit_lab::aws::find_moto()
            .expect("moto_server is missing: run scripts/setup.sh (or set EPIC_AUDIT_MOTO_SERVER)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let moto = Moto { child, port };
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(epic_audit_lab::aws::wait_ready(
                port,
                std::time::Duration::from_secs(60),
            ))
            .unwrap();
        moto
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// AWS settings reaching it with the emulator's credentials.
    pub fn settings(&self) -> epic_audit::config::AwsSettings {
        epic_audit::config::AwsSettings {
            region: Some("us-east-1".into()),
            profile: None,
            endpoint: Some(self.endpoint()),
            credentials: epic_audit::config::AwsCredentials::Emulator,
            discovery: epic_audit::config::TagFilter {
                tag: "t".into(),
                value: "v".into(),
            },
            node_ip_map: Default::default(),
        }
    }

    /// An S3 client of the emulator (emulator credentials, path-style).
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let conf = epic_audit::aws::sdk_config(&self.settings(), &Default::default()).await;
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&conf)
                .force_path_style(true)
                .build(),
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
