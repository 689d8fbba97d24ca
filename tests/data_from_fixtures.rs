//! Data and monitoring checks judged from fixture evidence recorded on the
//! real lab, unmodified and with one defect each.

mod common;

use common::{codes, fixture_evidence, judge_areas, messages, not_passing, observations_mut, only};
use epic_audit::checks::Outcome;
use epic_audit::evidence::{DataNodeView, ExporterView, SessionScanView};
use epic_audit::evidence::{EvidenceSet, Observation, Observed, ProbeFailure};
use epic_audit::report::Report;

fn judge_area(ev: &EvidenceSet) -> Report {
    judge_areas(ev, &["data", "monitoring"])
}

fn nodes(ev: &mut EvidenceSet) -> Vec<(String, &mut DataNodeView)> {
    observations_mut(ev, |o| match o {
        Observation::DataNode(v) => Some(v),
        _ => None,
    })
}

fn scans(ev: &mut EvidenceSet) -> Vec<&mut SessionScanView> {
    let scans = observations_mut(ev, |o| match o {
        Observation::SessionScan(v) => Some(v),
        _ => None,
    });
    scans.into_iter().map(|(_, v)| v.as_mut()).collect()
}

fn exporters(ev: &mut EvidenceSet) -> Vec<&mut ExporterView> {
    let scrapes = observations_mut(ev, |o| match o {
        Observation::Exporter(v) => Some(v),
        _ => None,
    });
    scrapes.into_iter().map(|(_, v)| v).collect()
}

#[test]
fn good_lab_passes_every_data_and_monitoring_check() {
    let r = judge_area(&fixture_evidence());
    assert_eq!(r.checks.len(), 14);
    assert_eq!(not_passing(&r), vec![]);
}

#[test]
fn each_config_defect_fails_its_check_only() {
    // (setting, value, the check it fails, the failing subject's code)
    let cases: [(&str, &str, &str); 11] = [
        ("timeout", "0", "DATA-006/idle-never-closed"),
        ("timeout", "3600", "DATA-006/idle-timeout-too-long"),
        ("maxclients", "50000", "DATA-006/too-many-clients"),
        ("tcp-keepalive", "0", "DATA-006/no-keepalive"),
        ("acllog-max-len", "16", "MON-002/acl-log-too-short"),
        ("loglevel", "warning", "MON-002/log-level-too-low"),
        ("appendonly", "no", "DATA-001/aof-off"),
        ("appendfsync", "no", "DATA-001/fsync-not-allowed"),
        (
            "maxmemory-policy",
            "allkeys-lru",
            "DATA-002/eviction-policy",
        ),
        (
            "enable-debug-command",
            "yes",
            "DATA-003/setting-not-hardened",
        ),
        ("aclfile", "", "DATA-003/no-acl-file"),
    ];
    for (key, value, code) in cases {
        let id = code.split('/').next().unwrap();
        let mut ev = fixture_evidence();
        for (s, v) in nodes(&mut ev) {
            if s.starts_with("127.0.1.2:") {
                v.config.insert(key.into(), value.into());
            }
        }
        let r = judge_area(&ev);
        assert_eq!(not_passing(&r), only(id, Outcome::Fail), "{key}={value}");
        assert_eq!(
            codes(&r, id),
            vec![("127.0.1.2:6379".to_string(), code.to_string())],
            "{key}={value}"
        );
    }
}

#[test]
fn a_server_logging_to_stdout_only_fails_the_audit_trail_and_says_what_redis_cannot_record() {
    let mut ev = fixture_evidence();
    for (s, v) in nodes(&mut ev) {
        if s.starts_with("127.0.1.5:") {
            v.config.insert("logfile".into(), "".into());
        }
    }
    let r = judge_area(&ev);
    assert_eq!(not_passing(&r), only("MON-002", Outcome::Fail));
    let c = r.checks.iter().find(|c| c.id == "MON-002").unwrap();
    for s in &c.subjects {
        // Every finding, pass or fail, says what Redis cannot record.
        assert!(
            s.message
                .contains("Redis keeps no log of the commands clients run"),
            "{}",
            s.message
        );
        if s.outcome == Outcome::Fail {
            assert!(s.message.contains("standard output only"), "{}", s.message);
        }
    }
    // syslog instead of a file is durable too.
    let mut ev = fixture_evidence();
    for (_, v) in nodes(&mut ev) {
        v.config.insert("logfile".into(), "".into());
        v.config.insert("syslog-enabled".into(), "yes".into());
    }
    assert_eq!(not_passing(&judge_area(&ev)), vec![]);
}

