//! `epic-audit diff`: what changed between two runs.

use std::path::Path;

use anyhow::Result;

use crate::cli::UsageError;
use crate::report::Report;

/// Prints the differences from `run_a` to `run_b`.
pub(crate) fn diff(run_a: &Path, run_b: &Path) -> Result<u8> {
    let load =
        |p: &Path| -> Result<Report> { Ok(crate::run::find::load_report(p).map_err(UsageError)?) };
    let (a, b) = (load(run_a)?, load(run_b)?);
    let d = crate::report::diff::diff(&a, &b);
    print!("{}", crate::report::diff::render(&a, &b, &d));
    Ok(0)
}
