//! `epic-audit acknowledge`: a signed record that runs are missing from
//! an environment's chain, and why.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::shared::env_signer;
use crate::cli::{Cli, UsageError};
use crate::run::chain::Acknowledgement;

/// Signs an acknowledgement of the missing runs `missing` (`N` or `N-M`)
/// of `env` under `reports`.
pub(crate) fn acknowledge(
    cli: &Cli,
    env: &str,
    missing: &str,
    reason: &str,
    reports: &Path,
    signing_key: Option<PathBuf>,
    store: Option<&crate::store::StoreUrl>,
) -> Result<u8> {
    let bad = || {
        UsageError(format!(
            "--missing {missing:?}: write a run number (5) or a range (5-7)"
        ))
    };
    let (from, to) = match missing.split_once('-') {
        Some((a, b)) => (
            a.trim().parse::<u64>().map_err(|_| bad())?,
            b.trim().parse::<u64>().map_err(|_| bad())?,
        ),
        None => {
            let n = missing.trim().parse::<u64>().map_err(|_| bad())?;
            (n, n)
        }
    };
    if from == 0 || to < from {
        return Err(bad().into());
    }
    if reason.trim().is_empty() {
        return Err(UsageError("--reason is empty: say why the runs are missing".into()).into());
    }
    let signer = env_signer(cli, env, signing_key, "an acknowledgement")?;
    let base = crate::run::env_dir(reports, env);
    let ack = Acknowledgement {
        environment: env.to_string(),
        missing_from: from,
        missing_to: to,
        reason: reason.trim().to_string(),
        acknowledged_at: chrono::Utc::now(),
    };
    let path = crate::run::chain::acknowledge(&base, &ack, &signer)
        .map_err(|e| UsageError(format!("cannot write the acknowledgement: {e:#}")))?;
    println!(
        "acknowledged: run(s) {from} to {to} of `{env}` missing: {} (signed by key {})",
        ack.reason,
        signer.key_id()
    );
    println!("record: {}", path.display());
    let env_conf = super::stored::config_env(&cli.config, env);
    Ok(super::stored::keep_file(
        store,
        env_conf.as_ref(),
        env,
        crate::run::ACKNOWLEDGEMENTS,
        &path,
        "record",
    ))
}
