//! The local lab: a hardened Redis Cluster (3 masters, 3 replicas) of real
//! `redis-server` processes on loopback addresses, TLS-only, with ACLs.
//!
//! State lives in a directory outside the repository (default
//! `$TMPDIR/epic-audit-lab`, or `$EPIC_AUDIT_LAB_DIR`): per-node configs,
//! data, logs, generated passwords (0600) and `lab.json` with the pids.
//! `down` stops exactly those pids (after checking each is still our
//! redis-server) and removes the directory. Tests build labs on their own
//! ports and state directories and use the same code.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub mod accept;
pub mod aws;
pub mod compose;
mod files;
pub mod fill;
mod form;
mod hosts;
pub mod load;
pub mod monitoring;
mod process;
mod services;

pub use compose::{ComposeSpec, ComposeState};
pub use files::acl_file;
pub use monitoring::{MonitoringConfig, ALERTMANAGER_OFFSET, PROMETHEUS_OFFSET};
pub use process::{down, is_running, log_tail, read_state, LabNode, LabService, LabState};

use epic_audit::config::{NodeAddr, Timeouts};
use epic_audit::resp::RedisConn;
use epic_audit::secret::Secret;
use epic_audit::tls::TlsClient;
use files::{random_hex, write_private, PKI};
use process::{gone, reap, stop_nodes, stop_services, ServerCommand};

/// The users of the standard lab's ACL: the seed architecture's three, the
/// least-privilege `auditor` the audit connects as, and the `exporter` the
/// exporters log in as.
pub const USERS: [&str; 5] = ["admin_user", "app_user", "auditor", "dev_user", "exporter"];

/// The names a lab's ACL and data use. The standard lab uses the seed
/// architecture's; a test renames all of them (other users, another session
/// namespace) to prove the audit assumes none of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabNames {
    /// The emergency administrator (`~* &* +@all`); replication and the
    /// lab's own set-up use it.
    pub admin: String,
    /// The application user (`~<namespace>*`, no admin or dangerous command).
    pub app: String,
    /// The read-only developer (`~*`, `+@read`).
    pub dev: String,
    /// The least-privilege audit user (`epic-audit print-acl`'s rules).
    pub auditor: String,
    /// The exporters' user (`epic-audit print-acl --user exporter`'s rules).
    pub exporter: String,
    /// Session keys are `<namespace><32 hex digits>`; the application user
    /// and the auditor's TTL scan get `<namespace>*`.
    pub namespace: String,
}

impl Default for LabNames {
    fn default() -> Self {
        LabNames {
            admin: USERS[0].into(),
            app: USERS[1].into(),
            auditor: USERS[2].into(),
            dev: USERS[3].into(),
            exporter: USERS[4].into(),
            namespace: "session:".into(),
        }
    }
}

impl LabNames {
    /// Every user of the ACL but `default` (which is off).
    pub fn users(&self) -> [&str; 5] {
        [
            &self.admin,
            &self.app,
            &self.auditor,
            &self.dev,
            &self.exporter,
        ]
    }

    /// The session-key glob (`<namespace>*`).
    pub fn session_pattern(&self) -> String {
        format!("{}*", self.namespace)
    }
}

/// Slot ranges of the three masters.
pub const MASTER_SLOTS: [(u16, u16); 3] = [(0, 5460), (5461, 10922), (10923, 16383)];

/// Slot ranges of `masters` masters: 16384 slots split into contiguous
/// ranges, as redis-cli --cluster create splits them (3 gives
/// [`MASTER_SLOTS`]).
pub fn master_slots(masters: usize) -> Vec<(u16, u16)> {
    let per = 16384.0 / masters as f64;
    (0..masters)
        .map(|i| {
            let a = (i as f64 * per).round() as u16;
            let b = if i + 1 == masters {
                16383
            } else {
                (((i + 1) as f64 * per).round() - 1.0) as u16
            };
            (a, b)
        })
        .collect()
}