#[test]
fn modules_are_judged_against_the_allowlist_and_across_nodes() {
    use epic_audit::evidence::ModuleInfo;
    let m = |name: &str, version: &str| ModuleInfo {
        name: name.into(),
        version: version.into(),
    };
    // Redis 8's built-in vectorset on every node: allowlisted with a reason.
    let mut ev = fixture_evidence();
    for (_, v) in nodes(&mut ev) {
        v.modules = Some(vec![m("vectorset", "1")]);
    }
    let r = judge_area(&ev);
    assert_eq!(not_passing(&r), vec![]);
    let c = r.checks.iter().find(|c| c.id == "DATA-007").unwrap();
    assert!(
        c.subjects[0]
            .message
            .contains("vectorset: built into Redis 8"),
        "{}",
        c.subjects[0].message
    );
    // A module nobody approved, on one node: DATA-007 only, naming it there,
    // and every node says the nodes differ.
    let mut ev = fixture_evidence();
    for (s, v) in nodes(&mut ev) {
        if s.starts_with("127.0.1.3:") {
            v.modules = Some(vec![m("rejson", "20609")]);
        }
    }
    let r = judge_area(&ev);
    assert_eq!(not_passing(&r), only("DATA-007", Outcome::Fail));
    let c = r.checks.iter().find(|c| c.id == "DATA-007").unwrap();
    for s in &c.subjects {
        assert_eq!(s.outcome, Outcome::Fail, "{}", s.subject);
        assert!(
            s.message.contains("do not load the same modules"),
            "{}",
            s.message
        );
        assert_eq!(
            s.message.contains(
                "module `rejson` (ver 20609) is loaded but not in the policy's allowlist"
            ),
            s.subject.starts_with("127.0.1.3:"),
            "{}: {}",
            s.subject,
            s.message
        );
    }
    // Evidence without INFO modules (an older epic-audit's): error, never pass.
    let mut ev = fixture_evidence();
    for (_, v) in nodes(&mut ev) {
        v.modules = None;
    }
    let r = judge_area(&ev);
    assert_eq!(not_passing(&r), only("DATA-007", Outcome::Error));
}

#[test]
fn a_setting_the_node_did_not_report_is_an_error_never_a_pass() {
    let mut ev = fixture_evidence();
    for (_, v) in nodes(&mut ev) {
        v.config.remove("timeout");
        v.config.remove("loglevel");
    }
    let r = judge_area(&ev);
    let mut bad = not_passing(&r);
    bad.sort();
    assert_eq!(
        bad,
        vec![
            ("DATA-006".to_string(), Outcome::Error),
            ("MON-002".to_string(), Outcome::Error)
        ]
    );
    for id in ["DATA-006", "MON-002"] {
        let got = codes(&r, id);
        assert_eq!(got.len(), 6, "{id}: {got:?}");
        assert!(got
            .iter()
            .all(|(_, c)| *c == format!("{id}/setting-not-reported")));
    }
}

#[test]
fn a_failed_aof_write_fails() {
    let mut ev = fixture_evidence();
    for (_, v) in nodes(&mut ev) {
        v.persistence
            .insert("aof_last_write_status".into(), "err".into());
    }
    let r = judge_area(&ev);
    assert_eq!(not_passing(&r), only("DATA-001", Outcome::Fail));
    assert!(codes(&r, "DATA-001")
        .iter()
        .all(|(_, c)| c == "DATA-001/aof-write-failed"));
}

