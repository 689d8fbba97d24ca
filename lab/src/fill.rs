//! A lab filled as a busy session store is: up to millions of session
//! hashes written as the seed architecture's session manager writes them
//! (HSET of three fields, then EXPIRE 1800), each to the master of its
//! slot, in pipelined batches. Lab-only: nothing in the audit writes them.
//!
//! Keys are `<namespace><12-digit number>` (`session:000000000042`), so
//! that a workload can address them by number (redis-benchmark's
//! `__rand_int__` gives exactly 12 digits).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use epic_audit::config::NodeAddr;
use epic_audit::secret::Secret;

use crate::master_slots;

/// Session hashes to write.
#[derive(Debug, Clone)]
pub struct Fill {
    /// The key prefix (the lab's namespace, e.g. `session:`).
    pub namespace: String,
    /// The first key's number.
    pub first: u64,
    /// How many keys.
    pub count: u64,
    /// The TTL each gets (EXPIRE), or none: a session that never logs off.
    pub ttl_s: Option<u64>,
    /// Give each master's keys one hash tag of its slots instead:
    /// `<namespace>{<tag>}:<12 digits>`, `count / masters` keys per master
    /// numbered from `first`, so that a workload aimed at one master
    /// (redis-benchmark `-r`) finds every key it asks for there.
    pub tagged: bool,
}

/// The hash tag that puts a key on master `m` of `masters` (the first
/// `t<m>-<i>` whose slot that master serves).
pub fn master_tag(m: usize, masters: usize) -> String {
    let (lo, hi) = master_slots(masters)[m];
    (0u32..)
        .map(|i| format!("t{}-{i}", m + 1))
        .find(|t| {
            (lo..=hi).contains(&epic_audit::evidence::key_slot(
                format!("{{{t}}}").as_bytes(),
            ))
        })
        .unwrap_or_default()
}

/// The name of key number `n`.
pub fn session_key(namespace: &str, n: u64) -> String {
    format!("{namespace}{n:012}")
}

/// Where and as whom the keys are written.
pub struct Access<'a> {
    /// The lab's PKI directory (ca.crt, client.crt, client.key).
    pub pki: &'a Path,
    /// The ACL user (the application's).
    pub user: &'a str,
    /// Its password, handed to redis-cli through REDISCLI_AUTH (never on
    /// its command line, where `ps` would show it).
    pub password: &'a Secret,
}

