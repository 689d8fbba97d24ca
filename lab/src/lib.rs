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
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod aws;

use epic_audit::config::{NodeAddr, Timeouts};
use epic_audit::resp::{as_text, error_text, parse_info, Frame, RedisConn};
use epic_audit::secret::Secret;
use epic_audit::tls::TlsClient;

/// The test PKI compiled into the binary (fixtures/pki), so the lab works
/// from any directory. TEST ONLY: these private keys are public.
const PKI: &[(&str, &[u8])] = &[
    ("ca.crt", include_bytes!("../../fixtures/pki/ca.crt")),
    (
        "client.crt",
        include_bytes!("../../fixtures/pki/client.crt"),
    ),
    (
        "client.key",
        include_bytes!("../../fixtures/pki/client.key"),
    ),
    ("node1.crt", include_bytes!("../../fixtures/pki/node1.crt")),
    ("node1.key", include_bytes!("../../fixtures/pki/node1.key")),
    ("node2.crt", include_bytes!("../../fixtures/pki/node2.crt")),
    ("node2.key", include_bytes!("../../fixtures/pki/node2.key")),
    ("node3.crt", include_bytes!("../../fixtures/pki/node3.crt")),
    ("node3.key", include_bytes!("../../fixtures/pki/node3.key")),
    ("node4.crt", include_bytes!("../../fixtures/pki/node4.crt")),
    ("node4.key", include_bytes!("../../fixtures/pki/node4.key")),
    ("node5.crt", include_bytes!("../../fixtures/pki/node5.crt")),
    ("node5.key", include_bytes!("../../fixtures/pki/node5.key")),
    ("node6.crt", include_bytes!("../../fixtures/pki/node6.crt")),
    ("node6.key", include_bytes!("../../fixtures/pki/node6.key")),
];

/// The users of the lab's ACL, as in the seed architecture.
pub const USERS: [&str; 3] = ["admin_user", "app_user", "dev_user"];

/// Slot ranges of the three masters.
pub const MASTER_SLOTS: [(u16, u16); 3] = [(0, 5460), (5461, 10922), (10923, 16383)];

/// Why the lab could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// redis-server is not installed.
    #[error(
        "redis-server was not found on PATH; install it (Debian: `apt-get install redis-server`)"
    )]
    NoRedis,
    /// The moto EC2/KMS emulator is not installed.
    #[error("moto_server (the EC2/KMS emulator) was not found: run scripts/setup.sh (it creates .venv with `moto[server]`), or set EPIC_AUDIT_MOTO_SERVER, or start the lab without it (`epic-audit-lab up --no-aws`)")]
    NoMoto,
    /// prometheus-redis-exporter is not installed.
    #[error("prometheus-redis-exporter was not found; install it (Debian: `apt-get install prometheus-redis-exporter`)")]
    NoExporter,
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
    /// One loopback address per node: masters first, then their replicas.
    pub ips: Vec<Ipv4Addr>,
    /// TLS port of every node (each on its own address); bus = port + 10000.
    pub port: u16,
    /// Number of `session:<id>` hashes to write as app_user.
    pub sessions: usize,
    /// `cluster-node-timeout` in ms.
    pub node_timeout_ms: u64,
    /// Kill the redis processes when the thread that started them exits
    /// (tests), instead of leaving them running (`lab up`).
    pub die_with_parent: bool,
    /// Extra redis.conf lines for every node (lab variants).
    pub extra_conf: Vec<String>,
    /// Run a Prometheus exporter per node on port + [`EXPORTER_OFFSET`].
    pub exporters: bool,
    /// Run the EC2/KMS emulator on 127.0.0.1:port + [`aws::EMULATOR_OFFSET`]
    /// and seed it with the seed architecture.
    pub aws: bool,
    /// The `moto_server` to run (default: [`aws::find_moto`]).
    pub moto: Option<PathBuf>,
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
    (1..=6).map(|i| Ipv4Addr::new(127, 0, 1, i)).collect()
}

