//! The monitoring layer on a real lab: Debian's Prometheus scraping
//! prometheus-redis-exporter on every node (logging in as `exporter`), the
//! rules of lab/monitoring/rules.yml, an Alertmanager. The good lab passes
//! every monitoring check; each variant (applied by rewriting Prometheus's
//! configuration and reloading it, or restarting one exporter) fails
//! exactly its check.

mod common;

use common::*;
use epic_audit_lab::MonitoringConfig;

/// `(subject, code)` of the subjects of `id` that did not pass.
fn codes_of(rep: &serde_json::Value, id: &str) -> Vec<(String, String)> {
    check(rep, id)["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["outcome"] != "pass")
        .map(|s| {
            (
                s["subject"].as_str().unwrap().to_string(),
                s["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_good_lab_passes_and_each_monitoring_defect_fails_exactly_its_check() {
    let mut t = start_lab_with(|s| s.monitoring = true).await;
    t.config(&[], (2000, 3000, 10000));
    let nodes: Vec<String> = (0..6).map(|i| t.lab.spec.addr(i).to_string()).collect();
    let node = |i: usize| nodes[i].clone();

    let (code, rep, bad) = audit_area(&t, "monitoring", "good");
    assert!(bad.is_empty(), "{bad:?}\n{rep:#}");
    assert_eq!(code, 0);
    assert_eq!(rep["checks"].as_array().unwrap().len(), 7);

    // Node 5 left out of the scrape configuration.
    t.lab
        .set_monitoring(&MonitoringConfig {
            left_out: vec![4],
            ..MonitoringConfig::good()
        })
        .await
        .unwrap();
    let (_, rep, bad) = audit_area(&t, "monitoring", "left-out");
    assert_eq!(bad, fails(&["MON-003"]), "{rep:#}");
    assert_eq!(
        codes_of(&rep, "MON-003"),
        [(node(4), "MON-003/not-scraped".to_string())]
    );

    // The rules file without a node-down rule.
    t.lab
        .set_monitoring(&MonitoringConfig {
            without_node_down_rule: true,
            ..MonitoringConfig::good()
        })
        .await
        .unwrap();
    let (_, rep, bad) = audit_area(&t, "monitoring", "no-node-down-rule");
    assert_eq!(bad, fails(&["MON-004"]), "{rep:#}");
    assert_eq!(
        codes_of(&rep, "MON-004"),
        [(
            "a node down".to_string(),
            "MON-004/condition-uncovered".to_string()
        )]
    );

    // Scraped every 5 minutes.
    t.lab
        .set_monitoring(&MonitoringConfig {
            scrape_interval: "5m".into(),
            ..MonitoringConfig::good()
        })
        .await
        .unwrap();
    let (_, rep, bad) = audit_area(&t, "monitoring", "five-minutes");
    assert_eq!(bad, fails(&["MON-003"]), "{rep:#}");
    let c = codes_of(&rep, "MON-003");
    assert_eq!(c.len(), 6, "{c:?}");
    assert!(
        c.iter()
            .all(|(_, code)| code == "MON-003/scraped-too-rarely"),
        "{c:?}"
    );

    // No Alertmanager configured.
    t.lab
        .set_monitoring(&MonitoringConfig {
            without_alertmanager: true,
            ..MonitoringConfig::good()
        })
        .await
        .unwrap();
    let (_, rep, bad) = audit_area(&t, "monitoring", "no-alertmanager");
    assert_eq!(bad, fails(&["MON-005"]), "{rep:#}");
    assert_eq!(
        codes_of(&rep, "MON-005"),
        [(
            t.lab.prometheus_url(),
            "MON-005/no-alertmanager".to_string()
        )]
    );

    // Back to good, then node 2's exporter as the administrator with
    // -check-keys 'session:*': its /metrics names session keys.
    t.lab
        .set_monitoring(&MonitoringConfig::good())
        .await
        .unwrap();
    t.lab.leaky_exporter(1).await.unwrap();
    let (_, rep, bad) = audit_area(&t, "monitoring", "leaky-exporter");
    assert_eq!(bad, fails(&["MON-006"]), "{rep:#}");
    assert_eq!(
        codes_of(&rep, "MON-006"),
        [(node(1), "MON-006/session-keys-exposed".to_string())]
    );
    let text = std::fs::read_to_string(t.out("leaky-exporter").join("report.json")).unwrap();
    for k in t.keys("session:*").await {
        assert!(!text.contains(&k), "the report names session key {k}");
    }

    // The environment says the exporters log in as the administrator:
    // MON-007 sweeps that user and finds it reads keys and writes.
    let cfg = t.tmp.path().join("epic-audit.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[environments.t.monitoring]\n",
        &format!(
            "[environments.t.monitoring]\nexporter_user = \"{}\"\n",
            t.lab.spec.names.admin
        ),
    );
    std::fs::write(&cfg, text).unwrap();
    let (_, rep, bad) = audit_area(&t, "MON-007", "exporter-as-admin");
    assert_eq!(bad, fails(&["MON-007"]), "{rep:#}");
    assert!(
        codes_of(&rep, "MON-007")
            .iter()
            .all(|(_, c)| c == "MON-007/denied-command-allowed"),
        "{:?}",
        codes_of(&rep, "MON-007")
    );

    // Prometheus gone: every Prometheus check errors, naming the URL.
    t.lab.kill_monitoring();
    let (code, rep, bad) = audit_area(&t, "MON-003,MON-004,MON-005", "no-prometheus");
    assert_eq!(
        bad,
        ["MON-003", "MON-004", "MON-005"]
            .iter()
            .map(|i| (i.to_string(), "error".to_string()))
            .collect::<Vec<_>>(),
        "{rep:#}"
    );
    assert_eq!(code, 2);
    let m = failing_subjects(&rep, "MON-003");
    assert!(
        m[0].1.contains(&t.lab.prometheus_url()) && m[0].1.contains("cannot connect"),
        "{m:?}"
    );
}
