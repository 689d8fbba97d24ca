//! Monitoring you can prove (MON-003 to MON-006): Prometheus scrapes every
//! node's exporter often enough, its alerting rules cover the conditions an
//! on-call team must hear about, its alerts reach an Alertmanager, and no
//! exporter publishes session key names or client addresses. (MON-001 and
//! MON-002 are in `data.rs`; MON-007, the exporters' ACL user, is the
//! permission matrix of `permissions.rs`.)

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::reason::{reasons, Common};
use super::rule::{
    first_of, joined, per_subject, unless_unconfigured, NoParams, Rule, SubjectFinding,
};
use crate::evidence::{
    endpoint, EvidenceSet, ExporterView, Observation, ProbeId, PrometheusView, RuleHealth,
    TargetHealth,
};

reasons! {
    /// Why a subject got its outcome in the Prometheus and exporter-leak checks (MON-003 to MON-006).
    Monitoring => Why {
        /// Prometheus scrapes the node's exporter, up, recently and often enough.
        Scraped = "scraped",
        /// No active target scrapes the node's exporter.
        NotScraped = "not-scraped",
        /// Relabelling dropped the node's exporter target.
        DroppedByRelabelling = "dropped-by-relabelling",
        /// The target's health is not `up`.
        TargetDown = "target-down",
        /// The last scrape failed (`lastError`).
        ScrapeError = "scrape-error",
        /// The scrape interval is longer than the policy allows.
        ScrapedTooRarely = "scraped-too-rarely",
        /// The last scrape is older than the policy's number of intervals.
        ScrapeStale = "scrape-stale",
        /// Neither the targets API nor the configuration gave an interval.
        IntervalUnknown = "interval-unknown",
        /// A section of Prometheus's API could not be read.
        ApiUnreadable = "api-unreadable",
        /// The environment names no Prometheus.
        NoPrometheus = "no-prometheus",
        /// A healthy, recently evaluated alerting rule covers the condition.
        ConditionCovered = "condition-covered",
        /// No alerting rule uses any metric that expresses the condition.
        ConditionUncovered = "condition-uncovered",
        /// The rules covering the condition are in error.
        RuleInError = "rule-in-error",
        /// The rules covering the condition were not evaluated recently.
        RuleNotEvaluated = "rule-not-evaluated",
        /// Every alerting rule is healthy (the inventory, for drift).
        RulesHealthy = "rules-healthy",
        /// Prometheus has no alerting rule at all.
        NoAlertRules = "no-alert-rules",
        /// The Alertmanager answers ready.
        AlertmanagerReady = "alertmanager-ready",
        /// The Alertmanager does not answer ready.
        AlertmanagerNotReady = "alertmanager-not-ready",
        /// Prometheus has no active Alertmanager.
        NoAlertmanager = "no-alertmanager",
        /// The last configuration reload succeeded.
        ConfigReloaded = "config-reloaded",
        /// The last configuration reload failed: Prometheus runs an older configuration.
        ConfigReloadFailed = "config-reload-failed",
        /// The exporter publishes no session key and no client.
        ExporterDiscreet = "exporter-discreet",
        /// Series name session keys (bearer tokens).
        SessionKeysExposed = "session-keys-exposed",
        /// Series name keys and no session pattern tells which are sessions.
        KeysExposed = "keys-exposed",
        /// Series carry per-client addresses.
        ClientAddressesExposed = "client-addresses-exposed",
        /// /metrics could not be read, so what it exposes is unknown.
        MetricsUnread = "metrics-unread",
        /// The evidence predates the leak count.
        LeaksNotRecorded = "leaks-not-recorded",
    }
}

const PROM_METHOD: &str = "HTTP GET of Prometheus's API at the environment's \
[monitoring] prometheus_url: /api/v1/targets (scrapeInterval, or the job's scrape_interval \
from /api/v1/status/config), /api/v1/rules?type=alert, /api/v1/alertmanagers and \
/api/v1/status/runtimeinfo; then /-/ready of each Alertmanager. Read-only; \"recent\" is \
measured against the server's own clock (its Date header).";

/// The Prometheus and exporter-leak rules.
pub(crate) fn rules() -> Vec<Rule> {
    vec![
        Rule::new(
            "monitoring.scraped",
            &[ProbeId::Prometheus],
            PROM_METHOD,
            scraped,
        ),
        Rule::new(
            "monitoring.alert_rules",
            &[ProbeId::Prometheus],
            PROM_METHOD,
            alert_rules,
        ),
        Rule::new(
            "monitoring.alertmanager",
            &[ProbeId::Prometheus],
            PROM_METHOD,
            alertmanager,
        ),
        Rule::new(
            "monitoring.exporter_leaks",
            &[ProbeId::Exporter],
            "HTTP GET of each node's exporter /metrics; every series is read and those whose \
             label values match the policy's session pattern (DATA-005's), that carry a `key` \
             label, or a client address label (host, addr, laddr, ip) are counted by metric \
             name. No key, value or address is recorded.",
            exporter_leaks,
        ),
    ]
}

