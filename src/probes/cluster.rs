//! Cluster topology: CLUSTER INFO / NODES / SHARDS from every node, node
//! discovery from the seeds, and CLUSTER KEYSLOT for sample keys.
//!
//! Read-only by construction: only CLUSTER INFO, CLUSTER NODES, CLUSTER
//! SHARDS, CLUSTER KEYSLOT and INFO are sent (plus AUTH).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tokio::time::timeout;

use super::scaffold::{per_target, Probe, ProbeContext, ProbeFuture, Target};
use crate::config::NodeAddr;
use crate::evidence::{
    ClusterNodeView, Evidence, FailureKind, KeySlotSample, KeySlotSamples, NodeEntry, Observation,
    Observed, OpenSlot, ProbeFailure, ProbeId, Shard, ShardHealth, ShardNode, ShardRole, SlotRange,
};
use crate::resp::{as_text, describe, error_text, map_pairs, parse_info};

/// Synthetic keys whose slots are compared with the server's (hash tags,
/// empty and nested braces, non-ASCII). Never real session keys.
pub(crate) const SAMPLE_KEYS: &[&str] = &[
    "123456789",
    "epic-audit-sample:0001",
    "{user1000}.following",
    "{user1000}.followers",
    "foo{}{bar}",
    "foo{{bar}}zap",
    "foo{bar}{zap}",
    "{}",
    "patient:Zoë:ä€",
    "a",
];

fn method(user: &str) -> String {
    format!(
        "CLUSTER INFO, CLUSTER NODES, CLUSTER SHARDS and INFO server/replication/persistence over TLS (client certificate), \
         authenticated as {user}; read-only"
    )
}

/// Observes one node: one pipelined round trip on the node's shared
/// connection (opened here: discovery is every node's first contact).
pub(crate) async fn observe_node(
    ctx: &ProbeContext,
    addr: &NodeAddr,
) -> Result<ClusterNodeView, ProbeFailure> {
    let cmds: Vec<Vec<Vec<u8>>> = [
        &["CLUSTER", "INFO"][..],
        &["CLUSTER", "NODES"],
        &["CLUSTER", "SHARDS"],
        &["INFO", "server"],
        &["INFO", "replication"],
        &["INFO", "persistence"],
    ]
    .iter()
    .map(|c| c.iter().map(|w| w.as_bytes().to_vec()).collect())
    .collect();
    let (replies, reached_by) = {
        let mut conn = ctx.conn(addr).await?;
        let replies = conn.pipeline(&cmds).await?;
        (replies, conn.reached().cloned().map(Box::new))
    };
    let text = |i: usize, what: &str| -> Result<String, ProbeFailure> {
        match replies.get(i) {
            Some(redis::Value::ServerError(e)) => Err(ProbeFailure {
                kind: FailureKind::ServerError,
                message: format!("{addr} answered {what} with: {}", error_text(e)),
            }),
            Some(f) => as_text(f).ok_or_else(|| unexpected(addr, what, Some(f))),
            None => Err(unexpected(addr, what, None)),
        }
    };
    let info = parse_info(&text(0, "CLUSTER INFO")?);
    let nodes_text = text(1, "CLUSTER NODES")?;
    let nodes = parse_cluster_nodes(&nodes_text).map_err(|e| ProbeFailure {
        kind: FailureKind::UnexpectedReply,
        message: format!("{addr}: CLUSTER NODES: {e}"),
    })?;
    let shards = match replies.get(2) {
        Some(redis::Value::ServerError(e)) => {
            return Err(ProbeFailure {
                kind: FailureKind::ServerError,
                message: format!("{addr} answered CLUSTER SHARDS with: {}", error_text(e)),
            })
        }
        Some(f) => parse_cluster_shards(f).map_err(|e| ProbeFailure {
            kind: FailureKind::UnexpectedReply,
            message: format!("{addr}: CLUSTER SHARDS: {e}"),
        })?,
        None => return Err(unexpected(addr, "CLUSTER SHARDS", None)),
    };
    let server = parse_info(&text(3, "INFO server")?);
    let myself = nodes
        .iter()
        .find(|n| n.has_flag("myself"))
        .map(|n| n.id.clone())
        .ok_or_else(|| ProbeFailure {
            kind: FailureKind::UnexpectedReply,
            message: format!("{addr}: CLUSTER NODES has no `myself` line"),
        })?;
    // The node's own replication state; a refusal (NOPERM) leaves it out
    // and CLU-005 then says it could not be cross-checked.
    let mut own_state = BTreeMap::new();
    for i in [4, 5] {
        if let Some(t) = replies.get(i).and_then(as_text) {
            let fields = parse_info(&t);
            for k in crate::evidence::OWN_STATE_FIELDS {
                if let Some(v) = fields.get(k) {
                    own_state.insert(k.to_string(), v.clone());
                }
            }
        }
    }
    Ok(ClusterNodeView {
        myself,
        redis_version: server.get("redis_version").cloned(),
        server: crate::evidence::ServerIdentity::from_info(&server),
        info,
        nodes,
        shards,
        own_state,
        reached_by,
    })
}

