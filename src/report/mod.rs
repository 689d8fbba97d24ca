//! The report model and its renderings (JSON, JUnit, terminal).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::checks::{Outcome, SubjectFinding};
use crate::evidence::EvidenceSet;
use crate::policy::{Area, Policy, Severity};

pub(crate) mod diff;
pub(crate) mod history;
pub mod html;
pub mod junit;
pub mod markdown;
pub(crate) mod markup;
pub mod oscal;
pub mod prom;
pub(crate) mod quarter;
pub mod safeguards;
pub mod sarif;
pub mod svg;
pub mod terminal;

/// Version of the report.json format.
pub(crate) const REPORT_SCHEMA_VERSION: u32 = 1;

/// Exit code: nothing failed or errored (warnings allowed).
pub(crate) const EXIT_PASS: u8 = 0;
/// Exit code: at least one check failed.
pub(crate) const EXIT_FAIL: u8 = 1;
/// Exit code: at least one check could not decide or was not audited
/// (verdict `error` or `incomplete`), none failed.
pub(crate) const EXIT_ERROR: u8 = 2;
/// Exit code: usage or configuration problem; nothing was audited.
pub(crate) const EXIT_USAGE: u8 = 3;
/// Exit code: the audit could not be completed or written (I/O, lab).
pub(crate) const EXIT_RUNTIME: u8 = 4;

/// The judged result of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// How this report is signed, or that it is not (first, so an unsigned
    /// report says so on its first line).
    pub signature: String,
    /// report.json format version.
    pub schema_version: u32,
    /// Tool name and version.
    pub tool: ToolInfo,
    /// Environment name.
    pub environment: String,
    /// Run id of the evidence judged.
    pub run_id: String,
    /// Policy source and digest.
    pub policy: PolicyInfo,
    /// `--only` / `--skip` as given.
    pub selection: Selection,
    /// When probing started.
    pub started_at: DateTime<Utc>,
    /// When probing ended.
    pub finished_at: DateTime<Utc>,
    /// `pass`, `fail`, `error` or `incomplete` (as the exit code).
    pub verdict: Outcome,
    /// Exit code of the run (see the README's exit codes).
    pub exit_code: u8,
    /// Number of checks per outcome.
    pub counts: BTreeMap<Outcome, usize>,
    /// Every selected check.
    pub checks: Vec<CheckResult>,
    /// Every waiver of the policy, in force or expired at the run's time.
    pub waivers: Vec<crate::waivers::WaiverStatus>,
    /// Changes since the previous run of the environment in the same
    /// reports directory, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<SincePrevious>,
    /// The server software and version of the nodes, one entry per
    /// distinct server (most nodes first), from the cluster probe's INFO
    /// server; nodes it could not read are one entry of their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerGroup>,
    /// Set when this report judges an earlier run's evidence again
    /// (`epic-audit evaluate`): `run_id` is then the re-evaluation's own
    /// id, and this names the run that observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reevaluation: Option<Reevaluation>,
    /// Where the audited environment is defined: the config file's
    /// `[environments.NAME]` table (the file relative to the directory the
    /// command ran in, a repository's root in CI), or the evidence file an
    /// evaluation judged when no config names the environment. SARIF
    /// results point there (code scanning needs a file for each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defined_in: Option<FileLine>,
}

/// A line of a file, by a path relative to the working directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLine {
    /// The path, with `/` separators, relative where the file is under the
    /// working directory (else its name alone).
    pub file: String,
    /// The line, from 1.
    pub line: u32,
}

impl FileLine {
    /// `path`'s line `line`, by a path relative to the working directory.
    pub fn of(path: &std::path::Path, line: u32) -> FileLine {
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let rel = std::env::current_dir()
            .ok()
            .and_then(|c| std::fs::canonicalize(c).ok())
            .and_then(|c| abs.strip_prefix(c).ok().map(std::path::Path::to_path_buf));
        let file = match rel {
            Some(r) => r
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/"),
            None => path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
        };
        FileLine { file, line }
    }

