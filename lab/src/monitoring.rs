//! The lab's monitoring instance: Debian's Prometheus scraping every
//! node's exporter and evaluating the rules of `lab/monitoring/rules.yml`,
//! and an Alertmanager it sends alerts to. Both on 127.0.0.1 (Prometheus
//! on port + [`PROMETHEUS_OFFSET`], 9090 for the standard lab; Alertmanager
//! on port + [`ALERTMANAGER_OFFSET`], 9093), Alertmanager's cluster
//! listener off, stopped by pid with the lab.
//!
//! Variants for tests rewrite the configuration and reload it (SIGHUP), so
//! one lab shows one defect at a time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process::{gone, reap};
use crate::{io, Lab, LabError, LabService, EXPORTER_OFFSET};

/// Prometheus's port = node port + this (6379 -> 9090).
pub const PROMETHEUS_OFFSET: u16 = 2711;
/// Alertmanager's port = node port + this (6379 -> 9093).
pub const ALERTMANAGER_OFFSET: u16 = 2714;

/// The alerting rules the lab's Prometheus loads: one per condition MON-004
/// asks for.
pub const RULES: &str = include_str!("../monitoring/rules.yml");

/// The alert of [`RULES`] that tells of a node down.
pub const NODE_DOWN_ALERT: &str = "RedisDown";

/// How a test changes the lab's monitoring (each one defect of MON-003 to
/// MON-005).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitoringConfig {
    /// Node indexes whose exporters are left out of the scrape job.
    pub left_out: Vec<usize>,
    /// The scrape interval (`5s` by default).
    pub scrape_interval: String,
    /// Drop the node-down rule from the rules file.
    pub without_node_down_rule: bool,
    /// No `alerting` section: alerts go nowhere.
    pub without_alertmanager: bool,
}

impl MonitoringConfig {
    /// The lab's own: every exporter every 5 s, every rule, the Alertmanager.
    pub fn good() -> Self {
        MonitoringConfig {
            scrape_interval: "5s".into(),
            ..Default::default()
        }
    }

    /// The rules file this configuration writes.
    fn rules(&self) -> String {
        if self.without_node_down_rule {
            without_rule(RULES, NODE_DOWN_ALERT)
        } else {
            RULES.to_string()
        }
    }
}

/// Why Prometheus does not run a configuration yet.
enum NotYet {
    /// It still reports the reload time it had before the SIGHUP.
    NotReloaded,
    /// Anything else (targets, rules, Alertmanager), in words.
    Other(String),
}

impl From<String> for NotYet {
    fn from(s: String) -> Self {
        NotYet::Other(s)
    }
}

impl std::fmt::Display for NotYet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotYet::NotReloaded => f.write_str("the new configuration is not loaded yet"),
            NotYet::Other(s) => f.write_str(s),
        }
    }
}

fn find(names: &[&str]) -> Option<PathBuf> {
    names.iter().map(PathBuf::from).find(|p| p.is_file())
}

impl Lab {
    /// Prometheus's base URL.
    pub fn prometheus_url(&self) -> String {
        match &self.spec.compose {
            Some(c) => format!("http://{}:9090", c.monitoring_ip()),
            None => format!("http://127.0.0.1:{}", self.spec.port + PROMETHEUS_OFFSET),
        }
    }

    fn monitoring_dir(&self) -> PathBuf {
        self.spec.dir.join("monitoring")
    }

    /// The exporters' addresses as Prometheus scrapes them.
    fn exporter_targets(&self) -> Vec<String> {
        (0..self.spec.ips.len())
            .map(|i| match &self.spec.compose {
                Some(_) => format!("{}:9121", self.spec.ips[i]),
                None => format!("{}:{}", self.spec.ips[i], self.spec.port + EXPORTER_OFFSET),
            })
            .collect()
    }

