//! MON-003 to MON-006 judged from replies recorded from the lab's real
//! Prometheus 2.42, Alertmanager and prometheus-redis-exporter 1.45
//! (fixtures/monitoring/), served again over loopback HTTP so the probe's
//! own client, parser and limits read them; and every way the API can
//! answer badly, each an `error` naming the URL and the cause.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use epic_audit::checks::Outcome;
use epic_audit::evidence::{
    Evidence, EvidenceSet, Observation, Observed, ProbeFailure, ProbeId, PrometheusView,
};
use epic_audit::http::{HttpAuth, HttpUrl, Limits};
use epic_audit::probes::monitoring::{observe, scrape_with, Api};
use epic_audit::secret::Secret;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/monitoring/");
/// When the fixtures were recorded (their Date header).
const RECORDED: &str = "Sun, 06 Dec 2026 16:26:53 GMT";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}{name}")).unwrap()
}

/// One canned answer.
#[derive(Clone)]
struct Answer {
    status: u16,
    content_type: &'static str,
    body: std::sync::Arc<Vec<u8>>,
    /// Never answer (a server that accepts and stays silent).
    silent: bool,
}

fn json(v: &Value) -> Answer {
    Answer {
        status: 200,
        content_type: "application/json",
        body: std::sync::Arc::new(serde_json::to_vec(v).unwrap()),
        silent: false,
    }
}

/// Serves `routes` (path with query -> answer) on a loopback port, as Go's
/// net/http answers HTTP/1.0: the whole body, then close.
async fn serve(routes: BTreeMap<String, Answer>) -> String {
    let routes = std::sync::Arc::new(routes);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = req.split_whitespace().nth(1).unwrap_or("").to_string();
                let a = routes.get(&path).cloned().unwrap_or(Answer {
                    status: 404,
                    content_type: "text/plain",
                    body: std::sync::Arc::new(b"404 page not found".to_vec()),
                    silent: false,
                });
                if a.silent {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                let head = format!(
                    "HTTP/1.0 {} X\r\nContent-Type: {}\r\nDate: {RECORDED}\r\n\r\n",
                    a.status, a.content_type
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&a.body).await;
            });
        }
    });
    addr
}

/// The recorded answers, with the Alertmanager pointed at `am` (which
/// must answer /-/ready).
fn recorded(am: &str) -> BTreeMap<String, Answer> {
    let mut r = BTreeMap::new();
    for (path, file) in [
        ("/api/v1/targets", "targets.json"),
        ("/api/v1/rules?type=alert", "rules.json"),
        ("/api/v1/alertmanagers", "alertmanagers.json"),
        ("/api/v1/status/config", "config.json"),
        ("/api/v1/status/runtimeinfo", "runtimeinfo.json"),
    ] {
        let text = fixture(file).replace("127.0.0.1:9093", am);
        r.insert(
            path.to_string(),
            json(&serde_json::from_str(&text).unwrap()),
        );
    }
    r
}

async fn ready_am() -> String {
    let mut r = BTreeMap::new();
    r.insert(
        "/-/ready".to_string(),
        Answer {
            status: 200,
            content_type: "text/plain",
            body: std::sync::Arc::new(b"OK".to_vec()),
            silent: false,
        },
    );
    serve(r).await
}

fn limits() -> Limits {
    Limits {
        connect: Duration::from_millis(500),
        read: Duration::from_millis(800),
        max_body: 16 << 20,
    }
}

/// The lab's nodes and their exporters, as the recorded evidence has them.
fn expected() -> BTreeMap<String, String> {
    (1..=6)
        .map(|i| (format!("127.0.1.{i}:6379"), format!("127.0.1.{i}:9121")))
        .collect()
}

async fn view_of(routes: BTreeMap<String, Answer>, auth: HttpAuth) -> PrometheusView {
    let addr = serve(routes).await;
    let api = Api {
        base: HttpUrl::parse(&format!("http://{addr}")).unwrap(),
        auth,
        tls: None,
        limits: limits(),
    };
    observe(&api, expected()).await
}

