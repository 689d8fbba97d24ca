//! Data-protection and monitoring checks against a real lab through the
//! real binary: the good lab passes; each defect fails exactly its check;
//! no session key name ever reaches an output.

mod common;

use common::*;
use epic_audit::resp::as_text;
use epic_audit_lab::MASTER_SLOTS;

// MON-003 to MON-007 have their own lab test (lab_monitoring.rs).
const AREAS: &str = "data,MON-001,MON-002";

/// The lab master (0-2) serving `key`'s slot.
fn master_of(key: &str) -> usize {
    let slot = epic_audit::evidence::key_slot(key.as_bytes());
    MASTER_SLOTS
        .iter()
        .position(|(a, b)| (*a..=*b).contains(&slot))
        .unwrap()
}

/// Writes session hashes as app_user, each to its master; `ttl` None = no EXPIRE.
async fn write_sessions(t: &TestLab, keys: &[String], ttl: Option<u64>) {
    for k in keys {
        let m = master_of(k);
        let mut c = t.lab.conn(m, "app_user").await.unwrap();
        c.cmd_str(&[
            "HSET",
            k,
            "user_id",
            "u1",
            "portal",
            "mychart",
            "last_activity",
            "0",
        ])
        .await
        .unwrap();
        if let Some(ttl) = ttl {
            c.cmd_str(&["EXPIRE", k, &ttl.to_string()]).await.unwrap();
        }
    }
}

async fn delete(t: &TestLab, keys: &[String]) {
    for k in keys {
        let m = master_of(k);
        t.lab
            .admin(m)
            .await
            .unwrap()
            .cmd_str(&["DEL", k])
            .await
            .unwrap();
    }
}

async fn all_session_keys(t: &TestLab) -> Vec<String> {
    t.keys("session:*").await
}

