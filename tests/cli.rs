//! The binary's behaviour without any server: help, catalogue, explain,
//! config errors and exit codes.

mod common;

use common::epic_audit;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn malformed_config_exits_3_naming_file_and_line() {
    let d = tmp();
    let cfg = d.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[environments.x]\nseeds = [\"127.0.0.1:7000\"]\ntls = 5\n",
    )
    .unwrap();
    let r = epic_audit(
        &["run", "--env", "x", "--config", cfg.to_str().unwrap()],
        d.path(),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("bad.toml"), "{}", r.stderr);
    assert!(r.stderr.contains("line 3"), "{}", r.stderr);
    assert!(r.stderr.contains("tls"), "{}", r.stderr);
    assert!(
        !d.path().join("reports").exists(),
        "nothing is written on a config error"
    );
}

#[test]
fn invalid_toml_syntax_exits_3_with_line() {
    let d = tmp();
    let cfg = d.path().join("c.toml");
    std::fs::write(&cfg, "[environments.x\nseeds = 1\n").unwrap();
    let r = epic_audit(
        &["run", "--env", "x", "--config", cfg.to_str().unwrap()],
        d.path(),
    );
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("c.toml") && r.stderr.contains("line 1"),
        "{}",
        r.stderr
    );
}

#[test]
fn missing_config_and_unknown_env_exit_3() {
    let d = tmp();
    let r = epic_audit(&["run", "--env", "x", "--config", "nope.toml"], d.path());
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("nope.toml"), "{}", r.stderr);
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/epic-audit.toml");
    let r = epic_audit(&["run", "--env", "qa", "--config", shipped], d.path());
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("no environment `qa`")
            && r.stderr.contains("compose, local, local-hostnames, prod"),
        "{}",
        r.stderr
    );
}

#[test]
fn missing_secret_names_the_variable_and_contacts_nothing() {
    let d = tmp();
    let pki = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pki");
    let cfg = d.path().join("c.toml");
    // The seed is a loopback port nobody listens on; the run must stop at
    // the missing secret before connecting anywhere.
    std::fs::write(
        &cfg,
        format!(
            "[environments.x]\nseeds = [\"127.0.0.1:1\"]\naudit_user = \"admin_user\"\n[environments.x.tls]\nca = \"{pki}/ca.crt\"\n\
             client_cert = \"{pki}/client.crt\"\nclient_key = \"{pki}/client.key\"\n\
             [environments.x.users.admin_user]\npassword_env = \"EPIC_AUDIT_TEST_UNSET_SECRET\"\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_epic-audit"))
        .args(["run", "--env", "x", "--config", cfg.to_str().unwrap()])
        .current_dir(d.path())
        .env_remove("EPIC_AUDIT_TEST_UNSET_SECRET")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("environment variable EPIC_AUDIT_TEST_UNSET_SECRET"),
        "{stderr}"
    );
    assert!(!d.path().join("reports").exists());
}

#[test]
fn the_prod_example_is_never_contacted_from_here() {
    // Its PKI paths do not exist on this machine: the run stops at config
    // (exit 3) before any connection to the example addresses.
    let d = tmp();
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/epic-audit.toml");
    let r = epic_audit(&["run", "--env", "prod", "--config", shipped], d.path());
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("/etc/epic-audit/pki"), "{}", r.stderr);
}

#[test]
fn unknown_only_word_exits_3_listing_areas() {
    let d = tmp();
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/epic-audit.toml");
    let r = epic_audit(
        &[
            "run", "--env", "prod", "--config", shipped, "--only", "clustr",
        ],
        d.path(),
    );
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("`clustr`") && r.stderr.contains("transport"),
        "{}",
        r.stderr
    );
}

#[test]
fn checks_lists_the_catalogue_as_table_and_json() {
    let d = tmp();
    let r = epic_audit(&["checks"], d.path());
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("CLU-001") && r.stdout.contains("164.312(c)(1)"),
        "{}",
        r.stdout
    );
    let r = epic_audit(&["checks", "--format", "json"], d.path());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (1..=11)
        .map(|i| format!("ACC-{i:03}"))
        .chain(std::iter::once("BAK-001".to_string()))
        .chain((1..=10).map(|i| format!("CLU-{i:03}")))
        .chain((1..=7).map(|i| format!("DATA-{i:03}")))
        .chain((1..=6).map(|i| format!("ENC-{i:03}")))
        .chain((1..=7).map(|i| format!("MON-{i:03}")))
        .chain(std::iter::once("NET-001".to_string()))
        .chain(std::iter::once("PATCH-001".to_string()))
        .chain(std::iter::once("PERF-001".to_string()))
        .chain((1..=11).map(|i| format!("TLS-{i:03}")))
        .collect();
    assert_eq!(ids, want);
}