/// The recorded lab evidence with its Prometheus item replaced by `v`.
fn with_view(v: PrometheusView) -> EvidenceSet {
    with_result(Observed::Observation(Observation::Prometheus(Box::new(v))))
}

fn with_result(result: Observed) -> EvidenceSet {
    let mut ev = fixture_evidence();
    ev.items.retain(|e| e.probe != ProbeId::Prometheus);
    ev.items.push(Evidence {
        probe: ProbeId::Prometheus,
        subject: "http://127.0.0.1:9090".into(),
        method: "fixture".into(),
        observed_at: chrono::Utc::now(),
        duration_ms: 1,
        result,
    });
    ev
}

fn judged(ev: &EvidenceSet) -> epic_audit::report::Report {
    judge_areas(ev, &["MON-003", "MON-004", "MON-005"])
}

async fn good_view() -> PrometheusView {
    let am = ready_am().await;
    view_of(recorded(&am), HttpAuth::None).await
}

#[tokio::test]
async fn the_recorded_lab_passes_every_prometheus_check() {
    let v = good_view().await;
    assert!(v.errors.is_empty(), "{:?}", v.errors);
    assert_eq!(v.targets.len(), 6);
    assert_eq!(v.rules.len(), 6);
    assert_eq!(v.alertmanagers.len(), 1);
    assert!(v.alertmanagers[0].ready, "{:?}", v.alertmanagers);
    let r = judged(&with_view(v));
    assert!(not_passing(&r).is_empty(), "{:#?}", r.checks);
    // Six conditions and the inventory; one Alertmanager and the reload.
    assert_eq!(result(&r, "MON-004").subjects.len(), 7);
    assert_eq!(result(&r, "MON-005").subjects.len(), 2);
}

fn edit(routes: &mut BTreeMap<String, Answer>, path: &str, f: impl FnOnce(&mut Value)) {
    let a = routes.get_mut(path).unwrap();
    let mut v: Value = serde_json::from_slice(&a.body).unwrap();
    f(&mut v);
    a.body = std::sync::Arc::new(serde_json::to_vec(&v).unwrap());
}

fn targets(v: &mut Value) -> &mut Vec<Value> {
    v["data"]["activeTargets"].as_array_mut().unwrap()
}

async fn judged_with(f: impl FnOnce(&mut BTreeMap<String, Answer>)) -> epic_audit::report::Report {
    let am = ready_am().await;
    let mut routes = recorded(&am);
    f(&mut routes);
    judged(&with_view(view_of(routes, HttpAuth::None).await))
}

