//! The commands the access probe sends and how it reads their replies:
//! ACL GETUSER (rules redacted to salted password fingerprints), ACL LOG
//! (counts only), the COMMAND table, and DRYRUN verdicts.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::evidence::{
    AclLogCount, AclLogSummary, AclUser, CommandInfo, DryRunVerdict, FailureKind, ProbeFailure,
};
use crate::resp::{as_text, describe, error_text, map_pairs};

pub(crate) fn method(user: &str) -> String {
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

pub(crate) fn words(ws: &[&str]) -> Vec<Vec<u8>> {
    ws.iter().map(|w| w.as_bytes().to_vec()).collect()
}

pub(crate) fn failure(kind: FailureKind, message: String) -> ProbeFailure {
    ProbeFailure { kind, message }
}

/// `CMD: REPLY` of a refused command, or the connection error.
pub(crate) fn reply_of(e: &crate::resp::ConnError) -> String {
    match e {
        crate::resp::ConnError::Server { cmd, reply, .. } => format!("{cmd}: {reply}"),
        e => e.to_string(),
    }
}

pub(crate) fn reply_text(r: Result<redis::Value, crate::resp::ConnError>) -> String {
    match r {
        Ok(f) => as_text(&f).unwrap_or_else(|| describe(Some(&f))),
        Err(crate::resp::ConnError::Server { reply, .. }) => reply,
        Err(e) => e.to_string(),
    }
}

/// The DRYRUN verdict letter and the reply text.
pub(crate) fn verdict(f: Option<&redis::Value>) -> (DryRunVerdict, String) {
    match f {
        Some(
            f @ (redis::Value::Okay | redis::Value::SimpleString(_) | redis::Value::BulkString(_)),
        ) => {
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
        Some(redis::Value::ServerError(e)) => (DryRunVerdict::Error, error_text(e)),
        other => (DryRunVerdict::Error, describe(other)),
    }
}

pub(crate) fn string_list(f: &redis::Value) -> Option<Vec<String>> {
    match f {
        redis::Value::Array(a) => a.iter().map(as_text).collect(),
        _ => None,
    }
}

pub(crate) fn fingerprint(salt: &[u8; 32], hash: &str) -> String {
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
    f: &redis::Value,
    rule: &str,
    salt: &[u8; 32],
) -> Result<AclUser, String> {
    if matches!(f, redis::Value::Nil) {
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
                if let redis::Value::Array(sel) = v {
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
pub(crate) fn parse_acl_log(f: &redis::Value) -> Result<AclLogSummary, String> {
    let redis::Value::Array(entries) = f else {
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
                    if let redis::Value::Int(i) = v {
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
pub(crate) fn parse_command_table(f: &redis::Value) -> Result<Vec<CommandInfo>, String> {
    let redis::Value::Array(cmds) = f else {
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

pub(crate) fn parse_command(
    f: &redis::Value,
    parent: Option<&str>,
    out: &mut Vec<CommandInfo>,
) -> Result<(), String> {
    let redis::Value::Array(a) = f else {
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
        redis::Value::Int(v) => Ok(*v),
        other => Err(format!("{name}: field {i} is {}", describe(Some(other)))),
    };
    let list =
        |i: usize| string_list(&a[i]).ok_or_else(|| format!("{name}: field {i} is not a list"));
    let subs = match a.get(9) {
        Some(redis::Value::Array(s)) if !s.is_empty() => Some(s),
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
