//! The monitoring layer: each node's exporter (/metrics: health, and what
//! else it exposes), and the Prometheus that should be scraping them, its
//! alerting rules and the Alertmanagers it sends alerts to.
//!
//! Read-only HTTP GETs, each under the environment's connect and command
//! deadlines with a capped body (see [`crate::http`]). Nothing in an
//! exporter's /metrics that names a key, a value or a client is recorded:
//! only counts and metric names.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;

use super::scaffold::{per_target, Probe, ProbeContext, ProbeFuture, Target};
use crate::config::{MonitoringSettings, NodeAddr};
use crate::evidence::{
    endpoint, glob, AlertRule, AlertmanagerView, Evidence, ExporterLeaks, ExporterView,
    FailureKind, IntervalSource, Observation, Observed, ProbeFailure, ProbeId, PrometheusView,
    ScrapeTarget,
};
use crate::http::{self, HttpAuth, HttpUrl, Limits, Reply};

/// The largest /metrics body read (a larger one is an error).
const MAX_METRICS: usize = 32 * 1024 * 1024;
/// The largest Prometheus API answer read.
const MAX_API: usize = 16 * 1024 * 1024;
/// Dropped targets recorded at most.
const MAX_DROPPED: usize = 1000;

/// The exporter address of a node.
pub(crate) fn exporter_for(m: &MonitoringSettings, node: &NodeAddr) -> String {
    m.exporters
        .get(&node.to_string())
        .cloned()
        .unwrap_or_else(|| {
            NodeAddr {
                host: node.host.clone(),
                port: m.exporter_port,
            }
            .to_string()
        })
}

/// HTTP GET http://addr/metrics, parsed as Prometheus text (health metrics
/// only; no session patterns to look for leaks with).
pub async fn scrape(addr: &str, connect: Duration, read: Duration) -> ExporterView {
    scrape_with(addr, connect, read, &[]).await
}

/// HTTP GET http://addr/metrics: the health metrics, and what the rest
/// exposes (series naming keys of `patterns` or clients), counted.
pub async fn scrape_with(
    addr: &str,
    connect: Duration,
    read: Duration,
    patterns: &[String],
) -> ExporterView {
    let url = format!("http://{addr}/metrics");
    let fail = |e: String| ExporterView {
        url: url.clone(),
        reachable: false,
        error: Some(e),
        metrics: BTreeMap::new(),
        leaks: None,
    };
    let base = match HttpUrl::parse(&format!("http://{addr}")) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let limits = Limits {
        connect,
        read,
        max_body: MAX_METRICS,
    };
    let reply = match http::get(&base, "/metrics", &HttpAuth::None, None, &limits).await {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    if reply.status != 200 {
        return fail(format!("HTTP status `{}`", reply.status_text()));
    }
    let text = String::from_utf8_lossy(&reply.body);
    match prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))) {
        Err(e) => fail(format!("not Prometheus text: {e}")),
        Ok(scrape) => {
            let metrics = scrape
                .samples
                .iter()
                .filter(|s| {
                    matches!(
                        s.metric.as_str(),
                        "redis_up"
                            | "redis_cluster_state"
                            | "redis_exporter_last_scrape_error"
                            | "redis_cluster_enabled"
                    )
                })
                .filter_map(|s| match s.value {
                    prometheus_parse::Value::Gauge(v)
                    | prometheus_parse::Value::Untyped(v)
                    | prometheus_parse::Value::Counter(v) => Some((s.metric.clone(), v)),
                    _ => None,
                })
                .collect();
            ExporterView {
                url,
                reachable: true,
                error: None,
                metrics,
                leaks: Some(leaks(&scrape, patterns)),
            }
        }
    }
}

/// Label names that carry a client's address in redis_exporter's
/// per-client series (`-export-client-list`).
const CLIENT_LABELS: [&str; 4] = ["host", "addr", "laddr", "ip"];