#[test]
fn explain_prints_rationale_method_and_fix_and_rejects_unknown_ids() {
    let d = tmp();
    let r = epic_audit(&["explain", "clu-001"], d.path());
    assert_eq!(r.code, 0);
    for part in [
        "Why it matters",
        "How it is probed",
        "How to fix",
        "CLUSTER ADDSLOTSRANGE",
        "CLUSTER NODES",
    ] {
        assert!(r.stdout.contains(part), "{part}: {}", r.stdout);
    }
    let r = epic_audit(&["explain", "XYZ-1"], d.path());
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("CLU-001"), "{}", r.stderr);
}

#[test]
fn a_policy_directory_can_disable_a_check() {
    let d = tmp();
    let pol = d.path().join("checks");
    std::fs::create_dir(&pol).unwrap();
    let text = epic_audit::policy::builtin_file("cluster.toml").replacen(
        "rule = \"cluster.open_slots\"",
        "rule = \"cluster.open_slots\"\nenabled = false",
        1,
    );
    std::fs::write(pol.join("cluster.toml"), text).unwrap();
    let r = epic_audit(&["checks", "--policy", pol.to_str().unwrap()], d.path());
    assert!(r.stdout.contains("(disabled)"), "{}", r.stdout);
    std::fs::write(pol.join("cluster.toml"), "[[check]]\nid = 1\n").unwrap();
    let r = epic_audit(&["checks", "--policy", pol.to_str().unwrap()], d.path());
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("cluster.toml") && r.stderr.contains("line"),
        "{}",
        r.stderr
    );
}

#[test]
fn evaluate_rejects_files_that_are_not_evidence() {
    let d = tmp();
    let f = d.path().join("x.json");
    std::fs::write(&f, "{\"hello\": 1}").unwrap();
    let r = epic_audit(&["evaluate", f.to_str().unwrap()], d.path());
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("not an epic-audit evidence file"),
        "{}",
        r.stderr
    );
}

#[test]
fn evaluate_fixture_evidence_writes_a_report_offline() {
    let d = tmp();
    let ev = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/evidence/lab-good.json"
    );
    // Without a key and without --unsigned nothing is written (exit 3).
    let r = epic_audit(&["evaluate", ev], d.path());
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("no signing key") && r.stderr.contains("--unsigned"),
        "{}",
        r.stderr
    );
    assert!(!d.path().join("reports").exists());
    let r = epic_audit(
        &[
            "evaluate",
            "--accepted-builds",
            common::LAB_ACCEPTED,
            ev,
            "--unsigned",
        ],
        d.path(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("UNSIGNED REPORT"), "{}", r.stdout);
    let dirs: Vec<_> = std::fs::read_dir(d.path().join("reports/local"))
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert_eq!(dirs.len(), 1);
    let report = std::fs::read_to_string(dirs[0].path().join("report.json")).unwrap();
    assert!(
        report
            .lines()
            .nth(1)
            .unwrap()
            .contains("\"signature\": \"UNSIGNED REPORT"),
        "{report}"
    );
    assert!(!dirs[0].path().join("manifest.dsse.json").exists());
}

#[test]
fn help_teaches_exit_codes_and_version_prints() {
    let d = tmp();
    let r = epic_audit(&["run", "--help"], d.path());
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("Exit codes") && r.stdout.contains("--only"),
        "{}",
        r.stdout
    );
    let r = epic_audit(&["--version"], d.path());
    assert!(r.stdout.starts_with("epic-audit "), "{}", r.stdout);
}

/// Stops a lab started through the CLI if the test ends early.
struct LabGuard(std::path::PathBuf);
impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = epic_audit_lab::down(&self.0);
    }
}

