//! The policy: `checks/*.toml`, one file per area, each `[[check]]` binding
//! a stable id, severity and HIPAA references to a rule and its parameters.
//!
//! The same files are compiled into the binary as the default policy, so
//! `epic-audit checks` works anywhere; a policy directory (`--policy DIR`,
//! or `checks/` next to the config file) replaces them, which is how users
//! tighten parameters or disable checks without touching Rust.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checks::{registry, Rule};
use crate::config::{line_of, ConfigError};

/// The rule whose checks take an environment's accepted builds.
const PATCH_RULE: &str = crate::checks::patch::RULE;

/// The rule of the check that judges the exporters' ACL user (MON-007),
/// whose `user` an environment's `exporter_user` replaces.
pub const EXPORTER_USER_RULE: &str = "monitoring.exporter_user";

/// The built-in policy files (name, text), in file-name order.
pub const BUILTIN: &[(&str, &str)] = &[
    ("access.toml", include_str!("../checks/access.toml")),
    ("backup.toml", include_str!("../checks/backup.toml")),
    ("cluster.toml", include_str!("../checks/cluster.toml")),
    ("data.toml", include_str!("../checks/data.toml")),
    ("encryption.toml", include_str!("../checks/encryption.toml")),
    ("monitoring.toml", include_str!("../checks/monitoring.toml")),
    ("network.toml", include_str!("../checks/network.toml")),
    ("patching.toml", include_str!("../checks/patching.toml")),
    (
        "performance.toml",
        include_str!("../checks/performance.toml"),
    ),
    ("transport.toml", include_str!("../checks/transport.toml")),
];

/// The text of one built-in policy file, by name (tests and tooling).
pub fn builtin_file(name: &str) -> &'static str {
    BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no built-in policy file {name}"))
}

/// Control areas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    /// TLS on every listener and link.
    Transport,
    /// ACLs and authentication.
    Access,
    /// Slot map, topology, cluster health.
    Cluster,
    /// Persistence and session expiry.
    Data,
    /// Security groups.
    Network,
    /// Encryption at rest.
    Encryption,
    /// Backups of the data volumes.
    Backup,
    /// Patch level and support status of the server software.
    Patching,
    /// Exporters and scraping.
    Monitoring,
    /// Latency objectives.
    Performance,
}

impl Area {
    /// All areas, in report order.
    pub(crate) const ALL: [Area; 10] = [
        Area::Transport,
        Area::Access,
        Area::Cluster,
        Area::Data,
        Area::Network,
        Area::Encryption,
        Area::Backup,
        Area::Patching,
        Area::Monitoring,
        Area::Performance,
    ];
    /// Lower-case name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Area::Transport => "transport",
            Area::Access => "access",
            Area::Cluster => "cluster",
            Area::Data => "data",
            Area::Network => "network",
            Area::Encryption => "encryption",
            Area::Backup => "backup",
            Area::Patching => "patching",
            Area::Monitoring => "monitoring",
            Area::Performance => "performance",
        }
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much a failure matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical: PHI exposure or loss is likely.
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        };
        f.write_str(s)
    }
}

/// One check of the policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckDef {
    /// Stable id, e.g. `CLU-001`.
    pub id: String,
    /// Control area.
    pub area: Area,
    /// Severity of a failure.
    pub severity: Severity,
    /// One-line summary.
    pub title: String,
    /// 45 CFR references, each primary or supporting:
    /// `[{ ref = "164.312(e)(1)", relation = "primary" }]` (a bare string
    /// is primary). Empty for a service objective or hygiene check.
    pub hipaa: Vec<crate::hipaa::Citation>,
    /// Rule name in the Rust registry.
    pub rule: String,
    /// Rule parameters.
    #[serde(default)]
    pub params: toml::Table,
    /// Why the control matters.
    pub rationale: String,
    /// How to fix a failure.
    pub remediation: String,
    /// `false` keeps the check in reports as `skip`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// File the check came from.
    #[serde(skip_deserializing, default)]
    pub source: String,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    check: Vec<toml::Spanned<CheckDef>>,
}

/// The loaded, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Checks in file order.
    pub checks: Vec<CheckDef>,
    /// SHA-256 over the policy files (name and content), hex.
    pub digest: String,
    /// `built-in` or the directory read.
    pub source: String,
    /// Waivers from `waivers.toml` in the policy directory.
    pub waivers: Vec<crate::waivers::Waiver>,
    /// Where each file of accepted server builds added with
    /// [`Policy::accept_builds`] came from, as labelled.
    pub accepted_builds: Vec<String>,
}

