//! Waivers: an accepted, approved, time-limited exception for a failing
//! check (optionally for one subject). A failing subject under an unexpired
//! waiver becomes `waived`; an expired waiver no longer applies and the
//! report says so. Every report lists the waivers in force and expired.
//!
//! `waivers.toml` lives in the policy directory beside the checks.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::checks::{Outcome, SubjectFinding};
use crate::config::{line_of, ConfigError};

/// One waiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// Check id it applies to.
    pub check: String,
    /// Only this subject (e.g. a node address); all subjects when absent.
    #[serde(default)]
    pub subject: Option<String>,
    /// Why the risk is accepted.
    pub reason: String,
    /// Who approved it.
    pub approver: String,
    /// Last day it applies (inclusive, UTC): a TOML date (`2026-12-31`).
    #[serde(deserialize_with = "crate::checks::rule::toml_date")]
    pub expires: NaiveDate,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverFile {
    #[serde(default)]
    waiver: Vec<toml::Spanned<Waiver>>,
}

/// A waiver and whether it was in force for a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaiverStatus {
    /// The waiver.
    #[serde(flatten)]
    pub waiver: Waiver,
    /// `in force` or `expired`.
    pub status: String,
}

/// Parses `waivers.toml` text; every waiver must name a known check.
pub(crate) fn parse(
    text: &str,
    file: &Path,
    known_checks: &[String],
) -> Result<Vec<Waiver>, ConfigError> {
    let parsed: WaiverFile =
        toml::from_str(text).map_err(|e| crate::config::toml_error(file, text, &e))?;
    let mut out = Vec::new();
    for w in parsed.waiver {
        let line = line_of(text, w.span().start);
        let w = w.into_inner();
        if !known_checks
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&w.check))
        {
            return Err(ConfigError::new(
                file,
                format!("line {line}: waiver for unknown check `{}`", w.check),
            ));
        }
        if w.reason.trim().is_empty() || w.approver.trim().is_empty() {
            return Err(ConfigError::new(
                file,
                format!(
                    "line {line}: waiver for {} needs a reason and an approver",
                    w.check
                ),
            ));
        }
        out.push(w);
    }
    Ok(out)
}

/// Whether `w` is in force at `at` (expiry day inclusive).
pub(crate) fn in_force(w: &Waiver, at: DateTime<Utc>) -> bool {
    at.date_naive() <= w.expires
}

fn matches(w: &Waiver, check: &str, subject: &str) -> bool {
    w.check.eq_ignore_ascii_case(check)
        && w.subject
            .as_deref()
            .is_none_or(|s| subject == s || subject.starts_with(&format!("{s} ")))
}

/// Applies waivers to a check's findings, judged at `at` (the time of
/// observation, so re-evaluation is reproducible).
pub(crate) fn apply(
    waivers: &[Waiver],
    check: &str,
    subjects: &mut [SubjectFinding],
    at: DateTime<Utc>,
) {
    for s in subjects.iter_mut().filter(|s| s.outcome == Outcome::Fail) {
        let matching: Vec<&Waiver> = waivers
            .iter()
            .filter(|w| matches(w, check, &s.subject))
            .collect();
        if let Some(w) = matching.iter().find(|w| in_force(w, at)) {
            s.outcome = Outcome::Waived;
            s.message = format!(
                "{} [WAIVED until {} by {}: {}]",
                s.message, w.expires, w.approver, w.reason
            );
        } else if let Some(w) = matching.first() {
            s.message = format!(
                "{} [a waiver expired on {} (approved by {}) and no longer applies]",
                s.message, w.expires, w.approver
            );
        }
    }
}

/// Every waiver with its status at `at`.
pub(crate) fn statuses(waivers: &[Waiver], at: DateTime<Utc>) -> Vec<WaiverStatus> {
    waivers
        .iter()
        .map(|w| WaiverStatus {
            waiver: w.clone(),
            status: if in_force(w, at) {
                "in force"
            } else {
                "expired"
            }
            .into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
[[waiver]]
check = "DATA-002"
subject = "127.0.1.2:6379"
reason = "cache-only node until the migration (CHG-1234)"
approver = "CISO"
expires = 2026-12-31

[[waiver]]
check = "TLS-004"
reason = "renewal scheduled"
approver = "Ops lead"
expires = 2026-01-31
"#;

    fn finding(subject: &str) -> SubjectFinding {
        SubjectFinding::fail(subject, crate::checks::reason::Common::NoEvidence)
            .observed("o")
            .expected("e")
            .message("m")
    }

    #[test]
    fn unexpired_waivers_waive_matching_subjects_and_expired_ones_say_so() {
        let w = parse(
            TEXT,
            Path::new("waivers.toml"),
            &["DATA-002".into(), "TLS-004".into()],
        )
        .unwrap();
        let at: DateTime<Utc> = "2026-12-01T12:00:00Z".parse().unwrap();
        let mut s = vec![finding("127.0.1.1:6379"), finding("127.0.1.2:6379")];
        apply(&w, "DATA-002", &mut s, at);
        assert_eq!(s[0].outcome, Outcome::Fail);
        assert_eq!(s[1].outcome, Outcome::Waived);
        assert!(s[1].message.contains("WAIVED until 2026-12-31 by CISO"));
        let mut t = vec![finding("127.0.1.1:6379 client")];
        apply(&w, "TLS-004", &mut t, at);
        assert_eq!(t[0].outcome, Outcome::Fail);
        assert!(t[0].message.contains("expired on 2026-01-31"));
        let st = statuses(&w, at);
        assert_eq!(
            (st[0].status.as_str(), st[1].status.as_str()),
            ("in force", "expired")
        );
        // The expiry day itself is still covered.
        assert!(in_force(&w[0], "2026-12-31T23:59:59Z".parse().unwrap()));
        assert!(!in_force(&w[0], "2027-01-01T00:00:00Z".parse().unwrap()));
    }

    #[test]
    fn unknown_checks_and_missing_approvers_are_refused_with_line() {
        let e = parse(TEXT, Path::new("w.toml"), &["DATA-002".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("w.toml") && e.contains("line 9") && e.contains("TLS-004"),
            "{e}"
        );
        let e = parse(
            &TEXT.replace("approver = \"CISO\"", "approver = \"\""),
            Path::new("w.toml"),
            &["DATA-002".into(), "TLS-004".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("approver"), "{e}");
    }
}
