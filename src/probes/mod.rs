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
