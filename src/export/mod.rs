//! The quarterly evidence export: every signed run of one environment in a
//! calendar quarter, each verified, packed into one signed `.tar.gz` with a
//! control-by-control history, the waivers that applied and an index page.
//!
//! Archive layout (one top directory, `epic-audit-<env>-<quarter>/`):
//!
//! ```text
//! runs/<run-dir>/...     each run directory, byte for byte (with its own manifest)
//! history.json           per check: outcome in every run, first failure, fix date
//! safeguards.json        per HIPAA provision: its status in every run (same rules as each report)
//! waivers.json           waivers in force during the quarter, and what they waived
//! export.json            environment, quarter, runs, how each was verified, exclusions
//! index.html             the above for people (self-contained)
//! manifest.dsse.json     DSSE envelope over every other file (in-toto Statement)
//! ```
//!
//! `epic-audit verify ARCHIVE --pubkey K` checks the archive's envelope and
//! every digest, then every run's own envelope.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::checks::Outcome;
use crate::report::history::{history, safeguard_history, waiver_uses, RunEntry};
use crate::report::Report;
use crate::run::chain::AckFile;
use crate::sign::{PublicKey, RunSigner, BUNDLE, ENVELOPE};

mod archive;
mod quarter;

pub use archive::{unpack, verify_archive, ArchiveError, ArchiveVerified};
pub use quarter::{quarter_of, Quarter};

/// Predicate type of an export's in-toto Statement.
pub(crate) const PREDICATE_TYPE: &str = "https://epic-audit.invalid/predicate/quarterly-export/v1";

/// What an export wrote.
#[derive(Debug)]
pub(crate) struct Exported {
    /// The archive.
    pub path: PathBuf,
    /// Runs included.
    pub runs: Vec<RunEntry>,
    /// Runs left out (with `--exclude-unverified`) and why.
    pub excluded: Vec<RunEntry>,
    /// Key id of the signer.
    pub key_id: String,
    /// The chain of runs, in sentences.
    pub chain: Vec<String>,
}

/// Why an export was not written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExportError {
    /// Nothing to export.
    #[error("no run of environment `{env}` started in {quarter} ({from} to {to}) under {dir}")]
    NoRuns {
        /// Environment.
        env: String,
        /// Quarter.
        quarter: Quarter,
        /// Start.
        from: String,
        /// End.
        to: String,
        /// Where runs were looked for.
        dir: String,
    },
    /// Some runs do not verify.
    #[error("{} run(s) of the quarter do not verify, so the export would not be evidence:\n{}\n(fix or remove them, or pass --exclude-unverified to export the rest and list these as excluded)", .0.len(), .0.iter().map(|r| format!("  {}: {}", r.dir, r.verification)).collect::<Vec<_>>().join("\n"))]
    Unverified(Vec<RunEntry>),
    /// The chain of runs is broken where no acknowledgement covers it.
    #[error("the chain of `{env}`'s signed runs is broken, so the export could not show the quarter is complete:\n{}\n(acknowledge a lost run with `epic-audit acknowledge --env {env} --missing N --reason \"...\"` once you know why it is missing)", .breaks.iter().map(|b| format!("  {b}")).collect::<Vec<_>>().join("\n"))]
    ChainBroken {
        /// Environment.
        env: String,
        /// Each break, as a sentence.
        breaks: Vec<String>,
    },
    /// File system.
    #[error("{0}")]
    Io(String),
}

/// What to export.
#[derive(Debug, Clone)]
pub(crate) struct ExportRequest<'a> {
    /// Environment (the `<reports>/<env>/` directory).
    pub env: &'a str,
    /// The quarter.
    pub quarter: Quarter,
    /// Directory holding `<env>/<run>/` directories.
    pub reports_dir: &'a Path,
    /// The archive to write.
    pub out: &'a Path,
    /// Export the runs that verify and list the others as excluded.
    pub exclude_unverified: bool,
    /// The export's timestamp.
    pub now: DateTime<Utc>,
    /// The keys acknowledgements must be signed by (`None`: the runs' key).
    pub ack_keys: Option<&'a [PublicKey]>,
}

/// The chain's state in sentences, for the index page and the terminal.
pub(crate) fn chain_summary(c: &crate::run::chain::Status) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((a, b)) = c.span {
        out.push(format!(
            "signed runs {a} to {b} of the environment's chain; every gap among them is listed below"
        ));
    }
    for (gap, a) in &c.acknowledged {
        out.push(format!(
            "acknowledged gap: {gap}; reason: {} (signed {} by key {})",
            a.ack.reason,
            a.ack.acknowledged_at.format("%Y-%m-%d"),
            a.key_id
        ));
    }
    if !c.before_chaining.is_empty() {
        out.push(format!(
            "before chaining (signed before runs named their predecessor): {}",
            c.before_chaining.join(", ")
        ));
    }
    out
}