/// Why the lab could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// redis-server is not installed.
    #[error(
        "redis-server was not found on PATH; install it (Debian: `apt-get install redis-server`)"
    )]
    NoRedis,
    /// The server build asked for is not there.
    #[error("{0}")]
    NoServerBuild(String),
    /// The moto EC2/KMS emulator is not installed.
    #[error("moto_server (the EC2/KMS emulator) was not found: run scripts/setup.sh (it creates .venv with `moto[server]`), or set EPIC_AUDIT_MOTO_SERVER, or start the lab without it (`epic-audit-lab up --no-aws`)")]
    NoMoto,
    /// prometheus-redis-exporter is not installed.
    #[error("prometheus-redis-exporter was not found; install it (Debian: `apt-get install prometheus-redis-exporter`)")]
    NoExporter,
    /// Prometheus or Alertmanager is not installed.
    #[error("prometheus or prometheus-alertmanager was not found; install them (Debian: `apt-get install prometheus prometheus-alertmanager`), or start the lab without them (`epic-audit-lab up --no-monitoring`)")]
    NoMonitoring,
    /// A lab already runs in that directory.
    #[error(
        "a lab is already running in {0} (`epic-audit-lab status`; `epic-audit-lab down` stops it)"
    )]
    AlreadyRunning(PathBuf),
    /// Filesystem problem.
    #[error("lab state {path}: {source}")]
    Io {
        /// Path at fault.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A port is taken.
    #[error("cannot listen on {0}: the address is in use (is another lab or Redis running?)")]
    PortInUse(String),
    /// A step did not complete.
    #[error("lab {step}: {detail}")]
    Step {
        /// What was being done.
        step: String,
        /// What went wrong, with the node's log tail where useful.
        detail: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LabError + '_ {
    move |source| LabError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How to build a lab.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// State directory (created; must not hold a running lab).
    pub dir: PathBuf,
    /// One loopback address per node: masters first, then their replicas
    /// (replica i replicates master i - masters).
    pub ips: Vec<Ipv4Addr>,
    /// Number of masters (the seed architecture's 3; more for the scale
    /// benchmarks, with node certificates made at `up` for nodes past the
    /// sixth, and without the AWS emulator, whose seed has three).
    pub masters: usize,
    /// TLS port of every node (each on its own address); bus = port + 10000.
    pub port: u16,
    /// Number of session hashes (`<namespace><id>`) to write as the
    /// application user.
    pub sessions: usize,
    /// User names and session namespace.
    pub names: LabNames,
    /// `cluster-node-timeout` in ms.
    pub node_timeout_ms: u64,
    /// Kill the redis processes when the thread that started them exits
    /// (tests), instead of leaving them running (`lab up`).
    pub die_with_parent: bool,
    /// Extra redis.conf lines for every node (lab variants).
    pub extra_conf: Vec<String>,
    /// Run a Prometheus exporter per node on port + [`EXPORTER_OFFSET`].
    pub exporters: bool,
    /// Run a Prometheus scraping the exporters and an Alertmanager (see
    /// [`monitoring`]); needs `exporters`.
    pub monitoring: bool,
    /// Rename CONFIG on every node (`rename-command CONFIG <name>`, a
    /// hardening step); the exporters are told with `-config-command`. An
    /// empty name disables CONFIG outright (`rename-command CONFIG ""`).
    pub config_command: Option<String>,
    /// Run the EC2/KMS emulator on 127.0.0.1:port + [`aws::EMULATOR_OFFSET`]
    /// and seed it with the seed architecture.
    pub aws: bool,
    /// The `moto_server` to run (default: [`aws::find_moto`]).
    pub moto: Option<PathBuf>,
    /// Wait until every node's CLUSTER SHARDS shows every peer `online`
    /// (default). Off: `up` returns as soon as cluster_state is ok and each
    /// replica's own master link is up, while peers may still show it
    /// `loading` (gossip lags): a cluster right after it formed.
    pub wait_peer_health: bool,
    /// Run the nodes, exporters and emulator as containers of this Docker
    /// Compose project ([`LabSpec::compose`]) instead of processes.
    pub compose: Option<ComposeSpec>,
    /// Which server binary the nodes run (a process, or in a compose lab
    /// the image built on that root, see `lab/compose/trixie.Dockerfile`).
    pub server: ServerBuild,
    /// Hostname mode: the nodes announce DNS names
    /// (`redis-N.<zone>`, see [`LabSpec::hostname`]) as their preferred
    /// endpoint, their certificates name only those (DNS SANs, no IP SAN,
    /// issued at `up` from the test CA), and the names resolve through
    /// lines the lab adds to /etc/hosts and removes when it stops.
    pub hostnames: bool,
}

/// Which server binary a process lab's nodes run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ServerBuild {
    /// `redis-server` on PATH (Debian 12's is Redis 7.0).
    #[default]
    Path,
    /// `binary` (e.g. `valkey-server`, `redis-server`) of another Debian
    /// root (`root`, e.g. Debian 13's from scripts/server-builds.sh), run
    /// through that root's own dynamic loader and libraries, so it reads
    /// the host's paths.
    Root {
        /// The root filesystem.
        root: PathBuf,
        /// The binary in its /usr/bin.
        binary: String,
    },
}

