//! The compose lab: the seed topology as containers on a private Docker
//! Compose network, each node at its own address (`lab/compose/`).
//!
//! `Lab::up` with [`LabSpec::compose`] writes the same files as the process
//! lab (PKI, ACL, node configs, passwords, signing key) into the state
//! directory, with node certificates issued for the containers' addresses
//! and paths as the containers mount them; writes the compose file and
//! Dockerfiles (compiled into this binary) beside them; builds the images
//! (once per machine; later builds hit the cache); starts the project; and
//! then forms, checks and seeds the cluster over TLS from this host exactly
//! as for the process lab. `down` runs `docker compose down` on the project
//! recorded in `lab.json`.
//!
//! Every docker command runs with a deadline and its output is kept for the
//! error message. Nothing here contacts a registry: the Dockerfiles start
//! FROM `debian:bookworm-slim`, which `scripts/docker-base.sh` builds from
//! Debian's archive where it cannot be pulled.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::files::issue_node_certs;
use crate::{io, Lab, LabError};

/// The files of `lab/compose/`, written into `<state>/compose/`.
const FILES: &[(&str, &str)] = &[
    ("compose.yaml", include_str!("../compose/compose.yaml")),
    (
        "redis.Dockerfile",
        include_str!("../compose/redis.Dockerfile"),
    ),
    (
        "exporter.Dockerfile",
        include_str!("../compose/exporter.Dockerfile"),
    ),
    (
        "monitoring.Dockerfile",
        include_str!("../compose/monitoring.Dockerfile"),
    ),
    (
        "emulator.Dockerfile",
        include_str!("../compose/emulator.Dockerfile"),
    ),
    (
        "trixie.Dockerfile",
        include_str!("../compose/trixie.Dockerfile"),
    ),
];

/// The image `trixie.Dockerfile` starts FROM: the Debian 13 root of
/// scripts/server-builds.sh, imported (`docker import`) once per machine.
pub const TRIXIE_ROOT_IMAGE: &str = "epic-audit-lab/trixie-root:latest";

/// The base image every Dockerfile starts FROM.
pub const BASE_IMAGE: &str = "debian:bookworm-slim";

/// The TLS port of every node (each container has its own address).
pub const NODE_PORT: u16 = 6379;

/// Where each node's exporter listens, on the node's address.
pub const EXPORTER_PORT: u16 = 9121;

/// How to run a compose lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeSpec {
    /// Compose project name: prefixes the containers and the network.
    pub project: String,
    /// The network's first three octets: nodes are `.11`-`.16`, the
    /// emulator `.5`, the /24 is the network's subnet.
    pub subnet: [u8; 3],
    /// The emulator's port, published on 127.0.0.1.
    pub emulator_port: u16,
}

impl ComposeSpec {
    /// The compose lab of `epic-audit-lab up --compose` (what the shipped
    /// `compose` environment of epic-audit.toml points at): project
    /// `epic-audit-lab` on 172.28.57.0/24, the emulator on 127.0.0.1:7379.
    pub fn standard() -> ComposeSpec {
        ComposeSpec {
            project: "epic-audit-lab".into(),
            subnet: [172, 28, 57],
            emulator_port: 6379 + crate::aws::EMULATOR_OFFSET,
        }
    }

    /// Address of node `i` (0-based; masters first).
    pub fn node_ip(&self, i: usize) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 11 + i as u8)
    }

    /// The monitoring instance's Prometheus (`.6`).
    pub fn monitoring_ip(&self) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 6)
    }

    /// The Alertmanager (`.7`).
    pub fn alertmanager_ip(&self) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 7)
    }

    /// `a.b.c` as the compose file's `LAB_SUBNET`.
    pub fn subnet_prefix(&self) -> String {
        let [a, b, c] = self.subnet;
        format!("{a}.{b}.{c}")
    }
}

fn default_exporter() -> String {
    crate::USERS[4].to_string()
}

/// What `lab.json` records of a compose lab, for `down` and `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComposeState {
    /// The project name.
    pub project: String,
    /// The compose file in the state directory.
    pub file: PathBuf,
    /// `LAB_SUBNET`.
    pub subnet: String,
    /// `LAB_EMULATOR_PORT`.
    pub emulator_port: u16,
    /// `LAB_ADMIN` (recorded by labs before the exporters had their own user).
    #[serde(default)]
    pub admin: String,
    /// `LAB_EXPORTER`: the user the exporters log in as.
    #[serde(default = "default_exporter")]
    pub exporter: String,
    /// The nodes' server build: `LAB_NODE_IMAGE`, `LAB_NODE_DOCKERFILE`
    /// and `LAB_SERVER` (absent: bookworm's redis-server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ComposeServer>,
}

