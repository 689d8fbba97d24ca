//! Network rule: the security groups of the cluster instances, judged as an
//! allowlist. Every ingress rule (one per permission and source) is a
//! subject: it passes only when every port it opens is allowlisted and its
//! source is one the allowlist names for that port.
//!
//! Handled: IPv4 and IPv6 ranges, managed prefix lists (each entry must be
//! allowed), security-group references (`sg:NAME`, `sg:ID`, `sg:self`),
//! port ranges, and protocol `-1` (all traffic), which covers every port.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Deserialize;

use super::reason::reasons;
use super::rule::{first_of, joined, with_aws, Rule, SubjectFinding};
use crate::evidence::EvidenceSet;
use crate::evidence::{AwsInventory, IngressRule, ProbeId, SecurityGroup, Source};

reasons! {
    /// Why a security group or rule got its outcome (NET).
    Network => Why {
        /// The group admits no inbound traffic.
        NoIngress = "no-ingress",
        /// Every port the rule opens is allowlisted for its source.
        Allowlisted = "allowlisted",
        /// The rule's source (a prefix list, a group) could not be resolved.
        SourceUnresolved = "source-unresolved",
        /// An allowlisted port is reachable from a source the allowlist does not name.
        SourceNotAllowed = "source-not-allowed",
        /// The rule opens every protocol and port.
        AllPortsOpen = "all-ports-open",
        /// The rule opens TCP ports the allowlist does not name.
        PortNotAllowlisted = "port-not-allowlisted",
        /// The rule opens a protocol other than TCP.
        NotTcp = "not-tcp",
        /// A failing rule whose source includes 0.0.0.0/0 or ::/0.
        OpenToInternet = "open-to-internet",
    }
}

const METHOD: &str = "AWS SDK: ec2 DescribeInstances by the environment's discovery tag, then \
DescribeSecurityGroups for every group attached to those instances (and their network \
interfaces), GetManagedPrefixListEntries for referenced prefix lists, and DescribeVpcs for the \
VPC CIDR blocks. Read-only; every list call paginated.";

/// The network rules.
pub(crate) fn rules() -> Vec<Rule> {
    vec![Rule::new(
        "network.sg_allowlist",
        &[ProbeId::Aws],
        METHOD,
        sg_allowlist,
    )]
}

/// A source the allowlist permits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) enum Allowed {
    /// The CIDR blocks (IPv4 and IPv6) of the cluster instances' VPCs.
    Vpc,
    /// A CIDR (the source must lie within it).
    Cidr(Cidr),
    /// A security group, by name or id; `self` is the group itself.
    Group(String),
}

impl TryFrom<String> for Allowed {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s == "vpc" {
            Ok(Allowed::Vpc)
        } else if let Some(g) = s.strip_prefix("sg:") {
            if g.is_empty() {
                return Err("`sg:` needs a group name or id (or `sg:self`)".into());
            }
            Ok(Allowed::Group(g.to_string()))
        } else {
            Cidr::parse(&s).map(Allowed::Cidr).map_err(|e| {
                format!("allowlist source `{s}`: {e}; use `vpc`, a CIDR, or `sg:NAME`")
            })
        }
    }
}

impl std::fmt::Display for Allowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Allowed::Vpc => f.write_str("vpc"),
            Allowed::Cidr(c) => write!(f, "{c}"),
            Allowed::Group(g) => write!(f, "sg:{g}"),
        }
    }
}

/// One allowlist entry: TCP ports and who may reach them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllowEntry {
    /// TCP ports.
    pub ports: Vec<u16>,
    /// Allowed sources.
    pub from: Vec<Allowed>,
    /// What the ports are for, for messages.
    pub what: String,
}