fn unexpected(addr: &NodeAddr, what: &str, f: Option<&redis::Value>) -> ProbeFailure {
    ProbeFailure {
        kind: FailureKind::UnexpectedReply,
        message: format!("{addr} answered {what} with {}", describe(f)),
    }
}

/// Observes every address under the per-node deadline: one evidence item
/// per address, in order.
async fn observe_all(ctx: &Arc<ProbeContext>, addrs: Vec<NodeAddr>) -> Vec<(NodeAddr, Evidence)> {
    let targets = addrs
        .iter()
        .map(|a| Target::node(a.clone(), method(&ctx.user)))
        .collect();
    let items = per_target(
        ProbeId::Cluster,
        "cluster probe",
        ctx.timeouts.probe(),
        targets,
        |addr| {
            let ctx = ctx.clone();
            async move {
                observe_node(&ctx, &addr)
                    .await
                    .map(Observation::ClusterNode)
            }
        },
    )
    .await;
    addrs.into_iter().zip(items).collect()
}

/// Discovery: observe the seeds, collect every node they announce in CLUSTER
/// SHARDS (and NODES), then observe the ones not yet seen. Returns the
/// target list (advertised `ip:port` addresses, sorted) and one evidence
/// item per target. A seed that advertises itself under another address
/// (a seed given by DNS name, or through a NAT) is recorded under the
/// advertised one. Where the cluster prefers hostnames, every node is then
/// dialled by the name it announces (see [`TlsClient::names`]).
///
/// [`TlsClient::names`]: crate::tls::TlsClient::names
pub(crate) async fn discover(
    ctx: Arc<ProbeContext>,
    seeds: &[NodeAddr],
) -> (Vec<NodeAddr>, Vec<Evidence>) {
    let mut evidence: BTreeMap<String, Evidence> = BTreeMap::new();
    let mut announced: BTreeSet<String> = BTreeSet::new();
    let seed_results = observe_all(&ctx, seeds.to_vec()).await;
    for (seed, mut ev) in seed_results {
        if let Observed::Observation(Observation::ClusterNode(view)) = &ev.result {
            announced.extend(announced_addrs(view));
            ctx.tls.announce_names(announced_names(view));
            if let Some(me) = view.me() {
                if !me.addr.is_empty() && me.addr != seed.to_string() {
                    ev.method = format!("{} (reached via seed {seed})", ev.method);
                    ev.subject = me.addr.clone();
                }
            }
        }
        evidence.entry(ev.subject.clone()).or_insert(ev);
    }
    let rest: Vec<NodeAddr> = announced
        .iter()
        .filter(|a| !evidence.contains_key(*a))
        .filter_map(|a| NodeAddr::parse(a).ok())
        .collect();
    for (_, ev) in observe_all(&ctx, rest).await {
        evidence.insert(ev.subject.clone(), ev);
    }
    let mut targets: Vec<NodeAddr> = evidence
        .keys()
        .filter_map(|k| NodeAddr::parse(k).ok())
        .collect();
    targets.sort();
    (targets, evidence.into_values().collect())
}

