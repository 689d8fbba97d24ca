//! Data-protection and monitoring rules: AOF persistence, eviction policy,
//! hardening settings, replicas, connections, modules, the audit trail and
//! exporters. Session expiry (DATA-005) is in `sessions.rs`.

use serde::Deserialize;

use super::reason::reasons;
use super::rule::{joined, per_subject, NoParams, Rule, SubjectFinding};
use crate::evidence::{
    DataNodeView, EvidenceSet, ExporterView, Observation, ProbeFailure, ProbeId, ReplicationRole,
};

reasons! {
    /// Why a node got its outcome in the data-protection and monitoring checks (DATA, MON-001, MON-002).
    Data => Why {
        /// AOF on, an allowed fsync, last AOF and RDB writes ok.
        AofPersisted = "aof-persisted",
        /// appendonly is not yes.
        AofOff = "aof-off",
        /// appendfsync is not one the policy allows.
        FsyncNotAllowed = "fsync-not-allowed",
        /// The last AOF write or rewrite failed.
        AofWriteFailed = "aof-write-failed",
        /// The last RDB save failed.
        RdbSaveFailed = "rdb-save-failed",
        /// INFO persistence did not report rdb_last_bgsave_status.
        RdbStatusUnobserved = "rdb-status-unobserved",
        /// maxmemory-policy is the policy's.
        NoEviction = "no-eviction",
        /// maxmemory-policy lets Redis drop keys.
        EvictionPolicy = "eviction-policy",
        /// CONFIG GET did not return a setting the check needs.
        SettingNotReported = "setting-not-reported",
        /// A numeric setting is not a number.
        SettingNotANumber = "setting-not-a-number",
        /// Idle connections closed, client count bounded, keepalive on.
        ConnectionsBounded = "connections-bounded",
        /// timeout 0: idle connections are never closed.
        IdleNeverClosed = "idle-never-closed",
        /// timeout above the policy's.
        IdleTimeoutTooLong = "idle-timeout-too-long",
        /// maxclients above the policy's.
        TooManyClients = "too-many-clients",
        /// tcp-keepalive 0.
        NoKeepalive = "no-keepalive",
        /// Every loaded module is allowlisted (or none is loaded).
        ModulesAllowed = "modules-allowed",
        /// INFO modules not observed.
        ModulesUnobserved = "modules-unobserved",
        /// A module outside the allowlist is loaded.
        ModuleNotAllowed = "module-not-allowed",
        /// A module below the policy's minimum version.
        ModuleTooOld = "module-too-old",
        /// The nodes load different modules.
        ModulesDiffer = "modules-differ",
        /// ACL LOG long enough, a durable log, a useful loglevel.
        AuditTrailKept = "audit-trail-kept",
        /// acllog-max-len below the policy's.
        AclLogTooShort = "acl-log-too-short",
        /// The server logs to standard output only.
        NoDurableLog = "no-durable-log",
        /// loglevel drops security-relevant events.
        LogLevelTooLow = "log-level-too-low",
        /// protected-mode, DEBUG and MODULE off, full coverage, an aclfile.
        Hardened = "hardened",
        /// A hardening setting has the unsafe value.
        SettingNotHardened = "setting-not-hardened",
        /// No aclfile: ACL changes are not persisted.
        NoAclFile = "no-acl-file",
        /// The master has the replicas the policy asks for.
        Replicated = "replicated",
        /// The master has fewer replicas online than the policy asks for.
        TooFewReplicas = "too-few-replicas",
        /// The replica's master link is up.
        ReplicaInSync = "replica-in-sync",
        /// The replica's master link is down.
        ReplicaLinkDown = "replica-link-down",
        /// INFO replication said neither master nor slave.
        RoleUnknown = "role-unknown",
        /// The exporter reports the node up and scraped.
        ExporterHealthy = "exporter-healthy",
        /// The exporter did not answer.
        ExporterUnreachable = "exporter-unreachable",
        /// The exporter reports redis_up other than 1.
        RedisDown = "redis-down",
        /// The exporter reports redis_cluster_state other than 1.
        ClusterStateNotOk = "cluster-state-not-ok",
        /// The exporter's last scrape of the node failed.
        ScrapeFailed = "scrape-failed",
    }
}

