//! A cluster we did not build: other user names, another session key
//! namespace, other ports. Given a policy that describes it, the whole audit
//! (every area, AWS included) reaches a clean verdict, and nothing the
//! probes send or record is shaped by the standard lab's names: the DRYRUN
//! sweep's sample keys, the TTL scan and the latency probe's keys all come
//! from this policy's patterns.

mod common;

use std::path::Path;

use common::*;
use epic_audit_lab::LabNames;

/// What names the standard lab: none of it may appear in this lab's
/// policy, evidence or report.
const STANDARD: [&str; 5] = [
    "admin_user",
    "app_user",
    "dev_user",
    "\"auditor\"",
    "session:",
];

fn names() -> LabNames {
    LabNames {
        admin: "ops_root".into(),
        app: "svc_app".into(),
        dev: "analyst".into(),
        auditor: "audit_ro".into(),
        exporter: "metrics_ro".into(),
        namespace: "sess:".into(),
    }
}

/// The built-in policy as this cluster's owners would write it: their
/// user names and session namespace. PERF-001's objective is relaxed to
/// 200 ms and its window shortened: this test proves where the latency
/// probe writes and that it runs, not how fast a shared 2-core machine is.
fn policy(dir: &Path, n: &LabNames) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in epic_audit::policy::BUILTIN {
        let mut text = text
            .replace("admin_user", &n.admin)
            .replace("app_user", &n.app)
            .replace("dev_user", &n.dev)
            .replace("\"auditor\"", &format!("\"{}\"", n.auditor))
            .replace("\"exporter\"", &format!("\"{}\"", n.exporter))
            .replace("SETUSER auditor", &format!("SETUSER {}", n.auditor))
            .replace("session:", &n.namespace);
        if *name == "performance.toml" {
            text = text
                .replace("threshold_us = 1000", "threshold_us = 200000")
                .replace("duration_ms = 5000", "duration_ms = 1000")
                .replace("warmup_ms = 1000", "warmup_ms = 200");
        }
        for standard in STANDARD {
            assert!(!text.contains(standard), "{name} still says {standard}");
        }
        // (`"exporter"` is also evidence's name for an exporter scrape.)
        assert!(
            !text.contains("\"exporter\""),
            "{name} still names the exporter user"
        );
        std::fs::write(dir.join(name), text).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_with_other_names_namespace_and_ports_passes_with_a_matching_policy() {
    let n = names();
    let t = start_lab_with(|s| {
        s.names = n.clone();
        s.aws = true;
        s.monitoring = true;
    })
    .await;
    assert_ne!(
        t.lab.spec.port, 6379,
        "the test lab runs on a port of its own"
    );
    let seeded = t.keys("sess:*").await;
    assert_eq!(seeded.len(), 20, "the lab wrote its sessions under sess:");
    assert!(t.keys("session:*").await.is_empty());

    let cfg = t.config_with_aws((2000, 3000, 20000), &t.lab.aws_settings());
    t.add_users(&cfg, &[&n.app, &n.dev]);
    let pol = t.out("policy");
    policy(&pol, &n);
    let out = t.out("run");
    let r = run_env(
        &t,
        &cfg,
        &[
            "--policy",
            pol.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let rep = report(&out);
    let not_passed: Vec<String> = rep["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] != "pass" && c["id"] != "PATCH-001")
        .map(|c| {
            let id = c["id"].as_str().unwrap();
            format!("{id} {}: {:?}", c["outcome"], subjects(&rep, id))
        })
        .collect();
    common::assert_lab_build_accepted(&rep);
    // The p99.9 of a shared machine may warn; nothing else may be short of
    // pass (PATCH-001 is the lab's accepted Debian build).
    assert!(
        not_passed
            .iter()
            .all(|l| l.starts_with("PERF-001 \"warn\"")),
        "{}\n{}",
        not_passed.join("\n"),
        r.stdout
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("verdict: PASS"), "{}", r.stdout);
    assert_eq!(
        rep["checks"].as_array().unwrap().len(),
        epic_audit::policy::Policy::builtin().unwrap().checks.len(),
        "every check of the policy was judged"
    );

    // Where the probes wrote and what they recorded.
    let ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("evidence.json")).unwrap()).unwrap();
    let items = ev["items"].as_array().unwrap();
    let latency: Vec<&serde_json::Value> =
        items.iter().filter(|i| i["probe"] == "latency").collect();
    assert_eq!(latency.len(), 3, "one latency observation per master");
    for i in &latency {
        let v = &i["result"]["observation"];
        assert_eq!(v["settings"]["key_pattern"], "sess:*", "{v:#}");
        assert_eq!(v["user"], "svc_app");
        assert!(
            i["method"].as_str().unwrap().contains("\"sess:*\""),
            "{}",
            i["method"]
        );
    }
    let acl = items
        .iter()
        .find(|i| i["probe"] == "acl")
        .map(|i| &i["result"]["observation"])
        .unwrap();
    let app_keys = acl["dryrun_keys"]["svc_app"].as_array().unwrap();
    assert!(
        app_keys
            .iter()
            .any(|k| k.as_str().unwrap().starts_with("sess:")),
        "{app_keys:?}"
    );
    assert!(
        t.keys("sess:epic-audit-probe:*").await.is_empty(),
        "probe keys left"
    );
    assert_eq!(
        t.keys("sess:*").await.len(),
        20,
        "the audit changed the data"
    );

    // Nothing in what the run wrote names the standard lab.
    for f in ["evidence.json", "report.json", "report.md"] {
        let text = std::fs::read_to_string(out.join(f)).unwrap();
        for standard in STANDARD {
            if let Some(i) = text.find(standard) {
                let around: String = text[i.saturating_sub(120)..]
                    .chars()
                    .take(240 + standard.len())
                    .collect();
                panic!("{f} contains {standard}: …{around}…");
            }
        }
    }
}
