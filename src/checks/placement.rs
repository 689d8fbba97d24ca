//! Placement rules (area `cluster`, contingency planning): the Redis
//! topology joined to the AWS inventory. Masters sit in distinct
//! availability zones, a replica does not share its master's zone, and
//! every node runs on a discovered instance in the expected VPC (so the
//! security-group and volume checks covered it).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::reason::reasons;
use super::rule::{with_aws, NoParams, Rule, SubjectFinding};
use crate::evidence::EvidenceSet;
use crate::evidence::{AwsInventory, Ec2Instance, JoinedBy, ProbeId, Topology};

reasons! {
    /// Why a node's placement got its outcome (CLU-008, CLU-009, CLU-010).
    Placement => Why {
        /// No EC2 instance found for the node.
        NoInstance = "no-instance",
        /// The only master in its availability zone.
        OnlyMasterInZone = "only-master-in-zone",
        /// Two or more masters share an availability zone.
        MastersShareZone = "masters-share-zone",
        /// The replica is outside its master's zone.
        ReplicaInOtherZone = "replica-in-other-zone",
        /// The replica shares its master's zone.
        ReplicaSharesMasterZone = "replica-shares-master-zone",
        /// The node's instance is in the policy's VPC.
        InExpectedVpc = "in-expected-vpc",
        /// The node's instance is in another VPC.
        OutsideVpc = "outside-vpc",
        /// No instance found by the discovery tag holds the node.
        NodeOutsideEstate = "node-outside-estate",
    }
}

const METHOD: &str = "The slot map from discovery (CLUSTER NODES/SHARDS, majority view) joined \
to the AWS inventory: each node's address (or its aws.node_ip_map entry) matched to the private \
IPs of the instances found by the discovery tag (ec2 DescribeInstances, DescribeVpcs). Read-only.";

/// The placement rules.
pub(crate) fn rules() -> Vec<Rule> {
    vec![
        Rule::new(
            "placement.masters_az",
            &[ProbeId::Cluster, ProbeId::Aws],
            METHOD,
            masters_az,
        ),
        Rule::new(
            "placement.replica_az",
            &[ProbeId::Cluster, ProbeId::Aws],
            METHOD,
            replica_az,
        ),
        Rule::new(
            "placement.nodes_vpc",
            &[ProbeId::Cluster, ProbeId::Aws],
            METHOD,
            nodes_vpc,
        ),
    ]
}

/// A node's instance, or why it has none.
fn instance_of<'a>(inv: &'a AwsInventory, node: &str) -> Result<&'a Ec2Instance, String> {
    let Some(p) = inv.placement(node) else {
        return Err(format!("{node} was not joined to the inventory"));
    };
    p.instance
        .as_deref()
        .and_then(|id| inv.instance(id))
        .ok_or_else(|| {
            format!(
                "no instance found by {} has private IP {} ({}); if the node's address is not \
                 its instance's private IP, map it in the environment's aws.node_ip_map",
                inv.discovery,
                p.ip,
                match p.joined_by {
                    JoinedBy::NodeIpMap => "from aws.node_ip_map",
                    JoinedBy::Address => "the node's own address",
                }
            )
        })
}

fn az(i: &Ec2Instance) -> &str {
    i.availability_zone.as_deref().unwrap_or("?")
}

/// Replica address -> its master's address, each node's own claim.
fn replicas(ev: &EvidenceSet) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (subject, v) in ev.cluster_views() {
        let Ok(v) = v else { continue };
        let Some(me) = v.me() else { continue };
        if let Some(master) = me
            .master
            .as_deref()
            .and_then(|id| v.nodes.iter().find(|n| n.id == id))
        {
            out.insert(subject.to_string(), master.addr.clone());
        }
    }
    out
}

