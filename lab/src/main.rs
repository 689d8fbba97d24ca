//! `epic-audit-lab`: start, stop or inspect the local lab cluster.
//!
//! A separate binary from `epic-audit` on purpose: the audit binary that
//! runs against production never spawns a server and carries no private
//! key, while the lab embeds the test PKI (whose private keys are public).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use epic_audit::tls::TlsClient;
use epic_audit_lab::{Lab, LabSpec};

/// The local lab: six real redis-server processes (3 masters, 3 replicas)
/// on 127.0.1.1-127.0.1.6, TLS 1.3 only with the test PKI from
/// fixtures/pki, ACL users admin_user/app_user/dev_user (default off), AOF
/// on, about 200 session hashes, an exporter per node and an EC2/KMS
/// emulator. Its state, generated passwords and logs live in
/// $EPIC_AUDIT_LAB_DIR (default $TMPDIR/epic-audit-lab); epic-audit's config
/// paths refer to it as ${LAB_DIR}.
///
/// Audit it with `epic-audit run --env local`. `up --compose` runs the same
/// cluster as Docker Compose containers at their own addresses instead
/// (audit it with `epic-audit run --env compose`).
#[derive(Debug, Parser)]
#[command(name = "epic-audit-lab", version, about, long_about)]
struct Cli {
    /// Lab state directory.
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

/// The server a process lab's nodes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Server {
    /// redis-server on PATH.
    Redis,
    /// Debian 13's redis-server (8.x).
    Redis8,
    /// Debian 13's valkey-server (8.x).
    Valkey,
}

/// Lab actions.
#[derive(Debug, Subcommand)]
enum Action {
    /// Start the lab (fails if it already runs): six redis-servers, an
    /// exporter per node (logging in as `exporter`), a Prometheus scraping
    /// them (127.0.0.1:<port+2711>, 9090 by default) with the alerting
    /// rules of lab/monitoring/rules.yml and an Alertmanager
    /// (127.0.0.1:<port+2714>, 9093), and the EC2/KMS emulator (moto) on
    /// 127.0.0.1:<port+1000> seeded with the seed architecture.
    Up {
        /// TLS port of every node (bus port = port + 10000).
        #[arg(long, default_value_t = 6379)]
        port: u16,
        /// Do not start the EC2/KMS emulator (the AWS checks then `error`
        /// for an environment whose [aws] table points at it).
        #[arg(long)]
        no_aws: bool,
        /// Do not start Prometheus and Alertmanager (MON-003 to MON-005
        /// then `error` for an environment whose prometheus_url points at
        /// them).
        #[arg(long)]
        no_monitoring: bool,
        /// Masters (each with one replica), on 127.0.1.1 to 127.0.1.(2N):
        /// more than 3 makes a scale lab for benchmarks (node certificates
        /// past the sixth are issued at start with `openssl`; needs
        /// --no-aws, since the emulator's seed has three masters).
        #[arg(long, default_value_t = 3, value_name = "N")]
        masters: usize,
        /// Run the lab as Docker Compose containers (lab/compose/compose.yaml)
        /// instead of processes: each node, its exporter and the emulator at
        /// their own addresses on a private network (--subnet), node
        /// certificates issued for those addresses. Needs Docker with Compose
        /// and the base image debian:bookworm-slim (`docker pull`, or
        /// `bash scripts/docker-base.sh` where nothing can be pulled).
        /// Audit it with `epic-audit run --env compose`.
        #[arg(long, conflicts_with_all = ["masters", "port"])]
        compose: bool,
        /// The compose network's first three octets: nodes at .11-.16, the
        /// emulator at .5 (published on 127.0.0.1:7379).
        #[arg(
            long,
            default_value = "172.28.57",
            value_name = "A.B.C",
            requires = "compose"
        )]
        subnet: String,
        /// The server the nodes run: `redis` (redis-server on PATH; Debian
        /// 12's is 7.0), or Debian 13's `redis8` (Redis 8.x) or `valkey`
        /// (Valkey 8.x) from the root `bash scripts/server-builds.sh`
        /// bootstraps into .servers/trixie, run through that root's own
        /// loader (with --compose: as containers of an image made from that
        /// root).
        #[arg(long, value_enum, default_value_t = Server::Redis)]
        server: Server,
        /// Hostname mode: the nodes announce DNS names
        /// (`redis-N.lab<PORT>.epic-audit.test`) as their preferred endpoint
        /// (cluster-announce-hostname, cluster-preferred-endpoint-type
        /// hostname), their certificates name only those (no IP SAN), and
        /// the lab adds the names to /etc/hosts (needs root) and removes
        /// them on `down`. Audit it with seeds given by those names (the
        /// `up` output prints them).
        #[arg(long, conflicts_with = "compose")]
        hostnames: bool,
    },
    /// Write session hashes into the running lab, as its application user
    /// (`app_user`) writes them: HSET user_id/portal/last_activity, then
    /// EXPIRE. Keys are session:<12 digits> from --first, each sent to the
    /// master of its slot in pipelined batches. For scale tests and
    /// benchmarks (scripts/bench-scale.sh): what DATA-005 and the audit
    /// cost on a cluster with millions of sessions.
    Fill {
        /// How many session keys to write.
        #[arg(long, value_name = "N")]
        keys: u64,
        /// The number of the first key (session:000000000000 by default).
        #[arg(long, default_value_t = 0, value_name = "N")]
        first: u64,
        /// The TTL each key gets (the seed architecture's 30-minute logoff).
        #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
        ttl: u64,
        /// Give the keys no TTL at all: sessions that never log off (a
        /// defect DATA-005 must find).
        #[arg(long, conflicts_with = "ttl")]
        no_ttl: bool,
        /// One hash tag per master: session:{TAG}:<12 digits>, N/masters
        /// keys on each, so that `redis-benchmark -h <master> -r N/masters
        /// HGETALL session:{TAG}:__rand_int__` reads only keys that exist
        /// there (the tags are printed).
        #[arg(long)]
        tagged: bool,
    },
    /// Stop exactly the processes the lab started (by pid) and remove its state.
    Down,
    /// Show whether each node runs and answers; exit 0 only when all do.
    Status,
}