    /// The line of `[environments.NAME]` in the config file `path` (1 when
    /// the environment is written some other way), or `None` when the file
    /// cannot be read.
    pub fn environment_table(path: &std::path::Path, env: &str) -> Option<FileLine> {
        let text = std::fs::read_to_string(path).ok()?;
        let headers = [
            format!("[environments.{env}]"),
            format!("[environments.\"{env}\"]"),
        ];
        let line = text
            .lines()
            .position(|l| headers.iter().any(|h| l.trim() == h))
            .map_or(1, |i| i + 1);
        Some(FileLine::of(path, line as u32))
    }
}

/// What a re-evaluation judged again, and with what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reevaluation {
    /// The run whose evidence was judged (the observation).
    pub observed_run_id: String,
    /// When it was judged again.
    pub evaluated_at: DateTime<Utc>,
    /// What was judged with: policy, accepted builds and waivers, in a
    /// sentence (printed in the verdict line).
    pub judged_with: String,
    /// Where the accepted builds came from, or `none (...)`.
    pub accepted_builds: String,
}

impl Reevaluation {
    /// The id of a re-evaluation of run `observed` made as run `now_id`
    /// (the run id of its own time).
    pub fn run_id(observed: &str, now_id: &str) -> String {
        format!("{observed}-evaluated-{now_id}")
    }
}

/// Nodes running one server software and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerGroup {
    /// `valkey 8.1.1`, `redis 7.0.15`; `not observed` for nodes whose INFO
    /// server was not read, `not recorded ...` for evidence older than
    /// this field.
    pub server: String,
    /// The software family, when observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<crate::evidence::ServerSoftware>,
    /// The nodes (`host:port`).
    pub nodes: Vec<String>,
}

impl ServerGroup {
    /// `6 nodes: valkey 8.1.1`, each group of `groups` joined by `; `.
    pub fn summary(groups: &[ServerGroup]) -> String {
        groups
            .iter()
            .map(|g| {
                let n = g.nodes.len();
                let nodes = if n == 1 { "node" } else { "nodes" };
                if g.software.is_none() {
                    format!("{n} {nodes}: {} ({})", g.server, g.nodes.join(", "))
                } else {
                    format!("{n} {nodes}: {}", g.server)
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The groups of the nodes the cluster probe saw in `ev`.
    fn of(ev: &EvidenceSet) -> Vec<ServerGroup> {
        let mut by: BTreeMap<String, ServerGroup> = BTreeMap::new();
        for (node, view) in ev.cluster_views() {
            let id = view.ok().and_then(|v| v.server.as_ref());
            let server = match (view, id) {
                (_, Some(i)) => i.to_string(),
                (Ok(_), None) => "not recorded (evidence from before the server was kept)".into(),
                (Err(_), None) => "not observed".into(),
            };
            by.entry(server.clone())
                .or_insert_with(|| ServerGroup {
                    server,
                    software: id.map(|i| i.software),
                    nodes: Vec::new(),
                })
                .nodes
                .push(node.to_string());
        }
        let mut groups: Vec<ServerGroup> = by.into_values().collect();
        groups.sort_by_key(|g| (g.software.is_none(), std::cmp::Reverse(g.nodes.len())));
        groups
    }
}

/// What changed since the previous run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SincePrevious {
    /// Its run id.
    pub run_id: String,
    /// Its verdict.
    pub verdict: String,
    /// Checks failing now, not then.
    pub newly_failing: Vec<String>,
    /// Checks failing then, not now.
    pub fixed: Vec<String>,
    /// Checks failing both times.
    pub still_failing: Vec<String>,
    /// Subjects whose observation changed.
    pub changed_observations: usize,
}

/// Tool identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolInfo {
    /// `epic-audit`.
    pub name: String,
    /// Crate version.
    pub version: String,
}

/// Which policy judged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyInfo {
    /// `built-in` or a directory.
    pub source: String,
    /// SHA-256 of the policy files.
    pub digest: String,
    /// Where the server builds accepted for the patch level came from
    /// (file and how it was named), if any: folded into the digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_builds: Vec<String>,
    /// The advisory table the patch level was judged with (date, allowed
    /// age, sources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advisory_tables: Vec<crate::checks::patch::AdvisoryTable>,
}

/// The check selection.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Selection {
    /// `--only` words.
    pub only: Vec<String>,
    /// `--skip` words.
    pub skip: Vec<String>,
}

