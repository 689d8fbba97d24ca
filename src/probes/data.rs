//! Data protection and monitoring: persistence and hardening settings,
//! replication health, the session-key TTL scan, and exporter scrapes.
//!
//! Read-only: CONFIG GET, INFO, SCAN, TTL, TYPE, and an HTTP GET of each
//! exporter's /metrics. Session key names are bearer tokens: they never
//! enter the evidence; offending keys are recorded as a short keyed hash
//! (HMAC-SHA256 with this run's salt, which is kept outside the report).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::scaffold::{per_target, Probe, ProbeContext, ProbeFuture, Target};
use crate::config::NodeAddr;
use crate::evidence::{
    DataNodeView, DbKeys, Evidence, FailureKind, KeyspaceView, ModuleInfo, Observation,
    ProbeFailure, ProbeId, ReplicationRole, ScanCost, SessionScanSettings, SessionScanView,
};
use crate::resp::{as_text, describe, error_text, parse_info};

/// Settings read with CONFIG GET.
pub(crate) const CONFIG_KEYS: [&str; 15] = [
    "appendonly",
    "appendfsync",
    "maxmemory-policy",
    "protected-mode",
    "enable-debug-command",
    "enable-module-command",
    "cluster-require-full-coverage",
    "aclfile",
    "timeout",
    "maxclients",
    "tcp-keepalive",
    "acllog-max-len",
    "logfile",
    "syslog-enabled",
    "loglevel",
];

pub(crate) use super::scaffold::RunSalt;

fn words(ws: &[&str]) -> Vec<Vec<u8>> {
    ws.iter().map(|w| w.as_bytes().to_vec()).collect()
}

async fn observe_config(ctx: &ProbeContext, addr: &NodeAddr) -> Result<DataNodeView, ProbeFailure> {
    let get = super::config_get(&ctx.config_command, &CONFIG_KEYS);
    let r = ctx
        .conn(addr)
        .await?
        .pipeline(&[
            words(&get),
            words(&["INFO", "persistence"]),
            words(&["INFO", "replication"]),
            words(&["INFO", "modules"]),
        ])
        .await?;
    let mut config = BTreeMap::new();
    // A node whose CONFIG is renamed or refused still has its INFO read:
    // the checks that need a setting say why it is missing, the others
    // judge what INFO shows.
    let mut config_unread = None;
    match &r[0] {
        redis::Value::Array(items) => {
            for kv in items.chunks(2) {
                if let [k, v] = kv {
                    if let (Some(k), Some(v)) = (as_text(k), as_text(v)) {
                        config.insert(k, v);
                    }
                }
            }
        }
        other => {
            config_unread = Some(
                super::config_failure(
                    &addr.to_string(),
                    &ctx.config_command,
                    &describe(Some(other)),
                )
                .message,
            )
        }
    }
    let info = |i: usize, what: &str| -> Result<BTreeMap<String, String>, ProbeFailure> {
        as_text(&r[i])
            .map(|t| parse_info(&t))
            .ok_or_else(|| ProbeFailure {
                kind: FailureKind::UnexpectedReply,
                message: format!("{addr}: INFO {what} answered {}", describe(r.get(i))),
            })
    };
    let persistence = info(1, "persistence")?
        .into_iter()
        .filter(|(k, _)| k.starts_with("aof_") || k == "rdb_last_bgsave_status")
        .collect();
    let replication = info(2, "replication")?
        .into_iter()
        .filter(|(k, _)| {
            k == "role"
                || k == "connected_slaves"
                || k == "master_link_status"
                || k.starts_with("slave") && k[5..].chars().all(|c| c.is_ascii_digit())
        })
        .collect();
    let modules = as_text(&r[3])
        .map(|t| parse_modules(&t))
        .ok_or_else(|| ProbeFailure {
            kind: FailureKind::UnexpectedReply,
            message: format!("{addr}: INFO modules answered {}", describe(r.get(3))),
        })?;
    let from_info = if config_unread.is_some() {
        from_info(ctx, addr, &persistence, &mut config).await?
    } else {
        BTreeMap::new()
    };
    Ok(DataNodeView {
        config,
        persistence,
        replication,
        modules: Some(modules),
        config_unread,
        from_info,
    })
}