fn masters_az(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "every master in its own availability zone";
    let masters = Topology::from_evidence(&ev.items).masters;
    with_aws(ev, expected, |inv| {
        if masters.is_empty() {
            return Vec::new();
        }
        let placed: BTreeMap<&str, Result<&Ec2Instance, String>> = masters
            .keys()
            .map(|m| (m.as_str(), instance_of(inv, m)))
            .collect();
        placed
            .iter()
            .map(|(m, i)| match i {
                Err(e) => SubjectFinding::error(*m, Why::NoInstance).observed("no instance").expected(expected).message(e.clone()),
                Ok(i) => {
                    let subject = format!("{m} ({}, {})", i.id, az(i));
                    let same: Vec<String> = placed
                        .iter()
                        .filter(|(o, oi)| o != &m && oi.as_ref().is_ok_and(|oi| az(oi) == az(i)))
                        .map(|(o, oi)| {
                            format!("{o} ({})", oi.as_ref().map(|x| x.id.as_str()).unwrap_or("?"))
                        })
                        .collect();
                    if same.is_empty() {
                        SubjectFinding::pass(subject, Why::OnlyMasterInZone).observed(az(i)).expected(expected).message("the only master in its zone")
                    } else {
                        SubjectFinding::fail(subject, Why::MastersShareZone).observed(az(i)).expected(expected).message(format!(
                                "shares {} with master {}: losing that zone takes out more than one \
                                 master, and with them a majority of the slot map; move one master \
                                 (fail over to a replica in another zone, CLUSTER FAILOVER)",
                                az(i),
                                same.join(", ")
                            ))
                    }
                }
            })
            .collect()
    })
}

fn replica_az(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "each replica outside its master's availability zone";
    let pairs = replicas(ev);
    with_aws(ev, expected, |inv| {
        pairs
            .iter()
            .map(|(r, m)| match (instance_of(inv, r), instance_of(inv, m)) {
                (Err(e), _) | (_, Err(e)) => SubjectFinding::error(r.as_str(), Why::NoInstance)
                    .observed("no instance")
                    .expected(expected)
                    .message(e),
                (Ok(ri), Ok(mi)) => {
                    let subject = format!("{r} ({}, {})", ri.id, az(ri));
                    let observed = format!("replica in {}, master {m} in {}", az(ri), az(mi));
                    if az(ri) == az(mi) {
                        SubjectFinding::warn(subject, Why::ReplicaSharesMasterZone)
                            .observed(observed)
                            .expected(expected)
                            .message(format!(
                                "the replica shares {} with its master {m}: one zone outage \
                                 loses both copies of its slots; place it in another zone",
                                az(ri)
                            ))
                    } else {
                        SubjectFinding::pass(subject, Why::ReplicaInOtherZone)
                            .observed(observed)
                            .expected(expected)
                            .message("survives the loss of its master's zone")
                    }
                }
            })
            .collect()
    })
}

/// Parameters of `placement.nodes_vpc`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VpcParams {
    /// The IPv4 CIDR block of the VPC the cluster must live in.
    pub vpc_cidr: String,
}

fn nodes_vpc(ev: &EvidenceSet, p: &VpcParams) -> Vec<SubjectFinding> {
    let expected = format!(
        "on an instance found by the discovery tag, in the VPC {}",
        p.vpc_cidr
    );
    let nodes: Vec<String> = ev.targets.clone();
    with_aws(ev, &expected, |inv| {
        nodes
            .iter()
            .map(|n| match instance_of(inv, n) {
                Err(e) => SubjectFinding::fail(n.as_str(), Why::NodeOutsideEstate)
                    .observed("no instance")
                    .expected(&expected)
                    .message(format!(
                        "the node is outside the audited estate, so its security groups and \
                         volumes were not checked: {e}"
                    )),
                Ok(i) => {
                    let vpc = i
                        .vpc_id
                        .as_deref()
                        .and_then(|id| inv.vpcs.iter().find(|v| v.id == id));
                    let cidrs = vpc.map(|v| v.cidrs.join(", ")).unwrap_or_default();
                    let observed = format!(
                        "{} in {} ({cidrs})",
                        i.id,
                        i.vpc_id.as_deref().unwrap_or("no VPC")
                    );
                    let subject = format!("{n} ({})", i.id);
                    if vpc.is_some_and(|v| v.cidrs.contains(&p.vpc_cidr)) {
                        SubjectFinding::pass(subject, Why::InExpectedVpc)
                            .observed(observed)
                            .expected(&expected)
                            .message("in the expected VPC")
                    } else {
                        SubjectFinding::fail(subject, Why::OutsideVpc)
                            .observed(observed)
                            .expected(&expected)
                            .message(format!(
                                "the instance is not in the VPC {}: the network controls (and the \
                                 allowlist's `vpc` source) assume it is",
                                p.vpc_cidr
                            ))
                    }
                }
            })
            .collect()
    })
}