const CONFIG_METHOD: &str = "On every node, as the audit user over TLS: CONFIG GET appendonly \
appendfsync maxmemory-policy protected-mode enable-debug-command enable-module-command \
cluster-require-full-coverage aclfile timeout maxclients tcp-keepalive acllog-max-len logfile \
syslog-enabled loglevel, INFO persistence, INFO replication and INFO modules. Read-only.";

/// The data and monitoring rules.
pub(crate) fn rules() -> Vec<Rule> {
    vec![
        Rule::new("data.aof", &[ProbeId::DataConfig], CONFIG_METHOD, aof),
        Rule::new("data.eviction", &[ProbeId::DataConfig], CONFIG_METHOD, eviction),
        Rule::new("data.hardening", &[ProbeId::DataConfig], CONFIG_METHOD, hardening),
        Rule::new("data.replicas", &[ProbeId::DataConfig], CONFIG_METHOD, replicas),
        Rule::new(
            "data.connections",
            &[ProbeId::DataConfig],
            CONFIG_METHOD,
            connections,
        ),
        Rule::new("data.modules", &[ProbeId::DataConfig], CONFIG_METHOD, modules),
        Rule::new(
            "monitoring.audit_trail",
            &[ProbeId::DataConfig],
            CONFIG_METHOD,
            audit_trail,
        ),
        Rule::new(
            "monitoring.exporter",
            &[ProbeId::Exporter],
            "HTTP GET of each node's exporter /metrics (address from the environment's [monitoring] \
             table, default port 9121), parsed as Prometheus text.",
            exporter,
        ),
    ]
}

fn data_views(ev: &EvidenceSet) -> Vec<(&str, Result<&DataNodeView, &ProbeFailure>)> {
    ev.views(ProbeId::DataConfig, |o| match o {
        Observation::DataNode(v) => Some(v),
        _ => None,
    })
}

/// A CONFIG setting of the node as reported, `?` where it was not.
fn setting<'a>(v: &'a DataNodeView, k: &str) -> &'a str {
    v.config.get(k).map(String::as_str).unwrap_or("?")
}

/// Parameters of `data.aof`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AofParams {
    /// Allowed appendfsync values.
    pub allowed_fsync: Vec<String>,
}

fn aof(ev: &EvidenceSet, p: &AofParams) -> Vec<SubjectFinding> {
    let expected = format!(
        "appendonly yes, appendfsync in {}, last AOF write and rewrite ok, last RDB save ok",
        p.allowed_fsync.join("/")
    );
    per_subject(data_views(ev), &expected, |subject, v| {
        if let Err(f) = settings(subject, v, ["appendonly", "appendfsync"], &expected) {
            return *f;
        }
        let pers = |k: &str| v.persistence.get(k).map(String::as_str).unwrap_or("?");
        let observed = format!(
            "appendonly {}, appendfsync {}, aof_last_write_status {}, aof_last_bgrewrite_status {}, \
             rdb_last_bgsave_status {}",
            setting(v, "appendonly"),
            setting(v, "appendfsync"),
            pers("aof_last_write_status"),
            pers("aof_last_bgrewrite_status"),
            pers("rdb_last_bgsave_status")
        );
        let mut problems = Vec::new();
        if setting(v, "appendonly") != "yes" {
            problems.push((
                Why::AofOff,
                "AOF is off: a restart loses every write since the last snapshot".to_string(),
            ));
        }
        if !p
            .allowed_fsync
            .iter()
            .any(|f| f == setting(v, "appendfsync"))
        {
            problems.push((
                Why::FsyncNotAllowed,
                format!(
                    "appendfsync {} is not one of {}",
                    setting(v, "appendfsync"),
                    p.allowed_fsync.join(", ")
                ),
            ));
        }
        if setting(v, "appendonly") == "yes" {
            for k in ["aof_last_write_status", "aof_last_bgrewrite_status"] {
                if pers(k) != "ok" {
                    problems.push((
                        Why::AofWriteFailed,
                        format!("{k} is {} (disk full or unwritable?)", pers(k)),
                    ));
                }
            }
        }
        // The server's own RDB health, whatever the AOF setting: a full
        // resync of a replica is an RDB snapshot, and a failed one also
        // stops writes where stop-writes-on-bgsave-error is on.
        match pers("rdb_last_bgsave_status") {
            "ok" => {}
            "?" => {
                return SubjectFinding::error(subject, Why::RdbStatusUnobserved).observed(observed).expected(expected.clone()).message("INFO persistence did not report rdb_last_bgsave_status (evidence recorded by an older \
                     epic-audit, or a server without it): the RDB health was not observed")
            }
            other => problems.push((Why::RdbSaveFailed, format!(
                "rdb_last_bgsave_status is {other}: the last RDB snapshot failed (disk full or `dir` \
                 unwritable? see the node's log), so a replica cannot complete a full resync from it and, \
                 with stop-writes-on-bgsave-error, it refuses writes"
            ))),
        }
        if problems.is_empty() {
            SubjectFinding::pass(subject, Why::AofPersisted).observed(observed).expected(expected.clone()).message("writes are persisted to the AOF, and the last AOF rewrite and RDB save succeeded")
        } else {
            SubjectFinding::fail(subject, problems[0].0).observed(observed).expected(expected.clone()).message(format!("{}; set `appendonly yes` and `appendfsync everysec` in redis.conf and CONFIG SET them", joined(&problems)))
        }
    })
}