/// The settings INFO also reports, for a node whose CONFIG GET gave none:
/// (setting, INFO section, field, how the field's value maps to the
/// setting's).
const INFO_SETTINGS: [(&str, &str, &str); 3] = [
    ("appendonly", "persistence", "aof_enabled"),
    ("maxmemory-policy", "memory", "maxmemory_policy"),
    ("maxclients", "clients", "maxclients"),
];

/// Fills `config` with the settings INFO also reports (INFO persistence
/// is already in `persistence`; INFO memory and clients are read now) and
/// returns, per setting taken, where it came from.
async fn from_info(
    ctx: &ProbeContext,
    addr: &NodeAddr,
    persistence: &BTreeMap<String, String>,
    config: &mut BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ProbeFailure> {
    let r = ctx
        .conn(addr)
        .await?
        .pipeline(&[words(&["INFO", "memory"]), words(&["INFO", "clients"])])
        .await?;
    // The fields are distinct across the three sections: one map serves.
    let mut info = persistence.clone();
    for reply in &r {
        info.extend(as_text(reply).map(|t| parse_info(&t)).unwrap_or_default());
    }
    let mut sources = BTreeMap::new();
    for (setting, sec, field) in INFO_SETTINGS {
        let Some(raw) = info.get(field) else { continue };
        let value = match (setting, raw.as_str()) {
            ("appendonly", "1") => "yes".to_string(),
            ("appendonly", "0") => "no".to_string(),
            (_, v) => v.to_string(),
        };
        config.insert(setting.to_string(), value);
        sources.insert(setting.to_string(), format!("INFO {sec} {field}:{raw}"));
    }
    Ok(sources)
}

/// The value of `k` in an INFO line's comma-separated `k=v` fields
/// (`name=vectorset,ver=1`, `keys=10,expires=8`).
fn subfield<'a>(fields: &'a str, k: &str) -> Option<&'a str> {
    fields
        .split(',')
        .find_map(|f| f.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
}

/// The modules of INFO modules: `module:name=vectorset,ver=1,api=1,...`
/// lines (an empty section: none loaded).
pub(crate) fn parse_modules(text: &str) -> Vec<ModuleInfo> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("module:"))
        .map(|fields| {
            let field = |k: &str| subfield(fields, k).unwrap_or_default().to_string();
            ModuleInfo {
                name: field("name"),
                version: field("ver"),
            }
        })
        .collect()
}

/// CONFIG GET + INFO persistence/replication/modules on every node.
pub(crate) struct DataConfigProbe;

impl Probe for DataConfigProbe {
    fn name(&self) -> ProbeId {
        ProbeId::DataConfig
    }

    fn run(&self, ctx: Arc<ProbeContext>) -> ProbeFuture {
        Box::pin(async move {
            let method = format!(
                "{} GET {}; INFO persistence; INFO replication; INFO modules; as {}",
                ctx.config_command,
                CONFIG_KEYS.join(" "),
                ctx.user
            );
            let targets = ctx
                .targets
                .iter()
                .map(|a| Target::node(a.clone(), method.clone()))
                .collect();
            per_target(
                ProbeId::DataConfig,
                "data config probe",
                ctx.timeouts.probe(),
                targets,
                |addr| {
                    let ctx = ctx.clone();
                    async move { observe_config(&ctx, &addr).await.map(Observation::DataNode) }
                },
            )
            .await
        })
    }
}

