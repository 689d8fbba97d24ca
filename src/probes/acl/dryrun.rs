//! The ACL DRYRUN sweep: every command and subcommand of the COMMAND
//! table, per policy user, with arguments that satisfy its arity and
//! sample keys at its key positions; and the policy's explicit cases.

use std::collections::BTreeMap;

use crate::config::NodeAddr;
use crate::evidence::{
    dryrun_sample_keys, AclUser, CaseResult, CommandInfo, DryRunError, DryRunLetters,
    DryRunVerdict, ProbeFailure,
};
use crate::probes::scaffold::ProbeContext;

use super::replies::*;

/// What one DRYRUN sweep found.
pub(crate) struct Sweep {
    pub(crate) dryrun: BTreeMap<String, BTreeMap<String, DryRunLetters>>,
    pub(crate) dryrun_errors: Vec<DryRunError>,
    pub(crate) calls: usize,
    pub(crate) cases: Vec<CaseResult>,
    pub(crate) dryrun_keys: BTreeMap<String, Vec<String>>,
}

/// The DRYRUN sweep on one node, over its shared connection (taken for
/// one pipeline at a time): every command of its COMMAND table for each
/// swept user, then the policy's cases.
pub(crate) async fn sweep(
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
                full.extend(template.iter().enumerate().map(|(i, a)| {
                    if a == KEY_MARK {
                        key.as_bytes().to_vec()
                    } else if i == 0 {
                        current_name(ctx, a).as_bytes().to_vec()
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
            let mut v = DryRunLetters::default();
            for _ in 0..tries {
                let (verdict, reply) = verdict(it.next());
                let reply = renamed_hint(reply);
                if verdict == DryRunVerdict::Error {
                    dryrun_errors.push(DryRunError {
                        user: user.clone(),
                        command: name.clone(),
                        reply,
                    });
                }
                v.push(verdict);
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
                full.extend(
                    k.command
                        .split_whitespace()
                        .enumerate()
                        .map(|(i, w)| if i == 0 { current_name(ctx, w) } else { w })
                        .map(|w| w.as_bytes().to_vec()),
                );
                full
            })
            .collect();
        calls += cmds.len();
        let replies = ctx.conn(addr).await?.pipeline(&cmds).await?;
        for (k, f) in ctx.inputs.dryrun_cases.iter().zip(&replies) {
            let (letter, reply) = verdict(Some(f));
            let reply = renamed_hint(reply);
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

/// The name a command has on the nodes: CONFIG under the environment's
/// `config_command` (ACL DRYRUN looks a renamed command up by its new
/// name, while ACL rules and the verdicts keep the original one).
fn current_name<'a>(ctx: &'a ProbeContext, word: &'a str) -> &'a str {
    if word.eq_ignore_ascii_case("config") {
        &ctx.config_command
    } else {
        word
    }
}

/// A DRYRUN reply saying the node does not know a command (`ERR Command
/// 'CONFIG' not found`), with what that usually means and how to audit it.
fn renamed_hint(reply: String) -> String {
    if reply.contains("Command '") && reply.contains("not found") {
        format!(
            "{reply}: the command is renamed or disabled on the node (rename-command); where CONFIG \
             is renamed, set config_command in the environment to its new name"
        )
    } else {
        reply
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

pub(crate) fn fill(template: &[String], key: &str) -> Vec<Vec<u8>> {
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
pub(crate) const GETKEYS_MARK: &str = "epic-audit-getkeys-marker";

pub(crate) fn getkeys(template: &[String]) -> Vec<Vec<u8>> {
    let mut full = words(&["COMMAND", "GETKEYS"]);
    full.extend(fill(template, GETKEYS_MARK));
    full
}

/// Argument templates for every (sub)command. Commands with movable keys
/// (or extra keys behind a `numkeys`) get their key positions from COMMAND
/// GETKEYS: keys the server extracts that are still `1` are turned into key
/// positions, from the end, and kept only if GETKEYS then extracts exactly
/// the sample key. GETKEYS is read-only.
pub(crate) async fn key_templates(
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