#[tokio::test]
async fn a_node_left_out_dropped_down_or_scraped_rarely_fails_mon_003_naming_it() {
    // Left out of the scrape configuration.
    let r = judged_with(|r| {
        edit(r, "/api/v1/targets", |v| {
            targets(v).retain(|t| t["labels"]["instance"] != "127.0.1.5:9121")
        })
    })
    .await;
    assert_eq!(not_passing(&r), only("MON-003", Outcome::Fail));
    assert_eq!(
        codes(&r, "MON-003"),
        [(
            "127.0.1.5:6379".to_string(),
            "MON-003/not-scraped".to_string()
        )]
    );
    assert!(
        messages(&r, "MON-003")[0].contains("127.0.1.5:9121"),
        "{:?}",
        messages(&r, "MON-003")
    );

    // Dropped by relabelling.
    let r = judged_with(|r| {
        edit(r, "/api/v1/targets", |v| {
            let t = targets(v);
            let i = t
                .iter()
                .position(|t| t["labels"]["instance"] == "127.0.1.2:9121")
                .unwrap();
            let dropped = t.remove(i);
            v["data"]["droppedTargets"] =
                serde_json::json!([{ "discoveredLabels": dropped["discoveredLabels"].clone() }]);
        })
    })
    .await;
    assert_eq!(
        codes(&r, "MON-003"),
        [(
            "127.0.1.2:6379".to_string(),
            "MON-003/dropped-by-relabelling".to_string()
        )]
    );

    // Down, with Prometheus's own error.
    let r = judged_with(|r| {
        edit(r, "/api/v1/targets", |v| {
            for t in targets(v)
                .iter_mut()
                .filter(|t| t["labels"]["instance"] == "127.0.1.3:9121")
            {
                t["health"] = "down".into();
                t["lastError"] =
                    "Get \"http://127.0.1.3:9121/metrics\": dial tcp: connection refused".into();
            }
        })
    })
    .await;
    assert_eq!(
        codes(&r, "MON-003"),
        [(
            "127.0.1.3:6379".to_string(),
            "MON-003/target-down".to_string()
        )]
    );
    assert!(messages(&r, "MON-003")[0].contains("connection refused"));

    // Every 5 minutes.
    let r = judged_with(|r| {
        edit(r, "/api/v1/targets", |v| {
            for t in targets(v) {
                t["scrapeInterval"] = "5m".into();
            }
        })
    })
    .await;
    assert_eq!(not_passing(&r), only("MON-003", Outcome::Fail));
    assert_eq!(
        distinct_codes(&r, "MON-003"),
        ["MON-003/scraped-too-rarely"]
    );
    assert_eq!(codes(&r, "MON-003").len(), 6);

    // Last scraped long before the answer's Date.
    let r = judged_with(|r| {
        edit(r, "/api/v1/targets", |v| {
            targets(v)[0]["lastScrape"] = "2026-12-06T16:20:00Z".into();
        })
    })
    .await;
    assert_eq!(distinct_codes(&r, "MON-003"), ["MON-003/scrape-stale"]);
}

#[tokio::test]
async fn an_older_prometheus_without_scrape_interval_is_read_from_its_configuration() {
    // Prometheus before 2.35 has no scrapeInterval in /api/v1/targets.
    let strip = |r: &mut BTreeMap<String, Answer>| {
        edit(r, "/api/v1/targets", |v| {
            for t in targets(v) {
                t.as_object_mut().unwrap().remove("scrapeInterval");
            }
        })
    };
    let am = ready_am().await;
    let mut routes = recorded(&am);
    strip(&mut routes);
    let v = view_of(routes, HttpAuth::None).await;
    assert!(v.targets.iter().all(|t| t.interval_s == Some(5.0)
        && t.interval_from == Some(epic_audit::evidence::IntervalSource::Config)));
    assert!(not_passing(&judged(&with_view(v))).is_empty());

    // The same with a 5 m job in the configuration: too rare.
    let r = judged_with(|r| {
        strip(r);
        edit(r, "/api/v1/status/config", |v| {
            let y = v["data"]["yaml"].as_str().unwrap().replace(
                "- job_name: redis\n  honor_timestamps: true\n  scrape_interval: 5s",
                "- job_name: redis\n  honor_timestamps: true\n  scrape_interval: 5m",
            );
            v["data"]["yaml"] = y.into();
        })
    })
    .await;
    assert_eq!(
        distinct_codes(&r, "MON-003"),
        ["MON-003/scraped-too-rarely"]
    );

    // Neither the API nor a readable configuration: error, never pass.
    let r = judged_with(|r| {
        strip(r);
        r.remove("/api/v1/status/config");
    })
    .await;
    assert_eq!(not_passing(&r), only("MON-003", Outcome::Error));
    assert_eq!(distinct_codes(&r, "MON-003"), ["MON-003/interval-unknown"]);
}

