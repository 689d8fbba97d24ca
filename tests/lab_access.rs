//! The access checks against a real lab through the real binary. One lab,
//! defects applied one at a time (and reverted with ACL LOAD from each
//! node's aclfile): each makes exactly its check fail, plus ACC-008 where
//! a documented case covers the same permission. The audit never changes
//! the keyspace.

mod common;

use std::collections::BTreeMap;

use common::*;
use sha2::{Digest, Sha256};

async fn on_nodes(t: &TestLab, nodes: &[usize], words: &[&str]) {
    for &i in nodes {
        let mut c = t.lab.admin(i).await.unwrap();
        c.cmd_str(words)
            .await
            .unwrap_or_else(|e| panic!("{words:?} on node {i}: {e}"));
    }
}

const ALL: [usize; 6] = [0, 1, 2, 3, 4, 5];

/// DBSIZE and a SHA-256 over every key and its DUMP, per master.
/// Per node of the run `name`, in address order: (node, the node whose
/// DRYRUN sweep it records, when not its own). A node that swept itself
/// made over 1000 DRYRUN calls; one that shares another's made none.
fn sweeps(t: &TestLab, name: &str) -> Vec<(String, Option<String>)> {
    let ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.out(name).join("evidence.json")).unwrap())
            .unwrap();
    let mut out: Vec<(String, Option<String>)> = ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["probe"] == "acl")
        .map(|i| {
            let o = &i["result"]["observation"];
            let on = o["dryrun_swept_on"].as_str().map(String::from);
            let calls = o["dryrun_calls"].as_u64().unwrap();
            assert_eq!(
                on.is_none(),
                calls > 1000,
                "{}: {calls} calls, swept on {on:?}",
                i["subject"]
            );
            assert!(
                o["dryrun"]["dev_user"]
                    .as_object()
                    .is_some_and(|m| m.len() > 200),
                "{}",
                i["subject"]
            );
            (i["subject"].as_str().unwrap().to_string(), on)
        })
        .collect();
    out.sort();
    out
}

async fn keyspace(t: &TestLab) -> BTreeMap<usize, (i64, String)> {
    let mut out = BTreeMap::new();
    for m in 0..3 {
        let mut c = t.lab.admin(m).await.unwrap();
        let epic_audit::resp::Value::Int(size) = c.cmd_str(&["DBSIZE"]).await.unwrap() else {
            panic!("DBSIZE")
        };
        let mut keys = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let epic_audit::resp::Value::Array(r) = c
                .cmd_str(&["SCAN", &cursor, "COUNT", "1000"])
                .await
                .unwrap()
            else {
                panic!("SCAN")
            };
            cursor = epic_audit::resp::as_text(&r[0]).unwrap();
            if let epic_audit::resp::Value::Array(ks) = &r[1] {
                keys.extend(ks.iter().filter_map(epic_audit::resp::as_text));
            }
            if cursor == "0" {
                break;
            }
        }
        keys.sort();
        let dumps = c
            .pipeline(
                &keys
                    .iter()
                    .map(|k| vec![b"DUMP".to_vec(), k.as_bytes().to_vec()])
                    .collect::<Vec<_>>(),
            )
            .await
            .unwrap();
        let mut h = Sha256::new();
        for (k, d) in keys.iter().zip(&dumps) {
            h.update(k.as_bytes());
            if let epic_audit::resp::Value::BulkString(b) = d {
                h.update(b);
            }
        }
        out.insert(m, (size, hex::encode(h.finalize())));
    }
    out
}

