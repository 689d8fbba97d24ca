//! The AWS estate around the cluster: which EC2 instances run it, the
//! security groups attached to them, their EBS volumes and the KMS keys of
//! those volumes, and where each Redis node sits (instance, AZ, VPC).
//!
//! Read-only: EC2 `Describe*`/`Get*` and KMS `DescribeKey`,
//! `GetKeyRotationStatus`, `ListAliases`, through the real AWS SDK. Every
//! list call is paginated. Credentials, region and endpoint come from the
//! standard chain or the environment's `[aws]` table; connect and attempt
//! timeouts come from the environment's timeouts, with three attempts per
//! call (standard retry mode, which backs off on throttling). A failed EC2
//! call makes the whole inventory a failure naming the call (`error` for
//! every AWS check); a failed KMS call is recorded on the key it was about.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_ec2::types::Filter;
use chrono::Utc;

use super::scaffold::{Probe, ProbeContext, ProbeFuture};
use crate::aws::{api_failure, sdk_config};
use crate::config::{AwsSettings, NodeAddr, Timeouts};
use crate::evidence::{
    AwsInventory, Ec2Instance, Evidence, FailureKind, IngressRule, JoinedBy, KmsKey, NodePlacement,
    Observation, Observed, PrefixList, ProbeFailure, ProbeId, SecurityGroup, Snapshot, Source,
    Volume, Vpc,
};

/// Looks at the AWS estate of the environment.
pub(crate) struct AwsProbe;

impl Probe for AwsProbe {
    fn name(&self) -> ProbeId {
        ProbeId::Aws
    }

    fn run(&self, ctx: Arc<ProbeContext>) -> ProbeFuture {
        Box::pin(async move {
            let t0 = Instant::now();
            let Some(settings) = ctx.aws.clone() else {
                return vec![item(
                    "aws".into(),
                    "none".into(),
                    t0,
                    Observed::Failure(ProbeFailure {
                        kind: FailureKind::NotConfigured,
                        message: "the environment has no [aws] table, so the AWS estate \
                                  (security groups, EBS/KMS, placement) is not audited"
                            .into(),
                    }),
                )];
            };
            let region = settings.region.clone().unwrap_or_else(|| "default".into());
            let subject = format!("aws:{region}");
            let method = format!(
                "AWS SDK, read-only: ec2 DescribeInstances ({}), DescribeSecurityGroups, \
                 GetManagedPrefixListEntries, DescribeVpcs, DescribeVolumes, DescribeSnapshots \
                 (owner self, by volume), GetEbsEncryptionByDefault; kms DescribeKey, GetKeyRotationStatus, ListAliases{}",
                discovery_label(&settings),
                settings
                    .endpoint
                    .as_deref()
                    .map(|e| format!("; endpoint {e}"))
                    .unwrap_or_default()
            );
            let budget = ctx.timeouts.probe();
            let nodes: Vec<NodeAddr> = ctx.targets.clone();
            let result =
                match tokio::time::timeout(budget, inventory(&settings, &ctx.timeouts, &nodes))
                    .await
                {
                    Ok(Ok(inv)) => Observed::Observation(Observation::Aws(Box::new(inv))),
                    Ok(Err(mut f)) => {
                        // Where it looked, when the endpoint did not answer
                        // (the SDK's own error does not say).
                        if matches!(f.kind, FailureKind::Connect | FailureKind::Timeout) {
                            f.message.push_str(&match &settings.endpoint {
                                Some(e) => format!(" (endpoint {e})"),
                                None => format!(" (the AWS endpoint of region {region})"),
                            });
                        }
                        Observed::Failure(f)
                    }
                    Err(_) => Observed::Failure(ProbeFailure {
                        kind: FailureKind::Deadline,
                        message: format!(
                            "the AWS inventory did not complete within probe_ms ({} ms)",
                            ctx.timeouts.probe_ms
                        ),
                    }),
                };
            vec![item(subject, method, t0, result)]
        })
    }
}

fn item(subject: String, method: String, t0: Instant, result: Observed) -> Evidence {
    Evidence {
        probe: ProbeId::Aws,
        subject,
        method,
        observed_at: Utc::now(),
        duration_ms: t0.elapsed().as_millis() as u64,
        result,
    }
}

fn discovery_label(s: &AwsSettings) -> String {
    format!("tag:{}={}", s.discovery.tag, s.discovery.value)
}

