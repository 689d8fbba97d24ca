//! The cluster checks against real redis-server labs (TLS, ACLs, cluster
//! mode), through the real binary: the good lab passes, and each variant
//! fails exactly where it should.

mod common;

use common::*;

/// The AWS-backed checks of the cluster area, left out where the test
/// environment has no `[aws]` table.
const NO_AWS: &str = "CLU-008,CLU-009,CLU-010";

#[tokio::test]
async fn good_lab_passes_every_cluster_check_and_writes_all_files() {
    let t = start_lab().await;
    let cfg = t.config(&[], (2000, 3000, 10000));
    // The environment has no [aws] table: the placement checks of the
    // area were not audited, so the run is INCOMPLETE (exit 2), says so on
    // its first line, and names how to leave them out.
    let partial = t.out("partial");
    let r = run_env(
        &t,
        &cfg,
        &["--only", "cluster", "--out", partial.to_str().unwrap()],
    );
    assert_eq!(r.code, 2, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.lines().nth(1).unwrap_or_default().starts_with(
            "INCOMPLETE: 3 selected check(s) were not audited (CLU-008, CLU-009, CLU-010)"
        ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("verdict: INCOMPLETE"), "{}", r.stdout);
    assert_eq!(report(&partial)["verdict"], "incomplete");
    // Leaving them out explicitly gives a clean verdict.
    let out = t.out("run");
    let r = run_env(
        &t,
        &cfg,
        &[
            "--only",
            "cluster",
            "--skip",
            NO_AWS,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let rep = report(&out);
    assert_eq!(rep["verdict"], "pass");
    for id in [
        "CLU-001", "CLU-002", "CLU-003", "CLU-004", "CLU-005", "CLU-006", "CLU-007",
    ] {
        assert_eq!(
            check(&rep, id)["outcome"],
            "pass",
            "{id}: {:?}",
            subjects(&rep, id)
        );
    }
    // All six nodes were discovered from one seed.
    assert_eq!(subjects(&rep, "CLU-001").len(), 6);
    assert_eq!(subjects(&rep, "CLU-005").len(), 6);
    // The server named as what it is, with its own version, once for the
    // six nodes: what `redis-server --version` of the lab's binary says.
    let version = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout)
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v=").map(str::to_string))
        .unwrap();
    assert_eq!(
        rep["servers"].as_array().unwrap().len(),
        1,
        "{}",
        rep["servers"]
    );
    assert_eq!(rep["servers"][0]["server"], format!("redis {version}"));
    assert_eq!(rep["servers"][0]["software"], "redis");
    assert_eq!(rep["servers"][0]["nodes"].as_array().unwrap().len(), 6);
    assert!(
        r.stdout
            .contains(&format!("servers: 6 nodes: redis {version}\n")),
        "{}",
        r.stdout
    );
    for f in ["evidence.json", "report.json", "junit.xml"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert!(
        r.stdout.contains(&format!("report: {}", out.display())),
        "{}",
        r.stdout
    );

    // No password of the lab appears in any output or in what was printed.
    let mut everything = r.stdout.clone() + &r.stderr;
    for f in std::fs::read_dir(&out).unwrap().filter_map(Result::ok) {
        everything.push_str(&std::fs::read_to_string(f.path()).unwrap());
    }
    for user in epic_audit_lab::USERS {
        let pw = t.lab.password(user).expose().to_string();
        assert!(!everything.contains(&pw), "password of {user} leaked");
    }

    // A second run into the same directory is refused (exit 3), and the
    // first run's files are untouched.
    let before = std::fs::read(out.join("report.json")).unwrap();
    let again = run_env(
        &t,
        &cfg,
        &[
            "--only",
            "cluster",
            "--skip",
            NO_AWS,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(again.code, 3, "{}", again.stderr);
    assert!(
        again.stderr.contains("refusing to overwrite"),
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::read(out.join("report.json")).unwrap(), before);

    // The run is signed with the lab's key, and verifies.
    let signing_key = t.lab.spec.dir.join("signing/epic-audit-signing.key");
    let public = t.lab.spec.dir.join("signing/epic-audit-signing.pub");
    let v = epic_audit(
        &[
            "verify",
            out.to_str().unwrap(),
            "--pubkey",
            public.to_str().unwrap(),
        ],
        t.tmp.path(),
    );
    assert_eq!(v.code, 0, "{}", v.stdout);
    assert!(r.stdout.contains("signed: "), "{}", r.stdout);

    // The saved evidence re-judged offline gives the same verdicts.
    let re = t.out("re");
    let e = epic_audit(
        &[
            "evaluate",
            out.join("evidence.json").to_str().unwrap(),
            "--only",
            "cluster",
            "--skip",
            NO_AWS,
            "--signing-key",
            signing_key.to_str().unwrap(),
            "--out",
            re.to_str().unwrap(),
        ],
        t.tmp.path(),
    );
    assert_eq!(e.code, 0, "{}", e.stderr);
    let rep2 = report(&re);
    assert_eq!(rep2["checks"], rep["checks"]);
}

#[tokio::test]
async fn slot_range_deleted_on_every_node_fails_coverage_naming_the_range() {
    let t = start_lab().await;
    for i in 0..6 {
        let mut c = t.lab.admin(i).await.unwrap();
        c.cmd_str(&["CLUSTER", "DELSLOTSRANGE", "100", "199"])
            .await
            .unwrap();
    }
    let cfg = t.config(&[], (2000, 3000, 10000));
    let out = t.out("run");
    let r = run_env(
        &t,
        &cfg,
        &["--only", "cluster", "--out", out.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let rep = report(&out);
    let s = subjects(&rep, "CLU-001");
    assert_eq!(s.len(), 6);
    for (subj, outcome, msg) in &s {
        assert_eq!(outcome, "fail", "{subj}");
        assert!(msg.contains("unassigned: 100-199"), "{msg}");
    }
    assert!(r.stdout.contains("FAIL   CLU-001"), "{}", r.stdout);
    assert!(r.stdout.contains("100-199"), "{}", r.stdout);
    // Nodes still agree with each other; nothing is migrating.
    assert_eq!(check(&rep, "CLU-002")["outcome"], "pass");
    assert_eq!(check(&rep, "CLU-003")["outcome"], "pass");
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("<failure") && junit.contains("100-199"));
}

#[tokio::test]
async fn a_migrating_slot_fails_open_slots_only_and_a_moved_slot_fails_topology_only() {
    let t = start_lab().await;
    let mut n2 = t.lab.admin(1).await.unwrap();
    let epic_audit::resp::Value::BulkString(target) =
        n2.cmd_str(&["CLUSTER", "MYID"]).await.unwrap()
    else {
        panic!()
    };
    let target = String::from_utf8(target).unwrap();
    let mut n1 = t.lab.admin(0).await.unwrap();
    n1.cmd_str(&["CLUSTER", "SETSLOT", "42", "MIGRATING", &target])
        .await
        .unwrap();
    let cfg = t.config(&[], (2000, 3000, 10000));
    let out = t.out("run");
    let r = run_env(
        &t,
        &cfg,
        &["--only", "cluster", "--out", out.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    let rep = report(&out);
    let fails: Vec<_> = subjects(&rep, "CLU-003")
        .into_iter()
        .filter(|s| s.1 == "fail")
        .collect();
    assert_eq!(fails.len(), 1, "{fails:?}");
    assert_eq!(fails[0].0, t.lab.spec.addr(0).to_string());
    assert!(
        fails[0].2.contains("slot 42 migrating to"),
        "{}",
        fails[0].2
    );
    for id in [
        "CLU-001", "CLU-002", "CLU-004", "CLU-005", "CLU-006", "CLU-007",
    ] {
        assert_eq!(
            check(&rep, id)["outcome"],
            "pass",
            "{id}: {:?}",
            subjects(&rep, id)
        );
    }

    // Topology drift: slot 5461 (empty) moved from master 2 to master 1 on
    // every node. Coverage, agreement, open slots and state stay good; only
    // the documented topology (CLU-006) fails.
    n1.cmd_str(&["CLUSTER", "SETSLOT", "42", "STABLE"])
        .await
        .unwrap();
    let keys = n2
        .cmd_str(&["CLUSTER", "COUNTKEYSINSLOT", "5461"])
        .await
        .unwrap();
    assert!(matches!(keys, epic_audit::resp::Value::Int(0)), "{keys:?}");
    let epic_audit::resp::Value::BulkString(id1) = n1.cmd_str(&["CLUSTER", "MYID"]).await.unwrap()
    else {
        panic!()
    };
    let id1 = String::from_utf8(id1).unwrap();
    // SETSLOT is for masters (destination first); a new config epoch on
    // the new owner carries the change to the replicas by gossip.
    for i in [0, 1, 2] {
        let mut c = t.lab.admin(i).await.unwrap();
        c.cmd_str(&["CLUSTER", "SETSLOT", "5461", "NODE", &id1])
            .await
            .unwrap();
    }
    n1.cmd_str(&["CLUSTER", "BUMPEPOCH"]).await.unwrap();
    // Every node's view converges (bounded wait, not a timing assertion:
    // gossip takes longer on a loaded machine).
    for _ in 0..600 {
        let mut agreed = true;
        for i in 0..6 {
            let mut c = t.lab.admin(i).await.unwrap();
            let nodes = c.cmd_str(&["CLUSTER", "NODES"]).await.unwrap();
            let text = epic_audit::resp::as_text(&nodes).unwrap_or_default();
            agreed &= text
                .lines()
                .any(|l| l.starts_with(&id1) && l.contains(" 0-5461"));
        }
        if agreed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (code, rep, not_passing) = audit_area(&t, "cluster", "moved");
    assert_eq!(code, 1);
    // The placement checks are not audited here (no [aws] table:
    // incomplete); nothing else may be anything but pass.
    let not_good: Vec<(String, String)> = not_passing
        .into_iter()
        .filter(|(_, o)| o != "incomplete")
        .collect();
    assert_eq!(not_good, common::fails(&["CLU-006"]), "{rep:#}");
    let f = failing_subjects(&rep, "CLU-006");
    assert!(
        f.iter()
            .any(|(s, m)| s == "slots 0-5460" && m.contains("also serves 5461"))
            && f.iter()
                .any(|(s, m)| s == "slots 5461-10922" && m.contains("serves 5462-10922")),
        "the moved range is named: {f:?}"
    );
}

#[tokio::test]
async fn a_stopped_master_and_a_silent_node_are_named_and_the_run_still_finishes() {
    let t = start_lab().await;
    // A "node" that accepts TCP but never says a word: the kernel completes
    // the handshake from the backlog; nothing ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    t.lab.kill_node(1);
    let dead = t.lab.spec.addr(1).to_string();
    let cfg = t.config(std::slice::from_ref(&silent_addr), (500, 1000, 3000));
    let out = t.out("run");
    let run = tokio::task::spawn_blocking(move || {
        let args = [
            "run",
            "--env",
            "t",
            "--config",
            cfg.to_str().unwrap(),
            "--only",
            "cluster",
            "--out",
            out.to_str().unwrap(),
        ];
        (epic_audit(&args, std::path::Path::new("/")), out)
    });
    // Liveness guard only (not a performance assertion): without deadlines
    // this run would never return.
    let (r, out) = tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .expect("the audit hung on a dead or silent node")
        .unwrap();
    assert!(
        r.code == 1 || r.code == 2,
        "exit {}: {}\n{}",
        r.code,
        r.stdout,
        r.stderr
    );
    let rep = report(&out);
    for id in ["CLU-001", "CLU-002", "CLU-003", "CLU-004"] {
        let s = subjects(&rep, id);
        let d: Vec<_> = s.iter().filter(|x| x.0 == dead).collect();
        assert_eq!(d.len(), 1, "{id}: {s:?}");
        assert_eq!(d[0].1, "error", "{id}");
        assert!(d[0].2.contains(&dead), "{id}: {}", d[0].2);
        let q: Vec<_> = s.iter().filter(|x| x.0 == silent_addr).collect();
        assert_eq!(q.len(), 1, "{id}: {s:?}");
        assert_eq!(q[0].1, "error");
        assert!(q[0].2.contains("no answer within 500 ms"), "{}", q[0].2);
    }
    let online = subjects(&rep, "CLU-005");
    let d: Vec<_> = online.iter().filter(|x| x.0.starts_with(&dead)).collect();
    assert_eq!(d.len(), 1, "{online:?}");
    assert!(d[0].1 == "fail" || d[0].1 == "error", "{d:?}");
    // The other five nodes were still audited.
    let passes = subjects(&rep, "CLU-003")
        .iter()
        .filter(|x| x.1 == "pass")
        .count();
    assert_eq!(passes, 5);
    drop(silent);
}

#[tokio::test]
async fn right_after_the_cluster_forms_a_replica_in_sync_is_online_whatever_gossip_says() {
    // `up` returns once cluster_state is ok and every replica's own master
    // link is up, without waiting for the peers' CLUSTER SHARDS to stop
    // showing the replicas `loading` (their replication offset travels by
    // gossip): the state a cluster is in right after it forms.
    let t = start_lab_with(|s| s.wait_peer_health = false).await;
    let cfg = t.config(&[], (2000, 3000, 10000));
    let out = t.out("fresh");
    let r = run_env(
        &t,
        &cfg,
        &["--only", "CLU-005", "--out", out.to_str().unwrap()],
    );
    let rep = report(&out);
    let s = subjects(&rep, "CLU-005");
    assert_eq!(s.len(), 6, "{s:?}");
    // The replicas' own INFO says they are in sync, so none is a warning;
    // where a peer still showed `loading`, the finding says it is gossip.
    for (subject, outcome, text) in &s {
        assert_eq!(outcome, "pass", "{subject}: {text}");
        if text.contains("still shows health loading") {
            assert!(text.contains("gossip"), "{text}");
        }
    }
    assert_eq!(r.code, 0, "{}", r.stdout);
    let stale = s
        .iter()
        .filter(|x| x.2.contains("still shows health loading"))
        .count();
    eprintln!("replicas that peers still showed loading: {stale} of 3");
}
