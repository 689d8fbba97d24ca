//! What the monitoring probes saw: Prometheus's scrape targets, alerting
//! rules, Alertmanagers and configuration reload, and what an exporter's
//! /metrics exposes beyond health.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// What an exporter's /metrics exposes that it should not: series naming
/// keys of the session pattern (key names are bearer tokens) and series
/// naming clients. Counts and metric names only: never a key, a value or
/// an address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExporterLeaks {
    /// Series read in all.
    pub series: u64,
    /// Series with a label value matching a session pattern.
    pub session_key_series: u64,
    /// Their metric names (`redis_key_size`, `redis_key_value_as_string`).
    pub session_key_metrics: BTreeSet<String>,
    /// Series with a `key` label outside the session patterns.
    pub other_key_series: u64,
    /// Series with a per-client address label (`host`, `addr`, `laddr`,
    /// `ip`), as `-export-client-list` writes.
    pub client_series: u64,
    /// Their metric names.
    pub client_metrics: BTreeSet<String>,
    /// The session patterns matched against.
    pub patterns: Vec<String>,
}

server_words! {
    /// A scrape target's `health`, as Prometheus's targets API says it.
    TargetHealth {
        /// The last scrape succeeded.
        Up = "up",
        /// The last scrape failed.
        Down = "down",
        /// Not scraped yet.
        Unknown = "unknown",
    }
}

server_words! {
    /// An alerting rule's `health`, as Prometheus's rules API says it.
    RuleHealth {
        /// The last evaluation succeeded.
        Ok = "ok",
        /// The last evaluation failed.
        Err = "err",
        /// Not evaluated yet.
        Unknown = "unknown",
    }
}

/// Where a target's scrape interval was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntervalSource {
    /// The targets API's `scrapeInterval`.
    Targets,
    /// The job's `scrape_interval` in `/api/v1/status/config` (Prometheus
    /// before 2.35).
    Config,
}

impl std::fmt::Display for IntervalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IntervalSource::Targets => "targets",
            IntervalSource::Config => "config",
        })
    }
}

/// One scrape target as Prometheus's `/api/v1/targets` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScrapeTarget {
    /// `scrapeUrl`.
    pub scrape_url: String,
    /// The `instance` label.
    pub instance: String,
    /// The `job` label (`scrapePool` where absent).
    pub job: String,
    /// `health`.
    pub health: TargetHealth,
    /// `lastError` (empty when the last scrape succeeded).
    pub last_error: String,
    /// `lastScrape` (RFC 3339; Prometheus writes year 1 before the first).
    pub last_scrape: String,
    /// The scrape interval in seconds, where known.
    pub interval_s: Option<f64>,
    /// Where the interval was read (absent when it is not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_from: Option<IntervalSource>,
}

/// One alerting rule as `/api/v1/rules?type=alert` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    /// The rule group.
    pub group: String,
    /// `name` (the alert).
    pub name: String,
    /// SHA-256 of `query` (the expression), so a report shows rule drift
    /// between runs without holding the expression.
    pub query_sha256: String,
    /// The metric names the expression uses (identifiers outside braces,
    /// strings and function calls).
    pub metrics: BTreeSet<String>,
    /// `health`.
    pub health: RuleHealth,
    /// `lastError`.
    pub last_error: String,
    /// `lastEvaluation` (RFC 3339).
    pub last_evaluation: String,
    /// The group's evaluation interval in seconds.
    pub interval_s: Option<f64>,
}

impl AlertRule {
    /// The first 12 hex digits of the expression's hash, as reports show it.
    pub fn short_hash(&self) -> &str {
        &self.query_sha256[..12.min(self.query_sha256.len())]
    }
}

/// One Alertmanager Prometheus sends alerts to, and whether it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertmanagerView {
    /// Its URL as Prometheus reports it (`.../api/v2/alerts`).
    pub url: String,
    /// The URL asked (`/-/ready` under the same base).
    pub asked: String,
    /// Whether it answered 200.
    pub ready: bool,
    /// What it answered or why not.
    pub answer: String,
}

