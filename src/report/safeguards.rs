//! The per-safeguard view every report shares: for each HIPAA provision the
//! selected checks cite, its status under the rules of [`crate::hipaa`],
//! the primary and supporting checks with their outcomes, what the primary
//! checks tested (with the policy's parameters, from their `expected`
//! text), why the status is what it is, and what remains manual.

use std::collections::BTreeMap;

use super::{CheckResult, Report};
use crate::checks::Outcome;
use crate::hipaa::{self, Provision, Relation, Safeguard, Specification, Status};

/// One provision's row.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    /// `164.312(e)(1)`.
    pub reference: String,
    /// Its heading (or a note that the reference is unknown).
    pub title: String,
    /// Administrative or technical.
    pub safeguard: Safeguard,
    /// Standard, Required or Addressable (None: unknown reference).
    pub specification: Option<Specification>,
    /// The conclusion.
    pub status: Status,
    /// Checks citing it as primary.
    pub primary: Vec<&'a CheckResult>,
    /// Checks citing it as supporting.
    pub supporting: Vec<&'a CheckResult>,
    /// Why the status is what it is, one sentence each.
    pub reasons: Vec<String>,
    /// What the primary checks tested: `ID: title (expected …)`.
    pub tested: Vec<String>,
    /// What a person must still assess.
    pub manual: String,
}

impl Row<'_> {
    /// `Required`, `Addressable`, `Standard` or `-`.
    pub(crate) fn specification_label(&self) -> &'static str {
        match self.specification {
            Some(Specification::Required) => "Required",
            Some(Specification::Addressable) => "Addressable",
            Some(Specification::Standard) => "Standard",
            None => "-",
        }
    }

    /// `administrative` or `technical`.
    pub(crate) fn safeguard_label(&self) -> &'static str {
        match self.safeguard {
            Safeguard::Administrative => "administrative",
            Safeguard::Technical => "technical",
        }
    }

    /// `ID outcome` of the checks of one relation, comma-separated.
    pub(crate) fn outcomes(&self, relation: Relation) -> String {
        let cs = match relation {
            Relation::Primary => &self.primary,
            Relation::Supporting => &self.supporting,
        };
        if cs.is_empty() {
            return "none".into();
        }
        with_outcomes(cs)
    }
}

/// What a check tested, from the first subject's expectation (the policy's
/// parameters in words), shortened.
fn tested(c: &CheckResult) -> String {
    let expected = c
        .subjects
        .iter()
        .map(|s| s.expected.trim())
        .find(|e| !e.is_empty());
    match expected {
        Some(e) => {
            let e: String = if e.chars().count() > 220 {
                e.chars().take(219).collect::<String>() + "…"
            } else {
                e.to_string()
            };
            format!("{}: {} (expected: {e})", c.id, c.title)
        }
        None => format!("{}: {}", c.id, c.title),
    }
}