/// One check's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    /// Stable id.
    pub id: String,
    /// Area.
    pub area: Area,
    /// Severity.
    pub severity: Severity,
    /// Title.
    pub title: String,
    /// 45 CFR references, primary or supporting (none: a service
    /// objective or hygiene).
    pub hipaa: Vec<crate::hipaa::Citation>,
    /// Aggregate outcome.
    pub outcome: Outcome,
    /// Per-subject findings.
    pub subjects: Vec<SubjectFinding>,
    /// How to fix a failure (from the policy).
    #[serde(default)]
    pub remediation: String,
    /// How long the observations it judged took, in ms: from the start of
    /// the first to the end of the last evidence item of the probes it
    /// reads (probes run concurrently, so this is a span, not a sum).
    #[serde(default)]
    pub duration_ms: u64,
}

/// The signature line of a report written with `--unsigned`.
pub(crate) const UNSIGNED: &str =
    "UNSIGNED REPORT: written with --unsigned; it is not evidence until signed";

impl Report {
    /// Whether it was written with `--unsigned` (every page says so first).
    pub fn is_unsigned(&self) -> bool {
        self.signature == UNSIGNED
    }

    /// The run that observed what this report judges: its own run, or for
    /// a re-evaluation the observed run (a quarter's history is of
    /// observations).
    pub fn observation_id(&self) -> &str {
        self.reevaluation
            .as_ref()
            .map_or(&self.run_id, |r| &r.observed_run_id)
    }

    /// Assembles a report and derives verdict, exit code and counts.
    pub(crate) fn new(
        ev: &EvidenceSet,
        policy: &Policy,
        checks: Vec<CheckResult>,
        only: &[String],
        skip: &[String],
    ) -> Report {
        let mut counts: BTreeMap<Outcome, usize> = Outcome::ALL.iter().map(|o| (*o, 0)).collect();
        for c in &checks {
            *counts.entry(c.outcome).or_default() += 1;
        }
        let (verdict, exit_code) = if counts[&Outcome::Fail] > 0 {
            (Outcome::Fail, EXIT_FAIL)
        } else if counts[&Outcome::Error] > 0 {
            (Outcome::Error, EXIT_ERROR)
        } else if counts[&Outcome::Incomplete] > 0 {
            (Outcome::Incomplete, EXIT_ERROR)
        } else {
            (Outcome::Pass, EXIT_PASS)
        };
        Report {
            signature: "not yet signed".into(),
            schema_version: REPORT_SCHEMA_VERSION,
            tool: ToolInfo {
                name: "epic-audit".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            environment: ev.environment.clone(),
            run_id: ev.run_id.clone(),
            policy: PolicyInfo {
                source: policy.source.clone(),
                digest: policy.digest.clone(),
                accepted_builds: policy.accepted_builds.clone(),
                advisory_tables: policy.advisory_tables(),
            },
            selection: Selection {
                only: only.to_vec(),
                skip: skip.to_vec(),
            },
            started_at: ev.started_at,
            finished_at: ev.finished_at,
            verdict,
            exit_code,
            counts,
            checks,
            waivers: crate::waivers::statuses(&policy.waivers, ev.started_at),
            previous: None,
            servers: ServerGroup::of(ev),
            reevaluation: None,
            defined_in: None,
        }
    }

    /// The advisory tables of the checks this report judged.
    pub(crate) fn judged_tables(
        &self,
    ) -> impl Iterator<Item = &crate::checks::patch::AdvisoryTable> {
        self.policy
            .advisory_tables
            .iter()
            .filter(|t| self.checks.iter().any(|c| c.id == t.check))
    }

    /// `report.json` text.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("report serialises");
        s.push('\n');
        s
    }
}