/// Counts the series of `scrape` that name a key of `patterns` (any label
/// value) or a client (an address label), by metric name.
fn leaks(scrape: &prometheus_parse::Scrape, patterns: &[String]) -> ExporterLeaks {
    let mut l = ExporterLeaks {
        patterns: patterns.to_vec(),
        ..Default::default()
    };
    for s in &scrape.samples {
        l.series += 1;
        if s.labels
            .iter()
            .any(|(_, v)| patterns.iter().any(|p| glob(p, v)))
        {
            l.session_key_series += 1;
            l.session_key_metrics.insert(s.metric.clone());
        } else if s.labels.get("key").is_some() {
            l.other_key_series += 1;
        }
        if CLIENT_LABELS.iter().any(|k| s.labels.get(k).is_some()) {
            l.client_series += 1;
            l.client_metrics.insert(s.metric.clone());
        }
    }
    l
}

/// Scrapes every node's exporter.
pub(crate) struct ExporterProbe;

impl Probe for ExporterProbe {
    fn name(&self) -> ProbeId {
        ProbeId::Exporter
    }

    fn run(&self, ctx: Arc<ProbeContext>) -> ProbeFuture {
        Box::pin(async move {
            let patterns = ctx.inputs.exporter_patterns.clone();
            let targets = ctx
                .targets
                .iter()
                .map(|node| {
                    let addr = exporter_for(&ctx.monitoring, node);
                    Target {
                        subject: node.to_string(),
                        method: format!(
                            "HTTP GET http://{addr}/metrics, Prometheus text format (prometheus-parse); \
                             series naming keys of {} or clients are counted, never recorded",
                            if patterns.is_empty() { "no session pattern".to_string() } else { patterns.join(" ") }
                        ),
                        input: addr,
                    }
                })
                .collect();
            // A scrape is bounded by its own connect and read deadlines and
            // records an unreachable exporter as an observation; the probe
            // deadline is the safety net.
            per_target(
                ProbeId::Exporter,
                "exporter scrape",
                ctx.timeouts.probe(),
                targets,
                |addr| {
                    let (c, r) = (ctx.timeouts.connect(), ctx.timeouts.command());
                    let patterns = patterns.clone();
                    async move {
                        Ok(Observation::Exporter(
                            scrape_with(&addr, c, r, &patterns).await,
                        ))
                    }
                },
            )
            .await
        })
    }
}

/// Reads Prometheus's HTTP API.
pub(crate) struct PrometheusProbe;

impl Probe for PrometheusProbe {
    fn name(&self) -> ProbeId {
        ProbeId::Prometheus
    }

    fn run(&self, ctx: Arc<ProbeContext>) -> ProbeFuture {
        Box::pin(async move {
            let t0 = Instant::now();
            let item = |subject: String, method: String, result: Observed| Evidence {
                probe: ProbeId::Prometheus,
                subject,
                method,
                observed_at: Utc::now(),
                duration_ms: t0.elapsed().as_millis() as u64,
                result,
            };
            let Some(url) = ctx.monitoring.prometheus_url.clone() else {
                return vec![item(
                    "prometheus".into(),
                    "none".into(),
                    Observed::Failure(ProbeFailure::new(
                        FailureKind::NotConfigured,
                        "the environment's [monitoring] table has no prometheus_url, so whether \
                         Prometheus scrapes every node, alerts on the cluster and reaches an \
                         Alertmanager is not audited",
                    )),
                )];
            };
            let method = format!(
                "HTTP GET {} (with {:?}): {}, {}, {}, {} ({} where scrapeInterval is absent), \
                 then /-/ready of each Alertmanager",
                url,
                ctx.prometheus_auth,
                endpoint::TARGETS,
                endpoint::RULES,
                endpoint::ALERTMANAGERS,
                endpoint::RUNTIME,
                endpoint::CONFIG
            );
            let expected: BTreeMap<String, String> = ctx
                .targets
                .iter()
                .map(|n| (n.to_string(), exporter_for(&ctx.monitoring, n)))
                .collect();
            let api = Api {
                base: url.clone(),
                auth: ctx.prometheus_auth.clone(),
                tls: Some(ctx.tls.config.clone()),
                limits: Limits {
                    connect: ctx.timeouts.connect(),
                    read: ctx.timeouts.command(),
                    max_body: MAX_API,
                },
            };
            let result =
                match tokio::time::timeout(ctx.timeouts.probe(), observe(&api, expected)).await {
                    Ok(v) => Observed::Observation(Observation::Prometheus(Box::new(v))),
                    Err(_) => Observed::Failure(ProbeFailure::new(
                        FailureKind::Deadline,
                        format!(
                        "{url}: the Prometheus API did not answer in full within probe_ms ({} ms)",
                        ctx.timeouts.probe_ms
                    ),
                    )),
                };
            vec![item(url.to_string(), method, result)]
        })
    }
}

