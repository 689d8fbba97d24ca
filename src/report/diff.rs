//! `epic-audit diff RUN_A RUN_B`: what changed between two runs of an
//! environment, check by check and subject by subject.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Report;
use crate::checks::Outcome;

/// The differences between two reports.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Diff {
    /// Failing in B, not in A: (id, outcome in A).
    pub newly_failing: Vec<(String, Outcome)>,
    /// Failing in A, passing (or waived) in B.
    pub fixed: Vec<(String, Outcome)>,
    /// Failing in both.
    pub still_failing: Vec<String>,
    /// Other outcome changes: (id, A, B).
    pub changed: Vec<(String, Outcome, Outcome)>,
    /// Subjects whose observation changed: (id, subject, A, B).
    pub observations: Vec<(String, String, String, String)>,
    /// Checks only in A or only in B.
    pub only_in_a: Vec<String>,
    /// Checks only in B.
    pub only_in_b: Vec<String>,
}

fn index(r: &Report) -> BTreeMap<String, &super::CheckResult> {
    r.checks.iter().map(|c| (c.id.clone(), c)).collect()
}

/// Compares two reports.
pub(crate) fn diff(a: &Report, b: &Report) -> Diff {
    let (ia, ib) = (index(a), index(b));
    let mut d = Diff::default();
    for (id, cb) in &ib {
        let Some(ca) = ia.get(id) else {
            d.only_in_b.push(id.clone());
            continue;
        };
        match (ca.outcome == Outcome::Fail, cb.outcome == Outcome::Fail) {
            (false, true) => d.newly_failing.push((id.clone(), ca.outcome)),
            (true, false) => d.fixed.push((id.clone(), cb.outcome)),
            (true, true) => d.still_failing.push(id.clone()),
            (false, false) if ca.outcome != cb.outcome => {
                d.changed.push((id.clone(), ca.outcome, cb.outcome))
            }
            _ => {}
        }
        let obs = |c: &super::CheckResult| {
            c.subjects
                .iter()
                .map(|s| (s.subject.clone(), s.observed.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        let (oa, ob) = (obs(ca), obs(cb));
        for (subject, vb) in &ob {
            match oa.get(subject) {
                Some(va) if va != vb => {
                    d.observations
                        .push((id.clone(), subject.clone(), va.clone(), vb.clone()))
                }
                None => d.observations.push((
                    id.clone(),
                    subject.clone(),
                    "(no such subject)".into(),
                    vb.clone(),
                )),
                _ => {}
            }
        }
        for (subject, va) in &oa {
            if !ob.contains_key(subject) {
                d.observations.push((
                    id.clone(),
                    subject.clone(),
                    va.clone(),
                    "(no such subject)".into(),
                ));
            }
        }
    }
    d.only_in_a = ia
        .keys()
        .filter(|k| !ib.contains_key(*k))
        .cloned()
        .collect();
    d
}

/// The summary of a diff stored in a report.
pub(crate) fn summary(previous: &Report, d: &Diff) -> super::SincePrevious {
    super::SincePrevious {
        run_id: previous.run_id.clone(),
        verdict: previous.verdict.to_string(),
        newly_failing: d.newly_failing.iter().map(|(id, _)| id.clone()).collect(),
        fixed: d.fixed.iter().map(|(id, _)| id.clone()).collect(),
        still_failing: d.still_failing.clone(),
        changed_observations: d.observations.len(),
    }
}

/// Renders the diff for the terminal.
pub(crate) fn render(a: &Report, b: &Report, d: &Diff) -> String {
    let mut o = String::new();
    let label = |r: &Report| match &r.reevaluation {
        Some(re) => format!(
            "re-evaluation {} of observed run {} ({})",
            r.run_id, re.observed_run_id, r.verdict
        ),
        None => format!("run {} ({})", r.run_id, r.verdict),
    };
    let _ = writeln!(o, "{} {} -> {}", b.environment, label(a), label(b));
    if let (Some(re), None) | (None, Some(re)) = (&a.reevaluation, &b.reevaluation) {
        let other = if a.reevaluation.is_some() { b } else { a };
        if re.observed_run_id == other.run_id {
            let _ = writeln!(
                o,
                "the same observation judged twice: every difference below comes from the policy \
                 ({}), not from the cluster",
                re.judged_with
            );
        }
    }
    if let (Some(ra), Some(rb)) = (&a.reevaluation, &b.reevaluation) {
        if ra.observed_run_id == rb.observed_run_id {
            let _ = writeln!(
                o,
                "the same observation judged twice: every difference below comes from the policy, \
                 not from the cluster"
            );
        }
    }
    let list = |o: &mut String, title: &str, items: Vec<String>| {
        let _ = writeln!(o, "\n{title} ({})", items.len());
        for i in items {
            let _ = writeln!(o, "  {i}");
        }
    };
    list(
        &mut o,
        "newly failing",
        d.newly_failing
            .iter()
            .map(|(id, was)| format!("{id} (was {was})"))
            .collect(),
    );
    list(
        &mut o,
        "fixed",
        d.fixed
            .iter()
            .map(|(id, now)| format!("{id} (now {now})"))
            .collect(),
    );
    list(&mut o, "still failing", d.still_failing.clone());
    list(
        &mut o,
        "other outcome changes",
        d.changed
            .iter()
            .map(|(id, x, y)| format!("{id}: {x} -> {y}"))
            .collect(),
    );
    list(
        &mut o,
        "changed observations",
        d.observations
            .iter()
            .map(|(id, s, x, y)| format!("{id} {s}: `{x}` -> `{y}`"))
            .collect(),
    );
    if !d.only_in_a.is_empty() || !d.only_in_b.is_empty() {
        let _ = writeln!(
            o,
            "\nchecks only in the first run: {}; only in the second: {}",
            d.only_in_a.join(", "),
            d.only_in_b.join(", ")
        );
    }
    o
}