#[test]
fn run_on_a_stopped_lab_says_how_to_start_it_and_the_lab_binary_stops_it_by_pid() {
    let d = tmp();
    let lab_dir = d.path().join("lab");
    let _guard = LabGuard(lab_dir.clone());
    let port = epic_audit_lab::pick_free_port(&epic_audit_lab::default_ips());
    let cfg = d.path().join("epic-audit.toml");
    std::fs::write(
        &cfg,
        format!(
            "[environments.l]\nlab = true\nseeds = [\"127.0.1.1:{port}\"]\naudit_user = \"auditor\"\n\
             [environments.l.tls]\n\
             ca = \"${{LAB_DIR}}/pki/ca.crt\"\nclient_cert = \"${{LAB_DIR}}/pki/client.crt\"\n\
             client_key = \"${{LAB_DIR}}/pki/client.key\"\n[environments.l.users.auditor]\n\
             password_file = \"${{LAB_DIR}}/secrets/auditor.pass\"\n"
        ),
    )
    .unwrap();
    let run_cmd = |bin: &std::path::Path, args: &[&str]| {
        let o = std::process::Command::new(bin)
            .args(args)
            .current_dir(d.path())
            .env("EPIC_AUDIT_LAB_DIR", &lab_dir)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let audit = std::path::PathBuf::from(env!("CARGO_BIN_EXE_epic-audit"));
    let lab = common::lab_bin();
    let cmd = |args: &[&str]| run_cmd(&lab, args);
    let run = || {
        run_cmd(
            &audit,
            &[
                "run",
                "--env",
                "l",
                "--config",
                cfg.to_str().unwrap(),
                "--only",
                "cluster",
                "--skip",
                "CLU-008,CLU-009,CLU-010",
                "--unsigned",
            ],
        )
    };
    let (code, out) = cmd(&["status"]);
    assert_eq!(code, 1, "{out}");
    // The audit binary never starts servers: it says how to.
    let (code, out) = run();
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("`epic-audit-lab up --port"), "{out}");
    assert!(!lab_dir.join("lab.json").exists(), "{out}");
    let (code, out) = cmd(&["up", "--port", &port.to_string()]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run();
    assert_eq!(code, 0, "{out}");
    assert!(d.path().join("reports/l").is_dir());
    let state = epic_audit_lab::read_state(&lab_dir).expect("lab.json");
    assert_eq!(state.nodes.len(), 6);
    let (code, out) = cmd(&["status"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("cluster_state:ok").count(), 6, "{out}");
    // Starting it twice is refused.
    let (code, out) = cmd(&["up", "--port", &port.to_string()]);
    assert_ne!(code, 0);
    assert!(out.contains("already running"), "{out}");
    let (code, out) = cmd(&["down"]);
    assert_eq!(code, 0, "{out}");
    for n in &state.nodes {
        assert!(out.contains(&n.pid.to_string()), "{out}");
        let gone = std::fs::read_to_string(format!("/proc/{}/stat", n.pid))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        assert!(gone, "pid {} still runs", n.pid);
    }
    assert!(!lab_dir.exists(), "state removed");
}

#[test]
fn keygen_and_verify_a_signed_evaluation_and_its_tampering() {
    let d = tmp();
    let keys = d.path().join("keys");
    let r = epic_audit(&["keygen", "--out", keys.to_str().unwrap()], d.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = epic_audit(&["keygen", "--out", keys.to_str().unwrap()], d.path());
    assert_eq!(r.code, 3, "refuses to overwrite: {}", r.stderr);
    let ev = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/evidence/lab-good.json"
    );
    let key = keys.join("epic-audit-signing.key");
    let public = keys.join("epic-audit-signing.pub");
    let out = d.path().join("run");
    let r = epic_audit(
        &[
            "evaluate",
            "--accepted-builds",
            common::LAB_ACCEPTED,
            ev,
            "--signing-key",
            key.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        d.path(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("signed: "), "{}", r.stdout);
    let verify = |p: &std::path::Path| {
        epic_audit(
            &[
                "verify",
                p.to_str().unwrap(),
                "--pubkey",
                public.to_str().unwrap(),
            ],
            d.path(),
        )
    };
    let v = verify(&out);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.starts_with("VALID: 7 files"), "{}", v.stdout);
    // One flipped byte in report.json.
    let rp = out.join("report.json");
    let mut bytes = std::fs::read(&rp).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 1;
    std::fs::write(&rp, &bytes).unwrap();
    let v = verify(&out);
    assert_eq!(v.code, 1);
    assert!(v.stdout.contains("report.json: modified"), "{}", v.stdout);
    // Not a run directory: usage error.
    let v = verify(d.path());
    assert_eq!(v.code, 3, "{}", v.stderr);
}

#[test]
fn prom_textfile_has_a_gauge_per_check_and_the_run_time() {
    let d = tmp();
    let prom = d.path().join("textfile/epic_audit.prom");
    let ev = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/evidence/lab-good.json"
    );
    let r = epic_audit(
        &[
            "evaluate",
            ev,
            "--unsigned",
            "--only",
            "cluster",
            "--prom",
            prom.to_str().unwrap(),
        ],
        d.path(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&prom).unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let status: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "epic_audit_check_status")
        .collect();
    assert_eq!(status.len(), 10, "{text}");
    let clu1 = status
        .iter()
        .find(|s| s.labels.get("id") == Some("CLU-001"))
        .unwrap();
    assert_eq!(clu1.labels.get("area"), Some("cluster"));
    assert_eq!(clu1.labels.get("severity"), Some("critical"));
    assert!(matches!(clu1.value, prometheus_parse::Value::Gauge(v) if v == 0.0));
    let ts = scrape
        .samples
        .iter()
        .find(|s| s.metric == "epic_audit_run_timestamp_seconds")
        .unwrap();
    assert!(
        matches!(ts.value, prometheus_parse::Value::Gauge(v) if v == 1_796_126_400.0),
        "{text}"
    );
    // No temp file is left next to it.
    assert_eq!(
        std::fs::read_dir(prom.parent().unwrap()).unwrap().count(),
        1
    );
}

#[test]
fn diff_names_newly_failing_fixed_still_failing_and_changed_observations() {
    use epic_audit::evidence::{Observation, Observed};
    let d = tmp();
    let write_run = |name: &str, aof_off: bool, lru: bool| {
        let mut ev = common::fixture_evidence();
        for e in ev.items.iter_mut() {
            if let Observed::Observation(Observation::DataNode(v)) = &mut e.result {
                if e.subject == "127.0.1.2:6379" {
                    if aof_off {
                        v.config.insert("appendonly".into(), "no".into());
                    }
                    if lru {
                        v.config
                            .insert("maxmemory-policy".into(), "allkeys-lru".into());
                    }
                }
            }
        }
        let f = d.path().join(format!("{name}.json"));
        std::fs::write(&f, serde_json::to_string(&ev).unwrap()).unwrap();
        let out = d.path().join(name);
        let r = epic_audit(
            &[
                "evaluate",
                f.to_str().unwrap(),
                "--unsigned",
                "--only",
                "data",
                "--out",
                out.to_str().unwrap(),
            ],
            d.path(),
        );
        assert!(r.code <= 1, "{}", r.stderr);
        out
    };
    // A: AOF off and LRU; B: AOF fixed, LRU still there.
    let a = write_run("a", true, true);
    let b = write_run("b", false, true);
    // B's own reports carry the comparison with A (the previous run beside it).
    let rb = common::report(&b);
    assert_eq!(
        rb["previous"]["fixed"],
        serde_json::json!(["DATA-001"]),
        "{rb:#}"
    );
    assert_eq!(
        rb["previous"]["still_failing"],
        serde_json::json!(["DATA-002"])
    );
    let md = std::fs::read_to_string(b.join("report.md")).unwrap();
    assert!(
        md.contains("## Since the previous run") && md.contains("- Fixed: DATA-001"),
        "{md}"
    );
    assert!(
        common::report(&a).get("previous").is_none(),
        "the first run has nothing to compare with"
    );
    let r = epic_audit(
        &["diff", a.to_str().unwrap(), b.to_str().unwrap()],
        d.path(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("fixed (1)\n  DATA-001 (now pass)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("still failing (1)\n  DATA-002"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("newly failing (0)"), "{}", r.stdout);
    assert!(
        r.stdout.contains("DATA-001 127.0.1.2:6379: `appendonly no"),
        "{}",
        r.stdout
    );
    // And the other way round: DATA-001 is newly failing.
    let r = epic_audit(
        &["diff", b.to_str().unwrap(), a.to_str().unwrap()],
        d.path(),
    );
    assert!(
        r.stdout
            .contains("newly failing (1)\n  DATA-001 (was pass)"),
        "{}",
        r.stdout
    );
    let r = epic_audit(
        &["diff", a.to_str().unwrap(), d.path().to_str().unwrap()],
        d.path(),
    );
    assert_eq!(r.code, 3);
}

#[test]
fn a_config_error_never_echoes_a_password_written_in_the_config() {
    let d = tmp();
    let secret = "s3cr3t-in-config-91f";
    for users in [
        format!("[environments.x.users.app_user]\npassword = \"{secret}\"\n"),
        format!("[environments.x.users]\napp_user = \"{secret}\"\n"),
        format!("[environments.x.users.app_user]\npassword_env = \"{secret}\n"),
    ] {
        let cfg = d.path().join("epic-audit.toml");
        std::fs::write(
            &cfg,
            format!(
                "[environments.x]\nseeds = [\"127.0.0.1:7000\"]\naudit_user = \"app_user\"\n\
                 [environments.x.tls]\nca = \"ca.crt\"\nclient_cert = \"c.crt\"\nclient_key = \"c.key\"\n{users}"
            ),
        )
        .unwrap();
        let r = epic_audit(
            &["run", "--env", "x", "--config", cfg.to_str().unwrap()],
            d.path(),
        );
        assert_eq!(r.code, 3, "{}", r.stderr);
        assert!(r.stderr.contains("epic-audit.toml"), "{}", r.stderr);
        assert!(r.stderr.contains("line "), "{}", r.stderr);
        assert!(
            !r.stderr.contains(secret) && !r.stdout.contains(secret),
            "the password was echoed:\n{}{}",
            r.stdout,
            r.stderr
        );
    }
}

#[test]
fn a_stale_salt_beside_out_is_refused_before_anything_runs_or_prints() {
    let d = tmp();
    let cfg = d.path().join("epic-audit.toml");
    std::fs::write(
        &cfg,
        "[environments.x]\nseeds = [\"127.0.0.1:1\"]\naudit_user = \"app_user\"\n\
         [environments.x.tls]\nca = \"ca.crt\"\nclient_cert = \"c.crt\"\nclient_key = \"c.key\"\n\
         [environments.x.users.app_user]\npassword_env = \"EPIC_AUDIT_TEST_NEVER_SET_VAR\"\n",
    )
    .unwrap();
    let out = d.path().join("run1");
    std::fs::write(d.path().join("run1.salt"), "00\n").unwrap();
    let r = epic_audit(
        &[
            "run",
            "--env",
            "x",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--unsigned",
        ],
        d.path(),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(r.stdout, "", "nothing is printed as final");
    assert!(
        r.stderr.contains("run1.salt exists") && r.stderr.contains("salt of an earlier run"),
        "{}",
        r.stderr
    );
    assert!(!out.exists(), "no run directory was written");
}

#[test]
fn print_acl_prints_the_read_only_audit_user() {
    let d = tmp();
    let r = epic_audit(&["print-acl"], d.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("user "))
        .collect();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    let rule = lines[0];
    assert!(
        rule.starts_with("user auditor on #PASSWORD_SHA256 resetchannels resetkeys -@all "),
        "{rule}"
    );
    // Keys: read-only, under the policy's session pattern only.
    let keys: Vec<&str> = rule
        .split_whitespace()
        .filter(|t| t.contains('~'))
        .collect();
    assert_eq!(keys, vec!["%R~session:*"], "{rule}");
    // Commands: named one by one, no category grant, nothing that writes.
    for t in rule.split_whitespace().filter(|t| t.starts_with('+')) {
        assert!(!t.starts_with("+@"), "{rule}");
    }
    for forbidden in [
        "+config|set",
        "+acl|setuser",
        "+set",
        "+del",
        "+hset",
        "+flushall",
        "+config ",
        "+acl ",
    ] {
        assert!(!rule.contains(forbidden), "{forbidden} in {rule}");
    }
    let r = epic_audit(&["print-acl", "--user", "compliance_ro"], d.path());
    assert!(
        r.stdout.contains("user compliance_ro on #PASSWORD_SHA256"),
        "{}",
        r.stdout
    );
}

#[test]
fn print_acl_prints_the_exporters_user_by_its_policy_name_or_role() {
    let d = tmp();
    let user_lines = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("user "))
            .map(str::to_string)
            .collect()
    };
    // `exporter` is the user the built-in policy's MON-007 judges.
    let r = epic_audit(&["print-acl", "--user", "exporter"], d.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = user_lines(&r.stdout);
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    let rule = &lines[0];
    assert_eq!(
        rule,
        "user exporter on #PASSWORD_SHA256 resetchannels resetkeys -@all +auth +hello +ping \
         +client|setname +info +config|get +cluster|info +cluster|slots +slowlog|len +slowlog|get \
         +latency|latest"
    );
    assert!(
        !rule.contains('~') && !rule.contains('&'),
        "no key, no channel: {rule}"
    );
    assert!(r.stdout.contains("-redis.user exporter"), "{}", r.stdout);
    // Another name, by role.
    let r = epic_audit(
        &["print-acl", "--role", "exporter", "--user", "metrics"],
        d.path(),
    );
    assert!(user_lines(&r.stdout)[0]
        .starts_with("user metrics on #PASSWORD_SHA256 resetchannels resetkeys -@all +auth"));
    // The audit user stays the default.
    let r = epic_audit(&["print-acl"], d.path());
    assert!(
        user_lines(&r.stdout)[0].starts_with("user auditor on "),
        "{}",
        r.stdout
    );
}
