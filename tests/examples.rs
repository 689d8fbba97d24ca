//! The CI jobs (examples/ci) and the Kubernetes CronJob (examples/k8s) that
//! users copy as they are: parsed as YAML the way GitHub, GitLab and kubectl
//! read it, and checked against the binary itself: the flags they pass
//! exist, the files they publish are the files a run writes, the image is
//! the one scripts/build-image.sh tags, the passwords they pass are the
//! ones the shipped config's `prod` environment names, every file that
//! environment reads is mounted, and no AWS credential is stored.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

fn read(rel: &str) -> String {
    std::fs::read_to_string(common::repo().join(rel)).unwrap()
}

/// The YAML documents of `text`, as PyYAML's safe loader reads them.
fn yaml(text: &str) -> Vec<Value> {
    let mut child = Command::new(common::python())
        .arg(common::repo().join("tests/py/yaml_to_json.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not YAML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The long flags `epic-audit <sub> --help` lists (with the global ones).
fn flags_of(sub: &str) -> BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    let help = common::epic_audit(&[sub, "--help"], dir.path()).stdout;
    help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_string)
        .collect()
}

/// The files a run writes, by name (a re-evaluation writes the same set).
fn run_files() -> BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let r = common::epic_audit(
        &[
            "evaluate",
            common::repo()
                .join("fixtures/evidence/lab-good.json")
                .to_str()
                .unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--unsigned",
        ],
        dir.path(),
    );
    assert!(out.join("report.json").is_file(), "{}", r.stderr);
    std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().to_string())
        .collect()
}

/// The image scripts/build-image.sh tags, by repository and tag:
/// `epic-audit:<version>`.
fn image_tag() -> String {
    let dir = tempfile::tempdir().unwrap();
    let v = common::epic_audit(&["--version"], dir.path()).stdout;
    format!("epic-audit:{}", v.trim().trim_start_matches("epic-audit "))
}

/// What the shipped config's `prod` environment reads: the variables of
/// its `password_env`s, and the files it names (TLS and `password_file`).
fn prod_needs() -> (BTreeSet<String>, BTreeSet<String>) {
    let cfg: toml::Table = read("epic-audit.toml").parse().unwrap();
    let prod = cfg["environments"]["prod"].as_table().unwrap();
    let mut vars = BTreeSet::new();
    let mut files = BTreeSet::new();
    for u in prod["users"].as_table().unwrap().values() {
        if let Some(v) = u.get("password_env") {
            vars.insert(v.as_str().unwrap().to_string());
        }
        if let Some(f) = u.get("password_file") {
            files.insert(f.as_str().unwrap().to_string());
        }
    }
    for (k, v) in prod["tls"].as_table().unwrap() {
        if ["ca", "client_cert", "client_key"].contains(&k.as_str()) {
            files.insert(v.as_str().unwrap().to_string());
        }
    }
    assert!(!vars.is_empty() && files.len() >= 4, "{vars:?} {files:?}");
    (vars, files)
}

/// A `docker run` command line of a CI job: (docker's options, the image
/// expression, epic-audit's arguments). Shell line continuations and YAML
/// folding are undone; quotes are dropped.
fn docker_run(script: &str) -> (Vec<String>, String, Vec<String>) {
    let words = shell_words(&script.replace("\\\n", " "));
    let start = words
        .windows(2)
        .position(|w| w[0] == "docker" && w[1] == "run")
        .unwrap_or_else(|| panic!("no docker run in {script}"));
    let mut opts = Vec::new();
    let mut i = start + 2;
    // Docker's options, each with its value but the flags that take none.
    while words[i].starts_with('-') {
        opts.push(words[i].clone());
        if words[i] != "--rm" {
            opts.push(words[i + 1].clone());
            i += 1;
        }
        i += 1;
    }
    (opts, words[i].clone(), words[i + 1..].to_vec())
}

