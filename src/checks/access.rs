//! Access-control rules: ACL consistency, expected users, passwords, the
//! default user, the permission matrix (from the DRYRUN sweep), explicit
//! cases, live logins and recent authentication failures.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::reason::reasons;
use super::rule::{joined, per_subject, NoParams, Rule, SubjectFinding};
use crate::evidence::ProbeId;
use crate::evidence::{AclView, EvidenceSet};
use crate::evidence::{DryRunCase, DryRunVerdict, Expect};

reasons! {
    /// Why a node, user or case got its outcome in the access checks (ACC).
    Access => Why {
        /// Every node has the same users with the same rules.
        AclIdentical = "acl-identical",
        /// Users or rules differ between nodes.
        AclDrift = "acl-drift",
        /// Exactly the policy's users exist.
        OnlyExpectedUsers = "only-expected-users",
        /// A user the policy does not list exists.
        UnexpectedUser = "unexpected-user",
        /// A user the policy lists does not exist.
        MissingUser = "missing-user",
        /// No user but default has nopass.
        PasswordsRequired = "passwords-required",
        /// A user accepts any password.
        NopassUser = "nopass-user",
        /// default is off and refuses logins.
        DefaultOff = "default-off",
        /// ACL GETUSER default returned no user.
        DefaultUnobserved = "default-unobserved",
        /// The default user is on.
        DefaultEnabled = "default-enabled",
        /// The default user has nopass.
        DefaultNopass = "default-nopass",
        /// A command without AUTH got an answer other than NOAUTH.
        UnauthenticatedCommandAnswered = "unauthenticated-command-answered",
        /// AUTH default with a random password was not refused.
        DefaultLoginNotRefused = "default-login-not-refused",
        /// The case's verdict is the policy's on every node.
        CaseAsExpected = "case-as-expected",
        /// The case's verdict differs from the policy's on some node.
        CaseMismatch = "case-mismatch",
        /// The case could not be evaluated on every node.
        CaseUnevaluated = "case-unevaluated",
        /// Every configured credential logs in as its user.
        LoginsWork = "logins-work",
        /// The environment configures no user to log in as.
        NoUsersConfigured = "no-users-configured",
        /// AUTH with a configured password was refused.
        LoginRefused = "login-refused",
        /// A login yielded another user than it named.
        LoginIdentityMismatch = "login-identity-mismatch",
        /// No unusual number of failed logins.
        FewFailedLogins = "few-failed-logins",
        /// More failed logins than the policy allows in the window.
        ManyFailedLogins = "many-failed-logins",
    }
}

const ACL_METHOD: &str = "On every node, as the audit user over TLS: ACL USERS, ACL LIST and \
ACL GETUSER for each user (password hashes are never recorded, only salted per-run \
fingerprints), ACL LOG (counts by reason and user only). Read-only.";

const AUTH_METHOD: &str = "On every node, on fresh TLS connections: PING without \
authenticating (must get NOAUTH), AUTH default <random password> (must get WRONGPASS; this adds \
one `auth` entry to the node's ACL LOG), and for each user configured in the environment AUTH \
with its real password followed by ACL WHOAMI. ACL GETUSER default supplies the on/off flag.";

/// The access rules.
pub(crate) fn rules() -> Vec<Rule> {
    vec![
        Rule::new(
            "access.acl_consistent",
            &[ProbeId::Acl],
            ACL_METHOD,
            acl_consistent,
        ),
        Rule::new(
            "access.expected_users",
            &[ProbeId::Acl],
            ACL_METHOD,
            expected_users,
        ),
        Rule::new("access.no_nopass", &[ProbeId::Acl], ACL_METHOD, no_nopass),
        Rule::new(
            "access.default_disabled",
            &[ProbeId::Acl],
            AUTH_METHOD,
            default_disabled,
        ),
        Rule::new(
            "access.cases",
            &[ProbeId::Acl],
            "On every node: ACL DRYRUN <user> <command line> for each case of the policy; \
             the verdict (allowed, or denied for the command, a key or a channel) must match \
             `expect`. Nothing is executed.",
            cases,
        ),
        Rule::new(
            "access.authentication",
            &[ProbeId::Acl],
            AUTH_METHOD,
            authentication,
        ),
        Rule::new(
            "access.auth_failures",
            &[ProbeId::Acl],
            "On every node: ACL LOG, summarised as counts of entries by reason and user, read \
             before this run's own deliberate wrong-password attempt.",
            auth_failures,
        ),
    ]
}

