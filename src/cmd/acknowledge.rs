//! `epic-audit acknowledge`: a signed record that runs are missing from
//! an environment's chain, and why, bound to the signed runs around the
//! gap as they are now.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::shared::env_signer;
use super::stored::{config_env, fetch_chain, store_url};
use crate::cli::{Cli, UsageError};
use crate::run::chain::{gap_to_acknowledge, Acknowledgement, Break};

/// The most run numbers one acknowledgement may name.
const MOST_RUNS: u64 = 10_000;

/// Signs an acknowledgement of the missing runs `missing` (`N` or `N-M`)
/// of `env`, which must be a whole gap of the chain under `reports` (or in
/// the evidence store, when one is named).
pub(crate) fn acknowledge(
    cli: &Cli,
    env: &str,
    missing: &str,
    reason: &str,
    reports: &Path,
    signing_key: Option<PathBuf>,
    store: Option<&crate::store::StoreUrl>,
) -> Result<u8> {
    let (from, to) = missing_range(missing)?;
    if reason.trim().is_empty() {
        return Err(UsageError("--reason is empty: say why the runs are missing".into()).into());
    }
    let config = cli.optional_config()?;
    let env_conf = config_env(config.as_ref(), env);
    let signer = env_signer(config.as_ref(), env, signing_key, "an acknowledgement")?;
    let base = crate::run::env_dir(reports, env);
    // The chain the record is judged against: the store's, where `export
    // --from` reads it, else the reports directory's.
    let url = store_url(store, env_conf);
    let (scratch, chain_dir, where_) = match &url {
        Some(u) => {
            let (s, _) = fetch_chain(u, env_conf, env, &|_| false)?;
            let dir = crate::run::env_dir(&s.0, env);
            (Some(s), dir, format!("the evidence store {u}"))
        }
        None => (None, base.clone(), base.display().to_string()),
    };
    let members = match crate::run::chain::members(&chain_dir, env) {
        Ok(m) if !m.is_empty() => m,
        _ => {
            return Err(UsageError(format!(
                "no signed run of `{env}` in {where_}: there is no chain to acknowledge a gap in \
                 (--reports names the directory holding <env>/<run> directories)"
            ))
            .into())
        }
    };
    let gap = gap_to_acknowledge(&members, from, to).map_err(|e| {
        UsageError(format!(
            "--missing {missing}: {e} (chain of `{env}` in {where_})"
        ))
    })?;
    drop(scratch);
    let ack = Acknowledgement::of_gap(&gap, env, reason.trim(), chrono::Utc::now())
        .ok_or_else(|| UsageError(format!("--missing {missing}: not a gap of the chain")))?;
    let path = crate::run::chain::acknowledge(&base, &ack, &signer)
        .map_err(|e| UsageError(format!("cannot write the acknowledgement: {e:#}")))?;
    let between = match &gap {
        Break::Missing { after, before, .. } => match after {
            Some(a) => format!(
                "between run {} ({}) and run {} ({})",
                a.sequence, a.dir, before.sequence, before.dir
            ),
            None => format!(
                "before run {} ({}), the first signed run",
                before.sequence, before.dir
            ),
        },
        _ => String::new(),
    };
    println!(
        "acknowledged: run(s) {from} to {to} of `{env}` missing {between}: {} (signed by key {})",
        ack.reason,
        signer.key_id()
    );
    println!("record: {}", path.display());
    Ok(super::stored::keep_file(
        url.as_ref(),
        env_conf,
        env,
        crate::run::ACKNOWLEDGEMENTS,
        &path,
        "record",
    ))
}

/// `N` or `N-M` as (N, M): whole run numbers from 1, in order, at most
/// [`MOST_RUNS`] of them.
fn missing_range(missing: &str) -> Result<(u64, u64), UsageError> {
    let bad = |why: &str| {
        UsageError(format!(
            "--missing {missing:?}: {why}; write the run number (5) or range (5-7) `verify` names"
        ))
    };
    let num = |t: &str| t.trim().parse::<u64>().map_err(|_| bad("not a run number"));
    let (from, to) = match missing.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let n = num(missing)?;
            (n, n)
        }
    };
    if from == 0 || to < from {
        return Err(bad("runs are numbered from 1, and a range goes upwards"));
    }
    if to - from >= MOST_RUNS {
        return Err(bad(&format!(
            "a range of more than {MOST_RUNS} runs is not a gap anyone lost"
        )));
    }
    Ok((from, to))
}
