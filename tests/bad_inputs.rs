//! Every bad input a new user met (issue #39), as a table: the exit code,
//! that the message names the file, flag or path at fault, and that no
//! output holds a Rust debug dump (`{ source:`, `DispatchFailure`) or a
//! bare `os error`. Nothing here needs a server: the one network case
//! (a KMS key whose endpoint does not answer) dials a loopback port
//! nothing listens on.

mod common;

use std::path::Path;

use common::{epic_audit, fixture_evidence, RunResult};

/// A complete environment named `local` (the fixture evidence's) with
/// `extra` lines inside its table, and its sub-tables after.
fn config(extra: &str, tables: &str) -> String {
    format!(
        r#"[environments.local]
seeds = ["127.0.0.1:1"]
audit_user = "auditor"
{extra}
[environments.local.tls]
ca = "ca.crt"
client_cert = "c.crt"
client_key = "c.key"
[environments.local.users.auditor]
password_env = "EPIC_AUDIT_TEST_NEVER_SET"
{tables}"#
    )
}

/// One row: what is set up in the directory, the arguments, the exit
/// code and the words the output must hold.
struct Case {
    name: &'static str,
    files: Vec<(&'static str, String)>,
    args: Vec<String>,
    code: i32,
    says: Vec<&'static str>,
    never: Vec<&'static str>,
}

fn case(name: &'static str, args: &[&str], code: i32, says: &[&'static str]) -> Case {
    Case {
        name,
        files: Vec::new(),
        args: args.iter().map(|a| a.to_string()).collect(),
        code,
        says: says.to_vec(),
        never: Vec::new(),
    }
}