impl LabSpec {
    /// The lab `epic-audit-lab up` starts: port 6379 on 127.0.1.1-6.
    pub fn standard(dir: PathBuf) -> LabSpec {
        LabSpec {
            dir,
            ips: default_ips(),
            port: 6379,
            sessions: 200,
            node_timeout_ms: 5000,
            die_with_parent: false,
            extra_conf: Vec::new(),
            exporters: true,
            aws: true,
            moto: None,
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
            ..LabSpec::standard(dir)
        }
    }

    /// Address of node `i` (0-based).
    pub fn addr(&self, i: usize) -> NodeAddr {
        NodeAddr {
            host: self.ips[i].to_string(),
            port: self.port,
        }
    }
}

/// Finds a port P such that P, P+10000 (bus) and P+2742 (exporter) are
/// free on every address, and P+1000 (the AWS emulator) on 127.0.0.1.
/// Ports 12000-21999 keep clear of Linux's ephemeral range (32768+).
pub fn pick_free_port(ips: &[Ipv4Addr]) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 12000 + (std::process::id() % 500) as u16 * 20;
    loop {
        let offset = NEXT.fetch_add(7, Ordering::SeqCst) % 10000;
        let p = 12000 + (base - 12000 + offset) % 10000;
        let free =
            ips.iter().all(|ip| {
                [p, p + 10000, p + EXPORTER_OFFSET]
                    .iter()
                    .all(|q| std::net::TcpListener::bind((*ip, *q)).is_ok())
            }) && std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, p + aws::EMULATOR_OFFSET))
                .is_ok();
        if free {
            return p;
        }
    }
}

/// What `lab.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    /// TLS port of every node.
    pub port: u16,
    /// The nodes.
    pub nodes: Vec<LabNode>,
    /// When started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The exporters, one per node.
    #[serde(default)]
    pub exporters: Vec<LabService>,
    /// The EC2/KMS emulator, when the lab has one.
    #[serde(default)]
    pub emulator: Option<LabService>,
}

/// A helper process of the lab: an exporter or the AWS emulator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabService {
    /// Where it listens.
    pub listen: String,
    /// Process id.
    pub pid: u32,
    /// Its working directory (recognises the process with `comm`).
    pub dir: PathBuf,
    /// Its command name in /proc (to recognise it before signalling).
    #[serde(default = "exporter_comm")]
    pub comm: String,
}

fn exporter_comm() -> String {
    EXPORTER.to_string()
}

/// One lab node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabNode {
    /// Loopback address.
    pub ip: String,
    /// `master` or `replica`.
    pub role: String,
    /// Process id of its redis-server.
    pub pid: u32,
    /// Its config file (used to recognise the process).
    pub conf: PathBuf,
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

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("the OS random source is available");
    hex::encode(b)
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), LabError> {
    std::fs::write(path, data).map_err(io(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))
}

/// The ACL file of the seed architecture. Passwords are stored as SHA-256
/// (`#hex`), never in clear. `-pfmerge` for app_user: Redis 7.0 extracts no
/// key from a single-key `PFMERGE dest`, so the key-pattern check is skipped
/// and a key-restricted user can create keys anywhere (found by ACC-006).
pub fn acl_file(passwords: &BTreeMap<String, Secret>) -> String {
    let h = |u: &str| hex::encode(Sha256::digest(passwords[u].expose().as_bytes()));
    format!(
        "user default off resetpass resetkeys resetchannels -@all\n\
         user admin_user on #{} ~* &* +@all\n\
         user app_user on #{} ~session:* resetchannels -@all +@read +@write +@keyspace +@hash +@string +@connection +@transaction -@admin -@dangerous -pfmerge +cluster|slots +cluster|shards +cluster|nodes +cluster|info +cluster|keyslot\n\
         user dev_user on #{} ~* resetchannels -@all +@read +@connection -@admin -@dangerous +cluster|slots +cluster|shards +cluster|nodes +cluster|info +cluster|keyslot\n",
        h("admin_user"),
        h("app_user"),
        h("dev_user")
    )
}

