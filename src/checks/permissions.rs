//! The permission matrix (ACC-005, ACC-006, ACC-007, ACC-011): one user's
//! ACL DRYRUN sweep over every command of the COMMAND table, judged
//! against the policy's allowed and denied categories, flags, commands and
//! key patterns.
//!
//! Two steps per node: [`classify`] reads the sweep into a [`Matrix`]
//! (what is allowed that must not be, what is denied that must not be,
//! what could not be decided), and [`decide`] turns it into one finding in
//! a written order of outcomes.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::reason::reasons;
use super::rule::{first_of, joined, per_subject, Outcome, Rule, SubjectFinding};
use crate::evidence::{
    glob, AclView, CommandInfo, CommandTable, DryRunVerdict, EvidenceSet, ProbeId,
};

reasons! {
    /// Why a node got its outcome in the permission-matrix checks (ACC-005, -006, -007, -011, MON-007).
    Permissions => Why {
        /// The user has exactly the permissions the policy allows.
        PermissionsExact = "permissions-exact",
        /// The user may run a command the policy denies.
        DeniedCommandAllowed = "denied-command-allowed",
        /// The user reaches keys outside the policy's patterns.
        KeyOutsidePatterns = "key-outside-patterns",
        /// The user is denied a command the policy allows (positive control).
        AllowedCommandDenied = "allowed-command-denied",
        /// Keyed commands of the allowed categories could not be tested.
        ControlsUntested = "controls-untested",
        /// The judged user does not exist on the node.
        UserMissing = "user-missing",
        /// The judged user was not swept with ACL DRYRUN.
        UserNotSwept = "user-not-swept",
        /// The DRYRUN sweep is empty.
        SweepEmpty = "sweep-empty",
        /// ACL DRYRUN could not decide for some commands.
        DryRunUndecided = "dry-run-undecided",
        /// Commands of the COMMAND table were not swept.
        CommandsUnswept = "commands-unswept",
        /// The audit user may not run ACL DRYRUN.
        DryRunRefused = "dry-run-refused",
    }
}

const DRYRUN_METHOD: &str = "On every node: COMMAND (flags and ACL categories of every command \
and subcommand), then ACL DRYRUN <user> <command> <args> for each of them, with arguments that \
satisfy the arity and, at the key positions, sample keys made from the user's key patterns in \
the policy and in its own grants (`*` = epic-audit-dryrun) plus one key outside every pattern \
the policy allows (the keys are recorded per user). DRYRUN evaluates permissions without \
executing anything. Commands in a denied category or with a denied flag must be denied; \
commands in an allowed category must be allowed on a permitted key (positive control); keys \
outside the user's patterns must be denied. DRYRUN ignores the on/off flag, so it never proves \
a user disabled (see ACC-004). All calls are pipelined.";

/// The permission-matrix rule.
pub(crate) fn rules() -> Vec<Rule> {
    vec![
        Rule::new(
            "access.permissions",
            &[ProbeId::Acl, ProbeId::AclCommands],
            DRYRUN_METHOD,
            permissions,
        ),
        // The exporters' user (MON-007): the same matrix, under its own rule
        // name so an environment's `exporter_user` can replace its `user`.
        Rule::new(
            "monitoring.exporter_user", // = crate::policy::EXPORTER_USER_RULE
            &[ProbeId::Acl, ProbeId::AclCommands],
            DRYRUN_METHOD,
            permissions,
        ),
    ]
}

/// Parameters of `access.permissions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Permissions {
    /// The user judged (also swept by the probe).
    pub user: String,
    /// Key patterns the user may reach; a key matching none must be denied.
    #[serde(default = "all_keys")]
    pub key_patterns: Vec<String>,
    /// Categories whose commands must be allowed on a permitted key (a
    /// positive control; `@all` for every command).
    #[serde(default)]
    pub allow_categories: Vec<String>,
    /// Categories whose commands must all be denied.
    #[serde(default)]
    pub deny_categories: Vec<String>,
    /// COMMAND flags (e.g. `write`, `admin`) whose commands must be denied.
    #[serde(default)]
    pub deny_flags: Vec<String>,
    /// Commands that must be denied whatever their category (e.g. `eval`).
    #[serde(default)]
    pub deny_commands: Vec<String>,
    /// Outcome when a command of `allow_categories` is denied: `warn`
    /// (default: the user is merely narrower than allowed) or `fail` (the
    /// access is the point, e.g. the emergency admin).
    #[serde(default)]
    pub missing_allowed: MissingAllowed,
}