#[test]
fn a_failed_rdb_save_fails_and_an_unreported_one_is_error() {
    let mut ev = fixture_evidence();
    let mut first = None;
    for (s, v) in nodes(&mut ev) {
        if first.is_none() {
            v.persistence
                .insert("rdb_last_bgsave_status".into(), "err".into());
            first = Some(s);
        }
    }
    let r = judge_area(&ev);
    assert_eq!(not_passing(&r), only("DATA-001", Outcome::Fail));
    let c = r.checks.iter().find(|c| c.id == "DATA-001").unwrap();
    let failing: Vec<_> = c
        .subjects
        .iter()
        .filter(|s| s.outcome != Outcome::Pass)
        .collect();
    assert_eq!(failing.len(), 1);
    assert_eq!(Some(&failing[0].subject), first.as_ref());
    assert_eq!(failing[0].code, "DATA-001/rdb-save-failed");
    // Evidence without the field does not pass on what was not observed.
    let mut ev = fixture_evidence();
    for (_, v) in nodes(&mut ev) {
        v.persistence.remove("rdb_last_bgsave_status");
    }
    let r = judge_area(&ev);
    assert_eq!(not_passing(&r), only("DATA-001", Outcome::Error));
    assert!(codes(&r, "DATA-001")
        .iter()
        .all(|(_, c)| c == "DATA-001/rdb-status-unobserved"));
}

#[test]
fn a_master_without_replica_warns_and_a_broken_link_fails() {
    let mut ev = fixture_evidence();
    for (_, v) in nodes(&mut ev) {
        if v.replication.get("role").map(String::as_str) == Some("master") {
            v.replication.retain(|k, _| !k.starts_with("slave"));
            v.replication.insert("connected_slaves".into(), "0".into());
            break;
        }
    }
    let r = judge_area(&ev);
    assert_eq!(not_passing(&r), only("DATA-004", Outcome::Warn));
    assert_eq!(codes(&r, "DATA-004")[0].1, "DATA-004/too-few-replicas");
    let mut ev = fixture_evidence();
    for (_, v) in nodes(&mut ev) {
        if v.replication.get("role").map(String::as_str) == Some("slave") {
            v.replication
                .insert("master_link_status".into(), "down".into());
            break;
        }
    }
    let r = judge_area(&ev);
    assert_eq!(not_passing(&r), only("DATA-004", Outcome::Fail));
    assert_eq!(codes(&r, "DATA-004")[0].1, "DATA-004/replica-link-down");
}

#[test]
fn session_keys_without_or_with_long_ttl_fail_and_non_hashes_warn() {
    let mut ev = fixture_evidence();
    scans(&mut ev)[0].no_ttl = vec!["a1b2c3d4e5f6".into()];
    let r = judge_area(&ev);
    assert_eq!(not_passing(&r), only("DATA-005", Outcome::Fail));
    let mut ev = fixture_evidence();
    scans(&mut ev)[1].ttl_too_long = vec![("0f0f0f0f0f0f".into(), 86400)];
    assert_eq!(
        not_passing(&judge_area(&ev)),
        only("DATA-005", Outcome::Fail)
    );
    let mut ev = fixture_evidence();
    scans(&mut ev)[2].not_hash = vec![("0e0e0e0e0e0e".into(), "string".into())];
    assert_eq!(
        not_passing(&judge_area(&ev)),
        only("DATA-005", Outcome::Warn)
    );
    // A sampled scan says so.
    let mut ev = fixture_evidence();
    scans(&mut ev)[0].complete = false;
    let r = judge_area(&ev);
    assert_eq!(not_passing(&r), vec![]);
    let c = r.checks.iter().find(|c| c.id == "DATA-005").unwrap();
    assert!(c
        .subjects
        .iter()
        .any(|s| s.observed.contains("sample: the cap was reached")));
}

#[test]
fn exporter_unreachable_or_unhealthy_fails() {
    let mut ev = fixture_evidence();
    let e = &mut exporters(&mut ev)[0];
    e.reachable = false;
    e.error = Some("cannot connect: Connection refused".into());
    // What the exporter publishes is then unknown too (MON-006 errors).
    assert_eq!(
        not_passing(&judge_area(&ev)),
        vec![
            ("MON-001".to_string(), Outcome::Fail),
            ("MON-006".to_string(), Outcome::Error)
        ]
    );
    for (metric, value) in [
        ("redis_up", 0.0),
        ("redis_cluster_state", 0.0),
        ("redis_exporter_last_scrape_error", 1.0),
    ] {
        let mut ev = fixture_evidence();
        exporters(&mut ev)[1].metrics.insert(metric.into(), value);
        assert_eq!(
            not_passing(&judge_area(&ev)),
            only("MON-001", Outcome::Fail),
            "{metric}"
        );
    }
}

