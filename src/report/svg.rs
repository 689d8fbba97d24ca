//! Pictures as inline SVG (HTML5 inline, so not even a namespace URL): no
//! script, no font or image fetched, readable with styles off (every mark
//! has a `<title>`), and every figure carries its data range as attributes
//! (`data-*`) so tests can check the axes.
//!
//! - [`latency_chart`]: one master's latency percentile spectrum (p50 to
//!   max) on a "nines" axis, client corrected vs raw vs server-side.
//! - [`timeline_strips`]: per check, its outcome in each run of a quarter,
//!   placed by when the run started.
//! - [`safeguard_rates`]: per HIPAA provision, the share of its checks
//!   that passed in each run, over the quarter.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Utc};

use super::markup::esc;
use crate::evidence::{Distribution, LatencyView};

/// One point of a percentile spectrum: (percentile, or `None` for max; µs).
type Point = (Option<f64>, f64);

/// The x position of a percentile on the nines axis: log10(1 / (1 - p)),
/// so p50, p90, p99 and p99.9 are evenly spaced; max sits one step past
/// p99.9.
fn nines(p: Option<f64>) -> f64 {
    match p {
        Some(p) => (1.0 / (1.0 - p / 100.0)).log10(),
        None => 3.6,
    }
}

fn spectrum(d: &Distribution) -> Vec<Point> {
    vec![
        (Some(50.0), d.p50_us as f64),
        (Some(90.0), d.p90_us as f64),
        (Some(99.0), d.p99_us as f64),
        (Some(99.9), d.p999_us as f64),
        (None, d.max_us as f64),
    ]
}

