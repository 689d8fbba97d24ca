//! The quarterly export: runs spanning a quarter boundary, each signed by
//! `evaluate`, exported for 2026-Q4, verified as an archive, and every kind
//! of tampering (inside the archive, or of a run before export) caught.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{epic_audit, fixture_evidence};
use epic_audit::evidence::{Observation, Observed};
use serde_json::Value;

struct Setup {
    dir: tempfile::TempDir,
    key: PathBuf,
    public: PathBuf,
}

impl Setup {
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn reports(&self) -> PathBuf {
        self.path().join("reports")
    }
}

/// (start time, CLU-001 failing?) of each run; the first and last fall
/// outside 2026-Q4 by one second.
const RUNS: [(&str, bool); 5] = [
    ("2026-09-30T23:59:59Z", false),
    ("2026-10-01T00:00:00Z", false),
    ("2026-11-15T10:00:00Z", true),
    ("2026-12-20T10:00:00Z", false),
    ("2027-01-01T00:00:00Z", true),
];

/// Signs one `evaluate` run per entry of [`RUNS`] into reports/local/.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = common::keygen(dir.path());
    let s = Setup { key, public, dir };
    // The built-in policy plus a waiver for TLS-004 until 2026-11-30: the
    // test PKI was made on 2026-11-26, so earlier runs see certificates
    // that are not valid yet.
    let policy = s.path().join("policy");
    std::fs::create_dir(&policy).unwrap();
    for (name, body) in epic_audit::policy::BUILTIN {
        std::fs::write(policy.join(name), body).unwrap();
    }
    std::fs::write(
        policy.join("waivers.toml"),
        "[[waiver]]\ncheck = \"TLS-004\"\nreason = \"certificates reissued on 2026-11-26 (CHG-42)\"\n\
         approver = \"CISO (J. Doe)\"\nexpires = 2026-11-30\n",
    )
    .unwrap();
    for (when, failing) in RUNS {
        let mut ev = fixture_evidence();
        let t: chrono::DateTime<chrono::Utc> = when.parse().unwrap();
        ev.started_at = t;
        ev.finished_at = t + chrono::Duration::seconds(7);
        ev.run_id = epic_audit::engine::run_id(t);
        if failing {
            // Slots 0-99 unassigned on every node: CLU-001 fails.
            for e in ev.items.iter_mut() {
                if let Observed::Observation(Observation::ClusterNode(v)) = &mut e.result {
                    for n in v.nodes.iter_mut() {
                        for r in n.slots.iter_mut().filter(|r| r.start == 0) {
                            r.start = 100;
                        }
                    }
                }
            }
        }
        let out = s.reports().join("local").join(&ev.run_id);
        let r = common::evaluate_signed(s.path(), &ev, &s.key, &out, Some(&policy));
        assert!(r.code <= 1, "{}\n{}", r.stdout, r.stderr);
    }
    s
}

fn export(s: &Setup, out: &Path, extra: &[&str]) -> common::RunResult {
    let reports = s.reports();
    let mut args = vec![
        "export",
        "--env",
        "local",
        "--quarter",
        "2026-Q4",
        "--reports",
        reports.to_str().unwrap(),
        "--signing-key",
        s.key.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    epic_audit(&args, s.path())
}

fn verify(s: &Setup, archive: &Path) -> common::RunResult {
    epic_audit(
        &[
            "verify",
            archive.to_str().unwrap(),
            "--pubkey",
            s.public.to_str().unwrap(),
        ],
        s.path(),
    )
}

/// The archive's files (relative to its top directory).
fn read(archive: &Path) -> (String, BTreeMap<String, Vec<u8>>) {
    epic_audit::export::unpack(archive).unwrap()
}

/// Writes `files` back as a .tar.gz under `root`.
fn write(archive: &Path, root: &str, files: &BTreeMap<String, Vec<u8>>) {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, format!("{root}/{name}"), data.as_slice())
            .unwrap();
    }
    std::fs::write(archive, tar.into_inner().unwrap().finish().unwrap()).unwrap();
}