fn main() -> ExitCode {
    epic_audit::install_crypto_provider();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 3 } else { 0 });
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("epic-audit-lab: cannot start the async runtime: {e}");
            return ExitCode::from(4);
        }
    };
    let dir = cli.dir.clone().unwrap_or_else(epic_audit_lab::default_dir);
    match rt.block_on(lab_cmd(&cli.action, dir)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("epic-audit-lab: {e:#}");
            ExitCode::from(4)
        }
    }
}

async fn lab_cmd(action: &Action, dir: PathBuf) -> Result<u8> {
    match action {
        Action::Up {
            port,
            no_aws,
            no_monitoring,
            masters,
            compose,
            subnet,
            server,
            hostnames,
        } => {
            let build = match server {
                Server::Redis => epic_audit_lab::ServerBuild::Path,
                Server::Redis8 => epic_audit_lab::ServerBuild::trixie("redis-server")?,
                Server::Valkey => epic_audit_lab::ServerBuild::trixie("valkey-server")?,
            };
            let mut spec = if *compose {
                let octets: Vec<u8> = subnet.split('.').filter_map(|o| o.parse().ok()).collect();
                let [a, b, c] = octets[..] else {
                    anyhow::bail!("--subnet {subnet}: give the first three octets, e.g. 172.28.57");
                };
                LabSpec::compose(
                    dir.clone(),
                    epic_audit_lab::ComposeSpec {
                        subnet: [a, b, c],
                        emulator_port: port + epic_audit_lab::aws::EMULATOR_OFFSET,
                        ..epic_audit_lab::ComposeSpec::standard()
                    },
                )
            } else {
                let mut spec = LabSpec::standard(dir.clone());
                spec.port = *port;
                spec.masters = *masters;
                spec.ips = epic_audit_lab::ips_for((*masters).min(epic_audit_lab::MAX_MASTERS));
                spec.hostnames = *hostnames;
                spec
            };
            spec.server = build;
            spec.aws = !no_aws;
            spec.monitoring = !no_monitoring;
            let lab = Lab::up(spec).await?;
            let server = match &lab.spec.server {
                epic_audit_lab::ServerBuild::Path => String::new(),
                b @ epic_audit_lab::ServerBuild::Root { root, binary } => format!(
                    ", {binary} {} from {}",
                    b.version().unwrap_or_else(|_| "?".into()),
                    root.display()
                ),
            };
            match &lab.state.compose {
                Some(c) => println!(
                    "lab up: {masters} masters + {masters} replicas as containers of compose project {} (network {}.0/24), TLS 1.3 only, ACLs on{server}",
                    c.project, c.subnet
                ),
                None => println!(
                    "lab up: {masters} masters + {masters} replicas, TLS 1.3 only, ACLs on{server}"
                ),
            }
            for (i, n) in lab.state.nodes.iter().enumerate() {
                println!(
                    "  node{} {}{}:{} {:<7} {}",
                    i + 1,
                    lab.spec
                        .hostname(i)
                        .map(|h| format!("{h} -> "))
                        .unwrap_or_default(),
                    n.ip,
                    lab.state.port,
                    n.role,
                    if n.pid == 0 {
                        format!(
                            "container node{}, exporter on :{}",
                            i + 1,
                            epic_audit_lab::compose::EXPORTER_PORT
                        )
                    } else {
                        format!("pid {}", n.pid)
                    }
                );
            }
            if let Some(c) = &lab.state.compose {
                if lab.spec.aws {
                    println!(
                        "  EC2/KMS emulator (moto) container, published on http://127.0.0.1:{}: VPC 10.0.0.0/16, 3 instances tagged {}={}",
                        c.emulator_port,
                        epic_audit_lab::aws::TAG.0,
                        epic_audit_lab::aws::TAG.1
                    );
                }
            }
            if let Some(e) = &lab.state.emulator {
                println!(
                    "  EC2/KMS emulator (moto) http://{} pid {}: VPC 10.0.0.0/16, 3 instances tagged {}={}, redis-cluster-sg, encrypted volumes on a rotating customer key",
                    e.listen,
                    e.pid,
                    epic_audit_lab::aws::TAG.0,
                    epic_audit_lab::aws::TAG.1
                );
            }
            if lab.spec.monitoring {
                let pids: Vec<String> = lab
                    .state
                    .monitoring
                    .iter()
                    .map(|s| format!("{} {} pid {}", s.comm, s.listen, s.pid))
                    .collect();
                println!(
                    "  Prometheus {} scraping every exporter every 5 s, rules lab/monitoring/rules.yml, alerts to its Alertmanager{}",
                    lab.prometheus_url(),
                    if pids.is_empty() { " (containers)".to_string() } else { format!(" ({})", pids.join(", ")) }
                );
            }
            println!(
                "state, logs and generated passwords (0600): {}",
                dir.display()
            );
            println!(
                "signing key pair for the lab's reports: {}/signing/epic-audit-signing.{{key,pub}}",
                dir.display()
            );
            println!(
                "audit it:  epic-audit run --env {}",
                if lab.state.compose.is_some() {
                    "compose"
                } else if lab.spec.hostnames {
                    "local-hostnames"
                } else {
                    "local"
                }
            );
            println!("stop it:   epic-audit-lab down");
            lab.detach();
            Ok(0)
        }
        Action::Down => {
            let compose = epic_audit_lab::read_state(&dir).and_then(|s| s.compose);
            let pids = epic_audit_lab::down(&dir)?;
            if let Some(c) = compose {
                println!(
                    "removed compose project {} (containers and network) and {}",
                    c.project,
                    dir.display()
                );
            } else if pids.is_empty() {
                println!("no lab processes were running in {}", dir.display());
            } else {
                println!(
                    "stopped {} server processes (pids {:?}) and removed {}",
                    pids.len(),
                    pids,
                    dir.display()
                );
            }
            Ok(0)
        }
        Action::Status => lab_status(&dir).await,
        Action::Fill {
            keys,
            first,
            ttl,
            no_ttl,
            tagged,
        } => {
            let fill = epic_audit_lab::fill::Fill {
                namespace: "session:".into(),
                first: *first,
                count: *keys,
                ttl_s: (!no_ttl).then_some(*ttl),
                tagged: *tagged,
            };
            lab_fill(&dir, &fill).await
        }
    }
}

