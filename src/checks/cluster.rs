//! Cluster topology rules: slot coverage, slot-map agreement, open slots,
//! cluster state, node health, expected topology, key hashing.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::reason::reasons;
use super::rule::{joined, per_subject, NoParams, Outcome, Rule, SubjectFinding};
pub(crate) use crate::evidence::topology::SLOTS;
use crate::evidence::topology::{majority, owners};
use crate::evidence::{
    ClusterNodeView, EvidenceSet, ProbeFailure, ProbeId, ShardHealth, SlotRange,
};

reasons! {
    /// Why a node, slot range or key got its outcome in the cluster checks (CLU).
    Cluster => Why {
        /// All 16384 slots have a master.
        AllSlotsAssigned = "all-slots-assigned",
        /// Slots without a master.
        SlotsUnassigned = "slots-unassigned",
        /// The node's slot map is the majority's.
        SlotMapAgrees = "slot-map-agrees",
        /// The node's slot map differs from the majority's.
        SlotMapDisagrees = "slot-map-disagrees",
        /// CLUSTER NODES did not identify the node itself.
        MyselfMissing = "myself-missing",
        /// No slot is importing or migrating.
        NoOpenSlots = "no-open-slots",
        /// Slots are importing or migrating.
        OpenSlots = "open-slots",
        /// cluster_state ok.
        StateOk = "state-ok",
        /// cluster_state fail.
        StateFail = "state-fail",
        /// CLUSTER INFO has no cluster_state.
        StateUnreported = "state-unreported",
        /// Online in every node's view.
        NodeHealthy = "node-healthy",
        /// A peer flags the node fail, pfail, handshake or noaddr.
        NodeFlaggedFailing = "node-flagged-failing",
        /// A peer's link to the node is not connected.
        LinkDisconnected = "link-disconnected",
        /// A peer reports the node's health other than online.
        HealthNotOnline = "health-not-online",
        /// The replica is loading or syncing: transient.
        ReplicaSyncing = "replica-syncing",
        /// Peers still say loading; the replica's own state says in sync.
        PeersGossipStale = "peers-gossip-stale",
        /// As many masters serve slots as the policy expects.
        MasterCountAsExpected = "master-count-as-expected",
        /// Another number of masters serves slots.
        MasterCountWrong = "master-count-wrong",
        /// masters_at does not name one address per slot range.
        MastersAtMismatched = "masters-at-mismatched",
        /// A slot range of the policy is invalid.
        InvalidRange = "invalid-range",
        /// The range is served by one master that serves nothing else.
        RangeAsExpected = "range-as-expected",
        /// The range's master serves slots outside it.
        MasterServesMore = "master-serves-more",
        /// Two expected ranges share a master.
        RangesShareMaster = "ranges-share-master",
        /// Another node than the policy names serves the range.
        RangeMasterMoved = "range-master-moved",
        /// The range is split across masters or partly unassigned.
        RangeSplit = "range-split",
        /// The policy gives no expected topology.
        NoExpectedTopology = "no-expected-topology",
        /// Client and server hash the key to the same slot.
        HashSlotAgrees = "hash-slot-agrees",
        /// The server hashes the key to another slot.
        HashSlotDiffers = "hash-slot-differs",
    }
}

const VIEW_METHOD: &str = "On every node (seeds and every node they announce): CLUSTER NODES, \
CLUSTER SHARDS, CLUSTER INFO and INFO server over TLS with the client certificate, as the \
configured audit user. Read-only; one pipelined round trip per node, bounded by the timeouts.";

