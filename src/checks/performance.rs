//! Performance rules: the session-latency objective per master.

use serde::Deserialize;

use super::reason::reasons;
use super::rule::{Outcome, Rule, SubjectFinding};
use crate::evidence::EvidenceSet;
use crate::evidence::{Distribution, ProbeId};

reasons! {
    /// Why a master's latency window got its outcome (PERF).
    Performance => Why {
        /// The p99, net of the auditing host, is within the objective.
        WithinObjective = "within-objective",
        /// The p99 exceeds the objective (beyond the window's uncertainty).
        ObjectiveExceeded = "objective-exceeded",
        /// Operations got no answer before the deadline.
        Unanswered = "unanswered",
        /// p99 within, p99.9 above the objective.
        TailExceeds = "tail-exceeds",
        /// The auditing host's own p99 is above its limit: inconclusive.
        HostTooNoisy = "host-too-noisy",
        /// The client p99 exceeds the objective, but only by the host's own delay.
        ExcessIsTheHosts = "excess-is-the-hosts",
        /// Operations failed: the measurement is not the production path.
        OperationsFailed = "operations-failed",
        /// Too few measured operations to decide.
        TooFewSamples = "too-few-samples",
    }
}

/// Parameters of `performance.p99`: the objective and the workload that
/// measures it (the workload fields go to the probe).
///
/// The workload fields are declared here so the policy is validated in one
/// place (unknown keys rejected); the engine hands them to the latency
/// probe from the policy table, so this rule never reads them itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct P99Params {
    /// Corrected p99 must not exceed this (µs); p99.9 above it warns.
    pub threshold_us: u64,
    /// The auditing host's own p99 (µs) above which a window cannot
    /// resolve the objective (never `pass`); default: half of
    /// `threshold_us`.
    #[serde(default)]
    pub host_limit_us: Option<u64>,
    /// Fewer measured operations than this cannot decide.
    #[serde(default = "min_samples")]
    pub min_samples: u64,
    /// The application user the load runs as (its password must be
    /// configured in the environment). Required: no user name is assumed.
    pub user: String,
    /// Glob the probe keys are made from (`*` = `epic-audit-probe:{tag}:N`);
    /// default: the session pattern of the policy's TTL check (DATA-005).
    #[serde(default)]
    pub key_pattern: Option<String>,
    /// Workload setting (see `probes::latency::LatencySettings`).
    #[serde(default)]
    pub rate_per_master: Option<u32>,
    /// Workload setting (see `probes::latency::LatencySettings`).
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Workload setting (see `probes::latency::LatencySettings`).
    #[serde(default)]
    pub warmup_ms: Option<u64>,
    /// Workload setting (see `probes::latency::LatencySettings`).
    #[serde(default)]
    pub max_ops: Option<u64>,
    /// Workload setting (see `probes::latency::LatencySettings`).
    #[serde(default)]
    pub keys: Option<u32>,
    /// Workload setting (see `probes::latency::LatencySettings`).
    #[serde(default)]
    pub key_ttl_s: Option<u64>,
    /// Workload setting (see `probes::latency::LatencySettings`).
    #[serde(default)]
    pub masters: Option<Vec<String>>,
    /// Workload setting (see `probes::latency::LatencySettings`).
    #[serde(default)]
    pub write_every: Option<u64>,
    /// Workload setting for benchmarks only (1 = closed loop, like
    /// redis-benchmark; see `probes::latency::LatencySettings`).
    #[serde(default)]
    pub max_in_flight: Option<u32>,
}

fn min_samples() -> u64 {
    100
}

/// The performance rules.
pub(crate) fn rules() -> Vec<Rule> {
    vec![Rule::new(
        "performance.p99",
        &[ProbeId::Latency],
        "On every master serving slots, concurrently: one dedicated TLS connection as the application \
         user (handshake timed separately); an open-loop load at a fixed rate (alternating HGETALL and \
         HSET+EXPIRE on probe-only keys inside the session pattern, `*` = epic-audit-probe:{tag}:N, hash-tagged \
         to that master, with a short TTL, deleted afterwards and on Ctrl-C), after a discarded warm-up; latency measured from each \
         operation's intended send time so stalls are not hidden (coordinated omission), in an \
         HdrHistogram; raw latency from the actual send kept beside it; INFO commandstats deltas and \
         INFO latencystats give the server-side time.",
        p99,
    )]
}

