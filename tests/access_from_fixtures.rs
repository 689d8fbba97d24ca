//! Every access check judged from fixture evidence recorded on the real lab,
//! unmodified and with one defect each; malformed or missing evidence must
//! give `error`, never `pass`.

mod common;

use common::{fixture_evidence, judge_areas, not_passing, observations_mut};
use epic_audit::checks::Outcome;
use epic_audit::evidence::{AclView, EvidenceSet, Observation, Observed, ProbeFailure};
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
            .insert(cmd.into(), v.into());
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

#[test]
fn dev_user_allowed_to_write_fails_read_only_check_naming_commands() {
    let mut ev = fixture_evidence();
    set_verdict(&mut ev, "dev_user", "set", "AA");
    let r = judge_access(&ev);
    assert_eq!(not_passing(&r), failing(&["ACC-005"]));
    let m = messages(&r, "ACC-005");
    assert!(
        m.contains("dev_user may run 1 command(s) the policy denies: set (@write)"),
        "{m}"
    );
}

#[test]
fn dev_user_allowed_eval_fails_because_scripting_is_not_in_write() {
    let mut ev = fixture_evidence();
    set_verdict(&mut ev, "dev_user", "eval", "A");
    let r = judge_access(&ev);
    assert_eq!(not_passing(&r), failing(&["ACC-005"]));
    assert!(messages(&r, "ACC-005").contains("eval (@scripting)"));
}

#[test]
fn app_user_reaching_a_key_outside_session_namespace_fails() {
    let mut ev = fixture_evidence();
    set_verdict(&mut ev, "app_user", "hgetall", "AA");
    let r = judge_access(&ev);
    assert_eq!(not_passing(&r), failing(&["ACC-006"]));
    let m = messages(&r, "ACC-006");
    assert!(
        m.contains("on key `epic-audit-dryrun:outside`, outside session:*: hgetall"),
        "{m}"
    );
}

#[test]
fn app_user_allowed_an_admin_command_fails() {
    let mut ev = fixture_evidence();
    set_verdict(&mut ev, "app_user", "config|set", "A");
    let r = judge_access(&ev);
    assert_eq!(not_passing(&r), failing(&["ACC-006"]));
    assert!(messages(&r, "ACC-006").contains("config|set (@admin)"));
}

#[test]
fn a_denied_positive_control_is_a_warning() {
    let mut ev = fixture_evidence();
    set_verdict(&mut ev, "dev_user", "get", "CC");
    let r = judge_access(&ev);
    assert_eq!(
        not_passing(&r),
        vec![("ACC-005".to_string(), Outcome::Warn)]
    );
    assert!(messages(&r, "ACC-005").contains("positive control): get"));
}

#[test]
fn undecidable_dryrun_for_a_denied_command_is_an_error() {
    let mut ev = fixture_evidence();
    set_verdict(&mut ev, "dev_user", "set", "EE");
    let r = judge_access(&ev);
    assert_eq!(
        not_passing(&r),
        vec![("ACC-005".to_string(), Outcome::Error)]
    );
}

#[test]
fn default_user_enabled_without_password_fails_only_the_default_check() {
    let mut ev = fixture_evidence();
    for (_, v) in views(&mut ev) {
        let d = v.users.iter_mut().find(|u| u.name == "default").unwrap();
        d.flags = vec!["on".into(), "nopass".into()];
        v.auth.unauthenticated_ping = "PONG".into();
        v.auth.default_wrong_password = "OK".into();
    }
    let r = judge_access(&ev);
    assert_eq!(not_passing(&r), failing(&["ACC-004"]));
    let m = messages(&r, "ACC-004");
    assert!(
        m.contains("default is enabled")
            && m.contains("nopass")
            && m.contains("`PONG` instead of NOAUTH"),
        "{m}"
    );
}