/// How to reach one Prometheus.
pub struct Api {
    /// Base URL.
    pub base: HttpUrl,
    /// Credentials.
    pub auth: HttpAuth,
    /// TLS client config for https (the environment's CA).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Deadlines and body cap per request.
    pub limits: Limits,
}

impl Api {
    /// GET `path` and return its `data`, or why not (naming the URL).
    pub async fn data(&self, path: &str) -> Result<(Value, Reply), String> {
        let url = self.base.join(path);
        let reply = http::get(
            &self.base,
            path,
            &self.auth,
            self.tls.as_ref(),
            &self.limits,
        )
        .await
        .map_err(|e| format!("{url}: {e}"))?;
        match reply.status {
            200 => {}
            401 | 403 => {
                return Err(format!(
                    "{url}: {} (Prometheus refused the audit's credentials: set or correct \
                     prometheus_token, or prometheus_user and prometheus_password, in the \
                     environment's [monitoring] table)",
                    reply.status_text()
                ))
            }
            _ => {
                return Err(format!(
                    "{url}: {} ({})",
                    reply.status_text(),
                    reply.described()
                ))
            }
        }
        let json: Value = serde_json::from_slice(&reply.body).map_err(|_| {
            format!(
                "{url}: answered {}, not the JSON of Prometheus's HTTP API (is prometheus_url \
                 the server's base URL, e.g. http://prometheus:9090?)",
                reply.described()
            )
        })?;
        if json["status"] != "success" {
            let said = |k: &str| {
                json[k]
                    .as_str()
                    .map(|s| s.chars().take(200).collect::<String>())
                    .unwrap_or_default()
            };
            return Err(format!(
                "{url}: Prometheus answered status {}: {} {}",
                json["status"],
                said("errorType"),
                said("error")
            ));
        }
        Ok((json["data"].clone(), reply))
    }
}