#[test]
fn unobserved_nodes_are_errors_never_passes() {
    let mut ev = fixture_evidence();
    for e in ev
        .items
        .iter_mut()
        .filter(|e| e.probe.as_str().starts_with("data."))
    {
        e.result = Observed::Failure(ProbeFailure {
            kind: epic_audit::evidence::FailureKind::Timeout,
            message: format!("{}: no answer", e.subject),
        });
    }
    let r = judge_area(&ev);
    for c in r.checks.iter().filter(|c| c.id.starts_with("DATA-")) {
        assert_eq!(c.outcome, Outcome::Error, "{}", c.id);
    }
}

#[test]
fn fixture_evidence_holds_no_session_key_name() {
    let text = serde_json::to_string(&fixture_evidence()).unwrap();
    // The lab's session ids are 32 hex digits after `session:`; the only
    // session-namespace names in evidence are the synthetic probe samples.
    for (i, _) in text.match_indices("session:") {
        let rest = &text[i + 8..];
        let id: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        assert!(
            id.len() < 32,
            "a session key name is in the evidence: session:{id}"
        );
    }
}

#[test]
fn session_scan_without_evidence_is_never_a_pass() {
    // No key matches the pattern on any master: nothing was judged.
    let mut ev = fixture_evidence();
    for s in scans(&mut ev) {
        s.scanned = 0;
        s.longest_ttl_s = None;
    }
    let r = judge_area(&ev);
    assert_eq!(not_passing(&r), only("DATA-005", Outcome::Warn));
    assert!(
        common::messages(&r, "DATA-005")
            .iter()
            .all(|m| m.contains("no key matches session:* on any master")),
        "{:?}",
        common::messages(&r, "DATA-005")
    );
    // TTL/TYPE answered with errors: those keys are not judged, and the
    // finding names the reply.
    let mut ev = fixture_evidence();
    scans(&mut ev)[0].unreadable = vec![(
        "a1a1a1a1a1a1".into(),
        "NOPERM User auditor has no permissions to access one of the keys".into(),
    )];
    let r = judge_area(&ev);
    assert_eq!(not_passing(&r), only("DATA-005", Outcome::Error));
    assert!(
        common::messages(&r, "DATA-005")[0].contains("NOPERM"),
        "{:?}",
        common::messages(&r, "DATA-005")
    );
}

#[test]
fn evaluate_judges_session_ttls_against_the_policy_it_is_given() {
    use epic_audit::policy::Policy;
    let ev = fixture_evidence();
    let tightened = |from: &str, to: &str| {
        let text = epic_audit::policy::builtin_file("data.toml").replace(from, to);
        assert!(text.contains(to));
        Policy::from_files(vec![("data.toml".into(), text)], "t").unwrap()
    };
    let judge_with = |p: &Policy| {
        let sel = p.select(&["DATA-005".into()], &[]).unwrap();
        epic_audit::engine::judge(&ev, p, &sel, &[], &[])
    };
    // The lab's sessions live up to 1800 s: a 600 s logoff fails them,
    // from the same evidence, with the new figure in the message.
    let r = judge_with(&tightened("max_ttl_s = 1800", "max_ttl_s = 600"));
    assert_eq!(r.checks[0].outcome, Outcome::Fail);
    assert!(
        common::messages(&r, "DATA-005")[0].contains("600 s logoff"),
        "{:?}",
        common::messages(&r, "DATA-005")
    );
    assert_eq!(
        judge_with(&tightened("max_ttl_s = 1800", "max_ttl_s = 3600")).checks[0].outcome,
        Outcome::Pass
    );
    // Evidence scanned under another pattern cannot answer for this one.
    let r = judge_with(&tightened(
        "pattern = \"session:*\"",
        "pattern = \"sess:*\"",
    ));
    assert_eq!(r.checks[0].outcome, Outcome::Error);
    assert!(
        common::messages(&r, "DATA-005")[0].contains("run the audit again"),
        "{:?}",
        common::messages(&r, "DATA-005")
    );
}

