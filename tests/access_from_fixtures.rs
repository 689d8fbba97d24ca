//! Every access check judged from fixture evidence recorded on the real lab,
//! unmodified and with one defect each; malformed or missing evidence must
//! give `error`, never `pass`.

mod common;

use common::{fixture_evidence, judge_areas, not_passing, observations_mut};
use epic_audit::checks::Outcome;
use epic_audit::evidence::{
    AclView, DryRunLetters, EvidenceSet, Observation, Observed, ProbeFailure,
};
use epic_audit::report::Report;

fn judge_access(ev: &EvidenceSet) -> Report {
    judge_areas(ev, &["access"])
}

fn outcomes(r: &Report) -> Vec<(String, Outcome)> {
    r.checks.iter().map(|c| (c.id.clone(), c.outcome)).collect()
}

fn messages(r: &Report, id: &str) -> String {
    common::messages(r, id).join("\n")
}

fn views(ev: &mut EvidenceSet) -> Vec<(String, &mut AclView)> {
    observations_mut(ev, |o| match o {
        Observation::AclNode(v) => Some(v.as_mut()),
        _ => None,
    })
}

fn set_verdict(ev: &mut EvidenceSet, user: &str, cmd: &str, v: &str) {
    for (_, view) in views(ev) {
        view.dryrun
            .get_mut(user)
            .unwrap()
            .insert(cmd.into(), DryRunLetters::parse(v).unwrap());
    }
}

fn failing(pairs: &[&str]) -> Vec<(String, Outcome)> {
    pairs
        .iter()
        .map(|id| (id.to_string(), Outcome::Fail))
        .collect()
}

#[test]
fn good_lab_passes_every_access_check() {
    let r = judge_access(&fixture_evidence());
    assert_eq!(r.checks.len(), 11);
    assert_eq!(
        not_passing(&r),
        vec![],
        "{:#?}",
        r.checks
            .iter()
            .map(|c| messages(&r, &c.id))
            .collect::<Vec<_>>()
    );
}

/// What a case's finding message must show.
enum Says {
    /// The message contains this text.
    Contains(&'static str),
    /// The message starts with this text.
    StartsWith(&'static str),
    /// The message has this many lines (one per non-passing subject).
    Lines(usize),
}

/// One defect written into the good lab's evidence: exactly the check
/// `id` ends `outcome` (every other access check passes), and its
/// message says what `says` lists.
struct Case {
    name: &'static str,
    defect: fn(&mut EvidenceSet),
    id: &'static str,
    outcome: Outcome,
    /// The reason of every subject of `id` that does not pass.
    why: &'static str,
    says: &'static [Says],
}

fn user<'a>(v: &'a mut AclView, name: &str) -> &'a mut epic_audit::evidence::AclUser {
    v.users.iter_mut().find(|u| u.name == name).unwrap()
}