#[test]
fn an_extra_user_fails_expected_users() {
    let mut ev = fixture_evidence();
    for (_, v) in views(&mut ev) {
        let mut extra = v
            .users
            .iter()
            .find(|u| u.name == "admin_user")
            .unwrap()
            .clone();
        extra.name = "intruder".into();
        extra.rule = extra.rule.replace("admin_user", "intruder");
        v.users.push(extra);
    }
    let r = judge_access(&ev);
    assert_eq!(not_passing(&r), failing(&["ACC-002"]));
    assert!(messages(&r, "ACC-002").contains("unexpected user(s) intruder"));
}

#[test]
fn a_user_with_nopass_fails_the_password_check() {
    let mut ev = fixture_evidence();
    for (_, v) in views(&mut ev) {
        let u = v.users.iter_mut().find(|u| u.name == "dev_user").unwrap();
        u.flags.push("nopass".into());
    }
    let r = judge_access(&ev);
    assert_eq!(not_passing(&r), failing(&["ACC-003"]));
    assert!(messages(&r, "ACC-003").contains("dev_user accept(s) any password"));
}

#[test]
fn one_node_with_a_different_acl_fails_consistency_on_that_node() {
    let mut ev = fixture_evidence();
    for (subject, v) in views(&mut ev) {
        if subject == "127.0.1.3:6379" {
            let u = v.users.iter_mut().find(|u| u.name == "dev_user").unwrap();
            u.rule.push_str(" #fp:0000000000000000");
        }
    }
    let r = judge_access(&ev);
    assert_eq!(not_passing(&r), failing(&["ACC-001"]));
    let m = messages(&r, "ACC-001");
    assert!(m.starts_with("127.0.1.3:6379 [fail]"), "{m}");
    assert!(
        m.contains("dev_user: here adds `#fp:0000000000000000`"),
        "{m}"
    );
    assert_eq!(m.lines().count(), 1, "only the differing node fails: {m}");
}

#[test]
fn a_credential_that_does_not_work_fails_authentication() {
    let mut ev = fixture_evidence();
    for (subject, v) in views(&mut ev) {
        if subject == "127.0.1.2:6379" {
            let u = v
                .auth
                .users
                .iter_mut()
                .find(|u| u.user == "app_user")
                .unwrap();
            u.authenticated = false;
            u.whoami = None;
            u.error = Some("WRONGPASS invalid username-password pair or user is disabled.".into());
        }
    }
    let r = judge_access(&ev);
    assert_eq!(not_passing(&r), failing(&["ACC-009"]));
    assert!(messages(&r, "ACC-009").contains("app_user: WRONGPASS"));
}

#[test]
fn many_recent_failed_logins_warn() {
    let mut ev = fixture_evidence();
    for (_, v) in views(&mut ev) {
        v.log
            .by_reason_user
            .push(epic_audit::evidence::AclLogCount {
                reason: "auth".into(),
                username: "app_user".into(),
                count: 500,
                newest_age_seconds: 10,
            });
    }
    let r = judge_access(&ev);
    assert_eq!(
        not_passing(&r),
        vec![("ACC-010".to_string(), Outcome::Warn)]
    );
    assert_eq!(r.exit_code, 0, "a warning does not fail the gate");
    assert!(messages(&r, "ACC-010").contains("app_user 500"));
}

#[test]
fn a_case_with_the_wrong_verdict_fails_naming_case_and_node() {
    let mut ev = fixture_evidence();
    for (_, v) in views(&mut ev) {
        let c = v
            .cases
            .iter_mut()
            .find(|c| c.command == "FLUSHALL")
            .unwrap();
        c.verdict = epic_audit::evidence::DryRunVerdict::Allowed;
        c.reply = "OK".into();
    }
    let r = judge_access(&ev);
    assert_eq!(not_passing(&r), failing(&["ACC-008"]));
    assert!(messages(&r, "ACC-008").starts_with("app_user: FLUSHALL [fail]"));
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
                *verdict = "E".repeat(verdict.len());
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