impl ServerBuild {
    /// What the binary says of itself (`--version`): `v=8.1.1` of
    /// "Valkey server v=8.1.1 sha=...", as `8.1.1`.
    pub fn version(&self) -> Result<String, LabError> {
        let cmd = process::ServerCommand::of(self)?;
        let out = std::process::Command::new(&cmd.program)
            .args(&cmd.args)
            .arg("--version")
            .output()
            .map_err(|e| LabError::NoServerBuild(format!("{}: {e}", cmd.program.display())))?;
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .find_map(|w| w.strip_prefix("v=").map(str::to_string))
            .ok_or_else(|| {
                LabError::NoServerBuild(format!(
                    "{} --version printed no v=VERSION",
                    cmd.program.display()
                ))
            })
    }

    /// Debian 13's `binary` (`redis-server` 8.x or `valkey-server` 8.x)
    /// from the root scripts/server-builds.sh makes: `$EPIC_AUDIT_SERVERS_ROOT`,
    /// else `.servers/trixie` in the current directory or above the running
    /// binary.
    pub fn trixie(binary: &str) -> Result<ServerBuild, LabError> {
        let rel = Path::new(".servers/trixie");
        let root = std::env::var_os("EPIC_AUDIT_SERVERS_ROOT")
            .map(PathBuf::from)
            .or_else(|| rel.is_dir().then(|| rel.to_path_buf()))
            .or_else(|| {
                std::env::current_exe().ok().and_then(|exe| {
                    exe.ancestors()
                        .skip(1)
                        .map(|d| d.join(rel))
                        .find(|p| p.is_dir())
                })
            })
            .ok_or_else(|| {
                LabError::NoServerBuild(format!(
                    "no Debian 13 server root (.servers/trixie): run `bash scripts/server-builds.sh` \
                     (it bootstraps one with redis-server and valkey-server), or set EPIC_AUDIT_SERVERS_ROOT; \
                     {binary} was asked for"
                ))
            })?;
        let root = std::fs::canonicalize(&root).unwrap_or(root);
        if !root.join("usr/bin").join(binary).is_file() {
            return Err(LabError::NoServerBuild(format!(
                "{} has no usr/bin/{binary}: run `bash scripts/server-builds.sh --force`",
                root.display()
            )));
        }
        Ok(ServerBuild::Root {
            root,
            binary: binary.to_string(),
        })
    }
}

/// Exporter port = node port + this (6379 -> 9121).
pub const EXPORTER_OFFSET: u16 = 2742;

/// The default state directory: `$EPIC_AUDIT_LAB_DIR` or `$TMPDIR/epic-audit-lab`
/// (the directory `${LAB_DIR}` in the audit's config stands for).
pub fn default_dir() -> PathBuf {
    epic_audit::config::default_lab_dir()
}