fn message_of(rep: &serde_json::Value, id: &str) -> String {
    subjects(rep, id)
        .into_iter()
        .filter(|s| s.1 != "pass")
        .map(|s| format!("{}: {}", s.0, s.2))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn acl_matrix_on_a_real_lab_good_and_each_defect() {
    let t = start_lab().await;
    // The config names every lab user, so ACC-009 logs in as each of them.
    let cfg = t.config(&[], (2000, 5000, 20000));
    let dir = t.lab.spec.dir.display().to_string();
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    for u in ["app_user", "dev_user"] {
        text.push_str(&format!(
            "[environments.t.users.{u}]\npassword_file = \"{dir}/secrets/{u}.pass\"\n"
        ));
    }
    std::fs::write(&cfg, text).unwrap();

    // Good lab: every access check passes, and the keyspace is untouched.
    let before = keyspace(&t).await;
    let (code, rep, bad) = audit_area(&t, "access", "good");
    assert_eq!(bad, vec![], "{rep:#}");
    assert_eq!(code, 0);
    assert_eq!(
        keyspace(&t).await,
        before,
        "a full access audit changed the keyspace"
    );
    assert!(
        before.values().map(|(n, _)| n).sum::<i64>() >= 20,
        "the lab has its session keys"
    );
    // All six nodes hold the same ACL and COMMAND table: one of them
    // swept every command for each policy user, and the other five record
    // that its sweep is theirs.
    let nodes: Vec<String> = ALL
        .iter()
        .map(|i| t.lab.spec.addr(*i).to_string())
        .collect();
    let mut shared: Vec<(String, Option<String>)> = nodes
        .iter()
        .map(|n| (n.clone(), Some(nodes[0].clone())))
        .collect();
    shared[0].1 = None;
    assert_eq!(sweeps(&t, "good"), shared);
    // No password of the lab appears in the evidence.
    let text = std::fs::read_to_string(t.out("good").join("evidence.json")).unwrap();
    for u in epic_audit_lab::USERS {
        assert!(
            !text.contains(t.lab.password(u).expose()),
            "{u}'s password leaked"
        );
    }

    let revert = || async { on_nodes(&t, &ALL, &["ACL", "LOAD"]).await };

    // A read-only dev_user that may run neither ACL WHOAMI nor CLIENT
    // INFO: its login is proven by AUTH, so ACC-009 passes and says the
    // identity cross-check was not permitted.
    on_nodes(
        &t,
        &ALL,
        &["ACL", "SETUSER", "dev_user", "-acl|whoami", "-client|info"],
    )
    .await;
    let (_, rep, bad) = audit_area(&t, "access", "dev-no-whoami");
    assert!(
        !bad.iter().any(|(id, _)| id == "ACC-009"),
        "{bad:?}\n{rep:#}"
    );
    for s in subjects(&rep, "ACC-009") {
        assert!(
            s.2.contains("dev_user (AUTH OK; identity cross-check not permitted")
                && s.2.contains("NOPERM"),
            "{s:?}"
        );
    }
    revert().await;

    // The audit user may not run ACL DRYRUN: the permission matrices
    // cannot be proven, so ACC-005..007 are errors naming the rule to add.
    on_nodes(&t, &ALL, &["ACL", "SETUSER", "auditor", "-acl|dryrun"]).await;
    let (code, rep, _) = audit_area(&t, "access", "no-dryrun");
    for id in ["ACC-005", "ACC-006", "ACC-007", "ACC-011"] {
        assert_eq!(check(&rep, id)["outcome"], "error", "{id}: {rep:#}");
        assert!(
            message_of(&rep, id).contains("+acl|dryrun"),
            "{id}: {}",
            message_of(&rep, id)
        );
    }
    assert_ne!(check(&rep, "ACC-008")["outcome"], "pass");
    assert_eq!(code, 2);
    revert().await;

    // app_user granted GET under another prefix by a selector only: the
    // sweep takes a sample key from every pattern Redis grants, so ACC-006
    // finds it and names the grant (the two fixed sample keys of earlier
    // versions, session:… and epic-audit-dryrun:outside, never hit it).
    on_nodes(&t, &ALL, &["ACL", "SETUSER", "app_user", "(~other:* +get)"]).await;
    let (_, rep, bad) = audit_area(&t, "access", "selector-grant");
    assert_eq!(bad, fails(&["ACC-006"]), "{rep:#}");
    let m = message_of(&rep, "ACC-006");
    assert!(
        m.contains("on key `other:epic-audit-dryrun` (granted by `~other:*` of the selector `(")
            && m.contains(": get"),
        "{m}"
    );
    revert().await;

    // app_user allowed to script: ACC-006 names EVAL and the rule that
    // grants it, and the documented case "app_user EVAL" fails (ACC-008).
    on_nodes(&t, &ALL, &["ACL", "SETUSER", "app_user", "+@scripting"]).await;
    let (_, rep, bad) = audit_area(&t, "access", "app-scripting");
    assert_eq!(bad, fails(&["ACC-006", "ACC-008"]), "{rep:#}");
    let m = message_of(&rep, "ACC-006");
    assert!(
        m.contains("eval (@scripting)")
            && m.contains("(granted by `+@scripting` with keys `~session:*`)"),
        "{m}"
    );
    assert!(message_of(&rep, "ACC-008").contains("app_user: EVAL return 0"));
    revert().await;

    // dev_user may SET under tmp: through a Redis 7 selector only: ACC-005
    // fails and names the selector that grants the write (what to remove),
    // not just the command and its category.
    on_nodes(&t, &ALL, &["ACL", "SETUSER", "dev_user", "(~tmp:* +set)"]).await;
    let (_, rep, bad) = audit_area(&t, "access", "selector-write");
    assert_eq!(bad, fails(&["ACC-005"]), "{rep:#}");
    let m = message_of(&rep, "ACC-005");
    assert!(
        m.contains("set (@write) (granted by the selector `(")
            && m.contains("+set")
            && m.contains("~tmp:*"),
        "{m}"
    );
    revert().await;

    // The audit user may FLUSHDB: only ACC-011, naming the command (the
    // audit itself still runs, as that user).
    on_nodes(&t, &ALL, &["ACL", "SETUSER", "auditor", "+flushdb"]).await;
    let (_, rep, bad) = audit_area(&t, "access", "auditor-writes");
    assert_eq!(bad, fails(&["ACC-011"]), "{rep:#}");
    assert!(
        message_of(&rep, "ACC-011").contains("flushdb"),
        "{}",
        message_of(&rep, "ACC-011")
    );
    revert().await;

    // default enabled without password: only ACC-004.
    on_nodes(&t, &ALL, &["ACL", "SETUSER", "default", "on", "nopass"]).await;
    let (_, rep, bad) = audit_area(&t, "access", "default-on");
    assert_eq!(bad, fails(&["ACC-004"]), "{rep:#}");
    assert!(message_of(&rep, "ACC-004").contains("default is enabled"));
    revert().await;

    // dev_user may write: ACC-005, and the documented case "dev_user DEL".
    on_nodes(&t, &ALL, &["ACL", "SETUSER", "dev_user", "+@write"]).await;
    let (code, rep, bad) = audit_area(&t, "access", "dev-write");
    assert_eq!(bad, fails(&["ACC-005", "ACC-008"]), "{rep:#}");
    assert_eq!(code, 1);
    let m = message_of(&rep, "ACC-005");
    assert!(
        m.contains("append (@write)")
            && m.contains("(granted by `+@write` with keys `~*`)")
            && m.contains("127.0.1.1:"),
        "{m}"
    );
    assert!(message_of(&rep, "ACC-008").contains("dev_user: DEL session:0001"));
    revert().await;

    // dev_user may write on one replica only: that node's ACL differs from
    // its group's, so it gets its own sweep, which finds the write; the
    // others still share one.
    on_nodes(&t, &[5], &["ACL", "SETUSER", "dev_user", "+@write"]).await;
    let (code, rep, bad) = audit_area(&t, "access", "dev-write-one-replica");
    assert_eq!(bad, fails(&["ACC-001", "ACC-005", "ACC-008"]), "{rep:#}");
    assert_eq!(code, 1);
    let failing = common::failing_subjects(&rep, "ACC-005");
    assert_eq!(
        failing.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        [nodes[5].as_str()],
        "{rep:#}"
    );
    let sw = sweeps(&t, "dev-write-one-replica");
    assert_eq!(sw[5], (nodes[5].clone(), None), "{sw:?}");
    assert_eq!(sw[0], (nodes[0].clone(), None), "{sw:?}");
    for (node, on) in &sw[1..5] {
        assert_eq!(on.as_ref(), Some(&nodes[0]), "{node}: {sw:?}");
    }
    revert().await;

    // dev_user may EVAL (scripting is not @write): ACC-005 and the EVAL case.
    on_nodes(&t, &ALL, &["ACL", "SETUSER", "dev_user", "+eval"]).await;
    let (_, rep, bad) = audit_area(&t, "access", "dev-eval");
    assert_eq!(bad, fails(&["ACC-005", "ACC-008"]), "{rep:#}");
    assert!(message_of(&rep, "ACC-005").contains("eval (@scripting)"));
    revert().await;

    // app_user reaches every key: ACC-006 and the case "app_user GET patient:0001".
    on_nodes(&t, &ALL, &["ACL", "SETUSER", "app_user", "allkeys"]).await;
    let (_, rep, bad) = audit_area(&t, "access", "app-allkeys");
    assert_eq!(bad, fails(&["ACC-006", "ACC-008"]), "{rep:#}");
    assert!(message_of(&rep, "ACC-006").contains("outside session:*"));
    revert().await;

    // The Redis 7.0 single-key PFMERGE bypass, once the lab's -pfmerge is gone.
    on_nodes(&t, &ALL, &["ACL", "SETUSER", "app_user", "+pfmerge"]).await;
    let (_, rep, bad) = audit_area(&t, "access", "app-pfmerge");
    assert_eq!(bad, fails(&["ACC-006"]), "{rep:#}");
    assert!(
        message_of(&rep, "ACC-006").contains(": pfmerge"),
        "{}",
        message_of(&rep, "ACC-006")
    );
    revert().await;

    // An extra user on every node: only ACC-002.
    on_nodes(
        &t,
        &ALL,
        &[
            "ACL",
            "SETUSER",
            "intruder",
            "on",
            ">intruder-pass-0123",
            "~*",
            "+@all",
        ],
    )
    .await;
    let (_, rep, bad) = audit_area(&t, "access", "extra-user");
    assert_eq!(bad, fails(&["ACC-002"]), "{rep:#}");
    assert!(message_of(&rep, "ACC-002").contains("unexpected user(s) intruder"));
    revert().await;

    // A user with nopass: only ACC-003 (its real password still works).
    on_nodes(&t, &ALL, &["ACL", "SETUSER", "dev_user", "nopass"]).await;
    let (_, rep, bad) = audit_area(&t, "access", "nopass");
    assert_eq!(bad, fails(&["ACC-003"]), "{rep:#}");
    revert().await;

    // One node's ACL differs (a second password on node 3 only): only ACC-001.
    on_nodes(
        &t,
        &[2],
        &["ACL", "SETUSER", "dev_user", ">rotated-on-one-node-only"],
    )
    .await;
    let (_, rep, bad) = audit_area(&t, "access", "drift");
    assert_eq!(bad, fails(&["ACC-001"]), "{rep:#}");
    let failing: Vec<_> = subjects(&rep, "ACC-001")
        .into_iter()
        .filter(|s| s.1 == "fail")
        .collect();
    assert_eq!(failing.len(), 1, "{failing:?}");
    assert_eq!(failing[0].0, t.lab.spec.addr(2).to_string());
    assert!(
        failing[0].2.contains("dev_user: here adds `#fp:"),
        "{}",
        failing[0].2
    );
    revert().await;

    // app_user's password rotated on every node but not in the secret
    // store: only ACC-009 (the nodes still agree with each other).
    on_nodes(
        &t,
        &ALL,
        &[
            "ACL",
            "SETUSER",
            "app_user",
            "resetpass",
            ">rotated-elsewhere-4f2a",
        ],
    )
    .await;
    let (_, rep, bad) = audit_area(&t, "access", "rotated");
    assert_eq!(bad, fails(&["ACC-009"]), "{rep:#}");
    assert!(
        message_of(&rep, "ACC-009").contains("app_user: WRONGPASS"),
        "{}",
        message_of(&rep, "ACC-009")
    );
    revert().await;
    // That audit's own failed login for app_user is now in ACL LOG.
    on_nodes(&t, &ALL, &["ACL", "LOG", "RESET"]).await;

    // Many failed logins on one node: ACC-010 warns, the gate still passes.
    let mut pipeline = Vec::new();
    for _ in 0..60 {
        pipeline.push(vec![
            b"AUTH".to_vec(),
            b"app_user".to_vec(),
            b"not-the-password".to_vec(),
        ]);
    }
    // Someone typed a password into the user field: that name never
    // reaches the evidence or the report, only its keyed hash.
    pipeline.push(vec![
        b"AUTH".to_vec(),
        b"Typed-Pa55word-as-user".to_vec(),
        b"x".to_vec(),
    ]);
    let mut anon = epic_audit::resp::RedisConn::connect(
        &t.lab.spec.addr(0),
        &t.lab.tls_client(),
        &epic_audit::config::Timeouts::default(),
    )
    .await
    .unwrap();
    anon.pipeline(&pipeline).await.unwrap();
    let (code, rep, bad) = audit_area(&t, "access", "auth-failures");
    assert_eq!(
        bad,
        vec![("ACC-010".to_string(), "warn".to_string())],
        "{rep:#}"
    );
    assert_eq!(code, 0);
    assert!(
        message_of(&rep, "ACC-010").contains("app_user 60"),
        "{}",
        message_of(&rep, "ACC-010")
    );
    for f in ["evidence.json", "report.json", "report.md"] {
        let text = std::fs::read_to_string(t.out("auth-failures").join(f)).unwrap();
        assert!(
            !text.contains("Typed-Pa55word-as-user"),
            "{f} holds the typed name"
        );
        if f == "evidence.json" {
            assert!(text.contains("unknown user #"), "{f}");
        }
    }
    on_nodes(&t, &[0], &["ACL", "LOG", "RESET"]).await;

    // admin_user loses FLUSHALL and CONFIG (emergency access crippled).
    on_nodes(
        &t,
        &ALL,
        &["ACL", "SETUSER", "admin_user", "-flushall", "-config|set"],
    )
    .await;
    let (code, rep, bad) = audit_area(&t, "access", "admin-restricted");
    assert_eq!(bad, fails(&["ACC-007"]), "{rep:#}");
    assert_eq!(code, 1);
    let f = failing_subjects(&rep, "ACC-007");
    assert_eq!(f.len(), 6, "every node: {f:?}");
    assert!(
        f[0].1.contains("denied 2 command(s)") && f[0].1.contains("config|set, flushall"),
        "{f:?}"
    );
    revert().await;

    // Back to the good lab, and still nothing in the keyspace changed.
    let (code, rep, bad) = audit_area(&t, "access", "good-again");
    assert_eq!(bad, vec![], "{rep:#}");
    assert_eq!(code, 0);
    assert_eq!(keyspace(&t).await, before);
}