/// An ACL LIST line in canonical form. Redis prints category rules in a
/// fixed order but individual `+cmd`/`-cmd` rules in hash-table order, and
/// those name distinct commands, so their order carries no meaning: they
/// are sorted. Everything else keeps its order.
pub(crate) fn canonical_rule(rule: &str) -> Vec<String> {
    let (mut head, mut cmds): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for t in rule.split_whitespace() {
        let individual = (t.starts_with('+') || t.starts_with('-')) && !t[1..].starts_with('@');
        if individual {
            cmds.push(t.to_string());
        } else {
            head.push(t.to_string());
        }
    }
    cmds.sort();
    head.extend(cmds);
    head
}

/// Tokens only in `a`, and only in `b`.
fn token_diff(a: &[String], b: &[String]) -> (Vec<String>, Vec<String>) {
    let sa: BTreeSet<&String> = a.iter().collect();
    let sb: BTreeSet<&String> = b.iter().collect();
    let only_a = a.iter().filter(|t| !sb.contains(t)).cloned().collect();
    let only_b = b.iter().filter(|t| !sa.contains(t)).cloned().collect();
    (only_a, only_b)
}

fn acl_consistent(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "the same users with the same rules and passwords as every other node";
    let views: Vec<(&str, &AclView)> = ev
        .acl_views()
        .into_iter()
        .filter_map(|(s, r)| r.ok().map(|v| (s, v)))
        .collect();
    let n = views.len();
    // Per user: how many nodes have it, and its most common canonical rule.
    let mut counts: BTreeMap<&str, BTreeMap<Vec<String>, usize>> = BTreeMap::new();
    for (_, v) in &views {
        for u in &v.users {
            *counts
                .entry(u.name.as_str())
                .or_default()
                .entry(canonical_rule(&u.rule))
                .or_default() += 1;
        }
    }
    let majority: BTreeMap<&str, (Vec<String>, usize, usize)> = counts
        .iter()
        .map(|(user, rules)| {
            let present: usize = rules.values().sum();
            let (rule, c) =
                rules.iter().fold(
                    (Vec::new(), 0),
                    |b, (r, c)| if *c > b.1 { (r.clone(), *c) } else { b },
                );
            (*user, (rule, c, present))
        })
        .collect();
    per_subject(ev.acl_views(), expected, |subject, v| {
        let mut diffs = Vec::new();
        for (user, (rule, count, present)) in &majority {
            let mine = v.users.iter().find(|u| u.name == *user);
            let usual = present * 2 > n;
            match mine {
                None if usual => diffs.push(format!(
                    "{user} is missing here but exists on {present} of {n} nodes"
                )),
                Some(_) if !usual => diffs.push(format!(
                    "{user} exists here but only on {present} of {n} nodes"
                )),
                Some(u) => {
                    let here = canonical_rule(&u.rule);
                    if here != *rule {
                        let (only_here, only_there) = token_diff(&here, rule);
                        diffs.push(format!(
                            "{user}: here adds `{}` and lacks `{}` compared with {count} of {n} nodes",
                            only_here.join(" "),
                            only_there.join(" ")
                        ));
                    }
                }
                None => {}
            }
        }
        if diffs.is_empty() {
            SubjectFinding::pass(subject, Why::AclIdentical)
                .observed(format!(
                    "{} users, same rules on all {n} nodes",
                    v.users.len()
                ))
                .expected(expected)
                .message("ACLs identical across the cluster")
        } else {
            SubjectFinding::fail(subject, Why::AclDrift).observed(format!("{} user(s) differ", diffs.len())).expected(expected).message(format!(
                    "ACL drift: {} (#fp: tokens are per-run salted password fingerprints: different means a different password)",
                    diffs.join("; ")
                ))
        }
    })
}

