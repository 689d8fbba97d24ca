//! The cluster's topology as derived from discovery evidence, with one
//! majority rule shared by the probes (which need the master list) and the
//! checks (which judge agreement against it).

use std::collections::{BTreeMap, BTreeSet};

use super::cluster::{ClusterNodeView, SlotRange};
use super::set::{Evidence, EvidenceSet, Observation, Observed, ProbeId};

/// Number of hash slots in a Redis Cluster.
pub(crate) const SLOTS: usize = 16384;

/// A canonical description of a slot map: (range, owner id) pairs.
pub(crate) type SlotMap = Vec<(SlotRange, Option<String>)>;

/// Slot -> owning master id, as one node sees it. Ranges beyond the last
/// slot (hand-edited evidence) are clipped, never indexed.
pub(crate) fn owners(v: &ClusterNodeView) -> Vec<Option<&str>> {
    let mut o = vec![None; SLOTS];
    for n in v.nodes.iter().filter(|n| n.is_master()) {
        for r in &n.slots {
            let end = (r.end as usize).min(SLOTS - 1);
            for slot in o.iter_mut().take(end + 1).skip(r.start as usize) {
                *slot = Some(n.id.as_str());
            }
        }
    }
    o
}

/// The slot map one node reports, in canonical form.
pub(crate) fn signature(v: &ClusterNodeView) -> SlotMap {
    let o = owners(v);
    let mut out = Vec::new();
    let mut start = 0usize;
    for s in 1..=SLOTS {
        if s == SLOTS || o[s] != o[start] {
            out.push((
                SlotRange {
                    start: start as u16,
                    end: (s - 1) as u16,
                },
                o[start].map(str::to_string),
            ));
            start = s;
        }
    }
    out
}

/// The slot map most nodes report, how many report it, and one view holding
/// it. Ties go to the first map in canonical order, so the result does not
/// depend on the order nodes answered in.
pub(crate) fn majority<'a>(
    views: &[(&str, &'a ClusterNodeView)],
) -> Option<(SlotMap, usize, &'a ClusterNodeView)> {
    let mut groups: BTreeMap<SlotMap, (usize, &ClusterNodeView)> = BTreeMap::new();
    for (_, v) in views {
        groups.entry(signature(v)).or_insert((0, v)).0 += 1;
    }
    groups
        .into_iter()
        .fold(None, |best, (sig, (n, v))| match best {
            Some((_, bn, _)) if bn >= n => best,
            _ => Some((sig, n, v)),
        })
}

/// Facts from discovery that later probes and checks need, by node address.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    /// Cluster-bus port each node announces (CLUSTER NODES, `myself`).
    pub bus_ports: BTreeMap<String, u16>,
    /// Plaintext ports the cluster advertises for a node (CLUSTER SHARDS
    /// `port`): probed, not trusted.
    pub advertised_plaintext: BTreeMap<String, BTreeSet<u16>>,
    /// Masters serving slots, with their slot ranges, in the majority view
    /// ([`majority`]); masters flagged `fail` are left out.
    pub masters: BTreeMap<String, Vec<SlotRange>>,
}

impl Topology {
    /// Derives the topology from discovery evidence (the cluster probe's
    /// items; others are ignored).
    pub(crate) fn from_evidence(items: &[Evidence]) -> Topology {
        let mut t = Topology::default();
        let mut views = Vec::new();
        for e in items {
            let Observed::Observation(Observation::ClusterNode(v)) = &e.result else {
                continue;
            };
            if let Some(p) = v.me().and_then(|m| m.bus_port) {
                t.bus_ports.insert(e.subject.clone(), p);
            }
            for n in v.shards.iter().flat_map(|s| &s.nodes) {
                if let (Some(p), Some(tls)) = (n.port, n.tls_port) {
                    let addr = if n.ip.contains(':') {
                        format!("[{}]:{tls}", n.ip)
                    } else {
                        format!("{}:{tls}", n.ip)
                    };
                    t.advertised_plaintext.entry(addr).or_default().insert(p);
                }
            }
            views.push((e.subject.as_str(), v));
        }
        if let Some((_, _, v)) = majority(&views) {
            t.masters = v
                .nodes
                .iter()
                .filter(|n| n.is_master() && !n.slots.is_empty() && !n.has_flag("fail"))
                .map(|n| (n.addr.clone(), n.slots.clone()))
                .collect();
        }
        t
    }
}

