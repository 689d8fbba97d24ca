//! The lab's processes: what `lab.json` records, recognising a pid as
//! ours before signalling it, stopping and reaping by pid only.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::files::write_private;
use crate::{io, Lab, LabError};

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
    /// Prometheus and Alertmanager, when the lab runs them as processes.
    #[serde(default)]
    pub monitoring: Vec<LabService>,
    /// The EC2/KMS emulator, when the lab has one.
    #[serde(default)]
    pub emulator: Option<LabService>,
    /// The Docker Compose project of a compose lab (its nodes have pid 0).
    #[serde(default)]
    pub compose: Option<crate::ComposeState>,
    /// The zone of a hostname lab whose names are in /etc/hosts (removed
    /// on `down`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts_zone: Option<String>,
}

/// A helper process of the lab: an exporter, Prometheus, Alertmanager or
/// the AWS emulator.
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
    /// Process id of its redis-server (0 in a compose lab, whose nodes
    /// are containers).
    pub pid: u32,
    /// Its config file (used to recognise the process).
    pub conf: PathBuf,
    /// Its command name in /proc (to recognise it before signalling).
    #[serde(default = "redis_comm")]
    pub comm: String,
}

fn find_redis_server() -> Result<PathBuf, LabError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .ok_or(LabError::NoRedis)
}

/// How to start a node's server: the program, the arguments before the
/// config file, and the command name its process shows in /proc.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerCommand {
    pub program: PathBuf,
    pub args: Vec<std::ffi::OsString>,
    pub comm: String,
}

impl ServerCommand {
    /// The command of `build`.
    pub(crate) fn of(build: &crate::ServerBuild) -> Result<ServerCommand, LabError> {
        match build {
            crate::ServerBuild::Path => Ok(ServerCommand {
                program: find_redis_server()?,
                args: Vec::new(),
                comm: REDIS_COMM.into(),
            }),
            crate::ServerBuild::Root { root, binary } => {
                // The root's loader runs the binary (its /proc comm is the
                // loader's name) with the root's libraries.
                let loader = root.join("usr/lib64/ld-linux-x86-64.so.2");
                Ok(ServerCommand {
                    comm: loader
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default(),
                    program: loader,
                    args: vec![
                        "--library-path".into(),
                        root.join("usr/lib/x86_64-linux-gnu").into(),
                        root.join("usr/bin").join(binary).into(),
                    ],
                })
            }
        }
    }
}

/// The /proc command name of Debian's redis-server.
const REDIS_COMM: &str = "redis-server";

fn redis_comm() -> String {
    REDIS_COMM.to_string()
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
fn is_our_process(n: &LabNode) -> bool {
    n.conf
        .parent()
        .is_some_and(|dir| runs_in(n.pid, &n.comm, dir))
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

pub(crate) const EXPORTER: &str = "prometheus-redis-exporter";

/// Stops lab helper processes (only processes that are still ours).
pub(crate) fn stop_services(exporters: &[LabService], own_children: bool) {
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
pub(crate) fn stop_nodes(nodes: &[LabNode], own_children: bool) -> Vec<u32> {
    let ours: Vec<&LabNode> = nodes
        .iter()
        .filter(|n| {
            if own_children {
                !gone(n.pid)
            } else {
                is_our_process(n)
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
pub(crate) fn die_with_parent(cmd: &mut Command) {
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
pub(crate) fn gone(pid: u32) -> bool {
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
pub(crate) fn reap(pids: impl IntoIterator<Item = u32>) {
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
        if let Some(c) = &s.compose {
            return crate::compose::is_running(c, dir);
        }
        !s.nodes.is_empty() && s.nodes.iter().all(is_our_process)
    })
}

/// Stops the lab in `dir` by its recorded pids and removes the directory.
/// Returns the pids stopped. A directory without `lab.json` is left alone.
pub fn down(dir: &Path) -> Result<Vec<u32>, LabError> {
    let Some(state) = read_state(dir) else {
        return Ok(Vec::new());
    };
    if let Some(c) = &state.compose {
        crate::compose::down(c, dir)?;
    }
    stop_services(&state.monitoring, false);
    stop_services(&state.exporters, false);
    stop_services(state.emulator.as_slice(), false);
    let stopped = stop_nodes(&state.nodes, false);
    if let Some(zone) = &state.hosts_zone {
        crate::hosts::remove(zone)?;
    }
    std::fs::remove_dir_all(dir).map_err(io(dir))?;
    Ok(stopped)
}

impl Lab {
    pub(crate) fn write_state(&self) -> Result<(), LabError> {
        let p = self.spec.dir.join("lab.json");
        let text = serde_json::to_string_pretty(&self.state).expect("state serialises");
        write_private(&p, text.as_bytes())
    }
}