/// The six node addresses 127.0.1.1 - 127.0.1.6 (the SANs of the test PKI).
pub fn default_ips() -> Vec<Ipv4Addr> {
    ips_for(3)
}

/// Node addresses of a lab with `masters` masters and as many replicas:
/// 127.0.1.1 up to 127.0.1.(2 x masters), masters first.
pub fn ips_for(masters: usize) -> Vec<Ipv4Addr> {
    (1..=2 * masters as u8)
        .map(|i| Ipv4Addr::new(127, 0, 1, i))
        .collect()
}

/// The most masters a lab can have (each with one replica, on
/// 127.0.1.1-127.0.1.(2 x this)).
pub const MAX_MASTERS: usize = 60;

impl LabSpec {
    /// The lab `epic-audit-lab up` starts: port 6379 on 127.0.1.1-6.
    pub fn standard(dir: PathBuf) -> LabSpec {
        LabSpec {
            dir,
            ips: default_ips(),
            masters: 3,
            port: 6379,
            sessions: 200,
            names: LabNames::default(),
            node_timeout_ms: 5000,
            die_with_parent: false,
            extra_conf: Vec::new(),
            exporters: true,
            monitoring: true,
            config_command: None,
            aws: true,
            moto: None,
            wait_peer_health: true,
            compose: None,
            server: ServerBuild::Path,
            hostnames: false,
        }
    }

    /// The compose lab: the seed topology as containers of project
    /// `compose.project` at `compose.subnet`.11-.16, port 6379, exporters
    /// on 9121 of each node's address, the emulator published on
    /// 127.0.0.1:`compose.emulator_port`.
    pub fn compose(dir: PathBuf, compose: ComposeSpec) -> LabSpec {
        LabSpec {
            ips: (0..6).map(|i| compose.node_ip(i)).collect(),
            port: compose::NODE_PORT,
            compose: Some(compose),
            ..LabSpec::standard(dir)
        }
    }

    /// A lab for a test: its own state directory and a free port (checked
    /// on every node address and bus port), dying with the test.
    pub fn for_test(dir: PathBuf) -> LabSpec {
        LabSpec {
            port: pick_free_port(&default_ips()),
            node_timeout_ms: 2000,
            die_with_parent: true,
            aws: false,
            monitoring: false,
            ..LabSpec::standard(dir)
        }
    }

    /// Address of node `i` (0-based): its IP, as the nodes reach each
    /// other and as the audit keys it.
    pub fn addr(&self, i: usize) -> NodeAddr {
        NodeAddr {
            host: self.ips[i].to_string(),
            port: self.port,
        }
    }

    /// The DNS zone of a hostname lab: unique per port, so labs of
    /// parallel tests never share a name. `.test` is reserved for testing
    /// (RFC 6761) and never resolves elsewhere.
    pub fn zone(&self) -> Option<String> {
        self.hostnames
            .then(|| format!("lab{}.epic-audit.test", self.port))
    }

    /// Node `i`'s DNS name in a hostname lab (`redis-N.<zone>`).
    pub fn hostname(&self, i: usize) -> Option<String> {
        self.zone().map(|z| format!("redis-{}.{z}", i + 1))
    }

    /// The address clients use for node `i`: its DNS name in a hostname
    /// lab, else its IP.
    pub fn client_addr(&self, i: usize) -> NodeAddr {
        match self.hostname(i) {
            Some(host) => NodeAddr {
                host,
                port: self.port,
            },
            None => self.addr(i),
        }
    }
}

