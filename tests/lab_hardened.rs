//! A cluster hardened as operators harden them: CONFIG renamed on every
//! node (`rename-command CONFIG CONFIG-a8e1`; the ACLs keep naming
//! `config|get`, as Redis requires). Audited without `config_command`,
//! every check that needs a setting INFO does not report errors with one
//! clear cause (naming rename-command and config_command) and no other
//! check changes; with `config_command` set, the verdicts are those of the
//! plain lab. CONFIG disabled outright (`rename-command CONFIG ""`): the
//! settings INFO reports are judged from INFO, the rest error naming what
//! could not be read.

mod common;

use common::*;

/// Every area that reads node settings, and its neighbours that do not.
const AREAS: &str =
    "data,transport,access,CLU-001,CLU-002,CLU-003,CLU-004,CLU-005,CLU-006,CLU-007,MON-001,MON-002";

/// The checks that need CONFIG: those that read settings with CONFIG GET
/// that INFO does not report, and the permission checks, whose DRYRUN
/// sweep asks about CONFIG's subcommands (DRYRUN looks a renamed command up
/// by its new name). DATA-002 (maxmemory_policy) and DATA-007 (INFO
/// modules) are judged from INFO when CONFIG GET gives nothing.
const NEED_CONFIG: [&str; 12] = [
    "ACC-005", "ACC-006", "ACC-007", "ACC-008", "ACC-011", "DATA-001", "DATA-003", "DATA-006",
    "MON-002", "TLS-009", "TLS-010", "TLS-011",
];

/// The checks judged from INFO alone when CONFIG answers nothing.
const FROM_INFO: [&str; 3] = ["DATA-002", "DATA-004", "DATA-007"];

#[tokio::test(flavor = "multi_thread")]
async fn a_renamed_config_is_audited_with_config_command_and_named_without_it() {
    let t = start_lab_with(|s| s.config_command = Some("CONFIG-a8e1".into())).await;
    let cfg = t.config(&[], (2000, 3000, 20000));

    // The lab really renamed it: CONFIG is unknown, CONFIG-a8e1 answers.
    let mut c = t.lab.admin(0).await.unwrap();
    let e = c.cmd_str(&["CONFIG", "GET", "port"]).await.unwrap_err();
    assert!(e.to_string().contains("unknown command"), "{e}");
    c.cmd_str(&["CONFIG-a8e1", "GET", "port"]).await.unwrap();

    // Without config_command: exactly the CONFIG-based checks error.
    let (code, rep, bad) = audit_area(&t, AREAS, "unset");
    let want: Vec<(String, String)> = {
        let mut v: Vec<(String, String)> = NEED_CONFIG
            .iter()
            .map(|i| (i.to_string(), "error".to_string()))
            .collect();
        v.sort();
        v
    };
    let mut got = bad.clone();
    got.sort();
    let why: Vec<String> = got
        .iter()
        .flat_map(|(id, _)| {
            failing_subjects(&rep, id)
                .into_iter()
                .take(1)
                .map(move |(s, m)| format!("{id} {s}: {m}"))
        })
        .collect();
    assert_eq!(got, want, "{}", why.join("\n"));
    assert_eq!(code, 2);
    for id in NEED_CONFIG {
        for (subject, m) in failing_subjects(&rep, id) {
            assert!(
                m.contains("rename-command") && m.contains("config_command"),
                "{id} {subject}: {m}"
            );
        }
    }

    // With config_command: the plain lab's verdicts (everything passes).
    let text = std::fs::read_to_string(&cfg).unwrap();
    let auditor = &t.lab.spec.names.auditor;
    let text = text.replacen(
        &format!("audit_user = \"{auditor}\"\n"),
        &format!("audit_user = \"{auditor}\"\nconfig_command = \"CONFIG-a8e1\"\n"),
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let (code, rep, bad) = audit_area(&t, AREAS, "set");
    assert!(bad.is_empty(), "{bad:?}\n{rep:#}");
    assert_eq!(code, 0);
    let ev = std::fs::read_to_string(t.out("set").join("evidence.json")).unwrap();
    assert!(
        ev.contains("CONFIG-a8e1 GET appendonly"),
        "the evidence records how the settings were read"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_config_leaves_the_settings_info_reports_judged_and_names_the_rest() {
    let t = start_lab_with(|s| s.config_command = Some(String::new())).await;
    t.config(&[], (2000, 3000, 20000));
    let mut c = t.lab.admin(0).await.unwrap();
    let e = c.cmd_str(&["CONFIG", "GET", "port"]).await.unwrap_err();
    assert!(e.to_string().contains("unknown command"), "{e}");

    let (code, rep, bad) = audit_area(&t, AREAS, "disabled");
    assert_eq!(code, 2);
    let bad: std::collections::BTreeMap<String, String> = bad.into_iter().collect();
    // Exactly the checks that need a setting INFO does not report error,
    // and ACC-008, whose documented case asks about CONFIG SET. The
    // permission sweep (ACC-005/006/007/011) asks the node's own command
    // table, where a disabled CONFIG is not: nobody can run it.
    let want = [
        "ACC-008", "DATA-001", "DATA-003", "DATA-006", "MON-002", "TLS-009", "TLS-010", "TLS-011",
    ];
    assert_eq!(
        bad.iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        want.iter().map(|k| (*k, "error")).collect::<Vec<_>>()
    );
    for (s, m) in failing_subjects(&rep, "ACC-008") {
        assert!(m.contains("rename-command"), "{s}: {m}");
    }
    for id in FROM_INFO {
        assert!(!bad.contains_key(id), "{id} is judged from INFO: {bad:?}");
    }
    // Each setting check names what it could not read and what it read
    // from INFO instead.
    for (id, unread, from_info) in [
        (
            "DATA-001",
            "appendfsync could not be read",
            "appendonly (INFO persistence aof_enabled:1)",
        ),
        (
            "DATA-006",
            "timeout, tcp-keepalive could not be read",
            "maxclients (INFO clients maxclients:",
        ),
        ("DATA-003", "protected-mode, enable-debug-command", ""),
    ] {
        let subjects = failing_subjects(&rep, id);
        assert_eq!(subjects.len(), 6, "{id}: {subjects:?}");
        for (s, m) in &subjects {
            assert!(
                m.contains(unread) && m.contains("rename-command"),
                "{id} {s}: {m}"
            );
        }
        let observed: Vec<String> = subjects_observed(&rep, id);
        assert!(
            observed.iter().all(|o| o.contains(from_info)),
            "{id}: {observed:?}"
        );
    }
    // DATA-002 passed on maxmemory_policy from INFO memory, and says so.
    let observed = subjects_observed(&rep, "DATA-002");
    assert!(
        observed
            .iter()
            .all(|o| o.contains("maxmemory-policy from INFO memory maxmemory_policy:noeviction")),
        "{observed:?}"
    );
    // The evidence records how each setting was read.
    let ev = std::fs::read_to_string(t.out("disabled").join("evidence.json")).unwrap();
    assert!(ev.contains("\"from_info\"") && ev.contains("INFO persistence aof_enabled:1"));
}

/// The `observed` of every subject of check `id`.
fn subjects_observed(rep: &serde_json::Value, id: &str) -> Vec<String> {
    rep["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id}"))["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["observed"].as_str().unwrap_or_default().to_string())
        .collect()
}