    /// Writes prometheus.yml, rules.yml and alertmanager.yml for `cfg`
    /// into the monitoring directory (`dir_seen` is that directory as the
    /// process sees it: itself, or a container's mount point).
    pub(crate) fn write_monitoring_files(
        &self,
        cfg: &MonitoringConfig,
        dir_seen: &str,
        alertmanager: &str,
    ) -> Result<(), LabError> {
        let dir = self.monitoring_dir();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let targets: Vec<String> = self
            .exporter_targets()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !cfg.left_out.contains(i))
            .map(|(_, t)| format!("          - '{t}'"))
            .collect();
        let alerting = if cfg.without_alertmanager {
            String::new()
        } else {
            format!(
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{alertmanager}']\n"
            )
        };
        let prom = format!(
            "# epic-audit lab Prometheus (TEST ONLY), written by epic-audit-lab\n\
             global:\n  scrape_interval: {si}\n  evaluation_interval: 5s\n\
             {alerting}\
             rule_files:\n  - {dir_seen}/rules.yml\n\
             scrape_configs:\n  - job_name: redis\n    static_configs:\n      - targets:\n{targets}\n",
            si = cfg.scrape_interval,
            targets = if targets.is_empty() {
                "          []".to_string()
            } else {
                targets.join("\n")
            },
        );
        let rules = cfg.rules();
        let am = "# epic-audit lab Alertmanager (TEST ONLY): one receiver, which sends nowhere.\n\
                  route:\n  receiver: on-call\nreceivers:\n  - name: on-call\n";
        for (name, text) in [
            ("prometheus.yml", prom.as_str()),
            ("rules.yml", rules.as_str()),
            ("alertmanager.yml", am),
        ] {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(io(&p))?;
        }
        Ok(())
    }

    /// Starts Alertmanager and Prometheus on 127.0.0.1 and waits until
    /// Prometheus scrapes every exporter and has evaluated every rule.
    pub(crate) async fn start_monitoring(&mut self) -> Result<(), LabError> {
        let prometheus = find(&["/usr/bin/prometheus"]).ok_or(LabError::NoMonitoring)?;
        let alertmanager = find(&["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"])
            .ok_or(LabError::NoMonitoring)?;
        let dir = self.monitoring_dir();
        let am_listen = format!("127.0.0.1:{}", self.spec.port + ALERTMANAGER_OFFSET);
        let prom_listen = format!("127.0.0.1:{}", self.spec.port + PROMETHEUS_OFFSET);
        self.write_monitoring_files(
            &MonitoringConfig::good(),
            &dir.display().to_string(),
            &am_listen,
        )?;
        for d in ["am-data", "prom-data"] {
            std::fs::create_dir_all(dir.join(d)).map_err(io(&dir))?;
        }
        let am_args: Vec<String> = vec![
            format!("--config.file={}", dir.join("alertmanager.yml").display()),
            format!("--storage.path={}", dir.join("am-data").display()),
            format!("--web.listen-address={am_listen}"),
            // No gossip listener (it would bind every address).
            "--cluster.listen-address=".into(),
            "--log.level=warn".into(),
        ];
        self.spawn_service(&alertmanager, &am_args, &am_listen, "alertmanager.log")?;
        let prom_args: Vec<String> = vec![
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
            format!("--web.listen-address={prom_listen}"),
            "--storage.tsdb.retention.time=2h".into(),
            "--log.level=warn".into(),
        ];
        self.spawn_service(&prometheus, &prom_args, &prom_listen, "prometheus.log")?;
        self.write_state()?;
        self.wait_monitoring(&MonitoringConfig::good(), None).await
    }

    fn spawn_service(
        &mut self,
        bin: &Path,
        args: &[String],
        listen: &str,
        log: &str,
    ) -> Result<(), LabError> {
        let dir = self.monitoring_dir();
        let pid = self.spawn_logged(bin, args, &dir, log)?;
        // The name the kernel shows once it has exec'd (15 bytes at most).
        let comm = bin
            .file_name()
            .map(|n| n.to_string_lossy().chars().take(15).collect())
            .unwrap_or_default();
        self.state.monitoring.push(LabService {
            listen: listen.to_string(),
            pid,
            dir,
            comm,
        });
        Ok(())
    }

    /// Applies `cfg` to the running Prometheus (rewrite, SIGHUP) and waits
    /// until it runs it: reloaded, the expected targets scraped and the
    /// rules evaluated.
    pub async fn set_monitoring(&self, cfg: &MonitoringConfig) -> Result<(), LabError> {
        let before = self.prometheus_get("/api/v1/status/runtimeinfo").await;
        let before = before
            .ok()
            .and_then(|d| d["lastConfigTime"].as_str().map(str::to_string));
        let (dir_seen, am) = match &self.spec.compose {
            Some(c) => (
                "/lab/monitoring".to_string(),
                format!("{}:9093", c.alertmanager_ip()),
            ),
            None => (
                self.monitoring_dir().display().to_string(),
                format!("127.0.0.1:{}", self.spec.port + ALERTMANAGER_OFFSET),
            ),
        };
        self.write_monitoring_files(cfg, &dir_seen, &am)?;
        // Prometheus reports the reload time in whole seconds: a reload in
        // the same second as the one before would look like no reload.
        if let Some(b) = before.as_deref().and_then(parse_time) {
            let next = b + chrono::Duration::seconds(1);
            let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait.min(Duration::from_secs(2))).await;
        }
        self.reload_prometheus()?;
        self.wait_monitoring(cfg, before).await
    }

    /// Asks the lab's Prometheus to reload its files (SIGHUP).
    fn reload_prometheus(&self) -> Result<(), LabError> {
        match &self.spec.compose {
            Some(_) => {
                self.compose_state().run(
                    &self.spec.dir,
                    &["kill", "-s", "SIGHUP", "prometheus"],
                    Duration::from_secs(30),
                )?;
            }
            None => {
                let p = self
                    .state
                    .monitoring
                    .iter()
                    .find(|s| s.comm == "prometheus")
                    .ok_or(LabError::Step {
                        step: "reloading Prometheus".into(),
                        detail: "the lab runs no Prometheus".into(),
                    })?;
                // SAFETY: our own child.
                unsafe { libc::kill(p.pid as libc::pid_t, libc::SIGHUP) };
            }
        }
        Ok(())
    }

    /// Waits until Prometheus again scrapes every exporter up (after a node
    /// or exporter restarted) and has evaluated every rule.
    pub async fn wait_scraped(&self) -> Result<(), LabError> {
        self.wait_monitoring(&MonitoringConfig::good(), None).await
    }

    /// GET `path` of the lab's Prometheus API: its `data`.
    pub async fn prometheus_get(&self, path: &str) -> Result<serde_json::Value, String> {
        let api = epic_audit::probes::monitoring::Api {
            base: epic_audit::http::HttpUrl::parse(&self.prometheus_url())?,
            auth: Default::default(),
            tls: None,
            limits: epic_audit::http::Limits {
                connect: Duration::from_secs(1),
                read: Duration::from_secs(3),
                max_body: 16 << 20,
            },
        };
        api.data(path).await.map(|(d, _)| d)
    }

    /// Waits (30 s at most) until Prometheus answers with a configuration
    /// other than `before`, scrapes the exporters `cfg` keeps (up, at
    /// `cfg`'s interval), no longer scrapes those it leaves out, has
    /// evaluated every rule, and sees its Alertmanager (if any).
    pub(crate) async fn wait_monitoring(
        &self,
        cfg: &MonitoringConfig,
        before: Option<String>,
    ) -> Result<(), LabError> {
        let t0 = Instant::now();
        let want: Vec<String> = self
            .exporter_targets()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !cfg.left_out.contains(i))
            .map(|(_, t)| t)
            .collect();
        let mut last;
        let mut hup_at = Instant::now();
        loop {
            match self.monitoring_state(cfg, &want, before.as_deref()).await {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
            // A SIGHUP that left the reload time where it was is sent
            // again (reloading the same files twice is harmless).
            if matches!(last, NotYet::NotReloaded) && hup_at.elapsed() > Duration::from_secs(5) {
                self.reload_prometheus()?;
                hup_at = Instant::now();
            }
            let exited = self.state.monitoring.iter().find(|s| gone(s.pid));
            if t0.elapsed() > Duration::from_secs(40) || exited.is_some() {
                let logs: Vec<String> = ["prometheus.log", "alertmanager.log"]
                    .iter()
                    .map(|l| {
                        let text = std::fs::read_to_string(self.monitoring_dir().join(l))
                            .unwrap_or_default();
                        let tail: Vec<&str> = text.lines().rev().take(5).collect();
                        format!(
                            "--- {l}\n{}",
                            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                        )
                    })
                    .collect();
                return Err(LabError::Step {
                    step: "starting the monitoring (Prometheus, Alertmanager)".into(),
                    detail: format!(
                        "{}{last}\n{}",
                        exited
                            .map(|s| format!("{} exited; ", s.comm))
                            .unwrap_or_default(),
                        logs.join("\n")
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn monitoring_state(
        &self,
        cfg: &MonitoringConfig,
        want: &[String],
        before: Option<&str>,
    ) -> Result<(), NotYet> {
        let rt = self.prometheus_get("/api/v1/status/runtimeinfo").await?;
        if rt["reloadConfigSuccess"] != true {
            return Err("the configuration reload failed".to_string().into());
        }
        let now = rt["lastConfigTime"].as_str().map(str::to_string);
        if before.is_some() && now.as_deref() == before {
            return Err(NotYet::NotReloaded);
        }
        let targets = self.prometheus_get("/api/v1/targets?state=active").await?;
        let active: Vec<&serde_json::Value> = targets["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        for w in want {
            let t = active
                .iter()
                .find(|t| t["labels"]["instance"] == w.as_str())
                .ok_or_else(|| format!("{w} is not a target yet"))?;
            // A long interval's first scrape may be minutes away.
            let health_ok = t["health"] == "up" || cfg.scrape_interval != "5s";
            if !health_ok || t["scrapeInterval"] != cfg.scrape_interval.as_str() {
                return Err(format!(
                    "{w}: health {}, interval {}",
                    t["health"], t["scrapeInterval"]
                )
                .into());
            }
        }
        if active.len() != want.len() {
            return Err(format!("{} targets, want {}", active.len(), want.len()).into());
        }
        let rules = self.prometheus_get("/api/v1/rules?type=alert").await?;
        let mut loaded = Vec::new();
        for g in rules["groups"].as_array().into_iter().flatten() {
            for r in g["rules"].as_array().into_iter().flatten() {
                loaded.push(r["name"].as_str().unwrap_or_default().to_string());
                let t = r["lastEvaluation"].as_str().unwrap_or("");
                if t.starts_with("0001") || t.is_empty() {
                    return Err(format!("rule {} not evaluated yet", r["name"]).into());
                }
                if let (Some(_), Some(reloaded_at)) = (before, now.as_deref()) {
                    if parse_time(t) < parse_time(reloaded_at) {
                        return Err(
                            format!("rule {} not evaluated since the reload", r["name"]).into()
                        );
                    }
                }
            }
        }
        // The rules file's content, not only its reload time: a reload
        // that kept the old rules is not this configuration.
        loaded.sort();
        let mut want_rules = alert_names(&cfg.rules());
        want_rules.sort();
        if loaded != want_rules {
            return Err(format!("rules loaded {loaded:?}, want {want_rules:?}").into());
        }
        let ams = self.prometheus_get("/api/v1/alertmanagers").await?;
        let count = ams["activeAlertmanagers"].as_array().map_or(0, Vec::len);
        if count != usize::from(!cfg.without_alertmanager) {
            return Err(format!("{count} Alertmanager(s)").into());
        }
        Ok(())
    }

    /// Restarts node `i`'s exporter the way redis_exporter's README and
    /// habit suggest: as the administrator, with `-check-keys` on the
    /// session namespace (MON-006's and MON-007's defect).
    pub async fn leaky_exporter(&mut self, i: usize) -> Result<(), LabError> {
        self.kill_exporter(i);
        let pki = self.spec.dir.join("pki");
        let pattern = self.spec.names.session_pattern();
        let admin = self.spec.names.admin.clone();
        let extra = ["-check-keys".to_string(), pattern];
        let svc = self.spawn_exporter(i, &pki, &admin, &extra)?;
        self.state.exporters[i] = svc;
        self.write_state()?;
        let listen = self.state.exporters[i].listen.clone();
        let pid = self.state.exporters[i].pid;
        self.wait_exporters(&[listen], &[pid]).await
    }

    /// Kills the lab's Prometheus and Alertmanager (a monitoring outage).
    pub fn kill_monitoring(&self) {
        if self.state.compose.is_some() {
            let _ = self.compose_service("kill", "prometheus");
            let _ = self.compose_service("kill", "alertmanager");
            return;
        }
        for s in &self.state.monitoring {
            if !gone(s.pid) {
                // SAFETY: our own child.
                unsafe { libc::kill(s.pid as libc::pid_t, libc::SIGKILL) };
            }
            reap([s.pid]);
        }
    }
}

/// A time as Prometheus's API writes it (RFC 3339).
fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The alert a rules-file line opens (`- alert: NAME`), if it opens one.
fn alert_of(line: &str) -> Option<&str> {
    line.trim_start().strip_prefix("- alert:").map(str::trim)
}

/// The alert names a rules file defines (its `- alert:` lines).
fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(alert_of)
        .map(str::to_string)
        .collect()
}

/// `rules` without the rule of alert `name` (the lab file's layout: each
/// rule starts with `      - alert: NAME` and runs to the next).
fn without_rule(rules: &str, name: &str) -> String {
    let mut out = Vec::new();
    let mut skipping = false;
    for line in rules.lines() {
        if let Some(a) = alert_of(line) {
            skipping = a == name;
        } else if !line.starts_with("      ") {
            skipping = false;
        }
        if !skipping {
            out.push(line);
        }
    }
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_down_rule_can_be_left_out() {
        assert!(RULES.contains(&format!("- alert: {NODE_DOWN_ALERT}")));
        let w = without_rule(RULES, NODE_DOWN_ALERT);
        assert!(!w.contains(NODE_DOWN_ALERT), "{w}");
        assert!(!w.contains("redis_up"), "{w}");
        let (all, left) = (alert_names(RULES), alert_names(&w));
        assert_eq!(all.len(), left.len() + 1, "{all:?} {left:?}");
        assert!(all.iter().any(|a| a == NODE_DOWN_ALERT), "{all:?}");
        assert!(w.contains("- alert: RedisClusterStateNotOk"), "{w}");
    }
}
