//! Patch level: every node runs the same server and version, on a branch
//! its vendor still supports, at or above the branch's minimum fixed
//! release in the policy's dated advisory table.
//!
//! A distribution that backports fixes without changing the version
//! (Debian's, RHEL's builds) cannot be told apart remotely from the
//! upstream release of that version: only the build id differs. The policy
//! may accept such a build by its `redis_build_id` with a reason; the
//! subject is then `waived` ("accepted"), never `pass`.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::Deserialize;

use super::reason::reasons;
use super::rule::{joined, per_subject, Outcome, Rule, SubjectFinding};
use crate::evidence::{EvidenceSet, ProbeId, ServerIdentity};

reasons! {
    /// Why a node's server build got its outcome (PATCH).
    Patch => Why {
        /// INFO server gave no name and version.
        ServerUnobserved = "server-unobserved",
        /// The nodes run different builds.
        MixedBuilds = "mixed-builds",
        /// A distribution build the policy accepts by build id.
        AcceptedBuild = "accepted-build",
        /// At or above the branch's minimum fixed release.
        AtOrAboveFixedRelease = "at-or-above-fixed-release",
        /// Below the branch's minimum fixed release.
        BelowFixedRelease = "below-fixed-release",
        /// The branch reached its end of life.
        BranchEndOfLife = "branch-end-of-life",
        /// The branch is not (or no longer) maintained by its vendor.
        BranchUnmaintained = "branch-unmaintained",
        /// The branch is newer than every row of the table.
        BranchNewerThanTable = "branch-newer-than-table",
        /// The table has no row for this server at all.
        ServerNotInTable = "server-not-in-table",
        /// The table row carries a gap the vendors' notes could not fill.
        TableIncomplete = "table-incomplete",
        /// A pass on a table older than the policy allows.
        TableStale = "table-stale",
        /// The version is not MAJOR.MINOR.PATCH.
        VersionUnparsed = "version-unparsed",
        /// The version cannot be compared with the table's bound.
        VersionIncomparable = "version-incomparable",
    }
}

const METHOD: &str = "On every node, as the audit user over TLS: INFO server (server_name, \
redis_version or valkey_version, redis_build_id, redis_git_sha1, os), read with the cluster probe. \
Judged against the policy's advisory table (minimum fixed release and end of life per branch, from \
the vendors' own release notes) and its accepted builds. Read-only.";

/// The patch-level rule's name (the policy finds its checks by it).
pub(crate) const RULE: &str = "patching.server_release";

/// The patch-level rule.
pub(crate) fn rules() -> Vec<Rule> {
    vec![Rule::new(RULE, &[ProbeId::Cluster], METHOD, patch_level)]
}

/// One branch of one server in the advisory table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Branch {
    /// `redis` or `valkey` (INFO server's `server_name`, `redis` if absent).
    pub server: String,
    /// `MAJOR.MINOR`, e.g. `7.4`.
    pub branch: String,
    /// The lowest release of the branch with every fix the advisories
    /// below name; absent for a branch that is end of life.
    #[serde(default)]
    pub min_fixed: Option<String>,
    /// The advisories `min_fixed` reflects (CVE ids, or the release's own
    /// wording where the vendor gave no id).
    #[serde(default)]
    pub advisories: Vec<String>,
    /// The day the vendor stops (or stopped) fixing the branch; on and
    /// after it the branch fails.
    #[serde(default, deserialize_with = "super::rule::opt_toml_date")]
    pub eol: Option<NaiveDate>,
    /// Where the numbers were read (the vendor's release notes).
    pub source: String,
    /// Set when the vendor's own notes for this branch could not be read
    /// through the table's date: what is known to be missing. A release at
    /// or above `min_fixed` is then `warn`, never `pass`.
    #[serde(default)]
    pub gap: Option<String>,
}