#[test]
fn a_quarter_is_exported_with_its_history_and_verifies() {
    let s = setup();
    let archive = s.path().join("q4.tar.gz");
    let r = export(&s, &archive, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("exported 3 run(s)"), "{}", r.stdout);

    let (root, files) = read(&archive);
    assert_eq!(root, "epic-audit-local-2026-Q4");
    let runs: Vec<&str> = files
        .keys()
        .filter_map(|n| n.strip_prefix("runs/"))
        .filter_map(|n| n.strip_suffix("/report.json"))
        .collect();
    // Exactly the runs inside the quarter: not one second before or after.
    assert_eq!(
        runs,
        ["20261001T000000Z", "20261115T100000Z", "20261220T100000Z"]
    );
    for f in [
        "export.json",
        "history.json",
        "safeguards.json",
        "waivers.json",
        "index.html",
        "manifest.dsse.json",
        "manifest.sigstore.json",
    ] {
        assert!(files.contains_key(f), "{f}");
    }
    // The archive's envelope and bundle, and every run's, verify with
    // third-party tools once unpacked.
    let unpacked = s.path().join("unpacked");
    for (name, data) in &files {
        let p = unpacked.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    let (code, out) = common::third_party(&unpacked, &s.public);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("predicateType https://epic-audit.invalid/predicate/quarterly-export/v1"),
        "{out}"
    );
    for run in &runs {
        let (code, out) = common::third_party(&unpacked.join("runs").join(run), &s.public);
        assert_eq!(code, 0, "{run}: {out}");
    }
    let history: Vec<Value> = serde_json::from_slice(&files["history.json"]).unwrap();
    let clu1 = history.iter().find(|h| h["id"] == "CLU-001").unwrap();
    assert_eq!(
        clu1["outcomes"],
        serde_json::json!(["pass", "fail", "pass"])
    );
    assert_eq!(clu1["first_failure"][0], "20261115T100000Z");
    assert_eq!(clu1["fixed"][0], "20261220T100000Z");
    assert_eq!(clu1["last"], "pass");
    let clu2 = history.iter().find(|h| h["id"] == "CLU-002").unwrap();
    assert!(clu2["first_failure"].is_null() && clu2["fixed"].is_null());
    // The waiver was in force in the first two runs and turned their
    // TLS-004 failures into `waived`; it had expired by the third.
    let waivers: Vec<Value> = serde_json::from_slice(&files["waivers.json"]).unwrap();
    assert_eq!(waivers.len(), 1, "{waivers:?}");
    assert_eq!(waivers[0]["waiver"]["check"], "TLS-004");
    let q4 = serde_json::json!(["20261001T000000Z", "20261115T100000Z"]);
    assert_eq!(waivers[0]["in_force_in"], q4);
    assert_eq!(waivers[0]["waived_in"], q4);
    let tls4 = history.iter().find(|h| h["id"] == "TLS-004").unwrap();
    assert_eq!(
        tls4["outcomes"],
        serde_json::json!(["waived", "waived", "pass"])
    );
    // Per HIPAA provision, the status in each run, under the same rules and
    // in the same words as each run's report: the waived TLS-004 failures
    // leave transmission security not satisfied until the third run;
    // administrative provisions are never satisfied by a scan.
    let safeguards: Vec<Value> = serde_json::from_slice(&files["safeguards.json"]).unwrap();
    let status = |r: &str| {
        safeguards
            .iter()
            .find(|h| h["reference"] == r)
            .unwrap_or_else(|| panic!("no {r}"))["statuses"]
            .clone()
    };
    assert_eq!(
        status("164.312(e)(1)"),
        serde_json::json!([
            "not satisfied",
            "not satisfied",
            "satisfied (automated, partial)"
        ])
    );
    let manual = serde_json::json!([
        "manual assessment required",
        "manual assessment required",
        "manual assessment required"
    ]);
    assert_eq!(status("164.308(a)(7)(i)"), manual);
    let index = String::from_utf8(files["index.html"].clone()).unwrap();
    assert!(index.contains(
        epic_audit::report::safeguards::PREAMBLE
            .split(':')
            .next()
            .unwrap()
    ));
    let report = String::from_utf8(files["runs/20261001T000000Z/report.md"].clone()).unwrap();
    for words in [
        "not satisfied",
        "manual assessment required",
        "satisfied (automated, partial)",
    ] {
        assert!(index.contains(words) && report.contains(words), "{words}");
    }
    assert!(
        index.contains("CHG-42"),
        "waivers are listed on the index page"
    );
    assert!(index.contains("2026-11-15") && index.contains("runs/20261115T100000Z/report.html"));
    assert!(
        !index.contains("http"),
        "self-contained: no external references"
    );

    let v = verify(&s, &archive);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.starts_with("VALID: archive"), "{}", v.stdout);
    assert_eq!(v.stdout.matches(": valid (").count(), 3, "{}", v.stdout);

    // Never overwritten.
    let again = export(&s, &archive, &[]);
    assert_eq!(again.code, 3, "{}", again.stderr);
}