/// Parameters of `access.expected_users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectedUsers {
    /// Exactly these users must exist.
    pub users: Vec<String>,
}

fn expected_users(ev: &EvidenceSet, p: &ExpectedUsers) -> Vec<SubjectFinding> {
    let expected = format!("exactly the users {}", p.users.join(", "));
    let want: BTreeSet<&str> = p.users.iter().map(String::as_str).collect();
    per_subject(ev.acl_views(), &expected, |subject, v| {
        let have: BTreeSet<&str> = v.users.iter().map(|u| u.name.as_str()).collect();
        let extra: Vec<String> = have.difference(&want).map(|s| s.to_string()).collect();
        let missing: Vec<String> = want.difference(&have).map(|s| s.to_string()).collect();
        let observed = have.iter().copied().collect::<Vec<_>>().join(", ");
        if extra.is_empty() && missing.is_empty() {
            SubjectFinding::pass(subject, Why::OnlyExpectedUsers)
                .observed(observed)
                .expected(expected.clone())
                .message("only the documented users exist")
        } else {
            let mut parts = Vec::new();
            if !extra.is_empty() {
                parts.push(format!("unexpected user(s) {} (remove with ACL DELUSER, or document them in the policy)", extra.join(", ")));
            }
            if !missing.is_empty() {
                parts.push(format!("missing user(s) {}", missing.join(", ")));
            }
            let why = if extra.is_empty() {
                Why::MissingUser
            } else {
                Why::UnexpectedUser
            };
            SubjectFinding::fail(subject, why)
                .observed(observed)
                .expected(expected.clone())
                .message(parts.join("; "))
        }
    })
}

fn no_nopass(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "no user (other than default, see ACC-004) has nopass";
    per_subject(ev.acl_views(), expected, |subject, v| {
        let bad: Vec<String> = v
            .users
            .iter()
            .filter(|u| u.name != "default" && u.has_flag("nopass"))
            .map(|u| u.name.clone())
            .collect();
        if bad.is_empty() {
            let counts: Vec<String> = v
                .users
                .iter()
                .filter(|u| u.name != "default")
                .map(|u| format!("{}: {} password(s)", u.name, u.password_count))
                .collect();
            SubjectFinding::pass(subject, Why::PasswordsRequired)
                .observed(counts.join(", "))
                .expected(expected)
                .message("every user needs a password")
        } else {
            SubjectFinding::fail(subject, Why::NopassUser).observed(format!("nopass: {}", bad.join(", "))).expected(expected).message(format!("{} accept(s) any password: set one with `ACL SETUSER <user> resetpass ><password>` (and in the aclfile)", bad.join(", ")))
        }
    })
}

fn default_disabled(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected =
        "default user off; unauthenticated commands get NOAUTH; AUTH default gets WRONGPASS";
    per_subject(ev.acl_views(), expected, |subject, v| {
        let mut problems = Vec::new();
        match v.users.iter().find(|u| u.name == "default") {
            None => problems.push((
                Why::DefaultUnobserved,
                "ACL GETUSER default returned no user".to_string(),
            )),
            Some(u) => {
                if !u.has_flag("off") {
                    problems.push((
                        Why::DefaultEnabled,
                        format!("default is enabled (flags {})", u.flags.join(",")),
                    ));
                }
                if u.has_flag("nopass") {
                    problems.push((Why::DefaultNopass, "default has nopass".to_string()));
                }
            }
        }
        let a = &v.auth;
        if !a.unauthenticated_ping.starts_with("NOAUTH") {
            problems.push((
                Why::UnauthenticatedCommandAnswered,
                format!(
                    "an unauthenticated PING got `{}` instead of NOAUTH",
                    a.unauthenticated_ping
                ),
            ));
        }
        if !a.default_wrong_password.starts_with("WRONGPASS") {
            problems.push((
                Why::DefaultLoginNotRefused,
                format!(
                    "AUTH default with a random password got `{}` instead of WRONGPASS",
                    a.default_wrong_password
                ),
            ));
        }
        let observed = format!(
            "PING: {}; AUTH default <random>: {}",
            a.unauthenticated_ping, a.default_wrong_password
        );
        if problems.is_empty() {
            SubjectFinding::pass(subject, Why::DefaultOff).observed(observed).expected(expected).message("default is off and refuses logins (the check's wrong-password attempt adds one `auth` entry to ACL LOG)")
        } else {
            SubjectFinding::fail(subject, problems[0].0).observed(observed).expected(expected).message(format!("{}: anyone reaching the port is logged in as default; run `ACL SETUSER default off resetpass -@all` and persist it in the aclfile", joined(&problems)))
        }
    })
}