async fn wait_replication_up(t: &TestLab, node: usize) {
    for _ in 0..200 {
        let mut c = t.lab.admin(node).await.unwrap();
        let info = as_text(&c.cmd_str(&["INFO", "replication"]).await.unwrap()).unwrap();
        if info.contains("master_link_status:up") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("replication of node {} never came up", node + 1);
}

async fn myid(t: &TestLab, node: usize) -> String {
    as_text(
        &t.lab
            .admin(node)
            .await
            .unwrap()
            .cmd_str(&["CLUSTER", "MYID"])
            .await
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn data_and_monitoring_on_a_real_lab_good_and_each_defect() {
    let t = start_lab().await;
    t.config(&[], (2000, 3000, 20000));

    let (code, rep, bad) = audit_area(&t, AREAS, "good");
    assert_eq!(bad, vec![], "{rep:#}");
    assert_eq!(code, 0);
    // The salt for the keyed hashes is next to the run, private, not inside it.
    let salt = t.tmp.path().join("good.salt");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&salt).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!t.out("good").join("good.salt").exists());

    // Session keys named otherwise than the policy's pattern (`sess:*`
    // matches nothing here): DATA-005 is not a pass on zero keys, and says
    // what to set.
    let policy = t.policy_copy("policy-sess", |text| {
        text.replace("pattern = \"session:*\"", "pattern = \"sess:*\"")
    });
    let out = t.out("sess-pattern");
    let cfg = t.tmp.path().join("epic-audit.toml");
    let r = run_env(
        &t,
        &cfg,
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--only",
            "DATA-005",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let rep = report(&out);
    assert_eq!(check(&rep, "DATA-005")["outcome"], "warn", "{rep:#}");
    assert_eq!(r.code, 0, "a warning, stated: {}", r.stdout);
    for s in subjects(&rep, "DATA-005") {
        assert!(
            s.2.contains("no key matches sess:* on any master")
                && s.2.contains("set this check's pattern"),
            "{s:?}"
        );
    }

    // The audit user may not run CONFIG GET: the configuration checks
    // INFO cannot answer are errors naming the rule to add; the eviction
    // policy is judged from INFO memory, and says so.
    t.on_nodes(
        &[0, 1, 2, 3, 4, 5],
        &["ACL", "SETUSER", "auditor", "-config|get"],
    )
    .await;
    let (code, rep, _) = audit_area(&t, AREAS, "no-config-get");
    assert_eq!(check(&rep, "DATA-002")["outcome"], "pass");
    for s in subjects(&rep, "DATA-002") {
        assert!(s.2.contains("from INFO memory maxmemory_policy"), "{s:?}");
    }
    for id in ["DATA-001", "DATA-003", "DATA-006"] {
        assert_eq!(check(&rep, id)["outcome"], "error", "{id}: {rep:#}");
        for s in subjects(&rep, id) {
            assert!(
                s.2.contains("add +config|get to the audit user's ACL"),
                "{id}: {s:?}"
            );
        }
    }
    assert_eq!(code, 2);
    t.on_nodes(&[0, 1, 2, 3, 4, 5], &["ACL", "LOAD"]).await;

    // appendonly no on one master: only DATA-001.
    t.on_nodes(&[0], &["CONFIG", "SET", "appendonly", "no"])
        .await;
    let (_, rep, bad) = audit_area(&t, AREAS, "aof");
    assert_eq!(bad, fails(&["DATA-001"]), "{rep:#}");
    let f = failing_subjects(&rep, "DATA-001");
    assert_eq!(f.len(), 1);
    assert!(
        f[0].0 == t.lab.spec.addr(0).to_string() && f[0].1.contains("AOF is off"),
        "{f:?}"
    );
    t.on_nodes(&[0], &["CONFIG", "SET", "appendonly", "yes"])
        .await;

    // maxmemory-policy allkeys-lru: only DATA-002.
    t.on_nodes(&[1], &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"])
        .await;
    let (_, rep, bad) = audit_area(&t, AREAS, "eviction");
    assert_eq!(bad, fails(&["DATA-002"]), "{rep:#}");
    t.on_nodes(&[1], &["CONFIG", "SET", "maxmemory-policy", "noeviction"])
        .await;

    // protected-mode off on one node: only DATA-003.
    t.on_nodes(&[2], &["CONFIG", "SET", "protected-mode", "no"])
        .await;
    let (_, rep, bad) = audit_area(&t, AREAS, "protected-mode");
    assert_eq!(bad, fails(&["DATA-003"]), "{rep:#}");
    assert!(failing_subjects(&rep, "DATA-003")[0]
        .1
        .contains("protected-mode is no"));
    t.on_nodes(&[2], &["CONFIG", "SET", "protected-mode", "yes"])
        .await;

    // Idle connections never closed on one node: only DATA-006.
    t.on_nodes(&[3], &["CONFIG", "SET", "timeout", "0"]).await;
    let (_, rep, bad) = audit_area(&t, AREAS, "timeout-0");
    assert_eq!(bad, fails(&["DATA-006"]), "{rep:#}");
    let f = failing_subjects(&rep, "DATA-006");
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].0 == t.lab.spec.addr(3).to_string()
            && f[0]
                .1
                .contains("timeout 0: idle client connections are never closed"),
        "{f:?}"
    );
    t.on_nodes(&[3], &["CONFIG", "SET", "timeout", "300"]).await;

    // A short ACL LOG and a quiet server log on one node: only MON-002.
    t.on_nodes(&[4], &["CONFIG", "SET", "acllog-max-len", "16"])
        .await;
    t.on_nodes(&[4], &["CONFIG", "SET", "loglevel", "warning"])
        .await;
    let (_, rep, bad) = audit_area(&t, AREAS, "audit-trail");
    assert_eq!(bad, fails(&["MON-002"]), "{rep:#}");
    let f = failing_subjects(&rep, "MON-002");
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].1.contains("acllog-max-len 16") && f[0].1.contains("loglevel warning drops"),
        "{f:?}"
    );
    t.on_nodes(&[4], &["CONFIG", "SET", "acllog-max-len", "128"])
        .await;
    t.on_nodes(&[4], &["CONFIG", "SET", "loglevel", "notice"])
        .await;

    // 250 sessions of which 3 never expire: only DATA-005, naming 3 keys by hash.
    let more: Vec<String> = (0..227)
        .map(|i| format!("session:test-{i:04}-{}", "a".repeat(8)))
        .collect();
    let forever: Vec<String> = (0..3)
        .map(|i| format!("session:forever-{i}-c0ffee"))
        .collect();
    write_sessions(&t, &more, Some(1800)).await;
    write_sessions(&t, &forever, None).await;
    let total: usize = all_session_keys(&t).await.len();
    assert_eq!(total, 250, "20 lab sessions + 230");
    let (_, rep, bad) = audit_area(&t, AREAS, "no-ttl");
    assert_eq!(bad, fails(&["DATA-005"]), "{rep:#}");
    // Observed reads "<n> keys matching ... examined (...); <k> without TTL, ...".
    let f = failing_subjects(&rep, "DATA-005");
    let n: usize = f
        .iter()
        .map(|(_, m)| {
            m.split(" without TTL")
                .next()
                .unwrap()
                .rsplit(' ')
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(n, 3, "{f:?}");
    assert!(
        f.iter()
            .all(|(_, m)| m.contains("never expire (keyed hashes: ")),
        "{f:?}"
    );
    delete(&t, &forever).await;

    // One session with a one-day TTL: only DATA-005.
    let long = vec!["session:one-day-7e57".to_string()];
    write_sessions(&t, &long, Some(86400)).await;
    let (_, rep, bad) = audit_area(&t, AREAS, "long-ttl");
    assert_eq!(bad, fails(&["DATA-005"]), "{rep:#}");
    assert!(
        failing_subjects(&rep, "DATA-005")[0]
            .1
            .contains("(86400 s)")
            || failing_subjects(&rep, "DATA-005")[0]
                .1
                .contains("(86399 s)")
    );
    // No session key name reached any output of any run so far.
    let mut keys = all_session_keys(&t).await;
    keys.extend(forever.clone());
    let mut outputs = String::new();
    for run in [
        "good",
        "aof",
        "eviction",
        "protected-mode",
        "no-ttl",
        "long-ttl",
    ] {
        for f in std::fs::read_dir(t.out(run))
            .unwrap()
            .filter_map(Result::ok)
        {
            outputs.push_str(&std::fs::read_to_string(f.path()).unwrap());
        }
    }
    for k in &keys {
        let id = k.trim_start_matches("session:");
        assert!(
            !outputs.contains(id),
            "session key {k} appears in an output"
        );
    }
    delete(&t, &long).await;
    delete(&t, &more).await;

    // Master 1 without its replica (node 4 moved under master 2): DATA-004 warns.
    let m2 = myid(&t, 1).await;
    let m1 = myid(&t, 0).await;
    t.on_nodes(&[3], &["CLUSTER", "REPLICATE", &m2]).await;
    wait_replication_up(&t, 3).await;
    let (code, rep, bad) = audit_area(&t, AREAS, "no-replica");
    assert_eq!(
        bad,
        vec![("DATA-004".to_string(), "warn".to_string())],
        "{rep:#}"
    );
    assert_eq!(code, 0, "a warning does not fail the gate");
    let f = failing_subjects(&rep, "DATA-004");
    assert_eq!(f.len(), 1);
    assert!(
        f[0].0 == t.lab.spec.addr(0).to_string() && f[0].1.contains("0 replica(s) online"),
        "{f:?}"
    );
    t.on_nodes(&[3], &["CLUSTER", "REPLICATE", &m1]).await;
    wait_replication_up(&t, 3).await;

    // The exporter of node 5 stopped: only MON-001, for node 5.
    t.lab.kill_exporter(4);
    let (_, rep, bad) = audit_area(&t, AREAS, "exporter");
    assert_eq!(bad, fails(&["MON-001"]), "{rep:#}");
    let f = failing_subjects(&rep, "MON-001");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].0, t.lab.spec.addr(4).to_string());
    assert!(f[0].1.contains("cannot connect"), "{f:?}");
}