/// A distribution build the organisation accepts although its version is
/// below the table's minimum or on an end-of-life branch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcceptedBuild {
    /// `redis` or `valkey`.
    pub server: String,
    /// The version the build reports.
    pub version: String,
    /// Its `redis_build_id` (INFO server; `redis-server --version` prints
    /// it as `build=`): the one mark that tells it from upstream's release.
    pub build_id: String,
    /// Why it is accepted (which fixes the distributor says it carries).
    pub reason: String,
    /// Where the acceptance comes from (filled in when an environment's
    /// `accepted_builds` file is merged into the policy).
    #[serde(default)]
    pub source: Option<String>,
}

/// Parameters of `patching.server_release`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchParams {
    /// The day the advisory table was last checked against the vendors'
    /// notes.
    #[serde(deserialize_with = "super::rule::toml_date")]
    pub advisories_date: NaiveDate,
    /// The oldest the table may be before every verdict it supports is at
    /// most `warn` ("advisory data is N days old").
    pub max_advisory_age_days: i64,
    /// What the table was read from on `advisories_date` (addresses of the
    /// vendors' notes and advisories), named by `epic-audit checks` and in
    /// every report.
    #[serde(default)]
    pub advisories_sources: Vec<String>,
    /// The advisory table.
    pub branch: Vec<Branch>,
    /// Builds accepted by name (empty in the built-in policy).
    #[serde(default)]
    pub accepted_builds: Vec<AcceptedBuild>,
}

/// How old a table of `date` is on `on`, in days, and whether that is older
/// than `max_days` allows (then every pass it supports is at most warn).
fn table_age(date: NaiveDate, max_days: i64, on: NaiveDate) -> (i64, bool) {
    let age = (on - date).num_days();
    (age, age > max_days)
}

impl PatchParams {
    /// The table these parameters hold, as check `check` uses it.
    pub(crate) fn into_table(self, check: &str) -> AdvisoryTable {
        AdvisoryTable {
            check: check.to_string(),
            date: self.advisories_date,
            max_age_days: self.max_advisory_age_days,
            sources: self.advisories_sources,
        }
    }
}

/// The advisory table a patch-level check judges with: its date, how old
/// it may be, and what it was read from (the report and `epic-audit checks`
/// name it, so a reader sees how current the patch verdict is).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AdvisoryTable {
    /// The check that uses it.
    pub check: String,
    /// The day the table was read against the vendors' notes.
    pub date: NaiveDate,
    /// The policy's `max_advisory_age_days`.
    pub max_age_days: i64,
    /// The addresses it was read from (empty when the policy names none).
    pub sources: Vec<String>,
}

impl AdvisoryTable {
    /// One line: `PATCH-001 advisory table of 2026-12-06 (12 days old on
    /// 2026-12-18, policy allows 90), read from 10 sources`.
    pub fn summary(&self, on: NaiveDate) -> String {
        let (age, stale) = table_age(self.date, self.max_age_days, on);
        let state = if stale { "STALE: " } else { "" };
        let sources = match self.sources.len() {
            0 => "the policy names no sources".to_string(),
            1 => "read from 1 source".to_string(),
            n => format!("read from {n} sources"),
        };
        let age = if age >= 0 {
            format!("{age} days old on {on}")
        } else {
            format!("read {} days after {on}, the day judged", -age)
        };
        format!(
            "{} advisory table of {} ({state}{age}, policy allows {}), {sources}",
            self.check, self.date, self.max_age_days
        )
    }
}

/// A version as numbers (`7.2.11` → [7, 2, 11]); `None` if any part is not
/// a number (a release candidate such as `8.10-rc1` included).
fn numbers(v: &str) -> Option<Vec<u64>> {
    v.split('.').map(|p| p.parse().ok()).collect()
}

fn branch_of(v: &str) -> Option<String> {
    let n = numbers(v)?;
    (n.len() >= 2).then(|| format!("{}.{}", n[0], n[1]))
}

fn build_id(s: &ServerIdentity) -> &str {
    s.build
        .get("redis_build_id")
        .map(String::as_str)
        .unwrap_or("?")
}

