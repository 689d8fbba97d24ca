//! `epic-audit export`: one quarter of signed runs in one signed archive.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::shared::env_signer;
use super::stored::{config_env, fetch_chain};
use crate::cli::{Cli, UsageError};
use crate::output::OutputError;
use crate::store::StoreUrl;

/// Where an export reads runs from and keeps its archive.
pub(crate) struct Stores<'a> {
    /// Read the runs from this store instead of the reports directory.
    pub from: Option<&'a StoreUrl>,
    /// Keep the archive in this store (default: the environment's
    /// `evidence_store`).
    pub keep: Option<&'a StoreUrl>,
}

/// Exports `env`'s runs of `quarter`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn export(
    cli: &Cli,
    env: &str,
    quarter: crate::export::Quarter,
    out: Option<&Path>,
    reports: &Path,
    pubkey: Option<&Path>,
    ack_pubkey: &[PathBuf],
    signing_key: Option<PathBuf>,
    exclude_unverified: bool,
    stores: Stores<'_>,
) -> Result<u8> {
    use crate::export::ExportError;
    let config = cli.optional_config()?;
    let env_conf = config_env(config.as_ref(), env);
    if !reports.is_dir() && stores.from.is_none() {
        return Err(UsageError(format!(
            "--reports {}: no such directory (the directory holding <env>/<run> directories; \
             `epic-audit run` writes them under reports/)",
            reports.display()
        ))
        .into());
    }
    let signer = env_signer(config.as_ref(), env, signing_key, "the export")?;
    let run_key = match pubkey {
        Some(p) => crate::sign::load_public(p)?,
        None => signer.public_key().clone(),
    };
    let ack_keys = super::shared::ack_pubkeys(ack_pubkey, config.as_ref(), env)?;
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| reports.join(format!("export-{env}-{quarter}.tar.gz")));
    if out.exists() {
        return Err(OutputError::Exists(out).into());
    }
    // Runs from the store are fetched into a scratch reports directory
    // (every manifest, for the chain; every file of the quarter's runs;
    // the acknowledgements) and exported from there like local runs.
    let scratch = match stores.from {
        Some(url) => {
            let (scratch, n) = fetch_chain(url, env_conf, env, &|t| quarter.contains(t))?;
            println!(
                "fetched {n} run(s) of `{env}` in {quarter} from {url} (and every stored manifest, for the chain)"
            );
            Some(scratch)
        }
        None => None,
    };
    let source = scratch.as_ref().map_or(reports, |s| s.0.as_path());
    let req = crate::export::ExportRequest {
        env,
        quarter,
        reports_dir: source,
        out: &out,
        exclude_unverified,
        now: chrono::Utc::now(),
        ack_keys: ack_keys.as_deref(),
    };
    match crate::export::export(&req, &signer, &run_key) {
        Ok(x) => {
            // Each observation once, its re-evaluations under it.
            let mut ids: Vec<&str> = Vec::new();
            for r in &x.runs {
                let id = r.observed_run_id.as_deref().unwrap_or(&r.run_id);
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            let reevaluations = x
                .runs
                .iter()
                .filter(|r| r.observed_run_id.is_some())
                .count();
            println!(
                "exported {} run(s) of `{env}` in {quarter} ({} to {}): {} observation(s), {reevaluations} re-evaluation(s):",
                x.runs.len(),
                quarter.start().format("%Y-%m-%d"),
                (quarter.end() - chrono::Duration::days(1)).format("%Y-%m-%d"),
                ids.len(),
            );
            let line = |r: &crate::report::history::RunEntry| {
                format!(
                    "{} {} verdict {} · {}",
                    r.dir,
                    r.started_at.format("%Y-%m-%d %H:%M:%SZ"),
                    r.verdict,
                    r.verification
                )
            };
            for id in ids {
                match x
                    .runs
                    .iter()
                    .find(|r| r.observed_run_id.is_none() && r.run_id == id)
                {
                    Some(o) => println!("  {}", line(o)),
                    None => println!("  observation {id} (its own run is not in this export):"),
                }
                for r in x
                    .runs
                    .iter()
                    .filter(|r| r.observed_run_id.as_deref() == Some(id))
                {
                    println!("    re-evaluation {}", line(r));
                }
            }
            for r in &x.excluded {
                println!("  EXCLUDED {}: {}", r.dir, r.verification);
            }
            for line in &x.chain {
                println!("chain: {line}");
            }
            println!(
                "archive: {} (signed, Ed25519 key id {}); check it with `epic-audit verify {} --pubkey PUBLIC_KEY`",
                x.path.display(),
                x.key_id,
                x.path.display()
            );
            Ok(super::stored::keep_file(
                stores.keep,
                env_conf,
                env,
                crate::store::EXPORTS,
                &x.path,
                "archive",
            ))
        }
        Err(e @ (ExportError::Unverified(_) | ExportError::ChainBroken { .. })) => {
            eprintln!("epic-audit: {e}");
            Ok(1)
        }
        Err(e @ ExportError::NoRuns { .. }) => Err(UsageError(e.to_string()).into()),
        Err(ExportError::Io(e)) => Err(anyhow::anyhow!("writing the export: {e}")),
    }
}