/// Reads every section; one that cannot be read is recorded in `errors`.
pub async fn observe(api: &Api, expected: BTreeMap<String, String>) -> PrometheusView {
    let mut v = PrometheusView {
        url: api.base.to_string(),
        expected,
        ..Default::default()
    };
    let (targets, rules, ams, runtime) = tokio::join!(
        api.data(endpoint::TARGETS),
        api.data(endpoint::RULES),
        api.data(endpoint::ALERTMANAGERS),
        api.data(endpoint::RUNTIME),
    );
    match targets {
        Ok((data, reply)) => {
            v.server_time = reply.server_time().map(|t| t.to_rfc3339());
            read_targets(&mut v, &data);
            if v.targets.iter().any(|t| t.interval_s.is_none()) {
                match api.data(endpoint::CONFIG).await {
                    Ok((data, _)) => {
                        let jobs = scrape_intervals(data["yaml"].as_str().unwrap_or(""));
                        for t in v.targets.iter_mut().filter(|t| t.interval_s.is_none()) {
                            if let Some(i) = jobs.get(&t.job) {
                                t.interval_s = Some(*i);
                                t.interval_from = Some(IntervalSource::Config);
                            }
                        }
                    }
                    Err(e) => {
                        v.errors.insert(endpoint::CONFIG.into(), e);
                    }
                }
            }
        }
        Err(e) => {
            v.errors.insert(endpoint::TARGETS.into(), e);
        }
    }
    match rules {
        Ok((data, _)) => v.rules = read_rules(&data),
        Err(e) => {
            v.errors.insert(endpoint::RULES.into(), e);
        }
    }
    match ams {
        Ok((data, _)) => {
            let urls: Vec<String> = data["activeAlertmanagers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m["url"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let asks = urls.into_iter().map(|u| ask_ready(api, u));
            v.alertmanagers = futures_util::future::join_all(asks).await;
        }
        Err(e) => {
            v.errors.insert(endpoint::ALERTMANAGERS.into(), e);
        }
    }
    match runtime {
        Ok((data, _)) => {
            v.reload_config_success = data["reloadConfigSuccess"].as_bool();
            v.last_config_time = data["lastConfigTime"].as_str().map(str::to_string);
        }
        Err(e) => {
            v.errors.insert(endpoint::RUNTIME.into(), e);
        }
    }
    v
}

fn read_targets(v: &mut PrometheusView, data: &Value) {
    let relevant = |t: &ScrapeTarget| v.expected.iter().any(|(n, e)| t.scrapes(n, e));
    let mut kept = Vec::new();
    for t in data["activeTargets"].as_array().into_iter().flatten() {
        let s = |k: &str| t[k].as_str().unwrap_or("").to_string();
        let interval = t["scrapeInterval"]
            .as_str()
            .and_then(crate::evidence::prom_duration_s);
        let target = ScrapeTarget {
            scrape_url: s("scrapeUrl"),
            instance: t["labels"]["instance"].as_str().unwrap_or("").to_string(),
            job: t["labels"]["job"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| s("scrapePool")),
            health: s("health").into(),
            last_error: s("lastError"),
            last_scrape: s("lastScrape"),
            interval_s: interval,
            interval_from: interval.map(|_| IntervalSource::Targets),
        };
        if relevant(&target) {
            kept.push(target);
        }
    }
    v.targets = kept;
    let expected: Vec<&String> = v.expected.values().collect();
    v.dropped = data["droppedTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["discoveredLabels"]["__address__"].as_str())
        .filter(|a| expected.iter().any(|e| e.as_str() == *a))
        .take(MAX_DROPPED)
        .map(str::to_string)
        .collect();
}

fn read_rules(data: &Value) -> Vec<AlertRule> {
    use sha2::{Digest, Sha256};
    let mut out = Vec::new();
    for g in data["groups"].as_array().into_iter().flatten() {
        let group = g["name"].as_str().unwrap_or("").to_string();
        let interval = g["interval"].as_f64();
        for r in g["rules"].as_array().into_iter().flatten() {
            if r["type"].as_str().is_some_and(|t| t != "alerting") {
                continue;
            }
            let query = r["query"].as_str().unwrap_or("");
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            out.push(AlertRule {
                group: group.clone(),
                name: s("name"),
                query_sha256: hex::encode(Sha256::digest(query.as_bytes())),
                metrics: crate::evidence::promql_metrics(query),
                health: s("health").into(),
                last_error: s("lastError"),
                last_evaluation: s("lastEvaluation"),
                interval_s: interval,
            });
        }
    }
    out
}

/// Asks one Alertmanager (as Prometheus names it, `.../api/v2/alerts`)
/// whether it is ready, with the same deadlines and no credentials.
async fn ask_ready(api: &Api, url: String) -> AlertmanagerView {
    let base = url
        .trim_end_matches('/')
        .trim_end_matches("/api/v2/alerts")
        .trim_end_matches("/api/v1/alerts")
        .to_string();
    let asked = format!("{base}/-/ready");
    let mut view = AlertmanagerView {
        url,
        asked: asked.clone(),
        ready: false,
        answer: String::new(),
    };
    let parsed = match HttpUrl::parse(&base) {
        Ok(b) => b,
        Err(e) => {
            view.answer = e;
            return view;
        }
    };
    let limits = Limits {
        max_body: 64 * 1024,
        ..api.limits.clone()
    };
    match http::get(
        &parsed,
        "/-/ready",
        &HttpAuth::None,
        api.tls.as_ref(),
        &limits,
    )
    .await
    {
        Ok(r) => {
            view.ready = r.status == 200;
            view.answer = r.status_text();
        }
        Err(e) => view.answer = e.to_string(),
    }
    view
}

/// Each job's scrape interval (seconds) in the YAML Prometheus renders at
/// `/api/v1/status/config` (its own canonical form: two-space indents, a
/// `global:` block, `scrape_configs:` as a list of `- job_name:` maps),
/// the global interval where a job sets none.
pub fn scrape_intervals(yaml: &str) -> BTreeMap<String, f64> {
    let mut global = 60.0; // Prometheus's default
    let mut section = "";
    let mut jobs: Vec<(String, Option<f64>)> = Vec::new();
    for line in yaml.lines() {
        if !line.starts_with(' ') && !line.starts_with('-') {
            section = line.trim_end_matches(':').trim();
            continue;
        }
        let t = line.trim_start();
        let indent = line.len() - t.len();
        match section {
            "global" if indent == 2 => {
                if let Some(v) = t.strip_prefix("scrape_interval:") {
                    global = crate::evidence::prom_duration_s(v).unwrap_or(global);
                }
            }
            "scrape_configs" => {
                if let Some(name) = t.strip_prefix("- job_name:") {
                    if indent == 0 {
                        jobs.push((name.trim().trim_matches(['"', '\'']).to_string(), None));
                    }
                } else if indent == 2 {
                    if let (Some(v), Some(j)) =
                        (t.strip_prefix("scrape_interval:"), jobs.last_mut())
                    {
                        j.1 = crate::evidence::prom_duration_s(v);
                    }
                }
            }
            _ => {}
        }
    }
    jobs.into_iter()
        .map(|(j, i)| (j, i.unwrap_or(global)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn intervals_from_the_rendered_config() {
        let yaml = "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\nalerting:\n  alertmanagers:\n  - scheme: http\nscrape_configs:\n- job_name: prometheus\n  honor_timestamps: true\n  metrics_path: /metrics\n- job_name: redis\n  scrape_interval: 5m\n  static_configs:\n  - targets:\n    - 10.0.1.102:9121\n";
        let j = scrape_intervals(yaml);
        assert_eq!(j.get("prometheus"), Some(&15.0));
        assert_eq!(j.get("redis"), Some(&300.0));
    }

    #[tokio::test]
    async fn scrape_parses_metrics_and_reports_http_errors() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            for body in [
                "redis_up 1\nredis_cluster_state 1\nredis_exporter_last_scrape_error{err=\"\"} 0\n",
                "",
            ] {
                let (mut s, _) = l.accept().await.unwrap();
                let mut b = [0u8; 1024];
                let _ = s.read(&mut b).await;
                let resp = if body.is_empty() {
                    "HTTP/1.0 500 Internal Server Error\r\n\r\n".to_string()
                } else {
                    format!("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n# TYPE redis_up gauge\n{body}")
                };
                let _ = s.write_all(resp.as_bytes()).await;
            }
        });
        let d = std::time::Duration::from_secs(2);
        let v = scrape(&addr, d, d).await;
        assert!(v.reachable, "{v:?}");
        assert_eq!(v.metrics.get("redis_up"), Some(&1.0));
        assert_eq!(
            v.metrics.get("redis_exporter_last_scrape_error"),
            Some(&0.0)
        );
        let v = scrape(&addr, d, d).await;
        assert!(
            !v.reachable && v.error.as_deref().unwrap().contains("500"),
            "{v:?}"
        );
        let v = scrape("127.0.0.1:1", d, d).await;
        assert!(!v.reachable && v.error.as_deref().unwrap().contains("cannot connect"));
    }
}
