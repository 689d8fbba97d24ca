//! Access control: ACL users and rules, ACL LOG, an ACL DRYRUN sweep of the
//! whole COMMAND table, the policy's explicit cases, and live logins.
//!
//! The sweep runs once per group of nodes whose ACL (every user's rules and
//! salted password fingerprints) and COMMAND table are identical, since
//! those decide every DRYRUN verdict; the other members record which node
//! it ran on. A node whose ACL differs is swept on its own.
//!
//! Non-destructive by construction. The commands sent are ACL USERS, ACL
//! LIST, ACL GETUSER, ACL LOG, COMMAND, ACL DRYRUN (which never executes the
//! command it is asked about), PING, AUTH and ACL WHOAMI. The one side
//! effect is that `AUTH default <random>` adds an `auth` entry to each
//! node's ACL LOG; the log summary is read before that attempt.

mod dryrun;
mod replies;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::config::NodeAddr;
use crate::evidence::{
    AclView, AuthObservation, CommandInfo, CommandTable, Evidence, FailureKind, Observation,
    Observed, ProbeFailure, ProbeId, UserAuth,
};
use crate::probes::scaffold::{per_target_with, Probe, ProbeContext, ProbeFuture, Target};
use crate::resp::{as_text, describe, RedisConn};

use dryrun::*;
use replies::*;

/// The access probe.
pub(crate) struct AclProbe;

impl Probe for AclProbe {
    fn name(&self) -> ProbeId {
        ProbeId::Acl
    }

    fn run(&self, ctx: Arc<ProbeContext>) -> ProbeFuture {
        Box::pin(async move {
            // Fingerprints of password hashes are salted per run, so they
            // compare nodes within the run but reveal nothing later.
            let salt: [u8; 32] = crate::secret::random();
            // One budget for the whole probe: the reads and logins of every
            // node get half of it, the DRYRUN sweeps what is left, so a
            // silent node cannot leave the sweeps of the others no time.
            let end = tokio::time::Instant::now() + ctx.timeouts.probe();
            let targets = ctx
                .targets
                .iter()
                .map(|a| Target::node(a.clone(), method(&ctx.user)))
                .collect();
            let observed = per_target_with(
                ProbeId::Acl,
                "access probe",
                ctx.timeouts.probe() / 2,
                targets,
                |addr: NodeAddr| {
                    let ctx = ctx.clone();
                    async move {
                        let (v, t) = observe_node(&ctx, &addr, &salt).await?;
                        let group = acl_group_key(&v, &t);
                        Ok((Observation::AclNode(Box::new(v)), (addr, t, group)))
                    }
                },
            )
            .await;
            let mut items = Vec::new();
            let mut table: Option<(NodeAddr, CommandTable)> = None;
            let mut last_failure = None;
            // Nodes with the same ACL and COMMAND table: (node, its item,
            // its COMMAND table), the sweep runs on the first.
            let mut groups: BTreeMap<String, Vec<Member>> = BTreeMap::new();
            for (i, (ev, t)) in observed.into_iter().enumerate() {
                if let Observed::Failure(f) = &ev.result {
                    last_failure = Some(f.clone());
                }
                if let Some((addr, t, group)) = t {
                    groups
                        .entry(group)
                        .or_default()
                        .push((addr.clone(), i, t.commands.clone()));
                    if table.as_ref().is_none_or(|(a, _)| addr < *a) {
                        table = Some((addr, t));
                    }
                }
                items.push(ev);
            }
            sweep_groups(&ctx, groups, &mut items, end).await;
            items.push(Evidence {
                probe: ProbeId::AclCommands,
                subject: "cluster".into(),
                method: "COMMAND (flags and ACL categories of every command and subcommand)".into(),
                observed_at: Utc::now(),
                duration_ms: 0,
                result: match (table, last_failure) {
                    (Some((_, t)), _) => Observed::Observation(Observation::CommandTable(t)),
                    (None, Some(f)) => Observed::Failure(f),
                    (None, None) => Observed::Failure(ProbeFailure {
                        kind: FailureKind::NoTarget,
                        message: "no node to read COMMAND from".into(),
                    }),
                },
            });
            items
        })
    }
}

