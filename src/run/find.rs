//! Finding runs: one set of rules for every reader of a reports directory
//! (the previous run a report compares itself with, the runs of a quarter).
//!
//! A run is a directory under `<reports>/<env>/` whose name does not start
//! with `.` (staging directories do). Its environment and start come from
//! its report.json; a run whose report is damaged is still found, from its
//! (unverified) manifest's claim, else from a run-id directory name, so a
//! damaged run in scope is reported, never silently left out.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::layout::{ENVELOPE, REPORT_JSON};
use crate::report::Report;

/// One run directory found.
#[derive(Debug)]
pub(crate) struct FoundRun {
    /// Its directory.
    pub dir: PathBuf,
    /// The directory's name.
    pub name: String,
    /// Its report, when report.json reads as one.
    pub report: Option<Report>,
    /// When its probing started.
    pub started_at: DateTime<Utc>,
}

/// Reads the report of the run in `dir`.
pub(crate) fn load_report(dir: &Path) -> Result<Report, String> {
    let f = dir.join(REPORT_JSON);
    let text =
        std::fs::read_to_string(&f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{}: not an epic-audit report: {e}", f.display()))
}

/// The runs of `env` in `base` (`<reports>/<env>/`), each report passed
/// through `trim` as it is read (an export keeps only what it needs, so a
/// quarter of thousands of runs stays small), in directory-name order.
pub(crate) fn scan(
    base: &Path,
    env: &str,
    mut trim: impl FnMut(&mut Report),
) -> std::io::Result<Vec<FoundRun>> {
    let mut out = Vec::new();
    for (name, dir) in run_dirs(base)? {
        let mut report = load_report(&dir).ok();
        if let Some(r) = report.as_mut() {
            trim(r);
        }
        let Some((environment, started_at)) = report
            .as_ref()
            .map(|r| (r.environment.clone(), r.started_at))
            .or_else(|| claimed_by_manifest(&dir))
            .or_else(|| started_from_name(&name).map(|t| (env.to_string(), t)))
        else {
            continue;
        };
        if environment != env {
            continue;
        }
        out.push(FoundRun {
            dir,
            name,
            report,
            started_at,
        });
    }
    Ok(out)
}

/// The directories under `base` that may be runs, as (name, path), in name
/// order: every directory whose name does not start with `.` (staging
/// directories do).
pub(crate) fn run_dirs(base: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(base)?
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().to_string(), e.path()))
        .filter(|(name, dir)| !name.starts_with('.') && dir.is_dir())
        .collect();
    out.sort();
    Ok(out)
}

/// The in-toto Statement of the run in `dir`, read from its manifest
/// without verifying it (to find and place runs; verification is
/// [`super::verify`]'s).
pub(crate) fn manifest_statement(dir: &Path) -> Option<serde_json::Value> {
    use base64::Engine;
    let env: crate::sign::Envelope =
        serde_json::from_slice(&std::fs::read(dir.join(ENVELOPE)).ok()?).ok()?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env.payload)
        .ok()?;
    serde_json::from_slice(&payload).ok()
}

/// The report of the latest run (by directory name) of `environment` in
/// `base` other than `except`.
pub(crate) fn previous_report(base: &Path, environment: &str, except: &Path) -> Option<Report> {
    scan(base, environment, |_| {})
        .ok()?
        .into_iter()
        .rev()
        .filter(|r| r.dir != except)
        .find_map(|r| r.report)
}

/// (environment, started_at) as a run's manifest predicate claims them,
/// read without verifying (only to decide whether the run is in scope).
fn claimed_by_manifest(dir: &Path) -> Option<(String, DateTime<Utc>)> {
    let st = manifest_statement(dir)?;
    let p = &st["predicate"];
    Some((
        p["environment"].as_str()?.to_string(),
        p["started_at"].as_str()?.parse().ok()?,
    ))
}

/// The start time in a run directory name (`20261126T080000Z...`).
fn started_from_name(name: &str) -> Option<DateTime<Utc>> {
    let ts = name.get(..16)?;
    chrono::NaiveDateTime::parse_from_str(ts, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}
