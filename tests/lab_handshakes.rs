//! How the audit connects: every connection a node accepted during a run is
//! accounted for, and the audit's command connections resume the TLS
//! session of an earlier one (the server signs with its RSA-4096 key only
//! for the full handshakes), as recorded per node in evidence.json
//! (`tls_handshakes`) and counted by Redis itself (INFO stats
//! total_connections_received).

mod common;

use common::{run_env, start_lab, TestLab};

/// total_connections_received of each node, read over one admin
/// connection each (which this counts too).
async fn accepted(t: &TestLab) -> Vec<i64> {
    let mut out = Vec::new();
    for i in 0..6 {
        let mut c = t.lab.admin(i).await.unwrap();
        let info =
            epic_audit::resp::as_text(&c.cmd_str(&["INFO", "stats"]).await.unwrap()).unwrap();
        let n = info
            .lines()
            .find_map(|l| l.strip_prefix("total_connections_received:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        out.push(n);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_accepted_connection_is_the_audits_and_command_connections_resume() {
    let t = start_lab().await;
    let cfg = t.config(&[], (2000, 5000, 20000));
    t.add_users(&cfg, &["app_user", "dev_user"]);
    let before = accepted(&t).await;
    let r = run_env(
        &t,
        &cfg,
        &[
            "--only",
            "access,cluster,data,transport",
            "--skip",
            "CLU-008,CLU-009,CLU-010",
            "--out",
            t.out("run").to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let after = accepted(&t).await;
    let ev: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.out("run").join("evidence.json")).unwrap())
            .unwrap();
    for i in 0..6 {
        let node = t.lab.spec.addr(i).to_string();
        let h = &ev["tls_handshakes"][&node];
        let (full, resumed) = (h["full"].as_i64().unwrap(), h["resumed"].as_i64().unwrap());
        // The server saw the admin connection of `accepted` once, plus the
        // audit's.
        let server = after[i] - before[i] - 1;
        // Redis counts a connection once its TLS handshake completed, so
        // the transport probe's refused offers (old versions, no client
        // certificate) are not in it: every connection the client port
        // accepted is one the audit's client counted.
        assert_eq!(
            server,
            full + resumed,
            "{node}: {server} accepted, audit counted {full}+{resumed}"
        );
        // The design: the audit's own client opens two connections per
        // node. One shared, authenticated connection carries every command
        // probe (discovery opens it with the one full handshake); the
        // access probe's live logins get one of their own, which resumes
        // the session (it waits at the node's gate until the shared one
        // read the node's session tickets).
        assert_eq!(full, 1, "{node}: {h}");
        assert_eq!(resumed, 1, "{node}: {h}");
    }
    // The TLS probe signs the node no handshake the audit already made: on
    // a client port its evidence is the audit's own verified full handshake
    // (and TLS 1.3 is proven by it); a bus port gets its own.
    let items = ev["items"].as_array().unwrap();
    let endpoint = |subject: &str| {
        &items
            .iter()
            .find(|i| i["probe"] == "tls.endpoint" && i["subject"] == subject)
            .unwrap_or_else(|| panic!("no tls.endpoint item for {subject}"))["result"]
            ["observation"]
    };
    for i in 0..6 {
        let node = t.lab.spec.addr(i).to_string();
        let client = endpoint(&format!("{node} client"));
        let detail = client["handshake"]["detail"].as_str().unwrap();
        assert!(detail.starts_with("the audit's own connection"), "{detail}");
        assert_eq!(client["handshake"]["protocol"], "TLSv1.3", "{client}");
        assert!(!client["chain"].as_array().unwrap().is_empty(), "{client}");
        assert_eq!(client["verification"], "ok");
        let v13 = client["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["version"] == "TLSv1.3")
            .unwrap();
        assert_eq!(v13["outcome"], "accepted");
        assert!(
            v13["detail"].as_str().unwrap().contains("no separate"),
            "{v13}"
        );
        let bus_port = t.lab.spec.port + 10000;
        let bus = endpoint(&format!("{}:{bus_port} bus", t.lab.spec.ips[i]));
        let detail = bus["handshake"]["detail"].as_str().unwrap();
        assert!(!detail.starts_with("the audit's own"), "{detail}");
        assert!(bus["handshake"]["completed"].as_bool().unwrap(), "{bus}");
    }
}