/// Parameters of `data.eviction`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EvictionParams {
    /// Required maxmemory-policy.
    pub policy: String,
}

fn eviction(ev: &EvidenceSet, p: &EvictionParams) -> Vec<SubjectFinding> {
    let expected = format!("maxmemory-policy {}", p.policy);
    per_subject(data_views(ev), &expected, |subject, v| {
        let [got] = match settings(subject, v, ["maxmemory-policy"], &expected) {
            Ok(s) => s,
            Err(f) => return *f,
        };
        let observed = with_sources(v, format!("maxmemory-policy {got}"));
        if got == p.policy {
            SubjectFinding::pass(subject, Why::NoEviction)
                .observed(observed)
                .expected(expected.clone())
                .message("keys are never evicted silently")
        } else {
            SubjectFinding::fail(subject, Why::EvictionPolicy).observed(observed).expected(expected.clone()).message(format!("under memory pressure Redis silently drops keys (clinical sessions); set `maxmemory-policy {}` and size memory", p.policy))
        }
    })
}

/// The settings `keys` of a node, or the `error` finding naming those the
/// node did not report (a CONFIG GET that left a key out is no evidence).
fn settings<'a, const N: usize>(
    subject: &str,
    v: &'a DataNodeView,
    keys: [&str; N],
    expected: &str,
) -> Result<[&'a str; N], Box<SubjectFinding>> {
    let missing: Vec<&str> = keys
        .iter()
        .filter(|k| !v.config.contains_key(**k))
        .copied()
        .collect();
    if let (false, Some(why)) = (missing.is_empty(), &v.config_unread) {
        let read: Vec<String> = keys
            .iter()
            .filter_map(|k| v.from_info.get(*k).map(|src| format!("{k} ({src})")))
            .collect();
        let read = if read.is_empty() {
            String::new()
        } else {
            format!("; read from INFO instead: {}", read.join(", "))
        };
        return Err(Box::new(
            SubjectFinding::error(subject, Why::SettingNotReported)
                .observed(format!("{} not read{read}", missing.join(", ")))
                .expected(expected)
                .message(format!(
                    "could not be checked: {} could not be read (INFO does not report {}): {why}{}",
                    missing.join(", "),
                    if missing.len() == 1 { "it" } else { "them" },
                    super::rule::missing_permission(why)
                )),
        ));
    }
    if !missing.is_empty() {
        return Err(Box::new(SubjectFinding::error(subject, Why::SettingNotReported).observed(format!("CONFIG GET did not return {}", missing.join(", "))).expected(expected).message(format!(
                "the node did not report {}: nothing to judge (a server that does not know the setting, \
                 or a CONFIG GET the audit user may not run in full)",
                missing.join(", ")
            ))));
    }
    Ok(keys.map(|k| v.config[k].as_str()))
}

/// `observed`, followed by where its settings came from when CONFIG GET
/// gave none and INFO did.
fn with_sources(v: &DataNodeView, observed: String) -> String {
    if v.from_info.is_empty() {
        return observed;
    }
    let from: Vec<String> = v
        .from_info
        .iter()
        .map(|(k, src)| format!("{k} from {src}"))
        .collect();
    format!(
        "{observed} (CONFIG GET gave no settings; {})",
        from.join(", ")
    )
}

