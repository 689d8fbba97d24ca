//! `assessment-results.json`: the run as a NIST OSCAL Assessment Results
//! document, for GRC tools that import OSCAL.
//!
//! - Every evidence item (one probe on one subject) is an observation,
//!   collected when it was observed, pointing at `evidence.json`.
//! - Every HIPAA provision the selected checks cite gets a tool-scoped
//!   objective in `local-definitions` (what this run tested for it, in this
//!   environment, with the policy's parameters, and what remains manual),
//!   with properties for coverage (partial), method (automated), safeguard
//!   kind and Required/Addressable.
//! - Findings target those objectives, never the provision itself, under
//!   the rules of [`crate::hipaa`]: `satisfied` only for a technical
//!   provision with a passed primary check and no primary check failed,
//!   errored, not audited or waived; `not-satisfied` (`fail`) when a primary
//!   check failed; `not-satisfied` (`other`) for a waived failure (the
//!   waiver named) or when nothing primary decided ("not assessed").
//!   Administrative provisions, and those cited only by supporting checks,
//!   get no finding unless a primary check contradicts them: they are listed
//!   in `reviewed-controls` as "supporting technical evidence only; manual
//!   assessment required".
//!   A finding lists the checks (class primary/supporting) and their
//!   failing subjects and relates the observations of the probes they read.
//!
//! OSCAL control ids are tokens, so `164.312(e)(1)` becomes
//! `hipaa-164.312-e-1`; the citation itself is kept in a property. UUIDs are
//! derived from the run id and the item (version-5 layout over SHA-256), so
//! the same run always renders the same document.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::Report;
use crate::checks::Outcome;
use crate::evidence::{EvidenceSet, Observed};
use crate::hipaa::Status;

/// The OSCAL version the document declares.
pub(crate) const OSCAL_VERSION: &str = "1.1.2";

/// Namespace of epic-audit's own OSCAL properties.
const NS: &str = "urn:epic-audit:oscal";

