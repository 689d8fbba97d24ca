//! A quarter's history over many runs' reports: each check's outcome in
//! every run, each HIPAA provision's status in every run, the waivers in
//! force, and the runs themselves as an export lists them. The export
//! writes these as JSON and [`super::quarter`] renders them as its index.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::checks::Outcome;
use crate::report::Report;
use crate::sign::Verification;

/// One run of the quarter, as the export lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunEntry {
    /// Directory name (kept in the archive as `runs/<dir>`).
    pub dir: String,
    /// Run id.
    pub run_id: String,
    /// For a re-evaluation (`epic-audit evaluate`): the run that observed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_run_id: Option<String>,
    /// When probing started.
    pub started_at: DateTime<Utc>,
    /// Verdict.
    pub verdict: String,
    /// Exit code.
    pub exit_code: u8,
    /// How it verified (serialised as `valid (key <id>)`, or what failed).
    pub verification: Verification,
}

/// One check across the quarter.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CheckHistory {
    /// Check id.
    pub id: String,
    /// Title (from the latest run).
    pub title: String,
    /// HIPAA citations.
    pub hipaa: Vec<crate::hipaa::Citation>,
    /// Outcome per run, in run order (`not run` where it was not selected).
    pub outcomes: Vec<Seen>,
    /// First run (id, start) in which it failed.
    pub first_failure: Option<(String, DateTime<Utc>)>,
    /// The first run after its last failure in which it no longer failed,
    /// when it does not fail at the end of the quarter.
    pub fixed: Option<(String, DateTime<Utc>)>,
    /// Outcome in the last run of the quarter that ran it.
    pub last: Seen,
}

/// A check in one run of a quarter: not run (not selected), or its outcome.
/// Written as `not run` or the outcome's name, as export.json always had it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// The run did not select the check.
    NotRun,
    /// The check's outcome in the run.
    Judged(Outcome),
}

impl Seen {
    /// `not run`, or the outcome's name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Seen::NotRun => "not run",
            Seen::Judged(o) => o.as_str(),
        }
    }

    /// Judged, with an outcome that counts towards a pass rate: pass, warn
    /// or waived (passing), fail or error (not).
    pub(crate) fn passing(self) -> Option<bool> {
        match self {
            Seen::Judged(Outcome::Pass | Outcome::Warn | Outcome::Waived) => Some(true),
            Seen::Judged(Outcome::Fail | Outcome::Error) => Some(false),
            _ => None,
        }
    }
}

impl Serialize for Seen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A waiver in force during the quarter.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WaiverUse {
    /// The waiver (check, subject, reason, approver, expires).
    pub waiver: crate::waivers::Waiver,
    /// Runs in which it was in force.
    pub in_force_in: Vec<String>,
    /// Runs in which it turned a failing subject into `waived`.
    pub waived_in: Vec<String>,
}

/// One HIPAA provision across the quarter.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SafeguardHistory {
    /// `164.312(e)(1)`.
    pub reference: String,
    /// Its heading.
    pub title: String,
    /// `administrative` or `technical`.
    pub safeguard: String,
    /// `Required`, `Addressable` or `Standard`.
    pub specification: String,
    /// Status per run, in run order, in the reports' words (`not cited`
    /// where no selected check cited it).
    pub statuses: Vec<String>,
    /// Why, in the last run that cited it.
    pub last_reasons: Vec<String>,
    /// What remains for a person to assess.
    pub manual: String,
}

/// Per HIPAA provision, its status in every run ([`crate::report::safeguards`]).
pub(crate) fn safeguard_history(reports: &[&Report]) -> Vec<SafeguardHistory> {
    let per_run: Vec<Vec<crate::report::safeguards::Row>> = reports
        .iter()
        .map(|r| crate::report::safeguards::rows(r))
        .collect();
    let mut refs: BTreeSet<String> = BTreeSet::new();
    for rows in &per_run {
        refs.extend(rows.iter().map(|r| r.reference.clone()));
    }
    refs.into_iter()
        .map(|reference| {
            let mut h = SafeguardHistory {
                reference: reference.clone(),
                title: String::new(),
                safeguard: String::new(),
                specification: String::new(),
                statuses: Vec::new(),
                last_reasons: Vec::new(),
                manual: String::new(),
            };
            for rows in &per_run {
                match rows.iter().find(|r| r.reference == reference) {
                    None => h.statuses.push("not cited".into()),
                    Some(r) => {
                        h.title = r.title.clone();
                        h.safeguard = r.safeguard_label().into();
                        h.specification = r.specification_label().into();
                        h.statuses.push(r.status.label().into());
                        h.last_reasons = r.reasons.clone();
                        h.manual = r.manual.clone();
                    }
                }
            }
            h
        })
        .collect()
}

