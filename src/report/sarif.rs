//! `report.sarif`: the run as a SARIF 2.1.0 log, the format CI systems
//! (GitHub code scanning, GitLab, Azure DevOps) show inline.
//!
//! - One rule per check of the report: its id, title, the policy's
//!   rationale and remediation as help text, its severity as
//!   `security-severity` (GitHub's ranking) and its HIPAA citations (with
//!   their relation) as properties.
//! - One result per subject that failed (`fail`) or could not be decided
//!   (`error`): level `error` for a failure, `warning` for an undecided
//!   subject, the finding's sentence as its message, a physical location
//!   (the environment's `[environments.NAME]` table in the config file,
//!   relative to the working directory, or the evidence file an evaluation
//!   judged: code scanning refuses a result without a file) and a logical
//!   location naming the node, endpoint, user or AWS resource judged; its reason
//!   code (`ACC-005/denied-command-allowed`) is `properties.code`. A check that
//!   failed or errored without a subject finding gets one result naming the
//!   environment. Passing, warned, waived and skipped subjects are not
//!   results (SARIF results are problems); a check not audited
//!   (`incomplete`) is a tool execution notification, so it is not lost.
//! - The invocation carries the run's start, end and exit code; the
//!   automation id names the environment and run.
//!
//! Results carry a stable `partialFingerprints` value (check id and
//! subject) so code scanning tracks a finding across runs.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{CheckResult, Report};
use crate::checks::Outcome;
use crate::policy::Severity;

/// The SARIF version written.
pub const SARIF_VERSION: &str = "2.1.0";
/// The schema URI the log declares (OASIS's published schema).
pub const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The file a result names when the report does not say where its
/// environment is defined (a report from before it did).
const DEFAULT_CONFIG: &str = "epic-audit.toml";

/// GitHub's `security-severity` for a check's severity (0.0 to 10.0; 9.0
/// and over is shown as critical, 7.0 high, 4.0 medium, under that low).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

fn rule(c: &CheckResult, rationale: &str) -> Value {
    let hipaa: Vec<String> = c
        .hipaa
        .iter()
        .map(|h| format!("45 CFR {} ({})", h.reference, h.relation.as_str()))
        .collect();
    let mut tags = vec!["security".to_string(), "compliance".into(), "hipaa".into()];
    tags.push(c.area.to_string());
    let text = format!("{rationale}\n\nRemediation: {}", c.remediation);
    let markdown = format!(
        "{rationale}\n\n**Remediation:** {}\n\n**HIPAA:** {}",
        c.remediation,
        if hipaa.is_empty() {
            "none (service objective or hygiene)".to_string()
        } else {
            hipaa.join("; ")
        }
    );
    json!({
        "id": c.id,
        "name": c.id.replace('-', ""),
        "shortDescription": {"text": c.title},
        "fullDescription": {"text": if rationale.is_empty() { c.title.as_str() } else { rationale }},
        "help": {"text": text, "markdown": markdown},
        "defaultConfiguration": {"level": "error"},
        "properties": {
            "area": c.area.to_string(),
            "severity": c.severity.to_string(),
            "security-severity": security_severity(c.severity),
            "hipaa": hipaa,
            "tags": tags,
        },
    })
}

fn fingerprint(env: &str, check: &str, subject: &str) -> String {
    let mut h = Sha256::new();
    for part in [env, check, subject] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

fn result(
    report: &Report,
    c: &CheckResult,
    index: usize,
    outcome: Outcome,
    subject: &str,
    message: String,
    properties: Value,
) -> Value {
    let level = if outcome == Outcome::Fail {
        "error"
    } else {
        "warning"
    };
    // Code scanning refuses a result without a file: the environment's
    // table in the config (or, where nothing says, the default config
    // file's name), with the node or resource as the logical location.
    let physical = match &report.defined_in {
        Some(f) => json!({
            "artifactLocation": {"uri": f.file},
            "region": {"startLine": f.line},
        }),
        None => json!({"artifactLocation": {"uri": DEFAULT_CONFIG}}),
    };
    json!({
        "ruleId": c.id,
        "ruleIndex": index,
        "kind": "fail",
        "level": level,
        "message": {"text": message},
        "locations": [{
            "physicalLocation": physical,
            "logicalLocations": [{
                "name": subject,
                "fullyQualifiedName": format!("{}/{}", report.environment, subject),
                "kind": "resource",
            }],
        }],
        "partialFingerprints": {
            "epicAuditSubject/v1": fingerprint(&report.environment, &c.id, subject),
        },
        "properties": properties,
    })
}

/// The SARIF log of `report`; `rationale` gives a check's rationale from
/// the policy (empty when the policy no longer has it).
pub fn render(report: &Report, rationale: &dyn Fn(&str) -> String) -> String {
    let mut rules = Vec::new();
    let mut results = Vec::new();
    let mut notifications = Vec::new();
    for (index, c) in report.checks.iter().enumerate() {
        rules.push(rule(c, &rationale(&c.id)));
        let bad: Vec<_> = c
            .subjects
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Fail | Outcome::Error))
            .collect();
        for s in &bad {
            let prefix = if s.outcome == Outcome::Error {
                "could not decide: "
            } else {
                ""
            };
            results.push(result(
                report,
                c,
                index,
                s.outcome,
                &s.subject,
                format!("{}: {prefix}{}", c.id, s.message),
                json!({
                    "outcome": s.outcome.to_string(),
                    "code": s.code,
                    "observed": s.observed,
                    "expected": s.expected,
                }),
            ));
        }
        match c.outcome {
            Outcome::Fail | Outcome::Error if bad.is_empty() => results.push(result(
                report,
                c,
                index,
                c.outcome,
                &report.environment,
                format!("{}: {} ({})", c.id, c.title, c.outcome),
                json!({"outcome": c.outcome.to_string()}),
            )),
            Outcome::Incomplete => notifications.push(json!({
                "level": "warning",
                "message": {"text": format!(
                    "{} not audited: {}",
                    c.id,
                    c.subjects.first().map(|s| s.message.as_str()).unwrap_or("the environment lacks what it needs")
                )},
                "descriptor": {"id": c.id},
            })),
            _ => {}
        }
    }
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let log = json!({
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {
                "name": report.tool.name,
                "version": report.tool.version,
                "semanticVersion": report.tool.version,
                "rules": rules,
            }},
            "automationDetails": {
                "id": format!("epic-audit/{}/{}", report.environment, report.run_id),
                "description": {"text": format!(
                    "HIPAA audit of the Redis Cluster environment `{}`: verdict {}",
                    report.environment, report.verdict
                )},
            },
            "invocations": [{
                "executionSuccessful": true,
                "startTimeUtc": fmt(report.started_at),
                "endTimeUtc": fmt(report.finished_at),
                "exitCode": report.exit_code,
                "toolExecutionNotifications": notifications,
            }],
            "columnKind": "unicodeCodePoints",
            "results": results,
            "properties": {
                "environment": report.environment,
                "runId": report.run_id,
                "verdict": report.verdict.to_string(),
                "policy": {"source": report.policy.source, "sha256": report.policy.digest},
            },
        }],
    });
    let mut s = serde_json::to_string_pretty(&log).expect("the SARIF log serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_separate_their_parts() {
        assert_ne!(fingerprint("a", "b", "c"), fingerprint("ab", "", "c"));
        assert_eq!(security_severity(Severity::Critical), "9.5");
    }
}
