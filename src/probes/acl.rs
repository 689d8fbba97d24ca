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

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::scaffold::{per_target_with, Probe, ProbeContext, ProbeFuture, Target};
use crate::config::NodeAddr;
use crate::evidence::{
    dryrun_sample_keys, AclLogCount, AclLogSummary, AclUser, AclView, AuthObservation, CaseResult,
    CommandInfo, CommandTable, DryRunError, DryRunVerdict, Evidence, FailureKind, Observation,
    Observed, ProbeFailure, ProbeId, UserAuth,
};
use crate::resp::{as_text, describe, error_text, map_pairs, Frame, RedisConn};

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

/// What one DRYRUN sweep found.
struct Sweep {
    dryrun: BTreeMap<String, BTreeMap<String, String>>,
    dryrun_errors: Vec<DryRunError>,
    calls: usize,
    cases: Vec<CaseResult>,
    dryrun_keys: BTreeMap<String, Vec<String>>,
}

fn method(user: &str) -> String {
    format!(
        "As {user} over TLS: ACL USERS, ACL LIST, ACL GETUSER, ACL LOG, COMMAND; ACL DRYRUN for every \
         command and subcommand per swept user with sample keys made from the policy's key patterns for \
         that user, from every key pattern Redis grants it (root and selectors; recorded per user in \
         dryrun_keys), and one outside the policy's patterns (DRYRUN never executes); \
         key positions from COMMAND GETKEYS; the policy's cases via ACL DRYRUN (one sweep per group of \
         nodes with identical ACL GETUSER rules, password fingerprints and COMMAND table, on the group's \
         lowest address: dryrun_swept_on names it on the others); live logins on one connection of \
         their own: PING unauthenticated, AUTH default <random> (adds one `auth` entry to ACL LOG), \
         then AUTH + ACL WHOAMI (or CLIENT INFO) for each configured user in turn"
    )
}

fn words(ws: &[&str]) -> Vec<Vec<u8>> {
    ws.iter().map(|w| w.as_bytes().to_vec()).collect()
}