/// Per check, its outcome in every run, in run order.
pub(crate) fn history(reports: &[&Report]) -> Vec<CheckHistory> {
    let mut order: Vec<String> = Vec::new();
    for r in reports {
        for c in &r.checks {
            if !order.contains(&c.id) {
                order.push(c.id.clone());
            }
        }
    }
    order
        .into_iter()
        .map(|id| {
            let mut h = CheckHistory {
                id: id.clone(),
                title: String::new(),
                hipaa: Vec::new(),
                outcomes: Vec::new(),
                first_failure: None,
                fixed: None,
                last: Seen::NotRun,
            };
            let mut failing = false;
            for r in reports {
                match r.checks.iter().find(|c| c.id == id) {
                    None => h.outcomes.push(Seen::NotRun),
                    Some(c) => {
                        h.title = c.title.clone();
                        h.hipaa = c.hipaa.clone();
                        h.outcomes.push(Seen::Judged(c.outcome));
                        h.last = Seen::Judged(c.outcome);
                        if c.outcome == Outcome::Fail {
                            if h.first_failure.is_none() {
                                h.first_failure =
                                    Some((r.observation_id().to_string(), r.started_at));
                            }
                            failing = true;
                            h.fixed = None;
                        } else if failing && c.outcome != Outcome::Error {
                            // An error decides nothing: not a fix.
                            failing = false;
                            h.fixed = Some((r.observation_id().to_string(), r.started_at));
                        }
                    }
                }
            }
            h
        })
        .collect()
}

/// The waivers in force in any run, and the runs where they waived
/// something.
pub(crate) fn waiver_uses(reports: &[&Report]) -> Vec<WaiverUse> {
    let mut out: Vec<WaiverUse> = Vec::new();
    for r in reports {
        for w in r.waivers.iter().filter(|w| w.status == "in force") {
            let waived = r.checks.iter().any(|c| {
                c.id.eq_ignore_ascii_case(&w.waiver.check)
                    && c.subjects.iter().any(|s| {
                        s.outcome == Outcome::Waived
                            && w.waiver.subject.as_ref().is_none_or(|x| x == &s.subject)
                    })
            });
            let i = match out.iter().position(|u| {
                u.waiver.check == w.waiver.check
                    && u.waiver.subject == w.waiver.subject
                    && u.waiver.expires == w.waiver.expires
            }) {
                Some(i) => i,
                None => {
                    out.push(WaiverUse {
                        waiver: w.waiver.clone(),
                        in_force_in: Vec::new(),
                        waived_in: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            out[i].in_force_in.push(r.observation_id().to_string());
            if waived {
                out[i].waived_in.push(r.observation_id().to_string());
            }
        }
    }
    out
}

/// Per provision of `safeguards`, the share of the checks citing it that
/// passed in each run (see the index's explanation); `None` for a run in
/// which none of them was judged.
pub(crate) fn safeguard_pass_rates(
    history: &[CheckHistory],
    safeguards: &[SafeguardHistory],
) -> Vec<(String, String, Vec<Option<f64>>)> {
    safeguards
        .iter()
        .map(|s| {
            let citing: Vec<&CheckHistory> = history
                .iter()
                .filter(|h| h.hipaa.iter().any(|c| c.reference == s.reference))
                .collect();
            let rates = (0..s.statuses.len())
                .map(|i| {
                    let judged: Vec<bool> = citing
                        .iter()
                        .filter_map(|h| h.outcomes.get(i).and_then(|o| o.passing()))
                        .collect();
                    let passed = judged.iter().filter(|p| **p).count();
                    (!judged.is_empty()).then(|| passed as f64 / judged.len() as f64)
                })
                .collect();
            (s.reference.clone(), s.title.clone(), rates)
        })
        .collect()
}