/// Client addresses (`ip:port`) a node announces for the whole cluster.
pub(crate) fn announced_addrs(view: &ClusterNodeView) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = view
        .shards
        .iter()
        .flat_map(|s| s.nodes.iter())
        .filter_map(ShardNode::client_addr)
        .collect();
    for n in &view.nodes {
        if !n.addr.is_empty() && !n.addr.starts_with(':') && !n.has_flag("noaddr") {
            out.insert(n.addr.clone());
        }
    }
    out
}

/// The DNS names a node announces as its peers' preferred endpoints
/// (`ip:port` -> name), where the cluster prefers hostnames.
pub(crate) fn announced_names(view: &ClusterNodeView) -> Vec<(String, String)> {
    view.shards
        .iter()
        .flat_map(|s| s.nodes.iter())
        .filter_map(|n| Some((n.client_addr()?, n.announced_name()?.to_string())))
        .collect()
}

/// CLUSTER KEYSLOT for [`SAMPLE_KEYS`] on the first target that answers.
pub(crate) struct KeySlotProbe;

impl Probe for KeySlotProbe {
    fn name(&self) -> ProbeId {
        ProbeId::KeySlots
    }

    fn run(&self, ctx: Arc<ProbeContext>) -> ProbeFuture {
        Box::pin(async move {
            let t0 = Instant::now();
            let mut last = ProbeFailure {
                kind: FailureKind::NoTarget,
                message: "no node to ask: discovery found none".into(),
            };
            let mut result = None;
            for addr in &ctx.targets {
                match timeout(ctx.timeouts.probe(), keyslots(&ctx, addr)).await {
                    Ok(Ok(k)) => {
                        result = Some(k);
                        break;
                    }
                    Ok(Err(f)) => last = f,
                    Err(_) => {
                        last = ProbeFailure {
                            kind: FailureKind::Deadline,
                            message: format!(
                                "{addr}: CLUSTER KEYSLOT did not finish within {} ms",
                                ctx.timeouts.probe_ms
                            ),
                        }
                    }
                }
            }
            vec![Evidence {
                probe: ProbeId::KeySlots,
                subject: "cluster".into(),
                method: format!(
                    "CLUSTER KEYSLOT for {} synthetic sample keys, as {}",
                    SAMPLE_KEYS.len(),
                    ctx.user
                ),
                observed_at: Utc::now(),
                duration_ms: t0.elapsed().as_millis() as u64,
                result: match result {
                    Some(k) => Observed::Observation(Observation::KeySlots(k)),
                    None => Observed::Failure(last),
                },
            }]
        })
    }
}

async fn keyslots(ctx: &ProbeContext, addr: &NodeAddr) -> Result<KeySlotSamples, ProbeFailure> {
    let cmds: Vec<Vec<Vec<u8>>> = SAMPLE_KEYS
        .iter()
        .map(|k| {
            vec![
                b"CLUSTER".to_vec(),
                b"KEYSLOT".to_vec(),
                k.as_bytes().to_vec(),
            ]
        })
        .collect();
    let replies = ctx.conn(addr).await?.pipeline(&cmds).await?;
    let mut samples = Vec::new();
    for (k, f) in SAMPLE_KEYS.iter().zip(&replies) {
        match f {
            redis::Value::Int(i) if (0..16384).contains(i) => samples.push(KeySlotSample {
                key: k.to_string(),
                server_slot: *i as u16,
            }),
            other => return Err(unexpected(addr, "CLUSTER KEYSLOT", Some(other))),
        }
    }
    Ok(KeySlotSamples {
        node: addr.to_string(),
        samples,
    })
}