/// What Prometheus's HTTP API said, one section per endpoint; a section
/// that could not be read holds why in `errors` (by endpoint path) and is
/// never judged as empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrometheusView {
    /// The API's base URL.
    pub url: String,
    /// The server's clock (`Date` of the targets answer), the time
    /// "recent" is measured against.
    pub server_time: Option<String>,
    /// Active targets.
    pub targets: Vec<ScrapeTarget>,
    /// `__address__` of targets relabelling dropped (at most 1000).
    pub dropped: Vec<String>,
    /// Alerting rules.
    pub rules: Vec<AlertRule>,
    /// Active Alertmanagers.
    pub alertmanagers: Vec<AlertmanagerView>,
    /// `reloadConfigSuccess` of `/api/v1/status/runtimeinfo`.
    pub reload_config_success: Option<bool>,
    /// `lastConfigTime`.
    pub last_config_time: Option<String>,
    /// Endpoint -> why it could not be read.
    pub errors: BTreeMap<String, String>,
    /// The exporter address each node is expected to be scraped at.
    pub expected: BTreeMap<String, String>,
}

/// The API endpoints, as keys of [`PrometheusView::errors`].
pub mod endpoint {
    /// Active and dropped targets.
    pub const TARGETS: &str = "/api/v1/targets";
    /// Alerting rules.
    pub const RULES: &str = "/api/v1/rules?type=alert";
    /// Alertmanagers.
    pub const ALERTMANAGERS: &str = "/api/v1/alertmanagers";
    /// Configuration reload state.
    pub const RUNTIME: &str = "/api/v1/status/runtimeinfo";
    /// The loaded configuration (YAML), for scrape intervals.
    pub const CONFIG: &str = "/api/v1/status/config";
}