/// `ID outcome, ID outcome`.
fn with_outcomes(cs: &[&CheckResult]) -> String {
    cs.iter()
        .map(|c| format!("{} {}", c.id, c.outcome))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ids(cs: &[&CheckResult]) -> String {
    cs.iter()
        .map(|c| c.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows for `r`, in reference order.
pub fn rows(r: &Report) -> Vec<Row<'_>> {
    let mut by_ref: BTreeMap<&str, (Vec<&CheckResult>, Vec<&CheckResult>)> = BTreeMap::new();
    for c in &r.checks {
        for h in &c.hipaa {
            let e = by_ref.entry(h.reference.as_str()).or_default();
            match h.relation {
                Relation::Primary => e.0.push(c),
                Relation::Supporting => e.1.push(c),
            }
        }
    }
    by_ref
        .into_iter()
        .map(|(reference, (primary, supporting))| {
            let p: Option<&Provision> = hipaa::provision(reference);
            let safeguard = p.map(|p| p.safeguard()).unwrap_or(if reference.starts_with("164.308") {
                Safeguard::Administrative
            } else {
                Safeguard::Technical
            });
            let waived_by = |c: &CheckResult| -> Vec<String> {
                r.waivers
                    .iter()
                    .filter(|w| w.waiver.check.eq_ignore_ascii_case(&c.id) && w.status == "in force")
                    .map(|w| {
                        format!(
                            "{} waived{} until {} by {}: {}",
                            c.id,
                            w.waiver
                                .subject
                                .as_deref()
                                .map(|s| format!(" on {s}"))
                                .unwrap_or_default(),
                            w.waiver.expires,
                            w.waiver.approver,
                            w.waiver.reason
                        )
                    })
                    .collect()
            };
            let with = |o: &[Outcome]| -> Vec<&CheckResult> {
                primary.iter().copied().filter(|c| o.contains(&c.outcome)).collect()
            };
            let failed = with(&[Outcome::Fail]);
            let waived = with(&[Outcome::Waived]);
            let undecided = with(&[Outcome::Error, Outcome::Incomplete]);
            let passed = with(&[Outcome::Pass]);
            let warned = with(&[Outcome::Warn]);
            let skipped = with(&[Outcome::Skip]);
            let mut reasons = Vec::new();
            let status = if primary.is_empty() {
                reasons.push(format!(
                    "only supporting checks cite it ({}): supporting technical evidence only",
                    ids(&supporting)
                ));
                Status::ManualAssessment
            } else if !failed.is_empty() {
                reasons.push(match safeguard {
                    Safeguard::Administrative => format!(
                        "the technical state contradicts it: {} failed",
                        ids(&failed)
                    ),
                    Safeguard::Technical => format!("{} failed", ids(&failed)),
                });
                Status::NotSatisfied
            } else if !waived.is_empty() {
                reasons.push(format!(
                    "{} failed under a waiver: an accepted risk is not a satisfied safeguard",
                    ids(&waived)
                ));
                for c in &waived {
                    reasons.extend(waived_by(c));
                }
                Status::NotSatisfied
            } else if safeguard == Safeguard::Administrative {
                reasons.push(
                    "an administrative safeguard (policies and procedures): supporting technical evidence only"
                        .into(),
                );
                if !undecided.is_empty() {
                    reasons.push(format!(
                        "{} could not decide (error or not audited), so a contradiction may have gone unseen",
                        ids(&undecided)
                    ));
                }
                Status::ManualAssessment
            } else if !undecided.is_empty() {
                reasons.push(format!(
                    "{} could not decide (error or not audited)",
                    ids(&undecided)
                ));
                Status::NotAssessed
            } else if passed.is_empty() {
                reasons.push(format!(
                    "no primary check passed ({})",
                    with_outcomes(&primary)
                ));
                Status::NotAssessed
            } else {
                reasons.push(format!("{} passed", ids(&passed)));
                Status::Satisfied
            };
            if status == Status::Satisfied || status == Status::NotSatisfied {
                if !warned.is_empty() {
                    reasons.push(format!("{} warned", ids(&warned)));
                }
                if !skipped.is_empty() {
                    reasons.push(format!("{} skipped (not part of this conclusion)", ids(&skipped)));
                }
            }
            let troubled: Vec<&CheckResult> = supporting
                .iter()
                .copied()
                .filter(|c| !matches!(c.outcome, Outcome::Pass | Outcome::Skip))
                .collect();
            if !troubled.is_empty() {
                reasons.push(format!(
                    "supporting evidence (does not decide): {}",
                    with_outcomes(&troubled)
                ));
            }
            Row {
                reference: reference.to_string(),
                title: p
                    .map(|p| p.title.to_string())
                    .unwrap_or_else(|| "(a reference epic-audit does not know)".into()),
                safeguard,
                specification: p.map(|p| p.specification),
                status,
                tested: primary.iter().map(|c| tested(c)).collect(),
                primary,
                supporting,
                reasons,
                manual: p.map(hipaa::manual_remainder).unwrap_or_default(),
            }
        })
        .collect()
}

/// Checks the selection judged that cite no provision (service objectives
/// and hygiene), as `ID outcome`.
pub(crate) fn uncited(r: &Report) -> Vec<String> {
    r.checks
        .iter()
        .filter(|c| c.hipaa.is_empty())
        .map(|c| format!("{} {}", c.id, c.outcome))
        .collect()
}

/// The sentence every report puts above the per-safeguard view.
pub const PREAMBLE: &str = "Automated evidence, partial coverage: each status concludes only what this run's \
checks tested on this Redis Cluster. Only primary checks decide; supporting checks are listed as related \
evidence. Administrative safeguards (164.308) and provisions cited only by supporting checks are never \
`satisfied`: they need a manual assessment, and are `not satisfied` only when a primary check shows the \
technical state contradicts them. A waived failure is not satisfied. Checks that skipped, errored or were not \
audited leave a provision `not assessed`.";