/// The Prometheus view, or the findings that say why there is none.
fn with_prometheus(
    ev: &EvidenceSet,
    expected: &str,
    f: impl FnMut(&str, &PrometheusView) -> Vec<SubjectFinding>,
) -> Vec<SubjectFinding> {
    let views = ev.views(ProbeId::Prometheus, |o| match o {
        Observation::Prometheus(v) => Some(v.as_ref()),
        _ => None,
    });
    unless_unconfigured(
        views,
        expected,
        |subject, fl| {
            SubjectFinding::incomplete(subject, Why::NoPrometheus)
                .observed("not audited: no prometheus_url in the environment's [monitoring] table")
                .message(format!(
                    "{} Set prometheus_url (and prometheus_token or prometheus_user and \
                     prometheus_password, by reference, if it needs them), or leave MON-003, \
                     MON-004 and MON-005 out of the verdict with --skip",
                    fl.message
                ))
        },
        f,
    )
}

/// The error finding for a section of the API that could not be read.
fn unreadable(
    subject: &str,
    expected: &str,
    v: &PrometheusView,
    ep: &str,
) -> Option<SubjectFinding> {
    v.errors.get(ep).map(|e| {
        SubjectFinding::error(subject, Why::ApiUnreadable)
            .observed(format!("{ep} unreadable"))
            .expected(expected)
            .message(format!("could not be checked: {e}"))
    })
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| t.timestamp() > 0)
}

/// Parameters of `monitoring.scraped`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScrapeParams {
    /// The longest scrape interval allowed, seconds.
    max_interval_s: f64,
    /// A last scrape older than this many intervals is stale.
    #[serde(default = "two")]
    stale_after_intervals: f64,
}

fn two() -> f64 {
    2.0
}

fn scraped(ev: &EvidenceSet, p: &ScrapeParams) -> Vec<SubjectFinding> {
    let expected = format!(
        "an active target scrapes the node's exporter: health up, no lastError, scrape interval at most {} s, last scrape within {} intervals",
        p.max_interval_s, p.stale_after_intervals
    );
    with_prometheus(ev, &expected, |_, v| {
        let now = v
            .server_time
            .as_deref()
            .and_then(parse_time)
            .unwrap_or(ev.started_at);
        // Every node the run discovered; one the probe did not look for
        // cannot pass.
        let mut nodes: Vec<(String, Option<String>)> = ev
            .targets
            .iter()
            .map(|n| (n.clone(), v.expected.get(n).cloned()))
            .collect();
        if nodes.is_empty() {
            nodes = v
                .expected
                .iter()
                .map(|(n, e)| (n.clone(), Some(e.clone())))
                .collect();
        }
        nodes
            .into_iter()
            .map(|(node, exporter)| {
                if let Some(f) = unreadable(&node, &expected, v, endpoint::TARGETS) {
                    return f;
                }
                let Some(exporter) = exporter else {
                    return SubjectFinding::error(&node, Common::MissingSubject)
                        .observed("not looked for")
                        .expected(expected.clone())
                        .message("the Prometheus probe did not look for this node's exporter");
                };
                scrape_finding(&node, &exporter, v, now, p, &expected)
            })
            .collect()
    })
}