/// `pass` (with reason `holds`) and `message` when `problems` is empty, else
/// `fail` naming them, with the first one's reason.
fn verdict(
    subject: &str,
    observed: String,
    expected: &str,
    (holds, problems): (Why, Vec<(Why, String)>),
    message: impl FnOnce() -> String,
) -> SubjectFinding {
    match problems.first() {
        None => SubjectFinding::pass(subject, holds)
            .observed(observed)
            .expected(expected)
            .message(message()),
        Some((why, _)) => SubjectFinding::fail(subject, *why)
            .observed(observed)
            .expected(expected)
            .message(joined(&problems)),
    }
}

/// Parameters of `data.connections`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectionParams {
    /// The longest a client connection may stay idle before the node
    /// closes it (`timeout`, seconds; 0 = never is a finding).
    pub max_idle_timeout_s: u64,
    /// The most client connections a node may accept (`maxclients`).
    pub max_clients: u64,
}

fn connections(ev: &EvidenceSet, p: &ConnectionParams) -> Vec<SubjectFinding> {
    let expected = format!(
        "timeout 1..={} s (idle connections closed), maxclients <= {}, tcp-keepalive > 0",
        p.max_idle_timeout_s, p.max_clients
    );
    per_subject(data_views(ev), &expected, |subject, v| {
        let [timeout, maxclients, keepalive] = match settings(
            subject,
            v,
            ["timeout", "maxclients", "tcp-keepalive"],
            &expected,
        ) {
            Ok(s) => s,
            Err(f) => return *f,
        };
        let observed =
            format!("timeout {timeout}, maxclients {maxclients}, tcp-keepalive {keepalive}");
        let num = |k: &str, x: &str| {
            x.parse::<u64>()
                .map_err(|_| (Why::SettingNotANumber, format!("{k} `{x}` is not a number")))
        };
        let mut problems = Vec::new();
        match num("timeout", timeout) {
            Ok(0) => problems.push((Why::IdleNeverClosed, format!(
                "timeout 0: idle client connections are never closed, so an abandoned authenticated \
                 connection stays usable indefinitely (no automatic logoff); set `timeout` to at most {} \
                 (CONFIG SET timeout N and in redis.conf)",
                p.max_idle_timeout_s
            ))),
            Ok(t) if t > p.max_idle_timeout_s => problems.push((Why::IdleTimeoutTooLong, format!(
                "timeout {t} s exceeds the policy's {} s: idle connections stay open too long; lower it \
                 (CONFIG SET timeout {} and in redis.conf)",
                p.max_idle_timeout_s, p.max_idle_timeout_s
            ))),
            Ok(_) => {}
            Err(e) => problems.push(e),
        }
        match num("maxclients", maxclients) {
            Ok(m) if m > p.max_clients => problems.push((
                Why::TooManyClients,
                format!(
                    "maxclients {m} exceeds the policy's {}: set `maxclients {}`",
                    p.max_clients, p.max_clients
                ),
            )),
            Ok(_) => {}
            Err(e) => problems.push(e),
        }
        match num("tcp-keepalive", keepalive) {
            Ok(0) => problems.push((Why::NoKeepalive, "tcp-keepalive 0: connections of vanished peers are never detected and stay open; set \
                 `tcp-keepalive 300`"
                    .to_string())),
            Ok(_) => {}
            Err(e) => problems.push(e),
        }
        verdict(
            subject,
            observed,
            &expected,
            (Why::ConnectionsBounded, problems),
            || {
                format!(
                "idle client connections are closed after {timeout} s and at most {maxclients} are accepted \
                 (replication links and Pub/Sub subscribers are exempt from timeout, by Redis's design)"
            )
            },
        )
    })
}

/// One module the policy allows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllowedModule {
    /// Its name as INFO modules gives it (`name=`).
    pub name: String,
    /// The lowest acceptable `ver=` (an integer, e.g. 80002), if any.
    #[serde(default)]
    pub min_version: Option<u64>,
    /// Why it is allowed (shown in the finding).
    pub reason: String,
}

/// Parameters of `data.modules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModuleParams {
    /// The modules a node may load; any other is a finding.
    pub allowed: Vec<AllowedModule>,
}