fn fmt_us(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.1} ms", v as f64 / 1000.0)
    } else {
        format!("{v} µs")
    }
}

/// `p50 .. max` of a distribution, for findings.
pub(crate) fn describe(d: &Distribution) -> String {
    format!(
        "p50 {}, p90 {}, p99 {}, p99.9 {}, max {} (n={})",
        fmt_us(d.p50_us),
        fmt_us(d.p90_us),
        fmt_us(d.p99_us),
        fmt_us(d.p999_us),
        fmt_us(d.max_us),
        d.count
    )
}

/// The server's own HGETALL p99 (µs, as INFO latencystats printed it).
fn server_hgetall_p99(v: &crate::evidence::LatencyView) -> Option<&str> {
    v.server_latencystats
        .get("hgetall")
        .and_then(|s| s.split(',').find_map(|kv| kv.strip_prefix("p99=")))
}

/// Where a slow client-side figure comes from, in one sentence a reader
/// can act on: compares it with the server's own HGETALL p99 (INFO
/// latencystats) for the same master.
fn where_the_time_goes(
    v: &crate::evidence::LatencyView,
    client_us: u64,
    concurrent: &str,
) -> String {
    let server_p99: Option<f64> = server_hgetall_p99(v).and_then(|p| p.trim().parse().ok());
    match server_p99 {
        Some(s) if client_us as f64 >= 10.0 * s.max(1.0) => format!(
            "Redis itself answered HGETALL with p99 {s} µs, so almost all of it is spent outside Redis: on the \
             auditing host (CPU scheduling, e.g. when it shares the machine with the cluster, as the local lab does) \
             or on the network and TLS path. Measure from an unloaded host that is not the audited one before tuning Redis"
        ),
        Some(s) => format!(
            "Redis itself is slow: server-side HGETALL p99 {s} µs. Look at SLOWLOG GET and the master's CPU ({concurrent})"
        ),
        None => "look at INFO latencystats / SLOWLOG on the master, its CPU and network; the raw figure shows what a \
                 closed-loop client would have reported"
            .to_string(),
    }
}

/// The verdict of a window recorded before the host was measured: the
/// client figures alone.
fn client_only(
    subject: &str,
    v: &crate::evidence::LatencyView,
    p: &P99Params,
    observed: String,
    expected: &str,
    concurrent: &str,
) -> SubjectFinding {
    let c = &v.corrected;
    if c.p99_us > p.threshold_us || v.timed_out_ops > 0 {
        SubjectFinding::fail(subject, Why::ObjectiveExceeded)
            .observed(observed)
            .expected(expected)
            .message(format!(
                "p99 {} exceeds the objective {}: {}",
                fmt_us(c.p99_us),
                fmt_us(p.threshold_us),
                where_the_time_goes(v, c.p99_us, concurrent)
            ))
    } else if c.p999_us > p.threshold_us {
        SubjectFinding::warn(subject, Why::TailExceeds)
            .observed(observed)
            .expected(expected)
            .message(format!(
                "p99 within the objective, but p99.9 {} exceeds it: {}",
                fmt_us(c.p999_us),
                where_the_time_goes(v, c.p999_us, concurrent)
            ))
    } else {
        SubjectFinding::pass(subject, Why::WithinObjective)
            .observed(observed)
            .expected(expected)
            .message(format!(
                "p99 {} within {}",
                fmt_us(c.p99_us),
                fmt_us(p.threshold_us)
            ))
    }
}

/// Where latency the auditing host did not cause goes: Redis's execution
/// time (INFO latencystats) or waiting behind other work on the master, or
/// the network. latencystats time execution only, so quiet server
/// statistics never excuse a slow cluster.
fn where_the_net_goes(v: &crate::evidence::LatencyView, concurrent: &str) -> String {
    match server_hgetall_p99(v) {
        Some(s) => format!(
            "Redis executed HGETALL with p99 {s} µs, so the requests waited behind other work on the master \
             (long scripts or blocking commands: SLOWLOG GET, LATENCY DOCTOR; {concurrent}) or in the network \
             and TLS path between the auditing host and the master"
        ),
        None => format!(
            "look at SLOWLOG GET and LATENCY DOCTOR on the master ({concurrent}), its CPU and the network path"
        ),
    }
}

