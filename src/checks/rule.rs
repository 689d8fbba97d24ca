//! What every check is made of: the [`Outcome`] of a subject, the
//! [`SubjectFinding`] a rule returns per subject, the [`Rule`] that binds a
//! pure judging function to its parameters, and the helpers the areas'
//! rules share. The areas' files import this file; `checks/mod.rs` only
//! lists them.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::reason::{Common, Reason};
use crate::evidence::{EvidenceSet, ProbeFailure, ProbeId};

/// Outcome of a check for one subject, or for the whole check.
///
/// Declaration order is severity order (`Ord`): skip < pass < waived <
/// warn < incomplete < error < fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not applicable (with a reason), e.g. disabled in the policy.
    Skip,
    /// The control holds.
    Pass,
    /// Failing, but under an unexpired waiver.
    Waived,
    /// Holds, with a concern worth a look.
    Warn,
    /// Selected but not audited: the environment lacks what the check needs
    /// (no `[aws]` table, no expected topology in the policy). Never a
    /// pass; a run with one ends `INCOMPLETE` (exit 2). Only `--skip`,
    /// `--only` or `enabled = false` take a check out of the verdict.
    Incomplete,
    /// Could not decide: evidence missing or unreadable. Never a pass.
    Error,
    /// The control does not hold.
    Fail,
}

impl Outcome {
    /// Lower-case name as used in reports.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Skip => "skip",
            Outcome::Waived => "waived",
            Outcome::Warn => "warn",
            Outcome::Incomplete => "incomplete",
            Outcome::Error => "error",
            Outcome::Fail => "fail",
        }
    }

    /// All outcomes, in report order.
    pub(crate) const ALL: [Outcome; 7] = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Error,
        Outcome::Incomplete,
        Outcome::Warn,
        Outcome::Waived,
        Outcome::Skip,
    ];

    /// The outcome of a check from its subjects: fail beats error beats warn
    /// beats waived beats pass beats skip. No subjects at all is an error:
    /// absence of evidence never passes.
    pub(crate) fn aggregate(subjects: &[SubjectFinding]) -> Outcome {
        subjects
            .iter()
            .map(|s| s.outcome)
            .max()
            .unwrap_or(Outcome::Error)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict of a check on one subject (a node, a slot range, a key...).
///
/// Built through the named constructors ([`SubjectFinding::pass`],
/// [`SubjectFinding::fail`], …), each taking the subject and the typed
/// [`Reason`], then [`observed`](SubjectFinding::observed),
/// [`expected`](SubjectFinding::expected) and
/// [`message`](SubjectFinding::message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectFinding {
    /// What was judged, e.g. `127.0.1.1:6379`.
    pub subject: String,
    /// The verdict.
    pub outcome: Outcome,
    /// Why, as data (not serialised: the report carries [`code`](Self::code));
    /// `None` for a finding read back from a report, which keeps only its
    /// code.
    #[serde(skip)]
    pub reason: Option<Reason>,
    /// The stable reason code, `CHECK-ID/slug` (`ACC-005/denied-command-allowed`),
    /// written by the engine once the check id is known. Empty in reports
    /// written before reason codes existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub code: String,
    /// What was seen.
    pub observed: String,
    /// What the policy expects.
    pub expected: String,
    /// One sentence a person can act on.
    pub message: String,
}