#[tokio::test]
async fn missing_or_broken_alert_rules_fail_mon_004_naming_the_condition() {
    // No node-down rule.
    let r = judged_with(|r| {
        edit(r, "/api/v1/rules?type=alert", |v| {
            v["data"]["groups"][0]["rules"]
                .as_array_mut()
                .unwrap()
                .retain(|r| r["name"] != "RedisDown")
        })
    })
    .await;
    assert_eq!(not_passing(&r), only("MON-004", Outcome::Fail));
    assert_eq!(
        codes(&r, "MON-004"),
        [(
            "a node down".to_string(),
            "MON-004/condition-uncovered".to_string()
        )]
    );
    assert!(messages(&r, "MON-004")[0].contains("redis_up or up"));

    // A rule in error.
    let r = judged_with(|r| {
        edit(r, "/api/v1/rules?type=alert", |v| {
            let rule = &mut v["data"]["groups"][0]["rules"][1];
            rule["health"] = "err".into();
            rule["lastError"] = "found duplicate series for the match group".into();
        })
    })
    .await;
    assert_eq!(
        codes(&r, "MON-004"),
        [
            (
                "alerting rules".to_string(),
                "MON-004/rule-in-error".to_string()
            ),
            (
                "cluster state not ok".to_string(),
                "MON-004/rule-in-error".to_string()
            ),
        ]
    );

    // Not evaluated for a long time.
    let r = judged_with(|r| {
        edit(r, "/api/v1/rules?type=alert", |v| {
            v["data"]["groups"][0]["rules"][4]["lastEvaluation"] = "2026-12-06T15:00:00Z".into();
        })
    })
    .await;
    assert_eq!(
        codes(&r, "MON-004"),
        [(
            "rejected connections".to_string(),
            "MON-004/rule-not-evaluated".to_string()
        )]
    );
}

#[tokio::test]
async fn rule_drift_shows_in_the_recorded_hashes() {
    let a = good_view().await;
    let b = {
        let am = ready_am().await;
        let mut routes = recorded(&am);
        edit(&mut routes, "/api/v1/rules?type=alert", |v| {
            v["data"]["groups"][0]["rules"][0]["query"] = "redis_up == 0".into();
        });
        view_of(routes, HttpAuth::None).await
    };
    let obs = |v: PrometheusView| {
        let r = judged(&with_view(v));
        result(&r, "MON-004")
            .subjects
            .iter()
            .find(|s| s.subject == "alerting rules")
            .unwrap()
            .observed
            .clone()
    };
    let (oa, ob) = (obs(a), obs(b));
    assert_ne!(oa, ob, "a changed expression changes the inventory");
    assert!(oa.contains("redis-cluster/RedisDown sha256:"), "{oa}");

    // Time alone changes no observation: a later scrape and evaluation of
    // the same configuration reads the same in every subject (so `diff`
    // shows only drift).
    let all = |v: PrometheusView| {
        let r = judged(&with_view(v));
        r.checks
            .iter()
            .flat_map(|c| {
                c.subjects
                    .iter()
                    .map(|s| (s.subject.clone(), s.observed.clone()))
            })
            .collect::<Vec<_>>()
    };
    let am = ready_am().await;
    let now = view_of(recorded(&am), HttpAuth::None).await;
    let later = {
        let mut routes = recorded(&am);
        edit(&mut routes, "/api/v1/targets", |v| {
            for t in targets(v) {
                t["lastScrape"] = "2026-12-06T16:26:50.5Z".into();
            }
        });
        edit(&mut routes, "/api/v1/rules?type=alert", |v| {
            for r in v["data"]["groups"][0]["rules"].as_array_mut().unwrap() {
                r["lastEvaluation"] = "2026-12-06T16:26:50.5Z".into();
            }
        });
        view_of(routes, HttpAuth::None).await
    };
    assert_eq!(all(now), all(later));
}

