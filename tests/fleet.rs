//! A fleet: `run --env a --env b --env dead` audits two real labs and one
//! unreachable environment concurrently, writes each run as `run --env`
//! would, prints one line per environment and the overall verdict, and
//! writes fleet.json and a combined JUnit file. (CLU-008 to CLU-010 need
//! the AWS emulator, which these labs run without.)

mod common;

use std::path::Path;

use common::{epic_audit, start_lab};
use serde_json::Value;

/// `cfg`'s text with its environment `t` renamed `name`.
fn renamed(cfg: &Path, name: &str) -> String {
    std::fs::read_to_string(cfg)
        .unwrap()
        .replace("[environments.t]", &format!("[environments.{name}]"))
        .replace("[environments.t.", &format!("[environments.{name}."))
}

#[tokio::test(flavor = "multi_thread")]
async fn two_labs_and_an_unreachable_environment_in_one_fleet() {
    let (a, b) = tokio::join!(start_lab(), start_lab());
    // Lab b has a defect: AOF off on its first master (DATA-001 fails).
    let mut c = b.lab.admin(0).await.unwrap();
    c.cmd_str(&["CONFIG", "SET", "appendonly", "no"])
        .await
        .unwrap();
    let cfg_a = a.config(&[], (2000, 5000, 20000));
    let cfg_b = b.config(&[], (2000, 5000, 20000));
    // `dead` is lab a's material pointed at a port where nothing listens.
    let free = epic_audit_lab::pick_free_port(&[std::net::Ipv4Addr::LOCALHOST]);
    let dead = renamed(&cfg_a, "dead")
        .replace(
            &a.lab.spec.addr(0).to_string(),
            &format!("127.0.0.1:{free}"),
        )
        .replace("connect_ms = 2000", "connect_ms = 1000")
        .replace("probe_ms = 20000", "probe_ms = 5000");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("epic-audit.toml");
    std::fs::write(
        &cfg,
        format!("{}{}{dead}", renamed(&cfg_a, "a"), renamed(&cfg_b, "b")),
    )
    .unwrap();

    let t0 = std::time::Instant::now();
    let r = epic_audit(
        &[
            "run",
            "--env",
            "a",
            "--env",
            "b",
            "--env",
            "dead",
            "--config",
            cfg.to_str().unwrap(),
            "--only",
            "cluster,data",
            "--skip",
            "CLU-008,CLU-009,CLU-010",
            "--max-concurrent",
            "3",
        ],
        dir.path(),
    );
    let took = t0.elapsed();
    let out = format!("{}{}", r.stdout, r.stderr);
    // A failing environment decides the fleet: exit 1.
    assert_eq!(r.code, 1, "{out}");
    let line = |env: &str| {
        r.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{env} ")))
            .unwrap_or_else(|| panic!("no line for {env}: {out}"))
            .to_string()
    };
    assert!(
        line("a").contains("PASS") && line("a").contains("exit code 0"),
        "{out}"
    );
    assert!(
        line("b").contains("FAIL") && line("b").contains("exit code 1"),
        "{out}"
    );
    assert!(line("dead").contains("exit code 2"), "{out}");
    assert!(
        r.stdout.contains("fleet verdict: FAIL (3 environments: 1 pass, 1 fail, 1 error or incomplete, 0 not audited) · exit code 1"),
        "{out}"
    );
    // A dead environment costs its deadlines, not more (generous guard).
    assert!(took.as_secs() < 120, "{took:?}");

    // fleet.json and the per-environment runs it names.
    let fleet_dir = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("fleet: "))
        .and_then(|l| l.split("/ (").next())
        .map(|d| dir.path().join(d))
        .unwrap_or_else(|| panic!("{out}"));
    let fleet: Value =
        serde_json::from_slice(&std::fs::read(fleet_dir.join("fleet.json")).unwrap()).unwrap();
    assert_eq!(fleet["exit_code"], 1);
    let envs = fleet["environments"].as_array().unwrap();
    let verdicts: Vec<(&str, &str)> = envs
        .iter()
        .map(|e| {
            (
                e["environment"].as_str().unwrap(),
                e["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(verdicts[0], ("a", "pass"));
    assert_eq!(verdicts[1], ("b", "fail"));
    assert_eq!(verdicts[2].0, "dead");
    for e in envs {
        let run = dir.path().join(e["run_dir"].as_str().unwrap());
        let rep = common::report(&run);
        assert_eq!(rep["environment"], e["environment"]);
        assert_eq!(rep["exit_code"], e["exit_code"]);
        let v = epic_audit(
            &[
                "verify",
                run.to_str().unwrap(),
                "--pubkey",
                &format!(
                    "{}/signing/epic-audit-signing.pub",
                    a.lab.spec.dir.display()
                ),
            ],
            dir.path(),
        );
        // a and dead are signed with lab a's key, b with lab b's.
        assert_eq!(
            v.code == 0,
            e["environment"] != "b",
            "{}{}",
            v.stdout,
            v.stderr
        );
    }
    let failing = common::failing_subjects(
        &common::report(&dir.path().join(envs[1]["run_dir"].as_str().unwrap())),
        "DATA-001",
    );
    assert_eq!(failing.len(), 1, "{failing:?}");

    // The combined JUnit: one suite per environment and area, counts that
    // junitparser agrees with, and unique class + name.
    let junit = fleet_dir.join("junit.xml");
    let xml = std::fs::read_to_string(&junit).unwrap();
    for env in ["a", "b", "dead"] {
        for area in ["cluster", "data"] {
            assert!(
                xml.contains(&format!("name=\"epic-audit {env} {area}\"")),
                "{env} {area}: {xml}"
            );
        }
    }
    let (code, text) = common::junit_check(&junit);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("epic-audit "))
            .count(),
        6,
        "{text}"
    );
}

#[test]
fn fleet_options_that_name_one_run_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let cfg = format!("{}/epic-audit.toml", env!("CARGO_MANIFEST_DIR"));
    let r = epic_audit(
        &[
            "run", "--env", "local", "--env", "prod", "--config", &cfg, "--out", "x",
        ],
        d.path(),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("--out names one run's directory"),
        "{}",
        r.stderr
    );
    let r = epic_audit(
        &["run", "--env", "local", "--env", "nope", "--config", &cfg],
        d.path(),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("nope"), "{}", r.stderr);
    assert!(
        !d.path().join("reports").exists(),
        "nothing is written before every name is known"
    );
}
