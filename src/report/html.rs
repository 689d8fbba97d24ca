//! `report.html`: the same content as `report.md`, self-contained (inline
//! CSS, no scripts, nothing fetched from the network), for auditors who
//! open it in a browser.

use std::fmt::Write as _;

use super::markdown::needing_action;
use super::markup::esc;
use super::Report;
use crate::checks::Outcome;
use crate::evidence::EvidenceSet;

fn badge(o: Outcome) -> String {
    format!(
        "<span class=\"b {}\">{}</span>",
        o.as_str(),
        o.as_str().to_uppercase()
    )
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:75em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1em;width:100%}td,th{border:1px solid #ccc;padding:.3em .5em;\
text-align:left;vertical-align:top;font-size:.9em}th{background:#f3f3f3}.b{font-weight:bold;padding:0 .4em;\
border-radius:3px;color:#fff}.pass{background:#2e7d32}.fail{background:#c62828}.error,.incomplete{background:#6a1b9a}\
.warn,.waived{background:#ef6c00}.skip{background:#757575}#verdict{font-size:1.4em}.unsigned{background:#fff3cd;\
padding:.5em;border:1px solid #e0a800}code{background:#f6f6f6}";

/// Renders the report.
pub fn render(r: &Report, ev: &EvidenceSet) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>epic-audit {} {}</title><style>{CSS}</style></head><body>",
        esc(&r.environment),
        esc(&r.run_id)
    );
    if r.is_unsigned() {
        let _ = write!(
            o,
            "<p class=\"unsigned\" id=\"unsigned\">{}</p>",
            esc(&r.signature)
        );
    }
    let _ = write!(
        o,
        "<h1>epic-audit report: {} (run {})</h1>",
        esc(&r.environment),
        esc(&r.run_id)
    );
    let counts: Vec<String> = Outcome::ALL
        .iter()
        .filter(|x| r.counts.get(x).copied().unwrap_or(0) > 0)
        .map(|x| format!("{} {}", r.counts[x], x))
        .collect();
    let _ = write!(
        o,
        "<p id=\"verdict\">Verdict: {} (exit code {}) &middot; {} checks: {}</p>",
        badge(r.verdict),
        r.exit_code,
        r.checks.len(),
        esc(&counts.join(", "))
    );
    let _ = write!(
        o,
        "<ul><li>Observed {} to {}</li>{}{}<li>Policy {} (sha256 <code>{}</code>)</li><li>{} {}</li><li>Signature: {}</li></ul>",
        r.started_at.to_rfc3339(),
        r.finished_at.to_rfc3339(),
        if r.servers.is_empty() {
            String::new()
        } else {
            format!(
                "<li>Servers: {}</li>",
                esc(&super::ServerGroup::summary(&r.servers))
            )
        },
        r.judged_tables()
            .map(|t| format!(
                "<li>Advisories: {} (listed in report.md and report.json)</li>",
                esc(&t.summary(r.finished_at.date_naive()))
            ))
            .collect::<String>(),
        esc(&r.policy.source),
        esc(&r.policy.digest),
        esc(&r.tool.name),
        esc(&r.tool.version),
        esc(&r.signature)
    );
    if let Some(p) = &r.previous {
        let j = |v: &Vec<String>| {
            if v.is_empty() {
                "none".to_string()
            } else {
                esc(&v.join(", "))
            }
        };
        let _ = write!(
            o,
            "<h2>Since the previous run ({}, verdict {})</h2><ul id=\"previous\"><li>Newly failing: {}</li><li>Fixed: {}</li>\
             <li>Still failing: {}</li><li>Changed observations: {}</li></ul>",
            esc(&p.run_id),
            esc(&p.verdict),
            j(&p.newly_failing),
            j(&p.fixed),
            j(&p.still_failing),
            p.changed_observations
        );
    }
    let _ = write!(
        o,
        "<h2>HIPAA safeguards (45 CFR)</h2><p>{}</p><table><tr><th>provision</th><th>safeguard</th><th>R/A</th>\
         <th>status</th><th>primary checks</th><th>supporting checks</th><th>why</th><th>remains manual</th></tr>",
        esc(super::safeguards::PREAMBLE)
    );
    let rows = super::safeguards::rows(r);
    for row in &rows {
        let _ = write!(
            o,
            "<tr><td>{} {}</td><td>{}</td><td>{}</td><td><b>{}</b></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&row.reference),
            esc(&row.title),
            row.safeguard_label(),
            row.specification_label(),
            esc(row.status.label()),
            esc(&row.outcomes(crate::hipaa::Relation::Primary)),
            esc(&row.outcomes(crate::hipaa::Relation::Supporting)),
            esc(&row.reasons.join("; ")),
            esc(&row.manual)
        );
    }
    let _ = write!(o, "</table>");
    let _ = write!(o, "<h3>What was tested, and what remains manual</h3><ul>");
    for row in &rows {
        let _ = write!(
            o,
            "<li><b>{} {}</b> ({}): {}",
            esc(&row.reference),
            esc(&row.title),
            esc(row.status.label()),
            esc(&row.manual)
        );
        if !row.tested.is_empty() {
            let _ = write!(o, "<ul>");
            for t in &row.tested {
                let _ = write!(o, "<li>tested: {}</li>", esc(t));
            }
            let _ = write!(o, "</ul>");
        }
        let _ = write!(o, "</li>");
    }
    let _ = write!(o, "</ul>");
    let uncited = super::safeguards::uncited(r);
    if !uncited.is_empty() {
        let _ = write!(
            o,
            "<p>Not a HIPAA safeguard (service objective or hygiene): {}.</p>",
            esc(&uncited.join(", "))
        );
    }
    let action = needing_action(r);
    let _ = write!(o, "<h2>Findings that need action ({})</h2>", action.len());
    if action.is_empty() {
        let _ = write!(o, "<p>None.</p>");
    }
    for c in action {
        let _ = write!(
            o,
            "<section class=\"finding\" id=\"{}\"><h3>{} {}: {} ({} severity)</h3><p>HIPAA: {}</p>\
             <table><tr><th>subject</th><th>outcome</th><th>observed</th><th>expected</th><th>finding</th></tr>",
            esc(&c.id),
            badge(c.outcome),
            esc(&c.id),
            esc(&c.title),
            c.severity,
            esc(&crate::hipaa::list(&c.hipaa))
        );
        for s in c.subjects.iter().filter(|s| s.outcome != Outcome::Pass) {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.subject),
                badge(s.outcome),
                esc(&s.observed),
                esc(&s.expected),
                esc(&s.message)
            );
        }
        let _ = write!(o, "</table>");
        if !c.remediation.is_empty() {
            let _ = write!(o, "<p><b>How to fix:</b> {}</p>", esc(&c.remediation));
        }
        let _ = write!(o, "</section>");
    }
    latency_section(&mut o, r, ev);
    let _ = write!(o, "<h2>Waivers ({})</h2>", r.waivers.len());
    if r.waivers.is_empty() {
        let _ = write!(o, "<p>None.</p>");
    } else {
        let _ = write!(o, "<table><tr><th>check</th><th>subject</th><th>status</th><th>expires</th><th>approver</th><th>reason</th></tr>");
        for w in &r.waivers {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&w.waiver.check),
                esc(w.waiver.subject.as_deref().unwrap_or("all")),
                esc(&w.status),
                w.waiver.expires,
                esc(&w.waiver.approver),
                esc(&w.waiver.reason)
            );
        }
        let _ = write!(o, "</table>");
    }
    let _ = write!(o, "<h2>All checks</h2><table><tr><th>id</th><th>area</th><th>severity</th><th>outcome</th><th>title</th></tr>");
    for c in &r.checks {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.id),
            c.area,
            c.severity,
            badge(c.outcome),
            esc(&c.title)
        );
    }
    let _ = writeln!(o, "</table></body></html>");
    o
}