async fn scan_sessions(
    ctx: &ProbeContext,
    addr: &NodeAddr,
    s: &SessionScanSettings,
) -> Result<SessionScanView, ProbeFailure> {
    let salt = &ctx.session_salt;
    let started = tokio::time::Instant::now();
    let (before, role) = read_keyspace(ctx, addr, true).await?;
    let mut pacer = Pacer::new(s.max_keys_per_s);
    let budget = ctx.timeouts.probe() * 3 / 4;
    let mut stopped_early = false;
    let mut pages = 0u64;
    let count = s.scan_count.max(1).to_string();
    let mut cursor = "0".to_string();
    let (mut scanned, mut seen, mut complete, mut longest) = (0u64, 0u64, false, None::<i64>);
    let mut unreadable = BTreeMap::new();
    let mut no_ttl = BTreeSet::new();
    let mut too_long = BTreeMap::new();
    let mut not_hash = BTreeMap::new();
    loop {
        // The shared connection is taken per page, so a long scan holds up
        // no other probe of the node for more than one page.
        pages += 1;
        let reply = ctx
            .conn(addr)
            .await?
            .cmd(&[
                b"SCAN",
                cursor.as_bytes(),
                b"MATCH",
                s.pattern.as_bytes(),
                b"COUNT",
                count.as_bytes(),
            ])
            .await?;
        let (next, keys) = match &reply {
            redis::Value::Array(a) if a.len() == 2 => match (as_text(&a[0]), &a[1]) {
                (Some(n), redis::Value::Array(k)) => (
                    n,
                    k.iter()
                        .filter_map(|f| match f {
                            redis::Value::BulkString(b) => Some(b.clone()),
                            _ => None,
                        })
                        .collect::<Vec<Vec<u8>>>(),
                ),
                _ => {
                    return Err(ProbeFailure {
                        kind: FailureKind::UnexpectedReply,
                        message: format!("{addr}: SCAN answered {}", describe(Some(&reply))),
                    })
                }
            },
            _ => {
                return Err(ProbeFailure {
                    kind: FailureKind::UnexpectedReply,
                    message: format!("{addr}: SCAN answered {}", describe(Some(&reply))),
                })
            }
        };
        let take = keys
            .len()
            .min(s.cap_per_master.saturating_sub(seen) as usize);
        let keys = &keys[..take];
        if !keys.is_empty() {
            let cmds: Vec<Vec<Vec<u8>>> = keys
                .iter()
                .flat_map(|k| {
                    [
                        vec![b"TTL".to_vec(), k.clone()],
                        vec![b"TYPE".to_vec(), k.clone()],
                    ]
                })
                .collect();
            let replies = ctx.conn(addr).await?.pipeline(&cmds).await?;
            for (k, pair) in keys.iter().zip(replies.chunks(2)) {
                let (ttl, kind) = match (&pair[0], pair.get(1).and_then(as_text)) {
                    (redis::Value::Int(ttl), Some(kind)) => (*ttl, kind),
                    _ => {
                        let why = match (&pair[0], pair.get(1)) {
                            (redis::Value::ServerError(e), _)
                            | (_, Some(redis::Value::ServerError(e))) => error_text(e),
                            (a, b) => format!(
                                "TTL answered {}, TYPE answered {}",
                                describe(Some(a)),
                                describe(b)
                            ),
                        };
                        unreadable.insert(salt.key_hash(k), why);
                        continue;
                    }
                };
                match ttl {
                    -2 => continue, // expired between SCAN and TTL
                    -1 => {
                        no_ttl.insert(salt.key_hash(k));
                    }
                    t => {
                        longest = Some(longest.map_or(t, |l| l.max(t)));
                        if t > s.max_ttl_s {
                            too_long.insert(salt.key_hash(k), t);
                        }
                    }
                }
                if kind != "hash" && kind != "none" {
                    not_hash.insert(salt.key_hash(k), kind);
                }
                scanned += 1;
            }
            seen += keys.len() as u64;
        }
        pacer.wait(seen).await;
        cursor = next;
        if cursor == "0" {
            complete = true;
            break;
        }
        if seen >= s.cap_per_master {
            break;
        }
        // A scan paced to its rate would outlast a short probe deadline:
        // it ends as a sample, with time left for the last INFO, rather
        // than as an error with nothing judged.
        if started.elapsed() >= budget {
            stopped_early = true;
            break;
        }
    }
    let (after, _) = read_keyspace(ctx, addr, false).await?;
    let cost = ScanCost {
        pages,
        // The SCAN pages, TTL and TYPE per key examined, and the INFO reads.
        commands: pages + 2 * seen + 3,
        elapsed_ms: started.elapsed().as_millis() as u64,
        paced_ms: pacer.waited.as_millis() as u64,
    };
    Ok(SessionScanView {
        settings: s.clone(),
        scanned,
        complete,
        no_ttl: no_ttl.into_iter().collect(),
        ttl_too_long: too_long.into_iter().collect(),
        not_hash: not_hash.into_iter().collect(),
        longest_ttl_s: longest,
        key_hash: "HMAC-SHA256(run salt, key name), first 12 hex digits; the salt is in the run's .salt file, never in the report".into(),
        unreadable: unreadable.into_iter().collect(),
        stopped_early,
        keyspace: Some(KeyspaceView {
            // Read with the first keyspace; `?` as INFO without a role.
            role: role.unwrap_or_else(|| ReplicationRole::from("?".to_string())),
            before,
            after,
        }),
        cost: Some(cost),
    })
}

