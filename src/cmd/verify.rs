//! `epic-audit verify`: a signed run directory or a quarterly archive.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::UsageError;

/// Verifies `path` (a run directory or an export archive) against the
/// public key in `pubkey`: 0 valid, 1 invalid. Acknowledgements of gaps
/// in a directory of runs must be signed by `ack_pubkey`, else by the
/// environment's `acknowledgement_pubkeys` in `cli`'s config, else by
/// `pubkey`.
pub(crate) fn verify(
    cli: &crate::cli::Cli,
    path: &Path,
    pubkey: &Path,
    ack_pubkey: &[PathBuf],
) -> Result<u8> {
    let key = crate::sign::load_public(pubkey)?;
    if !path.exists() {
        return Err(UsageError(format!(
            "{}: no such run directory, directory of runs or export archive",
            path.display()
        ))
        .into());
    }
    if path.is_file() {
        return verify_archive_cmd(path, &key);
    }
    if !path.join(crate::run::ENVELOPE).is_file() {
        let env = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let config = cli.optional_config()?;
        let ack_keys = super::shared::ack_pubkeys(ack_pubkey, config.as_ref(), &env)?;
        return verify_runs(path, &key, ack_keys.as_deref());
    }
    match crate::run::verify(path, &key) {
        Ok(v) => {
            println!(
                "VALID: {} files signed by {} key {} ({} run {}, verdict {})",
                v.files.len(),
                key.algorithm(),
                v.key_id,
                v.predicate["environment"].as_str().unwrap_or("?"),
                v.predicate["run_id"].as_str().unwrap_or("?"),
                v.predicate["verdict"].as_str().unwrap_or("?")
            );
            Ok(0)
        }
        Err(problems) => {
            println!("INVALID: {}", path.display());
            for p in problems {
                println!("  {p}");
            }
            Ok(1)
        }
    }
}

/// An environment's directory of runs (`reports/<env>`): every signed run
/// verified, then the chain between them.
fn verify_runs(
    base: &Path,
    key: &crate::sign::PublicKey,
    ack_keys: Option<&[crate::sign::PublicKey]>,
) -> Result<u8> {
    let not_runs = || {
        UsageError(format!(
            "{} has no {}: neither a signed run directory nor a directory of signed runs",
            base.display(),
            crate::run::ENVELOPE
        ))
    };
    let env = base
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .ok_or_else(not_runs)?;
    let members = crate::run::chain::members(base, &env).map_err(|_| not_runs())?;
    if members.is_empty() {
        return Err(not_runs().into());
    }
    let mut bad = 0;
    for m in &members {
        let mut place = match &m.link {
            Some(l) => format!("run {}", l.sequence),
            None => "before chaining".to_string(),
        };
        if let Some(o) = &m.observed_run_id {
            place.push_str(&format!(", re-evaluation of observed run {o}"));
        }
        match crate::run::verify(&base.join(&m.dir), key) {
            Ok(v) => println!("  {} ({place}): valid ({} files)", m.dir, v.files.len()),
            Err(problems) => {
                bad += 1;
                println!("  {} ({place}): INVALID", m.dir);
                for p in problems {
                    println!("    {p}");
                }
            }
        }
    }
    let scope: Vec<String> = members.iter().map(|m| m.dir.clone()).collect();
    let keys = crate::run::chain::AckKeys::of(ack_keys, key);
    let chain = crate::run::chain::status(base, &env, keys, &members, &scope);
    for b in &chain.unacknowledged {
        println!("  CHAIN BROKEN: {b}");
    }
    for line in crate::export::chain_summary(&chain) {
        println!("  chain: {line}");
    }
    let ok = bad == 0 && chain.unacknowledged.is_empty();
    println!(
        "{}: {} run(s) of `{env}` in {} ({} invalid, {} chain break(s) not acknowledged)",
        if ok { "VALID" } else { "INVALID" },
        members.len(),
        base.display(),
        bad,
        chain.unacknowledged.len()
    );
    Ok(if ok { 0 } else { 1 })
}

fn verify_archive_cmd(path: &Path, key: &crate::sign::PublicKey) -> Result<u8> {
    match crate::export::verify_archive(path, key) {
        Ok(v) => {
            let bad = v.runs.iter().filter(|(_, r)| r.is_err()).count();
            println!(
                "{}: archive {} · {} files signed by key {} ({} {}, {} run(s))",
                if bad == 0 { "VALID" } else { "INVALID" },
                path.display(),
                v.outer.files.len(),
                v.outer.key_id,
                v.outer.predicate["environment"].as_str().unwrap_or("?"),
                v.outer.predicate["quarter"].as_str().unwrap_or("?"),
                v.runs.len()
            );
            for (dir, r) in &v.runs {
                match r {
                    Ok(rv) => println!(
                        "  run {dir}: valid ({} files, verdict {})",
                        rv.files.len(),
                        rv.predicate["verdict"].as_str().unwrap_or("?")
                    ),
                    Err(problems) => {
                        println!("  run {dir}: INVALID");
                        for p in problems {
                            println!("    {p}");
                        }
                    }
                }
            }
            Ok(if bad == 0 { 0 } else { 1 })
        }
        Err(crate::export::ArchiveError::Unreadable(e)) => Err(UsageError(format!(
            "{} is neither a run directory nor a readable export archive: {e}",
            path.display()
        ))
        .into()),
        Err(crate::export::ArchiveError::Invalid(problems)) => {
            println!("INVALID: {}", path.display());
            for p in problems {
                println!("  {p}");
            }
            Ok(1)
        }
    }
}