/// The cluster rules.
pub(crate) fn rules() -> Vec<Rule> {
    vec![
        Rule::new(
            "cluster.slot_coverage",
            &[ProbeId::Cluster],
            VIEW_METHOD,
            slot_coverage,
        ),
        Rule::new(
            "cluster.slot_agreement",
            &[ProbeId::Cluster],
            VIEW_METHOD,
            slot_agreement,
        ),
        Rule::new(
            "cluster.open_slots",
            &[ProbeId::Cluster],
            VIEW_METHOD,
            open_slots,
        ),
        Rule::new(
            "cluster.state_ok",
            &[ProbeId::Cluster],
            VIEW_METHOD,
            state_ok,
        ),
        Rule::new(
            "cluster.nodes_online",
            &[ProbeId::Cluster],
            VIEW_METHOD,
            nodes_online,
        ),
        Rule::new(
            "cluster.topology",
            &[ProbeId::Cluster],
            VIEW_METHOD,
            topology,
        ),
        Rule::new(
            "cluster.keyslot_agreement",
            &[ProbeId::KeySlots],
            "CLUSTER KEYSLOT for a fixed list of synthetic sample keys (hash tags, empty and \
             nested braces, non-ASCII) on one reachable node; each is compared with the CRC16 \
             slot the client computes.",
            keyslot_agreement,
        ),
    ]
}

