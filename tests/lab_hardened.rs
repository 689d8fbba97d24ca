//! A cluster hardened as operators harden them: CONFIG renamed on every
//! node (`rename-command CONFIG CONFIG-a8e1`; the ACLs keep naming
//! `config|get`, as Redis requires). Audited without `config_command`,
//! every check that needs a setting errors with one clear cause (naming
//! rename-command and config_command) and no other check changes; with
//! `config_command` set, the verdicts are those of the plain lab.

mod common;

use common::*;

/// Every area that reads node settings, and its neighbours that do not.
const AREAS: &str =
    "data,transport,access,CLU-001,CLU-002,CLU-003,CLU-004,CLU-005,CLU-006,CLU-007,MON-001,MON-002";

/// The checks that need CONFIG: those that read settings with CONFIG GET,
/// and the permission checks, whose DRYRUN sweep asks about CONFIG's
/// subcommands (DRYRUN looks a renamed command up by its new name).
const NEED_CONFIG: [&str; 14] = [
    "ACC-005", "ACC-006", "ACC-007", "ACC-008", "ACC-011", "DATA-001", "DATA-002", "DATA-003",
    "DATA-006", "DATA-007", "MON-002", "TLS-009", "TLS-010", "TLS-011",
];

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