async fn lab_fill(dir: &Path, fill: &epic_audit_lab::fill::Fill) -> Result<u8> {
    let Some(state) = epic_audit_lab::read_state(dir) else {
        println!(
            "no lab in {} (start one with `epic-audit-lab up`)",
            dir.display()
        );
        return Ok(1);
    };
    let pw = std::fs::read_to_string(dir.join("secrets/app_user.pass"))
        .with_context(|| format!("reading {}", dir.join("secrets/app_user.pass").display()))?;
    let pw = epic_audit::secret::Secret::new(pw.trim_end());
    // The lab's masters are its first nodes, in slot order.
    let masters: Vec<epic_audit::config::NodeAddr> = state
        .nodes
        .iter()
        .take(state.nodes.len() / 2)
        .map(|n| epic_audit::config::NodeAddr {
            host: n.ip.clone(),
            port: state.port,
        })
        .collect();
    let access = epic_audit_lab::fill::Access {
        pki: &dir.join("pki"),
        user: "app_user",
        password: &pw,
    };
    let started = std::time::Instant::now();
    let written = epic_audit_lab::fill::write(&masters, &access, fill)
        .await
        .map_err(anyhow::Error::msg)?;
    println!(
        "wrote {written} session hashes ({}..{}) {} in {:.1} s",
        epic_audit_lab::fill::session_key(&fill.namespace, fill.first),
        epic_audit_lab::fill::session_key(&fill.namespace, fill.first + fill.count.max(1) - 1),
        match fill.ttl_s {
            Some(t) => format!("with EXPIRE {t}"),
            None => "WITHOUT a TTL".into(),
        },
        started.elapsed().as_secs_f64()
    );
    if fill.tagged {
        for (m, addr) in masters.iter().enumerate() {
            println!(
                "master {} {addr} tag {{{}}}",
                m + 1,
                epic_audit_lab::fill::master_tag(m, masters.len())
            );
        }
    }
    Ok(0)
}