/// What cannot be told remotely, said wherever a version is judged below
/// its bound.
const BACKPORTS: &str = "a distribution build (Debian, Ubuntu, RHEL) may carry the fixes \
without changing the version, which cannot be seen remotely: if this is one, and its changelog \
names the fixes, accept it by build id in the policy's `accepted_builds` (or the environment's \
`accepted_builds` file) with that reason";

fn patch_level(ev: &EvidenceSet, p: &PatchParams) -> Vec<SubjectFinding> {
    let today = ev.finished_at.date_naive();
    let (age, stale) = table_age(p.advisories_date, p.max_advisory_age_days, today);
    let expected = format!(
        "every node runs the same server and version, on a branch its vendor supports, at or above the \
         branch's minimum fixed release (advisory table of {}, at most {} days old); a distribution \
         build only where the policy accepts it by build id",
        p.advisories_date, p.max_advisory_age_days
    );
    let views = ev.cluster_views();
    // The same-everywhere rule: every identity the nodes reported.
    let seen: BTreeSet<String> = views
        .iter()
        .filter_map(|(_, r)| r.ok().and_then(|v| v.server.as_ref()))
        .map(|s| format!("{s} (build {})", build_id(s)))
        .collect();
    per_subject(views, &expected, |subject, v| {
        let Some(server) = v.server.as_ref() else {
            return SubjectFinding::error(subject, Why::ServerUnobserved).observed("server identity not observed").expected(expected.clone()).message("the evidence has no server name and version for this node (INFO server not answered, or \
                 recorded by an older epic-audit): nothing to judge");
        };
        let id = build_id(server);
        let observed = format!("{server} (build {id})");
        let mut problems = Vec::new();
        if seen.len() > 1 {
            problems.push((Why::MixedBuilds, format!(
                "the nodes do not run the same server build ({}): finish the rolling upgrade, a mixed \
                 cluster is patched only as far as its oldest node",
                seen.iter().cloned().collect::<Vec<_>>().join(" | ")
            )));
        }
        let accepted = p.accepted_builds.iter().find(|a| {
            a.server.eq_ignore_ascii_case(&server.name)
                && a.version == server.version
                && a.build_id == id
        });
        let (outcome, why, message) = judge_version(server, p, today);
        if !problems.is_empty() {
            if outcome == Outcome::Fail {
                problems.push((why, message));
            }
            return SubjectFinding::fail(subject, problems[0].0)
                .observed(observed)
                .expected(expected.clone())
                .message(joined(&problems));
        }
        if let Some(a) = accepted {
            let from = a
                .source
                .as_deref()
                .unwrap_or("the policy's accepted_builds");
            return SubjectFinding::waived(subject, Why::AcceptedBuild).observed(observed).expected(expected.clone()).message(format!(
                    "accepted build (by {from}): {}; without the acceptance this would {}: {message}",
                    a.reason,
                    outcome.as_str()
                ));
        }
        // Only a pass rests on the table being current; a fail, an error
        // or a warning keeps its own verdict.
        let (outcome, why, message) = if stale && outcome == Outcome::Pass {
            (
                Outcome::Warn,
                Why::TableStale,
                format!(
                    "advisory data is {age} days old (table of {}, policy allows {} days): a newer \
                     advisory may apply; refresh the table from the vendors' notes ({message})",
                    p.advisories_date, p.max_advisory_age_days
                ),
            )
        } else {
            (outcome, why, message)
        };
        SubjectFinding::with(subject, outcome, why)
            .observed(observed)
            .expected(expected.clone())
            .message(message)
    })
}

