//! report.html rendered by a real browser (Debian's Chromium, headless, no
//! network): the page shows the verdict and every failing check.

mod common;

use common::{epic_audit, fixture_evidence};
use epic_audit::evidence::{Observation, Observed};

/// Visible text of a DOM dump: tags and the <style> block removed.
fn text_of(dom: &str) -> String {
    let dom = match (dom.find("<style>"), dom.find("</style>")) {
        (Some(a), Some(b)) => format!("{}{}", &dom[..a], &dom[b..]),
        _ => dom.to_string(),
    };
    let mut out = String::new();
    let mut in_tag = false;
    for ch in dom.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn chromium_shows_the_verdict_and_every_failing_check() {
    let d = tempfile::tempdir().unwrap();
    // Evidence with two defects: AOF off on one node, an open slot on another.
    let mut ev = fixture_evidence();
    for e in ev.items.iter_mut() {
        match &mut e.result {
            Observed::Observation(Observation::DataNode(v)) if e.subject == "127.0.1.2:6379" => {
                v.config.insert("appendonly".into(), "no".into());
            }
            Observed::Observation(Observation::ClusterNode(v)) if e.subject == "127.0.1.1:6379" => {
                let me = v.myself.clone();
                let target = v
                    .nodes
                    .iter()
                    .find(|n| n.id != me && n.is_master())
                    .unwrap()
                    .id
                    .clone();
                v.nodes
                    .iter_mut()
                    .find(|n| n.id == me)
                    .unwrap()
                    .migrating
                    .push(epic_audit::evidence::OpenSlot {
                        slot: 42,
                        node: target,
                    });
            }
            _ => {}
        }
    }
    let evf = d.path().join("evidence.json");
    std::fs::write(&evf, serde_json::to_string(&ev).unwrap()).unwrap();
    let out = d.path().join("run");
    let r = epic_audit(
        &[
            "evaluate",
            evf.to_str().unwrap(),
            "--unsigned",
            "--only",
            "cluster,data",
            "--out",
            out.to_str().unwrap(),
        ],
        d.path(),
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);

    let dom = common::chromium_render(
        &out.join("report.html"),
        "--dump-dom",
        &d.path().join("chromium-profile"),
    );
    let text = text_of(&dom);
    assert!(text.contains("UNSIGNED REPORT"), "{text}");
    assert!(text.contains("Verdict: FAIL (exit code 1)"), "{text}");
    for (id, title) in [
        ("CLU-003", "No slot is left migrating or importing"),
        ("DATA-001", "AOF persistence is on and healthy"),
    ] {
        assert!(
            text.contains(&format!("FAIL {id}: {title}")),
            "{id} not shown: {text}"
        );
    }
    assert!(text.contains("slot 42 migrating to"), "{text}");
    assert!(text.contains("How to fix:"), "{text}");
}

/// Numbers in an SVG `points="x,y x,y"` list.
fn points(tag: &str) -> Vec<(f64, f64)> {
    common::attr(tag, "points")
        .unwrap()
        .split_whitespace()
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

#[test]
fn chromium_draws_one_latency_chart_per_master_with_axes_from_the_data() {
    let d = tempfile::tempdir().unwrap();
    let ev = fixture_evidence();
    let views: Vec<_> = ev
        .latency_views()
        .into_iter()
        .filter_map(|(_, v)| v.ok().cloned())
        .collect();
    assert_eq!(views.len(), 3, "the fixture measured three masters");
    let out = d.path().join("run");
    let r = epic_audit(
        &[
            "evaluate",
            "--accepted-builds",
            common::LAB_ACCEPTED,
            &format!(
                "{}/fixtures/evidence/lab-good.json",
                env!("CARGO_MANIFEST_DIR")
            ),
            "--unsigned",
            "--out",
            out.to_str().unwrap(),
        ],
        d.path(),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script"), "no script in the report");
    let profile = d.path().join("chromium-profile");
    let dom = common::chromium_render(&page, "--dump-dom", &profile);
    let charts: Vec<&str> = dom
        .split("<svg ")
        .skip(1)
        .filter(|c| c.contains("latency-chart"))
        .collect();
    assert_eq!(charts.len(), views.len(), "one chart per master");
    for v in &views {
        let chart = charts
            .iter()
            .find(|c| c.contains(&format!("data-master=\"{}\"", v.master)))
            .unwrap_or_else(|| panic!("no chart for {}", v.master));
        let chart = &chart[..chart.find("</svg>").unwrap()];
        let head = &chart[..chart.find('>').unwrap()];
        let num = |k: &str| -> f64 { common::attr(head, k).unwrap().parse().unwrap() };
        // The y axis spans whole decades around exactly the data drawn.
        let server = epic_audit::report::svg::server_points(v);
        let data: Vec<f64> = [
            v.corrected.p50_us,
            v.corrected.max_us,
            v.raw.p50_us,
            v.raw.max_us,
        ]
        .iter()
        .map(|u| *u as f64)
        .chain(server.iter().map(|p| p.1))
        .collect();
        let lo = data.iter().copied().fold(f64::INFINITY, f64::min).max(1.0);
        let hi = data.iter().copied().fold(0.0, f64::max);
        assert_eq!(num("data-data-min-us"), lo, "{head}");
        assert_eq!(num("data-data-max-us"), hi, "{head}");
        assert!(
            num("data-y-min-us") <= lo && num("data-y-min-us") * 10.0 > lo,
            "{head}"
        );
        assert!(
            num("data-y-max-us") >= hi && num("data-y-max-us") / 10.0 < hi,
            "{head}"
        );
        // Three series: client corrected and raw (p50 to max), server (p50, p99, p99.9).
        let series = common::tags_with(chart, "g", "data-series=");
        let names: Vec<&str> = series
            .iter()
            .map(|g| common::attr(g, "data-series").unwrap())
            .collect();
        assert_eq!(names, ["corrected", "raw", "server"], "{}", v.master);
        let lines = common::tags_with(chart, "polyline", "points=");
        assert_eq!(
            lines.iter().map(|l| points(l).len()).collect::<Vec<_>>(),
            [5, 5, server.len()]
        );
        assert!(
            server.len() >= 2,
            "latencystats gave {:?}",
            v.server_latencystats
        );
        // Percentiles go left to right, latency never down, and the
        // corrected p99 sits above the server's own p99.
        for l in &lines {
            let p = points(l);
            assert!(
                p.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 >= w[1].1),
                "{l}"
            );
        }
    }
    // For people: a picture of the page, kept for the reviewer.
    let png = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-latency.png");
    let _ = std::fs::remove_file(&png);
    common::chromium_render(
        &page_at_latency(&out),
        &format!("--screenshot={}", png.display()),
        &profile,
    );
    assert!(
        std::fs::metadata(&png)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "no screenshot"
    );
}

/// A copy of report.html that opens at its latency section, for the
/// screenshot (headless Chromium shows the top of the page).
fn page_at_latency(out: &std::path::Path) -> std::path::PathBuf {
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let at = html.find("<h2 id=\"latency\"").unwrap();
    let head_end = html.find("<body>").unwrap() + "<body>".len();
    let page = out.with_file_name("latency-only.html");
    std::fs::write(&page, format!("{}{}", &html[..head_end], &html[at..])).unwrap();
    page
}