/// Finds, verifies and exports the runs of the request, signed by
/// `signer`; runs must verify against `run_key`.
pub(crate) fn export(
    req: &ExportRequest<'_>,
    signer: &RunSigner,
    run_key: &PublicKey,
) -> Result<Exported, ExportError> {
    let ExportRequest {
        env,
        quarter,
        reports_dir,
        out,
        exclude_unverified,
        now,
        ack_keys,
    } = req.clone();
    let base = crate::run::env_dir(reports_dir, env);
    // The history needs outcomes, and waived subjects for the waivers:
    // keep only those, so a quarter of thousands of runs stays small.
    let runs = crate::run::scan(&base, env, |r| {
        for c in r.checks.iter_mut() {
            c.subjects.retain(|s| s.outcome == Outcome::Waived);
        }
    })
    .map_err(|e| ExportError::Io(format!("cannot read {}: {}", base.display(), e.kind())))?;
    let mut found: Vec<(RunEntry, Option<Report>, PathBuf)> = Vec::new();
    for run in runs.into_iter().filter(|r| quarter.contains(r.started_at)) {
        let crate::run::FoundRun {
            dir,
            name,
            report,
            started_at,
            ..
        } = run;
        let verification = crate::run::check(&dir, run_key, report.is_some());
        found.push((
            RunEntry {
                dir: name,
                run_id: report
                    .as_ref()
                    .map(|r| r.run_id.clone())
                    .unwrap_or_default(),
                observed_run_id: report
                    .as_ref()
                    .and_then(|r| r.reevaluation.as_ref())
                    .map(|re| re.observed_run_id.clone()),
                started_at,
                verdict: report
                    .as_ref()
                    .map(|r| r.verdict.to_string())
                    .unwrap_or_else(|| "?".into()),
                exit_code: report.as_ref().map(|r| r.exit_code).unwrap_or(0),
                verification,
            },
            report,
            dir,
        ));
    }
    found.sort_by(|a, b| (a.0.started_at, &a.0.dir).cmp(&(b.0.started_at, &b.0.dir)));
    let (ok, bad): (Vec<_>, Vec<_>) = found
        .into_iter()
        .partition(|(r, _, _)| r.verification.is_valid());
    let excluded: Vec<RunEntry> = bad.into_iter().map(|(r, _, _)| r).collect();
    if !excluded.is_empty() && !exclude_unverified {
        return Err(ExportError::Unverified(excluded));
    }
    if ok.is_empty() {
        return Err(ExportError::NoRuns {
            env: env.into(),
            quarter,
            from: quarter.start().to_rfc3339(),
            to: quarter.end().to_rfc3339(),
            dir: base.display().to_string(),
        });
    }

    // Is this all of them? The chain of signed runs, judged for the
    // quarter's runs (included or excluded).
    let scope: Vec<String> = ok
        .iter()
        .map(|(e, _, _)| e.dir.clone())
        .chain(excluded.iter().map(|e| e.dir.clone()))
        .collect();
    let members = crate::run::chain::members(&base, env)
        .map_err(|e| ExportError::Io(format!("cannot read {}: {}", base.display(), e.kind())))?;
    let keys = crate::run::chain::AckKeys::of(ack_keys, run_key);
    let chain = crate::run::chain::status(&base, env, keys, &members, &scope);
    if !chain.unacknowledged.is_empty() {
        return Err(ExportError::ChainBroken {
            env: env.into(),
            breaks: chain.unacknowledged,
        });
    }
    let chain_json = serde_json::json!({
        "runs": chain.span.map(|(a, b)| serde_json::json!({"first": a, "last": b})),
        "before_chaining": chain.before_chaining,
        "acknowledged_gaps": chain.acknowledged.iter().map(|(gap, a)| serde_json::json!({
            "gap": gap,
            "reason": a.ack.reason,
            "acknowledged_at": a.ack.acknowledged_at,
            "after": a.ack.after,
            "before": a.ack.before,
            "signed_by_key": a.key_id,
            "record": format!("acknowledgements/{}", a.path.file_name().unwrap_or_default().to_string_lossy()),
        })).collect::<Vec<_>>(),
    });
    let chain_lines: Vec<String> = chain_summary(&chain);

    // The history is of observations: each observation once, by its own
    // run where the export holds it, else by its latest re-evaluation. A
    // re-evaluation judges the same observation again and is listed under
    // it, never counted as another run of the cluster.
    let mut judged_by: std::collections::BTreeMap<&str, (bool, DateTime<Utc>, &str)> =
        Default::default();
    for (e, r, _) in &ok {
        let (observed, own, at) = match (
            &e.observed_run_id,
            r.as_ref().and_then(|r| r.reevaluation.as_ref()),
        ) {
            (Some(o), Some(re)) => (o.as_str(), false, re.evaluated_at),
            _ => (e.run_id.as_str(), true, e.started_at),
        };
        let better = match judged_by.get(observed) {
            None => true,
            Some((had_own, had_at, _)) => !had_own && (own || at > *had_at),
        };
        if better {
            judged_by.insert(observed, (own, at, e.dir.as_str()));
        }
    }
    let reports: Vec<&Report> = ok
        .iter()
        .filter(|(e, _, _)| judged_by.values().any(|(_, _, d)| *d == e.dir))
        .filter_map(|(_, r, _)| r.as_ref())
        .collect();
    let observations = judged_by.len();
    let runs: Vec<RunEntry> = ok.iter().map(|(e, _, _)| e.clone()).collect();
    let history = history(&reports);
    let safeguards = safeguard_history(&reports);
    let waivers = waiver_uses(&reports);
    let root = format!("epic-audit-{env}-{quarter}");

    // Run files are hashed now and streamed into the archive later (never
    // all in memory); the generated files are small.
    let mut run_files: Vec<(String, PathBuf, String)> = Vec::new();
    for (entry, _, dir) in &ok {
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| ExportError::Io(format!("{}: {}", dir.display(), e.kind())))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        for p in names {
            let digest = archive::sha256_file(&p)
                .map_err(|e| ExportError::Io(format!("{}: {}", p.display(), e.kind())))?;
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            run_files.push((format!("runs/{}/{name}", entry.dir), p, digest));
        }
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let meta = serde_json::json!({
        "environment": env,
        "quarter": quarter.to_string(),
        "from": quarter.start(),
        "to": quarter.end(),
        "generated_at": now,
        "tool": {"name": "epic-audit", "version": env!("CARGO_PKG_VERSION")},
        "observations": observations,
        "reevaluations": runs.iter().filter(|r| r.observed_run_id.is_some()).count(),
        "runs": runs,
        "excluded": excluded,
        "chain": chain_json,
    });
    let json = |v: &serde_json::Value| serde_json::to_vec_pretty(v).expect("JSON serialises");
    files.push(("export.json".into(), json(&meta)));
    files.push((
        "history.json".into(),
        json(&serde_json::to_value(&history).expect("serialises")),
    ));
    files.push((
        "safeguards.json".into(),
        json(&serde_json::to_value(&safeguards).expect("serialises")),
    ));
    files.push((
        "waivers.json".into(),
        json(&serde_json::to_value(&waivers).expect("serialises")),
    ));
    files.push((
        "index.html".into(),
        crate::report::quarter::index_html(
            env,
            &quarter.to_string(),
            (quarter.start(), quarter.end()),
            now,
            &runs,
            &excluded,
            &chain_lines,
            &history,
            &safeguards,
            &waivers,
        )
        .into_bytes(),
    ));
    for (_, AckFile { path: p, .. }) in &chain.acknowledged {
        let bytes = std::fs::read(p)
            .map_err(|e| ExportError::Io(format!("{}: {}", p.display(), e.kind())))?;
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        files.push((format!("acknowledgements/{name}"), bytes));
    }
    let digests: Vec<(String, String)> = run_files
        .iter()
        .map(|(n, _, d)| (n.clone(), d.clone()))
        .chain(
            files
                .iter()
                .map(|(n, d)| (n.clone(), hex::encode(Sha256::digest(d)))),
        )
        .collect();
    let failing_at_end = history
        .iter()
        .filter(|h| h.last == crate::report::history::Seen::Judged(Outcome::Fail))
        .count();
    let predicate = serde_json::json!({
        "environment": env,
        "quarter": quarter.to_string(),
        "runs": runs.iter().map(|r| &r.run_id).collect::<Vec<_>>(),
        "excluded": excluded.iter().map(|r| &r.dir).collect::<Vec<_>>(),
        "checks_failing_at_end": failing_at_end,
        "generated_at": now,
        "tool": {"name": "epic-audit", "version": env!("CARGO_PKG_VERSION")},
    });
    let envelope = signer
        .envelope_for_digests(&digests, PREDICATE_TYPE, predicate)
        .map_err(|e| ExportError::Io(format!("signing the export: {e}")))?;
    files.push((
        ENVELOPE.into(),
        serde_json::to_vec_pretty(&envelope).expect("envelope serialises"),
    ));
    files.push((
        BUNDLE.into(),
        serde_json::to_vec_pretty(&crate::sign::sigstore_bundle(&envelope))
            .expect("bundle serialises"),
    ));

    archive::pack(&root, &run_files, &files, out, now).map_err(ExportError::Io)?;
    Ok(Exported {
        path: out.to_path_buf(),
        runs,
        excluded,
        key_id: signer.key_id(),
        chain: chain_lines,
    })
}