/// The server's own HGETALL percentiles (INFO latencystats: `p50=..,p99=..`).
pub fn server_points(v: &LatencyView) -> Vec<Point> {
    v.server_latencystats
        .get("hgetall")
        .map(|s| {
            s.split(',')
                .filter_map(|kv| {
                    let (k, val) = kv.split_once('=')?;
                    let p: f64 = k.trim().strip_prefix('p')?.parse().ok()?;
                    let us: f64 = val.trim().parse().ok()?;
                    (p > 0.0 && p < 100.0).then_some((Some(p), us))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Microseconds as a short label.
fn us_label(us: f64) -> String {
    match us {
        u if u >= 1_000_000.0 => format!("{} s", u / 1_000_000.0),
        u if u >= 1000.0 => format!("{} ms", u / 1000.0),
        u => format!("{u} µs"),
    }
}

fn pct_label(p: Option<f64>) -> String {
    match p {
        Some(p) => format!("p{p}"),
        None => "max".into(),
    }
}

/// The latency percentile chart of one master.
pub(crate) fn latency_chart(v: &LatencyView) -> String {
    let series: [(&str, &str, &str, Vec<Point>); 4] = [
        (
            "corrected",
            "client, corrected (from intended send)",
            "stroke:#b3261e",
            spectrum(&v.corrected),
        ),
        (
            "raw",
            "client, raw (from actual send)",
            "stroke:#1f5fbf;stroke-dasharray:6 3",
            spectrum(&v.raw),
        ),
        (
            "server",
            "server-side HGETALL (INFO latencystats)",
            "stroke:#2e7d32;stroke-dasharray:2 3",
            server_points(v),
        ),
        (
            "host",
            "auditing host's own timer lateness (same window)",
            "stroke:#7b1fa2;stroke-dasharray:1 2",
            v.host
                .as_ref()
                .map(|h| spectrum(&h.lateness))
                .unwrap_or_default(),
        ),
    ];
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.3.iter().map(|p| p.1.max(1.0)))
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(0.0f64, f64::max);
    let (lo, hi) = if all.is_empty() {
        (1.0, 10.0)
    } else {
        (lo, hi)
    };
    // Whole decades around the data.
    let (d0, mut d1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    if d1 <= d0 {
        d1 = d0 + 1;
    }
    let (y_min, y_max) = (10f64.powi(d0), 10f64.powi(d1));
    let (w, h, left, right, top, bottom) = (560.0, 280.0, 64.0, 200.0, 16.0, 40.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let (x0, x1) = (nines(Some(50.0)) - 0.15, nines(None) + 0.15);
    let x = |p: Option<f64>| left + (nines(p) - x0) / (x1 - x0) * pw;
    let y = |us: f64| top + ph - (us.max(1.0).log10() - d0 as f64) / (d1 - d0) as f64 * ph;
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg class=\"latency-chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         role=\"img\" data-master=\"{m}\" data-y-min-us=\"{y_min}\" data-y-max-us=\"{y_max}\" data-data-min-us=\"{lo}\" data-data-max-us=\"{hi}\" \
         font-family=\"sans-serif\" font-size=\"11\"><title>Latency percentiles on {m}: client corrected, client raw, server-side HGETALL, the auditing host's own</title>",
        m = esc(&v.master)
    );
    // Axes, decade grid lines and labels.
    for d in d0..=d1 {
        let us = 10f64.powi(d);
        let yy = y(us);
        let _ = write!(
            o,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>\
             <text class=\"y-tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left + pw,
            left - 6.0,
            yy + 4.0,
            us_label(us)
        );
    }
    for p in [Some(50.0), Some(90.0), Some(99.0), Some(99.9), None] {
        let xx = x(p);
        let _ = write!(
            o,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{top}\" y2=\"{:.1}\" stroke=\"#eee\"/>\
             <text class=\"x-tick\" x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            top + ph,
            top + ph + 16.0,
            pct_label(p)
        );
    }
    let _ = write!(
        o,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#888\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">percentile (log scale of 1/(1-p))</text>",
        left + pw / 2.0,
        h - 6.0
    );
    for (i, (key, label, style, points)) in series.iter().enumerate() {
        if points.is_empty() {
            continue;
        }
        let path: Vec<String> = points
            .iter()
            .map(|(p, us)| format!("{:.1},{:.1}", x(*p), y(*us)))
            .collect();
        let _ = write!(
            o,
            "<g class=\"series\" data-series=\"{key}\" data-points=\"{}\"><polyline fill=\"none\" stroke-width=\"2\" style=\"{style}\" points=\"{}\"/>",
            points.len(),
            path.join(" ")
        );
        for (p, us) in points {
            let _ = write!(
                o,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#fff\" stroke-width=\"1.5\" style=\"{style};stroke-dasharray:none\">\
                 <title>{} {label}: {}</title></circle>",
                x(*p),
                y(*us),
                pct_label(*p),
                us_label(*us)
            );
        }
        let ly = top + 14.0 + i as f64 * 18.0;
        let _ = write!(
            o,
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke-width=\"2\" style=\"{style}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            left + pw + 10.0,
            left + pw + 34.0,
            left + pw + 40.0,
            ly + 4.0,
            esc(label.split(" (").next().unwrap_or(label))
        );
    }
    o.push_str("</svg>");
    o
}

/// Colours of outcomes, shared by the strips and the report's badges.
fn outcome_colour(o: &str) -> &'static str {
    match o {
        "pass" => "#3a9d4a",
        "warn" => "#e0b000",
        "fail" => "#c62828",
        "error" => "#ef6c00",
        "waived" => "#5c8dd6",
        "incomplete" => "#9e9e9e",
        _ => "#e0e0e0",
    }
}

/// The x axis of a quarter: (position of a time, month ticks).
struct TimeAxis {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    left: f64,
    width: f64,
}

impl TimeAxis {
    fn x(&self, t: DateTime<Utc>) -> f64 {
        let span = (self.to - self.from).num_seconds().max(1) as f64;
        let at = (t - self.from).num_seconds().clamp(0, span as i64) as f64;
        self.left + at / span * self.width
    }

    /// Month starts inside the range, labelled `Oct`, ...
    fn ticks(&self, o: &mut String, top: f64, bottom: f64) {
        let mut m = self.from.date_naive().with_day(1).expect("day 1 exists");
        while let Some(t) = m.and_hms_opt(0, 0, 0).map(|d| d.and_utc()) {
            if t >= self.to {
                break;
            }
            if t >= self.from {
                let xx = self.x(t);
                let _ = write!(
                    o,
                    "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{top:.1}\" y2=\"{bottom:.1}\" stroke=\"#ccc\"/>\
                     <text class=\"x-tick\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    xx + 3.0,
                    bottom + 14.0,
                    t.format("%b %Y")
                );
            }
            m = match m.checked_add_months(chrono::Months::new(1)) {
                Some(n) => n,
                None => break,
            };
        }
    }
}

/// Per check, a strip with its outcome in each run, placed by the run's
/// start within `[from, to)`. `checks` is (id, title, outcome per run);
/// `runs` the runs' start times, in the same order as the outcomes.
pub(crate) fn timeline_strips(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    runs: &[DateTime<Utc>],
    checks: &[(&str, &str, &[super::history::Seen])],
) -> String {
    let (left, width, row, top) = (90.0, 640.0, 14.0, 8.0);
    let h = top + row * checks.len() as f64 + 30.0;
    let axis = TimeAxis {
        from,
        to,
        left,
        width,
    };
    // Wide enough to see, narrow enough that a week of daily runs stays apart.
    let mark = (width / runs.len().max(1) as f64 * 0.8).clamp(2.0, 12.0);
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg class=\"timeline\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
         data-from=\"{f}\" data-to=\"{t}\" data-runs=\"{n}\" font-family=\"sans-serif\" font-size=\"10\">\
         <title>Outcome of each check in each run, {f} to {t}</title>",
        w = left + width + 10.0,
        f = from.format("%Y-%m-%d"),
        t = to.format("%Y-%m-%d"),
        n = runs.len()
    );
    for (i, (id, title, outcomes)) in checks.iter().enumerate() {
        let yy = top + i as f64 * row;
        let _ = write!(
            o,
            "<g class=\"strip\" data-check=\"{id}\"><title>{id} {t}</title>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{id}</text>\
             <rect x=\"{left}\" y=\"{:.1}\" width=\"{width}\" height=\"{:.1}\" fill=\"#f6f6f6\"/>",
            left - 6.0,
            yy + row - 4.0,
            yy + 1.0,
            row - 2.0,
            id = esc(id),
            t = esc(title)
        );
        for (when, outcome) in runs.iter().zip(outcomes.iter()) {
            let _ = write!(
                o,
                "<rect class=\"run\" data-outcome=\"{oc}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{mark:.1}\" height=\"{:.1}\" fill=\"{}\">\
                 <title>{} {oc}</title></rect>",
                (axis.x(*when) - mark / 2.0).clamp(left, left + width - mark),
                yy + 1.0,
                row - 2.0,
                outcome_colour(outcome.as_str()),
                when.format("%Y-%m-%d %H:%MZ"),
                oc = esc(outcome.as_str())
            );
        }
        o.push_str("</g>");
    }
    let bottom = top + row * checks.len() as f64;
    axis.ticks(&mut o, top, bottom);
    o.push_str("</svg>");
    o
}

/// Per provision, a band with the share of its checks that passed (pass,
/// warn or waived among those judged) in each run, placed by the run's
/// start. `rates` is (provision, title, share per run; `None` where no
/// judged check cited it).
pub(crate) fn safeguard_rates(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    runs: &[DateTime<Utc>],
    rates: &[(String, String, Vec<Option<f64>>)],
) -> String {
    let (left, width, band, gap, top) = (150.0, 600.0, 28.0, 10.0, 8.0);
    let h = top + (band + gap) * rates.len() as f64 + 30.0;
    let axis = TimeAxis {
        from,
        to,
        left,
        width,
    };
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg class=\"safeguard-rates\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
         data-from=\"{f}\" data-to=\"{t}\" data-y-min=\"0\" data-y-max=\"100\" font-family=\"sans-serif\" font-size=\"10\">\
         <title>Share of each provision's checks that passed, per run, {f} to {t}</title>",
        w = left + width + 40.0,
        f = from.format("%Y-%m-%d"),
        t = to.format("%Y-%m-%d"),
    );
    for (i, (reference, title, per_run)) in rates.iter().enumerate() {
        let y0 = top + i as f64 * (band + gap);
        let y = |r: f64| y0 + band - r * band;
        let _ = write!(
            o,
            "<g class=\"rate\" data-provision=\"{r}\"><title>{r} {t}</title>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{r}</text>\
             <rect x=\"{left}\" y=\"{y0:.1}\" width=\"{width}\" height=\"{band}\" fill=\"#fbe9e7\"/>\
             <line x1=\"{left}\" x2=\"{:.1}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"#c8e6c9\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#666\">100%</text><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#666\">0%</text>",
            left - 6.0,
            y0 + band / 2.0 + 4.0,
            left + width,
            left + width + 4.0,
            y0 + 8.0,
            left + width + 4.0,
            y0 + band,
            r = esc(reference),
            t = esc(title)
        );
        let pts: Vec<(f64, f64)> = runs
            .iter()
            .zip(per_run.iter())
            .filter_map(|(t, r)| r.map(|r| (axis.x(*t), y(r))))
            .collect();
        if !pts.is_empty() {
            let path: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
            let _ = write!(
                o,
                "<polyline fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"1.5\" points=\"{}\"/>",
                path.join(" ")
            );
        }
        for (t, r) in runs.iter().zip(per_run.iter()) {
            if let Some(r) = r {
                let _ = write!(
                    o,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#1f5fbf\"><title>{} {:.0}% passed</title></circle>",
                    axis.x(*t),
                    y(*r),
                    t.format("%Y-%m-%d %H:%MZ"),
                    r * 100.0
                );
            }
        }
        o.push_str("</g>");
    }
    let bottom = top + (band + gap) * rates.len() as f64;
    axis.ticks(&mut o, top, bottom);
    o.push_str("</svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_spaces_p50_to_p999_evenly_and_max_after() {
        let xs: Vec<f64> = [Some(90.0), Some(99.0), Some(99.9)]
            .iter()
            .map(|p| nines(*p))
            .collect();
        assert!((xs[0] - 1.0).abs() < 1e-9 && (xs[1] - 2.0).abs() < 1e-9);
        assert!((xs[2] - 3.0).abs() < 1e-6);
        assert!(nines(None) > xs[2]);
        assert_eq!(us_label(1000.0), "1 ms");
        assert_eq!(us_label(10.0), "10 µs");
    }
}