impl Case {
    fn with(mut self, file: &'static str, text: String) -> Case {
        self.files.push((file, text));
        self
    }
    fn never(mut self, words: &[&'static str]) -> Case {
        self.never.extend_from_slice(words);
        self
    }
}

const DUMPS: [&str; 4] = ["{ source:", "DispatchFailure", "os error", "panicked"];

fn run(c: &Case, dir: &Path) -> RunResult {
    for (f, text) in &c.files {
        let p = dir.join(f);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }
    let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
    epic_audit(&args, dir)
}

#[test]
fn every_bad_input_exits_with_its_code_and_names_what_is_wrong() {
    let ev = serde_json::to_string(&fixture_evidence()).unwrap();
    let broken_syntax = "[environments.local\nseeds = 1\n".to_string();
    let unknown_key = config("signing_keyy = \"k.pem\"", "");
    let no_tls = "[environments.local]\nseeds = [\"127.0.0.1:1\"]\naudit_user = \"auditor\"\n\
                  [environments.local.users.auditor]\npassword_env = \"X\"\n\
                  [environments.local.aws]\nendpoint = \"http://127.0.0.1:1\"\n\
                  credentials = \"emulator\"\ndiscovery = { tag = \"k\", value = \"v\" }\n"
        .to_string();
    let kms_dead = config(
        "",
        "[environments.local.aws]\nregion = \"us-east-1\"\nendpoint = \"http://127.0.0.1:1\"\n\
         credentials = \"emulator\"\ndiscovery = { tag = \"k\", value = \"v\" }\n\
         [environments.local.timeouts]\nconnect_ms = 500\ncommand_ms = 500\nprobe_ms = 2000\n",
    );
    let unreadable_builds = config("accepted_builds = \"no-such-builds.toml\"", "");
    let cases = vec![
        // A gate that judges nothing.
        case(
            "evaluate --only data --skip data",
            &[
                "evaluate",
                "ev.json",
                "--only",
                "data",
                "--skip",
                "data",
                "--unsigned",
            ],
            3,
            &["--only data --skip data leaves no check to judge"],
        )
        .with("ev.json", ev.clone()),
        case(
            "run --only data --skip data",
            &[
                "run",
                "--env",
                "local",
                "--only",
                "data",
                "--skip",
                "data",
                "--unsigned",
            ],
            3,
            &["--only data --skip data leaves no check to judge"],
        )
        .with("epic-audit.toml", config("", "")),
        case(
            "fleet --only data --skip data",
            &[
                "run",
                "--env",
                "local",
                "--env",
                "other",
                "--only",
                "data",
                "--skip",
                "data",
                "--unsigned",
            ],
            3,
            &["leaves no check to judge"],
        )
        .with(
            "epic-audit.toml",
            config("", "")
                + "[environments.other]\nseeds = [\"127.0.0.1:2\"]\naudit_user = \"a\"\n\
             [environments.other.tls]\nca = \"c\"\nclient_cert = \"c\"\nclient_key = \"c\"\n\
             [environments.other.users.a]\npassword_env = \"X\"\n",
        ),
        // No swallowed configuration.
        case(
            "evaluate --config with a syntax error",
            &[
                "evaluate",
                "ev.json",
                "--config",
                "broken.toml",
                "--unsigned",
            ],
            3,
            &["broken.toml", "line 1"],
        )
        .with("ev.json", ev.clone())
        .with("broken.toml", broken_syntax.clone()),
        case(
            "evaluate --config missing",
            &[
                "evaluate",
                "ev.json",
                "--config",
                "missing.toml",
                "--unsigned",
            ],
            3,
            &["missing.toml", "cannot read it"],
        )
        .with("ev.json", ev.clone()),
        case(
            "evaluate with a broken default config",
            &["evaluate", "ev.json", "--unsigned"],
            3,
            &["epic-audit.toml", "line 1"],
        )
        .with("ev.json", ev.clone())
        .with("epic-audit.toml", broken_syntax.clone()),
        case(
            "evaluate --store with a config run refuses",
            &[
                "evaluate",
                "ev.json",
                "--unsigned",
                "--store",
                "s3://bucket/prefix",
            ],
            3,
            &["epic-audit.toml", "tls"],
        )
        .with("ev.json", ev.clone())
        .with("epic-audit.toml", no_tls),
        case(
            "export with an unknown key in the environment",
            &["export", "--env", "local", "--quarter", "2026-Q4"],
            3,
            &["epic-audit.toml", "signing_keyy"],
        )
        .with("epic-audit.toml", unknown_key)
        .never(&["--unsigned"]),
        case(
            "export with no signing key",
            &[
                "export",
                "--env",
                "local",
                "--quarter",
                "2026-Q4",
                "--reports",
                ".",
            ],
            3,
            &["the export must be signed", "--signing-key"],
        )
        .never(&["--unsigned"]),
        case(
            "acknowledge with no signing key",
            &[
                "acknowledge",
                "--env",
                "local",
                "--missing",
                "2",
                "--reason",
                "x",
            ],
            3,
            &["an acknowledgement must be signed", "--signing-key"],
        )
        .never(&["--unsigned"]),
        // Honest re-judging: accepted builds that cannot be read.
        case(
            "evaluate with accepted builds it cannot read",
            &["evaluate", "ev.json", "--unsigned"],
            3,
            &[
                "no-such-builds.toml",
                "--accepted-builds FILE",
                "--accepted-builds none",
            ],
        )
        .with("ev.json", ev.clone())
        .with("epic-audit.toml", unreadable_builds),
        // print-acl.
        case(
            "print-acl a space",
            &["print-acl", "--user", "a b"],
            3,
            &["--user", "whitespace"],
        ),
        case(
            "print-acl empty",
            &["print-acl", "--user", ""],
            3,
            &["--user", "empty"],
        ),
        case(
            "print-acl default",
            &["print-acl", "--user", "default"],
            3,
            &["ACC-004", "disabled"],
        ),
        // Errors that name the thing.
        case(
            "keygen into a file",
            &["keygen", "--out", "afile"],
            3,
            &["afile", "is a file"],
        )
        .with("afile", "x".into()),
        case(
            "keygen over a key",
            &["keygen", "--out", "keys"],
            3,
            &["keys/epic-audit-signing.key already exists"],
        )
        .with("keys/epic-audit-signing.key", "x".into()),
        case(
            "export --reports missing",
            &[
                "export",
                "--env",
                "local",
                "--quarter",
                "2026-Q4",
                "--reports",
                "nowhere",
                "--signing-key",
                "k.pem",
            ],
            3,
            &["--reports nowhere", "no such directory"],
        ),
        case(
            "verify a missing path",
            &["verify", "nowhere", "--pubkey", "k.pub"],
            3,
            &["k.pub"],
        ),
        case(
            "acknowledge --env a path",
            &[
                "acknowledge",
                "--env",
                "../../escaped",
                "--missing",
                "2",
                "--reason",
                "x",
            ],
            3,
            &["--env", "not a plain name"],
        ),
        case(
            "export --env a path",
            &["export", "--env", "a/b", "--quarter", "2026-Q4"],
            3,
            &["--env", "not a plain name"],
        ),
        case(
            "print-iam with an alias",
            &["print-iam", "--kms-key-arn", "alias/evidence"],
            3,
            &["--kms-key-arn", "ARN"],
        ),
        case(
            "a KMS key whose endpoint does not answer",
            &[
                "evaluate",
                "ev.json",
                "--signing-key",
                "awskms:alias/evidence",
            ],
            4,
            &["awskms:alias/evidence", "kms:GetPublicKey failed"],
        )
        .with("ev.json", ev.clone())
        .with("epic-audit.toml", kms_dead),
    ];
    let mut problems = Vec::new();
    for c in &cases {
        let d = tempfile::tempdir().unwrap();
        let r = run(c, d.path());
        let out = format!("{}{}", r.stdout, r.stderr);
        if r.code != c.code {
            problems.push(format!(
                "{}: exit {} (want {}): {out}",
                c.name, r.code, c.code
            ));
        }
        for w in &c.says {
            if !out.contains(w) {
                problems.push(format!("{}: does not say {w:?}: {out}", c.name));
            }
        }
        for w in DUMPS.iter().chain(&c.never) {
            if out.contains(w) {
                problems.push(format!("{}: says {w:?}: {out}", c.name));
            }
        }
        // One line of error, never a dump.
        if c.code >= 3 && r.stderr.lines().filter(|l| !l.trim().is_empty()).count() > 3 {
            problems.push(format!(
                "{}: more than a short message: {}",
                c.name, r.stderr
            ));
        }
        assert!(
            !d.path().join("reports").exists() || c.code < 3,
            "{}: wrote reports",
            c.name
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn print_iam_names_every_operation_the_code_calls() {
    // Every AWS SDK operation called in the sources is in the table (so
    // in the printed policy) and in docs/configuration.md.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let table: Vec<&str> = epic_audit::iam::OPERATIONS
        .iter()
        .map(|o| o.sdk_method)
        .collect();
    let docs = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
    // Accessors on SDK outputs and builders that are not operations.
    let not_calls = ["get_ref", "create_time", "delete_pending"];
    let op = regex_lite_ops();
    let mut missing = Vec::new();
    for file in [
        "src/probes/aws.rs",
        "src/store/mod.rs",
        "src/sign/mod.rs",
        "src/aws.rs",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for name in op(&text) {
            if not_calls.contains(&name.as_str()) {
                continue;
            }
            if !table.contains(&name.as_str()) {
                missing.push(format!("{file}: `{name}` is not in src/iam.rs OPERATIONS"));
            }
        }
    }
    for o in epic_audit::iam::OPERATIONS {
        for a in o.actions {
            if !docs.contains(a) {
                missing.push(format!(
                    "docs/configuration.md does not list {a} ({})",
                    o.sdk_method
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));

    // The printed policy holds every action, scoped as stated.
    let r = epic_audit(
        &[
            "print-iam",
            "--store",
            "s3://hipaa-evidence/epic-audit",
            "--kms-key-arn",
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ],
        root,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let p: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let mut printed: Vec<String> = Vec::new();
    for st in p["Statement"].as_array().unwrap() {
        for a in st["Action"].as_array().unwrap() {
            printed.push(a.as_str().unwrap().to_string());
        }
        assert_ne!(st["Action"], serde_json::json!("*"));
    }
    for o in epic_audit::iam::OPERATIONS {
        for a in o.actions {
            assert!(
                printed.iter().any(|p| p == a),
                "{a} is not printed: {}",
                r.stdout
            );
        }
    }
    let objects = &p["Statement"][1];
    assert_eq!(
        objects["Resource"],
        "arn:aws:s3:::hipaa-evidence/epic-audit/*"
    );
    assert!(!printed
        .iter()
        .any(|a| a.contains("Delete") || a.contains("Bypass")));
}

/// The method names called with no arguments (`.name()`) that look like
/// AWS operations (`describe_`, `get_`, `list_`, `put_`, `create_`,
/// `delete_`, `head_`, `copy_`, or `sign`).
fn regex_lite_ops() -> impl Fn(&str) -> Vec<String> {
    |text: &str| {
        let mut out = Vec::new();
        let prefixes = [
            "describe_",
            "get_",
            "list_",
            "put_",
            "create_",
            "delete_",
            "head_",
            "copy_",
        ];
        for (i, _) in text.match_indices("()") {
            let before = &text[..i];
            let start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(0, |p| p + 1);
            if start == 0 || &before[start - 1..start] != "." {
                continue;
            }
            let name = &before[start..];
            if name == "sign" || prefixes.iter().any(|p| name.starts_with(p)) {
                out.push(name.to_string());
            }
        }
        out
    }
}
