//! The quarterly export's index page: the quarter's runs, each HIPAA
//! provision's status and each check's outcome across them, and the
//! waivers in force, as one self-contained HTML page.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};

use super::history::{safeguard_pass_rates, CheckHistory, RunEntry, SafeguardHistory, WaiverUse};
use super::markup::esc;

fn day(t: &DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}

/// The index page (`index.html`) of the quarter `quarter` (`2026-Q4`),
/// covering `from` (inclusive) to `to` (exclusive).
#[allow(clippy::too_many_arguments)]
pub(crate) fn index_html(
    env: &str,
    quarter: &str,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
    runs: &[RunEntry],
    excluded: &[RunEntry],
    chain: &[String],
    history: &[CheckHistory],
    safeguards: &[SafeguardHistory],
    waivers: &[WaiverUse],
) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>epic-audit {e} {quarter}</title>\
<style>body{{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#111}}table{{border-collapse:collapse;margin:1em 0}}\
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left}}.pass{{background:#dfd}}.fail{{background:#fcc}}\
.error{{background:#fec}}.warn{{background:#ffc}}.waived{{background:#def}}.skip,.notrun{{color:#888}}\
.satisfied{{background:#dfd}}.notsatisfied{{background:#fcc}}.notassessed{{background:#fec}}.manual{{background:#eee}}</style></head><body>\
<h1>HIPAA evidence export: {e}, {quarter}</h1>\
<p>{n} signed run(s) from {from} to {to} (UTC), each verified before export; generated {now}. \
Verify this archive with <code>epic-audit verify ARCHIVE --pubkey PUBLIC_KEY</code>.</p>",
        e = esc(env),
        n = runs.len(),
        from = from.format("%Y-%m-%d"),
        to = (to - chrono::Duration::days(1)).format("%Y-%m-%d"),
        now = now.format("%Y-%m-%d %H:%M:%SZ"),
    );
    o.push_str("<h2>Runs</h2><table><tr><th>run</th><th>started</th><th>verdict</th><th>exit</th><th>signature</th><th>report</th></tr>");
    for r in runs {
        let _ = write!(
            o,
            "<tr><td>{id}</td><td>{t}</td><td class=\"{v}\">{v}</td><td>{x}</td><td>{s}</td><td><a href=\"runs/{d}/report.html\">report.html</a></td></tr>",
            id = esc(&r.run_id),
            t = r.started_at.format("%Y-%m-%d %H:%M:%SZ"),
            v = esc(&r.verdict),
            x = r.exit_code,
            s = esc(&r.verification.to_string()),
            d = esc(&r.dir),
        );
    }
    o.push_str("</table>");
    if !excluded.is_empty() {
        o.push_str("<h2>Excluded (did not verify)</h2><ul>");
        for r in excluded {
            let _ = write!(
                o,
                "<li>{}: {}</li>",
                esc(&r.dir),
                esc(&r.verification.to_string())
            );
        }
        o.push_str("</ul>");
    }
    o.push_str("<h2>Chain of runs</h2><ul>");
    for line in chain {
        let _ = write!(o, "<li>{}</li>", esc(line));
    }
    o.push_str("</ul>");
    let _ = write!(
        o,
        "<h2>HIPAA safeguards</h2><p>{}</p>",
        esc(super::safeguards::PREAMBLE)
    );
    let starts: Vec<DateTime<Utc>> = runs.iter().map(|r| r.started_at).collect();
    let rates = safeguard_pass_rates(history, safeguards);
    if !rates.is_empty() {
        let _ = write!(
            o,
            "<h3>Pass rate per safeguard over the quarter</h3><p>Per provision, the share of the checks citing it \
             (primary or supporting) that passed in each run: pass, warn or waived, among those judged (skipped, \
             not audited and not run are left out; an error counts as not passed).</p>{}",
            super::svg::safeguard_rates(from, to, &starts, &rates)
        );
    }
    o.push_str("<table><tr><th>provision</th><th>safeguard</th><th>R/A</th>");
    for r in runs {
        let _ = write!(o, "<th>{}</th>", day(&r.started_at));
    }
    o.push_str("<th>last run: why</th><th>remains manual</th></tr>");
    for h in safeguards {
        let _ = write!(
            o,
            "<tr><td>{r} {t}</td><td>{k}</td><td>{s}</td>",
            r = esc(&h.reference),
            t = esc(&h.title),
            k = esc(&h.safeguard),
            s = esc(&h.specification)
        );
        for st in &h.statuses {
            let class = match st.as_str() {
                x if x.starts_with("satisfied") => "satisfied",
                "not satisfied" => "notsatisfied",
                "not assessed" => "notassessed",
                _ => "manual",
            };
            let _ = write!(o, "<td class=\"{class}\">{}</td>", esc(st));
        }
        let _ = write!(
            o,
            "<td>{}</td><td>{}</td></tr>",
            esc(&h.last_reasons.join("; ")),
            esc(&h.manual)
        );
    }
    o.push_str("</table>");
    o.push_str("<h2>Control history</h2>");
    let strips: Vec<(&str, &str, &[super::history::Seen])> = history
        .iter()
        .map(|h| (h.id.as_str(), h.title.as_str(), h.outcomes.as_slice()))
        .collect();
    let _ = write!(
        o,
        "<p>Each strip is one check; each mark one run, placed by when it started, coloured by its outcome \
         (green pass, yellow warn, red fail, orange error, blue waived, grey not audited or not run).</p>{}",
        super::svg::timeline_strips(from, to, &starts, &strips)
    );
    o.push_str("<table><tr><th>check</th><th>HIPAA</th>");
    for r in runs {
        let _ = write!(o, "<th>{}</th>", day(&r.started_at));
    }
    o.push_str("<th>first failure</th><th>fixed</th></tr>");
    for h in history {
        let _ = write!(
            o,
            "<tr><td title=\"{t}\">{id}</td><td>{hipaa}</td>",
            t = esc(&h.title),
            id = esc(&h.id),
            hipaa = esc(&crate::hipaa::list(&h.hipaa))
        );
        for out in &h.outcomes {
            let _ = write!(
                o,
                "<td class=\"{}\">{}</td>",
                out.as_str().replace(' ', ""),
                esc(out.as_str())
            );
        }
        let when = |x: &Option<(String, DateTime<Utc>)>| {
            x.as_ref()
                .map(|(_, t)| day(t).to_string())
                .unwrap_or_else(|| "—".into())
        };
        let _ = write!(
            o,
            "<td>{}</td><td>{}</td></tr>",
            when(&h.first_failure),
            when(&h.fixed)
        );
    }
    o.push_str("</table><h2>Waivers in force during the quarter</h2>");
    if waivers.is_empty() {
        o.push_str("<p>None.</p>");
    } else {
        o.push_str("<table><tr><th>check</th><th>subject</th><th>reason</th><th>approver</th><th>expires</th><th>waived a failure in</th></tr>");
        for w in waivers {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&w.waiver.check),
                esc(w.waiver.subject.as_deref().unwrap_or("all subjects")),
                esc(&w.waiver.reason),
                esc(&w.waiver.approver),
                w.waiver.expires,
                esc(&w.waived_in.join(", "))
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</body></html>\n");
    o
}