fn scrape_finding(
    node: &str,
    exporter: &str,
    v: &PrometheusView,
    now: DateTime<Utc>,
    p: &ScrapeParams,
    expected: &str,
) -> SubjectFinding {
    let matched: Vec<_> = v
        .targets
        .iter()
        .filter(|t| t.scrapes(node, exporter))
        .collect();
    if matched.is_empty() {
        let (why, said) = if v.dropped.iter().any(|d| d == exporter) {
            (
                Why::DroppedByRelabelling,
                format!(
                    "{exporter} is among Prometheus's dropped targets: a relabel rule drops it"
                ),
            )
        } else {
            (
                Why::NotScraped,
                format!("no active target of Prometheus scrapes {exporter}"),
            )
        };
        return SubjectFinding::fail(node, why)
            .observed(format!("not scraped ({} targets of the cluster's exporters in all)", v.targets.len()))
            .expected(expected)
            .message(format!(
                "{said}: nobody would see this node go down. Add {exporter} to the scrape \
                 configuration of {} (or list the address Prometheus scrapes in [monitoring] exporters)",
                v.url
            ));
    }
    let mut problems = Vec::new();
    let mut observed = Vec::new();
    for t in &matched {
        // Stable between runs (no times), so `diff` shows only real changes.
        observed.push(format!(
            "{} job {} health {} interval {}",
            t.scrape_url,
            t.job,
            t.health,
            t.interval_s
                .map(|i| match t.interval_from {
                    Some(from) => format!("{i} s ({from})"),
                    None => format!("{i} s"),
                })
                .unwrap_or_else(|| "unknown".into()),
        ));
        problems.extend(target_problems(t, now, p));
    }
    let observed = observed.join("; ");
    if problems.is_empty() {
        return SubjectFinding::pass(node, Why::Scraped)
            .observed(observed)
            .expected(expected)
            .message(format!("{} scrapes {exporter} and reports it up", v.url));
    }
    let first = problems[0].0;
    let finding = if first == Why::IntervalUnknown {
        SubjectFinding::error(node, first)
    } else {
        SubjectFinding::fail(node, first)
    };
    finding
        .observed(observed)
        .expected(expected)
        .message(joined(&problems))
}

/// What is wrong with one target that scrapes the node's exporter.
fn target_problems(
    t: &crate::evidence::ScrapeTarget,
    now: DateTime<Utc>,
    p: &ScrapeParams,
) -> Vec<(Why, String)> {
    let mut problems = Vec::new();
    let interval = t.interval_s;
    // A configuration defect first: it is why the rest looks as it does.
    match interval {
        None => problems.push((
            Why::IntervalUnknown,
            format!(
                "the scrape interval of {} is not reported by {} nor found in {}",
                t.scrape_url,
                endpoint::TARGETS,
                endpoint::CONFIG
            ),
        )),
        Some(i) if i > p.max_interval_s => problems.push((
            Why::ScrapedTooRarely,
            format!(
                "{} is scraped every {i} s, the policy allows at most {} s",
                t.scrape_url, p.max_interval_s
            ),
        )),
        Some(_) => {}
    }
    let up = t.health == TargetHealth::Up;
    match &t.health {
        TargetHealth::Up => {}
        TargetHealth::Unknown => problems.push((
            Why::ScrapeStale,
            format!("{} has not been scraped yet (health unknown)", t.scrape_url),
        )),
        other @ (TargetHealth::Down | TargetHealth::Other(_)) => problems.push((
            Why::TargetDown,
            format!(
                "Prometheus reports {} {other}{}",
                t.scrape_url,
                if t.last_error.is_empty() {
                    String::new()
                } else {
                    format!(": {}", t.last_error)
                }
            ),
        )),
    }
    if up && !t.last_error.is_empty() {
        problems.push((
            Why::ScrapeError,
            format!(
                "the last scrape of {} failed: {}",
                t.scrape_url, t.last_error
            ),
        ));
    }
    if let (Some(i), true) = (interval, up) {
        match parse_time(&t.last_scrape) {
            None => problems.push((
                Why::ScrapeStale,
                format!("{} has never been scraped", t.scrape_url),
            )),
            Some(last) => {
                let age = (now - last).num_milliseconds() as f64 / 1000.0;
                if age > p.stale_after_intervals * i {
                    problems.push((
                        Why::ScrapeStale,
                        format!("the last scrape of {} was {age:.0} s ago, more than {} intervals of {i} s", t.scrape_url, p.stale_after_intervals),
                    ));
                }
            }
        }
    }
    problems
}

/// One condition an on-call team must be told about, and the metrics that
/// can express it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Condition {
    /// What it is (`a node down`).
    name: String,
    /// Metric names any one of which a rule's expression must use.
    metrics: Vec<String>,
}

/// Parameters of `monitoring.alert_rules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertRuleParams {
    /// The conditions.
    conditions: Vec<Condition>,
    /// A rule not evaluated within this many of its group's intervals is stale.
    #[serde(default = "two")]
    stale_after_intervals: f64,
}