/// Keeps a scan under `per_s` keys per second: after each page it waits
/// until the keys examined so far are within the rate since the start.
struct Pacer {
    per_s: u64,
    start: tokio::time::Instant,
    waited: std::time::Duration,
}

impl Pacer {
    fn new(per_s: u64) -> Self {
        Pacer {
            per_s: per_s.max(1),
            start: tokio::time::Instant::now(),
            waited: std::time::Duration::ZERO,
        }
    }

    async fn wait(&mut self, done: u64) {
        let due = self.start + std::time::Duration::from_secs_f64(done as f64 / self.per_s as f64);
        let now = tokio::time::Instant::now();
        if due > now {
            self.waited += due - now;
            tokio::time::sleep_until(due).await;
        }
    }
}

/// INFO keyspace of a node (and, with `role`, INFO replication's role).
async fn read_keyspace(
    ctx: &ProbeContext,
    addr: &NodeAddr,
    role: bool,
) -> Result<(Vec<DbKeys>, Option<ReplicationRole>), ProbeFailure> {
    let mut cmds = vec![words(&["INFO", "keyspace"])];
    if role {
        cmds.push(words(&["INFO", "replication"]));
    }
    let r = ctx.conn(addr).await?.pipeline(&cmds).await?;
    let text = |i: usize, what: &str| {
        as_text(&r[i]).ok_or_else(|| ProbeFailure {
            kind: FailureKind::UnexpectedReply,
            message: format!("{addr}: INFO {what} answered {}", describe(r.get(i))),
        })
    };
    let dbs = parse_keyspace(&text(0, "keyspace")?).map_err(|e| ProbeFailure {
        kind: FailureKind::UnexpectedReply,
        message: format!("{addr}: INFO keyspace: {e}"),
    })?;
    let role = if role {
        Some(ReplicationRole::of_info(&parse_info(&text(
            1,
            "replication",
        )?)))
    } else {
        None
    };
    Ok((dbs, role))
}

/// The databases of INFO keyspace: `db0:keys=10,expires=8,avg_ttl=0,...`
/// lines; a line without `keys=` or `expires=` is an error (a count that
/// is not there is not zero).
pub(crate) fn parse_keyspace(text: &str) -> Result<Vec<DbKeys>, String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        let Some((name, fields)) = line.split_once(':') else {
            continue;
        };
        let Some(db) = name.strip_prefix("db").and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let field = |k: &str| {
            subfield(fields, k)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("`{line}` has no number `{k}=`"))
        };
        out.push(DbKeys {
            db,
            keys: field("keys")?,
            expires: field("expires")?,
        });
    }
    Ok(out)
}