const CASES: &[Case] = &[
    Case {
        name: "the audit user allowed to reconfigure fails its own least-privilege check",
        defect: |ev| set_verdict(ev, "auditor", "config|set", "A"),
        id: "ACC-011",
        outcome: Outcome::Fail,
        why: "denied-command-allowed",
        says: &[Says::Contains(
            "auditor may run 1 command(s) the policy denies: config|set",
        )],
    },
    Case {
        name: "dev_user allowed to write fails the read-only check naming the command",
        defect: |ev| set_verdict(ev, "dev_user", "set", "AA"),
        id: "ACC-005",
        outcome: Outcome::Fail,
        why: "denied-command-allowed",
        says: &[Says::Contains(
            "dev_user may run 1 command(s) the policy denies: set (@write)",
        )],
    },
    Case {
        name: "dev_user allowed EVAL fails: scripting is not in @write",
        defect: |ev| set_verdict(ev, "dev_user", "eval", "A"),
        id: "ACC-005",
        outcome: Outcome::Fail,
        why: "denied-command-allowed",
        says: &[Says::Contains("eval (@scripting)")],
    },
    Case {
        name: "app_user reaching a key outside the session namespace fails",
        defect: |ev| set_verdict(ev, "app_user", "hgetall", "AA"),
        id: "ACC-006",
        outcome: Outcome::Fail,
        why: "key-outside-patterns",
        says: &[Says::Contains(
            "on key `epic-audit-dryrun:outside`, outside session:*: hgetall",
        )],
    },
    Case {
        name: "app_user allowed an admin command fails",
        defect: |ev| set_verdict(ev, "app_user", "config|set", "A"),
        id: "ACC-006",
        outcome: Outcome::Fail,
        why: "denied-command-allowed",
        says: &[Says::Contains("config|set (@admin)")],
    },
    Case {
        name: "a denied positive control is a warning",
        defect: |ev| set_verdict(ev, "dev_user", "get", "CC"),
        id: "ACC-005",
        outcome: Outcome::Warn,
        why: "allowed-command-denied",
        says: &[Says::Contains("positive control): get")],
    },
    Case {
        name: "an undecidable DRYRUN for a denied command is an error",
        defect: |ev| set_verdict(ev, "dev_user", "set", "EE"),
        id: "ACC-005",
        outcome: Outcome::Error,
        why: "dry-run-undecided",
        says: &[],
    },
    Case {
        name: "default enabled without a password fails only the default-user check",
        defect: |ev| {
            for (_, v) in views(ev) {
                user(v, "default").flags = vec!["on".into(), "nopass".into()];
                v.auth.unauthenticated_ping = "PONG".into();
                v.auth.default_wrong_password = "OK".into();
            }
        },
        id: "ACC-004",
        outcome: Outcome::Fail,
        why: "default-enabled",
        says: &[
            Says::Contains("default is enabled"),
            Says::Contains("nopass"),
            Says::Contains("`PONG` instead of NOAUTH"),
        ],
    },
    Case {
        name: "an extra user fails the expected users",
        defect: |ev| {
            for (_, v) in views(ev) {
                let mut extra = user(v, "admin_user").clone();
                extra.name = "intruder".into();
                extra.rule = extra.rule.replace("admin_user", "intruder");
                v.users.push(extra);
            }
        },
        id: "ACC-002",
        outcome: Outcome::Fail,
        why: "unexpected-user",
        says: &[Says::Contains("unexpected user(s) intruder")],
    },
    Case {
        name: "a user with nopass fails the password check",
        defect: |ev| {
            for (_, v) in views(ev) {
                user(v, "dev_user").flags.push("nopass".into());
            }
        },
        id: "ACC-003",
        outcome: Outcome::Fail,
        why: "nopass-user",
        says: &[Says::Contains("dev_user accept(s) any password")],
    },
    Case {
        name: "one node with a different ACL fails consistency on that node only",
        defect: |ev| {
            for (subject, v) in views(ev) {
                if subject == "127.0.1.3:6379" {
                    user(v, "dev_user").rule.push_str(" #fp:0000000000000000");
                }
            }
        },
        id: "ACC-001",
        outcome: Outcome::Fail,
        why: "acl-drift",
        says: &[
            Says::StartsWith("127.0.1.3:6379 [fail]"),
            Says::Contains("dev_user: here adds `#fp:0000000000000000`"),
            Says::Lines(1),
        ],
    },
    Case {
        name: "a credential that does not work fails authentication",
        defect: |ev| {
            for (subject, v) in views(ev) {
                if subject == "127.0.1.2:6379" {
                    let u = v
                        .auth
                        .users
                        .iter_mut()
                        .find(|u| u.user == "app_user")
                        .unwrap();
                    u.authenticated = false;
                    u.whoami = None;
                    u.error = Some(
                        "WRONGPASS invalid username-password pair or user is disabled.".into(),
                    );
                }
            }
        },
        id: "ACC-009",
        outcome: Outcome::Fail,
        why: "login-refused",
        says: &[Says::Contains("app_user: WRONGPASS")],
    },
    Case {
        name: "many recent failed logins warn (and a warning does not fail the gate)",
        defect: |ev| {
            for (_, v) in views(ev) {
                v.log
                    .by_reason_user
                    .push(epic_audit::evidence::AclLogCount {
                        reason: "auth".into(),
                        username: "app_user".into(),
                        count: 500,
                        newest_age_seconds: 10,
                    });
            }
        },
        id: "ACC-010",
        outcome: Outcome::Warn,
        why: "many-failed-logins",
        says: &[Says::Contains("app_user 500")],
    },
    Case {
        name: "a case with the wrong verdict fails naming case and node",
        defect: |ev| {
            for (_, v) in views(ev) {
                let c = v
                    .cases
                    .iter_mut()
                    .find(|c| c.command == "FLUSHALL")
                    .unwrap();
                c.verdict = epic_audit::evidence::DryRunVerdict::Allowed;
                c.reply = "OK".into();
            }
        },
        id: "ACC-008",
        outcome: Outcome::Fail,
        why: "case-mismatch",
        says: &[Says::StartsWith("app_user: FLUSHALL [fail]")],
    },
];