/// Parses the text of CLUSTER NODES.
pub fn parse_cluster_nodes(text: &str) -> Result<Vec<NodeEntry>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| parse_node_line(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

fn parse_node_line(line: &str) -> Result<NodeEntry, String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 8 {
        return Err(format!("expected at least 8 fields, got {}", f.len()));
    }
    let (addr_part, bus_part) = f[1].split_once('@').unwrap_or((f[1], ""));
    let (bus, hostname) = match bus_part.split_once(',') {
        Some((b, h)) => (b, (!h.is_empty()).then(|| h.to_string())),
        None => (bus_part, None),
    };
    let mut entry = NodeEntry {
        id: f[0].to_string(),
        addr: addr_part.to_string(),
        bus_port: bus.parse().ok(),
        hostname,
        flags: f[2].split(',').map(str::to_string).collect(),
        master: (f[3] != "-").then(|| f[3].to_string()),
        link_state: f[7].to_string(),
        config_epoch: f[6]
            .parse()
            .map_err(|_| format!("config epoch `{}` is not a number", f[6]))?,
        slots: Vec::new(),
        migrating: Vec::new(),
        importing: Vec::new(),
    };
    for tok in &f[8..] {
        if let Some(inner) = tok.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            if let Some((s, id)) = inner.split_once("->-") {
                entry.migrating.push(OpenSlot {
                    slot: parse_slot(s)?,
                    node: id.to_string(),
                });
            } else if let Some((s, id)) = inner.split_once("-<-") {
                entry.importing.push(OpenSlot {
                    slot: parse_slot(s)?,
                    node: id.to_string(),
                });
            } else {
                return Err(format!("unknown slot token `{tok}`"));
            }
        } else if let Some((a, b)) = tok.split_once('-') {
            entry.slots.push(SlotRange {
                start: parse_slot(a)?,
                end: parse_slot(b)?,
            });
        } else {
            let s = parse_slot(tok)?;
            entry.slots.push(SlotRange { start: s, end: s });
        }
    }
    Ok(entry)
}

fn parse_slot(s: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .ok()
        .filter(|v| *v < 16384)
        .ok_or_else(|| format!("`{s}` is not a slot number (0-16383)"))
}

fn int(f: &redis::Value) -> Option<i64> {
    match f {
        redis::Value::Int(i) => Some(*i),
        other => as_text(other).and_then(|t| t.parse().ok()),
    }
}