fn alert_rules(ev: &EvidenceSet, p: &AlertRuleParams) -> Vec<SubjectFinding> {
    let expected_all = "every alerting rule healthy (name and expression hash recorded, for drift)";
    with_prometheus(ev, expected_all, |_, v| {
        let now = v
            .server_time
            .as_deref()
            .and_then(parse_time)
            .unwrap_or(ev.started_at);
        let mut out = Vec::new();
        if let Some(f) = unreadable("alerting rules", expected_all, v, endpoint::RULES) {
            out.push(f);
            for c in &p.conditions {
                let expected = format!("a healthy alerting rule on {}", c.metrics.join(" or "));
                out.extend(unreadable(&c.name, &expected, v, endpoint::RULES));
            }
            return out;
        }
        let inventory = v
            .rules
            .iter()
            .map(|r| {
                format!(
                    "{}/{} sha256:{} {}",
                    r.group,
                    r.name,
                    r.short_hash(),
                    r.health
                )
            })
            .collect::<Vec<_>>();
        let broken: Vec<String> = v
            .rules
            .iter()
            .filter(|r| r.health == RuleHealth::Err)
            .map(|r| format!("{} ({})", r.name, r.last_error))
            .collect();
        out.push(if v.rules.is_empty() {
            SubjectFinding::fail("alerting rules", Why::NoAlertRules)
                .observed("no alerting rule loaded")
                .expected(expected_all)
                .message(format!(
                    "{} has no alerting rule: nothing would page anyone",
                    v.url
                ))
        } else if !broken.is_empty() {
            SubjectFinding::fail("alerting rules", Why::RuleInError)
                .observed(inventory.join("; "))
                .expected(expected_all)
                .message(format!("alerting rules in error: {}", first_of(&broken, 5)))
        } else {
            SubjectFinding::pass("alerting rules", Why::RulesHealthy)
                .observed(inventory.join("; "))
                .expected(expected_all)
                .message(format!("{} alerting rule(s), all healthy", v.rules.len()))
        });
        for c in &p.conditions {
            out.push(condition_finding(c, v, now, p.stale_after_intervals));
        }
        out
    })
}

