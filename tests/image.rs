//! The container image (Dockerfile, scripts/build-image.sh): built from the
//! binary under test, it audits the compose lab as the host binary does
//! (the same verdict line), as a non-root user with no shell, with
//! passwords passed as environment variables, writing its reports into the
//! mounted directory owned by the calling user, and labelled with the
//! binary's version and its policy digest.
//!
//! Runs where the compose lab tests run (scripts/test.sh builds the base
//! image; `EPIC_AUDIT_COMPOSE_TESTS=0` skips it where Docker is missing).

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{repo, start_compose_lab, TestLab};

/// An image this test built; removed on drop, also when the test fails.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["image", "rm", "-f", &self.0])
            .output();
    }
}

fn sh(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("command runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Builds the image from the binary under test with the script users run.
fn build_image() -> Image {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_epic-audit"));
    let rel = bin
        .strip_prefix(repo())
        .expect("the test binary is under the checkout (target/debug)")
        .to_str()
        .unwrap()
        .to_string();
    let tag = format!("epic-audit-test:{}", std::process::id());
    let image = Image(tag.clone());
    let t0 = Instant::now();
    let (code, out, err) = sh(Command::new("bash")
        .arg(repo().join("scripts/build-image.sh"))
        .args(["--binary", &rel, "--tag", &tag])
        .current_dir(repo()));
    assert_eq!(code, 0, "scripts/build-image.sh failed:\n{out}\n{err}");
    eprintln!(
        "image: built in {:.1} s: {}",
        t0.elapsed().as_secs_f64(),
        out.trim()
    );
    image
}

fn label(image: &str, name: &str) -> String {
    let (code, out, err) = sh(Command::new("docker").args([
        "image",
        "inspect",
        "-f",
        &format!("{{{{index .Config.Labels \"{name}\"}}}}"),
        image,
    ]));
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

/// A directory holding everything the audit reads, as a user would mount
/// it: the config with paths relative to itself, the TLS files, the
/// signing key and accepted builds copied in, and each password turned
/// into `password_env` (returned as variable and value).
fn work_dir(t: &TestLab, cfg: &Path) -> (PathBuf, Vec<(String, String)>) {
    let work = t.out("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut secrets = Vec::new();
    let mut text = String::new();
    for line in std::fs::read_to_string(cfg).unwrap().lines() {
        let parsed = line
            .split_once(" = \"")
            .filter(|(_, v)| v.starts_with('/') && v.ends_with('"'));
        let Some((key, value)) = parsed else {
            text.push_str(line);
            text.push('\n');
            continue;
        };
        let path = Path::new(value.trim_end_matches('"'));
        if key == "password_file" {
            let var = format!("EPIC_AUDIT_TEST_PASSWORD_{}", secrets.len());
            let value = std::fs::read_to_string(path).unwrap().trim().to_string();
            text.push_str(&format!("password_env = \"{var}\"\n"));
            secrets.push((var, value));
        } else {
            let name = format!("{key}-{}", path.file_name().unwrap().to_str().unwrap());
            std::fs::copy(path, work.join(&name)).unwrap();
            text.push_str(&format!("{key} = \"{name}\"\n"));
        }
    }
    std::fs::write(work.join("epic-audit.toml"), text).unwrap();
    (work, secrets)
}

/// The uid:gid the container runs as: the caller's, or a non-root one the
/// work directory is handed to when the tests run as root (CI).
fn caller(work: &Path) -> (u32, u32) {
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid != 0 {
        return (uid, gid);
    }
    let (code, _, err) =
        sh(Command::new("chown").args(["-R", "4242:4242", work.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    (4242, 4242)
}

fn verdict_line(stdout: &str) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with("verdict: "))
        .unwrap_or_else(|| panic!("no verdict line in:\n{stdout}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_audits_the_compose_lab_as_the_host_binary_does() {
    if !common::compose_enabled("image test") {
        return;
    }
    let image = build_image();
    let tag = image.0.clone();

    // Labels: the binary's version and the digest of its built-in policy.
    let dir = tempfile::tempdir().unwrap();
    let version = common::epic_audit(&["--version"], dir.path()).stdout;
    assert_eq!(
        version.trim(),
        format!(
            "epic-audit {}",
            label(&tag, "org.opencontainers.image.version")
        )
    );
    let digest = label(&tag, "io.epic-audit.policy.sha256");
    assert_eq!(
        digest,
        epic_audit::policy::Policy::builtin().unwrap().digest
    );
    // A non-root user, and nothing but the audit to run: no shell.
    let (_, user, _) =
        sh(Command::new("docker").args(["image", "inspect", "-f", "{{.Config.User}}", &tag]));
    assert_eq!(user.trim(), "10001:10001");
    let (code, _, _) = sh(Command::new("docker").args([
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        &tag,
        "-c",
        "true",
    ]));
    assert_ne!(code, 0, "the image has a shell");

    // The compose lab, audited from the host and from the image.
    let t = start_compose_lab(|s| s.aws = true).await;
    let cfg = t.config_with_aws((2000, 3000, 20000), &t.lab.aws_settings());
    let names = t.lab.spec.names.clone();
    t.add_users(&cfg, &[&names.app, &names.dev]);
    let (work, secrets) = work_dir(&t, &cfg);
    // PERF-001 measures this host's own latency floor, which two runs need
    // not share; every other check must judge the same.
    let args = [
        "run",
        "--env",
        "t",
        "--config",
        "epic-audit.toml",
        "--skip",
        "PERF-001",
        "--out",
    ];
    let mut host = Command::new(env!("CARGO_BIN_EXE_epic-audit"));
    host.args(args)
        .arg("host-out")
        .current_dir(&work)
        .env("NO_COLOR", "1");
    for (k, v) in &secrets {
        host.env(k, v);
    }
    let (host_code, host_out, host_err) = sh(&mut host);
    assert!(
        work.join("host-out/report.json").is_file(),
        "{host_out}\n{host_err}"
    );

    let (uid, gid) = caller(&work);
    let mut docker = Command::new("docker");
    docker.args([
        "run",
        "--rm",
        "--network",
        "host",
        "--user",
        &format!("{uid}:{gid}"),
        "-v",
        &format!("{}:/work", work.display()),
        "-w",
        "/work",
    ]);
    for (k, v) in &secrets {
        // `-e NAME` passes the value from docker's own environment: it
        // never appears on a command line.
        docker.args(["-e", k]).env(k, v);
    }
    docker.arg(&tag).args(args).arg("image-out");
    let t0 = Instant::now();
    let (code, out, err) = sh(&mut docker);
    eprintln!(
        "image: docker run to verdict {:.1} s\n{out}",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(
        verdict_line(&out),
        verdict_line(&host_out),
        "image:\n{out}\n{err}\nhost:\n{host_out}"
    );
    assert_eq!(code, host_code);
    // A full audit: every check but the skipped one judged.
    let rep = common::report(&work.join("image-out"));
    // Judged with the same policy as the host run: the built-in one (whose
    // digest the label names), with the lab's accepted builds folded in.
    let host_rep = common::report(&work.join("host-out"));
    assert_eq!(rep["policy"]["source"], "built-in");
    assert_eq!(rep["policy"]["digest"], host_rep["policy"]["digest"]);
    let ids: Vec<&str> = rep["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(ids.len() > 50 && !ids.contains(&"PERF-001"), "{ids:?}");

    // What the image wrote belongs to the caller, and no password is in
    // it or in what it printed.
    let mut written = 0;
    for e in std::fs::read_dir(work.join("image-out")).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid), "{}", e.path().display());
        if m.is_file() {
            written += 1;
            let bytes = std::fs::read(e.path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for (_, v) in &secrets {
                assert!(
                    !text.contains(v.as_str()),
                    "a password in {}",
                    e.path().display()
                );
            }
        }
    }
    assert!(written >= 4, "report.json, junit.xml, evidence, ...");

    // Without --user the image runs as 10001, who may not write the
    // caller's directory: exit 4, saying how to run it.
    let (code, _, denied) = sh(Command::new("docker").args([
        "run",
        "--rm",
        "-v",
        &format!("{}:/work", work.display()),
        &tag,
        "evaluate",
        "image-out/evidence.json",
        "--unsigned",
        "--accepted-builds",
        "none",
        "--out",
        "denied",
    ]));
    assert_eq!(code, 4, "{denied}");
    assert!(
        denied.contains("cannot write denied:")
            && !denied.contains("partial")
            && denied.contains("uid 10001")
            && denied.contains("docker run --user")
            && !denied.contains("os error"),
        "{denied}"
    );
    for (_, v) in &secrets {
        assert!(!out.contains(v.as_str()) && !err.contains(v.as_str()));
    }
}
