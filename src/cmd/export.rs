//! `epic-audit export`: one quarter of signed runs in one signed archive.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::shared::env_signer;
use crate::cli::{Cli, UsageError};
use crate::output::OutputError;

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
) -> Result<u8> {
    use crate::export::ExportError;
    let signer = env_signer(cli, env, signing_key, "the export")?;
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
    let req = crate::export::ExportRequest {
        env,
        quarter,
        reports_dir: reports,
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
            Ok(0)
        }
        Err(e @ (ExportError::Unverified(_) | ExportError::ChainBroken { .. })) => {
            eprintln!("epic-audit: {e}");
            Ok(1)
        }
        Err(e @ ExportError::NoRuns { .. }) => Err(UsageError(e.to_string()).into()),
        Err(ExportError::Io(e)) => Err(anyhow::anyhow!("writing the export: {e}")),
    }
}