/// Parses the RESP2 reply of CLUSTER SHARDS.
pub fn parse_cluster_shards(f: &redis::Value) -> Result<Vec<Shard>, String> {
    let redis::Value::Array(shards) = f else {
        return Err(format!("expected an array, got {}", describe(Some(f))));
    };
    let mut out = Vec::new();
    for s in shards {
        let mut shard = Shard {
            slots: Vec::new(),
            nodes: Vec::new(),
        };
        for (k, v) in map_pairs(s)? {
            match (k.as_str(), v) {
                ("slots", redis::Value::Array(bounds)) => {
                    if bounds.len() % 2 != 0 {
                        return Err("slots list with an odd number of bounds".into());
                    }
                    for b in bounds.chunks(2) {
                        let (Some(a), Some(z)) = (int(&b[0]), int(&b[1])) else {
                            return Err("slot bound is not an integer".into());
                        };
                        let ok = |x: i64| (0..16384).contains(&x);
                        if !ok(a) || !ok(z) {
                            return Err(format!("slot range {a}-{z} is outside 0-16383"));
                        }
                        shard.slots.push(SlotRange {
                            start: a as u16,
                            end: z as u16,
                        });
                    }
                }
                ("nodes", redis::Value::Array(nodes)) => {
                    for n in nodes {
                        let mut node = ShardNode {
                            id: String::new(),
                            endpoint: String::new(),
                            hostname: String::new(),
                            ip: String::new(),
                            port: None,
                            tls_port: None,
                            role: ShardRole::Other(String::new()),
                            health: ShardHealth::Other(String::new()),
                        };
                        for (nk, nv) in map_pairs(n)? {
                            let port = || int(nv).and_then(|p| u16::try_from(p).ok());
                            match nk.as_str() {
                                "id" => node.id = as_text(nv).unwrap_or_default(),
                                "endpoint" => node.endpoint = as_text(nv).unwrap_or_default(),
                                "hostname" => node.hostname = as_text(nv).unwrap_or_default(),
                                "ip" => node.ip = as_text(nv).unwrap_or_default(),
                                "port" => node.port = port(),
                                "tls-port" => node.tls_port = port(),
                                "role" => node.role = as_text(nv).unwrap_or_default().into(),
                                "health" => node.health = as_text(nv).unwrap_or_default().into(),
                                _ => {}
                            }
                        }
                        if node.id.is_empty() {
                            return Err("a shard node without an id".into());
                        }
                        shard.nodes.push(node);
                    }
                }
                _ => {}
            }
        }
        out.push(shard);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.1.4:6379@16379 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.1.1:6379@16379,node-a myself,master - 0 0 1 connected 0-5460 [93->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f] [77-<-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.1.2:6379@16379 master,fail - 1426238316232 1426238315000 2 disconnected 5461-10921 10922
6ec23923021cf3ffec47632106199cb7f496ce01 :0@0 master,noaddr - 0 0 0 disconnected
";

    #[test]
    fn parses_cluster_nodes_with_open_slots_hostnames_and_flags() {
        let n = parse_cluster_nodes(NODES).unwrap();
        assert_eq!(n.len(), 4);
        assert_eq!(
            n[0].master.as_deref(),
            Some("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca")
        );
        assert_eq!(n[1].hostname.as_deref(), Some("node-a"));
        assert_eq!(n[1].bus_port, Some(16379));
        assert_eq!(
            n[1].slots,
            vec![SlotRange {
                start: 0,
                end: 5460
            }]
        );
        assert_eq!(n[1].migrating[0].slot, 93);
        assert_eq!(n[1].importing[0].slot, 77);
        assert!(n[2].has_flag("fail"));
        assert_eq!(
            n[2].slots[1],
            SlotRange {
                start: 10922,
                end: 10922
            }
        );
        assert!(n[3].has_flag("noaddr"));
    }

    #[test]
    fn rejects_malformed_node_lines_with_a_reason() {
        assert!(parse_cluster_nodes("abc 1.2.3.4:1@2 master")
            .unwrap_err()
            .contains("line 1"));
        let e = parse_cluster_nodes(&NODES.replace("0-5460", "0-99999")).unwrap_err();
        assert!(e.contains("99999"), "{e}");
    }

    fn bulk(s: &str) -> redis::Value {
        redis::Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_cluster_shards_and_builds_client_addresses() {
        let node = redis::Value::Array(vec![
            bulk("id"),
            bulk("e7d1"),
            bulk("tls-port"),
            redis::Value::Int(6379),
            bulk("ip"),
            bulk("127.0.1.1"),
            bulk("endpoint"),
            bulk("127.0.1.1"),
            bulk("role"),
            bulk("master"),
            bulk("replication-offset"),
            redis::Value::Int(72156),
            bulk("health"),
            bulk("online"),
        ]);
        let shard = redis::Value::Array(vec![
            bulk("slots"),
            redis::Value::Array(vec![redis::Value::Int(0), redis::Value::Int(5460)]),
            bulk("nodes"),
            redis::Value::Array(vec![node]),
        ]);
        let s = parse_cluster_shards(&redis::Value::Array(vec![shard])).unwrap();
        assert_eq!(
            s[0].slots,
            vec![SlotRange {
                start: 0,
                end: 5460
            }]
        );
        assert_eq!(s[0].nodes[0].port, None);
        assert_eq!(
            s[0].nodes[0].client_addr().as_deref(),
            Some("127.0.1.1:6379")
        );
        assert!(parse_cluster_shards(&bulk("x")).is_err());
        assert!(
            parse_cluster_shards(&redis::Value::Array(vec![redis::Value::Array(vec![bulk(
                "slots"
            )])]))
            .is_err()
        );
    }
}
