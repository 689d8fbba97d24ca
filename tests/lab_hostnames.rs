//! A cluster whose nodes announce DNS names (`cluster-announce-hostname`,
//! `cluster-preferred-endpoint-type hostname`) and whose certificates name
//! only those names (no IP SAN), audited with a seed given by DNS name, as
//! production clusters behind an internal CA and private DNS are. The names
//! resolve through lines the lab adds to /etc/hosts.
//!
//! One lab, two audits: the whole catalogue passes (PERF-001 aside, as on
//! every lab) with each node reached and verified by its announced name;
//! then node 3 gets a certificate for another host, and only node 3 is not
//! passing, its findings naming both names, and no credential reached it.

mod common;

use common::*;
use epic_audit::resp::{as_text, parse_info, RedisConn};

const NODE3: usize = 2;

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_announcing_hostnames_is_audited_by_name_and_a_mismatching_name_is_refused() {
    let t = start_lab_with(|s| {
        s.hostnames = true;
        s.monitoring = true;
        s.aws = true;
    })
    .await;
    let spec = &t.lab.spec;
    let zone = spec.zone().unwrap();
    let name = |i: usize| spec.hostname(i).unwrap();
    let cfg = t.config_with_aws((2000, 3000, 20000), &t.lab.aws_settings());
    t.add_users(&cfg, &["app_user", "dev_user"]);
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        text.contains(&format!("seeds = [\"{}:{}\"]", name(0), spec.port)),
        "the seed is a DNS name:\n{text}"
    );

    // 1. The good hostname lab: every check passes but PERF-001.
    let out = t.out("good");
    let r = run_env(&t, &cfg, &["--out", out.to_str().unwrap()]);
    let rep = report(&out);
    let not_passed: Vec<String> = all_subjects(&rep)
        .into_iter()
        .filter(|(id, _, o, _)| o != "pass" && id != "PERF-001" && id != "PATCH-001")
        .map(|(id, s, o, m)| format!("{id} {s} {o}: {m}"))
        .collect();
    common::assert_lab_build_accepted(&rep);
    assert!(
        not_passed.is_empty(),
        "{}\n{}",
        not_passed.join("\n"),
        r.stdout
    );
    assert_ne!(check(&rep, "PERF-001")["outcome"], "error", "{}", r.stdout);
    // Nodes stay keyed by the address the cluster gives in CLUSTER NODES;
    // each was reached by its announced name, which resolved to that address.
    let ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("evidence.json")).unwrap()).unwrap();
    let items = ev["items"].as_array().unwrap();
    for i in 0..6 {
        let subject = spec.addr(i).to_string();
        let node = items
            .iter()
            .find(|e| e["probe"] == "cluster" && e["subject"] == subject)
            .unwrap_or_else(|| panic!("no cluster evidence for {subject}"));
        let reached = &node["result"]["observation"]["reached_by"];
        assert_eq!(reached["address"], subject, "{reached}");
        assert_eq!(reached["verified_as"], reached["name"], "{reached}");
        // The seed was reached by the name it was given; every other node
        // by the name the cluster announces: both are the node's own name.
        assert_eq!(reached["name"], name(i), "{reached}");
        let tls = items
            .iter()
            .find(|e| e["probe"] == "tls.endpoint" && e["subject"] == format!("{subject} client"))
            .unwrap();
        let view = &tls["result"]["observation"];
        assert_eq!(view["reached_by"]["name"], name(i), "{view}");
        assert_eq!(view["chain"][0]["san_dns"][0], name(i), "{view}");
        assert_eq!(view["chain"][0]["san_ip"].as_array().unwrap().len(), 0);
    }
    let san = subjects(&rep, "TLS-006");
    assert_eq!(san.len(), 12, "{san:?}");
    for (s, o, m) in &san {
        assert_eq!(o, "pass", "{s}: {m}");
        if s.ends_with(" client") {
            assert!(
                m.contains("the cluster hands clients the hostname redis-"),
                "{m}"
            );
            assert!(
                m.contains(&format!(".{zone}, the endpoint the cluster hands them")),
                "{m}"
            );
        } else {
            assert!(
                m.contains("the nodes reach each other's bus port by IP"),
                "{m}"
            );
            assert!(m.contains("does not name it"), "{m}");
        }
    }

    // 1b. The same cluster seeded by IP: the seed's certificate names only
    //     its DNS name, so the audit refuses it and says how to reach it.
    let ip_cfg = t.tmp.path().join("ip-seed.toml");
    std::fs::write(
        &ip_cfg,
        text.replace(
            &format!("\"{}:{}\"", name(0), spec.port),
            &format!("\"{}\"", spec.addr(0)),
        ),
    )
    .unwrap();
    let out = t.out("ip-seed");
    let r = run_env(
        &t,
        &ip_cfg,
        &["--only", "CLU-001", "--out", out.to_str().unwrap()],
    );
    assert_ne!(r.code, 0, "{}", r.stdout);
    let ev = std::fs::read_to_string(out.join("evidence.json")).unwrap();
    assert!(
        ev.contains("the certificate names only DNS names: if the cluster announces hostnames")
            && ev.contains("give the seeds by DNS name"),
        "{ev}"
    );

    // 2. Node 3 presents a certificate from the CA for another host: the
    //    audit, dialling redis-3 by name, refuses it before AUTH.
    let other = format!("redis-9.{zone}");
    let (crt, key) = t
        .lab
        .issue_cert("other-host", &format!("DNS:{other}"))
        .unwrap();
    let mut keeper = t.lab.admin(NODE3).await.unwrap();
    keeper
        .cmd_str(&[
            "CONFIG",
            "SET",
            "tls-cert-file",
            crt.to_str().unwrap(),
            "tls-key-file",
            key.to_str().unwrap(),
        ])
        .await
        .unwrap();
    keeper.cmd_str(&["CONFIG", "RESETSTAT"]).await.unwrap();
    let out = t.out("mismatch");
    let r = run_env(&t, &cfg, &["--out", out.to_str().unwrap()]);
    let rep = report(&out);
    let node3 = spec.addr(NODE3).to_string();
    let others: Vec<String> = (0..6)
        .filter(|i| *i != NODE3)
        .map(|i| spec.addr(i).to_string())
        .collect();
    let mut on_node3 = 0;
    for (id, s, o, m) in all_subjects(&rep) {
        if id == "PERF-001" || id == "PATCH-001" {
            continue;
        }
        // Every other node's own findings pass; cluster-wide subjects
        // lack node 3's observation and are judged as such (never `pass`
        // on what could not be observed on node 3).
        if others.iter().any(|a| s.starts_with(a.as_str())) {
            assert_eq!(o, "pass", "{id} {s}: {m}\n{}", r.stdout);
        }
        if s.starts_with(&node3) && !s.ends_with(" bus") && o != "pass" {
            on_node3 += 1;
        }
    }
    assert!(on_node3 > 5, "{}", r.stdout);
    assert_ne!(r.code, 0);
    // The refusal names the name dialled and the name the certificate holds.
    let ev = std::fs::read_to_string(out.join("evidence.json")).unwrap();
    let refusal = ev
        .lines()
        .find(|l| l.contains(&node3) && l.contains("not valid for name"))
        .unwrap_or_else(|| panic!("no refusal for {node3} in the evidence\n{}", r.stdout));
    assert!(
        refusal.contains(&format!("not valid for name \\\"{}\\\"", name(NODE3)))
            && refusal.contains(&other),
        "{refusal}"
    );
    let tls_client = subjects(&rep, "TLS-006")
        .into_iter()
        .find(|(s, _, _)| *s == format!("{node3} client"))
        .unwrap();
    assert_eq!(tls_client.1, "fail", "{tls_client:?}");
    assert!(
        tls_client
            .2
            .contains(&format!("no DNS SAN for {}", name(NODE3)))
            && tls_client.2.contains(&other),
        "{tls_client:?}"
    );
    // No credential reached node 3: since RESETSTAT its only AUTH is this
    // connection's own (made by IP, verifying the name its certificate has).
    let mut tls = t.lab.tls_client();
    tls.server_name = Some(other.clone());
    let mut c = RedisConn::connect_as(
        &spec.addr(NODE3),
        &tls,
        &epic_audit::config::Timeouts::default(),
        &spec.names.admin,
        t.lab.password(&spec.names.admin),
    )
    .await
    .unwrap();
    let stats = c.cmd_str(&["INFO", "commandstats"]).await.unwrap();
    let stats = parse_info(&as_text(&stats).unwrap());
    let auth = stats.get("cmdstat_auth").cloned().unwrap_or_default();
    assert!(auth.starts_with("calls=1,"), "cmdstat_auth {auth}");
}