fn failure(kind: FailureKind, message: String) -> ProbeFailure {
    ProbeFailure { kind, message }
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

/// The DRYRUN sweep on one node, over its shared connection (taken for
/// one pipeline at a time): every command of its COMMAND table for each
/// swept user, then the policy's cases.
async fn sweep(
    ctx: &ProbeContext,
    addr: &NodeAddr,
    users: &[AclUser],
    commands: &[CommandInfo],
) -> Result<Sweep, ProbeFailure> {
    let names: Vec<String> = users.iter().map(|u| u.name.clone()).collect();
    // Where each command takes its keys: the legacy key range, refined with
    // COMMAND GETKEYS for movable keys (numkeys, STREAMS, ...).
    let templates = key_templates(ctx, addr, commands).await?;

    // The DRYRUN sweep, one pipeline per user.
    let mut dryrun = BTreeMap::new();
    let mut dryrun_errors = Vec::new();
    let mut calls = 0;
    let mut dryrun_keys = BTreeMap::new();
    for (user, policy) in ctx
        .inputs
        .dryrun_users
        .iter()
        .filter(|(u, _)| names.contains(u))
    {
        // Sample keys from the policy's patterns for this user and from
        // every pattern Redis grants it (root and selectors).
        let granted: Vec<String> = users
            .iter()
            .filter(|u| &u.name == user)
            .flat_map(AclUser::key_patterns)
            .collect();
        let keys = dryrun_sample_keys(policy, &granted);
        let mut plan: Vec<(String, usize)> = Vec::new();
        let mut cmds = Vec::new();
        for (name, template) in &templates {
            let tries = if template.iter().any(|a| a == KEY_MARK) {
                keys.len()
            } else {
                1
            };
            for key in keys.iter().take(tries) {
                let mut full = words(&["ACL", "DRYRUN", user]);
                full.extend(template.iter().map(|a| {
                    if a == KEY_MARK {
                        key.as_bytes().to_vec()
                    } else {
                        a.as_bytes().to_vec()
                    }
                }));
                cmds.push(full);
            }
            plan.push((name.clone(), tries));
        }
        calls += cmds.len();
        let replies = ctx.conn(addr).await?.pipeline(&cmds).await?;
        let mut it = replies.iter();
        let mut m = BTreeMap::new();
        for (name, tries) in plan {
            let mut v = String::new();
            for _ in 0..tries {
                let (verdict, reply) = verdict(it.next());
                if verdict == DryRunVerdict::Error {
                    dryrun_errors.push(DryRunError {
                        user: user.clone(),
                        command: name.clone(),
                        reply,
                    });
                }
                v.push(verdict.letter());
            }
            m.insert(name, v);
        }
        dryrun.insert(user.clone(), m);
        dryrun_keys.insert(user.clone(), keys);
    }

    // The policy's explicit cases.
    let mut cases = Vec::new();
    if !ctx.inputs.dryrun_cases.is_empty() {
        let cmds: Vec<Vec<Vec<u8>>> = ctx
            .inputs
            .dryrun_cases
            .iter()
            .map(|k| {
                let mut full = words(&["ACL", "DRYRUN", &k.user]);
                full.extend(k.command.split_whitespace().map(|w| w.as_bytes().to_vec()));
                full
            })
            .collect();
        calls += cmds.len();
        let replies = ctx.conn(addr).await?.pipeline(&cmds).await?;
        for (k, f) in ctx.inputs.dryrun_cases.iter().zip(&replies) {
            let (letter, reply) = verdict(Some(f));
            cases.push(CaseResult {
                user: k.user.clone(),
                command: k.command.clone(),
                verdict: letter,
                reply,
            });
        }
    }
    Ok(Sweep {
        dryrun,
        dryrun_errors,
        calls,
        cases,
        dryrun_keys,
    })
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

/// `CMD: REPLY` of a refused command, or the connection error.
fn reply_of(e: &crate::resp::ConnError) -> String {
    match e {
        crate::resp::ConnError::Server { cmd, reply, .. } => format!("{cmd}: {reply}"),
        e => e.to_string(),
    }
}

fn reply_text(r: Result<Frame, crate::resp::ConnError>) -> String {
    match r {
        Ok(f) => as_text(&f).unwrap_or_else(|| describe(Some(&f))),
        Err(crate::resp::ConnError::Server { reply, .. }) => reply,
        Err(e) => e.to_string(),
    }
}

/// The DRYRUN verdict letter and the reply text.
pub(crate) fn verdict(f: Option<&Frame>) -> (DryRunVerdict, String) {
    match f {
        Some(f @ (Frame::Okay | Frame::SimpleString(_) | Frame::BulkString(_))) => {
            let t = as_text(f).unwrap_or_default();
            let v = if t == "OK" {
                DryRunVerdict::Allowed
            } else if t.contains("permissions to run") {
                DryRunVerdict::CommandDenied
            } else if t.ends_with(" key") && t.contains("permissions to access") {
                DryRunVerdict::KeyDenied
            } else if t.ends_with(" channel") && t.contains("permissions to access") {
                DryRunVerdict::ChannelDenied
            } else {
                DryRunVerdict::Error
            };
            (v, t)
        }
        Some(Frame::ServerError(e)) => (DryRunVerdict::Error, error_text(e)),
        other => (DryRunVerdict::Error, describe(other)),
    }
}

/// Placeholder for a key position in an argument template.
pub(crate) const KEY_MARK: &str = "\u{0}key";

/// Arguments that satisfy the command's arity: [`KEY_MARK`] at the legacy
/// key positions, `1` elsewhere (so a `numkeys` argument asks for one key).
pub(crate) fn arg_template(info: &CommandInfo) -> Vec<String> {
    let mut args: Vec<String> = info.name.split('|').map(str::to_string).collect();
    let n = info.arity.unsigned_abs().max(args.len() as u64) as usize;
    let last = if info.last_key < 0 {
        n as i64 + info.last_key
    } else {
        info.last_key
    };
    for pos in args.len()..n {
        let p = pos as i64;
        let is_key = info.first_key > 0
            && p >= info.first_key
            && p <= last
            && info.step > 0
            && (p - info.first_key) % info.step == 0;
        args.push(if is_key {
            KEY_MARK.to_string()
        } else {
            "1".to_string()
        });
    }
    args
}

fn fill(template: &[String], key: &str) -> Vec<Vec<u8>> {
    template
        .iter()
        .map(|a| {
            if a == KEY_MARK {
                key.as_bytes().to_vec()
            } else {
                a.as_bytes().to_vec()
            }
        })
        .collect()
}

/// The key COMMAND GETKEYS is asked to find (it touches no key, so any
/// name does; this one cannot be mistaken for a real key).
const GETKEYS_MARK: &str = "epic-audit-getkeys-marker";

fn getkeys(template: &[String]) -> Vec<Vec<u8>> {
    let mut full = words(&["COMMAND", "GETKEYS"]);
    full.extend(fill(template, GETKEYS_MARK));
    full
}

/// Argument templates for every (sub)command. Commands with movable keys
/// (or extra keys behind a `numkeys`) get their key positions from COMMAND
/// GETKEYS: keys the server extracts that are still `1` are turned into key
/// positions, from the end, and kept only if GETKEYS then extracts exactly
/// the sample key. GETKEYS is read-only.
async fn key_templates(
    ctx: &ProbeContext,
    addr: &NodeAddr,
    commands: &[CommandInfo],
) -> Result<Vec<(String, Vec<String>)>, ProbeFailure> {
    let leaf: Vec<&CommandInfo> = commands.iter().filter(|i| !i.container).collect();
    let mut out: Vec<(String, Vec<String>)> = leaf
        .iter()
        .map(|i| (i.name.clone(), arg_template(i)))
        .collect();
    let candidates: Vec<usize> = leaf
        .iter()
        .enumerate()
        .filter(|(_, c)| c.first_key > 0 || c.flags.iter().any(|f| f == "movablekeys"))
        .map(|(i, _)| i)
        .collect();
    let round1 = ctx
        .conn(addr)
        .await?
        .pipeline(
            &candidates
                .iter()
                .map(|&i| getkeys(&out[i].1))
                .collect::<Vec<_>>(),
        )
        .await?;
    let mut retry: Vec<(usize, Vec<String>)> = Vec::new();
    for (&i, reply) in candidates.iter().zip(&round1) {
        let Some(keys) = string_list(reply) else {
            continue;
        };
        let ones = keys.iter().filter(|k| *k == "1").count();
        if ones == 0 {
            continue;
        }
        let fixed = out[i].0.split('|').count();
        let mut t = out[i].1.clone();
        let mut left = ones;
        for pos in (fixed..t.len()).rev() {
            if left == 0 {
                break;
            }
            if t[pos] == "1" {
                t[pos] = KEY_MARK.to_string();
                left -= 1;
            }
        }
        retry.push((i, t));
    }
    if !retry.is_empty() {
        let round2 = ctx
            .conn(addr)
            .await?
            .pipeline(&retry.iter().map(|(_, t)| getkeys(t)).collect::<Vec<_>>())
            .await?;
        for ((i, t), reply) in retry.into_iter().zip(&round2) {
            let ok = string_list(reply)
                .is_some_and(|keys| !keys.is_empty() && keys.iter().all(|k| k == GETKEYS_MARK));
            if ok {
                out[i].1 = t;
            }
        }
    }
    Ok(out)
}

fn string_list(f: &Frame) -> Option<Vec<String>> {
    match f {
        Frame::Array(a) => a.iter().map(as_text).collect(),
        _ => None,
    }
}

fn fingerprint(salt: &[u8; 32], hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(hash.as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// Replaces `#<sha256>` password hashes in an ACL LIST line by salted
/// fingerprints (`#fp:<16 hex>`).
pub(crate) fn redact_rule(line: &str, salt: &[u8; 32]) -> String {
    line.split(' ')
        .map(|w| match w.strip_prefix('#') {
            Some(h) if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) => {
                format!("#fp:{}", fingerprint(salt, h))
            }
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses `ACL GETUSER` (Redis 7 map form).
pub(crate) fn parse_getuser(
    name: &str,
    f: &Frame,
    rule: &str,
    salt: &[u8; 32],
) -> Result<AclUser, String> {
    if matches!(f, Frame::Nil) {
        return Err("user vanished between ACL USERS and ACL GETUSER".into());
    }
    let mut u = AclUser {
        name: name.to_string(),
        flags: Vec::new(),
        password_count: 0,
        password_fingerprints: Vec::new(),
        commands: String::new(),
        keys: String::new(),
        channels: String::new(),
        selectors: Vec::new(),
        rule: rule.to_string(),
    };
    let mut saw_flags = false;
    for (k, v) in map_pairs(f)? {
        match k.as_str() {
            "flags" => {
                u.flags = string_list(v).ok_or("flags is not a list")?;
                saw_flags = true;
            }
            "passwords" => {
                let hashes = string_list(v).ok_or("passwords is not a list")?;
                u.password_count = hashes.len();
                u.password_fingerprints = hashes.iter().map(|h| fingerprint(salt, h)).collect();
            }
            "commands" => u.commands = as_text(v).unwrap_or_default(),
            "keys" => u.keys = as_text(v).unwrap_or_default(),
            "channels" => u.channels = as_text(v).unwrap_or_default(),
            "selectors" => {
                // Each selector as ACL LIST writes it: `(commands keys
                // channels)`; its key patterns extend the DRYRUN sample.
                if let Frame::Array(sel) = v {
                    u.selectors = sel
                        .iter()
                        .map(|s| match map_pairs(s) {
                            Ok(fields) => {
                                let get = |k: &str| {
                                    fields
                                        .iter()
                                        .find(|(n, _)| n == k)
                                        .and_then(|(_, f)| as_text(f))
                                        .unwrap_or_default()
                                };
                                format!("({} {} {})", get("commands"), get("keys"), get("channels"))
                            }
                            Err(_) => describe(Some(s)),
                        })
                        .collect();
                }
            }
            _ => {}
        }
    }
    if !saw_flags {
        return Err("no flags in the reply".into());
    }
    Ok(u)
}

/// Summarises `ACL LOG` by reason and user. Objects (keys, channels) are
/// deliberately not kept: a denied key can be a session id.
pub(crate) fn parse_acl_log(f: &Frame) -> Result<AclLogSummary, String> {
    let Frame::Array(entries) = f else {
        return Err(format!("expected an array, got {}", describe(Some(f))));
    };
    let mut by: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for e in entries {
        let mut reason = String::new();
        let mut user = String::new();
        let mut count = 1u64;
        let mut age = u64::MAX;
        for (k, v) in map_pairs(e)? {
            match k.as_str() {
                "reason" => reason = as_text(v).unwrap_or_default(),
                "username" => user = as_text(v).unwrap_or_default(),
                "count" => {
                    if let Frame::Int(i) = v {
                        count = (*i).max(0) as u64;
                    }
                }
                "age-seconds" => {
                    age = as_text(v)
                        .and_then(|t| t.parse::<f64>().ok())
                        .map(|a| a.max(0.0) as u64)
                        .unwrap_or(u64::MAX)
                }
                _ => {}
            }
        }
        let slot = by.entry((reason, user)).or_insert((0, u64::MAX));
        slot.0 += count;
        slot.1 = slot.1.min(age);
    }
    Ok(AclLogSummary {
        entries: entries.len(),
        by_reason_user: by
            .into_iter()
            .map(|((reason, username), (count, age))| AclLogCount {
                reason,
                username,
                count,
                newest_age_seconds: if age == u64::MAX { 0 } else { age },
            })
            .collect(),
    })
}

/// Parses the COMMAND reply (Redis 7: name, arity, flags, first, last, step,
/// categories, tips, key specs, subcommands), flattening subcommands.
pub(crate) fn parse_command_table(f: &Frame) -> Result<Vec<CommandInfo>, String> {
    let Frame::Array(cmds) = f else {
        return Err(format!("expected an array, got {}", describe(Some(f))));
    };
    let mut out = Vec::new();
    for c in cmds {
        parse_command(c, None, &mut out)?;
    }
    if out.is_empty() {
        return Err("empty command table".into());
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn parse_command(
    f: &Frame,
    parent: Option<&str>,
    out: &mut Vec<CommandInfo>,
) -> Result<(), String> {
    let Frame::Array(a) = f else {
        return Err(format!("command entry is {}", describe(Some(f))));
    };
    if a.len() < 7 {
        return Err(format!(
            "command entry has {} fields, expected at least 7",
            a.len()
        ));
    }
    let name = as_text(&a[0])
        .ok_or("command name is not a string")?
        .to_ascii_lowercase();
    let int = |i: usize| match &a[i] {
        Frame::Int(v) => Ok(*v),
        other => Err(format!("{name}: field {i} is {}", describe(Some(other)))),
    };
    let list =
        |i: usize| string_list(&a[i]).ok_or_else(|| format!("{name}: field {i} is not a list"));
    let subs = match a.get(9) {
        Some(Frame::Array(s)) if !s.is_empty() => Some(s),
        _ => None,
    };
    // Subcommands are reported as `parent|sub` already by Redis 7.
    let full = match parent {
        Some(p) if !name.contains('|') => format!("{p}|{name}"),
        _ => name.clone(),
    };
    out.push(CommandInfo {
        name: full.clone(),
        arity: int(1)?,
        flags: list(2)?,
        categories: list(6)?,
        first_key: int(3)?,
        last_key: int(4)?,
        step: int(5)?,
        container: subs.is_some(),
    });
    if let Some(subs) = subs {
        for s in subs {
            parse_command(s, Some(&full), out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Frame {
        Frame::BulkString(s.as_bytes().to_vec())
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
        let s = |t: &str| Frame::BulkString(t.as_bytes().to_vec());
        assert_eq!(verdict(Some(&Frame::Okay)).0, 'A');
        assert_eq!(verdict(Some(&Frame::SimpleString("OK".into()))).0, 'A');
        assert_eq!(
            verdict(Some(&s(
                "This user has no permissions to run the 'set' command"
            )))
            .0,
            'C'
        );
        assert_eq!(
            verdict(Some(&s(
                "This user has no permissions to access the 'foo' key"
            )))
            .0,
            'K'
        );
        assert_eq!(
            verdict(Some(&s(
                "This user has no permissions to access the 'c' channel"
            )))
            .0,
            'H'
        );
        assert_eq!(
            verdict(Some(
                &redis::parse_redis_value(b"-ERR User 'x' not found\r\n").unwrap()
            ))
            .0,
            'E'
        );
        assert_eq!(verdict(Some(&Frame::Int(3))).0, 'E');
        assert_eq!(verdict(None).0, 'E');
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
        let f = Frame::Array(vec![
            bulk("flags"),
            Frame::Array(vec![bulk("on")]),
            bulk("passwords"),
            Frame::Array(vec![bulk(&h)]),
            bulk("commands"),
            bulk("-@all +@read"),
            bulk("keys"),
            bulk("~*"),
            bulk("channels"),
            bulk(""),
            bulk("selectors"),
            Frame::Array(vec![]),
        ]);
        let u = parse_getuser("dev_user", &f, "user dev_user on #fp:x", &[1; 32]).unwrap();
        assert_eq!(u.password_count, 1);
        assert!(!format!("{u:?}").contains(&h));
        assert!(parse_getuser("x", &Frame::Nil, "", &[1; 32]).is_err());
        assert!(parse_getuser("x", &bulk("nope"), "", &[1; 32]).is_err());
        assert!(parse_getuser(
            "x",
            &Frame::Array(vec![bulk("keys"), bulk("~*")]),
            "",
            &[1; 32]
        )
        .is_err());
    }

    #[test]
    fn acl_log_is_summarised_without_objects() {
        let entry = |reason: &str, user: &str, count: i64, obj: &str| {
            Frame::Array(vec![
                bulk("count"),
                Frame::Int(count),
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
        let f = Frame::Array(vec![
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
        let cmd = |name: &str, subs: Vec<Frame>| {
            Frame::Array(vec![
                bulk(name),
                Frame::Int(-2),
                Frame::Array(vec![bulk("admin")]),
                Frame::Int(0),
                Frame::Int(0),
                Frame::Int(0),
                Frame::Array(vec![bulk("@admin")]),
                Frame::Array(vec![]),
                Frame::Array(vec![]),
                Frame::Array(subs),
            ])
        };
        let t = parse_command_table(&Frame::Array(vec![cmd(
            "config",
            vec![cmd("config|get", vec![])],
        )]))
        .unwrap();
        assert_eq!(t.len(), 2);
        assert!(t[0].container && t[0].name == "config");
        assert_eq!(t[1].name, "config|get");
        assert!(parse_command_table(&Frame::Array(vec![bulk("x")])).is_err());
        assert!(parse_command_table(&Frame::Array(vec![])).is_err());
    }
}
