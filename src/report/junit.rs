//! `junit.xml`: one test suite per area, one test case per check, so CI
//! systems show each control as a test. Failures say what and where.

use junit_report::{Duration, OffsetDateTime, ReportBuilder, TestCase, TestSuiteBuilder};

use super::{CheckResult, Report};
use crate::checks::Outcome;
use crate::policy::Area;

fn details(c: &CheckResult, which: &[Outcome]) -> String {
    c.subjects
        .iter()
        .filter(|s| which.contains(&s.outcome))
        .map(|s| {
            format!(
                "[{}] {}: {} (observed: {}; expected: {})",
                s.outcome, s.subject, s.message, s.observed, s.expected
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Renders the report as JUnit XML.
pub fn render(r: &Report) -> String {
    let ts = OffsetDateTime::from_unix_timestamp(r.started_at.timestamp())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut report = ReportBuilder::new();
    for area in Area::ALL {
        let cases: Vec<TestCase> = r
            .checks
            .iter()
            .filter(|c| c.area == area)
            .map(|c| {
                let name = format!("{} {}", c.id, c.title);
                let zero = Duration::ZERO;
                let mut tc = match c.outcome {
                    Outcome::Fail => {
                        TestCase::failure(&name, zero, "fail", &details(c, &[Outcome::Fail]))
                    }
                    Outcome::Error => {
                        TestCase::error(&name, zero, "error", &details(c, &[Outcome::Error]))
                    }
                    Outcome::Skip => {
                        TestCase::skipped_with_cause(&name, "skip", &details(c, &[Outcome::Skip]))
                    }
                    Outcome::Incomplete => TestCase::skipped_with_cause(
                        &name,
                        "incomplete: not audited",
                        &details(c, &[Outcome::Incomplete]),
                    ),
                    Outcome::Pass | Outcome::Warn | Outcome::Waived => {
                        TestCase::success(&name, zero)
                    }
                };
                tc.set_classname(&format!("epic-audit.{}.{}", r.environment, c.area));
                let all = details(c, &Outcome::ALL);
                tc.set_system_out(&format!(
                    "severity: {}; HIPAA: {}\n{all}",
                    c.severity,
                    crate::hipaa::list(&c.hipaa)
                ));
                tc
            })
            .collect();
        if cases.is_empty() {
            continue;
        }
        let suite = TestSuiteBuilder::new(&format!("epic-audit {} {}", r.environment, area))
            .set_timestamp(ts)
            .add_testcases(cases)
            .build();
        report.add_testsuite(suite);
    }
    let mut out = Vec::new();
    report
        .build()
        .write_xml(&mut out)
        .expect("writing XML to memory cannot fail");
    String::from_utf8(out).expect("junit-report writes UTF-8")
}
