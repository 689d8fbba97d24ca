//! Writing a run: every file of it, signed, into its directory atomically
//! (see [`crate::output`]), with the changes since the previous run of the
//! environment in its report, and its session-hash salt beside it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::find::previous_report;
use super::layout;
use crate::evidence::EvidenceSet;
use crate::output;
use crate::policy::Policy;
use crate::report::Report;

/// A run written to disk.
pub(crate) struct Written {
    /// Its directory.
    pub dir: PathBuf,
    /// Its report, as written.
    pub report: Report,
    /// What keeping it in the evidence store did (none configured: `None`).
    pub stored: Option<Stored>,
}

/// What keeping a run in the evidence store did.
pub(crate) enum Stored {
    /// Stored and read back: where, and how.
    Yes(String),
    /// Not stored, and that is no error (an unsigned run is not evidence).
    Skipped(String),
    /// Storing failed: the run is kept locally only, and the command
    /// exits non-zero.
    Failed(String),
}

impl Written {
    /// The exit code of the command that wrote it: the report's, unless
    /// storing it failed (then a runtime error, 4).
    pub(crate) fn exit_code(&self) -> u8 {
        match self.stored {
            Some(Stored::Failed(_)) => crate::report::EXIT_RUNTIME,
            _ => self.report.exit_code,
        }
    }
}

/// Every file of a run but the signature, as (name, bytes): the one list
/// of what a run holds.
pub(crate) fn contents(
    evidence: &EvidenceSet,
    report: &Report,
    policy: &Policy,
) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let ev_json = serde_json::to_string_pretty(evidence).context("serialising evidence")? + "\n";
    Ok(vec![
        (layout::EVIDENCE, ev_json.into_bytes()),
        (layout::REPORT_JSON, report.to_json().into_bytes()),
        (
            layout::JUNIT,
            crate::report::junit::render(report).into_bytes(),
        ),
        (
            layout::REPORT_MD,
            crate::report::markdown::render(report).into_bytes(),
        ),
        (
            layout::REPORT_HTML,
            crate::report::html::render(report, evidence).into_bytes(),
        ),
        (
            layout::SARIF,
            crate::report::sarif::render(report, &|id| {
                policy
                    .get(id)
                    .map(|c| c.rationale.clone())
                    .unwrap_or_default()
            })
            .into_bytes(),
        ),
        (
            layout::OSCAL,
            crate::report::oscal::render(
                report,
                evidence,
                &|id| policy.probes_of(id),
                layout::EVIDENCE,
            )
            .into_bytes(),
        ),
    ])
}

/// Writes a judged run (evidence, reports, OSCAL, SARIF, signature) to
/// `dest`, printing nothing. A signed run's place in its environment's
/// chain is `link` (read from the evidence store), else after the newest
/// chained run beside `dest`.
pub(crate) fn write(
    dest: &Path,
    evidence: &EvidenceSet,
    mut report: Report,
    policy: &Policy,
    signer: Option<&crate::sign::RunSigner>,
    prom: Option<&Path>,
    link: Option<super::chain::Link>,
) -> Result<Written> {
    report.signature = match signer {
        Some(s) => format!(
            "DSSE envelope {} (in-toto Statement, {} key id {}; the same as a Sigstore bundle in {})",
            layout::ENVELOPE,
            s.public_key().algorithm(),
            s.key_id(),
            layout::BUNDLE
        ),
        None => crate::report::UNSIGNED.into(),
    };
    // Changes since the previous run of this environment next to this one.
    if let Some(base) = dest.parent() {
        if let Some(prev) = previous_report(base, &report.environment, dest) {
            let d = crate::report::diff::diff(&prev, &report);
            report.previous = Some(crate::report::diff::summary(&prev, &d));
        }
    }
    let mut files = contents(evidence, &report, policy)?;
    if let Some(s) = signer {
        let counts: std::collections::BTreeMap<String, usize> = report
            .counts
            .iter()
            .map(|(o, n)| (o.to_string(), *n))
            .collect();
        let predicate = serde_json::json!({
            "environment": report.environment,
            "run_id": report.run_id,
            "tool": {"name": report.tool.name, "version": report.tool.version},
            "policy": {"source": report.policy.source, "sha256": report.policy.digest},
            "started_at": report.started_at,
            "finished_at": report.finished_at,
            "counts": counts,
            "verdict": report.verdict,
            "exit_code": report.exit_code,
            // A re-evaluation names the run that observed, and when it
            // judged (its place in the chain's time order).
            "reevaluation": report.reevaluation.as_ref().map(|r| serde_json::json!({
                "observed_run_id": r.observed_run_id,
                "evaluated_at": r.evaluated_at,
            })),
            // Its place in the environment's chain of signed runs.
            "chain": link.or_else(|| dest
                .parent()
                .map(|base| super::chain::next(base, &report.environment))),
        });
        let envelope = s.envelope(&files, predicate)?;
        let bytes = serde_json::to_vec_pretty(&envelope).context("serialising the envelope")?;
        files.push((layout::ENVELOPE, bytes));
        let bundle = serde_json::to_vec_pretty(&crate::sign::sigstore_bundle(&envelope))
            .context("serialising the bundle")?;
        files.push((layout::BUNDLE, bundle));
    }
    let dir = output::write_run(dest, &files)?;
    if let Some(p) = prom {
        output::write_file_atomic(p, crate::report::prom::render(&report).as_bytes())?;
    }
    Ok(Written {
        dir,
        report,
        stored: None,
    })
}

/// Writes the run's salt next to (not inside) the run directory, 0600: an
/// operator can map a reported hash back to a key name with it
/// (`printf %s KEY | openssl dgst -sha256 -mac HMAC -macopt hexkey:$(cat FILE)`,
/// first 12 hex digits); the report itself never holds it.
pub(crate) fn write_salt(dest: &Path, salt: &[u8]) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let file = layout::salt_path(dest);
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .with_context(|| format!("writing the session-hash salt {}", file.display()))?;
    f.write_all(format!("{}\n", hex::encode(salt)).as_bytes())?;
    Ok(file)
}
