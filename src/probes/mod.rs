//! Probes observe; they never judge and never change what they audit.
//!
//! Discovery (the cluster probe run on the seeds, then on every node they
//! announce) always runs first, because every other probe needs the node
//! list. Further probes implement [`Probe`] and are registered in
//! [`registry`]: adding one is one file plus one line there.

pub(crate) mod acl;
pub(crate) mod aws;
pub(crate) mod cleanup;
pub mod cluster;
pub(crate) mod conns;
pub mod data;
pub(crate) mod latency;
pub mod monitoring;
pub(crate) mod scaffold;
pub(crate) mod timing;
pub mod tls;

#[cfg(test)]
pub(crate) use scaffold::{closed_loopback_addr, fixture_context};
pub(crate) use scaffold::{Probe, ProbeContext, ProbeInputs};

/// Every command the audit user sends, as ACL rules: the least privilege
/// the audit needs, and nothing that writes. (The per-user logins of
/// ACC-009 run as each user; the latency load runs as the application
/// user.) `acl|log` also permits `ACL LOG RESET`, which Redis does not
/// separate; the audit never sends it.
pub(crate) const AUDITOR_COMMANDS: &[&str] = &[
    "+cluster|info",
    "+cluster|nodes",
    "+cluster|shards",
    "+cluster|keyslot",
    "+info",
    "+config|get",
    "+acl|users",
    "+acl|list",
    "+acl|getuser",
    "+acl|log",
    "+acl|dryrun",
    "+command",
    "+scan",
    "+ttl",
    "+type",
    "+ping",
];

/// `<CONFIG> GET keys...`, with CONFIG under the name the environment
/// gives it (`config_command`).
pub(crate) fn config_get<'a>(command: &'a str, keys: &[&'a str]) -> Vec<&'a str> {
    let mut w = vec![command, "GET"];
    w.extend_from_slice(keys);
    w
}

/// The failure of a CONFIG GET a node answered with `reply` (an error or
/// an unexpected reply). A node that does not know the command has CONFIG
/// renamed or disabled: say so and how to audit it, instead of the raw
/// reply alone.
pub(crate) fn config_failure(
    addr: &str,
    command: &str,
    reply: &str,
) -> crate::evidence::ProbeFailure {
    use crate::evidence::{FailureKind, ProbeFailure};
    if reply.to_ascii_lowercase().contains("unknown command") {
        let hint = if command == "CONFIG" {
            "set config_command in the environment to the name it has there".to_string()
        } else {
            format!(
                "config_command = \"{command}\" is not its name there either; set config_command \
                 to the name in the node's rename-command line"
            )
        };
        return ProbeFailure::new(
            FailureKind::ServerError,
            format!(
                "{addr}: the node does not know `{command} GET`: CONFIG is renamed or disabled there \
                 (rename-command in its redis.conf), so its settings cannot be read; {hint}; where \
                 CONFIG is disabled outright (rename-command CONFIG \"\"), nothing can read them \
                 remotely: rename it instead (the audit user's ACL keeps +config|get) \
                 (the node said: {reply})"
            ),
        );
    }
    ProbeFailure::new(
        FailureKind::UnexpectedReply,
        format!("{addr}: {command} GET answered {reply}"),
    )
}

/// Every command prometheus-redis-exporter sends with its default flags
/// (read from INFO commandstats around a scrape of Debian's 1.45), as ACL
/// rules: what the exporters' user needs (`print-acl --user exporter`),
/// with no key and no channel. Flags such as -check-keys need more, and
/// MON-006 fails them anyway.
pub(crate) const EXPORTER_COMMANDS: &[&str] = &[
    "+auth",
    "+hello",
    "+ping",
    "+client|setname",
    "+info",
    "+config|get",
    "+cluster|info",
    "+cluster|slots",
    "+slowlog|len",
    "+slowlog|get",
    "+latency|latest",
];

/// The ACL rules of the exporters' user (after `user NAME on <password>`).
pub fn exporter_rules() -> String {
    let mut r = vec!["resetchannels", "resetkeys", "-@all"];
    r.extend(EXPORTER_COMMANDS);
    r.join(" ")
}

/// The ACL rules of the audit user (after `user NAME on <password>`): no
/// channels, keys readable (`%R~`) only under the session patterns the
/// TTL scan reads, and exactly [`AUDITOR_COMMANDS`].
pub fn auditor_rules(session_patterns: &[String]) -> String {
    let mut r = vec![
        "resetchannels".to_string(),
        "resetkeys".into(),
        "-@all".into(),
    ];
    r.extend(AUDITOR_COMMANDS.iter().map(|c| c.to_string()));
    r.extend(session_patterns.iter().map(|p| format!("%R~{p}")));
    r.join(" ")
}

/// Every probe that runs after discovery.
pub fn registry() -> Vec<Box<dyn Probe>> {
    vec![
        Box::new(cluster::KeySlotProbe),
        Box::new(acl::AclProbe),
        Box::new(tls::TlsEndpointProbe),
        Box::new(tls::TlsConfigProbe),
        Box::new(latency::LatencyProbe),
        Box::new(data::DataConfigProbe),
        Box::new(data::SessionScanProbe),
        Box::new(monitoring::ExporterProbe),
        Box::new(monitoring::PrometheusProbe),
        Box::new(aws::AwsProbe),
    ]
}