/// What decides every DRYRUN verdict on a node: each user's rules and
/// (salted) password fingerprints as ACL GETUSER gives them, and the
/// COMMAND table (which commands exist, their flags and categories). Nodes
/// with the same key give the same verdicts, so one sweep serves them all.
fn acl_group_key(v: &AclView, t: &CommandTable) -> String {
    // COMMAND lists commands in the order of the node's own hash table,
    // which differs between nodes with the same commands: compare sorted.
    let mut commands: Vec<&CommandInfo> = t.commands.iter().collect();
    commands.sort_by(|a, b| a.name.cmp(&b.name));
    let mut users: Vec<(&str, Vec<String>)> = v
        .users
        .iter()
        .map(|u| (u.name.as_str(), rule_key(&u.rule)))
        .collect();
    users.sort();
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&users).expect("users serialise"));
    h.update([0]);
    h.update(serde_json::to_vec(&commands).expect("commands serialise"));
    hex::encode(h.finalize())
}

/// An ACL LIST line (passwords already fingerprints) as a comparable
/// key. Redis prints a user's individual `+cmd`/`-cmd` rules in its hash
/// table's order, which differs between nodes with the same permissions;
/// they are generated from the permission bitmap, so within one segment
/// (the root permissions, or one `(selector)`) their order carries no
/// meaning and they are sorted there. Every other token, and every token's
/// segment, stays where it is.
fn rule_key(rule: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut run: Vec<String> = Vec::new();
    let flush = |run: &mut Vec<String>, out: &mut Vec<String>| {
        run.sort();
        out.append(run);
    };
    for t in rule.split_whitespace() {
        let opens = t.starts_with('(');
        let closes = t.ends_with(')');
        let bare = t.trim_start_matches('(').trim_end_matches(')');
        let individual =
            (bare.starts_with('+') || bare.starts_with('-')) && !bare[1..].starts_with('@');
        if opens {
            flush(&mut run, &mut out);
            out.push("(".into());
        }
        if individual {
            run.push(bare.to_string());
        } else {
            flush(&mut run, &mut out);
            out.push(bare.to_string());
        }
        if closes {
            flush(&mut run, &mut out);
            out.push(")".into());
        }
    }
    flush(&mut run, &mut out);
    out
}

/// A node of a group: its address, the index of its item and its COMMAND
/// table.
type Member = (NodeAddr, usize, Vec<CommandInfo>);

/// Runs the DRYRUN sweep once per group of identical nodes (on its
/// lowest address), concurrently across groups and before `end`, and
/// records the result in every member's item: the node it ran on sweeps
/// itself; the others name it in `dryrun_swept_on`. A sweep that fails or
/// runs out of time turns every member's item into that failure.
async fn sweep_groups(
    ctx: &Arc<ProbeContext>,
    groups: BTreeMap<String, Vec<Member>>,
    items: &mut [Evidence],
    end: tokio::time::Instant,
) {
    let mut tasks = Vec::new();
    for (_, mut members) in groups {
        members.sort_by(|a, b| a.0.cmp(&b.0));
        let mut it = members.into_iter();
        let Some((rep, rep_i, commands)) = it.next() else {
            continue;
        };
        let others: Vec<(NodeAddr, usize)> = it.map(|(a, i, _)| (a, i)).collect();
        let users = match &items[rep_i].result {
            Observed::Observation(Observation::AclNode(v)) => v.users.clone(),
            _ => continue,
        };
        let ctx = ctx.clone();
        let t0 = std::time::Instant::now();
        let at = rep.clone();
        let handle = tokio::spawn(async move {
            let r = tokio::time::timeout_at(end, sweep(&ctx, &at, &users, &commands)).await;
            r.unwrap_or_else(|_| {
                Err(failure(
                    FailureKind::Deadline,
                    format!(
                        "{at}: the ACL DRYRUN sweep did not finish within the access probe's {} ms",
                        ctx.timeouts.probe_ms
                    ),
                ))
            })
        });
        tasks.push((rep, rep_i, others, t0, handle));
    }
    for (rep, rep_i, others, t0, handle) in tasks {
        let result = handle.await.unwrap_or_else(|e| {
            Err(failure(
                FailureKind::Internal,
                format!("{rep}: the ACL DRYRUN sweep stopped on an internal error ({e}); this is a bug in epic-audit"),
            ))
        });
        items[rep_i].duration_ms += t0.elapsed().as_millis() as u64;
        for (i, swept_on) in
            std::iter::once((rep_i, None)).chain(others.iter().map(|(a, i)| (*i, Some(a))))
        {
            let item = &mut items[i];
            let subject = item.subject.clone();
            match (&result, &mut item.result) {
                (Ok(s), Observed::Observation(Observation::AclNode(v))) => {
                    v.dryrun = s.dryrun.clone();
                    v.dryrun_errors = s.dryrun_errors.clone();
                    v.cases = s.cases.clone();
                    v.dryrun_keys = s.dryrun_keys.clone();
                    v.dryrun_calls = if swept_on.is_none() { s.calls } else { 0 };
                    v.dryrun_swept_on = swept_on.map(|_| rep.to_string());
                }
                (Err(f), _) => {
                    item.result = Observed::Failure(match swept_on {
                        None => f.clone(),
                        Some(_) => failure(
                            f.kind,
                            format!(
                                "{subject}: its ACL and COMMAND table are identical to {rep}'s, whose ACL \
                                 DRYRUN sweep serves both, and that sweep failed: {}",
                                f.message
                            ),
                        ),
                    });
                }
                _ => {}
            }
        }
    }
}