/// Reads the inventory: instances by the discovery filter, then their
/// groups, VPCs, volumes and keys.
pub(crate) async fn inventory(
    s: &AwsSettings,
    t: &Timeouts,
    nodes: &[NodeAddr],
) -> Result<AwsInventory, ProbeFailure> {
    let conf = sdk_config(s, t).await;
    let region = conf
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| ProbeFailure {
            kind: FailureKind::Config,
            message: "no AWS region: set `region` in the environment's [aws] table, \
                      AWS_REGION, or the profile's region"
                .into(),
        })?;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let kms = aws_sdk_kms::Client::new(&conf);

    let instances = describe_instances(&ec2, s).await?;
    let nodes = join_nodes(s, nodes, &instances);

    let group_ids: BTreeSet<String> = instances
        .iter()
        .flat_map(|i| i.security_groups.iter().cloned())
        .collect();
    let security_groups = describe_groups(&ec2, &group_ids).await?;
    let referenced: BTreeSet<String> = security_groups
        .iter()
        .flat_map(|g| &g.ingress)
        .filter_map(|r| match &r.source {
            Source::Group(id) if !group_ids.contains(id) => Some(id.clone()),
            _ => None,
        })
        .collect();
    let mut referenced_groups: BTreeMap<String, String> = security_groups
        .iter()
        .map(|g| (g.id.clone(), g.name.clone()))
        .collect();
    for id in referenced {
        // A group in another account cannot be described; its id stays.
        if let Ok(g) = describe_groups(&ec2, &BTreeSet::from([id])).await {
            referenced_groups.extend(g.into_iter().map(|g| (g.id, g.name)));
        }
    }
    let mut prefix_lists = Vec::new();
    let pl_ids: BTreeSet<String> = security_groups
        .iter()
        .flat_map(|g| &g.ingress)
        .filter_map(|r| match &r.source {
            Source::PrefixList(id) => Some(id.clone()),
            _ => None,
        })
        .collect();
    for id in pl_ids {
        prefix_lists.push(prefix_list(&ec2, &id).await);
    }
    let vpc_ids: BTreeSet<String> = instances.iter().filter_map(|i| i.vpc_id.clone()).collect();
    let vpcs = describe_vpcs(&ec2, &vpc_ids).await?;
    let instance_ids: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
    let volumes = describe_volumes(&ec2, &instance_ids).await?;
    let (ebs_encryption_by_default, ebs_encryption_by_default_error) =
        match ec2.get_ebs_encryption_by_default().send().await {
            Ok(o) => (o.ebs_encryption_by_default(), None),
            Err(e) => (
                None,
                Some(api_failure("ec2:GetEbsEncryptionByDefault", &e).message),
            ),
        };
    let volume_ids: Vec<String> = volumes.iter().map(|v| v.id.clone()).collect();
    let (snapshots, snapshots_error) = match describe_snapshots(&ec2, &volume_ids).await {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e)),
    };
    let references: BTreeSet<String> = volumes
        .iter()
        .filter_map(|v| v.kms_key_id.clone())
        .chain(
            snapshots
                .iter()
                .flatten()
                .filter_map(|s| s.kms_key_id.clone()),
        )
        .collect();
    let keys = describe_keys(&kms, &references).await;

    Ok(AwsInventory {
        region,
        endpoint: s.endpoint.clone(),
        discovery: discovery_label(s),
        instances,
        nodes,
        security_groups,
        referenced_groups,
        prefix_lists,
        vpcs,
        volumes,
        keys,
        snapshots,
        snapshots_error,
        ebs_encryption_by_default,
        ebs_encryption_by_default_error,
    })
}