/// Outcome of a denied positive control.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MissingAllowed {
    /// A warning.
    #[default]
    Warn,
    /// A failure.
    Fail,
}

fn all_keys() -> Vec<String> {
    vec!["*".into()]
}

impl Permissions {
    /// The sentence of what must hold.
    fn expected(&self) -> String {
        let mut expected = if self.key_patterns.is_empty() {
            format!("{}: no key", self.user)
        } else {
            format!("{}: keys {}", self.user, self.key_patterns.join(" "))
        };
        let denied: Vec<String> = self
            .deny_categories
            .iter()
            .chain(&self.deny_commands)
            .cloned()
            .chain(self.deny_flags.iter().map(|f| format!("flag {f}")))
            .collect();
        if !denied.is_empty() {
            expected.push_str(&format!("; denied: {}", denied.join(", ")));
        }
        if !self.allow_categories.is_empty() {
            expected.push_str(&format!("; allowed: {}", self.allow_categories.join(", ")));
        }
        expected
    }

    /// Why the policy denies `info` (a category, a flag, or by name), if it does.
    fn denies(&self, info: &CommandInfo) -> Option<String> {
        info.categories
            .iter()
            .find(|c| self.deny_categories.contains(c))
            .cloned()
            .or_else(|| {
                info.flags
                    .iter()
                    .find(|f| self.deny_flags.contains(f))
                    .map(|f| format!("flag {f}"))
            })
            .or_else(|| {
                self.deny_commands
                    .iter()
                    .find(|c| c.eq_ignore_ascii_case(&info.name))
                    .map(|_| "denied by name".to_string())
            })
    }

    /// Whether `info` is in a category the policy allows.
    fn allows(&self, info: &CommandInfo) -> bool {
        self.allow_categories
            .iter()
            .any(|c| c == "@all" || info.categories.contains(c))
    }
}

fn permissions(ev: &EvidenceSet, p: &Permissions) -> Vec<SubjectFinding> {
    let expected = p.expected();
    let table: &CommandTable = match ev.command_table() {
        None => return Vec::new(),
        Some(Err(f)) => return vec![SubjectFinding::unobserved("COMMAND table", expected, f)],
        Some(Ok(t)) => t,
    };
    per_subject(ev.acl_views(), &expected, |subject, v| {
        let finding = match v.dryrun.get(&p.user) {
            None if v.users.iter().any(|u| u.name == p.user) => {
                SubjectFinding::error(subject, Why::UserNotSwept)
                    .observed("no DRYRUN results")
                    .message(format!("{} was not swept with ACL DRYRUN", p.user))
            }
            None => SubjectFinding::fail(subject, Why::UserMissing)
                .observed("no DRYRUN results")
                .message(format!("user {} does not exist on this node", p.user)),
            Some(sweep) => decide(subject, p, v, &classify(p, v, table, sweep)),
        };
        finding.expected(expected.clone())
    })
}

/// One node's sweep of the user, read against the policy.
struct Matrix {
    /// The sample keys behind the letters, and which of them lie inside
    /// the policy's patterns (positive controls) or outside (must be denied).
    keys: Vec<String>,
    outside: Vec<usize>,
    /// Commands swept, and how many were allowed at all.
    swept: usize,
    allowed: usize,
    /// Denied by the policy but allowed, as `cmd (why)`, grouped by the
    /// grant that lets them through.
    too_much: Vec<String>,
    granted: BTreeMap<String, Vec<String>>,
    /// (command, index of a sample key outside the patterns) allowed.
    key_leaks: Vec<(String, usize)>,
    /// Allowed by the policy but denied on a permitted key.
    controls: Vec<String>,
    /// Keyed commands of the allowed categories no permitted key tested.
    untested_controls: usize,
    /// Commands DRYRUN could not decide, and commands not swept at all.
    undecided: Vec<String>,
    unswept: Vec<String>,
}