macro_rules! outcome_constructors {
    ($($(#[$m:meta])* $name:ident => $outcome:ident,)*) => {
        $(
            $(#[$m])*
            pub(crate) fn $name(subject: impl Into<String>, reason: impl Into<Reason>) -> Self {
                SubjectFinding::with(subject, Outcome::$outcome, reason)
            }
        )*
    };
}

impl SubjectFinding {
    /// A finding with an outcome decided at run time (`pass` or `warn` by a
    /// policy parameter, say); prefer the named constructors.
    pub(crate) fn with(
        subject: impl Into<String>,
        outcome: Outcome,
        reason: impl Into<Reason>,
    ) -> Self {
        SubjectFinding {
            subject: subject.into(),
            outcome,
            reason: Some(reason.into()),
            code: String::new(),
            observed: String::new(),
            expected: String::new(),
            message: String::new(),
        }
    }

    outcome_constructors! {
        /// The control holds for the subject.
        pass => Pass,
        /// The control does not hold.
        fail => Fail,
        /// Holds, with a concern.
        warn => Warn,
        /// Could not decide.
        error => Error,
        /// Not audited: the environment lacks what the check needs.
        incomplete => Incomplete,
        /// Not applicable.
        skip => Skip,
        /// Failing, accepted by the policy (an accepted build, say).
        waived => Waived,
    }

    /// What was seen.
    pub(crate) fn observed(mut self, observed: impl Into<String>) -> Self {
        self.observed = observed.into();
        self
    }

    /// What the policy expects.
    pub(crate) fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = expected.into();
        self
    }

    /// The sentence a person acts on.
    pub(crate) fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// `error` because the probe could not observe the subject. A refused
    /// command (NOPERM) names the ACL rule that would allow it.
    pub(crate) fn unobserved(subject: &str, expected: impl Into<String>, f: &ProbeFailure) -> Self {
        SubjectFinding::error(subject, Common::Unobserved)
            .observed(format!("no observation ({})", f.kind))
            .expected(expected)
            .message(format!(
                "could not be checked: {}{}",
                f.message,
                missing_permission(&f.message)
            ))
    }
}

/// `; add +CMD to …'s ACL …` for a message quoting Redis's NOPERM reply
/// for a command ("… has no permissions to run the 'C' command"), else
/// empty. The user is the one the reply or the message names (`User U`,
/// `as U`), else the audit user, as whom every probe but the latency load
/// connects.
pub(crate) fn missing_permission(message: &str) -> String {
    let Some(cmd) = message
        .split("has no permissions to run the '")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .filter(|c| !c.is_empty())
    else {
        return String::new();
    };
    let named = |marker: &str| {
        message
            .split(marker)
            .nth(1)
            .and_then(|r| r.split(|c: char| c.is_whitespace() || c == ':').next())
            .filter(|u| !u.is_empty())
            .map(|u| format!("{u}'s"))
    };
    let who = named("NOPERM User ")
        .or_else(|| named(" as "))
        .unwrap_or_else(|| "the audit user's".into());
    format!("; add +{cmd} to {who} ACL (`epic-audit print-acl` prints the whole line the audit user needs)")
}

/// One finding per subject: `f` judges each observed subject, and every
/// subject the probe could not observe becomes `error` (never `pass`).
pub(crate) fn per_subject<T: ?Sized>(
    items: Vec<(&str, Result<&T, &ProbeFailure>)>,
    expected: &str,
    mut f: impl FnMut(&str, &T) -> SubjectFinding,
) -> Vec<SubjectFinding> {
    items
        .into_iter()
        .map(|(subject, r)| match r {
            Ok(v) => f(subject, v),
            Err(fail) => SubjectFinding::unobserved(subject, expected, fail),
        })
        .collect()
}

/// Judges the AWS inventory with `f`. An environment without an `[aws]`
/// table gives `incomplete` (not audited, saying how to audit it or leave
/// the check out); an inventory that could not be read gives `error`
/// naming the failed call.
pub(crate) fn with_aws(
    ev: &EvidenceSet,
    expected: &str,
    mut f: impl FnMut(&crate::evidence::AwsInventory) -> Vec<SubjectFinding>,
) -> Vec<SubjectFinding> {
    unless_unconfigured(
        ev.aws_views(),
        expected,
        |subject, fl| {
            SubjectFinding::incomplete(subject, Common::AwsNotConfigured)
                .observed("not audited: no [aws] table in the environment")
                .message(format!(
                    "{} Add an [aws] table to audit it, or leave the AWS checks out of the verdict \
                     with --skip network,encryption,backup,CLU-008,CLU-009,CLU-010",
                    fl.message
                ))
        },
        |_, inv| f(inv),
    )
}

/// Judges each observation of a probe that the environment may leave
/// unconfigured (one item, named by what it reached): `f` on an
/// observation; `not_configured` (an `incomplete` finding, given
/// `expected` here) where the environment lacks what the probe needs;
/// `error` naming the failure otherwise.
pub(crate) fn unless_unconfigured<T: ?Sized>(
    views: Vec<(&str, Result<&T, &ProbeFailure>)>,
    expected: &str,
    not_configured: impl Fn(&str, &ProbeFailure) -> SubjectFinding,
    mut f: impl FnMut(&str, &T) -> Vec<SubjectFinding>,
) -> Vec<SubjectFinding> {
    views
        .into_iter()
        .flat_map(|(subject, r)| match r {
            Ok(v) => f(subject, v),
            Err(fl) if fl.kind == crate::evidence::FailureKind::NotConfigured => {
                vec![not_configured(subject, fl).expected(expected)]
            }
            Err(fl) => vec![SubjectFinding::unobserved(subject, expected, fl)],
        })
        .collect()
}

/// The problems found on one subject, each with its reason, as one
/// sentence (`; `-joined). A finding made of several takes the first's
/// reason.
pub(crate) fn joined<W>(problems: &[(W, String)]) -> String {
    problems
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `a, b, c, … (n in all)`: the first `max` items of a list for a message.
pub(crate) fn first_of(items: &[String], max: usize) -> String {
    let mut s = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        s.push_str(&format!(", … ({} in all)", items.len()));
    }
    s
}

type EvalFn =
    dyn Fn(&EvidenceSet, &toml::Table) -> Result<Vec<SubjectFinding>, String> + Send + Sync;
type ValidateFn = dyn Fn(&toml::Table) -> Result<(), String> + Send + Sync;

/// A rule: the Rust half of a check.
pub struct Rule {
    /// Name used in the policy's `rule = "..."`.
    pub name: &'static str,
    /// Probes whose evidence it reads (the engine runs only those needed).
    pub needs: &'static [ProbeId],
    /// How the evidence is obtained, shown by `epic-audit explain`.
    pub method: &'static str,
    validate: Box<ValidateFn>,
    eval: Box<EvalFn>,
}

impl Rule {
    /// Builds a rule from a typed function; `P` is its parameter struct,
    /// deserialised from the policy's `[check.params]` table.
    pub(crate) fn new<P: DeserializeOwned + 'static>(
        name: &'static str,
        needs: &'static [ProbeId],
        method: &'static str,
        f: fn(&EvidenceSet, &P) -> Vec<SubjectFinding>,
    ) -> Rule {
        Rule {
            name,
            needs,
            method,
            validate: Box::new(|t| parse_params::<P>(t).map(|_| ())),
            eval: Box::new(move |ev, t| Ok(f(ev, &parse_params::<P>(t)?))),
        }
    }

    /// Checks that `params` fit this rule.
    pub fn validate(&self, params: &toml::Table) -> Result<(), String> {
        (self.validate)(params)
    }

    /// Judges the evidence. A parameter problem or an empty result becomes
    /// a single `error` finding, never a pass; so does every subject the
    /// run's own discovery says a needed probe must cover but for which
    /// the evidence holds nothing (`missing`, from
    /// [`EvidenceSet::missing_subjects`]): a rule cannot pass on the
    /// subjects it was given while others are silently absent.
    pub(crate) fn evaluate(
        &self,
        ev: &EvidenceSet,
        params: &toml::Table,
        missing: &BTreeMap<ProbeId, Vec<String>>,
    ) -> Vec<SubjectFinding> {
        match (self.eval)(ev, params) {
            Ok(mut v) if !v.is_empty() => {
                for probe in self.needs {
                    for subject in missing.get(probe).into_iter().flatten() {
                        v.push(SubjectFinding::error(subject.clone(), Common::MissingSubject)
                            .observed(format!("no {} evidence", probe.as_str()))
                            .expected(format!("a {} observation of every subject discovery found", probe.as_str()))
                            .message(format!(
                                "the evidence holds no {} observation of {subject} (and no failure \
                                 saying why), although this run's discovery lists it: it was not \
                                 judged, so this check cannot pass",
                                probe.as_str()
                            )));
                    }
                }
                v
            }
            Ok(_) => vec![SubjectFinding::error("evidence", Common::NoEvidence)
                .observed("no evidence")
                .expected(format!("evidence from probe(s) {}", self.needs.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")))
                .message("the run recorded no evidence this check can judge; absence of evidence never passes")],
            Err(e) => vec![SubjectFinding::error("policy", Common::InvalidParams)
                .observed("invalid parameters")
                .expected("valid parameters")
                .message(e)],
        }
    }
}

fn parse_params<P: DeserializeOwned>(t: &toml::Table) -> Result<P, String> {
    toml::Value::Table(t.clone())
        .try_into::<P>()
        .map_err(|e| format!("invalid [check.params]: {}", e.to_string().trim()))
}

/// Parameters of rules that take none.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoParams {}

/// A TOML date (or a `YYYY-MM-DD` string) as a `chrono::NaiveDate`.
pub(crate) fn toml_date<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<chrono::NaiveDate, D::Error> {
    use serde::de::Error;
    let text = match toml::Value::deserialize(d)? {
        toml::Value::Datetime(dt) => match dt.date {
            Some(date) if dt.time.is_none() => date.to_string(),
            _ => return Err(D::Error::custom("must be a date like 2026-12-31")),
        },
        toml::Value::String(s) => s,
        _ => return Err(D::Error::custom("must be a date like 2026-12-31")),
    };
    chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .map_err(|_| D::Error::custom(format!("`{text}` is not a date like 2026-12-31")))
}

/// An optional TOML date (see [`toml_date`]).
pub(crate) fn opt_toml_date<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<chrono::NaiveDate>, D::Error> {
    toml_date(d).map(Some)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_noperm_reply_names_the_rule_to_add() {
        assert_eq!(
            super::missing_permission(
                "127.0.1.1:6379: CONFIG GET answered error `NOPERM this user has no permissions to run the 'config|get' command`"
            ),
            "; add +config|get to the audit user's ACL (`epic-audit print-acl` prints the whole line the audit user needs)"
        );
        assert!(super::missing_permission(
            "NOPERM User dev_user has no permissions to run the 'acl|whoami' command"
        )
        .contains("+acl|whoami to dev_user's ACL"));
        assert_eq!(super::missing_permission("TCP connect failed"), "");
    }
}
