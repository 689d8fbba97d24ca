//! The lab's helper services: one Prometheus exporter per node and the
//! EC2/KMS emulator.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{die_with_parent, gone, reap, EXPORTER};
use crate::{aws, io, Lab, LabError, LabService, EXPORTER_OFFSET};

impl Lab {
    /// Starts `moto_server` on 127.0.0.1 (port + [`aws::EMULATOR_OFFSET`])
    /// and waits until it answers.
    pub(crate) async fn start_emulator(&mut self, moto: &Path) -> Result<(), LabError> {
        let dir = self.spec.dir.join("aws");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let port = self.emulator_port();
        let args = [
            "-H".to_string(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ];
        let pid = self.spawn_logged(moto, &args, &dir, "moto.log")?;
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

    /// Spawns `bin args` in `dir`, in a process group of its own (dying
    /// with the test that started the lab, when it should), its output to
    /// `dir/log`; returns its pid (tracked in lab.json, reaped on stop).
    pub(crate) fn spawn_logged(
        &self,
        bin: &Path,
        args: &[String],
        dir: &Path,
        log: &str,
    ) -> Result<u32, LabError> {
        let logf = std::fs::File::create(dir.join(log)).map_err(io(dir))?;
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().map_err(io(dir))?)
            .stderr(logf)
            .process_group(0);
        if self.spec.die_with_parent {
            die_with_parent(&mut cmd);
        }
        Ok(cmd.spawn().map_err(io(bin))?.id())
    }

    /// Port of the lab's EC2/KMS emulator on 127.0.0.1.
    pub fn emulator_port(&self) -> u16 {
        match &self.spec.compose {
            Some(c) => c.emulator_port,
            None => self.spec.port + aws::EMULATOR_OFFSET,
        }
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
        if self.state.compose.is_some() {
            let _ = self.compose_service("kill", "emulator");
            return;
        }
        if let Some(e) = &self.state.emulator {
            if !gone(e.pid) {
                // SAFETY: our own child.
                unsafe { libc::kill(e.pid as libc::pid_t, libc::SIGKILL) };
            }
            reap([e.pid]);
        }
    }

    /// Starts one prometheus-redis-exporter per node (TLS with the client
    /// certificate, as the lab's least-privilege exporter user; the
    /// password goes through the environment, never the command line) and
    /// waits until each answers.
    pub(crate) async fn start_exporters(&mut self, pki: &Path) -> Result<(), LabError> {
        let user = self.spec.names.exporter.clone();
        for i in 0..self.spec.ips.len() {
            let svc = self.spawn_exporter(i, pki, &user, &[])?;
            self.state.exporters.push(svc);
        }
        self.write_state()?;
        let listens: Vec<String> = self
            .state
            .exporters
            .iter()
            .map(|e| e.listen.clone())
            .collect();
        let pids: Vec<u32> = self.state.exporters.iter().map(|e| e.pid).collect();
        self.wait_exporters(&listens, &pids).await
    }

    /// Spawns node `i`'s exporter logging in as `user`, with `extra` flags.
    pub(crate) fn spawn_exporter(
        &self,
        i: usize,
        pki: &Path,
        user: &str,
        extra: &[String],
    ) -> Result<LabService, LabError> {
        let bin = [
            "/usr/bin/prometheus-redis-exporter",
            "/usr/local/bin/prometheus-redis-exporter",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or(LabError::NoExporter)?;
        let dir = self.node_dir(i);
        let listen = format!("{}:{}", self.spec.ips[i], self.spec.port + EXPORTER_OFFSET);
        let log = std::fs::File::create(dir.join("exporter.log")).map_err(io(&dir))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("-redis.addr")
            .arg(format!("rediss://{}", self.spec.client_addr(i)))
            .args(["-redis.user", user])
            .arg("-tls-ca-cert-file")
            .arg(pki.join("ca.crt"))
            .arg("-tls-client-cert-file")
            .arg(pki.join("client.crt"))
            .arg("-tls-client-key-file")
            .arg(pki.join("client.key"))
            .args(["-web.listen-address", &listen])
            .args(
                // A disabled CONFIG has no name to give the exporter: it
                // keeps its default and reports what it cannot read.
                self.spec
                    .config_command
                    .iter()
                    .filter(|c| !c.is_empty())
                    .flat_map(|c| ["-config-command".to_string(), c.clone()]),
            )
            .args(extra)
            .env("REDIS_PASSWORD", self.passwords[user].expose())
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0);
        if self.spec.die_with_parent {
            die_with_parent(&mut cmd);
        }
        let child = cmd.spawn().map_err(io(&bin))?;
        Ok(LabService {
            listen,
            pid: child.id(),
            dir,
            comm: EXPORTER.into(),
        })
    }

    /// Waits until the exporter at each of `listens` answers with
    /// `redis_up 1` (giving up early when its process, `pids[i]`, exits).
    pub(crate) async fn wait_exporters(
        &self,
        listens: &[String],
        pids: &[u32],
    ) -> Result<(), LabError> {
        let t0 = Instant::now();
        for (i, listen) in listens.iter().enumerate() {
            loop {
                let v = epic_audit::probes::monitoring::scrape(
                    listen,
                    Duration::from_secs(1),
                    Duration::from_secs(2),
                )
                .await;
                if v.reachable && v.metrics.get("redis_up") == Some(&1.0) {
                    break;
                }
                let exited = pids.get(i).is_some_and(|p| gone(*p));
                if t0.elapsed() > Duration::from_secs(30) || exited {
                    return Err(LabError::Step {
                        step: format!("exporter {listen}"),
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
}