#[tokio::test]
async fn alerts_that_reach_nobody_fail_mon_005() {
    // No Alertmanager configured.
    let r = judged_with(|r| {
        edit(r, "/api/v1/alertmanagers", |v| {
            v["data"]["activeAlertmanagers"] = serde_json::json!([])
        })
    })
    .await;
    assert_eq!(not_passing(&r), only("MON-005", Outcome::Fail));
    assert_eq!(distinct_codes(&r, "MON-005"), ["MON-005/no-alertmanager"]);

    // One configured that does not answer.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut routes = recorded(&closed);
    routes.remove("/-/ready");
    let r = judged(&with_view(view_of(routes, HttpAuth::None).await));
    assert_eq!(
        distinct_codes(&r, "MON-005"),
        ["MON-005/alertmanager-not-ready"]
    );
    assert!(
        messages(&r, "MON-005")[0].contains("cannot connect"),
        "{:?}",
        messages(&r, "MON-005")
    );

    // The last reload failed.
    let r = judged_with(|r| {
        edit(r, "/api/v1/status/runtimeinfo", |v| {
            v["data"]["reloadConfigSuccess"] = false.into()
        })
    })
    .await;
    assert_eq!(
        codes(&r, "MON-005"),
        [(
            "configuration reload".to_string(),
            "MON-005/config-reload-failed".to_string()
        )]
    );
}

#[tokio::test]
async fn without_prometheus_url_the_checks_are_incomplete_never_pass() {
    let ev = with_result(Observed::Failure(ProbeFailure::new(
        epic_audit::evidence::FailureKind::NotConfigured,
        "the environment's [monitoring] table has no prometheus_url",
    )));
    let r = judged(&ev);
    for id in ["MON-003", "MON-004", "MON-005"] {
        assert_eq!(result(&r, id).outcome, Outcome::Incomplete, "{id}");
        assert_eq!(distinct_codes(&r, id), [format!("{id}/no-prometheus")]);
    }
    // No Prometheus item at all (a hand-cut evidence file): error.
    let mut ev = fixture_evidence();
    ev.items.retain(|e| e.probe != ProbeId::Prometheus);
    let r = judged(&ev);
    for id in ["MON-003", "MON-004", "MON-005"] {
        assert_eq!(result(&r, id).outcome, Outcome::Error, "{id}");
    }
}

/// The error finding of MON-003 for a Prometheus answering every request
/// with `a` (its one message, for every node).
async fn error_for(a: Answer, auth: HttpAuth) -> (Vec<String>, PrometheusView) {
    let mut routes = BTreeMap::new();
    for p in [
        "/api/v1/targets",
        "/api/v1/rules?type=alert",
        "/api/v1/alertmanagers",
        "/api/v1/status/runtimeinfo",
        "/api/v1/status/config",
    ] {
        routes.insert(p.to_string(), a.clone());
    }
    let v = view_of(routes, auth).await;
    let r = judged(&with_view(v.clone()));
    for id in ["MON-003", "MON-004", "MON-005"] {
        assert_eq!(
            result(&r, id).outcome,
            Outcome::Error,
            "{id}: {:?}",
            messages(&r, id)
        );
    }
    let mut m = messages(&r, "MON-003");
    m.dedup_by(|a, b| a.split_once(' ').map(|x| x.1) == b.split_once(' ').map(|x| x.1));
    (m, v)
}

