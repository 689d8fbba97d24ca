//! `assessment-results.json`: the run as a NIST OSCAL Assessment Results
//! document, for GRC tools that import OSCAL.
//!
//! - Every evidence item (one probe on one subject) is an observation,
//!   collected when it was observed, pointing at `evidence.json`.
//! - Every HIPAA citation the selected checks map to is a finding whose
//!   target is that control: `satisfied` only when every check citing it
//!   ran and passed (a warning or a waived failure included),
//!   `not-satisfied` when any failed, could not be decided, or did not run
//!   (not audited, or disabled in the policy): absence of evidence never
//!   satisfies a control. The reason is `fail` when a check failed or
//!   errored and `other` when checks only did not run.
//!   The finding lists the checks and their failing subjects and relates
//!   the observations of the probes those checks read.
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

/// The OSCAL version the document declares.
pub const OSCAL_VERSION: &str = "1.1.2";

/// Namespace of epic-audit's own OSCAL properties.
const NS: &str = "urn:epic-audit:oscal";

/// A stable UUID (version-5 layout) from `parts`.
pub fn uuid(parts: &[&str]) -> String {
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
pub fn control_id(citation: &str) -> String {
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

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn prop(name: &str, value: impl Into<String>) -> Value {
    let v: String = value.into();
    json!({"name": name, "ns": NS, "value": if v.is_empty() { "-".to_string() } else { v }})
}

/// Renders the OSCAL document. `needs(check id)` gives the probes whose
/// evidence the check reads (from the policy's rule).
pub fn render(report: &Report, ev: &EvidenceSet, needs: &dyn Fn(&str) -> Vec<String>) -> String {
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
                    "href": "evidence.json",
                    "description": format!("evidence.json, the item with probe `{}` and subject `{}`", e.probe, e.subject),
                }],
                "collected": ts(e.observed_at),
            })
        })
        .collect();

    // Findings: one per HIPAA citation of the selected checks.
    let mut by_control: BTreeMap<&str, Vec<&super::CheckResult>> = BTreeMap::new();
    for c in &report.checks {
        for h in &c.hipaa {
            by_control.entry(h.as_str()).or_default().push(c);
        }
    }
    let findings: Vec<Value> = by_control
        .iter()
        .map(|(citation, checks)| {
            let bad: Vec<&&super::CheckResult> = checks
                .iter()
                .filter(|c| matches!(c.outcome, Outcome::Fail | Outcome::Error))
                .collect();
            let not_run: Vec<&&super::CheckResult> = checks
                .iter()
                .filter(|c| matches!(c.outcome, Outcome::Incomplete | Outcome::Skip))
                .collect();
            let (state, reason) = match (bad.is_empty(), not_run.is_empty()) {
                (true, true) => ("satisfied", "pass"),
                (false, _) => ("not-satisfied", "fail"),
                (true, false) => ("not-satisfied", "other"),
            };
            let mut lines: Vec<String> = checks
                .iter()
                .map(|c| format!("{} ({}): {} — {}", c.id, c.severity, c.outcome, c.title))
                .collect();
            for c in &bad {
                for s in c
                    .subjects
                    .iter()
                    .filter(|s| matches!(s.outcome, Outcome::Fail | Outcome::Error))
                {
                    lines.push(format!(
                        "{} {} on {}: {} (observed: {}; expected: {})",
                        c.id, s.outcome, s.subject, s.message, s.observed, s.expected
                    ));
                }
            }
            for c in &not_run {
                lines.push(format!(
                    "{} did not run ({}): this control is not satisfied until it runs and passes",
                    c.id, c.outcome
                ));
            }
            let probes: BTreeSet<String> = checks.iter().flat_map(|c| needs(&c.id)).collect();
            let related: Vec<Value> = probes
                .iter()
                .flat_map(|p| obs_by_probe.get(p.as_str()).cloned().unwrap_or_default())
                .map(|u| json!({"observation-uuid": u}))
                .collect();
            let mut f = json!({
                "uuid": uuid(&[env, run, "finding", citation]),
                "title": format!("45 CFR {citation}"),
                "description": lines.join("\n"),
                "props": std::iter::once(prop("hipaa-citation", citation.to_string()))
                    .chain(checks.iter().map(|c| prop("check", format!("{}={}", c.id, c.outcome))))
                    .collect::<Vec<_>>(),
                "target": {
                    "type": "objective-id",
                    "target-id": control_id(citation),
                    "title": format!("HIPAA Security Rule, 45 CFR {citation}"),
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

    let controls: Vec<Value> = by_control
        .keys()
        .map(|c| json!({"control-id": control_id(c)}))
        .collect();
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
            "description": "The HIPAA Security Rule (45 CFR 164) citations of the selected checks.",
            "control-selections": [{"include-controls": controls}],
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
