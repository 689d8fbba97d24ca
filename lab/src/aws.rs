//! The lab's AWS estate: a `moto` EC2/KMS emulator on 127.0.0.1, seeded
//! through the real AWS SDK with the seed architecture (VPC 10.0.0.0/16,
//! one subnet per AZ, `redis-cluster-sg`, three tagged instances with
//! encrypted root and data volumes on a rotating customer-managed key).
//!
//! [`AwsDefect`] builds the variants the tests use to prove each AWS check
//! fails on exactly its defect. Nothing here talks to anything but the
//! emulator's loopback address (the settings insist on it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, IpPermission, IpRange, Ipv6Range, ResourceType,
    Tag, TagSpecification, VolumeType,
};

use epic_audit::config::{AwsCredentials, AwsSettings, TagFilter, Timeouts};

/// Emulator port = lab port + this, on 127.0.0.1 (6379 -> 7379).
pub const EMULATOR_OFFSET: u16 = 1000;

/// The discovery tag of the seed architecture.
pub const TAG: (&str, &str) = ("redis-cluster", "clinical-sessions");

/// The three instances: (AZ, subnet CIDR, private IP).
pub const INSTANCES: [(&str, &str, &str); 3] = [
    ("us-east-1a", "10.0.1.0/24", "10.0.1.102"),
    ("us-east-1b", "10.0.2.0/24", "10.0.2.27"),
    ("us-east-1c", "10.0.3.0/24", "10.0.3.205"),
];

/// Which instance each of the six lab nodes runs on: a master per
/// instance, and each replica on the instance of the next shard's master
/// (so no replica shares its master's AZ).
pub const NODE_INSTANCE: [usize; 6] = [0, 1, 2, 1, 2, 0];

/// The admin host allowed to SSH (a documentation address, never contacted).
pub const ADMIN_CIDR: &str = "203.0.113.10/32";
/// The monitoring subnet allowed to scrape exporters.
pub const MONITORING_CIDR: &str = "10.0.100.0/24";

/// One defect in the seeded estate (or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsDefect {
    /// The seed architecture as it should be.
    None,
    /// 6379 from 0.0.0.0/0.
    RedisFromAnywhere,
    /// 22 from 0.0.0.0/0.
    SshFromAnywhere,
    /// An all-traffic (-1) rule from the VPC CIDR.
    AllTrafficFromVpc,
    /// 6379 from ::/0.
    RedisFromAnywhereV6,
    /// The first instance's data volume unencrypted.
    UnencryptedVolume,
    /// The first instance's data volume on the AWS-managed `alias/aws/ebs`.
    AwsManagedKey,
    /// Rotation off on the customer-managed key.
    RotationOff,
    /// The customer-managed key disabled.
    KeyDisabled,
    /// Account-level EBS encryption by default left off.
    EbsDefaultOff,
    /// The first instance's data volume never snapshotted (the others
    /// are, as the seed architecture's daily backup does).
    NoSnapshot,
    /// The third instance's subnet (and so the instance) in the second
    /// instance's AZ: two masters in one AZ.
    MastersInOneAz,
    /// The first instance's data volume on a second customer-managed key
    /// that is an RSA-2048 key (KeySpec RSA_2048), not AES-256
    /// (SYMMETRIC_DEFAULT). AWS refuses such a key for EBS; the emulator
    /// does not, which is what lets the lab show ENC-005 failing.
    WrongKeySpec,
}

/// The lab estate's region.
pub const REGION: &str = "us-east-1";

/// The AWS settings of a lab whose emulator listens on `port`.
pub fn lab_settings(port: u16, node_ips: &[String]) -> AwsSettings {
    AwsSettings {
        region: Some(REGION.into()),
        profile: None,
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        credentials: AwsCredentials::Emulator,
        discovery: TagFilter {
            tag: TAG.0.into(),
            value: TAG.1.into(),
        },
        node_ip_map: node_ips
            .iter()
            .zip(NODE_INSTANCE)
            .map(|(ip, i)| (ip.clone(), INSTANCES[i].2.to_string()))
            .collect(),
    }
}