#[tokio::test]
async fn bad_answers_are_errors_naming_the_url_and_the_cause() {
    let token = Secret::new("tok-3c1b9e0d7a-never-printed");
    let cases: Vec<(Answer, &str)> = vec![
        (
            Answer {
                status: 401,
                content_type: "text/plain",
                body: std::sync::Arc::new(b"Unauthorized".to_vec()),
                silent: false,
            },
            "HTTP 401",
        ),
        (
            Answer {
                status: 403,
                content_type: "text/plain",
                body: std::sync::Arc::new(b"Forbidden".to_vec()),
                silent: false,
            },
            "refused the audit's credentials",
        ),
        (
            Answer {
                status: 200,
                content_type: "text/html",
                body: std::sync::Arc::new(
                    b"<!DOCTYPE html><html><body>Sign in to Grafana tok-3c1b9e0d7a</body></html>"
                        .to_vec(),
                ),
                silent: false,
            },
            "answered text/html of",
        ),
        (
            Answer {
                status: 502,
                content_type: "text/html",
                body: std::sync::Arc::new(b"<html>bad gateway</html>".to_vec()),
                silent: false,
            },
            "HTTP 502",
        ),
        (
            json(
                &serde_json::json!({"status": "error", "errorType": "bad_data", "error": "invalid parameter"}),
            ),
            "bad_data invalid parameter",
        ),
        (
            Answer {
                status: 200,
                content_type: "application/json",
                body: std::sync::Arc::new(vec![b' '; 50 << 20]),
                silent: false,
            },
            "larger than 16777216 bytes",
        ),
        (
            Answer {
                status: 200,
                content_type: "application/json",
                body: std::sync::Arc::new(Vec::new()),
                silent: true,
            },
            "no complete answer within 800 ms",
        ),
    ];
    for (a, want) in cases {
        let started = std::time::Instant::now();
        let (m, v) = error_for(a, HttpAuth::Bearer(token.clone())).await;
        let all = format!("{m:?} {v:?}");
        assert!(all.contains(want), "want {want}: {all}");
        assert!(m[0].contains("http://127.0.0.1:"), "names the URL: {m:?}");
        assert!(
            !all.contains("tok-3c1b9e0d7a"),
            "no token or body echoed: {all}"
        );
        // Bounded: the read deadline, not the size of the body.
        assert!(started.elapsed() < Duration::from_secs(20));
    }
    // Nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let api = Api {
        base: HttpUrl::parse(&format!("http://{closed}")).unwrap(),
        auth: HttpAuth::None,
        tls: None,
        limits: limits(),
    };
    let v = observe(&api, expected()).await;
    let r = judged(&with_view(v));
    assert!(
        messages(&r, "MON-003")[0].contains("cannot connect"),
        "{:?}",
        messages(&r, "MON-003")
    );
}

#[tokio::test]
async fn the_bearer_token_and_basic_auth_are_sent_and_never_recorded() {
    // A server that only answers with the right Authorization header.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let auth = req
                .lines()
                .find_map(|l| l.strip_prefix("Authorization: "))
                .unwrap_or("")
                .to_string();
            seen2.lock().unwrap().push(auth);
            let _ = s
                .write_all(b"HTTP/1.0 401 Unauthorized\r\nContent-Type: text/plain\r\n\r\nno")
                .await;
        }
    });
    for auth in [
        HttpAuth::Bearer(Secret::new("bearer-s3cr3t-value")),
        HttpAuth::Basic("audit".into(), Secret::new("basic-s3cr3t-value")),
    ] {
        let api = Api {
            base: HttpUrl::parse(&format!("http://{addr}")).unwrap(),
            auth,
            tls: None,
            limits: limits(),
        };
        let v = observe(&api, expected()).await;
        let text = serde_json::to_string(&v).unwrap();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("HTTP 401"), "{text}");
    }
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|a| a == "Bearer bearer-s3cr3t-value"),
        "{seen:?}"
    );
    // base64("audit:basic-s3cr3t-value")
    assert!(
        seen.iter()
            .any(|a| a == "Basic YXVkaXQ6YmFzaWMtczNjcjN0LXZhbHVl"),
        "{seen:?}"
    );
}

async fn exporter_view(file: &str, patterns: &[&str]) -> epic_audit::evidence::ExporterView {
    let mut r = BTreeMap::new();
    r.insert(
        "/metrics".to_string(),
        Answer {
            status: 200,
            content_type: "text/plain; version=0.0.4",
            body: std::sync::Arc::new(fixture(file).into_bytes()),
            silent: false,
        },
    );
    let addr = serve(r).await;
    let p: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
    scrape_with(&addr, Duration::from_secs(1), Duration::from_secs(2), &p).await
}

fn judged_exporter(v: epic_audit::evidence::ExporterView) -> epic_audit::report::Report {
    let mut ev = fixture_evidence();
    for e in ev.items.iter_mut().filter(|e| e.probe == ProbeId::Exporter) {
        let mut v = v.clone();
        v.url = format!("http://{}/metrics", e.subject.replace(":6379", ":9121"));
        e.result = Observed::Observation(Observation::Exporter(v));
    }
    judge_areas(&ev, &["MON-006"])
}