#[test]
fn settings_a_node_did_not_give_are_errors_never_a_fail_or_a_pass() {
    // CONFIG renamed on one node: its INFO-based checks are still judged
    // (DATA-004 replication, DATA-007 modules), every check that needs a
    // setting errors with the probe's cause.
    let mut ev = fixture_evidence();
    let why = "127.0.1.2:6379: the node does not know `CONFIG GET`: CONFIG is renamed or disabled \
               there (rename-command in its redis.conf), so its settings cannot be read; set \
               config_command in the environment to the name it has there";
    for (subject, v) in nodes(&mut ev) {
        if subject == "127.0.1.2:6379" {
            v.config.clear();
            v.config_unread = Some(why.into());
        }
    }
    let r = judge_area(&ev);
    let mut bad = not_passing(&r);
    bad.sort();
    assert_eq!(
        bad,
        ["DATA-001", "DATA-002", "DATA-003", "DATA-006", "MON-002"]
            .iter()
            .map(|i| (i.to_string(), Outcome::Error))
            .collect::<Vec<_>>()
    );
    for id in ["DATA-001", "DATA-002", "DATA-003", "DATA-006", "MON-002"] {
        assert_eq!(
            codes(&r, id),
            [(
                "127.0.1.2:6379".to_string(),
                format!("{id}/setting-not-reported")
            )]
        );
        assert!(messages(&r, id)[0].contains("config_command"), "{id}");
    }
    // With the settings INFO also reports taken from it (as the probe does
    // when CONFIG GET gives nothing), those are judged: DATA-002 passes on
    // maxmemory_policy, and DATA-001 and DATA-006 name only what INFO does
    // not report, and what they read from it.
    for (subject, v) in nodes(&mut ev) {
        if subject == "127.0.1.2:6379" {
            for (k, value, src) in [
                ("appendonly", "yes", "INFO persistence aof_enabled:1"),
                (
                    "maxmemory-policy",
                    "noeviction",
                    "INFO memory maxmemory_policy:noeviction",
                ),
                ("maxclients", "10000", "INFO clients maxclients:10000"),
            ] {
                v.config.insert(k.into(), value.into());
                v.from_info.insert(k.into(), src.into());
            }
        }
    }
    let r = judge_area(&ev);
    let mut bad = not_passing(&r);
    bad.sort();
    assert_eq!(
        bad,
        ["DATA-001", "DATA-003", "DATA-006", "MON-002"]
            .iter()
            .map(|i| (i.to_string(), Outcome::Error))
            .collect::<Vec<_>>()
    );
    let m = &messages(&r, "DATA-001")[0];
    assert!(
        m.contains("appendfsync not read; read from INFO instead: appendonly (INFO persistence aof_enabled:1)")
            && m.contains("appendfsync could not be read (INFO does not report it)"),
        "{m}"
    );
    let m = &messages(&r, "DATA-006")[0];
    assert!(
        m.contains("timeout, tcp-keepalive could not be read (INFO does not report them)")
            && m.contains("maxclients (INFO clients maxclients:10000)"),
        "{m}"
    );
    let c = common::result(&r, "DATA-002");
    let s = c
        .subjects
        .iter()
        .find(|s| s.subject == "127.0.1.2:6379")
        .unwrap();
    assert!(
        s.observed
            .contains("maxmemory-policy from INFO memory maxmemory_policy:noeviction"),
        "{}",
        s.observed
    );
    // A CONFIG GET that left one setting out (no cause known) is an error
    // too, naming it, where it used to read as a failing value.
    for (setting, id) in [
        ("appendfsync", "DATA-001"),
        ("maxmemory-policy", "DATA-002"),
        ("aclfile", "DATA-003"),
    ] {
        let mut ev = fixture_evidence();
        for (_, v) in nodes(&mut ev) {
            v.config.remove(setting);
        }
        let r = judge_area(&ev);
        assert_eq!(not_passing(&r), only(id, Outcome::Error), "{setting}");
        assert!(messages(&r, id)[0].contains(setting), "{setting}");
    }
}
