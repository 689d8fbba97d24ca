//! `epic-audit diff`: what changed between two runs.

use std::path::Path;

use anyhow::Result;

use crate::cli::UsageError;
use crate::report::Report;

/// Prints the differences from `run_a` to `run_b`.
pub fn diff(run_a: &Path, run_b: &Path) -> Result<u8> {
    let load = |p: &Path| -> Result<Report> {
        let f = p.join("report.json");
        let text = std::fs::read_to_string(&f)
            .map_err(|e| UsageError(format!("cannot read {}: {e}", f.display())))?;
        Ok(serde_json::from_str(&text)
            .map_err(|e| UsageError(format!("{}: not an epic-audit report: {e}", f.display())))?)
    };
    let (a, b) = (load(run_a)?, load(run_b)?);
    let d = crate::report::diff::diff(&a, &b);
    print!("{}", crate::report::diff::render(&a, &b, &d));
    Ok(0)
}