#[tokio::test]
async fn an_exporter_with_check_keys_publishes_session_keys_and_fails_mon_006() {
    let good = exporter_view("exporter-metrics.txt", &["session:*"]).await;
    let l = good.leaks.clone().unwrap();
    assert!(
        l.series > 300 && l.session_key_series == 0 && l.client_series == 0,
        "{l:?}"
    );
    assert!(not_passing(&judged_exporter(good)).is_empty());

    let bad = exporter_view("exporter-metrics-check-keys.txt", &["session:*"]).await;
    let l = bad.leaks.clone().unwrap();
    // One redis_key_size series per session key of the node (61 there).
    assert!(l.session_key_series >= 61, "{l:?}");
    assert!(l.session_key_metrics.contains("redis_key_size"), "{l:?}");
    assert!(
        l.client_series > 0 && l.client_metrics.contains("redis_connected_clients_details"),
        "{l:?}"
    );
    let text = serde_json::to_string(&bad).unwrap();
    assert!(
        !fixture("exporter-metrics-check-keys.txt")
            .lines()
            .filter_map(|l| l.split("key=\"").nth(1))
            .map(|k| k.split('"').next().unwrap())
            .any(|k| text.contains(k)),
        "no key name is recorded in the evidence"
    );
    let r = judged_exporter(bad);
    assert_eq!(not_passing(&r), only("MON-006", Outcome::Fail));
    assert_eq!(
        distinct_codes(&r, "MON-006"),
        ["MON-006/session-keys-exposed"]
    );
    assert!(messages(&r, "MON-006")[0].contains("remove -export-client-list"));

    // No session pattern known: any key-naming series fails.
    let unknown = exporter_view("exporter-metrics-check-keys.txt", &[]).await;
    assert_eq!(
        distinct_codes(&judged_exporter(unknown), "MON-006"),
        ["MON-006/keys-exposed"]
    );
}

/// Sets `user`'s DRYRUN letters for `cmd` on every node of `ev`.
fn set_exporter_verdict(ev: &mut EvidenceSet, cmd: &str, letters: &str) {
    for (_, view) in observations_mut(ev, |o| match o {
        Observation::AclNode(v) => Some(v.as_mut()),
        _ => None,
    }) {
        view.dryrun.get_mut("exporter").unwrap().insert(
            cmd.into(),
            epic_audit::evidence::DryRunLetters::parse(letters).unwrap(),
        );
    }
}

#[test]
fn the_exporters_user_is_judged_by_its_own_dryrun_sweep() {
    // Recorded on the lab, whose exporters log in as `exporter` with the
    // line `print-acl --user exporter` prints.
    let ev = fixture_evidence();
    let r = judge_areas(&ev, &["MON-007"]);
    assert!(not_passing(&r).is_empty(), "{:?}", messages(&r, "MON-007"));

    // Allowed to write (SET) and to reconfigure (CONFIG SET): fails.
    let mut bad = fixture_evidence();
    set_exporter_verdict(&mut bad, "set", "AA");
    set_exporter_verdict(&mut bad, "config|set", "A");
    let r = judge_areas(&bad, &["MON-007"]);
    assert_eq!(not_passing(&r), only("MON-007", Outcome::Fail));
    assert_eq!(
        distinct_codes(&r, "MON-007"),
        ["MON-007/denied-command-allowed"]
    );
    let m = messages(&r, "MON-007");
    assert!(m[0].contains("config|set") && m[0].contains("set"), "{m:?}");

    // The policy judges another user (an environment's exporter_user)
    // that these nodes do not have: never a pass.
    let mut p = lab_policy();
    p.set_exporter_user("metrics_ro");
    let sel = p.select(&["MON-007".to_string()], &[]).unwrap();
    let r = epic_audit::engine::judge(&ev, &p, &sel, &[], &[]);
    assert_eq!(result(&r, "MON-007").outcome, Outcome::Fail);
    assert_eq!(distinct_codes(&r, "MON-007"), ["MON-007/user-missing"]);
}