#[test]
fn each_defect_ends_exactly_its_check_and_says_why() {
    for case in CASES {
        let mut ev = fixture_evidence();
        (case.defect)(&mut ev);
        let r = judge_access(&ev);
        assert_eq!(
            not_passing(&r),
            vec![(case.id.to_string(), case.outcome)],
            "{}",
            case.name
        );
        let exit = match case.outcome {
            Outcome::Fail => 1,
            Outcome::Error => 2,
            _ => 0,
        };
        assert_eq!(r.exit_code, exit, "{}: exit code", case.name);
        let codes = common::distinct_codes(&r, case.id);
        assert_eq!(
            codes,
            vec![format!("{}/{}", case.id, case.why)],
            "{}",
            case.name
        );
        let m = messages(&r, case.id);
        for says in case.says {
            let ok = match says {
                Says::Contains(t) => m.contains(t),
                Says::StartsWith(t) => m.starts_with(t),
                Says::Lines(n) => m.lines().count() == *n,
            };
            let want = match says {
                Says::Contains(t) => format!("contains {t:?}"),
                Says::StartsWith(t) => format!("starts with {t:?}"),
                Says::Lines(n) => format!("has {n} line(s)"),
            };
            assert!(ok, "{}: the {} message {want}:\n{m}", case.name, case.id);
        }
    }
}

#[test]
fn an_unreachable_node_is_error_in_every_access_check_never_pass() {
    let mut ev = fixture_evidence();
    for e in ev
        .items
        .iter_mut()
        .filter(|e| e.probe == "acl" && e.subject == "127.0.1.2:6379")
    {
        e.result = Observed::Failure(ProbeFailure {
            kind: epic_audit::evidence::FailureKind::Timeout,
            message: "ACL USERS on 127.0.1.2:6379 got no answer within 3000 ms".into(),
        });
    }
    let r = judge_access(&ev);
    for (id, o) in outcomes(&r) {
        assert_eq!(o, Outcome::Error, "{id}");
        assert!(messages(&r, &id).contains("127.0.1.2:6379"), "{id}");
    }
    assert_eq!(r.exit_code, 2);
}

#[test]
fn no_command_table_means_permission_checks_error() {
    let mut ev = fixture_evidence();
    ev.items.retain(|e| e.probe != "acl.commands");
    let r = judge_access(&ev);
    for id in ["ACC-005", "ACC-006", "ACC-007"] {
        assert_eq!(
            r.checks.iter().find(|c| c.id == id).unwrap().outcome,
            Outcome::Error,
            "{id}"
        );
    }
}

#[test]
fn evidence_never_holds_password_hashes_or_acl_log_objects() {
    let ev = fixture_evidence();
    // Only ACL evidence could carry a password hash (certificate
    // fingerprints elsewhere are legitimately 64 hex digits).
    let acl: Vec<_> = ev
        .items
        .iter()
        .filter(|e| e.probe.as_str().starts_with("acl"))
        .collect();
    assert!(acl.len() >= 7);
    let text = serde_json::to_string(&acl).unwrap();
    let hexrun = text.as_bytes().windows(64).any(|w| {
        w.iter()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    });
    assert!(
        !hexrun,
        "a 64-hex-digit string (password hash?) is in the ACL evidence"
    );
    assert!(
        !text.contains("\"object\":"),
        "an ACL LOG object (key name) is in the evidence"
    );
}