/// A compose lab's nodes on another server build (see
/// `lab/compose/trixie.Dockerfile`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComposeServer {
    /// `LAB_NODE_IMAGE`, e.g. `epic-audit-lab/trixie-valkey-server`.
    pub image: String,
    /// `LAB_NODE_DOCKERFILE`.
    pub dockerfile: String,
    /// `LAB_SERVER`: the binary the node runs.
    pub binary: String,
}

impl ComposeServer {
    /// The nodes of `build`: `None` for the default (bookworm's
    /// redis-server), else the trixie image running `binary` (its base
    /// imported from the root by [`build_images`]).
    fn of(build: &crate::ServerBuild) -> Option<ComposeServer> {
        let crate::ServerBuild::Root { binary, .. } = build else {
            return None;
        };
        Some(ComposeServer {
            image: format!("epic-audit-lab/trixie-{binary}:latest"),
            dockerfile: "trixie.Dockerfile".into(),
            binary: binary.clone(),
        })
    }
}

/// `docker import`s `root` as [`TRIXIE_ROOT_IMAGE`] unless it exists
/// (`docker rmi` it after `scripts/server-builds.sh --force`). Called
/// under the image lock, so parallel tests import it once.
fn import_root(root: &Path) -> Result<(), LabError> {
    let present = Command::new("docker")
        .args(["image", "inspect", TRIXIE_ROOT_IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(r#"tar -C "$1" --exclude=./proc/* --exclude=./sys/* --exclude=./dev/* -c . | docker import - "$2""#)
        .arg("import-root")
        .arg(root)
        .arg(TRIXIE_ROOT_IMAGE);
    run_with_deadline(
        c,
        &format!("importing {} as {TRIXIE_ROOT_IMAGE}", root.display()),
        Duration::from_secs(600),
    )
    .map(|_| ())
}

/// The machine-wide lock of image builds and imports (released on drop).
fn image_lock() -> Result<std::fs::File, LabError> {
    let lock_path = std::env::temp_dir().join("epic-audit-lab-images.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; released when it closes.
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    Ok(lock)
}

impl ComposeState {
    fn command(&self, dir: &Path) -> Command {
        let mut c = compose_command();
        c.arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(&self.file)
            .env("LAB_DIR", dir)
            .env("LAB_SUBNET", &self.subnet)
            .env("LAB_EMULATOR_PORT", self.emulator_port.to_string())
            .env("LAB_EXPORTER", &self.exporter)
            .envs(self.server.iter().flat_map(|s| {
                [
                    ("LAB_NODE_IMAGE", s.image.clone()),
                    ("LAB_NODE_DOCKERFILE", s.dockerfile.clone()),
                    ("LAB_SERVER", s.binary.clone()),
                ]
            }))
            // SAFETY: getuid/getgid cannot fail.
            .env("LAB_UID", unsafe { libc::getuid() }.to_string())
            .env("LAB_GID", unsafe { libc::getgid() }.to_string());
        c
    }

    /// Runs `docker compose <args>` on this project within `limit`.
    pub fn run(&self, dir: &Path, args: &[&str], limit: Duration) -> Result<String, LabError> {
        let mut c = self.command(dir);
        c.args(args);
        run_with_deadline(c, &format!("docker compose {}", args.join(" ")), limit)
    }

    /// The container id of `service`.
    pub fn container(&self, dir: &Path, service: &str) -> Result<String, LabError> {
        let out = self.run(dir, &["ps", "-q", service], Duration::from_secs(30))?;
        out.lines()
            .next()
            .map(str::to_string)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| LabError::Step {
                step: format!("finding the container of {service}"),
                detail: format!("project {} has none", self.project),
            })
    }

    /// The project's network (`<project>_lab`).
    pub fn network(&self) -> String {
        format!("{}_lab", self.project)
    }
}

/// `docker compose` where the plugin is installed, else `docker-compose`.
fn compose_command() -> Command {
    static PLUGIN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let plugin = *PLUGIN.get_or_init(|| {
        Command::new("docker")
            .args(["compose", "version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if plugin {
        let mut c = Command::new("docker");
        c.arg("compose");
        c
    } else {
        Command::new("docker-compose")
    }
}

/// Runs `cmd`, killing it after `limit`; stdout on success, else an error
/// with the tail of its output.
pub(crate) fn run_with_deadline(
    mut cmd: Command,
    what: &str,
    limit: Duration,
) -> Result<String, LabError> {
    let step = what.to_string();
    let out_file = tempfile::tempfile().map_err(|e| LabError::Step {
        step: step.clone(),
        detail: e.to_string(),
    })?;
    let err_file = tempfile::tempfile().map_err(|e| LabError::Step {
        step: step.clone(),
        detail: e.to_string(),
    })?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out_file.try_clone().expect("dup"))
        .stderr(err_file.try_clone().expect("dup"))
        .spawn()
        .map_err(|e| LabError::Step {
            step: step.clone(),
            detail: format!("cannot run it ({e}): is Docker with Compose installed?"),
        })?;
    let t0 = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if t0.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => break None,
        }
    };
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut s = String::new();
        let _ = f.seek(std::io::SeekFrom::Start(0));
        let _ = f.read_to_string(&mut s);
        s
    };
    let (out, err) = (read(out_file), read(err_file));
    match status {
        Some(s) if s.success() => Ok(out),
        Some(s) => Err(LabError::Step {
            step,
            detail: format!("exit {}: {}", s.code().unwrap_or(-1), tail(&err, 12)),
        }),
        None => Err(LabError::Step {
            step,
            detail: format!(
                "did not finish within {} s (stopped): {}",
                limit.as_secs(),
                tail(&err, 12)
            ),
        }),
    }
}

fn tail(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

/// Builds the lab's images (cached after the first build), one build at a
/// time on this machine (concurrent tests share the images); for another
/// server build, first imports its root (`root`).
fn build_images(state: &ComposeState, dir: &Path, root: Option<&Path>) -> Result<(), LabError> {
    let base = Command::new("docker")
        .args(["image", "inspect", BASE_IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !base.is_ok_and(|s| s.success()) {
        return Err(LabError::Step {
            step: "building the compose lab's images".into(),
            detail: format!(
                "the base image {BASE_IMAGE} is missing: `docker pull {BASE_IMAGE}`, or where \
                 nothing can be pulled, build it from Debian's archive with \
                 `bash scripts/docker-base.sh` (debootstrap, as root)"
            ),
        });
    }
    let lock = image_lock()?;
    if let Some(root) = root {
        import_root(root)?;
    }
    let r = state
        .run(dir, &["build", "-q"], Duration::from_secs(900))
        .map(|_| ());
    drop(lock);
    r
}

impl Lab {
    /// Writes the compose lab's files and starts its containers; the
    /// caller forms the cluster. `lab.json` is written before anything
    /// starts, so `down` finds the project even if a later step fails.
    pub(crate) async fn compose_up(&mut self, acl: &str) -> Result<(), LabError> {
        let spec = self.spec.compose.clone().expect("a compose spec");
        let dir = self.spec.dir.clone();
        let pki = dir.join("pki");
        let sans: Vec<String> = self.spec.ips.iter().map(|ip| format!("IP:{ip}")).collect();
        issue_node_certs(&pki, &sans, 1)?;
        let server = ComposeServer::of(&self.spec.server);
        let root = match &self.spec.server {
            crate::ServerBuild::Root { root, .. } => Some(root.clone()),
            crate::ServerBuild::Path => None,
        };
        let files = dir.join("compose");
        std::fs::create_dir_all(&files).map_err(io(&files))?;
        for (name, text) in FILES {
            let p = files.join(name);
            std::fs::write(&p, text).map_err(io(&p))?;
        }
        let am = format!("{}:9093", spec.alertmanager_ip());
        self.write_monitoring_files(&crate::MonitoringConfig::good(), "/lab/monitoring", &am)?;
        for d in ["prom-data", "am-data"] {
            let p = dir.join("monitoring").join(d);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        for i in 0..self.spec.ips.len() {
            let conf =
                self.write_node_files(i, acl, Path::new("/lab/node"), Path::new("/lab/pki"))?;
            let node = self.lab_node(i, 0, conf);
            self.state.nodes.push(node);
        }
        let state = ComposeState {
            project: spec.project.clone(),
            file: files.join("compose.yaml"),
            subnet: spec.subnet_prefix(),
            emulator_port: spec.emulator_port,
            admin: self.spec.names.admin.clone(),
            exporter: self.spec.names.exporter.clone(),
            server,
        };
        self.state.compose = Some(state.clone());
        self.write_state()?;
        let d = dir.clone();
        tokio::task::spawn_blocking(move || {
            build_images(&state, &d, root.as_deref())?;
            state.run(&d, &["up", "-d", "--no-build"], Duration::from_secs(180))
        })
        .await
        .map_err(|e| LabError::Step {
            step: "docker compose up".into(),
            detail: e.to_string(),
        })??;
        Ok(())
    }

    pub(crate) fn compose_state(&self) -> &ComposeState {
        self.state
            .compose
            .as_ref()
            .expect("a compose lab (LabSpec::compose)")
    }

    /// Runs `docker compose <verb> <service>` on this compose lab (`pause`,
    /// `unpause`, `kill`, `stop`, `start`): fault injection for tests.
    pub fn compose_service(&self, verb: &str, service: &str) -> Result<(), LabError> {
        self.compose_state()
            .run(&self.spec.dir, &[verb, service], Duration::from_secs(60))
            .map(|_| ())
    }

    /// Cuts `service` off the lab network (`connect = false`) or puts it
    /// back at its address (`true`): a partition, for tests.
    pub fn compose_network(&self, service: &str, connect: bool) -> Result<(), LabError> {
        let st = self.compose_state();
        let id = st.container(&self.spec.dir, service)?;
        let mut c = Command::new("docker");
        c.arg("network");
        if connect {
            let i: usize =
                service
                    .trim_start_matches("node")
                    .parse()
                    .map_err(|_| LabError::Step {
                        step: format!("reconnecting {service}"),
                        detail: "only nodes (node1-node6) are reconnected".into(),
                    })?;
            c.args(["connect", "--ip", &self.spec.ips[i - 1].to_string()]);
        } else {
            c.arg("disconnect");
        }
        c.arg(st.network()).arg(&id);
        run_with_deadline(
            c,
            &format!(
                "docker network {} {service}",
                if connect { "connect" } else { "disconnect" }
            ),
            Duration::from_secs(30),
        )
        .map(|_| ())
    }
}

/// `docker compose down` for the project recorded in `dir`'s `lab.json`.
pub(crate) fn down(state: &ComposeState, dir: &Path) -> Result<(), LabError> {
    state
        .run(
            dir,
            &["down", "-v", "--remove-orphans", "-t", "2"],
            Duration::from_secs(120),
        )
        .map(|_| ())
}

/// True when the project has running containers.
pub(crate) fn is_running(state: &ComposeState, dir: &Path) -> bool {
    state
        .run(dir, &["ps", "-q"], Duration::from_secs(30))
        .is_ok_and(|o| !o.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compose_file_puts_each_node_where_the_spec_says() {
        let spec = ComposeSpec::standard();
        let yaml = FILES[0].1;
        assert!(yaml.contains(&format!("LAB_SUBNET:-{}}}.0/24", spec.subnet_prefix())));
        for i in 0..6 {
            let ip = spec.node_ip(i).to_string();
            let last = ip.rsplit('.').next().unwrap();
            let node = format!(
                "  node{n}:\n    <<: *node\n    volumes:\n      - \"${{LAB_DIR:?set by epic-audit-lab}}/node{n}:/lab/node\"",
                n = i + 1
            );
            assert!(yaml.contains(&node), "node{} in\n{yaml}", i + 1);
            assert!(
                yaml.contains(&format!(
                    "ipv4_address: \"${{LAB_SUBNET:-172.28.57}}.{last}\""
                )),
                "{ip}"
            );
            assert!(
                yaml.contains(&format!("network_mode: \"service:node{}\"", i + 1)),
                "exporter{} shares node{}'s address",
                i + 1,
                i + 1
            );
        }
        assert!(yaml.contains(r#"dockerfile: "${LAB_NODE_DOCKERFILE:-redis.Dockerfile}""#));
        for (name, _) in &FILES[2..5] {
            assert!(yaml.contains(&format!("dockerfile: {name}")), "{name}");
        }
        assert_eq!(FILES[5].0, "trixie.Dockerfile");
        assert!(FILES[5].1.contains(&format!("FROM {TRIXIE_ROOT_IMAGE}")));
        // The monitoring instance and its Alertmanager at .6 and .7.
        for last in [6, 7] {
            assert!(yaml.contains(&format!(
                "ipv4_address: \"${{LAB_SUBNET:-172.28.57}}.{last}\""
            )));
        }
    }
}