fn node_conf(spec: &LabSpec, i: usize, dir: &Path, pki: &Path, admin_pw: &Secret) -> String {
    let n = i + 1;
    let mut c = format!(
        "# epic-audit lab node {n} (TEST ONLY)\n\
         bind {ip}\n\
         bind-source-addr {ip}\n\
         cluster-announce-ip {ip}\n\
         port 0\n\
         tls-port {port}\n\
         tls-cert-file {pki}/node{n}.crt\n\
         tls-key-file {pki}/node{n}.key\n\
         tls-ca-cert-file {pki}/ca.crt\n\
         tls-protocols \"TLSv1.3\"\n\
         tls-auth-clients yes\n\
         tls-cluster yes\n\
         tls-replication yes\n\
         cluster-enabled yes\n\
         cluster-config-file nodes.conf\n\
         cluster-node-timeout {timeout}\n\
         cluster-require-full-coverage yes\n\
         appendonly yes\n\
         appendfsync everysec\n\
         save \"\"\n\
         dir {dir}\n\
         aclfile {dir}/users.acl\n\
         protected-mode yes\n\
         enable-debug-command no\n\
         enable-module-command no\n\
         maxmemory-policy noeviction\n\
         daemonize no\n\
         logfile {dir}/redis.log\n\
         masteruser admin_user\n\
         masterauth {pw}\n",
        ip = spec.ips[i],
        port = spec.port,
        pki = pki.display(),
        timeout = spec.node_timeout_ms,
        dir = dir.display(),
        pw = admin_pw.expose(),
    );
    for l in &spec.extra_conf {
        c.push_str(l);
        c.push('\n');
    }
    c
}

fn find_redis_server() -> Result<PathBuf, LabError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .ok_or(LabError::NoRedis)
}