fn condition_finding(
    c: &Condition,
    v: &PrometheusView,
    now: DateTime<Utc>,
    stale: f64,
) -> SubjectFinding {
    let expected = format!(
        "a loaded alerting rule whose expression uses {}, health ok, evaluated within {stale} intervals",
        c.metrics.join(" or ")
    );
    let covering: Vec<_> = v
        .rules
        .iter()
        .filter(|r| c.metrics.iter().any(|m| r.metrics.contains(m)))
        .collect();
    if covering.is_empty() {
        return SubjectFinding::fail(&c.name, Why::ConditionUncovered)
            .observed(format!("no alerting rule uses {}", c.metrics.join(", ")))
            .expected(expected)
            .message(format!(
                "nobody is told about {}: add an alerting rule on {} to {}",
                c.name,
                c.metrics.join(" or "),
                v.url
            ));
    }
    let recent = |r: &crate::evidence::AlertRule| {
        let interval = r.interval_s.unwrap_or(60.0);
        parse_time(&r.last_evaluation)
            .is_some_and(|t| ((now - t).num_milliseconds() as f64 / 1000.0) <= stale * interval)
    };
    let names = covering.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
    let observed = covering
        .iter()
        .map(|r| format!("{} sha256:{} health {}", r.name, r.short_hash(), r.health))
        .collect::<Vec<_>>()
        .join("; ");
    if let Some(r) = covering
        .iter()
        .find(|r| r.health == RuleHealth::Ok && recent(r))
    {
        return SubjectFinding::pass(&c.name, Why::ConditionCovered)
            .observed(observed)
            .expected(expected)
            .message(format!("{} alerts on {}", r.name, c.name));
    }
    let (why, message) = if covering.iter().all(|r| r.health == RuleHealth::Err) {
        (
            Why::RuleInError,
            format!(
                "every rule on {} is in error: {}",
                c.name,
                covering
                    .iter()
                    .map(|r| format!("{}: {}", r.name, r.last_error))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )
    } else {
        (
            Why::RuleNotEvaluated,
            format!(
                "{} cover {} but none is healthy and evaluated within {stale} intervals (last evaluations: {})",
                first_of(&names, 5),
                c.name,
                covering
                    .iter()
                    .map(|r| r.last_evaluation.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    };
    SubjectFinding::fail(&c.name, why)
        .observed(observed)
        .expected(expected)
        .message(message)
}

fn alertmanager(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "at least one active Alertmanager that answers ready; the last configuration reload succeeded";
    with_prometheus(ev, expected, |subject, v| {
        let mut out = Vec::new();
        match unreadable(subject, expected, v, endpoint::ALERTMANAGERS) {
            Some(f) => out.push(f),
            None if v.alertmanagers.is_empty() => out.push(
                SubjectFinding::fail(subject, Why::NoAlertmanager)
                    .observed("no active Alertmanager")
                    .expected(expected)
                    .message(format!(
                        "{} sends its alerts nowhere: configure alerting.alertmanagers in its configuration",
                        v.url
                    )),
            ),
            None => {
                for am in &v.alertmanagers {
                    let f = if am.ready {
                        SubjectFinding::pass(&am.url, Why::AlertmanagerReady)
                    } else {
                        SubjectFinding::fail(&am.url, Why::AlertmanagerNotReady)
                    };
                    out.push(
                        f.observed(format!("{}: {}", am.asked, am.answer))
                            .expected(expected)
                            .message(if am.ready {
                                format!("Prometheus sends alerts to {}, which is ready", am.url)
                            } else {
                                format!("alerts go to {}, which did not answer ready: {}", am.url, am.answer)
                            }),
                    );
                }
            }
        }
        let reload = "configuration reload";
        out.push(match unreadable(reload, expected, v, endpoint::RUNTIME) {
            Some(f) => f,
            None => match v.reload_config_success {
                Some(true) => SubjectFinding::pass(reload, Why::ConfigReloaded)
                    .observed(format!("reloadConfigSuccess true, lastConfigTime {}", v.last_config_time.as_deref().unwrap_or("?")))
                    .expected(expected)
                    .message("the configuration Prometheus runs is the one last written"),
                Some(false) => SubjectFinding::fail(reload, Why::ConfigReloadFailed)
                    .observed("reloadConfigSuccess false")
                    .expected(expected)
                    .message("the last configuration reload failed: Prometheus runs an older configuration than the one on disk; fix it (promtool check config) and reload"),
                None => SubjectFinding::error(reload, Why::ApiUnreadable)
                    .observed("no reloadConfigSuccess")
                    .expected(expected)
                    .message(format!("{} did not report reloadConfigSuccess", endpoint::RUNTIME)),
            },
        });
        out
    })
}

fn exporter_leaks(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "no series naming a session key, any key when no session pattern is known, or a client address";
    let views = ev.views(ProbeId::Exporter, |o| match o {
        Observation::Exporter(v) => Some(v),
        _ => None,
    });
    per_subject(views, expected, |subject, v: &ExporterView| {
        if !v.reachable {
            return SubjectFinding::error(subject, Why::MetricsUnread)
                .observed(format!("{}: {}", v.url, v.error.as_deref().unwrap_or("unreachable")))
                .expected(expected)
                .message("what the exporter publishes is unknown: its /metrics could not be read (see MON-001)");
        }
        let Some(l) = &v.leaks else {
            return SubjectFinding::incomplete(subject, Why::LeaksNotRecorded)
                .observed("no leak count in this evidence")
                .expected(expected)
                .message("this evidence was recorded before exporters' series were counted; run the audit again");
        };
        if l.series == 0 {
            return SubjectFinding::error(subject, Why::MetricsUnread)
                .observed("0 series")
                .expected(expected)
                .message(format!(
                    "{} held no series, so what it publishes is unknown",
                    v.url
                ));
        }
        let list = |s: &std::collections::BTreeSet<String>| {
            s.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        // No total (it moves with every command the node runs): `diff`
        // shows only what the exporter started or stopped publishing.
        let observed = format!(
            "{} series name a session key ({}); {} name another key; {} name a client ({})",
            l.session_key_series,
            list(&l.session_key_metrics),
            l.other_key_series,
            l.client_series,
            list(&l.client_metrics)
        );
        let mut problems = Vec::new();
        if l.session_key_series > 0 {
            problems.push((
                Why::SessionKeysExposed,
                format!(
                    "{} series of {} name session keys ({}), which are bearer tokens, on an unauthenticated endpoint that Prometheus keeps for its retention: remove -check-keys/-check-single-keys for them",
                    l.session_key_series,
                    v.url,
                    list(&l.session_key_metrics)
                ),
            ));
        } else if l.patterns.is_empty() && l.other_key_series > 0 {
            problems.push((
                Why::KeysExposed,
                format!(
                    "{} series of {} name keys and the policy gives no session pattern to tell whether they are session keys: remove -check-keys, or enable DATA-005 with the pattern",
                    l.other_key_series, v.url
                ),
            ));
        }
        if l.client_series > 0 {
            problems.push((
                Why::ClientAddressesExposed,
                format!(
                    "{} series of {} name clients ({}): remove -export-client-list",
                    l.client_series,
                    v.url,
                    list(&l.client_metrics)
                ),
            ));
        }
        if problems.is_empty() {
            SubjectFinding::pass(subject, Why::ExporterDiscreet)
                .observed(observed)
                .expected(expected)
                .message(format!(
                    "{} names no session key and no client in its {} series",
                    v.url, l.series
                ))
        } else {
            SubjectFinding::fail(subject, problems[0].0)
                .observed(observed)
                .expected(expected)
                .message(joined(&problems))
        }
    })
}