/// Splits a command line into words as a shell would for our purpose:
/// quotes removed, `$( ... )` kept whole.
fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut w = String::new();
    let (mut depth, mut quote) = (0usize, None::<char>);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' if quote.is_none() && depth == 0 => quote = Some(c),
            q if Some(q) == quote => quote = None,
            '$' if chars.peek() == Some(&'(') => {
                depth += 1;
                w.push(c);
                w.push(chars.next().unwrap());
            }
            ')' if depth > 0 => {
                depth -= 1;
                w.push(c);
            }
            c if c.is_whitespace() && quote.is_none() && depth == 0 => {
                if !w.is_empty() {
                    words.push(std::mem::take(&mut w));
                }
            }
            c => w.push(c),
        }
    }
    if !w.is_empty() {
        words.push(w);
    }
    words
}

/// What `docker run` options give the container: variables passed by name
/// (`-e NAME`) and the container side of each mount.
fn passed(opts: &[String]) -> (BTreeSet<String>, Vec<String>) {
    let mut vars = BTreeSet::new();
    let mut mounts = Vec::new();
    let mut i = 0;
    while i < opts.len() {
        if opts[i] == "--rm" {
            i += 1;
            continue;
        }
        match opts[i].as_str() {
            "-e" => {
                vars.insert(opts[i + 1].split('=').next().unwrap().to_string());
            }
            "-v" => mounts.push(opts[i + 1].split(':').nth(1).unwrap().to_string()),
            _ => {}
        }
        i += 2;
    }
    (vars, mounts)
}

/// epic-audit's arguments: `run`, only flags `run` has, the environment,
/// a run directory, and a KMS signing key. Returns the run directory.
fn assert_audit_args(args: &[String], env_expr: &str) -> String {
    let flags = flags_of("run");
    assert_eq!(args[0], "run", "{args:?}");
    for a in args.iter().filter(|a| a.starts_with("--")) {
        assert!(flags.contains(a.as_str()), "`run` has no {a} ({flags:?})");
    }
    let value = |f: &str| -> String {
        let i = args
            .iter()
            .position(|a| a == f)
            .unwrap_or_else(|| panic!("{f} missing: {args:?}"));
        args[i + 1].clone()
    };
    assert_eq!(value("--env"), env_expr);
    assert!(value("--signing-key").starts_with("awskms:alias/"));
    value("--out")
}

fn assert_mounted(files: &BTreeSet<String>, mounts: &[String]) {
    for f in files {
        assert!(
            mounts.iter().any(|m| Path::new(f).starts_with(m)),
            "{f} (named by epic-audit.toml's prod) is not mounted: {mounts:?}"
        );
    }
}

/// A CI job's `docker run` of the image, checked against the binary and
/// the shipped config's `prod`: nothing masks its exit code, the image and
/// the environment come from the job's variables, `run` gets only flags it
/// has, every password variable `prod` reads is passed and every file it
/// names is mounted. Returns the run directory and the variables passed.
fn assert_runs_the_image(script: &str) -> (String, BTreeSet<String>) {
    assert!(!script.contains("|| true") && !script.contains("; true"));
    let (opts, image, args) = docker_run(script);
    assert_eq!(image, "$EPIC_AUDIT_IMAGE");
    let out = assert_audit_args(&args, "$EPIC_AUDIT_ENV");
    let (vars, mounts) = passed(&opts);
    let (need_vars, need_files) = prod_needs();
    assert!(
        need_vars.is_subset(&vars),
        "{need_vars:?} not all in {vars:?}"
    );
    assert_mounted(&need_files, &mounts);
    (out, vars)
}

/// `registry/.../epic-audit:<version>`: the image build-image.sh tags.
fn assert_image(image: &str) {
    let tag = image_tag();
    assert!(
        image.ends_with(&format!("/{tag}")),
        "{image} is not <registry>/{tag}"
    );
}