/// A stable UUID (version-5 layout) from `parts`.
pub(crate) fn uuid(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    let mut b: [u8; 16] = h.finalize()[..16].try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// `164.312(e)(1)` -> `hipaa-164.312-e-1`.
pub(crate) fn control_id(citation: &str) -> String {
    let mut s = String::from("hipaa-");
    for c in citation.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_end_matches('-').to_string()
}

/// The id of the tool-scoped objective for a citation.
pub(crate) fn objective_id(citation: &str) -> String {
    format!("epic-audit-objective-{}", control_id(citation))
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn prop(name: &str, value: impl Into<String>) -> Value {
    let v: String = value.into();
    json!({"name": name, "ns": NS, "value": if v.is_empty() { "-".to_string() } else { v }})
}

/// Renders the OSCAL document. `needs(check id)` gives the probes whose
/// evidence the check reads (from the policy's rule); `evidence_file` is
/// the evidence's file name in the run directory, which the observations
/// link to (the run's layout names it).
pub fn render(
    report: &Report,
    ev: &EvidenceSet,
    needs: &dyn Fn(&str) -> Vec<String>,
    evidence_file: &str,
) -> String {
    let run = report.run_id.as_str();
    let env = report.environment.as_str();

    // Observations: one per evidence item.
    let mut obs_by_probe: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let observations: Vec<Value> = ev
        .items
        .iter()
        .map(|e| {
            let id = uuid(&[env, run, "observation", e.probe.as_str(), &e.subject]);
            obs_by_probe.entry(e.probe.as_str()).or_default().push(id.clone());
            let (state, detail) = match &e.result {
                Observed::Observation(_) => ("observed".to_string(), String::new()),
                Observed::Failure(f) => (
                    format!("not observed ({})", f.kind),
                    format!(" Not observed: {}", f.message),
                ),
            };
            json!({
                "uuid": id,
                "title": format!("{} on {}", e.probe, e.subject),
                "description": format!("Probe `{}` on `{}`: {}.{detail}", e.probe, e.subject, e.method),
                "props": [
                    prop("probe", e.probe.to_string()),
                    prop("subject", e.subject.clone()),
                    prop("result", state),
                    prop("duration-ms", e.duration_ms.to_string()),
                ],
                "methods": ["TEST"],
                "types": ["control-objective"],
                "relevant-evidence": [{
                    "href": evidence_file,
                    "description": format!("{evidence_file}, the item with probe `{}` and subject `{}`", e.probe, e.subject),
                }],
                "collected": ts(e.observed_at),
            })
        })
        .collect();

    // Findings: one per provision this run can conclude something about,
    // targeting a tool-scoped objective (what was tested, not the whole
    // provision); see crate::hipaa for the rules.
    let rows = super::safeguards::rows(report);
    let objectives: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut prose = format!(
                "Automated technical tests of the Redis Cluster `{env}` that support 45 CFR {} ({}), {} safeguard{}.",
                row.reference,
                row.title,
                row.safeguard_label(),
                match row.specification {
                    Some(_) => format!(", {}", row.specification_label()),
                    None => String::new(),
                }
            );
            if row.tested.is_empty() {
                prose.push_str(" No check tests it directly: supporting technical evidence only.");
            } else {
                prose.push_str(" Tested: ");
                prose.push_str(&row.tested.join("; "));
                prose.push('.');
            }
            prose.push(' ');
            prose.push_str(&row.manual);
            json!({
                "control-id": control_id(&row.reference),
                "description": format!("What epic-audit tested for 45 CFR {} in `{env}`", row.reference),
                "props": [
                    prop("coverage", "partial"),
                    prop("assessment-method", "automated"),
                    prop("safeguard", row.safeguard_label()),
                    prop("specification", row.specification_label().to_lowercase()),
                ],
                "parts": [{
                    "id": objective_id(&row.reference),
                    "name": "objective",
                    "ns": NS,
                    "prose": prose,
                }],
            })
        })
        .collect();
    let findings: Vec<Value> = rows
        .iter()
        .filter(|row| row.status != Status::ManualAssessment)
        .map(|row| {
            let (state, reason) = match row.status {
                Status::Satisfied => ("satisfied", "pass"),
                Status::NotSatisfied if row.primary.iter().any(|c| c.outcome == Outcome::Fail) => {
                    ("not-satisfied", "fail")
                }
                _ => ("not-satisfied", "other"),
            };
            let checks: Vec<&super::CheckResult> =
                row.primary.iter().chain(&row.supporting).copied().collect();
            let mut lines = vec![format!(
                "The technical checks performed ({}) support this safeguard partially: {}. {}",
                row.primary
                    .iter()
                    .map(|c| c.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                row.status,
                row.manual
            )];
            lines.extend(row.reasons.iter().cloned());
            for c in &checks {
                for s in c
                    .subjects
                    .iter()
                    .filter(|s| matches!(s.outcome, Outcome::Fail | Outcome::Error | Outcome::Waived))
                {
                    lines.push(format!(
                        "{} {} on {}: {} (observed: {}; expected: {})",
                        c.id, s.outcome, s.subject, s.message, s.observed, s.expected
                    ));
                }
            }
            let probes: BTreeSet<String> = checks.iter().flat_map(|c| needs(&c.id)).collect();
            let related: Vec<Value> = probes
                .iter()
                .flat_map(|p| obs_by_probe.get(p.as_str()).cloned().unwrap_or_default())
                .map(|u| json!({"observation-uuid": u}))
                .collect();
            let props: Vec<Value> = [
                prop("hipaa-citation", row.reference.clone()),
                prop("coverage", "partial"),
                prop("assessment-method", "automated"),
                prop("safeguard", row.safeguard_label()),
                prop("specification", row.specification_label().to_lowercase()),
                prop("status", row.status.label()),
            ]
            .into_iter()
            .chain(row.primary.iter().map(|c| {
                let mut p = prop("check", format!("{}={}", c.id, c.outcome));
                p["class"] = json!("primary");
                p
            }))
            .chain(row.supporting.iter().map(|c| {
                let mut p = prop("check", format!("{}={}", c.id, c.outcome));
                p["class"] = json!("supporting");
                p
            }))
            .collect();
            let mut f = json!({
                "uuid": uuid(&[env, run, "finding", &row.reference]),
                "title": format!("45 CFR {} {}: {}", row.reference, row.title, row.status),
                "description": lines.join("\n"),
                "props": props,
                "target": {
                    "type": "objective-id",
                    "target-id": objective_id(&row.reference),
                    "title": format!("What epic-audit tested for 45 CFR {} ({})", row.reference, row.title),
                    "status": {
                        "state": state,
                        "reason": reason,
                    },
                },
            });
            if !related.is_empty() {
                f["related-observations"] = Value::Array(related);
            }
            f
        })
        .collect();

    let select = |rows: Vec<&super::safeguards::Row>| -> Vec<Value> {
        rows.iter()
            .map(|r| json!({"control-id": control_id(&r.reference)}))
            .collect()
    };
    let concluded: Vec<&super::safeguards::Row> = rows
        .iter()
        .filter(|r| r.status != Status::ManualAssessment)
        .collect();
    let manual: Vec<&super::safeguards::Row> = rows
        .iter()
        .filter(|r| r.status == Status::ManualAssessment)
        .collect();
    let mut selections = Vec::new();
    if !concluded.is_empty() {
        selections.push(json!({
            "description": "Provisions with a finding: automated evidence, partial coverage (each finding's objective says what was tested).",
            "include-controls": select(concluded),
        }));
    }
    if !manual.is_empty() {
        let remarks: Vec<String> = manual
            .iter()
            .map(|r| {
                format!(
                    "45 CFR {} ({}): {}",
                    r.reference,
                    r.title,
                    r.reasons.join("; ")
                )
            })
            .collect();
        selections.push(json!({
            "description": "Supporting technical evidence only; manual assessment required (no finding is issued: \
                            administrative safeguards and provisions cited only by supporting checks).",
            "include-controls": select(manual),
            "remarks": remarks.join("\n"),
        }));
    }
    let policy_uuid = uuid(&[env, run, "policy"]);
    let mut result = json!({
        "uuid": uuid(&[env, run, "result"]),
        "title": format!("epic-audit run {run} of environment {env}"),
        "description": format!(
            "Live audit of the Redis Cluster `{env}`: {} checks, verdict {} (exit code {}). {}",
            report.checks.len(),
            report.verdict,
            report.exit_code,
            report.signature
        ),
        "start": ts(report.started_at),
        "end": ts(report.finished_at),
        "props": [
            prop("verdict", report.verdict.to_string()),
            prop("policy-sha256", report.policy.digest.clone()),
        ],
        "reviewed-controls": {
            "description": super::safeguards::PREAMBLE,
            "control-selections": selections,
        },
    });
    if !observations.is_empty() {
        result["observations"] = Value::Array(observations);
    }
    if !findings.is_empty() {
        result["findings"] = Value::Array(findings);
    }
    let doc = json!({
        "assessment-results": {
            "uuid": uuid(&[env, run, "assessment-results"]),
            "metadata": {
                "title": format!("epic-audit assessment results: {env}, run {run}"),
                "last-modified": ts(report.finished_at),
                "version": run,
                "oscal-version": OSCAL_VERSION,
                "props": [
                    prop("tool", format!("{} {}", report.tool.name, report.tool.version)),
                    prop("environment", env.to_string()),
                ],
            },
            "import-ap": {
                "href": format!("#{policy_uuid}"),
                "remarks": "There is no separate OSCAL assessment plan: the plan is the epic-audit policy (checks/*.toml) named in back-matter.",
            },
            "local-definitions": {
                "objectives-and-methods": objectives,
            },
            "results": [result],
            "back-matter": {
                "resources": [{
                    "uuid": policy_uuid,
                    "title": format!("epic-audit policy ({})", report.policy.source),
                    "description": "The checks, their parameters and HIPAA mapping that judged this run.",
                    "props": [prop("sha256", report.policy.digest.clone())],
                }],
            },
        }
    });
    serde_json::to_string_pretty(&doc).expect("JSON values serialise") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_ids_are_oscal_tokens() {
        assert_eq!(control_id("164.312(e)(1)"), "hipaa-164.312-e-1");
        assert_eq!(control_id("164.308(a)(7)(ii)(B)"), "hipaa-164.308-a-7-ii-b");
    }

    #[test]
    fn uuids_are_stable_and_version_5_shaped() {
        let a = uuid(&["a", "b"]);
        assert_eq!(a, uuid(&["a", "b"]));
        assert_ne!(a, uuid(&["ab"]));
        assert_eq!(&a[14..15], "5");
        assert!("89ab".contains(&a[19..20]), "{a}");
    }
}