/// The window's attribution uncertainty (µs): how much of an operation's
/// net latency can still be the auditing host's. One host-timer interval
/// (a hold the measuring thread's timer sees is seen from its first late
/// tick, and began at most one interval earlier), plus the host's own p90
/// lateness (delays on the host that thread's timer cannot see, such as
/// kernel network processing deferred on a busy CPU, come and go with the
/// host's own stalls). Stated in `epic-audit explain PERF-001`, with the
/// figures it was measured against in docs/benchmarks.md.
fn uncertainty_us(host: &crate::evidence::HostNoise) -> u64 {
    1_000_000 / u64::from(host.tick_hz.max(1)) + host.lateness.p90_us
}

/// What the window saw, in one line, and what else the master did during
/// it (the other clients' commands, for the messages).
fn window_observed(v: &crate::evidence::LatencyView) -> (String, String) {
    let c = &v.corrected;
    let server: Vec<String> = v
        .server_usec_per_call
        .iter()
        .map(|(k, (n, u))| format!("{k} {u} µs x{n}"))
        .collect();
    // What else the master did during the window, and the
    // server's own view of the same command.
    let others: u64 = v.other_commands.values().sum();
    let mut top: Vec<(&String, &u64)> = v.other_commands.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let concurrent = if v.window_start.is_none() {
        "concurrent load not recorded".to_string()
    } else if others == 0 {
        "no other client's command during the window".to_string()
    } else {
        format!(
            "{others} commands from other clients during the window ({})",
            top.iter()
                .take(3)
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let server_p99 = server_hgetall_p99(v)
        .map(|p| format!("; server-side HGETALL p99 {p} µs (INFO latencystats, cumulative since the stats were reset)"))
        .unwrap_or_default();
    let observed = format!(
        "{}; raw (from send) p99 {}; HGETALL p99 {}, HSET+EXPIRE p99 {}; {:.1} ops/s achieved of {} planned ops, {} errors, {} unanswered; TLS connect {}; server mean {}{server_p99}; {concurrent}",
        describe(c),
        fmt_us(v.raw.p99_us),
        fmt_us(v.reads.p99_us),
        fmt_us(v.writes.p99_us),
        v.achieved_rate,
        v.planned_ops,
        v.errors,
        v.timed_out_ops,
        fmt_us(v.connect_us),
        if server.is_empty() { "n/a".to_string() } else { server.join(", ") }
    );
    (observed, concurrent)
}

fn p99(ev: &EvidenceSet, p: &P99Params) -> Vec<SubjectFinding> {
    let expected = format!(
        "corrected p99 <= {} (warning when p99.9 exceeds it)",
        fmt_us(p.threshold_us)
    );
    ev.latency_views()
        .into_iter()
        .map(|(subject, r)| {
            let v = match r {
                Ok(v) => v,
                Err(f) => return SubjectFinding::unobserved(subject, expected.clone(), f),
            };
            let c = &v.corrected;
            let (observed, concurrent) = window_observed(v);
            if v.errors > 0 {
                return SubjectFinding::error(subject, Why::OperationsFailed).observed(observed).expected(expected.clone()).message(format!("{} operations failed (first: {}): the measurement is not the production path", v.errors, v.first_error.as_deref().unwrap_or("?")));
            }
            if c.count < p.min_samples {
                return SubjectFinding::error(subject, Why::TooFewSamples).observed(observed).expected(expected.clone()).message(format!("only {} measured operations (minimum {})", c.count, p.min_samples));
            }
            let Some(host) = &v.host else {
                // Evidence from before the host was measured: the client
                // figures alone, as they were judged then.
                return client_only(subject, v, p, observed, &expected, &concurrent);
            };
            let limit = p.host_limit_us.unwrap_or(p.threshold_us / 2);
            let (client, own, net) = (c.p99_us, host.lateness.p99_us, host.net.p99_us);
            let uncertainty = uncertainty_us(host);
            let floor = net.saturating_sub(uncertainty);
            let observed = format!(
                "{observed}; auditing host's own p99 {} (timer at {} Hz on the measuring thread), client p99 net of it {} \
                 (attribution uncertainty {}: one timer interval and the host's own p90 {})",
                fmt_us(own),
                host.tick_hz,
                fmt_us(net),
                fmt_us(uncertainty),
                fmt_us(host.lateness.p90_us)
            );
            let figures = format!(
                "client p99 {}, the auditing host's own p99 {}, net of the host {}",
                fmt_us(client),
                fmt_us(own),
                fmt_us(net)
            );
            let verdict = |outcome: Outcome, why: Why, message: String| {
                SubjectFinding::with(subject, outcome, why).observed(observed.clone()).expected(expected.clone()).message(message)
            };
            // A quiet host resolves the objective: the net figure decides.
            // A noisy one resolves only what exceeds it by more than the
            // window's uncertainty.
            let resolved = own <= limit;
            let beyond = if resolved { net > p.threshold_us } else { floor > p.threshold_us };
            if beyond || (v.timed_out_ops > 0 && resolved) {
                let reason = if v.timed_out_ops > 0 && !beyond { Why::Unanswered } else { Why::ObjectiveExceeded };
                let why = if v.timed_out_ops > 0 && !beyond {
                    format!("{} operations got no answer before the deadline", v.timed_out_ops)
                } else if resolved {
                    format!(
                        "net of what the auditing host itself held, the cluster's p99 is {}, which exceeds the objective {}",
                        fmt_us(net),
                        fmt_us(p.threshold_us)
                    )
                } else {
                    format!(
                        "net of what the auditing host itself held, the cluster's p99 is {}, which exceeds the objective {} \
                         by more than this window's attribution uncertainty ({}), so even from this noisy host it is the \
                         cluster's",
                        fmt_us(net),
                        fmt_us(p.threshold_us),
                        fmt_us(uncertainty)
                    )
                };
                let whose = where_the_net_goes(v, &concurrent);
                return verdict(Outcome::Fail, reason, format!("{why} ({figures}): {whose}"));
            }
            if !resolved {
                let within = if net > p.threshold_us {
                    format!(
                        "; the net p99 {} exceeds the objective, but not by more than the window's attribution \
                         uncertainty ({}: one timer interval and the host's own p90)",
                        fmt_us(net),
                        fmt_us(uncertainty)
                    )
                } else {
                    String::new()
                };
                let m = format!(
                    "inconclusive: the auditing host's own p99 {} is above {} (half the objective unless \
                     host_limit_us says otherwise), so this window cannot resolve the objective ({figures}){within}; \
                     measure from a quieter host that is not the audited one",
                    fmt_us(own),
                    fmt_us(limit)
                );
                return verdict(Outcome::Warn, Why::HostTooNoisy, m);
            }
            if client > p.threshold_us || v.timed_out_ops > 0 {
                let m = format!(
                    "inconclusive: client p99 {} exceeds the objective {}, but net of what the auditing host \
                     itself held (its own p99 {}) the cluster's p99 is {}: the excess belongs to the auditing \
                     host; measure from a quieter host that is not the audited one",
                    fmt_us(client),
                    fmt_us(p.threshold_us),
                    fmt_us(own),
                    fmt_us(net)
                );
                return verdict(Outcome::Warn, Why::ExcessIsTheHosts, m);
            }
            if c.p999_us > p.threshold_us {
                let whose = where_the_time_goes(v, c.p999_us, &concurrent);
                let tail = fmt_us(c.p999_us);
                verdict(Outcome::Warn, Why::TailExceeds, format!("p99 within the objective, but p99.9 {tail} exceeds it ({figures}): {whose}"))
            } else {
                let (c, t) = (fmt_us(client), fmt_us(p.threshold_us));
                verdict(Outcome::Pass, Why::WithinObjective, format!("p99 {c} within {t} ({figures})"))
            }
        })
        .collect()
}
