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
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("Chromium is not installed: run scripts/setup.sh (Debian package `chromium`)");
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

    let profile = d.path().join("chromium-profile");
    let page = format!("file://{}", out.join("report.html").display());
    let o = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(&page)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        dom.contains("</html>"),
        "Chromium rendered nothing: {}",
        String::from_utf8_lossy(&o.stderr)
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