async fn observe_node(
    ctx: &ProbeContext,
    addr: &NodeAddr,
    salt: &[u8; 32],
) -> Result<(AclView, CommandTable), ProbeFailure> {
    let first = ctx
        .conn(addr)
        .await?
        .pipeline(&[
            words(&["ACL", "USERS"]),
            words(&["ACL", "LIST"]),
            words(&["ACL", "LOG"]),
            words(&["COMMAND"]),
        ])
        .await?;
    let names = string_list(&first[0]).ok_or_else(|| {
        failure(
            FailureKind::UnexpectedReply,
            format!("{addr}: ACL USERS: {}", describe(first.first())),
        )
    })?;
    let list = string_list(&first[1]).ok_or_else(|| {
        failure(
            FailureKind::UnexpectedReply,
            format!("{addr}: ACL LIST: {}", describe(first.get(1))),
        )
    })?;
    let mut log = parse_acl_log(&first[2]).map_err(|e| {
        failure(
            FailureKind::UnexpectedReply,
            format!("{addr}: ACL LOG: {e}"),
        )
    })?;
    // People type passwords into the user field: a name in ACL LOG that is
    // neither a user of the node nor a configured one is kept only as a
    // keyed hash (the run's salt maps it back, locally).
    for entry in &mut log.by_reason_user {
        let known = names.contains(&entry.username)
            || ctx.credentials.contains_key(&entry.username)
            || entry.username == ctx.user;
        if !known {
            entry.username = format!(
                "unknown user #{}",
                ctx.session_salt.key_hash(entry.username.as_bytes())
            );
        }
    }
    let commands = parse_command_table(&first[3]).map_err(|e| {
        failure(
            FailureKind::UnexpectedReply,
            format!("{addr}: COMMAND: {e}"),
        )
    })?;

    let getusers: Vec<Vec<Vec<u8>>> = names
        .iter()
        .map(|n| words(&["ACL", "GETUSER", n]))
        .collect();
    let replies = ctx.conn(addr).await?.pipeline(&getusers).await?;
    let mut users = Vec::new();
    for (name, f) in names.iter().zip(&replies) {
        let rule = list
            .iter()
            .find(|l| l.split_whitespace().nth(1) == Some(name.as_str()))
            .map(|l| redact_rule(l, salt))
            .unwrap_or_default();
        users.push(parse_getuser(name, f, &rule, salt).map_err(|e| {
            failure(
                FailureKind::UnexpectedReply,
                format!("{addr}: ACL GETUSER {name}: {e}"),
            )
        })?);
    }

    let auth = live_auth(ctx, addr).await?;
    Ok((
        AclView {
            users,
            log,
            dryrun: BTreeMap::new(),
            dryrun_errors: Vec::new(),
            dryrun_calls: 0,
            cases: Vec::new(),
            auth,
            dryrun_keys: BTreeMap::new(),
            dryrun_swept_on: None,
        },
        CommandTable {
            node: addr.to_string(),
            commands,
        },
    ))
}