/// Parameters of `access.cases`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Cases {
    /// The cases.
    pub cases: Vec<DryRunCase>,
}

fn cases(ev: &EvidenceSet, p: &Cases) -> Vec<SubjectFinding> {
    let views = ev.acl_views();
    let mut out = Vec::new();
    for case in &p.cases {
        let subject = format!("{}: {}", case.user, case.command);
        let expected = format!("{} on every node", case.expect);
        let want_allow = case.expect == Expect::Allow;
        let mut wrong = Vec::new();
        let mut unknown = Vec::new();
        let mut seen = 0;
        for (node, r) in &views {
            match r {
                Err(f) => unknown.push(format!("{node}: {}", f.message)),
                Ok(v) => match v
                    .cases
                    .iter()
                    .find(|c| c.user == case.user && c.command == case.command)
                {
                    None => unknown.push(format!("{node}: not evaluated")),
                    Some(c) if c.verdict == DryRunVerdict::Error => {
                        unknown.push(format!("{node}: {}", c.reply))
                    }
                    Some(c) => {
                        seen += 1;
                        if (c.verdict == DryRunVerdict::Allowed) != want_allow {
                            wrong.push(format!("{node}: {}", c.reply));
                        }
                    }
                },
            }
        }
        let finding = if !wrong.is_empty() {
            SubjectFinding::fail(subject, Why::CaseMismatch)
                .observed(wrong.join("; "))
                .expected(expected)
                .message(format!(
                    "expected {} on {} node(s)",
                    case.expect,
                    wrong.len()
                ))
        } else if !unknown.is_empty() || seen == 0 {
            SubjectFinding::error(subject, Why::CaseUnevaluated)
                .observed(unknown.join("; "))
                .expected(expected)
                .message("could not be evaluated on every node")
        } else {
            SubjectFinding::pass(subject, Why::CaseAsExpected)
                .observed(format!("{} on {seen} nodes", case.expect))
                .expected(expected)
                .message("as the policy expects")
        };
        out.push(finding);
    }
    out
}

fn authentication(ev: &EvidenceSet, _: &NoParams) -> Vec<SubjectFinding> {
    let expected = "every configured user logs in with its password (AUTH); where the user may \
                    ask, ACL WHOAMI or CLIENT INFO names that user";
    per_subject(ev.acl_views(), expected, |subject, v| {
        if v.auth.users.is_empty() {
            return SubjectFinding::error(subject, Why::NoUsersConfigured)
                .observed("no users configured")
                .expected(expected)
                .message("configure users with password references in the environment");
        }
        let mut refused = Vec::new();
        let mut mismatched = Vec::new();
        let mut seen = Vec::new();
        for u in &v.auth.users {
            match (u.authenticated, &u.whoami, &u.whoami_error) {
                (false, _, _) => refused.push(format!(
                    "{}: {}",
                    u.user,
                    u.error.as_deref().unwrap_or("AUTH refused")
                )),
                (true, Some(w), _) if w == &u.user => {
                    seen.push(format!("{} (identity {w})", u.user))
                }
                (true, Some(w), _) => mismatched.push(format!(
                    "{}: AUTH succeeded but the connection is user `{w}`",
                    u.user
                )),
                (true, None, Some(e)) => seen.push(format!(
                    "{} (AUTH OK; identity cross-check not permitted to this user: {e})",
                    u.user
                )),
                (true, None, None) => seen.push(format!(
                    "{} (AUTH OK; identity cross-check gave no user name)",
                    u.user
                )),
            }
        }
        if !refused.is_empty() {
            SubjectFinding::fail(subject, Why::LoginRefused).observed(refused.join("; ")).expected(expected).message(format!(
                    "AUTH with the configured password was refused on this node (the reply says \
                     why: a wrong password, e.g. rotated on some nodes only, or a disabled user): {}",
                    refused.join("; ")
                ))
        } else if !mismatched.is_empty() {
            SubjectFinding::fail(subject, Why::LoginIdentityMismatch)
                .observed(mismatched.join("; "))
                .expected(expected)
                .message(format!(
                    "a login did not yield the user it named: {}",
                    mismatched.join("; ")
                ))
        } else {
            SubjectFinding::pass(subject, Why::LoginsWork)
                .observed(format!("logged in: {}", seen.join(", ")))
                .expected(expected)
                .message("every configured credential works (proven by AUTH)")
        }
    })
}

