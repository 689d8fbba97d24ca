//! `junit.xml`: one test suite per area, one test case per check, so CI
//! systems show each control as a test.
//!
//! Written for how CI systems read it: each test case's `time` is the span
//! of the probe windows its check read; a failure or error carries the
//! finding both in `message` (Jenkins shows it) and as the element's text
//! (GitLab reads only that); `classname` + `name` are unique (the check id
//! is in the name); each suite's counts are those of its own test cases,
//! and the root's are their sums.

use std::fmt::Write as _;

use super::markup::xml;
use super::{CheckResult, Report};
use crate::checks::Outcome;
use crate::policy::Area;

fn details(c: &CheckResult, which: &[Outcome]) -> String {
    c.subjects
        .iter()
        .filter(|s| which.contains(&s.outcome))
        .map(|s| {
            let code = if s.code.is_empty() {
                String::new()
            } else {
                format!(" {}", s.code)
            };
            format!(
                "[{}{code}] {}: {} (observed: {}; expected: {})",
                s.outcome, s.subject, s.message, s.observed, s.expected
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The finding element of a test case, if it is not a success: (tag,
/// type, message).
fn finding(c: &CheckResult) -> Option<(&'static str, &'static str, String)> {
    let summary = |which: &[Outcome]| {
        let n = c
            .subjects
            .iter()
            .filter(|s| which.contains(&s.outcome))
            .count();
        let first = c.subjects.iter().find(|s| which.contains(&s.outcome));
        match first {
            Some(s) if n == 1 => format!("{}: {}", s.subject, s.message),
            Some(s) => format!("{} subjects; first {}: {}", n, s.subject, s.message),
            None => c.outcome.to_string(),
        }
    };
    match c.outcome {
        Outcome::Fail => Some(("failure", "fail", summary(&[Outcome::Fail]))),
        Outcome::Error => Some(("error", "error", summary(&[Outcome::Error]))),
        Outcome::Skip => Some(("skipped", "skip", summary(&[Outcome::Skip]))),
        Outcome::Incomplete => Some((
            "skipped",
            "incomplete",
            format!(
                "incomplete: not audited: {}",
                summary(&[Outcome::Incomplete])
            ),
        )),
        Outcome::Pass | Outcome::Warn | Outcome::Waived => None,
    }
}

/// Running totals of the root element.
#[derive(Default)]
struct Totals {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    ms: u64,
    suites: usize,
}

/// Appends one suite per area of `r` to `out`.
fn suites(r: &Report, out: &mut String, t: &mut Totals) {
    let ts = r.started_at.format("%Y-%m-%dT%H:%M:%S").to_string();
    for area in Area::ALL {
        let checks: Vec<&CheckResult> = r.checks.iter().filter(|c| c.area == area).collect();
        if checks.is_empty() {
            continue;
        }
        let count = |o: &[Outcome]| checks.iter().filter(|c| o.contains(&c.outcome)).count();
        let (f, e, s) = (
            count(&[Outcome::Fail]),
            count(&[Outcome::Error]),
            count(&[Outcome::Skip, Outcome::Incomplete]),
        );
        let ms: u64 = checks.iter().map(|c| c.duration_ms).sum();
        t.tests += checks.len();
        t.failures += f;
        t.errors += e;
        t.skipped += s;
        t.ms += ms;
        let id = t.suites;
        t.suites += 1;
        let classname = format!("epic-audit.{}.{}", r.environment, area);
        let _ = writeln!(
            out,
            "  <testsuite id=\"{id}\" name=\"{}\" package=\"{}\" timestamp=\"{ts}\" tests=\"{}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{s}\" time=\"{}\">",
            xml(&format!("epic-audit {} {}", r.environment, area)),
            xml(&classname),
            checks.len(),
            secs(ms)
        );
        for c in checks {
            let _ = writeln!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\">",
                xml(&format!("{} {}", c.id, c.title)),
                xml(&classname),
                secs(c.duration_ms)
            );
            if let Some((tag, kind, message)) = finding(c) {
                let text = details(c, &[c.outcome]);
                let _ = writeln!(
                    out,
                    "      <{tag} type=\"{kind}\" message=\"{}\">{}</{tag}>",
                    xml(&message),
                    xml(&text)
                );
            }
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>\n    </testcase>",
                xml(&format!(
                    "outcome: {}; severity: {}; HIPAA: {}\n{}",
                    c.outcome,
                    c.severity,
                    crate::hipaa::list(&c.hipaa),
                    details(c, &Outcome::ALL)
                ))
            );
        }
        out.push_str("  </testsuite>\n");
    }
}

fn document(name: &str, body: &str, t: &Totals) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">\n{body}</testsuites>\n",
        xml(name),
        t.tests,
        t.failures,
        t.errors,
        t.skipped,
        secs(t.ms)
    )
}

/// Renders the report as JUnit XML.
pub fn render(r: &Report) -> String {
    let (mut body, mut t) = (String::new(), Totals::default());
    suites(r, &mut body, &mut t);
    document(
        &format!("epic-audit {} {}", r.environment, r.run_id),
        &body,
        &t,
    )
}

/// One JUnit document for a fleet: one suite per environment and area
/// (class names carry the environment, so cases stay unique), plus, for
/// each environment that could not be audited at all, one suite with one
/// errored case saying why (`unaudited`: environment, reason).
pub(crate) fn render_fleet(
    name: &str,
    reports: &[&Report],
    unaudited: &[(String, String)],
) -> String {
    let (mut body, mut t) = (String::new(), Totals::default());
    for r in reports {
        suites(r, &mut body, &mut t);
    }
    for (env, why) in unaudited {
        let id = t.suites;
        t.suites += 1;
        t.tests += 1;
        t.errors += 1;
        let _ = writeln!(
            body,
            "  <testsuite id=\"{id}\" name=\"epic-audit {e} run\" package=\"epic-audit.{e}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0.000\">\n    \
             <testcase name=\"audit of {e}\" classname=\"epic-audit.{e}.run\" time=\"0.000\">\n      \
             <error type=\"not audited\" message=\"{w}\">{w}</error>\n    </testcase>\n  </testsuite>",
            e = xml(env),
            w = xml(why)
        );
    }
    document(name, &body, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_controls_replaced() {
        assert_eq!(
            xml("a<b>&\"'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;&apos;\u{FFFD}\n"
        );
        assert_eq!(secs(1234), "1.234");
        assert_eq!(secs(5), "0.005");
    }
}