/// The verdict on one server version by the advisory table alone.
fn judge_version(s: &ServerIdentity, p: &PatchParams, today: NaiveDate) -> (Outcome, Why, String) {
    let name = s.name.as_str();
    let Some(branch) = branch_of(&s.version) else {
        return (
            Outcome::Error,
            Why::VersionUnparsed,
            format!(
                "version `{}` is not MAJOR.MINOR.PATCH: cannot place it in the advisory table",
                s.version
            ),
        );
    };
    let rows: Vec<&Branch> = p
        .branch
        .iter()
        .filter(|b| b.server.eq_ignore_ascii_case(name))
        .collect();
    let Some(row) = rows.iter().find(|b| b.branch == branch) else {
        let newer = rows
            .iter()
            .filter_map(|b| numbers(&b.branch))
            .all(|b| numbers(&branch).is_some_and(|n| n > b));
        return if rows.is_empty() {
            (
                Outcome::Warn, Why::ServerNotInTable,
                format!(
                    "the advisory table has no entry for the server `{name}`: its patch level is not \
                     judged; add its branches to the policy's table from its vendor's advisories"
                ),
            )
        } else if newer {
            (
                Outcome::Warn, Why::BranchNewerThanTable,
                format!(
                    "{name} {branch} is newer than every branch in the advisory table (table of {}): \
                     add it from the vendor's release notes",
                    p.advisories_date
                ),
            )
        } else {
            (
                Outcome::Fail, Why::BranchUnmaintained,
                format!(
                    "{name} {branch} is not a branch the advisory table lists as maintained: the vendor \
                     no longer publishes fixes for it; upgrade to a supported branch ({}); {BACKPORTS}",
                    supported(&rows, today)
                ),
            )
        };
    };
    if let Some(eol) = row.eol.filter(|d| *d <= today) {
        return (
            Outcome::Fail, Why::BranchEndOfLife,
            format!(
                "{name} {branch} reached end of life on {eol} ({}): no further fixes are published; \
                 upgrade to a supported branch ({}); {BACKPORTS}",
                row.source,
                supported(&rows, today)
            ),
        );
    }
    let Some(min) = row.min_fixed.as_deref() else {
        return (
            Outcome::Fail,
            Why::BranchUnmaintained,
            format!(
                "{name} {branch} is no longer maintained by its vendor ({}): no further fixes are \
                 published; upgrade to a supported branch ({}); {BACKPORTS}",
                row.source,
                supported(&rows, today)
            ),
        );
    };
    let (have, want) = (numbers(&s.version), numbers(min));
    match (have, want) {
        (Some(h), Some(w)) if h < w => (
            Outcome::Fail, Why::BelowFixedRelease,
            format!(
                "{name} {} is below {min}, the first {branch} release with the fixes for {} ({}): \
                 upgrade to {min} or later; {BACKPORTS}",
                s.version,
                row.advisories.join(", "),
                row.source
            ),
        ),
        (Some(_), Some(_)) => match &row.gap {
            Some(gap) => (
                Outcome::Warn, Why::TableIncomplete,
                format!(
                    "{name} {} is at or above {min} ({}), but the table is incomplete for {branch}: {gap}",
                    s.version, row.source
                ),
            ),
            None => {
                let eol = row
                    .eol
                    .map(|d| format!("; the branch is maintained until {d}"))
                    .unwrap_or_default();
                (
                    Outcome::Pass, Why::AtOrAboveFixedRelease,
                    format!(
                        "{name} {} is at or above {min}, the first {branch} release with the fixes for {} \
                         ({}){eol}",
                        s.version,
                        row.advisories.join(", "),
                        row.source
                    ),
                )
            }
        },
        _ => (
            Outcome::Error, Why::VersionIncomparable,
            format!("cannot compare version `{}` with `{min}`", s.version),
        ),
    }
}

/// The branches of a server still maintained on `today`, e.g. `7.2, 7.4, 8.2`.
fn supported(rows: &[&Branch], today: NaiveDate) -> String {
    let v: Vec<&str> = rows
        .iter()
        .filter(|b| b.min_fixed.is_some() && b.eol.is_none_or(|d| d > today))
        .map(|b| b.branch.as_str())
        .collect();
    if v.is_empty() {
        "none in the table".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert!(numbers("7.2.9") < numbers("7.2.11"));
        assert!(numbers("8.10.1") > numbers("8.8.2"));
        assert_eq!(branch_of("8.10.1").as_deref(), Some("8.10"));
        assert_eq!(numbers("8.10-rc1"), None);
    }
}
