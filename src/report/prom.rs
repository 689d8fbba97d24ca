//! Prometheus textfile (node_exporter textfile collector) with one gauge per
//! check, so the existing Grafana can chart compliance over time.

use std::fmt::Write as _;

use super::Report;
use crate::checks::Outcome;

/// Numeric value of an outcome in `epic_audit_check_status`.
pub(crate) fn value(o: Outcome) -> u8 {
    match o {
        Outcome::Pass => 0,
        Outcome::Fail => 1,
        Outcome::Error => 2,
        Outcome::Warn => 3,
        Outcome::Skip => 4,
        Outcome::Waived => 5,
        Outcome::Incomplete => 6,
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders the textfile.
pub fn render(r: &Report) -> String {
    let env = label(&r.environment);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP epic_audit_check_status Outcome of each check: 0 pass, 1 fail, 2 error, 3 warn, 4 skip, 5 waived, 6 incomplete (not audited)."
    );
    let _ = writeln!(out, "# TYPE epic_audit_check_status gauge");
    for c in &r.checks {
        let _ = writeln!(
            out,
            "epic_audit_check_status{{environment=\"{env}\",id=\"{}\",area=\"{}\",severity=\"{}\"}} {}",
            label(&c.id),
            c.area,
            c.severity,
            value(c.outcome)
        );
    }
    let _ = writeln!(out, "# HELP epic_audit_run_timestamp_seconds When the audited observations started (Unix time).");
    let _ = writeln!(out, "# TYPE epic_audit_run_timestamp_seconds gauge");
    let _ = writeln!(
        out,
        "epic_audit_run_timestamp_seconds{{environment=\"{env}\"}} {}",
        r.started_at.timestamp()
    );
    let _ = writeln!(
        out,
        "# HELP epic_audit_run_exit_code Exit code of the run (0 pass, 1 fail, 2 error)."
    );
    let _ = writeln!(out, "# TYPE epic_audit_run_exit_code gauge");
    let _ = writeln!(
        out,
        "epic_audit_run_exit_code{{environment=\"{env}\"}} {}",
        r.exit_code
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