async fn lab_status(dir: &Path) -> Result<u8> {
    let Some(state) = epic_audit_lab::read_state(dir) else {
        println!(
            "no lab in {} (start one with `epic-audit-lab up`)",
            dir.display()
        );
        return Ok(1);
    };
    let pki = dir.join("pki");
    let tls = TlsClient::from_files(
        &pki.join("ca.crt"),
        &pki.join("client.crt"),
        &pki.join("client.key"),
        None,
    )?;
    let pw = std::fs::read_to_string(dir.join("secrets/admin_user.pass")).unwrap_or_default();
    let pw = epic_audit::secret::Secret::new(pw.trim_end());
    let timeouts = epic_audit::config::Timeouts {
        connect_ms: 1000,
        command_ms: 1000,
        probe_ms: 2000,
    };
    let mut healthy = true;
    println!("lab in {} (started {})", dir.display(), state.started_at);
    for (i, n) in state.nodes.iter().enumerate() {
        let addr = epic_audit::config::NodeAddr {
            host: n.ip.clone(),
            port: state.port,
        };
        let running = n.pid == 0
            || std::fs::read(format!("/proc/{}/cmdline", n.pid))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("redis-server"));
        let answer = match epic_audit::resp::RedisConn::connect_as(
            &addr,
            &tls,
            &timeouts,
            "admin_user",
            &pw,
        )
        .await
        {
            Ok(mut c) => match c.cmd_str(&["CLUSTER", "INFO"]).await {
                Ok(f) => epic_audit::resp::as_text(&f)
                    .map(|t| {
                        epic_audit::resp::parse_info(&t)
                            .get("cluster_state")
                            .cloned()
                            .unwrap_or_default()
                    })
                    .map(|s| format!("cluster_state:{s}"))
                    .unwrap_or_else(|| "answers".into()),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        healthy &= running && answer == "cluster_state:ok";
        println!(
            "  node{} {addr} {:<7} pid {} {} · {answer}",
            i + 1,
            n.role,
            n.pid,
            if running { "running" } else { "NOT RUNNING" }
        );
    }
    if let Some(e) = &state.emulator {
        let port = e.listen.rsplit_once(':').and_then(|(_, p)| p.parse().ok());
        let answers = match port {
            Some(p) => epic_audit_lab::aws::wait_ready(p, std::time::Duration::from_millis(500))
                .await
                .is_ok(),
            None => false,
        };
        healthy &= answers;
        println!(
            "  EC2/KMS emulator http://{} pid {} · {}",
            e.listen,
            e.pid,
            if answers { "answers" } else { "NOT ANSWERING" }
        );
    }
    Ok(if healthy { 0 } else { 1 })
}
