//! The human summary printed after a run, grouped by area. Colour only when
//! stdout is a terminal and NO_COLOR is unset.

use std::fmt::Write as _;
use std::io::IsTerminal;

use anstyle::{AnsiColor, Style};

use super::Report;
use crate::checks::Outcome;
use crate::policy::Area;

/// Whether to colour output written to stdout.
pub(crate) fn want_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn paint(colour: bool, o: Outcome) -> String {
    let label = format!("{:<6}", o.as_str().to_uppercase());
    if !colour {
        return label;
    }
    let c = match o {
        Outcome::Pass => AnsiColor::Green,
        Outcome::Fail => AnsiColor::Red,
        Outcome::Error | Outcome::Incomplete => AnsiColor::Magenta,
        Outcome::Warn | Outcome::Waived => AnsiColor::Yellow,
        Outcome::Skip => AnsiColor::BrightBlack,
    };
    let s = Style::new().fg_color(Some(c.into())).bold();
    format!("{}{label}{}", s.render(), s.render_reset())
}

/// Renders the summary.
pub fn render(r: &Report, colour: bool) -> String {
    render_exit(r, colour, None)
}

/// [`render`], ending with `exit` = (why, code) instead of the report's
/// exit code when the command returns another one (the run could not be
/// stored): the verdict line always shows what the process returns.
pub fn render_exit(r: &Report, colour: bool, exit: Option<(&str, u8)>) -> String {
    let mut out = String::new();
    if r.is_unsigned() {
        let _ = writeln!(out, "{}", r.signature);
    }
    let _ = writeln!(
        out,
        "epic-audit {} · environment {} · run {}",
        r.tool.version, r.environment, r.run_id
    );
    let not_audited: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| c.outcome == Outcome::Incomplete)
        .map(|c| c.id.as_str())
        .collect();
    if !not_audited.is_empty() {
        let _ = writeln!(
            out,
            "INCOMPLETE: {} selected check(s) were not audited ({}), so this run cannot PASS; \
             each says what it lacks below",
            not_audited.len(),
            not_audited.join(", ")
        );
    }
    if !r.servers.is_empty() {
        let _ = writeln!(out, "servers: {}", super::ServerGroup::summary(&r.servers));
    }
    for t in r.judged_tables() {
        let _ = writeln!(out, "advisories: {}", t.summary(r.finished_at.date_naive()));
    }
    for area in Area::ALL {
        let checks: Vec<_> = r.checks.iter().filter(|c| c.area == area).collect();
        if checks.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{area}");
        for c in checks {
            let n = c.subjects.len();
            let _ = writeln!(
                out,
                "  {} {}  {}  [{n} subject{}]",
                paint(colour, c.outcome),
                c.id,
                c.title,
                if n == 1 { "" } else { "s" }
            );
            for s in c.subjects.iter().filter(|s| {
                matches!(
                    s.outcome,
                    Outcome::Fail | Outcome::Error | Outcome::Incomplete | Outcome::Warn
                )
            }) {
                let _ = writeln!(out, "           {} {}: {}", s.outcome, s.subject, s.message);
            }
        }
    }
    if let Some(p) = &r.previous {
        let _ = writeln!(
            out,
            "\nsince run {} ({}): {} newly failing{}, {} fixed{}, {} still failing",
            p.run_id,
            p.verdict,
            p.newly_failing.len(),
            if p.newly_failing.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.newly_failing.join(", "))
            },
            p.fixed.len(),
            if p.fixed.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.fixed.join(", "))
            },
            p.still_failing.len()
        );
    }
    for w in &r.waivers {
        let _ = writeln!(
            out,
            "\nwaiver {} {}{} until {} ({}, approved by {}): {}",
            w.status,
            w.waiver.check,
            w.waiver
                .subject
                .as_deref()
                .map(|s| format!(" for {s}"))
                .unwrap_or_default(),
            w.waiver.expires,
            w.status,
            w.waiver.approver,
            w.waiver.reason
        );
    }
    let counts: Vec<String> = Outcome::ALL
        .iter()
        .filter(|o| r.counts.get(o).copied().unwrap_or(0) > 0)
        .map(|o| format!("{} {}", r.counts[o], o))
        .collect();
    if let Some(re) = &r.reevaluation {
        let _ = writeln!(
            out,
            "\nre-evaluation {} of observed run {}",
            r.run_id, re.observed_run_id
        );
    }
    let _ = writeln!(
        out,
        "\nverdict: {} ({} checks: {}){}{} · exit code {}",
        paint(colour, r.verdict).trim_end(),
        r.checks.len(),
        counts.join(", "),
        r.reevaluation
            .as_ref()
            .map(|re| format!(
                " · re-evaluation of run {} with {}",
                re.observed_run_id, re.judged_with
            ))
            .unwrap_or_default(),
        exit.map(|(why, _)| format!(" · {why}")).unwrap_or_default(),
        exit.map_or(r.exit_code, |(_, code)| code)
    );
    out
}