fn classify(
    p: &Permissions,
    v: &AclView,
    table: &CommandTable,
    sweep: &BTreeMap<String, crate::evidence::DryRunLetters>,
) -> Matrix {
    let keys = v.sample_keys(&p.user);
    let inside = |k: &String| p.key_patterns.iter().any(|pat| glob(pat, k));
    let permitted: Vec<usize> = (0..keys.len()).filter(|&i| inside(&keys[i])).collect();
    let outside: Vec<usize> = (0..keys.len()).filter(|&i| !inside(&keys[i])).collect();
    let user = v.users.iter().find(|u| u.name == p.user);
    let mut m = Matrix {
        keys,
        outside,
        swept: sweep.len(),
        allowed: 0,
        too_much: Vec::new(),
        granted: BTreeMap::new(),
        key_leaks: Vec::new(),
        controls: Vec::new(),
        untested_controls: 0,
        undecided: Vec::new(),
        unswept: Vec::new(),
    };
    for info in table.commands.iter().filter(|c| !c.container) {
        let Some(letters) = sweep.get(&info.name) else {
            m.unswept.push(info.name.clone());
            continue;
        };
        let letters = letters.verdicts();
        let any = |x: DryRunVerdict| letters.contains(&x);
        if any(DryRunVerdict::Allowed) {
            m.allowed += 1;
        }
        if let Some(why) = p.denies(info) {
            if any(DryRunVerdict::Allowed) {
                // Name what lets it through: the root rule or the selector,
                // as GETUSER prints it (what to remove).
                let by = user
                    .and_then(|u| u.grant_of(info))
                    .unwrap_or_else(|| "a rule not recorded for this user".to_string());
                m.too_much.push(format!("{} ({why})", info.name));
                m.granted
                    .entry(by)
                    .or_default()
                    .push(format!("{} ({why})", info.name));
            } else if any(DryRunVerdict::Error) {
                m.undecided.push(info.name.clone());
            }
            continue;
        }
        // A keyed command has one letter per sample key; on a permitted key
        // it is the worst of them (every permitted pattern must work).
        let on_permitted = if letters.len() == 1 {
            Some(letters[0])
        } else if letters.len() == m.keys.len() && !permitted.is_empty() {
            let ls: Vec<DryRunVerdict> = permitted.iter().map(|&i| letters[i]).collect();
            ls.iter()
                .find(|l| !matches!(l, DryRunVerdict::Allowed | DryRunVerdict::Error))
                .or_else(|| ls.iter().find(|l| **l == DryRunVerdict::Error))
                .copied()
                .or(Some(DryRunVerdict::Allowed))
        } else {
            None
        };
        let in_allowed = p.allows(info);
        match on_permitted {
            Some(DryRunVerdict::Allowed) => {}
            Some(DryRunVerdict::Error) if in_allowed => m.undecided.push(info.name.clone()),
            Some(_) if in_allowed => m.controls.push(info.name.clone()),
            None if in_allowed => m.untested_controls += 1,
            _ => {}
        }
        if letters.len() == m.keys.len() && letters.len() > 1 {
            for &o in m
                .outside
                .iter()
                .filter(|&&o| letters[o] == DryRunVerdict::Allowed)
            {
                m.key_leaks.push((info.name.clone(), o));
            }
        }
    }
    m
}