/// Collapses a per-slot predicate into inclusive ranges where it holds.
pub(crate) fn ranges_where(pred: impl Fn(usize) -> bool) -> Vec<SlotRange> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for s in 0..=SLOTS {
        let hit = s < SLOTS && pred(s);
        match (hit, start) {
            (true, None) => start = Some(s),
            (false, Some(a)) => {
                out.push(SlotRange {
                    start: a as u16,
                    end: (s - 1) as u16,
                });
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// `a-b, c` for messages.
pub(crate) fn fmt_ranges(r: &[SlotRange]) -> String {
    if r.is_empty() {
        return "none".into();
    }
    r.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn count(r: &[SlotRange]) -> usize {
    r.iter()
        .map(|x| x.end.saturating_sub(x.start) as usize + 1)
        .sum()
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// `id (addr)` for a node id, using the view's address book.
fn who(v: &ClusterNodeView, id: &str) -> String {
    match v.nodes.iter().find(|n| n.id == id) {
        Some(n) => format!("{} ({})", n.addr, short(id)),
        None => short(id).to_string(),
    }
}

fn slot_coverage(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "all 16384 slots assigned to a master";
    per_subject(ev.cluster_views(), expected, |subject, v| {
        let o = owners(v);
        let missing = ranges_where(|s| o[s].is_none());
        let n = count(&missing);
        if missing.is_empty() {
            SubjectFinding::pass(subject, Why::AllSlotsAssigned)
                .observed("16384/16384 slots assigned")
                .expected(expected)
                .message("every slot has a master")
        } else {
            SubjectFinding::fail(subject, Why::SlotsUnassigned)
                .observed(format!(
                    "{}/16384 slots assigned; unassigned: {}",
                    SLOTS - n,
                    fmt_ranges(&missing)
                ))
                .expected(expected)
                .message(format!(
                    "{n} slots ({}) have no master in this node's view: keys hashing there are \
                     unavailable (CLUSTERDOWN) while cluster-require-full-coverage is yes",
                    fmt_ranges(&missing)
                ))
        }
    })
}

fn observed_views(ev: &EvidenceSet) -> Vec<(&str, &ClusterNodeView)> {
    ev.cluster_views()
        .into_iter()
        .filter_map(|(s, r)| r.ok().map(|v| (s, v)))
        .collect()
}

fn slot_agreement(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let views = observed_views(ev);
    let expected = "the same slot -> master map as every other node";
    let Some((_, n_major, reference)) = majority(&views) else {
        return per_subject(ev.cluster_views(), expected, |_, _| {
            unreachable!("no observed views")
        });
    };
    let total = views.len();
    let ref_owner = owners(reference);
    per_subject(ev.cluster_views(), expected, |subject, v| {
        let o = owners(v);
        let differ = ranges_where(|s| o[s] != ref_owner[s]);
        if differ.is_empty() {
            SubjectFinding::pass(subject, Why::SlotMapAgrees)
                .observed(format!("same slot map as {n_major} of {total} nodes"))
                .expected(expected)
                .message("agrees with the cluster's slot map")
        } else {
            let detail: Vec<String> = differ
                .iter()
                .take(5)
                .map(|r| {
                    let s = r.start as usize;
                    let mine = o[s]
                        .map(|id| who(v, id))
                        .unwrap_or_else(|| "unassigned".into());
                    let theirs = ref_owner[s]
                        .map(|id| who(reference, id))
                        .unwrap_or_else(|| "unassigned".into());
                    format!(
                        "slots {r}: this node says {mine}, {n_major} of {total} nodes say {theirs}"
                    )
                })
                .collect();
            SubjectFinding::fail(subject, Why::SlotMapDisagrees)
                .observed(format!(
                    "differs from the majority on {} slots ({})",
                    count(&differ),
                    fmt_ranges(&differ)
                ))
                .expected(expected)
                .message(format!("slot map disagreement: {}", detail.join("; ")))
        }
    })
}

fn open_slots(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "no slot in migrating or importing state";
    per_subject(ev.cluster_views(), expected, |subject, v| {
        let Some(me) = v.me() else {
            return SubjectFinding::error(subject, Why::MyselfMissing)
                .observed("no `myself` entry")
                .expected(expected)
                .message("CLUSTER NODES did not identify the node itself");
        };
        if me.migrating.is_empty() && me.importing.is_empty() {
            return SubjectFinding::pass(subject, Why::NoOpenSlots)
                .observed("no open slots")
                .expected(expected)
                .message("no resharding in progress");
        }
        let mut parts: Vec<String> = me
            .migrating
            .iter()
            .map(|m| format!("slot {} migrating to {}", m.slot, who(v, &m.node)))
            .collect();
        parts.extend(
            me.importing
                .iter()
                .map(|m| format!("slot {} importing from {}", m.slot, who(v, &m.node))),
        );
        SubjectFinding::fail(subject, Why::OpenSlots).observed(parts.join(", ")).expected(expected).message("open slots mean an interrupted or running reshard; finish it with `redis-cli --cluster fix` \
             or CLUSTER SETSLOT <slot> STABLE after checking where the keys are")
    })
}

fn state_ok(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "cluster_state:ok";
    per_subject(ev.cluster_views(), expected, |subject, v| {
        let g = |k: &str| v.info.get(k).map(String::as_str).unwrap_or("?");
        let observed = format!(
            "cluster_state:{} (slots assigned {}, ok {}, pfail {}, fail {}; known nodes {}, size {})",
            g("cluster_state"),
            g("cluster_slots_assigned"),
            g("cluster_slots_ok"),
            g("cluster_slots_pfail"),
            g("cluster_slots_fail"),
            g("cluster_known_nodes"),
            g("cluster_size")
        );
        match v.info.get("cluster_state").map(String::as_str) {
            Some("ok") => SubjectFinding::pass(subject, Why::StateOk).observed(observed).expected(expected).message("the node serves its slots"),
            Some(_) => SubjectFinding::fail(subject, Why::StateFail).observed(observed).expected(expected).message("the node reports the cluster as failed and refuses key commands (CLUSTERDOWN); \
                 check slot coverage and failed masters"),
            None => SubjectFinding::error(subject, Why::StateUnreported).observed("CLUSTER INFO has no cluster_state").expected(expected).message("unexpected CLUSTER INFO reply"),
        }
    })
}

/// What the other nodes say of node `id`.
struct PeerViews {
    /// Failing: a fail/pfail/handshake/noaddr flag, a link not connected,
    /// a health other than online or loading.
    complaints: Vec<(Why, String)>,
    /// A replica loading or syncing, by its peers and its own account.
    concerns: Vec<String>,
    /// Peers still saying loading of a replica in sync by its own INFO.
    stale: Vec<String>,
}

fn peer_views(
    id: &str,
    own: Option<&ClusterNodeView>,
    views: &[(&str, &ClusterNodeView)],
) -> PeerViews {
    let mut complaints = Vec::new();
    let mut concerns = Vec::new();
    let mut stale = Vec::new();
    for (subject, v) in views {
        let Some(n) = v.nodes.iter().find(|n| n.id == id) else {
            continue;
        };
        let bad: Vec<&str> = n
            .flags
            .iter()
            .map(String::as_str)
            .filter(|f| BAD_FLAGS.contains(f))
            .collect();
        if !bad.is_empty() {
            complaints.push((
                Why::NodeFlaggedFailing,
                format!("{subject} flags it {}", bad.join(",")),
            ));
        }
        if !n.has_flag("myself") && n.link_state != "connected" {
            complaints.push((
                Why::LinkDisconnected,
                format!("{subject} has its link {}", n.link_state),
            ));
        }
        for sn in v
            .shards
            .iter()
            .flat_map(|s| &s.nodes)
            .filter(|sn| sn.id == id)
        {
            match &sn.health {
                ShardHealth::Online => {}
                // Peers' view of a replica that loads or syncs; it lags
                // by gossip, so the replica's own INFO decides.
                ShardHealth::Loading if own.is_some_and(|o| o.own_replica_in_sync()) => {
                    stale.push(format!("{subject} still shows health loading"))
                }
                ShardHealth::Loading => concerns.push(format!("{subject} reports health loading")),
                other => complaints.push((
                    Why::HealthNotOnline,
                    format!("{subject} reports health {other}"),
                )),
            }
        }
    }
    PeerViews {
        complaints,
        concerns,
        stale,
    }
}

const BAD_FLAGS: &[&str] = &["fail", "fail?", "handshake", "noaddr"];

fn nodes_online(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected =
        "online: no fail/pfail/handshake/noaddr flag, link connected, health online, reachable";
    let all = ev.cluster_views();
    let views = observed_views(ev);
    // Every node anyone knows of, by id, with its address.
    let mut known: BTreeMap<String, String> = BTreeMap::new();
    for (_, v) in &views {
        for n in &v.nodes {
            let addr = if n.addr.starts_with(':') || n.addr.is_empty() {
                n.id.clone()
            } else {
                n.addr.clone()
            };
            known.entry(n.id.clone()).or_insert(addr);
        }
    }
    let probe_failure: BTreeMap<&str, &ProbeFailure> = all
        .iter()
        .filter_map(|(s, r)| r.err().map(|f| (*s, f)))
        .collect();
    let mut out = Vec::new();
    let mut covered: BTreeSet<String> = BTreeSet::new();
    for (id, addr) in &known {
        covered.insert(addr.clone());
        let own = views.iter().map(|(_, v)| *v).find(|v| &v.myself == id);
        let PeerViews {
            complaints,
            concerns,
            stale,
        } = peer_views(id, own, &views);
        let unreachable = probe_failure.get(addr.as_str());
        let subject = format!("{addr} ({})", short(id));
        if !complaints.is_empty() {
            let mut msg = joined(&complaints);
            if let Some(f) = unreachable {
                msg.push_str(&format!(
                    "; the auditor could not reach it either: {}",
                    f.message
                ));
            }
            out.push(
                SubjectFinding::fail(subject, complaints[0].0)
                    .observed(format!("{} complaint(s)", complaints.len()))
                    .expected(expected)
                    .message(msg),
            );
        } else if let Some(f) = unreachable {
            out.push(SubjectFinding::unobserved(&subject, expected, f));
        } else if !concerns.is_empty() {
            let own_says = match own.map(|o| &o.own_state) {
                Some(s) if !s.is_empty() => format!(
                    "its own INFO says {}",
                    s.iter()
                        .map(|(k, v)| format!("{k}:{v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                _ => "its own replication state could not be read".to_string(),
            };
            out.push(
                SubjectFinding::warn(subject, Why::ReplicaSyncing)
                    .observed(format!("{}; {own_says}", concerns.join("; ")))
                    .expected(expected)
                    .message(format!(
                    "transient: the replica is loading or syncing its data set ({own_says}) and \
                     cannot take over until it is in sync; re-run in a minute"
                )),
            );
        } else if !stale.is_empty() {
            out.push(SubjectFinding::pass(subject, Why::PeersGossipStale).observed(format!(
                    "{}; its own INFO says master_link_status:up, master_sync_in_progress:0, loading:0",
                    stale.join("; ")
                )).expected(expected).message("in sync by its own replication state; the peers' `loading` is gossip that has not caught up yet"));
        } else {
            out.push(
                SubjectFinding::pass(subject, Why::NodeHealthy)
                    .observed(format!("online in all {} views", views.len()))
                    .expected(expected)
                    .message("healthy as seen by every node"),
            );
        }
    }
    // Targets no observed node knows of (e.g. every probe failed).
    for (subject, r) in &all {
        if let Err(f) = r {
            if !covered.contains(*subject) {
                out.push(SubjectFinding::unobserved(subject, expected, f));
            }
        }
    }
    out
}

/// Parameters of `cluster.topology`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopologyParams {
    /// Expected number of masters serving slots.
    pub masters: Option<usize>,
    /// Expected slot ranges, one per master, inclusive.
    #[serde(default)]
    pub slot_ranges: Vec<[u16; 2]>,
    /// Where the contingency plan names each range's master (`host:port`
    /// as the cluster announces it, in `slot_ranges` order): a range served
    /// by another node (a failover, a manual move) has drifted. Empty: any
    /// node may serve it.
    #[serde(default)]
    pub masters_at: Vec<String>,
}

fn topology(ev: &EvidenceSet, p: &TopologyParams) -> Vec<SubjectFinding> {
    let views = observed_views(ev);
    let Some((_, n_major, v)) = majority(&views) else {
        return ev
            .cluster_views()
            .into_iter()
            .filter_map(|(s, r)| {
                r.err()
                    .map(|f| SubjectFinding::unobserved(s, "an observed slot map", f))
            })
            .collect();
    };
    let basis = format!("slot map of {n_major} of {} nodes", views.len());
    let mut out = Vec::new();
    let serving: Vec<_> = v
        .nodes
        .iter()
        .filter(|n| n.is_master() && !n.slots.is_empty())
        .collect();
    if let Some(m) = p.masters {
        let list: Vec<&str> = serving.iter().map(|n| n.addr.as_str()).collect();
        let observed = format!("{} masters serve slots: {}", serving.len(), list.join(", "));
        let (outcome, why, msg) = if serving.len() == m {
            (
                Outcome::Pass,
                Why::MasterCountAsExpected,
                format!("{m} masters as expected ({basis})"),
            )
        } else {
            (
                Outcome::Fail,
                Why::MasterCountWrong,
                format!(
                    "expected {m} masters serving slots, found {} ({basis})",
                    serving.len()
                ),
            )
        };
        out.push(
            SubjectFinding::with("masters", outcome, why)
                .observed(observed)
                .expected(format!("{m} masters"))
                .message(msg),
        );
    }
    let o = owners(v);
    let mut used: BTreeSet<&str> = BTreeSet::new();
    if !p.masters_at.is_empty() && p.masters_at.len() != p.slot_ranges.len() {
        out.push(SubjectFinding::error("masters_at", Why::MastersAtMismatched).observed(format!(
                "{} addresses for {} slot ranges",
                p.masters_at.len(),
                p.slot_ranges.len()
            )).expected("one address per slot range").message("fix masters_at in the policy: one host:port per entry of slot_ranges, in order"));
    }
    for (k, [a, b]) in p.slot_ranges.iter().enumerate() {
        let (a, b) = (*a as usize, *b as usize);
        let subject = format!("slots {a}-{b}");
        let expected = format!("slots {a}-{b} served by one master that serves nothing else");
        if a > b || b >= SLOTS {
            out.push(
                SubjectFinding::error(subject, Why::InvalidRange)
                    .observed("invalid range in policy")
                    .expected(expected)
                    .message("fix slot_ranges in the policy"),
            );
            continue;
        }
        let owners_in: BTreeSet<Option<&str>> = (a..=b).map(|s| o[s]).collect();
        let finding = match owners_in.iter().collect::<Vec<_>>().as_slice() {
            [Some(id)] => one_master(
                &subject,
                &expected,
                id,
                k,
                (a, b),
                v,
                &o,
                &mut used,
                p,
                &basis,
            ),
            _ => {
                let parts: Vec<String> = owners_in
                    .iter()
                    .map(|id| match id {
                        Some(id) => format!(
                            "{} serves {}",
                            who(v, id),
                            fmt_ranges(&ranges_where(|s| s >= a && s <= b && o[s] == Some(*id)))
                        ),
                        None => format!(
                            "unassigned: {}",
                            fmt_ranges(&ranges_where(|s| s >= a && s <= b && o[s].is_none()))
                        ),
                    })
                    .collect();
                SubjectFinding::fail(&subject, Why::RangeSplit)
                    .observed(parts.join("; "))
                    .expected(expected)
                    .message("the range is split across masters or partly unassigned")
            }
        };
        out.push(finding);
    }
    if out.is_empty() {
        out.push(SubjectFinding::incomplete("topology", Why::NoExpectedTopology).observed("not audited: no expectation").expected("masters and/or slot_ranges in the policy").message("the policy gives no expected topology: set masters and/or slot_ranges in this \
             check's params, or enabled = false to leave it out of the verdict"));
    }
    out
}

/// The finding on an expected range served by one master `id`: that
/// master serves nothing outside it, no other expected range, and is the
/// one `masters_at` names for it (when it names one).
#[allow(clippy::too_many_arguments)]
fn one_master<'a>(
    subject: &str,
    expected: &str,
    id: &'a str,
    k: usize,
    (a, b): (usize, usize),
    v: &ClusterNodeView,
    o: &[Option<&str>],
    used: &mut BTreeSet<&'a str>,
    p: &TopologyParams,
    basis: &str,
) -> SubjectFinding {
    let extra = ranges_where(|s| (s < a || s > b) && o[s] == Some(id));
    if !extra.is_empty() {
        SubjectFinding::fail(subject, Why::MasterServesMore)
            .observed(format!("{} also serves {}", who(v, id), fmt_ranges(&extra)))
            .expected(expected)
            .message("the master of this range serves slots outside it")
    } else if !used.insert(id) {
        SubjectFinding::fail(subject, Why::RangesShareMaster)
            .observed(format!(
                "served by {}, which serves another expected range too",
                who(v, id)
            ))
            .expected(expected)
            .message("two expected ranges share a master")
    } else if let Some(want) = p
        .masters_at
        .get(k)
        .filter(|w| v.nodes.iter().find(|n| n.id == id).map(|n| &n.addr) != Some(*w))
    {
        SubjectFinding::fail(subject, Why::RangeMasterMoved)
            .observed(format!("served by {}", who(v, id)))
            .expected(format!("{expected}: {want}"))
            .message(format!(
                "the policy names {want} as this range's master, but {} serves it \
                     (a failover or a manual move; {basis})",
                who(v, id)
            ))
    } else {
        let at = p
            .masters_at
            .get(k)
            .map(|w| format!(": {w}"))
            .unwrap_or_default();
        SubjectFinding::pass(subject, Why::RangeAsExpected)
            .observed(format!("served by {}", who(v, id)))
            .expected(format!("{expected}{at}"))
            .message(format!("as expected ({basis})"))
    }
}

fn keyslot_agreement(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "client CRC16 slot == CLUSTER KEYSLOT";
    match ev.key_slots() {
        None => Vec::new(),
        Some(Err(f)) => vec![SubjectFinding::unobserved("cluster", expected, f)],
        Some(Ok(k)) => k
            .samples
            .iter()
            .map(|s| {
                let client = crate::evidence::key_slot(s.key.as_bytes());
                let subject = format!("key `{}`", s.key);
                let observed = format!("client {client}, server {} ({})", s.server_slot, k.node);
                if client == s.server_slot {
                    SubjectFinding::pass(subject, Why::HashSlotAgrees).observed(observed).expected(expected).message("client and server hash the key to the same slot")
                } else {
                    SubjectFinding::fail(subject, Why::HashSlotDiffers).observed(observed).expected(expected).message("clients would route this key to the wrong node (MOVED storms); the server's hashing differs from the cluster specification")
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_collapse_and_format() {
        let r = ranges_where(|s| (100..200).contains(&s) || s == 300 || s == SLOTS - 1);
        assert_eq!(fmt_ranges(&r), "100-199, 300, 16383");
        assert_eq!(count(&r), 102);
        assert_eq!(fmt_ranges(&ranges_where(|_| false)), "none");
    }
}