async fn describe_instances(
    ec2: &aws_sdk_ec2::Client,
    s: &AwsSettings,
) -> Result<Vec<Ec2Instance>, ProbeFailure> {
    let call = "ec2:DescribeInstances";
    let mut pages = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", s.discovery.tag))
                .values(&s.discovery.value)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(
                    ["pending", "running", "stopping", "stopped"]
                        .map(String::from)
                        .to_vec(),
                ))
                .build(),
        )
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_failure(call, &e))?;
        for i in page.reservations().iter().flat_map(|r| r.instances()) {
            let mut ips: BTreeSet<String> = i
                .private_ip_address()
                .map(String::from)
                .into_iter()
                .collect();
            let mut groups: BTreeSet<String> = i
                .security_groups()
                .iter()
                .filter_map(|g| g.group_id().map(String::from))
                .collect();
            for ni in i.network_interfaces() {
                ips.extend(
                    ni.private_ip_addresses()
                        .iter()
                        .filter_map(|a| a.private_ip_address().map(String::from)),
                );
                groups.extend(
                    ni.groups()
                        .iter()
                        .filter_map(|g| g.group_id().map(String::from)),
                );
            }
            out.push(Ec2Instance {
                id: i.instance_id().unwrap_or_default().to_string(),
                name: i
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some("Name"))
                    .and_then(|t| t.value().map(String::from)),
                state: i
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default(),
                private_ips: ips.into_iter().collect(),
                availability_zone: i
                    .placement()
                    .and_then(|p| p.availability_zone().map(String::from)),
                vpc_id: i.vpc_id().map(String::from),
                subnet_id: i.subnet_id().map(String::from),
                security_groups: groups.into_iter().collect(),
                block_devices: i
                    .block_device_mappings()
                    .iter()
                    .filter_map(|b| {
                        Some((
                            b.device_name()?.to_string(),
                            b.ebs()?.volume_id()?.to_string(),
                        ))
                    })
                    .collect(),
                root_device: i.root_device_name().map(String::from),
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    if out.is_empty() {
        return Err(ProbeFailure {
            kind: FailureKind::NotFound,
            message: format!(
                "{call} with {} (states pending/running/stopping/stopped) found no instance: \
                 check the environment's aws.discovery tag and region",
                discovery_label(s)
            ),
        });
    }
    Ok(out)
}

/// Joins each Redis node to the instance with its private IP.
pub(crate) fn join_nodes(
    s: &AwsSettings,
    nodes: &[NodeAddr],
    instances: &[Ec2Instance],
) -> Vec<NodePlacement> {
    nodes
        .iter()
        .map(|n| {
            let key = n.to_string();
            let (ip, joined_by) = match s
                .node_ip_map
                .get(&key)
                .or_else(|| s.node_ip_map.get(&n.host))
            {
                Some(ip) => (ip.clone(), JoinedBy::NodeIpMap),
                None => (n.host.clone(), JoinedBy::Address),
            };
            let instance = instances
                .iter()
                .find(|i| i.private_ips.contains(&ip))
                .map(|i| i.id.clone());
            NodePlacement {
                node: key,
                ip,
                joined_by,
                instance,
            }
        })
        .collect()
}

async fn describe_groups(
    ec2: &aws_sdk_ec2::Client,
    ids: &BTreeSet<String>,
) -> Result<Vec<SecurityGroup>, ProbeFailure> {
    let call = "ec2:DescribeSecurityGroups";
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pages = ec2
        .describe_security_groups()
        .set_group_ids(Some(ids.iter().cloned().collect()))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_failure(call, &e))?;
        for g in page.security_groups() {
            let mut ingress = Vec::new();
            for p in g.ip_permissions() {
                let rule = |source: Source, description: Option<&str>| IngressRule {
                    protocol: p.ip_protocol().unwrap_or("-1").to_string(),
                    from_port: p.from_port(),
                    to_port: p.to_port(),
                    source,
                    description: description.map(String::from),
                };
                for r in p.ip_ranges() {
                    if let Some(c) = r.cidr_ip() {
                        ingress.push(rule(Source::Cidr4(c.into()), r.description()));
                    }
                }
                for r in p.ipv6_ranges() {
                    if let Some(c) = r.cidr_ipv6() {
                        ingress.push(rule(Source::Cidr6(c.into()), r.description()));
                    }
                }
                for r in p.prefix_list_ids() {
                    if let Some(id) = r.prefix_list_id() {
                        ingress.push(rule(Source::PrefixList(id.into()), r.description()));
                    }
                }
                for r in p.user_id_group_pairs() {
                    if let Some(id) = r.group_id() {
                        ingress.push(rule(Source::Group(id.into()), r.description()));
                    }
                }
            }
            out.push(SecurityGroup {
                id: g.group_id().unwrap_or_default().to_string(),
                name: g.group_name().unwrap_or_default().to_string(),
                vpc_id: g.vpc_id().map(String::from),
                ingress,
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

async fn prefix_list(ec2: &aws_sdk_ec2::Client, id: &str) -> PrefixList {
    let call = "ec2:GetManagedPrefixListEntries";
    let mut pages = ec2
        .get_managed_prefix_list_entries()
        .prefix_list_id(id)
        .into_paginator()
        .send();
    let mut cidrs = Vec::new();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => cidrs.extend(
                p.entries()
                    .iter()
                    .filter_map(|e| e.cidr().map(String::from)),
            ),
            Err(e) => {
                return PrefixList {
                    id: id.into(),
                    cidrs: Vec::new(),
                    error: Some(api_failure(call, &e).message),
                }
            }
        }
    }
    cidrs.sort();
    PrefixList {
        id: id.into(),
        cidrs,
        error: None,
    }
}

async fn describe_vpcs(
    ec2: &aws_sdk_ec2::Client,
    ids: &BTreeSet<String>,
) -> Result<Vec<Vpc>, ProbeFailure> {
    let call = "ec2:DescribeVpcs";
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pages = ec2
        .describe_vpcs()
        .set_vpc_ids(Some(ids.iter().cloned().collect()))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_failure(call, &e))?;
        for v in page.vpcs() {
            let mut cidrs: BTreeSet<String> = v
                .cidr_block_association_set()
                .iter()
                .filter_map(|a| a.cidr_block().map(String::from))
                .collect();
            cidrs.extend(v.cidr_block().map(String::from));
            out.push(Vpc {
                id: v.vpc_id().unwrap_or_default().to_string(),
                cidrs: cidrs.into_iter().collect(),
                ipv6_cidrs: v
                    .ipv6_cidr_block_association_set()
                    .iter()
                    .filter_map(|a| a.ipv6_cidr_block().map(String::from))
                    .collect(),
            });
        }
    }
    Ok(out)
}