/// Finds a port P such that P, P+10000 (bus) and P+2742 (exporter) are
/// free on every address, and P+1000 (the AWS emulator), P+2711
/// (Prometheus) and P+2714 (Alertmanager) on 127.0.0.1.
/// Ports 12000-21999 keep clear of Linux's ephemeral range (32768+).
pub fn pick_free_port(ips: &[Ipv4Addr]) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 12000 + (std::process::id() % 500) as u16 * 20;
    loop {
        let offset = NEXT.fetch_add(7, Ordering::SeqCst) % 10000;
        let p = 12000 + (base - 12000 + offset) % 10000;
        let free = ips.iter().all(|ip| {
            [p, p + 10000, p + EXPORTER_OFFSET]
                .iter()
                .all(|q| std::net::TcpListener::bind((*ip, *q)).is_ok())
        }) && [aws::EMULATOR_OFFSET, PROMETHEUS_OFFSET, ALERTMANAGER_OFFSET]
            .iter()
            .all(|o| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, p + o)).is_ok());
        if free {
            return p;
        }
    }
}

/// A running lab. Dropping it stops it when it was started for a test.
pub struct Lab {
    /// How it was built.
    pub spec: LabSpec,
    /// Pids and roles.
    pub state: LabState,
    passwords: BTreeMap<String, Secret>,
    stop_on_drop: bool,
}