#[test]
fn tampering_with_the_archive_is_caught_and_named() {
    let s = setup();
    let archive = s.path().join("q4.tar.gz");
    assert_eq!(export(&s, &archive, &[]).code, 0);
    let (root, files) = read(&archive);
    let report = "runs/20261115T100000Z/report.json".to_string();

    let case = |name: &str, files: &BTreeMap<String, Vec<u8>>, want: &str| {
        let t = s.path().join(format!("{name}.tar.gz"));
        write(&t, &root, files);
        let v = verify(&s, &t);
        assert_eq!(v.code, 1, "{name}: {}", v.stdout);
        assert!(
            v.stdout.contains(want),
            "{name}: want `{want}` in\n{}",
            v.stdout
        );
    };
    // One flipped byte in a run's report.
    let mut flipped = files.clone();
    let data = flipped.get_mut(&report).unwrap();
    let i = data.len() / 2;
    data[i] ^= 1;
    case("flip", &flipped, &format!("{report}: modified"));
    // A removed file.
    let mut removed = files.clone();
    removed.remove("history.json");
    case("removed", &removed, "history.json: missing");
    // An added file.
    let mut added = files.clone();
    added.insert(
        "runs/20261115T100000Z/note.txt".into(),
        b"all good".to_vec(),
    );
    case(
        "added",
        &added,
        "runs/20261115T100000Z/note.txt: not in the manifest",
    );
    // A signature by another key over the same statement.
    let other = s.path().join("other");
    assert_eq!(
        epic_audit(&["keygen", "--out", other.to_str().unwrap()], s.path()).code,
        0
    );
    let signer = epic_audit::sign::RunSigner::load(&other.join("epic-audit-signing.key")).unwrap();
    let mut swapped = files.clone();
    let env: Value = serde_json::from_slice(&files["manifest.dsse.json"]).unwrap();
    let refs: Vec<(&str, Vec<u8>)> = files
        .iter()
        .filter(|(n, _)| n.as_str() != "manifest.dsse.json")
        .map(|(n, d)| (n.as_str(), d.clone()))
        .collect();
    let forged = signer.envelope(&refs, Value::Null).unwrap();
    let mut forged = serde_json::to_value(&forged).unwrap();
    forged["payload"] = env["payload"].clone();
    swapped.insert(
        "manifest.dsse.json".into(),
        serde_json::to_vec(&forged).unwrap(),
    );
    case("swapped", &swapped, "no valid signature by Ed25519 key");

    // A flipped byte in the compressed archive itself.
    let mut raw = std::fs::read(&archive).unwrap();
    let i = raw.len() / 2;
    raw[i] ^= 0x40;
    let corrupt = s.path().join("corrupt.tar.gz");
    std::fs::write(&corrupt, raw).unwrap();
    let v = verify(&s, &corrupt);
    assert_eq!(v.code, 1, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.starts_with("INVALID"), "{}", v.stdout);
    // Not an archive at all: a usage problem.
    let text = s.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let v = verify(&s, &text);
    assert_eq!(v.code, 3, "{}{}", v.stdout, v.stderr);
    assert!(
        v.stderr
            .contains("neither a run directory nor a readable export archive"),
        "{}",
        v.stderr
    );
}