/// The finding, in this order: anything allowed that the policy denies
/// (`fail`); anything undecided or unswept (`error`); allowed keyed
/// commands no permitted sample key tested (`error`); positive controls
/// denied (`warn` or `fail`, by `missing_allowed`); else `pass`.
fn decide(subject: &str, p: &Permissions, v: &AclView, m: &Matrix) -> SubjectFinding {
    let leaking: std::collections::BTreeSet<&str> =
        m.key_leaks.iter().map(|(c, _)| c.as_str()).collect();
    let observed = format!(
        "{} of {} commands allowed; {} denied-by-policy allowed; {} reach keys outside {} (sample keys: {})",
        m.allowed,
        m.swept,
        m.too_much.len(),
        leaking.len(),
        p.key_patterns.join(" "),
        m.keys.join(", ")
    );
    if !m.too_much.is_empty() || !m.key_leaks.is_empty() {
        let why = if m.too_much.is_empty() {
            Why::KeyOutsidePatterns
        } else {
            Why::DeniedCommandAllowed
        };
        return SubjectFinding::fail(subject, why)
            .observed(observed)
            .message(too_much(p, v, m));
    }
    let mut unknown = Vec::new();
    if m.swept == 0 {
        unknown.push((
            Why::SweepEmpty,
            format!("the DRYRUN sweep of {} is empty", p.user),
        ));
    }
    if !m.undecided.is_empty() {
        // What the node said for the first of them (a renamed command
        // says so, with how to tell the audit its name).
        let said = v
            .dryrun_errors
            .iter()
            .find(|e| e.user == p.user && m.undecided.contains(&e.command))
            .map(|e| format!(" (the node said: {})", e.reply))
            .unwrap_or_default();
        unknown.push((
            Why::DryRunUndecided,
            format!(
                "ACL DRYRUN could not decide for {} command(s): {}{said}",
                m.undecided.len(),
                first_of(&m.undecided, 12)
            ),
        ));
    }
    if !m.unswept.is_empty() {
        unknown.push((
            Why::CommandsUnswept,
            format!(
                "{} command(s) of the COMMAND table were not swept: {}",
                m.unswept.len(),
                first_of(&m.unswept, 12)
            ),
        ));
    }
    if !unknown.is_empty() {
        if v.dryrun_errors
            .iter()
            .any(|e| e.reply.starts_with("NOPERM"))
        {
            unknown.push((
                Why::DryRunRefused,
                "the audit user was refused ACL DRYRUN (NOPERM): add +acl|dryrun to its ACL".into(),
            ));
        }
        return SubjectFinding::error(subject, unknown[0].0)
            .observed(observed)
            .message(joined(&unknown));
    }
    if m.untested_controls > 0 {
        return SubjectFinding::error(subject, Why::ControlsUntested)
            .observed(observed)
            .message(format!(
                "{} keyed command(s) of the allowed categories were not tested: no DRYRUN sample \
                 key ({}) falls under {}'s key patterns ({})",
                m.untested_controls,
                m.keys.join(", "),
                p.user,
                p.key_patterns.join(" ")
            ));
    }
    if !m.controls.is_empty() {
        let outcome = match p.missing_allowed {
            MissingAllowed::Warn => Outcome::Warn,
            MissingAllowed::Fail => Outcome::Fail,
        };
        return SubjectFinding::with(subject, outcome, Why::AllowedCommandDenied)
            .observed(observed)
            .message(format!(
                "{} is denied {} command(s) the policy allows (positive control): {}",
                p.user,
                m.controls.len(),
                first_of(&m.controls, 12)
            ));
    }
    SubjectFinding::pass(subject, Why::PermissionsExact)
        .observed(observed)
        .message(format!(
            "{} has exactly the permissions the policy allows",
            p.user
        ))
}

/// What the user may do that the policy denies: the commands, by the grant
/// that allows them, and the commands that reach each key outside the
/// patterns, with the grant that reaches it.
fn too_much(p: &Permissions, v: &AclView, m: &Matrix) -> String {
    let mut parts = Vec::new();
    if !m.too_much.is_empty() {
        let by: Vec<String> = m
            .granted
            .iter()
            .map(|(g, cmds)| format!("{} (granted by {g})", first_of(cmds, 12)))
            .collect();
        parts.push(format!(
            "{} may run {} command(s) the policy denies: {}",
            p.user,
            m.too_much.len(),
            by.join("; ")
        ));
    }
    // Which of the user's real grants reaches a key: each pattern with
    // where it comes from, the root permissions or a selector (named as
    // GETUSER prints it).
    let grants: Vec<(String, String)> = v
        .users
        .iter()
        .filter(|u| u.name == p.user)
        .flat_map(|u| {
            crate::evidence::acl_key_patterns(&u.keys)
                .into_iter()
                .map(|k| (k, String::new()))
                .chain(u.selectors.iter().flat_map(|sel| {
                    crate::evidence::acl_key_patterns(sel)
                        .into_iter()
                        .map(move |k| {
                            (
                                k,
                                format!(
                                    " of the selector `{}`",
                                    crate::evidence::selector_text(sel)
                                ),
                            )
                        })
                }))
        })
        .collect();
    for &o in &m.outside {
        let cmds: Vec<String> = m
            .key_leaks
            .iter()
            .filter(|(_, i)| *i == o)
            .map(|(c, _)| c.clone())
            .collect();
        if cmds.is_empty() {
            continue;
        }
        let granted_by: Vec<String> = grants
            .iter()
            .filter(|(g, _)| glob(g, &m.keys[o]))
            .map(|(g, from)| format!("`~{g}`{from}"))
            .collect();
        parts.push(format!(
            "{} can use {} command(s) on key `{}`{}, outside {}: {}",
            p.user,
            cmds.len(),
            m.keys[o],
            if granted_by.is_empty() {
                String::new()
            } else {
                format!(" (granted by {})", granted_by.join(", "))
            },
            p.key_patterns.join(" "),
            first_of(&cmds, 12)
        ));
    }
    parts.join("; ")
}