impl Lab {
    /// Starts the lab: writes configs, spawns six redis-servers, forms the
    /// cluster, waits for `cluster_state:ok` and replication, and writes
    /// the session hashes. On any failure the processes are stopped and the
    /// state removed, so nothing is left half-running.
    pub async fn up(spec: LabSpec) -> Result<Lab, LabError> {
        epic_audit::install_crypto_provider();
        if is_running(&spec.dir) {
            return Err(LabError::AlreadyRunning(spec.dir.clone()));
        }
        let redis = if spec.compose.is_some() {
            if spec.masters != 3 || spec.ips.len() != 6 {
                return Err(LabError::Step {
                    step: "checking the topology".into(),
                    detail: "the compose lab runs the seed topology: 3 masters, 3 replicas".into(),
                });
            }
            ServerCommand::default()
        } else {
            ServerCommand::of(&spec.server)?
        };
        if spec.masters < 3 || spec.masters > MAX_MASTERS || spec.ips.len() != 2 * spec.masters {
            return Err(LabError::Step {
                step: "checking the topology".into(),
                detail: format!(
                    "{} masters on {} addresses: a lab has 3 to {MAX_MASTERS} masters, each with one replica",
                    spec.masters,
                    spec.ips.len()
                ),
            });
        }
        if spec.aws && spec.masters != 3 {
            return Err(LabError::Step {
                step: "checking the topology".into(),
                detail: "the EC2/KMS emulator is seeded with the seed architecture's 3 masters; \
                         start a larger lab with --no-aws"
                    .into(),
            });
        }
        let moto = if spec.aws && spec.compose.is_none() {
            Some(
                spec.moto
                    .clone()
                    .or_else(aws::find_moto)
                    .ok_or(LabError::NoMoto)?,
            )
        } else {
            None
        };
        for ip in spec.ips.iter().filter(|_| spec.compose.is_none()) {
            for p in [spec.port, spec.port + 10000] {
                if std::net::TcpListener::bind((*ip, p)).is_err() {
                    return Err(LabError::PortInUse(format!("{ip}:{p}")));
                }
            }
        }
        if spec.aws {
            let p = match &spec.compose {
                Some(c) => c.emulator_port,
                None => spec.port + aws::EMULATOR_OFFSET,
            };
            if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_err() {
                return Err(LabError::PortInUse(format!("127.0.0.1:{p}")));
            }
        }
        if spec.monitoring && spec.compose.is_none() {
            for p in [
                spec.port + PROMETHEUS_OFFSET,
                spec.port + ALERTMANAGER_OFFSET,
            ] {
                if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_err() {
                    return Err(LabError::PortInUse(format!("127.0.0.1:{p}")));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&spec.dir);
        std::fs::create_dir_all(&spec.dir).map_err(io(&spec.dir))?;
        std::fs::set_permissions(&spec.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(&spec.dir))?;
        let pki = spec.dir.join("pki");
        let secrets = spec.dir.join("secrets");
        for d in [&pki, &secrets] {
            std::fs::create_dir_all(d).map_err(io(d))?;
        }
        for (name, data) in PKI {
            write_private(&pki.join(name), data)?;
        }
        if spec.hostnames && spec.compose.is_some() {
            return Err(LabError::Step {
                step: "checking the lab's form".into(),
                detail: "hostname mode runs on the process lab only".into(),
            });
        }
        if spec.hostnames {
            // Every node's certificate names only its DNS name.
            let sans: Vec<String> = (0..spec.ips.len())
                .map(|i| format!("DNS:{}", spec.hostname(i).expect("hostname lab")))
                .collect();
            files::issue_node_certs(&pki, &sans, 1)?;
        } else if spec.ips.len() > 6 && spec.compose.is_none() {
            let sans: Vec<String> = spec.ips[6..].iter().map(|ip| format!("IP:{ip}")).collect();
            files::issue_node_certs(&pki, &sans, 7)?;
        }
        let passwords: BTreeMap<String, Secret> = spec
            .names
            .users()
            .iter()
            .map(|u| (u.to_string(), Secret::new(random_hex(24))))
            .collect();
        for (u, p) in &passwords {
            write_private(
                &secrets.join(format!("{u}.pass")),
                format!("{}\n", p.expose()).as_bytes(),
            )?;
        }
        epic_audit::sign::keygen(&spec.dir.join("signing")).map_err(|e| LabError::Step {
            step: "creating the lab's signing key".into(),
            detail: e.to_string(),
        })?;
        let acl = acl_file(&spec.names, &passwords);
        let mut lab = Lab {
            state: LabState {
                port: spec.port,
                nodes: Vec::new(),
                started_at: chrono::Utc::now(),
                exporters: Vec::new(),
                monitoring: Vec::new(),
                emulator: None,
                compose: None,
                hosts_zone: None,
            },
            passwords,
            stop_on_drop: true,
            spec,
        };
        let named = match lab.spec.zone() {
            Some(zone) => {
                let entries: Vec<(String, Ipv4Addr)> = (0..lab.spec.ips.len())
                    .map(|i| (lab.spec.hostname(i).expect("hostname lab"), lab.spec.ips[i]))
                    .collect();
                let added = hosts::add(&zone, &entries);
                if added.is_ok() {
                    lab.state.hosts_zone = Some(zone);
                }
                added
            }
            None => Ok(()),
        };
        let started = if let Err(e) = named {
            Err(e)
        } else if lab.spec.compose.is_some() {
            lab.compose_up_and_form(&acl).await
        } else {
            lab.start_and_form(&redis, &pki, &acl, moto.as_deref())
                .await
        };
        let started = match started {
            Ok(()) => lab.write_accepted_builds().await,
            Err(e) => Err(e),
        };
        match started {
            Ok(()) => {
                lab.stop_on_drop = lab.spec.die_with_parent;
                Ok(lab)
            }
            Err(e) => {
                let e = lab.with_logs(e);
                lab.stop();
                Err(e)
            }
        }
    }

    fn with_logs(&self, e: LabError) -> LabError {
        match e {
            LabError::Step { step, detail } => {
                let logs: Vec<String> = (0..self.spec.ips.len())
                    .map(|i| self.node_dir(i))
                    .map(|d| format!("--- {}\n{}", d.display(), log_tail(&d, 5)))
                    .collect();
                LabError::Step {
                    step,
                    detail: format!("{detail}\nlast log lines:\n{}", logs.join("\n")),
                }
            }
            other => other,
        }
    }

    /// State directory of node `i`.
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.spec.dir.join(format!("node{}", i + 1))
    }

    fn timeouts() -> Timeouts {
        Timeouts {
            connect_ms: 3000,
            command_ms: 5000,
            probe_ms: 10000,
        }
    }

    /// The TLS client for this lab's PKI.
    pub fn tls_client(&self) -> TlsClient {
        let pki = self.spec.dir.join("pki");
        TlsClient::from_files(
            &pki.join("ca.crt"),
            &pki.join("client.crt"),
            &pki.join("client.key"),
            None,
        )
        .expect("the embedded test PKI is valid")
    }

    /// Password of a lab user.
    pub fn password(&self, user: &str) -> &Secret {
        &self.passwords[user]
    }

    /// Addresses of all nodes, as clients reach them (DNS names in a
    /// hostname lab).
    pub fn addrs(&self) -> Vec<NodeAddr> {
        (0..self.spec.ips.len())
            .map(|i| self.spec.client_addr(i))
            .collect()
    }

    /// An authenticated connection to node `i` as `user`.
    pub async fn conn(
        &self,
        i: usize,
        user: &str,
    ) -> Result<RedisConn, epic_audit::resp::ConnError> {
        RedisConn::connect_as(
            &self.spec.client_addr(i),
            &self.tls_client(),
            &Lab::timeouts(),
            user,
            self.password(user),
        )
        .await
    }

    /// An admin connection to node `i` (lab set-up and test variants).
    pub async fn admin(&self, i: usize) -> Result<RedisConn, epic_audit::resp::ConnError> {
        self.conn(i, &self.spec.names.admin).await
    }
    /// Kills node `i` (SIGKILL) to simulate a dead node.
    pub fn kill_node(&self, i: usize) {
        if self.state.compose.is_some() {
            let _ = self.compose_service("kill", &format!("node{}", i + 1));
            return;
        }
        let n = &self.state.nodes[i];
        if !gone(n.pid) {
            // SAFETY: signal to a pid verified to be our redis-server.
            unsafe { libc::kill(n.pid as libc::pid_t, libc::SIGKILL) };
        }
        reap([n.pid]);
    }

    /// Stops every node and removes the state directory.
    pub fn stop(&mut self) {
        if let Some(c) = &self.state.compose {
            if let Err(e) = compose::down(c, &self.spec.dir) {
                eprintln!("epic-audit-lab: {e}");
            }
        }
        stop_services(&self.state.monitoring, true);
        stop_services(&self.state.exporters, true);
        stop_services(self.state.emulator.as_slice(), true);
        stop_nodes(&self.state.nodes, true);
        if let Some(zone) = self.state.hosts_zone.take() {
            if let Err(e) = hosts::remove(&zone) {
                eprintln!("epic-audit-lab: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.spec.dir);
        self.stop_on_drop = false;
    }

    /// Issues `pki/<stem>.crt` and `.key` from the test CA for
    /// `subject_alt_name` (an openssl value, e.g. `DNS:redis-9.example`):
    /// a certificate a test swaps onto a node (CONFIG SET tls-cert-file)
    /// to give it exactly one defect. Returns the two paths.
    pub fn issue_cert(
        &self,
        stem: &str,
        subject_alt_name: &str,
    ) -> Result<(PathBuf, PathBuf), LabError> {
        let pki = self.spec.dir.join("pki");
        let serial = 5000 + (std::process::id() % 1000);
        files::issue_certs(
            &pki,
            &[(stem.to_string(), subject_alt_name.to_string(), serial)],
        )?;
        Ok((
            pki.join(format!("{stem}.crt")),
            pki.join(format!("{stem}.key")),
        ))
    }

    /// Leaves the lab running after this value is dropped (`lab up`).
    pub fn detach(mut self) {
        self.stop_on_drop = false;
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.stop_on_drop {
            self.stop();
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn master_slots_split_every_slot_once() {
        assert_eq!(master_slots(3), MASTER_SLOTS.to_vec());
        for m in [4, 12, 60] {
            let r = master_slots(m);
            assert_eq!(r.len(), m);
            assert_eq!(r[0].0, 0);
            assert_eq!(r[m - 1].1, 16383);
            assert!(r.windows(2).all(|w| w[1].0 == w[0].1 + 1), "{r:?}");
        }
        assert_eq!(ips_for(12).len(), 24);
        assert_eq!(ips_for(12)[23], Ipv4Addr::new(127, 0, 1, 24));
    }

    use super::*;

    #[test]
    fn free_port_is_outside_the_ephemeral_range() {
        let p = pick_free_port(&default_ips());
        assert!((12000..22000).contains(&p));
    }
}