/// Parameters of `network.sg_allowlist`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllowlistParams {
    /// The allowlist; any other ingress fails.
    pub allow: Vec<AllowEntry>,
}

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n` or `x::/n` (a bare address is a /32 or /128).
    pub(crate) fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("`/{p}` is not a prefix length for {a}"))?
        };
        Ok(Cidr { addr, prefix })
    }

    fn bits(&self) -> (u128, u32) {
        match self.addr {
            IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
            IpAddr::V6(v) => (u128::from(v), 128),
        }
    }

    /// True when every address of `self` lies in `outer`.
    pub(crate) fn within(&self, outer: &Cidr) -> bool {
        let ((a, w), (b, w2)) = (self.bits(), outer.bits());
        if w != w2 || self.prefix < outer.prefix {
            return false;
        }
        let shift = w - u32::from(outer.prefix);
        let keep = |x: u128| if shift >= 128 { 0 } else { x >> shift };
        keep(a) == keep(b)
    }

    /// `0.0.0.0/0` or `::/0`.
    pub(crate) fn is_everything(&self) -> bool {
        self.prefix == 0
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// What a rule opens: all traffic, TCP ports, or another protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Opens {
    All,
    Tcp(u16, u16),
    Other(String),
}

fn opens(r: &IngressRule) -> Opens {
    let range = || {
        let lo = r.from_port.unwrap_or(0).clamp(0, 65535) as u16;
        let hi = r.to_port.unwrap_or(65535).clamp(0, 65535) as u16;
        (lo, hi.max(lo))
    };
    match r.protocol.as_str() {
        "-1" | "all" => Opens::All,
        "tcp" | "6" => {
            let (lo, hi) = range();
            Opens::Tcp(lo, hi)
        }
        other => Opens::Other(match (other, r.from_port, r.to_port) {
            ("icmp" | "1" | "icmpv6" | "58", _, _) => other.to_string(),
            (_, Some(a), Some(b)) if a == b => format!("{other} {a}"),
            (_, Some(a), Some(b)) => format!("{other} {a}-{b}"),
            _ => other.to_string(),
        }),
    }
}

fn opens_label(o: &Opens) -> String {
    match o {
        Opens::All => "all traffic".into(),
        Opens::Tcp(a, b) if a == b => format!("tcp {a}"),
        Opens::Tcp(0, 65535) => "tcp all ports".into(),
        Opens::Tcp(a, b) => format!("tcp {a}-{b}"),
        Opens::Other(s) => s.clone(),
    }
}

fn source_label(inv: &AwsInventory, s: &Source) -> String {
    match s {
        Source::Cidr4(c) | Source::Cidr6(c) => c.clone(),
        Source::PrefixList(id) => match inv.prefix_lists.iter().find(|p| &p.id == id) {
            Some(p) if p.error.is_none() => format!("{id} [{}]", first_of(&p.cidrs, 4)),
            _ => id.clone(),
        },
        Source::Group(id) => match inv.referenced_groups.get(id) {
            Some(name) => format!("{id} ({name})"),
            None => id.clone(),
        },
    }
}

/// The CIDRs a source stands for, or why they are unknown. `None` for a
/// security-group reference.
fn source_cidrs(inv: &AwsInventory, s: &Source) -> Result<Option<Vec<Cidr>>, String> {
    let parse = |c: &str| Cidr::parse(c).map_err(|e| format!("source `{c}`: {e}"));
    match s {
        Source::Cidr4(c) | Source::Cidr6(c) => Ok(Some(vec![parse(c)?])),
        Source::PrefixList(id) => match inv.prefix_lists.iter().find(|p| &p.id == id) {
            Some(p) => match &p.error {
                Some(e) => Err(format!("the entries of prefix list {id} are unknown: {e}")),
                None => p
                    .cidrs
                    .iter()
                    .map(|c| parse(c))
                    .collect::<Result<_, _>>()
                    .map(Some),
            },
            None => Err(format!("prefix list {id} was not read")),
        },
        Source::Group(_) => Ok(None),
    }
}

/// The VPC CIDR blocks of the cluster instances.
fn vpc_cidrs(inv: &AwsInventory) -> Vec<Cidr> {
    inv.vpcs
        .iter()
        .flat_map(|v| v.cidrs.iter().chain(&v.ipv6_cidrs))
        .filter_map(|c| Cidr::parse(c).ok())
        .collect()
}

/// Is `source` (of a rule in group `g`) one of `allowed`?
fn is_allowed(
    inv: &AwsInventory,
    g: &SecurityGroup,
    source: &Source,
    cidrs: &Option<Vec<Cidr>>,
    allowed: &[Allowed],
) -> bool {
    match (source, cidrs) {
        (Source::Group(id), _) => {
            let name = inv.referenced_groups.get(id);
            allowed.iter().any(|a| match a {
                Allowed::Group(x) => x == id || Some(x) == name || (x == "self" && id == &g.id),
                _ => false,
            })
        }
        (_, Some(cidrs)) => {
            let vpc = vpc_cidrs(inv);
            // Every address of the source (each prefix-list entry) must be
            // inside one allowed network.
            cidrs.iter().all(|c| {
                allowed.iter().any(|a| match a {
                    Allowed::Vpc => vpc.iter().any(|v| c.within(v)),
                    Allowed::Cidr(x) => c.within(x),
                    Allowed::Group(_) => false,
                })
            })
        }
        (_, None) => false,
    }
}

/// Port ranges of `[lo, hi]` not in `allowed`, as `a-b` strings.
fn beyond(lo: u16, hi: u16, allowed: &BTreeSet<u16>) -> Vec<String> {
    let mut out = Vec::new();
    let mut start: Option<u32> = None;
    for p in u32::from(lo)..=u32::from(hi) + 1 {
        let extra = p <= u32::from(hi) && !allowed.contains(&(p as u16));
        match (extra, start) {
            (true, None) => start = Some(p),
            (false, Some(s)) => {
                out.push(if s == p - 1 {
                    s.to_string()
                } else {
                    format!("{s}-{}", p - 1)
                });
                start = None;
            }
            _ => {}
        }
    }
    out
}

fn expected_text(p: &AllowlistParams) -> String {
    let mut parts: Vec<String> = p
        .allow
        .iter()
        .map(|e| {
            let ports: Vec<String> = e.ports.iter().map(u16::to_string).collect();
            let from: Vec<String> = e.from.iter().map(ToString::to_string).collect();
            format!("tcp {} from {}", ports.join(","), from.join(" or "))
        })
        .collect();
    parts.push("nothing else; never 0.0.0.0/0 or ::/0".into());
    parts.join("; ")
}

fn sg_allowlist(ev: &EvidenceSet, p: &AllowlistParams) -> Vec<SubjectFinding> {
    let expected = expected_text(p);
    let allowed_ports: BTreeSet<u16> = p
        .allow
        .iter()
        .flat_map(|e| e.ports.iter().copied())
        .collect();
    with_aws(ev, &expected, |inv| {
        let mut out = Vec::new();
        for g in &inv.security_groups {
            let users: Vec<String> = inv
                .instances
                .iter()
                .filter(|i| i.security_groups.contains(&g.id))
                .map(|i| i.id.clone())
                .collect();
            if g.ingress.is_empty() {
                out.push(
                    SubjectFinding::pass(format!("{} ({})", g.name, g.id), Why::NoIngress)
                        .observed("no ingress rules")
                        .expected(&expected)
                        .message(format!(
                            "the group (on {}) admits no inbound traffic",
                            first_of(&users, 3)
                        )),
                );
                continue;
            }
            for r in &g.ingress {
                out.push(judge_rule(inv, g, r, p, &allowed_ports, &expected, &users));
            }
        }
        out
    })
}

fn judge_rule(
    inv: &AwsInventory,
    g: &SecurityGroup,
    r: &IngressRule,
    p: &AllowlistParams,
    allowed_ports: &BTreeSet<u16>,
    expected: &str,
    users: &[String],
) -> SubjectFinding {
    let o = opens(r);
    let src = source_label(inv, &r.source);
    let subject = format!("{} ({}) {} from {}", g.name, g.id, opens_label(&o), src);
    let observed = match &r.description {
        Some(d) if !d.is_empty() => format!("{} from {src} (\"{d}\")", opens_label(&o)),
        _ => format!("{} from {src}", opens_label(&o)),
    };
    let cidrs = match source_cidrs(inv, &r.source) {
        Ok(c) => c,
        Err(e) => {
            return SubjectFinding::error(subject, Why::SourceUnresolved)
                .observed(observed)
                .expected(expected)
                .message(format!("cannot judge this rule: {e}"))
        }
    };
    let world = cidrs
        .as_ref()
        .is_some_and(|cs| cs.iter().any(Cidr::is_everything));
    let mut problems = Vec::new();
    let mut allowed_uses = Vec::new();
    let covers = |port: u16| match o {
        Opens::All => true,
        Opens::Tcp(a, b) => (a..=b).contains(&port),
        Opens::Other(_) => false,
    };
    for e in &p.allow {
        for &port in e.ports.iter().filter(|port| covers(**port)) {
            if is_allowed(inv, g, &r.source, &cidrs, &e.from) {
                allowed_uses.push(format!("{port} ({})", e.what));
            } else {
                let from: Vec<String> = e.from.iter().map(ToString::to_string).collect();
                problems.push((
                    Why::SourceNotAllowed,
                    format!(
                        "port {port} ({}) is reachable from {src}{}; only {} may reach it",
                        e.what,
                        if world { ", i.e. from anywhere" } else { "" },
                        from.join(" or ")
                    ),
                ));
            }
        }
    }
    match &o {
        Opens::All => problems.push((
            Why::AllPortsOpen,
            format!(
                "it opens every protocol and port to {src}, beyond the allowlisted TCP ports {}",
                allowed_ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        Opens::Tcp(a, b) => {
            let extra = beyond(*a, *b, allowed_ports);
            if !extra.is_empty() {
                problems.push((
                    Why::PortNotAllowlisted,
                    format!(
                        "it opens TCP port(s) {} to {src}, which the allowlist does not name",
                        first_of(&extra, 6)
                    ),
                ));
            }
        }
        Opens::Other(s) => problems.push((
            Why::NotTcp,
            format!("it opens {s} to {src}; the allowlist admits TCP only"),
        )),
    }
    if problems.is_empty() {
        SubjectFinding::pass(subject, Why::Allowlisted)
            .observed(observed)
            .expected(expected)
            .message(format!("allowlisted: port {}", allowed_uses.join(", ")))
    } else {
        let lead = if world { "OPEN TO THE INTERNET: " } else { "" };
        let reason = if world {
            Why::OpenToInternet
        } else {
            problems[0].0
        };
        SubjectFinding::fail(subject, reason)
            .observed(observed)
            .expected(expected)
            .message(format!(
                "{lead}security group {} ({}) on {}: {}",
                g.name,
                g.id,
                first_of(users, 3),
                joined(&problems)
            ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;

    #[test]
    fn cidr_containment_for_both_families() {
        let c = |s| Cidr::parse(s).unwrap();
        assert!(c("10.0.1.0/24").within(&c("10.0.0.0/16")));
        assert!(c("10.0.0.0/16").within(&c("10.0.0.0/16")));
        assert!(!c("10.0.0.0/8").within(&c("10.0.0.0/16")));
        assert!(!c("10.1.0.0/24").within(&c("10.0.0.0/16")));
        assert!(c("203.0.113.10").within(&c("203.0.113.10/32")));
        assert!(c("10.0.0.1/32").within(&c("0.0.0.0/0")));
        assert!(!c("0.0.0.0/0").within(&c("10.0.0.0/16")));
        assert!(c("2600:1f18:1::/64").within(&c("2600:1f18::/40")));
        assert!(!c("::/0").within(&c("2600:1f18::/40")));
        assert!(!c("::/0").within(&c("0.0.0.0/0")), "families never mix");
        assert!(c("::/0").is_everything() && c("0.0.0.0/0").is_everything());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("vpc-1").is_err());
    }

    #[test]
    fn ports_beyond_the_allowlist_are_listed_as_ranges() {
        let allowed: BTreeSet<u16> = [22, 6379, 9121, 16379].into();
        assert_eq!(beyond(6379, 6379, &allowed), Vec::<String>::new());
        assert_eq!(beyond(6378, 6380, &allowed), ["6378", "6380"]);
        assert_eq!(
            beyond(0, 65535, &allowed),
            ["0-21", "23-6378", "6380-9120", "9122-16378", "16380-65535"]
        );
    }

    #[test]
    fn allowlist_sources_parse_and_reject_typos() {
        let a = |s: &str| Allowed::try_from(s.to_string());
        assert_eq!(a("vpc"), Ok(Allowed::Vpc));
        assert_eq!(
            a("sg:monitoring-sg"),
            Ok(Allowed::Group("monitoring-sg".into()))
        );
        assert!(matches!(a("10.0.4.0/24"), Ok(Allowed::Cidr(_))));
        assert!(a("10.0.4.0/24 ").is_err());
        assert!(a("sg:").is_err());
        assert!(a("vcp").unwrap_err().contains("use `vpc`"));
    }

    use crate::evidence::{Evidence, Observation, Observed};
    use crate::evidence::{PrefixList, Vpc};

    fn rule(proto: &str, ports: Option<(i32, i32)>, source: Source) -> IngressRule {
        IngressRule {
            protocol: proto.into(),
            from_port: ports.map(|p| p.0),
            to_port: ports.map(|p| p.1),
            source,
            description: None,
        }
    }

    /// Judges one group with `rules` against the built-in allowlist and
    /// returns (subject, outcome, message) per rule.
    fn judge(rules: Vec<IngressRule>) -> Vec<(String, Outcome, String)> {
        let inv = AwsInventory {
            region: "us-east-1".into(),
            endpoint: None,
            discovery: "tag:redis-cluster=x".into(),
            instances: Vec::new(),
            nodes: Vec::new(),
            security_groups: vec![SecurityGroup {
                id: "sg-1".into(),
                name: "redis-cluster-sg".into(),
                vpc_id: Some("vpc-1".into()),
                ingress: rules,
            }],
            referenced_groups: [
                ("sg-1".to_string(), "redis-cluster-sg".to_string()),
                ("sg-mon".to_string(), "monitoring-sg".to_string()),
                ("sg-web".to_string(), "web-sg".to_string()),
            ]
            .into(),
            prefix_lists: vec![
                PrefixList {
                    id: "pl-admins".into(),
                    cidrs: vec!["203.0.113.10/32".into()],
                    error: None,
                },
                PrefixList {
                    id: "pl-mixed".into(),
                    cidrs: vec!["203.0.113.10/32".into(), "198.51.100.0/24".into()],
                    error: None,
                },
                PrefixList {
                    id: "pl-unreadable".into(),
                    cidrs: Vec::new(),
                    error: Some("ec2:GetManagedPrefixListEntries failed: denied".into()),
                },
            ],
            vpcs: vec![Vpc {
                id: "vpc-1".into(),
                cidrs: vec!["10.0.0.0/16".into()],
                ipv6_cidrs: vec!["2600:1f18:aa::/56".into()],
            }],
            volumes: Vec::new(),
            keys: Vec::new(),
            snapshots: None,
            snapshots_error: None,
            ebs_encryption_by_default: Some(true),
            ebs_encryption_by_default_error: None,
        };
        let ev = EvidenceSet {
            schema_version: 1,
            tool_version: "t".into(),
            environment: "t".into(),
            run_id: "r".into(),
            started_at: chrono::DateTime::UNIX_EPOCH,
            finished_at: chrono::DateTime::UNIX_EPOCH,
            seeds: Vec::new(),
            targets: Vec::new(),
            tls_handshakes: Default::default(),
            items: vec![Evidence {
                probe: ProbeId::Aws,
                subject: "aws:us-east-1".into(),
                method: "t".into(),
                observed_at: chrono::DateTime::UNIX_EPOCH,
                duration_ms: 0,
                result: Observed::Observation(Observation::Aws(Box::new(inv))),
            }],
        };
        let policy = crate::policy::Policy::builtin().unwrap();
        let params = toml::Value::Table(policy.get("NET-001").unwrap().params.clone());
        sg_allowlist(&ev, &params.try_into().unwrap())
            .into_iter()
            .map(|f| (f.subject, f.outcome, f.message))
            .collect()
    }

    #[test]
    fn prefix_lists_pass_only_when_every_entry_is_allowed() {
        let r = judge(vec![
            rule(
                "tcp",
                Some((22, 22)),
                Source::PrefixList("pl-admins".into()),
            ),
            rule("tcp", Some((22, 22)), Source::PrefixList("pl-mixed".into())),
            rule(
                "tcp",
                Some((22, 22)),
                Source::PrefixList("pl-unreadable".into()),
            ),
        ]);
        assert_eq!(r[0].1, Outcome::Pass, "{r:?}");
        assert_eq!(r[1].1, Outcome::Fail, "{r:?}");
        assert!(
            r[1].0
                .contains("pl-mixed [203.0.113.10/32, 198.51.100.0/24]"),
            "{r:?}"
        );
        assert_eq!(r[2].1, Outcome::Error, "{r:?}");
        assert!(r[2].2.contains("denied"), "{r:?}");
    }

    #[test]
    fn group_references_pass_only_when_the_allowlist_names_the_group() {
        let r = judge(vec![
            rule("tcp", Some((9121, 9121)), Source::Group("sg-mon".into())),
            rule("tcp", Some((9121, 9121)), Source::Group("sg-web".into())),
            // Self-references are not in the built-in allowlist.
            rule("tcp", Some((16379, 16379)), Source::Group("sg-1".into())),
        ]);
        assert_eq!(r[0].1, Outcome::Pass, "{r:?}");
        assert!(r[0].0.contains("sg-mon (monitoring-sg)"));
        assert_eq!(r[1].1, Outcome::Fail, "{r:?}");
        assert!(
            r[1].2
                .contains("only 10.0.100.0/24 or sg:monitoring-sg may reach it"),
            "{r:?}"
        );
        assert_eq!(r[2].1, Outcome::Fail, "{r:?}");
    }

    #[test]
    fn ranges_udp_and_ipv6_vpc_blocks_are_judged_by_the_ports_they_cover() {
        let r = judge(vec![
            // A range that covers 6379 from the VPC, plus ports nobody allowed.
            rule(
                "tcp",
                Some((6000, 7000)),
                Source::Cidr4("10.0.0.0/16".into()),
            ),
            rule("udp", Some((53, 53)), Source::Cidr4("10.0.0.0/16".into())),
            // The VPC's IPv6 block counts as `vpc`.
            rule(
                "tcp",
                Some((6379, 6379)),
                Source::Cidr6("2600:1f18:aa:1::/64".into()),
            ),
            // A subnet of the VPC is inside the VPC.
            rule(
                "tcp",
                Some((16379, 16379)),
                Source::Cidr4("10.0.3.0/24".into()),
            ),
            // Wider than the VPC.
            rule(
                "tcp",
                Some((6379, 6379)),
                Source::Cidr4("10.0.0.0/8".into()),
            ),
        ]);
        assert_eq!(r[0].1, Outcome::Fail);
        assert!(
            r[0].2.contains("TCP port(s) 6000-6378, 6380-7000"),
            "{}",
            r[0].2
        );
        assert!(
            !r[0].2.contains("port 6379 ("),
            "6379 itself is allowed: {}",
            r[0].2
        );
        assert_eq!(r[1].1, Outcome::Fail);
        assert!(r[1].2.contains("udp 53"), "{}", r[1].2);
        assert_eq!(r[2].1, Outcome::Pass, "{}", r[2].2);
        assert_eq!(r[3].1, Outcome::Pass, "{}", r[3].2);
        assert_eq!(r[4].1, Outcome::Fail, "{}", r[4].2);
        assert!(!r[4].2.contains("INTERNET"), "{}", r[4].2);
    }

    #[test]
    fn protocol_all_and_udp_are_not_tcp_ranges() {
        let rule = |proto: &str, a, b| IngressRule {
            protocol: proto.into(),
            from_port: a,
            to_port: b,
            source: Source::Cidr4("10.0.0.0/16".into()),
            description: None,
        };
        assert_eq!(opens(&rule("-1", None, None)), Opens::All);
        assert_eq!(
            opens(&rule("tcp", Some(6379), Some(6379))),
            Opens::Tcp(6379, 6379)
        );
        assert_eq!(
            opens(&rule("6", Some(0), Some(65535))),
            Opens::Tcp(0, 65535)
        );
        assert_eq!(
            opens(&rule("udp", Some(53), Some(53))),
            Opens::Other("udp 53".into())
        );
    }
}