/// Writes `fill` to `masters` (client addresses in the lab's slot order:
/// master `i` serves `master_slots(masters.len())[i]`), every master
/// concurrently, each through `redis-cli --pipe` over TLS: the protocol is
/// generated here and streamed to it, so that millions of keys take
/// seconds. Returns the keys written.
pub async fn write(masters: &[NodeAddr], access: &Access<'_>, fill: &Fill) -> Result<u64, String> {
    let slots = master_slots(masters.len());
    let mut tasks = Vec::new();
    for (m, addr) in masters.iter().enumerate() {
        let mut cmd = Command::new("redis-cli");
        cmd.arg("--tls")
            .arg("--cacert")
            .arg(access.pki.join("ca.crt"))
            .arg("--cert")
            .arg(access.pki.join("client.crt"))
            .arg("--key")
            .arg(access.pki.join("client.key"))
            .args(["-h", &addr.host, "-p", &addr.port.to_string()])
            .args(["--user", access.user, "--no-auth-warning", "--pipe"])
            .args(["--pipe-timeout", "60"])
            .env("REDISCLI_AUTH", access.password.expose())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let fill = fill.clone();
        let range = slots[m];
        let masters = masters.len();
        tasks.push(tokio::task::spawn_blocking(move || {
            pipe_one(cmd, &fill, m, masters, range)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.map_err(|e| format!("fill task: {e}"))??;
    }
    Ok(total)
}

/// Streams master `m`'s keys of `fill` into one `redis-cli --pipe` and
/// checks its summary (`errors: 0, replies: N`).
fn pipe_one(
    mut cmd: Command,
    fill: &Fill,
    m: usize,
    masters: usize,
    (lo, hi): (u16, u16),
) -> Result<u64, String> {
    let who = format!("master {}", m + 1);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{who}: cannot run redis-cli (apt install redis-tools): {e}"))?;
    let mut stdin = std::io::BufWriter::with_capacity(
        1 << 20,
        child.stdin.take().ok_or("redis-cli has no stdin")?,
    );
    let tag = fill.tagged.then(|| master_tag(m, masters));
    let end = match tag {
        Some(_) => fill.first + fill.count.div_ceil(masters as u64),
        None => fill.first + fill.count,
    };
    let mut written = 0u64;
    let mut buf = Vec::with_capacity(256);
    for n in fill.first..end {
        let key = match &tag {
            Some(t) => session_key(&format!("{}{{{t}}}:", fill.namespace), n),
            None => session_key(&fill.namespace, n),
        };
        if !(lo..=hi).contains(&epic_audit::evidence::key_slot(key.as_bytes())) {
            continue;
        }
        buf.clear();
        commands(&mut buf, &key, n, fill.ttl_s);
        if let Err(e) = stdin.write_all(&buf) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{who}: writing to redis-cli: {e}"));
        }
        written += 1;
    }
    drop(stdin.into_inner().map_err(|e| format!("{who}: {e}"))?);
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{who}: redis-cli: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text
        .lines()
        .find(|l| l.starts_with("errors:"))
        .unwrap_or_default()
        .to_string();
    let errors = summary
        .strip_prefix("errors: ")
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.trim().parse::<u64>().ok());
    if !out.status.success() || errors != Some(0) {
        return Err(format!(
            "{who}: redis-cli --pipe: {} {}",
            summary,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(written)
}

/// Appends the RESP of one session write: HSET of three fields, then (with
/// a TTL) EXPIRE.
fn commands(out: &mut Vec<u8>, key: &str, n: u64, ttl: Option<u64>) {
    let portal = ["mychart", "clinician", "kiosk"][(n % 3) as usize];
    let user = format!("u{:07}", n % 10_000_000);
    resp(
        out,
        &[
            "HSET",
            key,
            "user_id",
            &user,
            "portal",
            portal,
            "last_activity",
            "1764979200",
        ],
    );
    if let Some(t) = ttl {
        resp(out, &["EXPIRE", key, &t.to_string()]);
    }
}

fn resp(out: &mut Vec<u8>, words: &[&str]) {
    out.extend_from_slice(format!("*{}\r\n", words.len()).as_bytes());
    for w in words {
        out.extend_from_slice(format!("${}\r\n", w.len()).as_bytes());
        out.extend_from_slice(w.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

impl crate::Lab {
    /// Writes `fill` as the application user, each key to the master of
    /// its slot (the lab's first `masters` nodes). Returns the keys
    /// written.
    pub async fn fill(&self, fill: &Fill) -> Result<u64, String> {
        let masters: Vec<NodeAddr> = (0..self.spec.masters)
            .map(|m| self.spec.client_addr(m))
            .collect();
        let app = &self.spec.names.app;
        let access = Access {
            pki: &self.spec.dir.join("pki"),
            user: app,
            password: self.password(app),
        };
        write(&masters, &access, fill).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_masters_tag_hashes_to_its_slots() {
        for m in 0..3 {
            let (lo, hi) = master_slots(3)[m];
            let key = format!("session:{{{}}}:000000000001", master_tag(m, 3));
            assert!((lo..=hi).contains(&epic_audit::evidence::key_slot(key.as_bytes())));
        }
    }

    #[test]
    fn keys_are_numbered_as_redis_benchmark_numbers_them() {
        assert_eq!(session_key("session:", 42), "session:000000000042");
        assert_eq!(session_key("s:", 999_999_999_999).len(), 14);
    }
}
