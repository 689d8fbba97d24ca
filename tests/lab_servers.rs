//! The whole catalogue on another server build: Debian 13's Redis 8 (from
//! the root `bash scripts/server-builds.sh` bootstraps into .servers/trixie,
//! run through its own loader), as a real process lab with its exporters
//! and AWS emulator. Every check but PERF-001 passes (PERF-001 is judged,
//! never `error`: its figures depend on the shared machine, as on the
//! standard lab), and the report names the server and its own version once
//! for the six nodes, as the binary itself reports it. Valkey 8, from the
//! same root, runs the catalogue as a compose lab (tests/compose_lab.rs):
//! one Valkey lab keeps CI's time.

mod common;

use common::*;
use epic_audit_lab::ServerBuild;

async fn whole_catalogue_on(binary: &str, name: &str) {
    let build = ServerBuild::trixie(binary).unwrap_or_else(|e| panic!("{e}"));
    let version = build.version().unwrap();
    let t = start_lab_with(|s| {
        s.server = build.clone();
        s.aws = true;
        s.monitoring = true;
    })
    .await;
    let cfg = t.config_with_aws((2000, 3000, 20000), &t.lab.aws_settings());
    t.add_users(&cfg, &["app_user", "dev_user"]);
    let out = t.out("all");
    let r = run_env(&t, &cfg, &["--out", out.to_str().unwrap()]);
    let rep = report(&out);
    let not_passed: Vec<String> = rep["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] != "pass" && c["id"] != "PERF-001" && c["id"] != "PATCH-001")
        .map(|c| {
            let id = c["id"].as_str().unwrap();
            format!("{id} {}: {:?}", c["outcome"], subjects(&rep, id))
        })
        .collect();
    assert!(
        not_passed.is_empty(),
        "{name}:\n{}\n{}",
        not_passed.join("\n"),
        r.stdout
    );
    assert_ne!(check(&rep, "PERF-001")["outcome"], "error", "{}", r.stdout);
    common::assert_lab_build_accepted(&rep);
    assert_eq!(
        rep["checks"].as_array().unwrap().len(),
        epic_audit::policy::Policy::builtin().unwrap().checks.len(),
        "every check of the policy was judged"
    );
    let servers = rep["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(servers[0]["server"], format!("{name} {version}"));
    assert_eq!(servers[0]["software"], name);
    assert_eq!(servers[0]["nodes"].as_array().unwrap().len(), 6);
    assert!(
        r.stdout
            .contains(&format!("servers: 6 nodes: {name} {version}\n")),
        "{}",
        r.stdout
    );
    // Per node in the evidence, with its build fields.
    let ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("evidence.json")).unwrap()).unwrap();
    let views: Vec<&serde_json::Value> = ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["probe"] == "cluster")
        .map(|i| &i["result"]["observation"]["server"])
        .collect();
    assert_eq!(views.len(), 6);
    for v in views {
        assert_eq!(v["version"], version.as_str(), "{v}");
        assert!(v["build"]["os"].is_string(), "{v}");
    }
    // Redis 8 loads its built-in vectorset module on every node: the
    // built-in policy lists it with its reason (DATA-007 passed above) ...
    for (_, o, m) in subjects(&rep, "DATA-007") {
        assert!(o == "pass" && m.contains("modules: vectorset ver 1"), "{m}");
    }
    // ... and a policy that does not list it fails DATA-007 on every node,
    // naming the module (the same evidence, judged again).
    let policy = t.policy_copy("policy-no-modules", |text| {
        match text.find("allowed = [\n  { name = \"vectorset\"") {
            Some(i) => {
                let end = i + text[i..].find("\n]").unwrap() + 2;
                format!("{}allowed = []{}", &text[..i], &text[end..])
            }
            None => text,
        }
    });
    let again = t.out("no-modules");
    let r = epic_audit(
        &[
            "--policy",
            policy.to_str().unwrap(),
            "evaluate",
            out.join("evidence.json").to_str().unwrap(),
            "--only",
            "DATA-007",
            "--unsigned",
            "--out",
            again.to_str().unwrap(),
        ],
        t.tmp.path(),
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let rep = report(&again);
    let f = subjects(&rep, "DATA-007");
    assert_eq!(f.len(), 6, "{f:?}");
    for (_, o, m) in f {
        assert!(
            o == "fail"
                && m.contains(
                    "module `vectorset` (ver 1) is loaded but not in the policy's allowlist"
                ),
            "{m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_8_passes_the_whole_catalogue_and_is_named_with_its_version() {
    whole_catalogue_on("redis-server", "redis").await;
}