/// SCAN MATCH <pattern> with pipelined TTL/TYPE on every master.
pub(crate) struct SessionScanProbe;

impl Probe for SessionScanProbe {
    fn name(&self) -> ProbeId {
        ProbeId::Sessions
    }

    fn run(&self, ctx: Arc<ProbeContext>) -> ProbeFuture {
        Box::pin(async move {
            let Some(s) = ctx.inputs.sessions.clone() else {
                return vec![Evidence::not_observed(
                    ProbeId::Sessions,
                    "cluster",
                    "SCAN on every master",
                    ProbeFailure::new(
                        FailureKind::NotRun,
                        "no session-TTL check with a key pattern is selected",
                    ),
                )];
            };
            let masters: Vec<NodeAddr> = ctx
                .topology
                .masters
                .keys()
                .filter_map(|a| NodeAddr::parse(a).ok())
                .collect();
            if masters.is_empty() {
                return vec![Evidence::not_observed(
                    ProbeId::Sessions,
                    "cluster",
                    "SCAN on every master",
                    ProbeFailure::new(
                        FailureKind::NotRun,
                        "discovery found no master serving slots",
                    ),
                )];
            }
            let method = format!(
                "INFO keyspace and replication; SCAN MATCH {} COUNT {} with pipelined TTL and TYPE, \
                 up to {} keys per master at most {} keys/s; INFO keyspace again; as {}; \
                 key names kept only as keyed hashes",
                s.pattern, s.scan_count, s.cap_per_master, s.max_keys_per_s, ctx.user
            );
            let targets = masters
                .into_iter()
                .map(|a| Target::node(a, method.clone()))
                .collect();
            per_target(
                ProbeId::Sessions,
                "session scan",
                ctx.timeouts.probe(),
                targets,
                |addr| {
                    let (ctx, s) = (ctx.clone(), s.clone());
                    async move {
                        scan_sessions(&ctx, &addr, &s)
                            .await
                            .map(|v| Observation::SessionScan(Box::new(v)))
                    }
                },
            )
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    #[test]
    fn keyspace_lines_of_redis_7_8_and_valkey_are_read_and_a_count_missing_is_refused() {
        // Redis 7.0, Redis 7.4+/8 (subexpiry) and several databases.
        let text = "# Keyspace\r\ndb0:keys=1000000,expires=999997,avg_ttl=1712000\r\n\
                    db1:keys=5,expires=3,avg_ttl=0,subexpiry=0\r\n\r\n";
        let dbs = parse_keyspace(text).unwrap();
        assert_eq!(
            dbs,
            vec![
                DbKeys {
                    db: 0,
                    keys: 1_000_000,
                    expires: 999_997
                },
                DbKeys {
                    db: 1,
                    keys: 5,
                    expires: 3
                },
            ]
        );
        assert_eq!(dbs.iter().map(DbKeys::without_ttl).sum::<u64>(), 5);
        // An empty keyspace lists no database.
        assert_eq!(parse_keyspace("# Keyspace\r\n").unwrap(), vec![]);
        // A line without its counts is not zero keys.
        assert!(parse_keyspace("db0:keys=10,avg_ttl=0")
            .unwrap_err()
            .contains("expires="));
    }

    #[test]
    fn keyed_hashes_are_stable_per_salt_and_hide_the_name() {
        let a = RunSalt([1; 32]);
        let h = a.key_hash(b"session:7f3a9c");
        assert_eq!(h.len(), 12);
        assert_eq!(h, a.key_hash(b"session:7f3a9c"));
        assert_ne!(h, RunSalt([2; 32]).key_hash(b"session:7f3a9c"));
        assert!(!format!("{a:?}").contains('1'));
        // Reproducible with standard tools: HMAC-SHA256 as in RFC 2104.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&[1; 32]).unwrap();
        m.update(b"session:7f3a9c");
        assert!(hex::encode(m.finalize().into_bytes()).starts_with(&h));
    }
}