/// Last lines of a node's log, for error messages.
pub fn log_tail(node_dir: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(node_dir.join("redis.log")).unwrap_or_default();
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// True when `pid` is a redis-server running in the directory of `conf`.
///
/// redis-server rewrites its command line (process title), so neither the
/// config path nor a stable name is visible there; `comm` and the working
/// directory (set at spawn to the node's state directory) are, and together
/// guard against a recycled pid.
fn is_our_process(pid: u32, conf: &Path) -> bool {
    conf.parent()
        .is_some_and(|dir| runs_in(pid, "redis-server", dir))
}

/// True when `pid` has command name `comm` (as /proc truncates it to 15
/// bytes) and runs in `dir`.
fn runs_in(pid: u32, comm: &str, dir: &Path) -> bool {
    let actual = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let want = &comm[..comm.len().min(15)];
    if actual.trim_end() != want {
        return false;
    }
    // A zombie has no cwd link: it is no longer running.
    match std::fs::read_link(format!("/proc/{pid}/cwd")) {
        Ok(cwd) => cwd == dir || cwd.to_string_lossy() == format!("{} (deleted)", dir.display()),
        Err(_) => false,
    }
}

const EXPORTER: &str = "prometheus-redis-exporter";

/// Stops lab helper processes (only processes that are still ours).
fn stop_services(exporters: &[LabService], own_children: bool) {
    let ours = |e: &LabService| {
        if own_children {
            !gone(e.pid)
        } else {
            runs_in(e.pid, &e.comm, &e.dir)
        }
    };
    let targets: Vec<&LabService> = exporters.iter().filter(|e| ours(e)).collect();
    for e in &targets {
        // SAFETY: plain signal to our child, or to a pid verified to be our exporter.
        unsafe { libc::kill(e.pid as libc::pid_t, libc::SIGTERM) };
    }
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) && targets.iter().any(|e| !gone(e.pid)) {
        reap(targets.iter().map(|e| e.pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    for e in targets.iter().filter(|e| !gone(e.pid)) {
        // SAFETY: as above.
        unsafe { libc::kill(e.pid as libc::pid_t, libc::SIGKILL) };
    }
    reap(targets.iter().map(|e| e.pid));
}

/// Stops the given nodes: SIGTERM, up to 5 s grace, then SIGKILL. Only
/// processes that are still our redis-server are signalled.
///
/// `own_children`: the pids are children of this process, which cannot be
/// recycled before we reap them, so they are signalled without the
/// /proc check (which can race with a process that is just starting).
fn stop_nodes(nodes: &[LabNode], own_children: bool) -> Vec<u32> {
    let ours: Vec<&LabNode> = nodes
        .iter()
        .filter(|n| {
            if own_children {
                !gone(n.pid)
            } else {
                is_our_process(n.pid, &n.conf)
            }
        })
        .collect();
    for n in &ours {
        // SAFETY: plain signal to a pid we verified is our redis-server.
        unsafe { libc::kill(n.pid as libc::pid_t, libc::SIGTERM) };
    }
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) && ours.iter().any(|n| !gone(n.pid)) {
        reap(ours.iter().map(|n| n.pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    for n in &ours {
        if !gone(n.pid) {
            // SAFETY: as above.
            unsafe { libc::kill(n.pid as libc::pid_t, libc::SIGKILL) };
        }
    }
    reap(ours.iter().map(|n| n.pid));
    ours.iter().map(|n| n.pid).collect()
}

/// Makes the kernel kill the spawned process when the thread that spawns
/// it exits (test labs must not outlive their test).
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork
    // and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// True when `pid` no longer runs (no such process, or a zombie).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// Reaps the given pids if they are exited children of this process, so
/// they do not linger as zombies. Only these pids: waiting for any child
/// (`waitpid(-1)`) would steal the exit status of children that other code
/// in the same process (another test's lab, a `Command`) waits for. A pid
/// that is not our child is ignored (ECHILD).
fn reap(pids: impl IntoIterator<Item = u32>) {
    for pid in pids {
        // SAFETY: non-blocking wait for one specific pid; no memory is shared.
        unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG) };
    }
}

/// Reads `lab.json` of a lab directory, if there is one.
pub fn read_state(dir: &Path) -> Option<LabState> {
    let text = std::fs::read_to_string(dir.join("lab.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// True when every node of the lab in `dir` runs.
pub fn is_running(dir: &Path) -> bool {
    read_state(dir).is_some_and(|s| {
        !s.nodes.is_empty() && s.nodes.iter().all(|n| is_our_process(n.pid, &n.conf))
    })
}

/// Stops the lab in `dir` by its recorded pids and removes the directory.
/// Returns the pids stopped. A directory without `lab.json` is left alone.
pub fn down(dir: &Path) -> Result<Vec<u32>, LabError> {
    let Some(state) = read_state(dir) else {
        return Ok(Vec::new());
    };
    stop_services(&state.exporters, false);
    stop_services(state.emulator.as_slice(), false);
    let stopped = stop_nodes(&state.nodes, false);
    std::fs::remove_dir_all(dir).map_err(io(dir))?;
    Ok(stopped)
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
        let redis = find_redis_server()?;
        let moto = if spec.aws {
            Some(
                spec.moto
                    .clone()
                    .or_else(aws::find_moto)
                    .ok_or(LabError::NoMoto)?,
            )
        } else {
            None
        };
        for ip in &spec.ips {
            for p in [spec.port, spec.port + 10000] {
                if std::net::TcpListener::bind((*ip, p)).is_err() {
                    return Err(LabError::PortInUse(format!("{ip}:{p}")));
                }
            }
        }
        if spec.aws {
            let p = spec.port + aws::EMULATOR_OFFSET;
            if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_err() {
                return Err(LabError::PortInUse(format!("127.0.0.1:{p}")));
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
        let passwords: BTreeMap<String, Secret> = USERS
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
        let acl = acl_file(&passwords);
        let mut lab = Lab {
            state: LabState {
                port: spec.port,
                nodes: Vec::new(),
                started_at: chrono::Utc::now(),
                exporters: Vec::new(),
                emulator: None,
            },
            passwords,
            stop_on_drop: true,
            spec,
        };
        match lab
            .start_and_form(&redis, &pki, &acl, moto.as_deref())
            .await
        {
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

    async fn start_and_form(
        &mut self,
        redis: &Path,
        pki: &Path,
        acl: &str,
        moto: Option<&Path>,
    ) -> Result<(), LabError> {
        let n = self.spec.ips.len();
        for i in 0..n {
            let dir = self.node_dir(i);
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            write_private(&dir.join("users.acl"), acl.as_bytes())?;
            let conf = dir.join("redis.conf");
            write_private(
                &conf,
                node_conf(&self.spec, i, &dir, pki, &self.passwords["admin_user"]).as_bytes(),
            )?;
            let mut cmd = Command::new(redis);
            cmd.arg(&conf)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0);
            if self.spec.die_with_parent {
                die_with_parent(&mut cmd);
            }
            let child = cmd.spawn().map_err(io(redis))?;
            self.state.nodes.push(LabNode {
                ip: self.spec.ips[i].to_string(),
                role: if i < 3 {
                    "master".into()
                } else {
                    "replica".into()
                },
                pid: child.id(),
                conf,
            });
            // The Child handle is dropped without waiting: the process is
            // tracked by pid (lab.json) and reaped in `stop`.
        }
        self.write_state()?;
        let ready = Duration::from_secs(20);
        for i in 0..n {
            self.wait_until(ready, &format!("node {} start", i + 1), |lab| {
                Box::pin(async move { lab.admin(i).await.map(|_| true).map_err(|e| e.to_string()) })
            })
            .await?;
        }
        // Masters take their slot ranges; node 1 meets everyone.
        for (i, (a, b)) in MASTER_SLOTS.iter().enumerate() {
            self.admin_cmd(
                i,
                &["CLUSTER", "ADDSLOTSRANGE", &a.to_string(), &b.to_string()],
            )
            .await?;
        }
        for i in 1..n {
            let a = self.spec.addr(i);
            self.admin_cmd(0, &["CLUSTER", "MEET", &a.host, &a.port.to_string()])
                .await?;
        }
        let form = Duration::from_secs(60);
        self.wait_until(form, "cluster handshake", |lab| {
            Box::pin(lab.all_know_each_other())
        })
        .await?;
        for r in 3..n {
            let master = r - 3;
            let id = self.node_id(master).await?;
            self.admin_cmd(r, &["CLUSTER", "REPLICATE", &id]).await?;
        }
        self.wait_until(form, "cluster state ok and replicas in sync", |lab| {
            Box::pin(lab.converged())
        })
        .await?;
        self.seed_sessions().await?;
        if self.spec.exporters {
            self.start_exporters(pki).await?;
        }
        if let Some(moto) = moto {
            self.start_emulator(moto).await?;
            self.reseed(aws::AwsDefect::None).await?;
        }
        Ok(())
    }

    /// Starts `moto_server` on 127.0.0.1 (port + [`aws::EMULATOR_OFFSET`])
    /// and waits until it answers.
    async fn start_emulator(&mut self, moto: &Path) -> Result<(), LabError> {
        let dir = self.spec.dir.join("aws");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let port = self.emulator_port();
        let log = std::fs::File::create(dir.join("moto.log")).map_err(io(&dir))?;
        let mut cmd = Command::new(moto);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io(&dir))?)
            .stderr(log)
            .process_group(0);
        if self.spec.die_with_parent {
            die_with_parent(&mut cmd);
        }
        let child = cmd.spawn().map_err(io(moto))?;
        let pid = child.id();
        self.state.emulator = Some(LabService {
            listen: format!("127.0.0.1:{port}"),
            pid,
            dir: dir.clone(),
            comm: "moto_server".into(),
        });
        self.write_state()?;
        aws::wait_ready(port, Duration::from_secs(30))
            .await
            .map_err(|detail| LabError::Step {
                step: "starting the EC2/KMS emulator".into(),
                detail: format!(
                    "{detail}\nlast log lines:\n{}",
                    std::fs::read_to_string(dir.join("moto.log"))
                        .unwrap_or_default()
                        .lines()
                        .rev()
                        .take(5)
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            })?;
        // Record the command name the kernel shows (a script's name, or its
        // interpreter's), so `lab down` recognises the process.
        if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
            if let Some(e) = self.state.emulator.as_mut() {
                e.comm = comm.trim_end().to_string();
            }
            self.write_state()?;
        }
        Ok(())
    }

    /// Port of the lab's EC2/KMS emulator on 127.0.0.1.
    pub fn emulator_port(&self) -> u16 {
        self.spec.port + aws::EMULATOR_OFFSET
    }

    /// The environment `[aws]` settings that audit this lab's emulator.
    pub fn aws_settings(&self) -> epic_audit::config::AwsSettings {
        let ips: Vec<String> = self.spec.ips.iter().map(ToString::to_string).collect();
        aws::lab_settings(self.emulator_port(), &ips)
    }

    /// Empties the emulator and seeds the seed architecture with `defect`.
    pub async fn reseed(&self, defect: aws::AwsDefect) -> Result<aws::Seeded, LabError> {
        let step = |detail| LabError::Step {
            step: format!("seeding the EC2/KMS emulator ({defect:?})"),
            detail,
        };
        let port = self.emulator_port();
        aws::reset(port).await.map_err(step)?;
        aws::seed(&self.aws_settings(), defect).await.map_err(step)
    }

    /// Kills the EC2/KMS emulator (an unreachable AWS endpoint).
    pub fn kill_emulator(&self) {
        if let Some(e) = &self.state.emulator {
            if !gone(e.pid) {
                // SAFETY: our own child.
                unsafe { libc::kill(e.pid as libc::pid_t, libc::SIGKILL) };
            }
            reap([e.pid]);
        }
    }

    /// Starts one prometheus-redis-exporter per node (TLS with the client
    /// certificate, as admin_user; the password goes through the
    /// environment, never the command line) and waits until each answers.
    async fn start_exporters(&mut self, pki: &Path) -> Result<(), LabError> {
        let bin = [
            "/usr/bin/prometheus-redis-exporter",
            "/usr/local/bin/prometheus-redis-exporter",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or(LabError::NoExporter)?;
        for i in 0..self.spec.ips.len() {
            let dir = self.node_dir(i);
            let listen = format!("{}:{}", self.spec.ips[i], self.spec.port + EXPORTER_OFFSET);
            let log = std::fs::File::create(dir.join("exporter.log")).map_err(io(&dir))?;
            let mut cmd = Command::new(&bin);
            cmd.arg("-redis.addr")
                .arg(format!("rediss://{}", self.spec.addr(i)))
                .args(["-redis.user", "admin_user"])
                .arg("-tls-ca-cert-file")
                .arg(pki.join("ca.crt"))
                .arg("-tls-client-cert-file")
                .arg(pki.join("client.crt"))
                .arg("-tls-client-key-file")
                .arg(pki.join("client.key"))
                .args(["-web.listen-address", &listen])
                .env("REDIS_PASSWORD", self.passwords["admin_user"].expose())
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .process_group(0);
            if self.spec.die_with_parent {
                die_with_parent(&mut cmd);
            }
            let child = cmd.spawn().map_err(io(&bin))?;
            self.state.exporters.push(LabService {
                listen,
                pid: child.id(),
                dir,
                comm: EXPORTER.into(),
            });
        }
        self.write_state()?;
        let t0 = Instant::now();
        for e in self.state.exporters.clone() {
            loop {
                let v = epic_audit::probes::data::scrape(
                    &e.listen,
                    Duration::from_secs(1),
                    Duration::from_secs(2),
                )
                .await;
                if v.reachable && v.metrics.get("redis_up") == Some(&1.0) {
                    break;
                }
                if t0.elapsed() > Duration::from_secs(20) || gone(e.pid) {
                    return Err(LabError::Step {
                        step: format!("exporter {}", e.listen),
                        detail: format!("not answering with redis_up 1: {:?}", v.error),
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Kills the exporter of node `i` (a monitoring outage).
    pub fn kill_exporter(&self, i: usize) {
        if let Some(e) = self.state.exporters.get(i) {
            if !gone(e.pid) {
                // SAFETY: our own child.
                unsafe { libc::kill(e.pid as libc::pid_t, libc::SIGKILL) };
            }
            reap([e.pid]);
        }
    }

    fn write_state(&self) -> Result<(), LabError> {
        let p = self.spec.dir.join("lab.json");
        let text = serde_json::to_string_pretty(&self.state).expect("state serialises");
        write_private(&p, text.as_bytes())
    }

    async fn wait_until<'a, F>(
        &'a self,
        limit: Duration,
        step: &str,
        mut f: F,
    ) -> Result<(), LabError>
    where
        F: FnMut(
            &'a Lab,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<bool, String>> + Send + 'a>,
        >,
    {
        let t0 = Instant::now();
        let mut last = String::from("not ready");
        while t0.elapsed() < limit {
            for (i, node) in self.state.nodes.iter().enumerate() {
                if gone(node.pid) {
                    reap([node.pid]);
                    return Err(LabError::Step {
                        step: step.to_string(),
                        detail: format!("redis-server of node {} (pid {}) exited", i + 1, node.pid),
                    });
                }
            }
            match f(self).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(LabError::Step {
            step: step.to_string(),
            detail: format!("not done after {} s: {last}", limit.as_secs()),
        })
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

    /// Addresses of all nodes.
    pub fn addrs(&self) -> Vec<NodeAddr> {
        (0..self.spec.ips.len())
            .map(|i| self.spec.addr(i))
            .collect()
    }

    /// An authenticated connection to node `i` as `user`.
    pub async fn conn(
        &self,
        i: usize,
        user: &str,
    ) -> Result<RedisConn, epic_audit::resp::ConnError> {
        RedisConn::connect_as(
            &self.spec.addr(i),
            &self.tls_client(),
            &Lab::timeouts(),
            user,
            self.password(user),
        )
        .await
    }

    /// An admin connection to node `i` (lab set-up and test variants).
    pub async fn admin(&self, i: usize) -> Result<RedisConn, epic_audit::resp::ConnError> {
        self.conn(i, "admin_user").await
    }

    async fn admin_cmd(&self, i: usize, words: &[&str]) -> Result<Frame, LabError> {
        let step = format!(
            "{} on node {}",
            words[..2.min(words.len())].join(" "),
            i + 1
        );
        let mut c = self.admin(i).await.map_err(|e| LabError::Step {
            step: step.clone(),
            detail: e.to_string(),
        })?;
        c.cmd_str(words).await.map_err(|e| LabError::Step {
            step,
            detail: e.to_string(),
        })
    }

    async fn node_id(&self, i: usize) -> Result<String, LabError> {
        let f = self.admin_cmd(i, &["CLUSTER", "MYID"]).await?;
        as_text(&f).ok_or_else(|| LabError::Step {
            step: "CLUSTER MYID".into(),
            detail: "not a string".into(),
        })
    }

    async fn all_know_each_other(&self) -> Result<bool, String> {
        let n = self.spec.ips.len();
        for i in 0..n {
            let mut c = self.admin(i).await.map_err(|e| e.to_string())?;
            let text = as_text(
                &c.cmd_str(&["CLUSTER", "NODES"])
                    .await
                    .map_err(|e| e.to_string())?,
            )
            .unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
            let pending = lines
                .iter()
                .filter(|l| l.contains("handshake") || l.contains("noaddr"))
                .count();
            if lines.len() != n || pending > 0 {
                return Err(format!(
                    "node {} knows {} of {n} nodes ({pending} still in handshake)",
                    i + 1,
                    lines.len()
                ));
            }
        }
        Ok(true)
    }

    async fn converged(&self) -> Result<bool, String> {
        for i in 0..self.spec.ips.len() {
            let mut c = self.admin(i).await.map_err(|e| e.to_string())?;
            let info = parse_info(
                &as_text(
                    &c.cmd_str(&["CLUSTER", "INFO"])
                        .await
                        .map_err(|e| e.to_string())?,
                )
                .unwrap_or_default(),
            );
            if info.get("cluster_state").map(String::as_str) != Some("ok") {
                return Err(format!(
                    "node {} reports cluster_state:{}",
                    i + 1,
                    info.get("cluster_state").map(String::as_str).unwrap_or("?")
                ));
            }
            let shards = c
                .cmd_str(&["CLUSTER", "SHARDS"])
                .await
                .map_err(|e| e.to_string())?;
            let shards = epic_audit::probes::cluster::parse_cluster_shards(&shards)?;
            if let Some(n) = shards
                .iter()
                .flat_map(|s| &s.nodes)
                .find(|n| n.health != "online")
            {
                return Err(format!(
                    "node {} sees {} with health {}",
                    i + 1,
                    n.ip,
                    n.health
                ));
            }
            if i >= 3 {
                let repl = parse_info(
                    &as_text(
                        &c.cmd_str(&["INFO", "replication"])
                            .await
                            .map_err(|e| e.to_string())?,
                    )
                    .unwrap_or_default(),
                );
                if repl.get("master_link_status").map(String::as_str) != Some("up") {
                    return Err(format!(
                        "replica node {} has master_link_status:{}",
                        i + 1,
                        repl.get("master_link_status")
                            .map(String::as_str)
                            .unwrap_or("?")
                    ));
                }
            }
        }
        Ok(true)
    }

    /// Writes the session hashes as app_user, each to the master of its slot.
    async fn seed_sessions(&self) -> Result<(), LabError> {
        let step = "writing session hashes as app_user".to_string();
        let err = |e: epic_audit::resp::ConnError| LabError::Step {
            step: step.clone(),
            detail: e.to_string(),
        };
        let mut per_master: Vec<Vec<Vec<Vec<u8>>>> = vec![Vec::new(); 3];
        let now = chrono::Utc::now().timestamp();
        for k in 0..self.spec.sessions {
            let key = format!("session:{}", random_hex(16));
            let slot = epic_audit::evidence::key_slot(key.as_bytes());
            let m = MASTER_SLOTS
                .iter()
                .position(|(a, b)| (*a..=*b).contains(&slot))
                .unwrap_or(0);
            let portal = ["mychart", "clinician", "kiosk"][k % 3];
            let w = |s: &str| s.as_bytes().to_vec();
            per_master[m].push(vec![
                w("HSET"),
                w(&key),
                w("user_id"),
                w(&format!("u{:05}", k)),
                w("portal"),
                w(portal),
                w("last_activity"),
                w(&(now - (k as i64 % 900)).to_string()),
            ]);
            per_master[m].push(vec![w("EXPIRE"), w(&key), w("1800")]);
        }
        for (m, cmds) in per_master.iter().enumerate() {
            if cmds.is_empty() {
                continue;
            }
            let mut c = self.conn(m, "app_user").await.map_err(err)?;
            for r in c.pipeline(cmds).await.map_err(err)? {
                if let Frame::ServerError(e) = r {
                    return Err(LabError::Step {
                        step: step.clone(),
                        detail: format!("node {}: {}", m + 1, error_text(&e)),
                    });
                }
            }
        }
        Ok(())
    }

    /// Kills node `i` (SIGKILL) to simulate a dead node.
    pub fn kill_node(&self, i: usize) {
        let n = &self.state.nodes[i];
        if !gone(n.pid) {
            // SAFETY: signal to a pid verified to be our redis-server.
            unsafe { libc::kill(n.pid as libc::pid_t, libc::SIGKILL) };
        }
        reap([n.pid]);
    }

    /// Stops every node and removes the state directory.
    pub fn stop(&mut self) {
        stop_services(&self.state.exporters, true);
        stop_services(self.state.emulator.as_slice(), true);
        stop_nodes(&self.state.nodes, true);
        let _ = std::fs::remove_dir_all(&self.spec.dir);
        self.stop_on_drop = false;
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
    use super::*;

    #[test]
    fn acl_file_never_contains_clear_passwords() {
        let pw: BTreeMap<String, Secret> = USERS
            .iter()
            .map(|u| (u.to_string(), Secret::new(format!("pw-of-{u}"))))
            .collect();
        let acl = acl_file(&pw);
        assert!(!acl.contains("pw-of-"));
        assert!(acl.contains("user default off resetpass"));
        assert!(acl.contains("~session:*"));
    }

    #[test]
    fn free_port_is_outside_the_ephemeral_range() {
        let p = pick_free_port(&default_ips());
        assert!((12000..22000).contains(&p));
    }
}
