//! Forming the cluster: spawning the nodes, assigning slots, meeting,
//! replicating, waiting for convergence, and seeding the session hashes.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use epic_audit::resp::{as_text, error_text, parse_info};

use crate::files::{node_conf, random_hex, write_private};
use crate::process::{die_with_parent, gone, reap};
use crate::{aws, io, master_slots, Lab, LabError, LabNode};

impl Lab {
    pub(crate) async fn start_and_form(
        &mut self,
        redis: &crate::process::ServerCommand,
        pki: &Path,
        acl: &str,
        moto: Option<&Path>,
    ) -> Result<(), LabError> {
        let n = self.spec.ips.len();
        for i in 0..n {
            let dir = self.node_dir(i);
            let conf = self.write_node_files(i, acl, &dir, pki)?;
            let mut cmd = Command::new(&redis.program);
            cmd.args(&redis.args)
                .arg(&conf)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0);
            if self.spec.die_with_parent {
                die_with_parent(&mut cmd);
            }
            let child = cmd.spawn().map_err(io(&redis.program))?;
            let mut node = self.lab_node(i, child.id(), conf);
            node.comm = redis.comm.clone();
            self.state.nodes.push(node);
            // The Child handle is dropped without waiting: the process is
            // tracked by pid (lab.json) and reaped in `stop`.
        }
        self.write_state()?;
        self.form().await?;
        if self.spec.exporters {
            self.start_exporters(pki).await?;
            if self.spec.monitoring {
                self.start_monitoring().await?;
            }
        }
        if let Some(moto) = moto {
            self.start_emulator(moto).await?;
            self.reseed(aws::AwsDefect::None).await?;
        }
        Ok(())
    }

    /// Writes node `i`'s ACL file and redis.conf into its state directory;
    /// `dir` and `pki` are those paths as the node sees them (the same for
    /// a process, mount points for a container). Returns the config path.
    pub(crate) fn write_node_files(
        &self,
        i: usize,
        acl: &str,
        dir: &Path,
        pki: &Path,
    ) -> Result<std::path::PathBuf, LabError> {
        let host_dir = self.node_dir(i);
        std::fs::create_dir_all(&host_dir).map_err(io(&host_dir))?;
        write_private(&host_dir.join("users.acl"), acl.as_bytes())?;
        let conf = host_dir.join("redis.conf");
        let text = node_conf(
            &self.spec,
            i,
            dir,
            pki,
            &self.passwords[&self.spec.names.admin],
        );
        write_private(&conf, text.as_bytes())?;
        Ok(conf)
    }

    /// What lab.json records of node `i` (pid 0: a container).
    pub(crate) fn lab_node(&self, i: usize, pid: u32, conf: std::path::PathBuf) -> LabNode {
        LabNode {
            ip: self.spec.ips[i].to_string(),
            role: if i < self.spec.masters {
                "master".into()
            } else {
                "replica".into()
            },
            pid,
            conf,
            comm: String::new(),
        }
    }

    /// The compose lab's [`Lab::start_and_form`]: the containers instead of
    /// the processes, then the same forming and seeding over TLS.
    pub(crate) async fn compose_up_and_form(&mut self, acl: &str) -> Result<(), LabError> {
        self.compose_up(acl).await?;
        self.form().await?;
        if self.spec.exporters {
            let listens: Vec<String> = self
                .spec
                .ips
                .iter()
                .map(|ip| format!("{ip}:{}", crate::compose::EXPORTER_PORT))
                .collect();
            self.wait_exporters(&listens, &[]).await?;
            self.wait_monitoring(&crate::MonitoringConfig::good(), None)
                .await?;
        } else {
            for i in 1..=self.spec.ips.len() {
                self.compose_service("stop", &format!("exporter{i}"))?;
            }
        }
        if self.spec.aws {
            let port = self.emulator_port();
            aws::wait_ready(port, Duration::from_secs(60))
                .await
                .map_err(|detail| LabError::Step {
                    step: "starting the EC2/KMS emulator container".into(),
                    detail,
                })?;
            self.reseed(aws::AwsDefect::None).await?;
        } else {
            self.compose_service("stop", "emulator")?;
        }
        Ok(())
    }

    /// Waits for every node, assigns slots, meets, replicates, waits for
    /// convergence and writes the session hashes.
    async fn form(&mut self) -> Result<(), LabError> {
        let n = self.spec.ips.len();
        let ready = Duration::from_secs(20);
        for i in 0..n {
            self.wait_until(ready, &format!("node {} start", i + 1), |lab| {
                Box::pin(async move { lab.admin(i).await.map(|_| true).map_err(|e| e.to_string()) })
            })
            .await?;
        }
        // Masters take their slot ranges; node 1 meets everyone.
        for (i, (a, b)) in master_slots(self.spec.masters).iter().enumerate() {
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
        for r in self.spec.masters..n {
            let master = r - self.spec.masters;
            let id = self.node_id(master).await?;
            self.admin_cmd(r, &["CLUSTER", "REPLICATE", &id]).await?;
        }
        self.wait_until(form, "cluster state ok and replicas in sync", |lab| {
            Box::pin(lab.converged())
        })
        .await?;
        self.seed_sessions().await
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
                // A compose lab's nodes are containers (pid 0).
                if node.pid != 0 && gone(node.pid) {
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
    async fn admin_cmd(
        &self,
        i: usize,
        words: &[&str],
    ) -> Result<epic_audit::resp::Value, LabError> {
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
            if self.spec.wait_peer_health {
                let shards = c
                    .cmd_str(&["CLUSTER", "SHARDS"])
                    .await
                    .map_err(|e| e.to_string())?;
                let shards = epic_audit::probes::cluster::parse_cluster_shards(&shards)?;
                if let Some(n) = shards
                    .iter()
                    .flat_map(|s| &s.nodes)
                    .find(|n| n.health != epic_audit::evidence::ShardHealth::Online)
                {
                    return Err(format!(
                        "node {} sees {} with health {}",
                        i + 1,
                        n.ip,
                        n.health
                    ));
                }
            }
            if i >= self.spec.masters {
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

    /// Writes the session hashes as the application user, each to the
    /// master of its slot.
    async fn seed_sessions(&self) -> Result<(), LabError> {
        let names = &self.spec.names;
        let step = format!("writing session hashes as {}", names.app);
        let err = |e: epic_audit::resp::ConnError| LabError::Step {
            step: step.clone(),
            detail: e.to_string(),
        };
        let slots = master_slots(self.spec.masters);
        let mut per_master: Vec<Vec<Vec<Vec<u8>>>> = vec![Vec::new(); self.spec.masters];
        let now = chrono::Utc::now().timestamp();
        for k in 0..self.spec.sessions {
            let key = format!("{}{}", names.namespace, random_hex(16));
            let slot = epic_audit::evidence::key_slot(key.as_bytes());
            let m = slots
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
            let mut c = self.conn(m, &names.app).await.map_err(err)?;
            for r in c.pipeline(cmds).await.map_err(err)? {
                if let epic_audit::resp::Value::ServerError(e) = r {
                    return Err(LabError::Step {
                        step: step.clone(),
                        detail: format!("node {}: {}", m + 1, error_text(&e)),
                    });
                }
            }
        }
        Ok(())
    }
}
