//! `report.md`: the human report, readable as plain text and rendered by any
//! Markdown viewer. Grouped by HIPAA safeguard, with every finding that
//! needs action shown with observed vs expected and the remediation.

use std::fmt::Write as _;

use super::{CheckResult, Report};
use crate::checks::Outcome;

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Checks that need action, worst first.
pub(crate) fn needing_action(r: &Report) -> Vec<&CheckResult> {
    let mut v: Vec<&CheckResult> = r
        .checks
        .iter()
        .filter(|c| {
            matches!(
                c.outcome,
                Outcome::Fail
                    | Outcome::Error
                    | Outcome::Incomplete
                    | Outcome::Warn
                    | Outcome::Waived
            )
        })
        .collect();
    v.sort_by(|a, b| {
        b.outcome
            .cmp(&a.outcome)
            .then(b.severity.cmp(&a.severity))
            .then(a.id.cmp(&b.id))
    });
    v
}

/// Renders the report.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    if r.is_unsigned() {
        let _ = writeln!(o, "**{}**\n", r.signature);
    }
    let _ = writeln!(
        o,
        "# epic-audit report: {} (run {})\n",
        r.environment, r.run_id
    );
    let counts: Vec<String> = Outcome::ALL
        .iter()
        .filter(|x| r.counts.get(x).copied().unwrap_or(0) > 0)
        .map(|x| format!("{} {}", r.counts[x], x))
        .collect();
    let _ = writeln!(
        o,
        "**Verdict: {}** (exit code {}): {} checks, {}.\n",
        r.verdict.as_str().to_uppercase(),
        r.exit_code,
        r.checks.len(),
        counts.join(", ")
    );
    let _ = writeln!(
        o,
        "- Observed {} to {}",
        r.started_at.to_rfc3339(),
        r.finished_at.to_rfc3339()
    );
    let _ = writeln!(
        o,
        "- Policy: {} (sha256 {})",
        r.policy.source, r.policy.digest
    );
    if !r.servers.is_empty() {
        let _ = writeln!(o, "- Servers: {}", super::ServerGroup::summary(&r.servers));
    }
    for t in r.judged_tables() {
        let _ = writeln!(o, "- Advisories: {}", t.summary(r.finished_at.date_naive()));
        for src in &t.sources {
            let _ = writeln!(o, "  - {src}");
        }
    }
    let _ = writeln!(o, "- Tool: {} {}", r.tool.name, r.tool.version);
    let _ = writeln!(o, "- Signature: {}\n", r.signature);

    if let Some(p) = &r.previous {
        let _ = writeln!(
            o,
            "## Since the previous run ({}, verdict {})\n",
            p.run_id, p.verdict
        );
        let _ = writeln!(
            o,
            "- Newly failing: {}",
            if p.newly_failing.is_empty() {
                "none".into()
            } else {
                p.newly_failing.join(", ")
            }
        );
        let _ = writeln!(
            o,
            "- Fixed: {}",
            if p.fixed.is_empty() {
                "none".into()
            } else {
                p.fixed.join(", ")
            }
        );
        let _ = writeln!(
            o,
            "- Still failing: {}",
            if p.still_failing.is_empty() {
                "none".into()
            } else {
                p.still_failing.join(", ")
            }
        );
        let _ = writeln!(o, "- Changed observations: {}\n", p.changed_observations);
    }
    let _ = writeln!(o, "## HIPAA safeguards (45 CFR)\n");
    let _ = writeln!(o, "{}\n", super::safeguards::PREAMBLE);
    let _ = writeln!(
        o,
        "| provision | safeguard | R/A | status | primary checks | supporting checks | why |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    let rows = super::safeguards::rows(r);
    for row in &rows {
        let _ = writeln!(
            o,
            "| {} {} | {} | {} | **{}** | {} | {} | {} |",
            row.reference,
            cell(&row.title),
            row.safeguard_label(),
            row.specification_label(),
            row.status,
            row.outcomes(crate::hipaa::Relation::Primary),
            row.outcomes(crate::hipaa::Relation::Supporting),
            cell(&row.reasons.join("; "))
        );
    }
    let uncited = super::safeguards::uncited(r);
    if !uncited.is_empty() {
        let _ = writeln!(
            o,
            "\nNot a HIPAA safeguard (service objective or hygiene): {}.",
            uncited.join(", ")
        );
    }
    let _ = writeln!(o, "\n### What was tested, and what remains manual\n");
    for row in &rows {
        let _ = writeln!(
            o,
            "- **{} {}** ({}): {}",
            row.reference, row.title, row.status, row.manual
        );
        for t in &row.tested {
            let _ = writeln!(o, "  - tested: {t}");
        }
    }
    let _ = writeln!(o);

    let action = needing_action(r);
    let _ = writeln!(o, "\n## Findings that need action ({})\n", action.len());
    if action.is_empty() {
        let _ = writeln!(o, "None.");
    }
    for c in action {
        let _ = writeln!(
            o,
            "### {} {}: {} ({} severity)\n",
            c.outcome.as_str().to_uppercase(),
            c.id,
            c.title,
            c.severity
        );
        let _ = writeln!(o, "HIPAA: {}\n", crate::hipaa::list(&c.hipaa));
        let _ = writeln!(o, "| subject | outcome | observed | expected | finding |");
        let _ = writeln!(o, "|---|---|---|---|---|");
        for s in c.subjects.iter().filter(|s| s.outcome != Outcome::Pass) {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                cell(&s.subject),
                s.outcome,
                cell(&s.observed),
                cell(&s.expected),
                cell(&s.message)
            );
        }
        if !c.remediation.is_empty() {
            let _ = writeln!(
                o,
                "\n**How to fix:** {}\n",
                c.remediation
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }

    let _ = writeln!(o, "\n## Waivers ({})\n", r.waivers.len());
    if r.waivers.is_empty() {
        let _ = writeln!(o, "None.");
    } else {
        let _ = writeln!(
            o,
            "| check | subject | status | expires | approver | reason |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|");
        for w in &r.waivers {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                w.waiver.check,
                cell(w.waiver.subject.as_deref().unwrap_or("all")),
                w.status,
                w.waiver.expires,
                cell(&w.waiver.approver),
                cell(&w.waiver.reason)
            );
        }
    }

    let _ = writeln!(o, "\n## All checks\n");
    let _ = writeln!(o, "| id | area | severity | outcome | title |");
    let _ = writeln!(o, "|---|---|---|---|---|");
    for c in &r.checks {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            c.id,
            c.area,
            c.severity,
            c.outcome,
            cell(&c.title)
        );
    }
    o
}
