//! Secrets never leave the process: a full audit of a real lab (every area,
//! the AWS ones against the lab's EC2/KMS emulator) with known passwords, then a run with a wrong password; no password and
//! no session key name may appear in stdout, stderr or any file written.

mod common;

use common::*;
use epic_audit::resp::as_text;

fn all_files(dir: &std::path::Path, out: &mut String) {
    for e in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            all_files(&p, out);
        } else if let Ok(t) = std::fs::read_to_string(&p) {
            out.push_str(&t);
        }
    }
}

#[tokio::test]
async fn no_password_or_session_key_in_any_output_of_a_full_audit() {
    let t = start_lab_with(|s| {
        s.aws = true;
        s.monitoring = true;
    })
    .await;
    let cfg = t.config_with_aws((2000, 5000, 20000), &t.lab.aws_settings());
    let dir = t.lab.spec.dir.display().to_string();
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    for u in ["app_user", "dev_user"] {
        text.push_str(&format!(
            "[environments.t.users.{u}]\npassword_file = \"{dir}/secrets/{u}.pass\"\n"
        ));
    }
    std::fs::write(&cfg, &text).unwrap();
    // A short latency load so every area runs.
    let pol = t.tmp.path().join("policy");
    std::fs::create_dir(&pol).unwrap();
    for (name, body) in epic_audit::policy::BUILTIN {
        let body = body
            .replace("duration_ms = 5000", "duration_ms = 500")
            .replace("warmup_ms = 1000", "warmup_ms = 100");
        std::fs::write(pol.join(name), body).unwrap();
    }
    let reports = t.tmp.path().join("reports");
    let r = run_env(
        &t,
        &cfg,
        &[
            "--policy",
            pol.to_str().unwrap(),
            "--out",
            reports.join("full").to_str().unwrap(),
            "--prom",
            reports.join("epic.prom").to_str().unwrap(),
        ],
    );
    assert!(r.code <= 1, "{}\n{}", r.stdout, r.stderr);
    let rep = report(&reports.join("full"));
    assert_eq!(
        rep["checks"].as_array().unwrap().len(),
        epic_audit::policy::Policy::builtin().unwrap().checks.len(),
        "every check ran"
    );
    // Every area ran against real servers (AWS against the emulator):
    // nothing was skipped for lack of configuration.
    for c in rep["checks"].as_array().unwrap() {
        assert_ne!(c["outcome"], "skip", "{}", c["id"]);
    }

    // A wrong password: the error names the user, never the password.
    let wrong = "wrong-password-7d1c5e0b";
    let bad_cfg = t.tmp.path().join("bad.toml");
    std::fs::write(
        &bad_cfg,
        text.replace(
            &format!("{dir}/secrets/auditor.pass"),
            &format!("{}/wrong.pass", t.tmp.path().display()),
        ),
    )
    .unwrap();
    std::fs::write(t.tmp.path().join("wrong.pass"), format!("{wrong}\n")).unwrap();
    let r2 = run_env(
        &t,
        &bad_cfg,
        &[
            "--only",
            "cluster",
            "--out",
            reports.join("wrong").to_str().unwrap(),
        ],
    );
    assert_eq!(
        r2.code, 2,
        "authentication failures are errors: {}",
        r2.stdout
    );
    assert!(
        r2.stdout.contains("authentication as auditor") && r2.stdout.contains("WRONGPASS"),
        "{}",
        r2.stdout
    );

    let mut everything = format!("{}{}{}{}", r.stdout, r.stderr, r2.stdout, r2.stderr);
    all_files(&reports, &mut everything);
    assert!(everything.len() > 100_000, "the outputs were read");
    for u in epic_audit_lab::USERS {
        assert!(
            !everything.contains(t.lab.password(u).expose()),
            "the password of {u} leaked"
        );
    }
    assert!(!everything.contains(wrong), "the wrong password leaked");
    // Session key names (bearer tokens) of the lab.
    let mut keys = Vec::new();
    for m in 0..3 {
        let mut c = t.lab.admin(m).await.unwrap();
        let epic_audit::resp::Value::Array(r) = c
            .cmd_str(&["SCAN", "0", "MATCH", "session:*", "COUNT", "1000"])
            .await
            .unwrap()
        else {
            panic!()
        };
        if let epic_audit::resp::Value::Array(ks) = &r[1] {
            keys.extend(ks.iter().filter_map(as_text));
        }
    }
    assert!(keys.len() >= 10, "{keys:?}");
    for k in keys {
        assert!(
            !everything.contains(k.trim_start_matches("session:")),
            "session key {k} leaked"
        );
    }
}