/// PERF-001's picture: per master, the latency percentile spectrum the
/// latency probe measured (client corrected and raw, and Redis's own
/// HGETALL percentiles), when the report judged PERF-001.
fn latency_section(o: &mut String, r: &Report, ev: &EvidenceSet) {
    if !r.checks.iter().any(|c| c.id == "PERF-001") {
        return;
    }
    let views: Vec<_> = ev
        .latency_views()
        .into_iter()
        .filter_map(|(_, v)| v.ok())
        .collect();
    if views.is_empty() {
        return;
    }
    let _ = write!(
        o,
        "<h2 id=\"latency\">Latency per master (PERF-001)</h2><p>Each chart is one master's percentile spectrum, \
         p50 to max, on a scale where every further nine gets the same width. <b>Corrected</b> counts from when each \
         operation was due (it includes waiting behind a slow one); <b>raw</b> from when it was sent; <b>server-side</b> \
         is Redis's own HGETALL time (INFO latencystats). A wide gap between client and server lines is time spent \
         outside Redis.</p>"
    );
    for v in views {
        let _ = write!(
            o,
            "<figure class=\"latency\">{}<figcaption>{}: p99 corrected {} µs, raw {} µs ({} operations at {:.0}/s as {})</figcaption></figure>",
            super::svg::latency_chart(v),
            esc(&v.master),
            v.corrected.p99_us,
            v.raw.p99_us,
            v.corrected.count,
            v.achieved_rate,
            esc(&v.user)
        );
    }
}
