//! `epic-audit export`: one quarter of signed runs in one signed archive.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::shared::env_signer;
use super::stored::{config_env, open};
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

/// A directory removed when dropped (the runs fetched from a store).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
    signing_key: Option<PathBuf>,
    exclude_unverified: bool,
    stores: Stores<'_>,
) -> Result<u8> {
    use crate::export::ExportError;
    let signer = env_signer(cli, env, signing_key, "the export")?;
    let env_conf = config_env(&cli.config, env);
    let run_key = match pubkey {
        Some(p) => crate::sign::load_public(p)?,
        None => signer.public_key().clone(),
    };
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
            let dir = std::env::temp_dir().join(format!(
                "epic-audit-export-{}-{}",
                std::process::id(),
                chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
            ));
            let scratch = Scratch(dir);
            let store = crate::aws::block_on(open(url.clone(), env_conf.as_ref()));
            let n =
                crate::aws::block_on(store.fetch_env(env, &scratch.0, &|t| quarter.contains(t)))
                    .map_err(|e| anyhow::anyhow!("reading the runs of `{env}` from {url}: {e}"))?;
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
    };
    match crate::export::export(&req, &signer, &run_key) {
        Ok(x) => {
            println!(
                "exported {} run(s) of `{env}` in {quarter} ({} to {}):",
                x.runs.len(),
                quarter.start().format("%Y-%m-%d"),
                (quarter.end() - chrono::Duration::days(1)).format("%Y-%m-%d")
            );
            for r in &x.runs {
                println!(
                    "  {} {} verdict {} · {}",
                    r.dir,
                    r.started_at.format("%Y-%m-%d %H:%M:%SZ"),
                    r.verdict,
                    r.verification
                );
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
                env_conf.as_ref(),
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