/// Parameters of `access.auth_failures`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthFailures {
    /// Warn above this many failed authentications in the window.
    pub max_failures: u64,
    /// Only entries whose newest occurrence is this recent count.
    pub window_seconds: u64,
}

fn auth_failures(ev: &EvidenceSet, p: &AuthFailures) -> Vec<SubjectFinding> {
    let expected = format!(
        "at most {} failed logins in ACL LOG within {} s",
        p.max_failures, p.window_seconds
    );
    per_subject(ev.acl_views(), &expected, |subject, v| {
        let recent: Vec<_> = v
            .log
            .by_reason_user
            .iter()
            .filter(|c| c.reason == "auth" && c.newest_age_seconds <= p.window_seconds)
            .collect();
        let total: u64 = recent.iter().map(|c| c.count).sum();
        let by: Vec<String> = recent
            .iter()
            .map(|c| format!("{} {}", c.username, c.count))
            .collect();
        let observed = format!(
            "{total} failed login(s){}",
            if by.is_empty() {
                String::new()
            } else {
                format!(" ({})", by.join(", "))
            }
        );
        if total > p.max_failures {
            SubjectFinding::warn(subject, Why::ManyFailedLogins).observed(observed).expected(expected.clone()).message("many recent failed logins: look for password guessing or a client with a stale password (ACL LOG on the node has the client addresses)")
        } else {
            SubjectFinding::pass(subject, Why::FewFailedLogins)
                .observed(observed)
                .expected(expected.clone())
                .message(
                    "no unusual number of failed logins (each audit adds one for user default)",
                )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::glob;

    #[test]
    fn canonical_rules_ignore_the_order_of_individual_command_rules() {
        let a = canonical_rule("user u on #fp:1 ~* -@all +@read -keys +cluster|slots -client|kill");
        let b = canonical_rule("user u on #fp:1 ~* -@all +@read +cluster|slots -client|kill -keys");
        assert_eq!(a, b);
        // Category order is meaningful and kept.
        assert_ne!(
            canonical_rule("user u -@all +@read"),
            canonical_rule("user u +@read -@all")
        );
        let (x, y) = token_diff(
            &canonical_rule("user u #fp:1 +@read +@write"),
            &canonical_rule("user u #fp:2 +@read"),
        );
        assert_eq!(
            (x, y),
            (
                vec!["#fp:1".to_string(), "+@write".to_string()],
                vec!["#fp:2".to_string()]
            )
        );
    }

    #[test]
    fn glob_matches_like_redis() {
        assert!(glob("session:*", "session:abc"));
        assert!(!glob("session:*", "sessions:abc"));
        assert!(glob("*", ""));
        assert!(glob("h?llo", "hello"));
        assert!(glob("h[ae]llo", "hallo") && !glob("h[ae]llo", "hillo"));
        assert!(glob("h[^e]llo", "hallo") && !glob("h[^e]llo", "hello"));
        assert!(glob("h[a-b]llo", "hbllo"));
        assert!(glob("a\\*b", "a*b") && !glob("a\\*b", "axb"));
    }
}