#[test]
fn a_run_that_does_not_verify_stops_the_export_unless_excluded() {
    let s = setup();
    let tampered = s.reports().join("local/20261220T100000Z/report.json");
    let mut b = std::fs::read(&tampered).unwrap();
    let i = b.len() / 3;
    b[i] ^= 1;
    std::fs::write(&tampered, b).unwrap();

    let archive = s.path().join("q4.tar.gz");
    let r = export(&s, &archive, &[]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("20261220T100000Z: report.json: modified"),
        "{}",
        r.stderr
    );
    assert!(!archive.exists(), "nothing written");

    let r = export(&s, &archive, &["--exclude-unverified"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("EXCLUDED 20261220T100000Z"),
        "{}",
        r.stdout
    );
    let (_, files) = read(&archive);
    let meta: Value = serde_json::from_slice(&files["export.json"]).unwrap();
    assert_eq!(meta["runs"].as_array().unwrap().len(), 2);
    assert_eq!(meta["excluded"][0]["dir"], "20261220T100000Z");
    // CLU-001 still fails at the end of what was exported.
    let history: Vec<Value> = serde_json::from_slice(&files["history.json"]).unwrap();
    let clu1 = history.iter().find(|h| h["id"] == "CLU-001").unwrap();
    assert_eq!(clu1["last"], "fail");
    assert!(clu1["fixed"].is_null());
    assert_eq!(verify(&s, &archive).code, 0);
}

#[test]
fn an_empty_quarter_is_a_usage_error() {
    let s = setup();
    let r = epic_audit(
        &[
            "export",
            "--env",
            "local",
            "--quarter",
            "2026-Q2",
            "--reports",
            s.reports().to_str().unwrap(),
            "--signing-key",
            s.key.to_str().unwrap(),
        ],
        s.path(),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("no run of environment `local` started in 2026-Q2"),
        "{}",
        r.stderr
    );
    let bad = epic_audit(
        &["export", "--env", "local", "--quarter", "2026-Q5"],
        s.path(),
    );
    assert_eq!(bad.code, 3, "a usage error: {}", bad.stderr);
    assert!(bad.stderr.contains("2026-Q5"), "{}", bad.stderr);
}

#[test]
fn the_index_pictures_render_in_chromium_one_strip_per_check_and_a_rate_per_safeguard() {
    let s = setup();
    let archive = s.path().join("q4.tar.gz");
    let r = export(&s, &archive, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let (_, files) = read(&archive);
    let page = s.path().join("index.html");
    std::fs::write(&page, &files["index.html"]).unwrap();
    let html = String::from_utf8_lossy(&files["index.html"]);
    assert!(!html.contains("<script"), "no script in the index");
    let dom = common::chromium_render(&page, "--dump-dom", &s.path().join("profile"));
    let history: Vec<Value> = serde_json::from_slice(&files["history.json"]).unwrap();
    let safeguards: Vec<Value> = serde_json::from_slice(&files["safeguards.json"]).unwrap();

    // The timeline: the quarter on its x axis, one strip per check, one
    // mark per run coloured by that run's outcome.
    let svg = common::tags_with(&dom, "svg", "class=\"timeline\"");
    assert_eq!(svg.len(), 1, "one timeline");
    assert_eq!(common::attr(svg[0], "data-from"), Some("2026-10-01"));
    assert_eq!(common::attr(svg[0], "data-to"), Some("2027-01-01"));
    assert_eq!(common::attr(svg[0], "data-runs"), Some("3"));
    let strips = common::tags_with(&dom, "g", "class=\"strip\"");
    assert_eq!(strips.len(), history.len(), "one strip per check");
    let clu1 = dom.split("data-check=\"CLU-001\"").nth(1).unwrap();
    let clu1 = &clu1[..clu1.find("</g>").unwrap()];
    let marks = common::tags_with(clu1, "rect", "class=\"run\"");
    let outcomes: Vec<&str> = marks
        .iter()
        .map(|m| common::attr(m, "data-outcome").unwrap())
        .collect();
    assert_eq!(outcomes, ["pass", "fail", "pass"]);
    // Placed by time: 1 Oct at the left edge, 15 Nov mid-way, 20 Dec late.
    let xs: Vec<f64> = marks
        .iter()
        .map(|m| common::attr(m, "x").unwrap().parse().unwrap())
        .collect();
    assert!(xs[0] < xs[1] && xs[1] < xs[2], "{xs:?}");
    let frac = (xs[1] - xs[0]) / (xs[2] - xs[0]);
    let want = 45.4 / 80.4; // days from 1 Oct to 15 Nov 10:00, and to 20 Dec 10:00
    assert!((frac - want).abs() < 0.02, "{frac} vs {want}");

    // The pass rate per safeguard: one band per provision, 0-100 %.
    let rates = common::tags_with(&dom, "svg", "class=\"safeguard-rates\"");
    assert_eq!(rates.len(), 1);
    assert_eq!(common::attr(rates[0], "data-y-min"), Some("0"));
    assert_eq!(common::attr(rates[0], "data-y-max"), Some("100"));
    let bands = common::tags_with(&dom, "g", "class=\"rate\"");
    assert_eq!(bands.len(), safeguards.len(), "one band per provision");
    // 164.308(a)(7)(i) is cited by CLU-001 among others: its rate dips in the
    // run where CLU-001 failed, and is back at 100 % after.
    let band = dom
        .split("data-provision=\"164.308(a)(7)(i)\"")
        .nth(1)
        .unwrap();
    let band = &band[..band.find("</g>").unwrap()];
    let dots: Vec<&str> = band
        .match_indices("% passed")
        .map(|(i, _)| {
            let start = band[..i].rfind(' ').unwrap() + 1;
            &band[start..i]
        })
        .collect();
    assert_eq!(dots.len(), 3, "{band}");
    assert_eq!(dots[0], "100");
    assert!(dots[1].parse::<f64>().unwrap() < 100.0, "{dots:?}");
    assert_eq!(dots[2], "100");

    let png = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("export-index.png");
    let _ = std::fs::remove_file(&png);
    // The two pictures alone, for the screenshot.
    let body = html.find("<body>").unwrap() + "<body>".len();
    let svgs: Vec<&str> = html
        .match_indices("<svg ")
        .map(|(i, _)| &html[i..i + html[i..].find("</svg>").unwrap() + "</svg>".len()])
        .collect();
    let pictures = s.path().join("pictures.html");
    let excerpt = format!("{}{}</body></html>", &html[..body], svgs.join("<br>"));
    std::fs::write(&pictures, excerpt).unwrap();
    common::chromium_render(
        &pictures,
        &format!("--screenshot={}", png.display()),
        &s.path().join("profile"),
    );
    assert!(
        std::fs::metadata(&png)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "no screenshot"
    );
}