impl Policy {
    /// The advisory table of every enabled patch-level check (the built-in
    /// policy has one: PATCH-001's). Parameters that do not parse are left
    /// out here: the check itself reports them.
    pub fn advisory_tables(&self) -> Vec<crate::checks::AdvisoryTable> {
        self.checks
            .iter()
            .filter(|c| c.enabled && c.rule == PATCH_RULE)
            .filter_map(|c| {
                let p: crate::checks::patch::PatchParams =
                    toml::Value::Table(c.params.clone()).try_into().ok()?;
                Some(p.into_table(&c.id))
            })
            .collect()
    }

    /// The policy compiled into the binary.
    pub fn builtin() -> Result<Policy, ConfigError> {
        let files: Vec<(String, String)> = BUILTIN
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        Policy::from_files(files, "built-in")
    }

    /// Every `*.toml` in `dir` except `waivers.toml`.
    pub fn load_dir(dir: &Path) -> Result<Policy, ConfigError> {
        let rd = std::fs::read_dir(dir)
            .map_err(|e| ConfigError::new(dir, format!("cannot read policy directory: {e}")))?;
        let mut paths: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .filter(|p| p.file_name().is_some_and(|n| n != "waivers.toml"))
            .collect();
        paths.sort();
        let mut files = Vec::new();
        for p in paths {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| ConfigError::new(&p, format!("cannot read: {e}")))?;
            files.push((p.display().to_string(), text));
        }
        if files.is_empty() {
            return Err(ConfigError::new(dir, "no *.toml policy files in it"));
        }
        let mut policy = Policy::from_files(files, &dir.display().to_string())?;
        let wfile = dir.join("waivers.toml");
        if wfile.is_file() {
            let text = std::fs::read_to_string(&wfile)
                .map_err(|e| ConfigError::new(&wfile, format!("cannot read: {e}")))?;
            let ids: Vec<String> = policy.checks.iter().map(|c| c.id.clone()).collect();
            policy.waivers = crate::waivers::parse(&text, &wfile, &ids)?;
            // The digest covers the waivers too: they change verdicts.
            policy.fold_into_digest("waivers.toml", &text);
        }
        Ok(policy)
    }

    /// Parses and validates policy files given as (name, text).
    pub fn from_files(files: Vec<(String, String)>, source: &str) -> Result<Policy, ConfigError> {
        let rules = registry();
        let mut hasher = Sha256::new();
        let mut checks = Vec::new();
        let mut seen = BTreeSet::new();
        for (name, text) in &files {
            let base = Path::new(name)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| name.clone());
            hasher.update(base.as_bytes());
            hasher.update([0]);
            hasher.update(text.as_bytes());
            hasher.update([0]);
            let file: PolicyFile =
                toml::from_str(text).map_err(|e| crate::config::toml_error(name, text, &e))?;
            for spanned in file.check {
                let line = line_of(text, spanned.span().start);
                let mut c = spanned.into_inner();
                let at = |msg: String| {
                    ConfigError::new(name, format!("line {line}: check {}: {msg}", c.id))
                };
                if !seen.insert(c.id.clone()) {
                    return Err(at(
                        "duplicate id; ids must be unique across all policy files".into(),
                    ));
                }
                let rule: &Rule = rules.get(c.rule.as_str()).ok_or_else(|| {
                    at(format!(
                        "unknown rule `{}`; known rules: {}",
                        c.rule,
                        rules.keys().copied().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                rule.validate(&c.params).map_err(at)?;
                let mut cited = BTreeSet::new();
                for h in &c.hipaa {
                    if crate::hipaa::provision(&h.reference).is_none() {
                        return Err(at(format!(
                            "hipaa cites `{}`, which is not a 45 CFR 164.308/164.312 provision epic-audit knows; known: {}",
                            h.reference,
                            crate::hipaa::PROVISIONS.iter().map(|p| p.reference).collect::<Vec<_>>().join(", ")
                        )));
                    }
                    if !cited.insert(h.reference.as_str()) {
                        return Err(at(format!("hipaa cites `{}` twice", h.reference)));
                    }
                }
                c.source = base.clone();
                checks.push(c);
            }
        }
        Ok(Policy {
            checks,
            digest: hex::encode(hasher.finalize()),
            source: source.to_string(),
            waivers: Vec::new(),
            accepted_builds: Vec::new(),
        })
    }

    /// Adds the builds an environment accepts (its `accepted_builds` file:
    /// `[[build]]` tables with `server`, `version`, `build_id`, `reason`)
    /// to every check judging the patch level, each marked with `label`
    /// (where it came from, as the user wrote it). The digest covers the
    /// file: it changes verdicts.
    pub fn accept_builds(&mut self, path: &Path, label: &str) -> Result<usize, ConfigError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            build: Vec<toml::Table>,
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                path,
                format!(
                    "cannot read accepted builds: {}",
                    crate::output::io_reason(&e)
                ),
            )
        })?;
        let file: File = toml::from_str(&text)
            .map_err(|e| crate::config::toml_error(path.display().to_string(), &text, &e))?;
        let rules = registry();
        for c in self.checks.iter_mut().filter(|c| c.rule == PATCH_RULE) {
            let mut list = match c.params.remove("accepted_builds") {
                Some(toml::Value::Array(a)) => a,
                _ => Vec::new(),
            };
            for b in &file.build {
                let mut b = b.clone();
                b.insert("source".into(), toml::Value::String(label.to_string()));
                list.push(toml::Value::Table(b));
            }
            c.params
                .insert("accepted_builds".into(), toml::Value::Array(list));
            if let Some(rule) = rules.get(PATCH_RULE) {
                rule.validate(&c.params).map_err(|e| {
                    ConfigError::new(path, format!("an accepted build is not valid: {e}"))
                })?;
            }
        }
        self.fold_into_digest("accepted_builds", &text);
        self.accepted_builds.push(label.to_string());
        Ok(file.build.len())
    }

    /// Judges `user` as the exporters' ACL user (the environment's
    /// `exporter_user`) in place of the policy's `user` in every check of
    /// rule [`EXPORTER_USER_RULE`]. The digest covers it: it changes verdicts.
    pub fn set_exporter_user(&mut self, user: &str) {
        let mut changed = false;
        for c in self
            .checks
            .iter_mut()
            .filter(|c| c.rule == EXPORTER_USER_RULE)
        {
            c.params
                .insert("user".into(), toml::Value::String(user.to_string()));
            changed = true;
        }
        if changed {
            self.fold_into_digest("exporter_user", user);
        }
    }

    /// The exporters' ACL user the policy names (the `user` of the first
    /// enabled check of rule [`EXPORTER_USER_RULE`]).
    pub fn exporter_user(&self) -> Option<&str> {
        self.checks
            .iter()
            .filter(|c| c.enabled && c.rule == EXPORTER_USER_RULE)
            .find_map(|c| c.params.get("user").and_then(|u| u.as_str()))
    }

    /// Folds a file that changes verdicts (waivers, accepted builds) into
    /// the digest: SHA-256 of the digest so far, `tag`, NUL and `text`.
    fn fold_into_digest(&mut self, tag: &str, text: &str) {
        let mut h = Sha256::new();
        h.update(self.digest.as_bytes());
        h.update(tag.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        self.digest = hex::encode(h.finalize());
    }

    /// A check by id (case-insensitive).
    pub fn get(&self, id: &str) -> Option<&CheckDef> {
        self.checks.iter().find(|c| c.id.eq_ignore_ascii_case(id))
    }

    /// The probes whose evidence check `id` reads (its rule's needs).
    pub fn probes_of(&self, id: &str) -> Vec<String> {
        let rules = crate::checks::registry();
        self.get(id)
            .and_then(|c| rules.get(c.rule.as_str()))
            .map(|r| r.needs.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default()
    }

    /// Resolves `--only`/`--skip` words (areas or check ids) to the checks
    /// they select, in policy order. Unknown words are an error listing
    /// what exists.
    pub fn select(&self, only: &[String], skip: &[String]) -> Result<Vec<&CheckDef>, String> {
        let matches = |word: &str, c: &CheckDef| {
            c.id.eq_ignore_ascii_case(word) || c.area.as_str().eq_ignore_ascii_case(word)
        };
        for w in only.iter().chain(skip) {
            let is_area = Area::ALL.iter().any(|a| a.as_str().eq_ignore_ascii_case(w));
            if !is_area && self.get(w).is_none() {
                return Err(format!(
                    "`{w}` is neither an area ({}) nor a check id (see `epic-audit checks`)",
                    Area::ALL.map(Area::as_str).join(", ")
                ));
            }
        }
        let selected: Vec<&CheckDef> = self
            .checks
            .iter()
            .filter(|c| only.is_empty() || only.iter().any(|w| matches(w, c)))
            .filter(|c| !skip.iter().any(|w| matches(w, c)))
            .collect();
        // A gate must judge something: a selection that leaves no enabled
        // check would print a verdict of nothing and exit 0.
        if !selected.iter().any(|c| c.enabled) {
            let given = |flag: &str, words: &[String]| {
                (!words.is_empty()).then(|| format!("--{flag} {}", words.join(",")))
            };
            let flags: Vec<String> = [given("only", only), given("skip", skip)]
                .into_iter()
                .flatten()
                .collect();
            return Err(if flags.is_empty() {
                format!(
                    "the policy ({}) has no enabled check: nothing would be judged",
                    self.source
                )
            } else if selected.is_empty() {
                format!(
                    "{} leaves no check to judge: nothing would be judged, and a verdict of nothing \
                     is not a pass (`epic-audit checks` lists the ids and areas)",
                    flags.join(" ")
                )
            } else {
                format!(
                    "{} leaves only disabled checks ({}): nothing would be judged",
                    flags.join(" "),
                    selected
                        .iter()
                        .map(|c| c.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
        }
        Ok(selected)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_exporter_user_rule_is_registered_and_replaced_per_environment() {
        assert!(registry().contains_key(EXPORTER_USER_RULE));
        let mut p = Policy::builtin().unwrap();
        assert_eq!(p.exporter_user(), Some("exporter"));
        let before = p.digest.clone();
        p.set_exporter_user("metrics_ro");
        assert_eq!(p.exporter_user(), Some("metrics_ro"));
        assert_ne!(p.digest, before, "the digest covers the replacement");
    }

    use super::*;

    #[test]
    fn builtin_policy_loads_and_every_check_has_a_rule() {
        let p = Policy::builtin().unwrap();
        assert!(p.checks.len() >= 7);
        assert_eq!(p.digest.len(), 64);
        assert!(p.get("clu-001").is_some());
    }

    fn one(body: &str) -> Result<Policy, ConfigError> {
        Policy::from_files(vec![("x.toml".into(), body.into())], "test")
    }

    const OK: &str = r#"
[[check]]
id = "CLU-900"
area = "cluster"
severity = "high"
title = "t"
hipaa = ["164.312(c)(1)"]
rule = "cluster.topology"
rationale = "r"
remediation = "m"
[check.params]
masters = 3
"#;

    #[test]
    fn unknown_rule_and_bad_params_name_file_line_and_check() {
        assert!(one(OK).is_ok());
        let e = one(&OK.replace("cluster.topology", "cluster.nope"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.toml")
                && e.contains("line 2")
                && e.contains("CLU-900")
                && e.contains("cluster.nope"),
            "{e}"
        );
        let e = one(&OK.replace("masters = 3", "mastrs = 3"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("mastrs"), "{e}");
        let e = one(&OK.replace("area = \"cluster\"", "area = \"clustr\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4") && e.contains("clustr"), "{e}");
    }

    #[test]
    fn citations_must_be_known_provisions_cited_once_and_may_be_none() {
        let e = one(&OK.replace("164.312(c)(1)", "164.312(e)(3)"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("164.312(e)(3)") && e.contains("CLU-900") && e.contains("known:"),
            "{e}"
        );
        let twice = OK.replace(
            r#"hipaa = ["164.312(c)(1)"]"#,
            r#"hipaa = ["164.312(c)(1)", { ref = "164.312(c)(1)", relation = "supporting" }]"#,
        );
        assert!(one(&twice).unwrap_err().to_string().contains("twice"));
        let none = one(&OK.replace(r#"hipaa = ["164.312(c)(1)"]"#, "hipaa = []")).unwrap();
        assert!(none.checks[0].hipaa.is_empty());
        let bad_relation = OK.replace(
            r#"hipaa = ["164.312(c)(1)"]"#,
            r#"hipaa = [{ ref = "164.312(c)(1)", relation = "main" }]"#,
        );
        assert!(one(&bad_relation).is_err());
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let e = one(&format!("{OK}\n{OK}")).unwrap_err().to_string();
        assert!(e.contains("duplicate"), "{e}");
    }

    #[test]
    fn selection_by_area_and_id() {
        let p = Policy::builtin().unwrap();
        let all = p.select(&[], &[]).unwrap().len();
        let clu = p.checks.iter().filter(|c| c.area == Area::Cluster).count();
        assert_eq!(clu, 10);
        assert_eq!(p.select(&["cluster".into()], &[]).unwrap().len(), clu);
        assert_eq!(
            p.select(&["cluster".into(), "ACC-001".into()], &[])
                .unwrap()
                .len(),
            clu + 1
        );
        assert_eq!(p.select(&["CLU-001".into()], &[]).unwrap().len(), 1);
        assert_eq!(p.select(&[], &["clu-001".into()]).unwrap().len(), all - 1);
        assert!(p
            .select(&["bogus".into()], &[])
            .unwrap_err()
            .contains("bogus"));
    }
}