fn modules(ev: &EvidenceSet, p: &ModuleParams) -> Vec<SubjectFinding> {
    let allowed = if p.allowed.is_empty() {
        "none".to_string()
    } else {
        p.allowed
            .iter()
            .map(|a| match a.min_version {
                Some(v) => format!("{} (ver >= {v})", a.name),
                None => a.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let expected = format!("only allowlisted modules loaded ({allowed}), the same on every node");
    let views = data_views(ev);
    let list = |m: &[crate::evidence::ModuleInfo]| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter()
                .map(|x| format!("{} ver {}", x.name, x.version))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    // Every distinct module list the nodes reported, for the same-on-every-
    // node rule.
    let mut seen: Vec<String> = views
        .iter()
        .filter_map(|(_, r)| r.ok().and_then(|v| v.modules.as_deref()).map(list))
        .collect();
    seen.sort();
    seen.dedup();
    per_subject(views, &expected, |subject, v| {
        let Some(loaded) = v.modules.as_deref() else {
            return SubjectFinding::error(subject, Why::ModulesUnobserved).observed("INFO modules not observed").expected(expected.clone()).message("the evidence has no INFO modules for this node (recorded by an older epic-audit): nothing to judge");
        };
        // Read in the same pipeline as INFO modules: a node whose CONFIG
        // GET came back without it was not observed in full. A node whose
        // CONFIG GET gave nothing (renamed or disabled) still has its
        // modules judged from INFO; DATA-003 owns the setting.
        let runtime_load = if v.config_unread.is_some() {
            "not read".to_string()
        } else {
            match settings(subject, v, ["enable-module-command"], &expected) {
                Ok([s]) => s.to_string(),
                Err(f) => return *f,
            }
        };
        let observed = format!(
            "modules: {} (enable-module-command {runtime_load})",
            list(loaded)
        );
        let mut problems = Vec::new();
        for m in loaded {
            match p.allowed.iter().find(|a| a.name == m.name) {
                None => problems.push((Why::ModuleNotAllowed, format!(
                    "module `{}` (ver {}) is loaded but not in the policy's allowlist: unload it (remove its \
                     loadmodule line and restart the node) or document it in the policy with a reason",
                    m.name, m.version
                ))),
                Some(a) => {
                    if let Some(min) = a.min_version {
                        match m.version.parse::<u64>() {
                            Ok(v) if v >= min => {}
                            _ => problems.push((Why::ModuleTooOld, format!(
                                "module `{}` ver {} is below the policy's minimum {min}: upgrade it",
                                m.name, m.version
                            ))),
                        }
                    }
                }
            }
        }
        if seen.len() > 1 {
            problems.push((Why::ModulesDiffer, format!(
                "the nodes do not load the same modules ({}): a command can behave differently per node",
                seen.join(" | ")
            )));
        }
        verdict(
            subject,
            observed,
            &expected,
            (Why::ModulesAllowed, problems),
            || {
                let why: Vec<String> = loaded
                    .iter()
                    .filter_map(|m| p.allowed.iter().find(|a| a.name == m.name))
                    .map(|a| format!("{}: {}", a.name, a.reason))
                    .collect();
                if why.is_empty() {
                    "no module is loaded".to_string()
                } else {
                    format!("every loaded module is allowlisted ({})", why.join("; "))
                }
            },
        )
    })
}

/// Parameters of `monitoring.audit_trail`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditTrailParams {
    /// The fewest ACL LOG entries a node must keep (`acllog-max-len`).
    pub min_acllog_len: u64,
    /// Log levels that record the server's security-relevant events.
    pub loglevels: Vec<String>,
}

/// What open-source Redis and Valkey cannot record, said in every audit
/// trail finding so that no pass implies more.
const NO_COMMAND_LOG: &str = "Redis keeps no log of the commands clients run: the ACL LOG holds \
only the last denied commands and failed logins, in memory (lost on restart, cleared by ACL LOG RESET), \
and the server log records server events, not who ran what; ship both off the node for a durable trail";

fn audit_trail(ev: &EvidenceSet, p: &AuditTrailParams) -> Vec<SubjectFinding> {
    let expected = format!(
        "acllog-max-len >= {}, a durable server log (logfile set or syslog-enabled yes), loglevel {}",
        p.min_acllog_len,
        p.loglevels.join("/")
    );
    per_subject(data_views(ev), &expected, |subject, v| {
        let [acllog, logfile, syslog, level] = match settings(
            subject,
            v,
            ["acllog-max-len", "logfile", "syslog-enabled", "loglevel"],
            &expected,
        ) {
            Ok(s) => s,
            Err(f) => return *f,
        };
        let destination = match (logfile.is_empty(), syslog == "yes") {
            (false, true) => format!("logfile {logfile} and syslog"),
            (false, false) => format!("logfile {logfile}"),
            (true, true) => "syslog".to_string(),
            (true, false) => "standard output only".to_string(),
        };
        let observed = format!("acllog-max-len {acllog}, log to {destination}, loglevel {level}");
        let mut problems = Vec::new();
        match acllog.parse::<u64>() {
            Ok(n) if n >= p.min_acllog_len => {}
            Ok(n) => problems.push((Why::AclLogTooShort, format!(
                "acllog-max-len {n} keeps fewer than the policy's {} denied commands and failed logins: \
                 set `acllog-max-len {}`",
                p.min_acllog_len, p.min_acllog_len
            ))),
            Err(_) => problems.push((Why::SettingNotANumber, format!("acllog-max-len `{acllog}` is not a number"))),
        }
        if logfile.is_empty() && syslog != "yes" {
            problems.push((Why::NoDurableLog, "the server logs to standard output only (logfile \"\", syslog-enabled no): whether \
                 anything keeps it cannot be told from the node; set `logfile /var/log/redis/redis-server.log` \
                 or `syslog-enabled yes`"
                    .to_string()));
        }
        if !p.loglevels.iter().any(|l| l == level) {
            problems.push((Why::LogLevelTooLow, format!(
                "loglevel {level} drops the server's security-relevant events (failovers, replication and \
                 persistence errors, configuration rewrites); set `loglevel {}`",
                p.loglevels.first().map(String::as_str).unwrap_or("notice")
            )));
        }
        // What Redis cannot record is said in every finding, pass or fail.
        let problems = match problems.first() {
            None => problems,
            Some((why, _)) => vec![(*why, format!("{}. {NO_COMMAND_LOG}", joined(&problems)))],
        };
        verdict(
            subject,
            observed,
            &expected,
            (Why::AuditTrailKept, problems),
            || {
                format!(
                "the ACL LOG keeps the last {acllog} denied commands and failed logins, and the server \
                 logs to {destination} at {level}. {NO_COMMAND_LOG}"
            )
            },
        )
    })
}

fn hardening(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let want = [
        ("protected-mode", "yes"),
        ("enable-debug-command", "no"),
        ("enable-module-command", "no"),
        ("cluster-require-full-coverage", "yes"),
    ];
    let expected = "protected-mode yes, enable-debug-command no, enable-module-command no, cluster-require-full-coverage yes, aclfile set";
    per_subject(data_views(ev), expected, |subject, v| {
        let needed = [
            "protected-mode",
            "enable-debug-command",
            "enable-module-command",
            "cluster-require-full-coverage",
            "aclfile",
        ];
        if let Err(f) = settings(subject, v, needed, expected) {
            return *f;
        }
        let mut bad: Vec<(Why, String)> = want
            .iter()
            .filter(|(k, w)| setting(v, k) != *w)
            .map(|(k, w)| {
                (
                    Why::SettingNotHardened,
                    format!("{k} is {} (want {w})", setting(v, k)),
                )
            })
            .collect();
        if setting(v, "aclfile").is_empty() || setting(v, "aclfile") == "?" {
            bad.push((
                Why::NoAclFile,
                "no aclfile: ACL changes are not persisted and cannot be reviewed".into(),
            ));
        }
        let observed = want
            .iter()
            .map(|(k, _)| format!("{k} {}", setting(v, k)))
            .chain([format!(
                "aclfile {}",
                if setting(v, "aclfile").is_empty() {
                    "(none)"
                } else {
                    "set"
                }
            )])
            .collect::<Vec<_>>()
            .join(", ");
        if bad.is_empty() {
            SubjectFinding::pass(subject, Why::Hardened)
                .observed(observed)
                .expected(expected)
                .message("hardened")
        } else {
            SubjectFinding::fail(subject, bad[0].0).observed(observed).expected(expected).message(format!("{}; fix in redis.conf (these settings are immutable at runtime or should be set there)", joined(&bad)))
        }
    })
}

/// Parameters of `data.replicas`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplicaParams {
    /// Replicas each master should have online.
    pub min_replicas: usize,
}

fn replicas(ev: &EvidenceSet, p: &ReplicaParams) -> Vec<SubjectFinding> {
    let expected = format!(
        "every master has >= {} replica(s) online; every replica's master link up",
        p.min_replicas
    );
    per_subject(data_views(ev), &expected, |subject, v| {
        let r = |k: &str| v.replication.get(k).map(String::as_str).unwrap_or("?");
        match v.replication_role() {
            ReplicationRole::Master => {
                let online = v
                    .replication
                    .iter()
                    .filter(|(k, val)| {
                        k.starts_with("slave")
                            && k[5..].chars().all(|c| c.is_ascii_digit())
                            && val.contains("state=online")
                    })
                    .count();
                let observed = format!(
                    "master with {online} replica(s) online (connected_slaves {})",
                    r("connected_slaves")
                );
                if online >= p.min_replicas {
                    SubjectFinding::pass(subject, Why::Replicated)
                        .observed(observed)
                        .expected(expected.clone())
                        .message("redundant")
                } else {
                    SubjectFinding::warn(subject, Why::TooFewReplicas).observed(observed).expected(expected.clone()).message("one failure away from losing this master's slots: add a replica (CLUSTER REPLICATE <master-id> on a spare node)")
                }
            }
            ReplicationRole::Replica => {
                let observed = format!("replica, master_link_status {}", r("master_link_status"));
                if r("master_link_status") == "up" {
                    SubjectFinding::pass(subject, Why::ReplicaInSync)
                        .observed(observed)
                        .expected(expected.clone())
                        .message("in sync with its master")
                } else {
                    SubjectFinding::fail(subject, Why::ReplicaLinkDown).observed(observed).expected(expected.clone()).message("the replica is not replicating: check its logs, masterauth/masteruser and TLS")
                }
            }
            ReplicationRole::Other(other) => SubjectFinding::error(subject, Why::RoleUnknown)
                .observed(format!("role {other}"))
                .expected(expected.clone())
                .message("INFO replication did not say master or slave"),
        }
    })
}

fn exporter(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let views = ev.views(ProbeId::Exporter, |o| match o {
        Observation::Exporter(v) => Some(v),
        _ => None,
    });
    let expected = "exporter answers with redis_up 1, redis_cluster_state 1 (where exported), redis_exporter_last_scrape_error 0";
    per_subject(views, expected, |subject, v: &ExporterView| {
        if !v.reachable {
            return SubjectFinding::fail(subject, Why::ExporterUnreachable).observed(format!("{}: {}", v.url, v.error.as_deref().unwrap_or("unreachable"))).expected(expected).message("no audit trail of this node's health: start its exporter (prometheus-redis-exporter) and check the scrape target");
        }
        let m = |k: &str| v.metrics.get(k).copied();
        let mut bad = Vec::new();
        if m("redis_up") != Some(1.0) {
            bad.push((
                Why::RedisDown,
                format!(
                    "redis_up is {}",
                    m("redis_up")
                        .map(|x| x.to_string())
                        .unwrap_or_else(|| "missing".into())
                ),
            ));
        }
        if let Some(s) = m("redis_cluster_state") {
            if s != 1.0 {
                bad.push((
                    Why::ClusterStateNotOk,
                    format!("redis_cluster_state is {s}"),
                ));
            }
        }
        if m("redis_exporter_last_scrape_error").is_some_and(|e| e != 0.0) {
            bad.push((Why::ScrapeFailed, "the last scrape failed".into()));
        }
        let observed = v
            .metrics
            .iter()
            .map(|(k, x)| format!("{k} {x}"))
            .collect::<Vec<_>>()
            .join(", ");
        if bad.is_empty() {
            SubjectFinding::pass(subject, Why::ExporterHealthy)
                .observed(observed)
                .expected(expected)
                .message(format!("{} reports the node healthy", v.url))
        } else {
            SubjectFinding::fail(subject, bad[0].0)
                .observed(observed)
                .expected(expected)
                .message(format!(
                    "{}: {}; check the exporter's credentials and TLS settings",
                    v.url,
                    joined(&bad)
                ))
        }
    })
}