/// The `moto_server` to run: `$EPIC_AUDIT_MOTO_SERVER`, else the project's
/// venv (`.venv/bin/moto_server` in the current directory or above the
/// running binary, e.g. a checkout's `target/release/`), else PATH.
pub fn find_moto() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("EPIC_AUDIT_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let venv = Path::new(".venv/bin/moto_server");
    if venv.is_file() {
        return std::fs::canonicalize(venv).ok();
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(p) = exe
            .ancestors()
            .skip(1)
            .map(|d| d.join(venv))
            .find(|p| p.is_file())
        {
            return Some(p);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("moto_server"))
            .find(|p| p.is_file())
    })
}

/// Sends one HTTP request to the emulator and returns the status code.
async fn http(port: u16, method: &str, path: &str) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let go = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&head);
        text.get(9..12)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP reply: {text:?}"))
    };
    tokio::time::timeout(Duration::from_secs(5), go)
        .await
        .map_err(|_| "no HTTP reply within 5 s".to_string())?
}

/// Waits until the emulator answers HTTP (it takes a second or two to
/// import), up to `limit`.
pub async fn wait_ready(port: u16, limit: Duration) -> Result<(), String> {
    let t0 = std::time::Instant::now();
    loop {
        match http(port, "GET", "/moto-api/").await {
            Ok(_) => return Ok(()),
            Err(e) if t0.elapsed() > limit => {
                return Err(format!(
                    "the emulator on 127.0.0.1:{port} did not answer within {} s: {e}",
                    limit.as_secs()
                ))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Empties the emulator (moto's reset API), for re-seeding a variant.
pub async fn reset(port: u16) -> Result<(), String> {
    match http(port, "POST", "/moto-api/reset").await? {
        200 => Ok(()),
        c => Err(format!("moto reset answered HTTP {c}")),
    }
}

fn tags(kind: ResourceType, name: &str, cluster: bool) -> TagSpecification {
    let mut t = TagSpecification::builder()
        .resource_type(kind)
        .tags(Tag::builder().key("Name").value(name).build());
    if cluster {
        t = t.tags(Tag::builder().key(TAG.0).value(TAG.1).build());
    }
    t.build()
}

fn tcp(port: i32, cidr: &str) -> IpPermission {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
        .ip_ranges(IpRange::builder().cidr_ip(cidr).build())
        .build()
}

/// What the seeding created, for tests that want to name things.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    /// Instance ids, in [`INSTANCES`] order.
    pub instances: Vec<String>,
    /// The customer-managed key id.
    pub key_id: String,
    /// `redis-cluster-sg`.
    pub security_group: String,
    /// Data volume ids, in instance order.
    pub data_volumes: Vec<String>,
}

/// Maps an SDK error to a message naming the call.
fn failed<E, R>(call: &'static str) -> impl Fn(SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    move |e| epic_audit::aws::api_failure(call, &e).message
}

/// Seeds the seed architecture (with `defect`) through the AWS SDK.
pub async fn seed(s: &AwsSettings, defect: AwsDefect) -> Result<Seeded, String> {
    let t = Timeouts {
        connect_ms: 2000,
        command_ms: 10000,
        probe_ms: 60000,
    };
    let conf = epic_audit::aws::sdk_config(s, &t).await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let kms = aws_sdk_kms::Client::new(&conf);
    let mut out = Seeded::default();

    let key = kms
        .create_key()
        .description("epic-audit lab: EBS volumes of the Redis cluster")
        .key_usage(aws_sdk_kms::types::KeyUsageType::EncryptDecrypt)
        .key_spec(aws_sdk_kms::types::KeySpec::SymmetricDefault)
        .send()
        .await
        .map_err(failed("kms:CreateKey"))?;
    out.key_id = key
        .key_metadata()
        .map(|m| m.key_id().to_string())
        .ok_or("kms:CreateKey returned no key")?;
    kms.create_alias()
        .alias_name("alias/redis-cluster-ebs")
        .target_key_id(&out.key_id)
        .send()
        .await
        .map_err(failed("kms:CreateAlias"))?;
    if defect != AwsDefect::RotationOff {
        kms.enable_key_rotation()
            .key_id(&out.key_id)
            .send()
            .await
            .map_err(failed("kms:EnableKeyRotation"))?;
    }
    if defect != AwsDefect::EbsDefaultOff {
        ec2.enable_ebs_encryption_by_default()
            .send()
            .await
            .map_err(failed("ec2:EnableEbsEncryptionByDefault"))?;
    }

    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .tag_specifications(tags(ResourceType::Vpc, "clinical-sessions", false))
        .send()
        .await
        .map_err(failed("ec2:CreateVpc"))?
        .vpc()
        .and_then(|v| v.vpc_id().map(String::from))
        .ok_or("ec2:CreateVpc returned no VPC")?;
    // A second, asymmetric key for the WrongKeySpec defect.
    let rsa_key = if defect == AwsDefect::WrongKeySpec {
        let k = kms
            .create_key()
            .description("epic-audit lab: a wrong key spec for an EBS volume")
            .key_usage(aws_sdk_kms::types::KeyUsageType::EncryptDecrypt)
            .key_spec(aws_sdk_kms::types::KeySpec::Rsa2048)
            .send()
            .await
            .map_err(failed("kms:CreateKey"))?;
        k.key_metadata().map(|m| m.key_id().to_string())
    } else {
        None
    };
    let mut subnets = BTreeMap::new();
    for (n, (az, cidr, _)) in INSTANCES
        .iter()
        .chain([&("us-east-1a", MONITORING_CIDR, "")])
        .enumerate()
    {
        // Two masters in one AZ: the third subnet (same CIDR, so the
        // instance keeps its IP) lies in the second instance's AZ.
        let az = if defect == AwsDefect::MastersInOneAz && n == 2 {
            INSTANCES[1].0
        } else {
            *az
        };
        let id = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(*cidr)
            .availability_zone(az)
            .send()
            .await
            .map_err(failed("ec2:CreateSubnet"))?
            .subnet()
            .and_then(|s| s.subnet_id().map(String::from))
            .ok_or("ec2:CreateSubnet returned no subnet")?;
        subnets.insert(cidr.to_string(), id);
    }
    ec2.create_security_group()
        .group_name("monitoring-sg")
        .description("Prometheus servers")
        .vpc_id(&vpc)
        .send()
        .await
        .map_err(failed("ec2:CreateSecurityGroup"))?;
    let sg = ec2
        .create_security_group()
        .group_name("redis-cluster-sg")
        .description("Redis Cluster nodes")
        .vpc_id(&vpc)
        .send()
        .await
        .map_err(failed("ec2:CreateSecurityGroup"))?
        .group_id()
        .map(String::from)
        .ok_or("ec2:CreateSecurityGroup returned no id")?;
    out.security_group = sg.clone();
    let mut rules = vec![
        tcp(6379, "10.0.0.0/16"),
        tcp(16379, "10.0.0.0/16"),
        tcp(22, ADMIN_CIDR),
        tcp(9121, MONITORING_CIDR),
    ];
    match defect {
        AwsDefect::RedisFromAnywhere => rules.push(tcp(6379, "0.0.0.0/0")),
        AwsDefect::SshFromAnywhere => rules.push(tcp(22, "0.0.0.0/0")),
        AwsDefect::AllTrafficFromVpc => rules.push(
            IpPermission::builder()
                .ip_protocol("-1")
                .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/16").build())
                .build(),
        ),
        AwsDefect::RedisFromAnywhereV6 => rules.push(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(6379)
                .to_port(6379)
                .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
                .build(),
        ),
        _ => {}
    }
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .set_ip_permissions(Some(rules))
        .send()
        .await
        .map_err(failed("ec2:AuthorizeSecurityGroupIngress"))?;

    // Any AMI will do (moto's `platform-details` filter is broken; the
    // first image by id keeps the seed deterministic).
    let mut images: Vec<String> = ec2
        .describe_images()
        .owners("amazon")
        .send()
        .await
        .map_err(failed("ec2:DescribeImages"))?
        .images()
        .iter()
        .filter_map(|i| i.image_id().map(String::from))
        .collect();
    images.sort();
    let ami = images
        .first()
        .cloned()
        .ok_or("the emulator offers no AMI")?;

    for (n, (az, cidr, ip)) in INSTANCES.iter().enumerate() {
        let az = if defect == AwsDefect::MastersInOneAz && n == 2 {
            INSTANCES[1].0
        } else {
            az
        };
        let name = format!("redis-{}", n + 1);
        let r = ec2
            .run_instances()
            .image_id(&ami)
            .instance_type(aws_sdk_ec2::types::InstanceType::R6gLarge)
            .min_count(1)
            .max_count(1)
            .subnet_id(&subnets[*cidr])
            .private_ip_address(*ip)
            .security_group_ids(&sg)
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name("/dev/xvda")
                    .ebs(
                        EbsBlockDevice::builder()
                            .volume_size(8)
                            .volume_type(VolumeType::Gp3)
                            .encrypted(true)
                            .kms_key_id(&out.key_id)
                            .build(),
                    )
                    .build(),
            )
            .tag_specifications(tags(ResourceType::Instance, &name, true))
            .send()
            .await
            .map_err(failed("ec2:RunInstances"))?;
        let id = r
            .instances()
            .first()
            .and_then(|i| i.instance_id().map(String::from))
            .ok_or("ec2:RunInstances returned no instance")?;
        let mut v = ec2
            .create_volume()
            .availability_zone(az)
            .size(8)
            .volume_type(VolumeType::Gp3)
            .tag_specifications(tags(ResourceType::Volume, &format!("{name}-data"), false));
        v = match (defect, n) {
            (AwsDefect::UnencryptedVolume, 0) => v.encrypted(false),
            (AwsDefect::AwsManagedKey, 0) => v.encrypted(true).kms_key_id("alias/aws/ebs"),
            (AwsDefect::WrongKeySpec, 0) => v
                .encrypted(true)
                .kms_key_id(rsa_key.as_deref().ok_or("kms:CreateKey returned no key")?),
            _ => v.encrypted(true).kms_key_id(&out.key_id),
        };
        let vol = v
            .send()
            .await
            .map_err(failed("ec2:CreateVolume"))?
            .volume_id()
            .map(String::from)
            .ok_or("ec2:CreateVolume returned no id")?;
        ec2.attach_volume()
            .volume_id(&vol)
            .instance_id(&id)
            .device("/dev/sdf")
            .send()
            .await
            .map_err(failed("ec2:AttachVolume"))?;
        // The daily backup: a snapshot of the data volume, kept as a copy
        // encrypted on the customer-managed key (as AWS Backup copies do;
        // the emulator records the key of a copy, not of a snapshot).
        if !(defect == AwsDefect::NoSnapshot && n == 0) {
            let snap = ec2
                .create_snapshot()
                .volume_id(&vol)
                .description(format!("{name} daily backup"))
                .send()
                .await
                .map_err(failed("ec2:CreateSnapshot"))?
                .snapshot_id()
                .map(String::from)
                .ok_or("ec2:CreateSnapshot returned no id")?;
            ec2.copy_snapshot()
                .source_snapshot_id(&snap)
                .source_region(REGION)
                .encrypted(true)
                .kms_key_id(&out.key_id)
                .description(format!("{name} daily backup"))
                .send()
                .await
                .map_err(failed("ec2:CopySnapshot"))?;
            ec2.delete_snapshot()
                .snapshot_id(&snap)
                .send()
                .await
                .map_err(failed("ec2:DeleteSnapshot"))?;
        }
        out.instances.push(id);
        out.data_volumes.push(vol);
    }
    if defect == AwsDefect::KeyDisabled {
        kms.disable_key()
            .key_id(&out.key_id)
            .send()
            .await
            .map_err(failed("kms:DisableKey"))?;
    }
    // Sanity: the discovery filter finds exactly the three instances.
    let found = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", TAG.0))
                .values(TAG.1)
                .build(),
        )
        .send()
        .await
        .map_err(failed("ec2:DescribeInstances"))?
        .reservations()
        .iter()
        .map(|r| r.instances().len())
        .sum::<usize>();
    if found != INSTANCES.len() {
        return Err(format!(
            "seeded {} instances, discovery finds {found}",
            INSTANCES.len()
        ));
    }
    Ok(out)
}