async fn describe_volumes(
    ec2: &aws_sdk_ec2::Client,
    instance_ids: &[String],
) -> Result<Vec<Volume>, ProbeFailure> {
    let call = "ec2:DescribeVolumes";
    let mut pages = ec2
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .set_values(Some(instance_ids.to_vec()))
                .build(),
        )
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_failure(call, &e))?;
        for v in page.volumes() {
            out.push(Volume {
                id: v.volume_id().unwrap_or_default().to_string(),
                size_gib: v.size(),
                encrypted: v.encrypted().unwrap_or(false),
                kms_key_id: v.kms_key_id().map(String::from),
                attachments: v
                    .attachments()
                    .iter()
                    .map(|a| {
                        (
                            a.instance_id().unwrap_or_default().to_string(),
                            a.device().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
                created: v
                    .create_time()
                    .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The snapshots this account owns of `volume_ids` (paginated). A refusal
/// is kept as the error, so that only the backup check is `error`.
async fn describe_snapshots(
    ec2: &aws_sdk_ec2::Client,
    volume_ids: &[String],
) -> Result<Vec<Snapshot>, String> {
    if volume_ids.is_empty() {
        return Ok(Vec::new());
    }
    let call = "ec2:DescribeSnapshots";
    let mut pages = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name("volume-id")
                .set_values(Some(volume_ids.to_vec()))
                .build(),
        )
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_failure(call, &e).message)?;
        for s in page.snapshots() {
            out.push(Snapshot {
                id: s.snapshot_id().unwrap_or_default().to_string(),
                volume_id: s.volume_id().unwrap_or_default().to_string(),
                state: s
                    .state()
                    .map(|x| x.as_str().to_string())
                    .unwrap_or_default(),
                started: s
                    .start_time()
                    .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
                encrypted: s.encrypted().unwrap_or(false),
                kms_key_id: s.kms_key_id().map(String::from),
            });
        }
    }
    out.sort_by(|a, b| (&a.volume_id, a.started, &a.id).cmp(&(&b.volume_id, b.started, &b.id)));
    Ok(out)
}

async fn describe_keys(kms: &aws_sdk_kms::Client, references: &BTreeSet<String>) -> Vec<KmsKey> {
    if references.is_empty() {
        return Vec::new();
    }
    // Every alias once (paginated), grouped by target key.
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut alias_error = None;
    let mut pages = kms.list_aliases().into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => {
                for a in p.aliases() {
                    if let (Some(name), Some(target)) = (a.alias_name(), a.target_key_id()) {
                        aliases
                            .entry(target.to_string())
                            .or_default()
                            .push(name.to_string());
                    }
                }
            }
            Err(e) => {
                alias_error = Some(api_failure("kms:ListAliases", &e).message);
                break;
            }
        }
    }
    let mut out = Vec::new();
    for r in references {
        let mut k = KmsKey {
            reference: r.clone(),
            key_id: None,
            arn: None,
            aliases: Vec::new(),
            key_manager: None,
            key_state: None,
            key_spec: None,
            key_usage: None,
            rotation_enabled: None,
            error: alias_error.clone(),
        };
        match kms.describe_key().key_id(r).send().await {
            Ok(o) => {
                if let Some(m) = o.key_metadata() {
                    k.key_id = Some(m.key_id().to_string());
                    k.arn = m.arn().map(String::from);
                    k.key_manager = m.key_manager().map(|v| v.as_str().to_string());
                    k.key_state = m.key_state().map(|v| v.as_str().to_string());
                    k.key_spec = m.key_spec().map(|v| v.as_str().to_string());
                    k.key_usage = m.key_usage().map(|v| v.as_str().to_string());
                    k.aliases = aliases.get(m.key_id()).cloned().unwrap_or_default();
                    k.aliases.sort();
                }
            }
            Err(e) => {
                k.error = Some(api_failure("kms:DescribeKey", &e).message);
                out.push(k);
                continue;
            }
        }
        if let Some(id) = k.key_id.clone() {
            match kms.get_key_rotation_status().key_id(&id).send().await {
                Ok(o) => k.rotation_enabled = Some(o.key_rotation_enabled()),
                Err(e) => {
                    k.error = Some(api_failure("kms:GetKeyRotationStatus", &e).message);
                }
            }
        }
        out.push(k);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AwsCredentials, TagFilter};

    fn settings(map: &[(&str, &str)]) -> AwsSettings {
        AwsSettings {
            region: Some("us-east-1".into()),
            profile: None,
            endpoint: None,
            credentials: AwsCredentials::Chain,
            discovery: TagFilter {
                tag: "redis-cluster".into(),
                value: "x".into(),
            },
            node_ip_map: map
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    fn instance(id: &str, ip: &str) -> Ec2Instance {
        Ec2Instance {
            id: id.into(),
            name: None,
            state: "running".into(),
            private_ips: vec![ip.into()],
            availability_zone: Some("us-east-1a".into()),
            vpc_id: None,
            subnet_id: None,
            security_groups: Vec::new(),
            block_devices: Vec::new(),
            root_device: None,
        }
    }

    #[test]
    fn nodes_join_by_map_then_by_their_own_address() {
        let s = settings(&[("127.0.1.1:6379", "10.0.1.5"), ("127.0.1.2", "10.0.2.5")]);
        let nodes: Vec<NodeAddr> = [
            "127.0.1.1:6379",
            "127.0.1.2:6379",
            "10.0.3.5:6379",
            "10.9.9.9:6379",
        ]
        .iter()
        .map(|a| NodeAddr::parse(a).unwrap())
        .collect();
        let inst = vec![
            instance("i-1", "10.0.1.5"),
            instance("i-2", "10.0.2.5"),
            instance("i-3", "10.0.3.5"),
        ];
        let j = join_nodes(&s, &nodes, &inst);
        let got: Vec<(&str, Option<&str>)> = j
            .iter()
            .map(|p| (p.joined_by.as_str(), p.instance.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("node_ip_map", Some("i-1")),
                ("node_ip_map", Some("i-2")),
                ("address", Some("i-3")),
                ("address", None)
            ]
        );
    }

    #[test]
    fn aws_managed_keys_are_told_apart_by_alias_not_only_key_manager() {
        let mut k = KmsKey {
            reference: "0b5f".into(),
            key_id: Some("0b5f".into()),
            arn: None,
            aliases: vec!["alias/aws/ebs".into()],
            // What the emulator reports for the default EBS key.
            key_manager: Some("CUSTOMER".into()),
            key_state: Some("Enabled".into()),
            key_spec: None,
            key_usage: None,
            rotation_enabled: None,
            error: None,
        };
        assert!(k.aws_managed());
        k.aliases = vec!["alias/redis-ebs".into()];
        assert!(!k.aws_managed());
        k.reference = "arn:aws:kms:us-east-1:111122223333:alias/aws/ebs".into();
        assert!(k.aws_managed());
    }
}