/// `host:port` without IPv6 brackets, so a target (`[::1]:6379`) and the
/// address a node announces (`::1:6379`) compare equal.
fn unbracketed(s: &str) -> String {
    s.replace(['[', ']'], "")
}

/// `(host, port)` of a target address `host:port` or `[v6]:port`.
fn host_port(target: &str) -> Option<(&str, u16)> {
    let (h, p) = target.rsplit_once(':')?;
    Some((
        h.trim_start_matches('[').trim_end_matches(']'),
        p.parse().ok()?,
    ))
}

impl EvidenceSet {
    /// The subjects a probe must have observed (or recorded a failure for)
    /// in this run, derived from the run's own discovery (`t`, this
    /// evidence's [`Topology`]): every probed node for the per-node
    /// probes, both ports of every node for the TLS endpoint probe, every
    /// master serving slots for the session scan and the latency probe,
    /// `cluster` for the cluster-wide probes. The AWS probe has no fixed
    /// subject (its one item is named by region), nor has the Prometheus
    /// probe (its one item is named by URL).
    fn expected_subjects(&self, probe: ProbeId, t: &Topology) -> Vec<String> {
        use ProbeId as P;
        match probe {
            P::Cluster | P::Acl | P::TlsConfig | P::DataConfig | P::Exporter => {
                self.targets.clone()
            }
            P::TlsEndpoint => self
                .targets
                .iter()
                .filter_map(|n| {
                    let (host, port) = host_port(n)?;
                    let bus = t
                        .bus_ports
                        .get(n)
                        .copied()
                        .unwrap_or(port.saturating_add(10000));
                    Some([format!("{host}:{port} client"), format!("{host}:{bus} bus")])
                })
                .flatten()
                .collect(),
            P::Sessions => t.masters.keys().cloned().collect(),
            P::Latency => {
                // The policy may measure only some masters; the probe
                // records which in its settings.
                let only: BTreeSet<String> = self
                    .latency_views()
                    .iter()
                    .filter_map(|(_, r)| r.ok())
                    .flat_map(|v| v.settings.masters.iter().map(|m| unbracketed(m)))
                    .collect();
                t.masters
                    .keys()
                    .filter(|m| only.is_empty() || only.contains(&unbracketed(m)))
                    .cloned()
                    .collect()
            }
            P::AclCommands | P::KeySlots => vec!["cluster".into()],
            P::Aws | P::Prometheus => Vec::new(),
        }
    }

    /// For every probe, its expected subjects ([`Self::expected_subjects`])
    /// that have no item of that probe at all: not observed and no failure
    /// recorded either (a partial or hand-edited evidence file). Derived
    /// once per judgement; every rule reads it for the probes it needs.
    pub(crate) fn missing_subjects(&self) -> BTreeMap<ProbeId, Vec<String>> {
        let t = Topology::from_evidence(&self.items);
        ProbeId::ALL
            .iter()
            .map(|&probe| {
                let have: BTreeSet<String> = self
                    .of_probe(probe)
                    .map(|e| unbracketed(&e.subject))
                    .collect();
                // A probe that found nothing to probe records one `cluster`
                // item saying why (e.g. no master serving slots); that
                // covers it.
                let missing = if have.contains("cluster") && self.of_probe(probe).count() == 1 {
                    Vec::new()
                } else {
                    self.expected_subjects(probe, &t)
                        .into_iter()
                        .filter(|s| !have.contains(&unbracketed(s)))
                        .collect()
                };
                (probe, missing)
            })
            .collect()
    }
}