#[test]
fn a_login_is_proven_by_auth_and_a_denied_whoami_is_said_not_failed() {
    // A read-only user without acl|whoami and client|info (NOPERM on both):
    // AUTH succeeded, so ACC-009 passes, saying the cross-check was denied.
    let mut ev = fixture_evidence();
    for (_, v) in views(&mut ev) {
        let u = v
            .auth
            .users
            .iter_mut()
            .find(|u| u.user == "dev_user")
            .unwrap();
        u.whoami = None;
        u.whoami_error = Some(
            "ACL WHOAMI: NOPERM User dev_user has no permissions to run the 'acl|whoami' command; \
             CLIENT INFO: NOPERM User dev_user has no permissions to run the 'client|info' command"
                .into(),
        );
    }
    let r = judge_access(&ev);
    assert_eq!(not_passing(&r), vec![]);
    let c = r.checks.iter().find(|c| c.id == "ACC-009").unwrap();
    assert!(
        c.subjects
            .iter()
            .all(|s| s.observed.contains("identity cross-check not permitted")),
        "{:?}",
        c.subjects
    );
    // A login that yields another user than it named fails, saying so.
    let mut ev = fixture_evidence();
    for (_, v) in views(&mut ev) {
        let u = v
            .auth
            .users
            .iter_mut()
            .find(|u| u.user == "dev_user")
            .unwrap();
        u.whoami = Some("default".into());
    }
    let r = judge_access(&ev);
    assert_eq!(not_passing(&r), failing(&["ACC-009"]));
    assert!(messages(&r, "ACC-009").contains("the connection is user `default`"));
}

#[test]
fn positive_controls_never_pass_on_an_empty_or_undecided_sweep() {
    // An empty sweep of the emergency admin: ACC-007 cannot pass.
    let mut ev = fixture_evidence();
    for (_, v) in views(&mut ev) {
        v.dryrun.get_mut("admin_user").unwrap().clear();
    }
    let r = judge_access(&ev);
    assert_eq!(
        not_passing(&r),
        vec![("ACC-007".to_string(), Outcome::Error)]
    );
    assert!(messages(&r, "ACC-007").contains("sweep of admin_user is empty"));
    // The audit user may not run ACL DRYRUN: every answer is an error
    // reply. ACC-005..007 are errors naming the permission to add.
    let mut ev = fixture_evidence();
    for (_, v) in views(&mut ev) {
        for sweep in v.dryrun.values_mut() {
            for verdict in sweep.values_mut() {
                *verdict = DryRunLetters::parse(&"E".repeat(verdict.verdicts().len())).unwrap();
            }
        }
        v.dryrun_errors = vec![epic_audit::evidence::DryRunError {
            user: "dev_user".into(),
            command: "get".into(),
            reply: "NOPERM User auditor has no permissions to run the 'acl|dryrun' command".into(),
        }];
    }
    let r = judge_access(&ev);
    for id in ["ACC-005", "ACC-006", "ACC-007"] {
        let c = r.checks.iter().find(|c| c.id == id).unwrap();
        assert_eq!(c.outcome, Outcome::Error, "{id}");
        assert!(
            messages(&r, id).contains("+acl|dryrun"),
            "{id}: {}",
            messages(&r, id)
        );
    }
    // A command missing from a node's sweep is not silently skipped.
    let mut ev = fixture_evidence();
    for (_, v) in views(&mut ev) {
        v.dryrun.get_mut("admin_user").unwrap().remove("flushall");
    }
    let r = judge_access(&ev);
    assert_eq!(
        not_passing(&r),
        vec![("ACC-007".to_string(), Outcome::Error)]
    );
    assert!(messages(&r, "ACC-007").contains("not swept: flushall"));
}
