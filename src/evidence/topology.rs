//! The cluster's topology as derived from discovery evidence, with one
//! majority rule shared by the probes (which need the master list) and the
//! checks (which judge agreement against it).

use std::collections::{BTreeMap, BTreeSet};

use super::{ClusterNodeView, Evidence, Observation, Observed, SlotRange};

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: usize = 16384;

/// A canonical description of a slot map: (range, owner id) pairs.
pub type SlotMap = Vec<(SlotRange, Option<String>)>;

/// Slot -> owning master id, as one node sees it. Ranges beyond the last
/// slot (hand-edited evidence) are clipped, never indexed.
pub fn owners(v: &ClusterNodeView) -> Vec<Option<&str>> {
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
pub fn signature(v: &ClusterNodeView) -> SlotMap {
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
pub fn majority<'a>(
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
    pub fn from_evidence(items: &[Evidence]) -> Topology {
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