impl ScrapeTarget {
    /// Whether this target scrapes the exporter at `exporter` (`host:port`)
    /// of the node `node` (`host:port`): its scrape URL's authority or its
    /// `instance` label is the exporter's address, or (redis_exporter's
    /// multi-target mode, `/scrape?target=...`) the node's address is the
    /// scrape URL's `target`, or its `instance` label is the node's.
    pub fn scrapes(&self, node: &str, exporter: &str) -> bool {
        let authority = self
            .scrape_url
            .split_once("://")
            .map(|(_, r)| r.split(['/', '?']).next().unwrap_or(""))
            .unwrap_or("");
        let target = self
            .scrape_url
            .split_once('?')
            .map(|(_, q)| {
                q.split('&')
                    .filter_map(|kv| kv.strip_prefix("target="))
                    .map(|v| {
                        v.replace("%3A", ":")
                            .replace("%3a", ":")
                            .replace("%2F", "/")
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        authority == exporter
            || self.instance == exporter
            || self.instance == node
            || target.iter().any(|t| {
                t.trim_start_matches("rediss://")
                    .trim_start_matches("redis://")
                    == node
            })
    }
}

/// The metric names a PromQL expression uses: identifiers outside string
/// literals, label matchers (`{...}`), range selectors (`[...]`) and
/// grouping lists (`by (...)`), that are not function names or keywords.
pub fn promql_metrics(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "offset",
        "bool",
        "inf",
        "nan",
        "atan2",
        // Aggregations, which may be followed by `by (...)` rather than `(`.
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    // Blank out strings, matchers and ranges, keeping positions.
    let mut clean = String::with_capacity(expr.len());
    let mut quote: Option<char> = None;
    let mut depth_brace = 0usize;
    let mut depth_bracket = 0usize;
    let mut escaped = false;
    for c in expr.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            clean.push(' ');
            continue;
        }
        match c {
            '"' | '\'' | '`' => {
                quote = Some(c);
                clean.push(' ');
            }
            '{' => {
                depth_brace += 1;
                clean.push(' ');
            }
            '}' => {
                depth_brace = depth_brace.saturating_sub(1);
                clean.push(' ');
            }
            '[' => {
                depth_bracket += 1;
                clean.push(' ');
            }
            ']' => {
                depth_bracket = depth_bracket.saturating_sub(1);
                clean.push(' ');
            }
            _ if depth_brace > 0 || depth_bracket > 0 => clean.push(' '),
            _ => clean.push(c),
        }
    }
    let bytes = clean.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut out = BTreeSet::new();
    let mut i = 0;
    let mut skip_group = false;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'(' && skip_group {
            // A grouping list: skip to its closing parenthesis.
            while i < bytes.len() && bytes[i] != b')' {
                i += 1;
            }
            skip_group = false;
            i += 1;
            continue;
        }
        if ident(b) && !b.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && ident(bytes[i]) {
                i += 1;
            }
            let word = &clean[start..i];
            let next = clean[i..].trim_start().as_bytes().first().copied();
            let lower = word.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) {
                skip_group = next == Some(b'(');
            } else if next != Some(b'(') && !KEYWORDS.contains(&lower.as_str()) {
                out.insert(word.to_string());
            }
            continue;
        }
        if b.is_ascii_digit() {
            // A number or a duration (5m, 1e3): not a name.
            while i < bytes.len() && ident(bytes[i]) {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    out
}

/// Seconds of a Prometheus duration (`30s`, `1m30s`, `5m`, `500ms`, `1h`).
pub fn prom_duration_s(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0.0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let v: f64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'y' => 365.0 * 86400.0,
            'w' => 7.0 * 86400.0,
            'd' => 86400.0,
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        total += v * unit;
    }
    if !num.is_empty() {
        return None;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promql_metric_names() {
        let m = |e: &str| promql_metrics(e).into_iter().collect::<Vec<_>>();
        assert_eq!(m(r#"redis_up{job="redis"} == 0"#), ["redis_up"]);
        assert_eq!(m("up == 0"), ["up"]);
        assert_eq!(
            m("redis_memory_used_bytes / redis_memory_max_bytes * 100 > 90 and on (instance) redis_memory_max_bytes > 0"),
            ["redis_memory_max_bytes", "redis_memory_used_bytes"]
        );
        assert_eq!(
            m(r#"increase(redis_rejected_connections_total{a="up"}[5m]) > 0"#),
            ["redis_rejected_connections_total"]
        );
        assert_eq!(
            m("sum by (job, instance) (redis_cluster_slots_fail) > 0"),
            ["redis_cluster_slots_fail"]
        );
        assert_eq!(m("vector(1)"), Vec::<String>::new());
        assert!(!promql_metrics("redis_uptime_in_seconds < 60").contains("redis_up"));
    }

    #[test]
    fn durations() {
        assert_eq!(prom_duration_s("30s"), Some(30.0));
        assert_eq!(prom_duration_s("5m"), Some(300.0));
        assert_eq!(prom_duration_s("1m30s"), Some(90.0));
        assert_eq!(prom_duration_s("500ms"), Some(0.5));
        assert_eq!(prom_duration_s("1h"), Some(3600.0));
        assert_eq!(prom_duration_s("abc"), None);
        assert_eq!(prom_duration_s("30"), None);
    }

    #[test]
    fn targets_match_nodes() {
        let t = |url: &str, inst: &str| ScrapeTarget {
            scrape_url: url.into(),
            instance: inst.into(),
            job: "redis".into(),
            health: TargetHealth::Up,
            last_error: String::new(),
            last_scrape: String::new(),
            interval_s: Some(30.0),
            interval_from: Some(IntervalSource::Targets),
        };
        let direct = t("http://10.0.1.102:9121/metrics", "10.0.1.102:9121");
        assert!(direct.scrapes("10.0.1.102:6379", "10.0.1.102:9121"));
        assert!(!direct.scrapes("10.0.1.10:6379", "10.0.1.10:9121"));
        let multi = t(
            "http://exporter:9121/scrape?target=rediss%3A%2F%2F10.0.2.27%3A6379",
            "exporter:9121",
        );
        assert!(multi.scrapes("10.0.2.27:6379", "10.0.2.27:9121"));
        assert!(!multi.scrapes("10.0.2.2:6379", "10.0.2.2:9121"));
    }
}
