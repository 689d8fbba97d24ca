//! `epic-audit run --env a --env b ...`: a fleet of environments audited
//! concurrently, at most `--max-concurrent` at a time. Each environment is
//! audited exactly as `run --env NAME` would (its own probes, deadlines,
//! signer and run directory); the fleet adds one line per environment, an
//! overall verdict and exit code, and a summary directory with
//! `fleet.json` and a combined `junit.xml` (one suite per environment and
//! area).
//!
//! An environment that cannot be audited at all (its lab is down, its
//! secret is missing, ...) is one `ERROR` line naming why; the others are
//! still audited. A dead cluster costs no more than its own deadlines,
//! because each audit is bounded by them.

use std::path::PathBuf;

use anyhow::{Context, Result};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use super::run::run_one;
use crate::cli::{Cli, RunArgs, UsageError};
use crate::probes::cleanup::LatencyCleanup;
use crate::report::{junit, Report, EXIT_ERROR, EXIT_FAIL, EXIT_PASS};

/// One environment's line in the fleet summary.
#[derive(Debug, Serialize)]
pub(crate) struct FleetEntry {
    /// Environment name.
    pub environment: String,
    /// `pass`, `fail`, `error`, `incomplete`; `not audited` when no run
    /// could be written.
    pub verdict: String,
    /// The exit code `run --env NAME` would have returned.
    pub exit_code: u8,
    /// Checks per outcome (empty when not audited).
    pub counts: std::collections::BTreeMap<String, usize>,
    /// Its run directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_dir: Option<PathBuf>,
    /// Why it could not be audited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The overall verdict of a fleet: `fail` if any environment failed, else
/// `error` if any could not be fully judged or audited, else `pass`; and
/// its exit code (1, 2, 0).
pub(crate) fn overall(entries: &[FleetEntry]) -> (&'static str, u8) {
    if entries.iter().any(|e| e.exit_code == EXIT_FAIL) {
        ("FAIL", EXIT_FAIL)
    } else if entries.iter().any(|e| e.exit_code != EXIT_PASS) {
        ("ERROR", EXIT_ERROR)
    } else {
        ("PASS", EXIT_PASS)
    }
}

/// Audits every `--env` of `args` and prints and writes the fleet summary.
pub(crate) async fn fleet(cli: &Cli, args: &RunArgs, latency: &LatencyCleanup) -> Result<u8> {
    if args.out.is_some() {
        return Err(UsageError(
            "--out names one run's directory; with several --env each run goes to \
             reports/<env>/<run-id>/ and the fleet summary to --fleet-out"
                .into(),
        )
        .into());
    }
    if args.signing.prom.is_some() {
        return Err(UsageError(
            "--prom writes one environment's textfile; run each environment on its own to get one"
                .into(),
        )
        .into());
    }
    // Every name must exist, and the selection judge something, before
    // anything is probed.
    let config = cli.config()?;
    super::shared::load_policy(cli)?
        .select(&args.select.only, &args.select.skip)
        .map_err(UsageError)?;
    let mut names: Vec<&String> = Vec::new();
    for name in &args.env {
        config.environment(name)?;
        if names.contains(&name) {
            return Err(UsageError(format!("--env {name} is given twice")).into());
        }
        names.push(name);
    }
    let started = chrono::Utc::now();
    let fleet_id = crate::engine::run_id(started);
    let dest = args.fleet_out.clone().unwrap_or_else(|| {
        crate::run::default_dir(
            &PathBuf::from(crate::run::REPORTS_DIR).join("fleet"),
            &fleet_id,
        )
    });
    if crate::run::occupied(&dest) {
        return Err(crate::output::OutputError::Exists(dest).into());
    }
    println!(
        "fleet {fleet_id}: auditing {} environments, at most {} at a time",
        names.len(),
        args.max_concurrent
    );
    let results: Vec<(String, Result<crate::run::Written>)> = stream::iter(names)
        .map(|name| async move {
            let r = run_one(cli, args, name, false, latency).await;
            (name.clone(), r)
        })
        .buffered(usize::from(args.max_concurrent))
        .collect()
        .await;

    let mut entries = Vec::new();
    let mut reports: Vec<Report> = Vec::new();
    let mut unaudited = Vec::new();
    for (name, r) in results {
        match r {
            Ok(w) => {
                let counts = w
                    .report
                    .counts
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(o, n)| (o.to_string(), *n))
                    .collect();
                entries.push(FleetEntry {
                    environment: name,
                    verdict: w.report.verdict.to_string(),
                    exit_code: w.exit_code(),
                    counts,
                    run_dir: Some(w.dir),
                    // The run was written but could not be kept in the store.
                    error: match &w.stored {
                        Some(crate::run::Stored::Failed(e)) => Some(e.clone()),
                        _ => None,
                    },
                });
                reports.push(w.report);
            }
            Err(e) => {
                let why = format!("{e:#}");
                unaudited.push((name.clone(), why.clone()));
                entries.push(FleetEntry {
                    environment: name,
                    verdict: "not audited".into(),
                    exit_code: super::shared::error_exit_code(&e),
                    counts: Default::default(),
                    run_dir: None,
                    error: Some(why),
                });
            }
        }
    }
    let (verdict, code) = overall(&entries);
    let width = entries
        .iter()
        .map(|e| e.environment.len())
        .max()
        .unwrap_or(0);
    for e in &entries {
        match (&e.run_dir, &e.error) {
            (Some(dir), stored) => println!(
                "  {:width$}  {} ({}) · exit code {} · {}{}",
                e.environment,
                e.verdict.to_uppercase(),
                e.counts
                    .iter()
                    .map(|(o, n)| format!("{n} {o}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                e.exit_code,
                dir.display(),
                stored
                    .as_deref()
                    .map(|why| format!(" · NOT STORED: {why}"))
                    .unwrap_or_default()
            ),
            (None, why) => println!(
                "  {:width$}  NOT AUDITED · exit code {} · {}",
                e.environment,
                e.exit_code,
                why.as_deref().unwrap_or("")
            ),
        }
    }
    let tally = |v: &str| entries.iter().filter(|e| e.verdict == v).count();
    let summary = serde_json::json!({
        "fleet_id": fleet_id,
        "started_at": started,
        "finished_at": chrono::Utc::now(),
        "verdict": verdict.to_lowercase(),
        "exit_code": code,
        "environments": entries,
    });
    let refs: Vec<&Report> = reports.iter().collect();
    let files = vec![
        (
            "fleet.json",
            (serde_json::to_string_pretty(&summary).context("serialising the fleet summary")?
                + "\n")
                .into_bytes(),
        ),
        (
            "junit.xml",
            junit::render_fleet(&format!("epic-audit fleet {fleet_id}"), &refs, &unaudited)
                .into_bytes(),
        ),
    ];
    let dir = crate::output::write_run(&dest, &files)?;
    println!(
        "fleet verdict: {verdict} ({} environments: {} pass, {} fail, {} error or incomplete, {} not audited) · exit code {code}",
        entries.len(),
        tally("pass"),
        tally("fail"),
        tally("error") + tally("incomplete"),
        tally("not audited"),
    );
    println!("fleet: {}/ (fleet.json, junit.xml)", dir.display());
    Ok(code)
}