/// Live logins, all on one connection of their own (never the shared one,
/// which stays the audit user's): an unauthenticated PING, a wrong
/// password for `default`, then each configured user with its real
/// password in turn. Each AUTH's own reply is its evidence: a refused
/// AUTH leaves the connection as it was, and a granted one is
/// cross-checked before the next.
async fn live_auth(ctx: &ProbeContext, addr: &NodeAddr) -> Result<AuthObservation, ProbeFailure> {
    let mut c = RedisConn::connect(addr, &ctx.tls, &ctx.timeouts).await?;
    let unauthenticated_ping = reply_text(c.cmd_str(&["PING"]).await);
    let wrong = crate::secret::Secret::new(hex::encode(crate::secret::random::<24>()));
    let default_wrong_password = match c.auth("default", &wrong).await {
        Ok(()) => "OK".to_string(),
        Err(crate::resp::ConnError::Auth { reply, .. }) => reply,
        Err(e) => return Err(e.into()),
    };
    let mut users = Vec::new();
    for (user, pw) in &ctx.credentials {
        match c.auth(user, pw).await {
            Ok(()) => {
                // The login is proven by AUTH. Who the connection is, is a
                // cross-check: ACL WHOAMI, else CLIENT INFO's `user=`; a
                // least-privilege user may have neither (NOPERM).
                let (whoami, whoami_error) = match c.cmd_str(&["ACL", "WHOAMI"]).await {
                    Ok(f) => (as_text(&f), None),
                    Err(first) => match c.cmd_str(&["CLIENT", "INFO"]).await {
                        Ok(f) => (
                            as_text(&f).and_then(|t| {
                                t.split_whitespace()
                                    .find_map(|kv| kv.strip_prefix("user="))
                                    .map(str::to_string)
                            }),
                            None,
                        ),
                        Err(second) => (
                            None,
                            Some(format!("{}; {}", reply_of(&first), reply_of(&second))),
                        ),
                    },
                };
                users.push(UserAuth {
                    user: user.clone(),
                    authenticated: true,
                    error: None,
                    whoami,
                    whoami_error,
                });
            }
            Err(crate::resp::ConnError::Auth { reply, .. }) => users.push(UserAuth {
                user: user.clone(),
                authenticated: false,
                error: Some(reply),
                whoami: None,
                whoami_error: None,
            }),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(AuthObservation {
        unauthenticated_ping,
        default_wrong_password,
        users,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> redis::Value {
        redis::Value::BulkString(s.as_bytes().to_vec())
    }

    fn info(name: &str, arity: i64, first: i64, last: i64, step: i64) -> CommandInfo {
        CommandInfo {
            name: name.into(),
            arity,
            flags: vec![],
            categories: vec![],
            first_key: first,
            last_key: last,
            step,
            container: false,
        }
    }

    fn acl_item(subject: &str) -> Evidence {
        Evidence {
            probe: ProbeId::Acl,
            subject: subject.into(),
            method: "test".into(),
            observed_at: Utc::now(),
            duration_ms: 0,
            result: Observed::Observation(Observation::AclNode(Box::new(AclView {
                users: Vec::new(),
                log: Default::default(),
                dryrun: BTreeMap::new(),
                dryrun_errors: Vec::new(),
                dryrun_calls: 0,
                cases: Vec::new(),
                auth: AuthObservation {
                    unauthenticated_ping: "NOAUTH".into(),
                    default_wrong_password: "WRONGPASS".into(),
                    users: Vec::new(),
                },
                dryrun_keys: BTreeMap::new(),
                dryrun_swept_on: None,
            }))),
        }
    }

    /// A group's sweep runs on its lowest address only; when it fails
    /// (here: that node refuses the connection), no member keeps an ACL
    /// observation without a sweep: the node it ran on gets the failure,
    /// and every other member a failure that names that node and says
    /// why its verdicts depended on it. Without this, the others would
    /// pass ACC checks on an empty DRYRUN map.
    #[tokio::test]
    async fn a_failed_group_sweep_fails_every_member_naming_the_node_it_ran_on() {
        let ctx = Arc::new(crate::probes::fixture_context());
        let (a, b) = (
            crate::probes::closed_loopback_addr(),
            crate::probes::closed_loopback_addr(),
        );
        let (rep, other) = if a < b { (a, b) } else { (b, a) };
        let mut items = vec![acl_item(&other.to_string()), acl_item(&rep.to_string())];
        let mut groups = BTreeMap::new();
        groups.insert(
            "same ACL".to_string(),
            vec![(other.clone(), 0, Vec::new()), (rep.clone(), 1, Vec::new())],
        );
        let end = tokio::time::Instant::now() + ctx.timeouts.probe();
        sweep_groups(&ctx, groups, &mut items, end).await;
        let Observed::Failure(f) = &items[1].result else {
            panic!(
                "the node the sweep ran on kept its observation: {:?}",
                items[1]
            )
        };
        assert_eq!(f.kind, "connect", "{f:?}");
        let Observed::Failure(g) = &items[0].result else {
            panic!(
                "a member kept an observation without a sweep: {:?}",
                items[0]
            )
        };
        assert_eq!(g.kind, "connect", "{g:?}");
        assert!(
            g.message.starts_with(&format!(
                "{other}: its ACL and COMMAND table are identical to {rep}'s"
            )) && g.message.contains("that sweep failed: TCP connect to"),
            "{}",
            g.message
        );
    }

    #[test]
    fn rule_keys_sort_individual_rules_within_their_segment_only() {
        let a = rule_key("user u on #fp:1 ~* -@all +@read -keys +cluster|slots (~x +get -set)");
        let b = rule_key("user u on #fp:1 ~* -@all +@read +cluster|slots -keys (~x -set +get)");
        assert_eq!(a, b);
        // The same tokens in another segment are another ACL.
        assert_ne!(
            rule_key("user u +get (~x -set)"),
            rule_key("user u (~x +get -set)")
        );
        // Categories keep their order.
        assert_ne!(
            rule_key("user u -@all +@read"),
            rule_key("user u +@read -@all")
        );
    }

    #[test]
    fn templates_fill_arity_and_key_positions() {
        let k = KEY_MARK;
        assert_eq!(arg_template(&info("get", 2, 1, 1, 1)), ["get", k]);
        assert_eq!(arg_template(&info("mset", -3, 1, -1, 2)), ["mset", k, "1"]);
        assert_eq!(arg_template(&info("ping", -1, 0, 0, 0)), ["ping"]);
        assert_eq!(
            arg_template(&info("config|get", -3, 0, 0, 0)),
            ["config", "get", "1"]
        );
        assert_eq!(arg_template(&info("eval", -3, 0, 0, 0)), ["eval", "1", "1"]);
        assert_eq!(arg_template(&info("rename", 3, 1, 2, 1)), ["rename", k, k]);
        assert_eq!(
            arg_template(&info("zunionstore", -4, 1, 1, 1)),
            ["zunionstore", k, "1", "1"]
        );
    }

    #[test]
    fn verdicts_from_dryrun_replies() {
        use crate::evidence::DryRunVerdict;
        let s = |t: &str| redis::Value::BulkString(t.as_bytes().to_vec());
        assert_eq!(verdict(Some(&redis::Value::Okay)).0, DryRunVerdict::Allowed);
        assert_eq!(
            verdict(Some(&redis::Value::SimpleString("OK".into()))).0,
            DryRunVerdict::Allowed
        );
        assert_eq!(
            verdict(Some(&s(
                "This user has no permissions to run the 'set' command"
            )))
            .0,
            DryRunVerdict::CommandDenied
        );
        assert_eq!(
            verdict(Some(&s(
                "This user has no permissions to access the 'foo' key"
            )))
            .0,
            DryRunVerdict::KeyDenied
        );
        assert_eq!(
            verdict(Some(&s(
                "This user has no permissions to access the 'c' channel"
            )))
            .0,
            DryRunVerdict::ChannelDenied
        );
        assert_eq!(
            verdict(Some(
                &redis::parse_redis_value(b"-ERR User 'x' not found\r\n").unwrap()
            ))
            .0,
            DryRunVerdict::Error
        );
        assert_eq!(verdict(Some(&redis::Value::Int(3))).0, DryRunVerdict::Error);
        assert_eq!(verdict(None).0, DryRunVerdict::Error);
    }

    #[test]
    fn rules_are_redacted_to_salted_fingerprints() {
        let h = "a".repeat(64);
        let salt = [7u8; 32];
        let r = redact_rule(
            &format!("user app_user on #{h} ~session:* resetchannels -@all"),
            &salt,
        );
        assert!(!r.contains(&h));
        assert!(
            r.starts_with("user app_user on #fp:") && r.ends_with("~session:* resetchannels -@all"),
            "{r}"
        );
        assert_eq!(
            r,
            redact_rule(
                &format!("user app_user on #{h} ~session:* resetchannels -@all"),
                &salt
            )
        );
        assert_ne!(
            r,
            redact_rule(
                &format!("user app_user on #{h} ~session:* resetchannels -@all"),
                &[8u8; 32]
            )
        );
    }

    #[test]
    fn getuser_never_keeps_hashes_and_rejects_odd_replies() {
        let h = "b".repeat(64);
        let f = redis::Value::Array(vec![
            bulk("flags"),
            redis::Value::Array(vec![bulk("on")]),
            bulk("passwords"),
            redis::Value::Array(vec![bulk(&h)]),
            bulk("commands"),
            bulk("-@all +@read"),
            bulk("keys"),
            bulk("~*"),
            bulk("channels"),
            bulk(""),
            bulk("selectors"),
            redis::Value::Array(vec![]),
        ]);
        let u = parse_getuser("dev_user", &f, "user dev_user on #fp:x", &[1; 32]).unwrap();
        assert_eq!(u.password_count, 1);
        assert!(!format!("{u:?}").contains(&h));
        assert!(parse_getuser("x", &redis::Value::Nil, "", &[1; 32]).is_err());
        assert!(parse_getuser("x", &bulk("nope"), "", &[1; 32]).is_err());
        assert!(parse_getuser(
            "x",
            &redis::Value::Array(vec![bulk("keys"), bulk("~*")]),
            "",
            &[1; 32]
        )
        .is_err());
    }

    #[test]
    fn acl_log_is_summarised_without_objects() {
        let entry = |reason: &str, user: &str, count: i64, obj: &str| {
            redis::Value::Array(vec![
                bulk("count"),
                redis::Value::Int(count),
                bulk("reason"),
                bulk(reason),
                bulk("context"),
                bulk("toplevel"),
                bulk("object"),
                bulk(obj),
                bulk("username"),
                bulk(user),
                bulk("age-seconds"),
                bulk("12.5"),
            ])
        };
        let f = redis::Value::Array(vec![
            entry("auth", "default", 3, "AUTH"),
            entry("auth", "default", 2, "AUTH"),
            entry("key", "app_user", 1, "session:secret-token"),
        ]);
        let s = parse_acl_log(&f).unwrap();
        assert_eq!(s.entries, 3);
        assert_eq!(s.by_reason_user[0].count, 5);
        assert!(!format!("{s:?}").contains("secret-token"));
        assert!(parse_acl_log(&bulk("x")).is_err());
    }

    #[test]
    fn command_table_flattens_subcommands() {
        let cmd = |name: &str, subs: Vec<redis::Value>| {
            redis::Value::Array(vec![
                bulk(name),
                redis::Value::Int(-2),
                redis::Value::Array(vec![bulk("admin")]),
                redis::Value::Int(0),
                redis::Value::Int(0),
                redis::Value::Int(0),
                redis::Value::Array(vec![bulk("@admin")]),
                redis::Value::Array(vec![]),
                redis::Value::Array(vec![]),
                redis::Value::Array(subs),
            ])
        };
        let t = parse_command_table(&redis::Value::Array(vec![cmd(
            "config",
            vec![cmd("config|get", vec![])],
        )]))
        .unwrap();
        assert_eq!(t.len(), 2);
        assert!(t[0].container && t[0].name == "config");
        assert_eq!(t[1].name, "config|get");
        assert!(parse_command_table(&redis::Value::Array(vec![bulk("x")])).is_err());
        assert!(parse_command_table(&redis::Value::Array(vec![])).is_err());
    }
}
