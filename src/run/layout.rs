//! The layout of a run directory: every file name, where runs go, the salt
//! beside a run. The one place a file of a run is named.

use std::path::{Path, PathBuf};

pub(crate) use crate::sign::{BUNDLE, ENVELOPE};

/// Where runs go when no `--out` is given: `reports/<env>/<run-id>/`.
pub(crate) const REPORTS_DIR: &str = "reports";
/// The observations (`evaluate` judges this file again).
pub(crate) const EVIDENCE: &str = "evidence.json";
/// The judged report, machine-readable.
pub(crate) const REPORT_JSON: &str = "report.json";
/// The CI view (one testsuite per area).
pub(crate) const JUNIT: &str = "junit.xml";
/// The report for people, as Markdown.
pub(crate) const REPORT_MD: &str = "report.md";
/// The report for people, one self-contained page.
pub(crate) const REPORT_HTML: &str = "report.html";
/// NIST OSCAL Assessment Results.
pub(crate) const OSCAL: &str = "assessment-results.json";
/// SARIF 2.1.0, for CI systems' code scanning views.
pub(crate) const SARIF: &str = "report.sarif";

/// `<reports>/<env>/acknowledgements/`: signed acknowledgements of gaps
/// in the environment's chain of runs (not a run directory).
pub(crate) const ACKNOWLEDGEMENTS: &str = "acknowledgements";

/// The report files of every run, in the order the terminal names them.
pub(crate) const REPORT_FILES: [&str; 7] = [
    REPORT_HTML,
    REPORT_MD,
    REPORT_JSON,
    JUNIT,
    SARIF,
    OSCAL,
    EVIDENCE,
];

/// `<reports>/<env>/`: the runs of one environment.
pub(crate) fn env_dir(reports: &Path, env: &str) -> PathBuf {
    reports.join(env)
}

/// Picks `base/<run_id>`, adding `-2`, `-3`... if that name is taken.
pub(crate) fn default_dir(base: &Path, run_id: &str) -> PathBuf {
    let mut p = base.join(run_id);
    let mut n = 2;
    while p.exists() {
        p = base.join(format!("{run_id}-{n}"));
        n += 1;
    }
    p
}

/// `DIR.salt` beside the run directory `DIR`.
pub(crate) fn salt_path(dest: &Path) -> PathBuf {
    let mut name = dest
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".salt");
    dest.with_file_name(name)
}

/// True when `dir` exists and holds anything (a run there would be
/// overwritten).
pub(crate) fn occupied(dir: &Path) -> bool {
    dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dir_names_do_not_collide() {
        let t = tempfile::tempdir().unwrap();
        let a = default_dir(t.path(), "20260101T000000Z");
        std::fs::create_dir(&a).unwrap();
        let b = default_dir(t.path(), "20260101T000000Z");
        assert!(b.ends_with("20260101T000000Z-2"));
        assert_eq!(salt_path(&b), t.path().join("20260101T000000Z-2.salt"));
    }
}