#[test]
fn the_github_workflow_runs_the_image_and_publishes_what_a_run_writes() {
    let text = read("examples/ci/github-actions.yml");
    let wf = &yaml(&text)[0];
    // GitHub's own schema essentials: triggers, a job with steps.
    assert!(
        wf.get("on").is_some() || wf.get("true").is_some(),
        "no trigger"
    );
    let perms = &wf["permissions"];
    assert_eq!(perms["id-token"], "write", "OIDC needs id-token: write");
    assert_eq!(perms["security-events"], "write", "upload-sarif needs it");
    let job = &wf["jobs"]["audit"];
    let steps = job["steps"].as_array().unwrap();
    let env = &job["env"];
    assert_image(env["EPIC_AUDIT_IMAGE"].as_str().unwrap());
    assert_eq!(env["EPIC_AUDIT_ENV"], "prod");

    let audit = steps
        .iter()
        .find(|s| s["run"].as_str().is_some_and(|r| r.contains("docker run")))
        .expect("a step runs the image");
    // The step fails the job on epic-audit's exit code: nothing masks it.
    assert!(audit.get("continue-on-error").is_none());
    let (out, vars) = assert_runs_the_image(audit["run"].as_str().unwrap());
    assert!(
        vars.contains("AWS_SESSION_TOKEN"),
        "the OIDC session reaches the container"
    );

    let uses = |prefix: &str| -> &Value {
        steps
            .iter()
            .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(prefix)))
            .unwrap_or_else(|| panic!("no step uses {prefix}"))
    };
    let files = run_files();
    let junit = uses("mikepenz/action-junit-report@")["with"]["report_paths"]
        .as_str()
        .unwrap();
    let sarif = uses("github/codeql-action/upload-sarif@")["with"]["sarif_file"]
        .as_str()
        .unwrap();
    for (path, what) in [(junit, "junit.xml"), (sarif, "report.sarif")] {
        assert_eq!(path, format!("{out}/{what}"));
        assert!(files.contains(what), "a run writes no {what}: {files:?}");
    }
    let kept = uses("actions/upload-artifact@")["with"]["path"]
        .as_str()
        .unwrap();
    assert_eq!(kept.trim_end_matches('/'), out);
    // Published even when the audit failed (that is when they matter).
    for p in [
        "mikepenz/",
        "github/codeql-action/upload-sarif",
        "actions/upload-artifact",
    ] {
        assert!(uses(p)["if"].as_str().unwrap().contains("!cancelled()"));
    }
    // AWS through OIDC: the role action, and no stored secret at all.
    let role = uses("aws-actions/configure-aws-credentials@");
    assert!(role["with"]["role-to-assume"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:iam::"));
    assert!(!text.contains("secrets."), "a stored secret is referenced");
}

#[test]
fn the_gitlab_job_runs_the_image_and_reports_junit() {
    let text = read("examples/ci/gitlab-ci.yml");
    let ci = &yaml(&text)[0];
    let job = &ci["epic-audit"];
    let vars = &job["variables"];
    assert_image(vars["EPIC_AUDIT_IMAGE"].as_str().unwrap());
    assert_eq!(vars["EPIC_AUDIT_ENV"], "prod");
    assert!(vars["AWS_ROLE_ARN"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:iam::"));
    assert_eq!(job["id_tokens"]["AWS_ID_TOKEN"]["aud"], "sts.amazonaws.com");
    assert!(
        job.get("allow_failure").is_none(),
        "the gate must fail the pipeline"
    );

    let script: Vec<&str> = job["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    // `set -e`: a failed step (the audit included) ends the job with its code.
    assert!(script[0].contains("set -e"), "{script:?}");
    let run = script
        .iter()
        .find(|s| s.contains("docker run"))
        .expect("the script runs the image");
    let (out, passed_vars) = assert_runs_the_image(run);
    for v in ["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"] {
        assert!(
            passed_vars.contains(v),
            "{v} is not passed: {passed_vars:?}"
        );
    }

    let files = run_files();
    let artifacts = &job["artifacts"];
    assert_eq!(artifacts["when"], "always");
    let junit = artifacts["reports"]["junit"].as_str().unwrap();
    assert_eq!(junit, format!("{out}/junit.xml"));
    assert!(files.contains("junit.xml") && files.contains("report.sarif"));
    let paths: Vec<&str> = artifacts["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().trim_end_matches('/'))
        .collect();
    assert_eq!(paths, vec![out.as_str()]);
    for stored in ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "CI_JOB_TOKEN"] {
        assert!(!text.contains(stored), "{stored} in the job");
    }
}

/// The rendered manifests for `envs`.
fn rendered(envs: &[&str]) -> Vec<Value> {
    let out = Command::new("bash")
        .arg(common::repo().join("examples/k8s/render.sh"))
        .args(envs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    yaml(&String::from_utf8(out.stdout).unwrap())
}

#[test]
fn the_cronjob_renders_one_audit_per_environment_with_the_binarys_flags() {
    let docs = rendered(&["prod", "Staging_2"]);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["ServiceAccount", "CronJob", "ServiceAccount", "CronJob"]
    );
    let jobs: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "CronJob").collect();
    assert_eq!(jobs[0]["metadata"]["name"], "epic-audit-prod");
    assert_eq!(jobs[1]["metadata"]["name"], "epic-audit-staging-2");
    let run_flags = flags_of("run");
    let (need_vars, need_files) = prod_needs();
    for (job, env, name) in [
        (jobs[0], "prod", "prod"),
        (jobs[1], "Staging_2", "staging-2"),
    ] {
        assert_eq!(job["apiVersion"], "batch/v1");
        let spec = &job["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Forbid");
        let jspec = &spec["jobTemplate"]["spec"];
        assert_eq!(
            jspec["backoffLimit"], 0,
            "a failed audit is a verdict, not retried"
        );
        let pod = &jspec["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], format!("epic-audit-{name}"));
        assert_eq!(pod["restartPolicy"], "Never");
        // The image's own user, never root.
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], 10001);
        let c = &pod["containers"][0];
        assert_image(c["image"].as_str().unwrap());
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);

        // The arguments: global --config, then `run` with its own flags.
        let args: Vec<String> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        assert_eq!(args[..3], ["--config", "/config/epic-audit.toml", "run"]);
        for a in args[3..].iter().filter(|a| a.starts_with("--")) {
            assert!(run_flags.contains(a.as_str()), "`run` has no {a}");
        }
        let value = |f: &str| args[args.iter().position(|a| a == f).unwrap() + 1].clone();
        assert_eq!(
            value("--env"),
            env,
            "the environment as epic-audit.toml names it"
        );
        assert!(
            value("--store").starts_with("s3://"),
            "runs are kept in the evidence store"
        );
        let out = value("--out");

        // Passwords from the environment's Secret, files from mounts, a
        // writable run directory on a read-only root.
        assert_eq!(
            c["envFrom"][0]["secretRef"]["name"],
            format!("epic-audit-{name}-env")
        );
        let mounts: Vec<String> = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["mountPath"].as_str().unwrap().to_string())
            .collect();
        assert!(mounts.iter().any(|m| Path::new(&out).starts_with(m)));
        assert!(mounts.contains(&"/config".to_string()));
        if env == "prod" {
            assert_mounted(&need_files, &mounts);
            // Each variable the config reads is a key of that Secret (the
            // template says which; envFrom passes them all).
            let template = read("examples/k8s/epic-audit-cronjob.yaml");
            for v in &need_vars {
                assert!(template.contains(v.as_str()), "{v} is not documented");
            }
        }
        let secrets: Vec<String> = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["secret"]["secretName"].as_str().map(str::to_string))
            .collect();
        assert_eq!(
            secrets,
            [
                format!("epic-audit-{name}-pki"),
                format!("epic-audit-{name}-files")
            ]
        );
        // No AWS key anywhere: the role comes from the ServiceAccount.
        assert!(c["env"].as_array().unwrap().iter().all(|e| !e["name"]
            .as_str()
            .unwrap()
            .starts_with("AWS_ACCESS")
            && !e["name"].as_str().unwrap().starts_with("AWS_SECRET")));
    }
    let sa = &docs[0];
    assert!(sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:iam::"));
    // A name that is not an environment name is refused.
    let bad = Command::new("bash")
        .arg(common::repo().join("examples/k8s/render.sh"))
        .arg("prod; rm -rf /")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
