//! `epic-audit evaluate`: judge a saved evidence.json again (no network),
//! as a re-evaluation of the run that observed it: its own run id, the
//! observed run's beside it, and what it was judged with in the verdict
//! line and the report.

use std::path::Path;

use anyhow::Result;

use super::shared::{accept_environment_builds, load_policy, signer, write_and_print};
use super::stored::config_env;
use crate::cli::{Cli, Select, Signing, UsageError};
use crate::config::Config;
use crate::engine;
use crate::evidence::EvidenceSet;
use crate::policy::Policy;
use crate::report::Reevaluation;

/// The `--accepted-builds` value that judges without any accepted build.
pub(crate) const NO_ACCEPTED_BUILDS: &str = "none";

/// Judges the evidence at `path` with the current policy.
pub(crate) fn evaluate(
    cli: &Cli,
    path: &Path,
    out: Option<&Path>,
    accepted_builds: Option<&Path>,
    select: &Select,
    signing: &Signing,
) -> Result<u8> {
    let evidence = read_evidence(path)?;
    let config = cli.optional_config()?;
    let mut policy = load_policy(cli)?;
    let accepted = apply_accepted_builds(
        &mut policy,
        accepted_builds,
        config.as_ref(),
        &evidence,
        path,
    )?;
    let selected = policy
        .select(&select.only, &select.skip)
        .map_err(UsageError)?;
    let mut report = engine::judge(&evidence, &policy, &selected, &select.only, &select.skip);
    let now = chrono::Utc::now();
    report.run_id = Reevaluation::run_id(&evidence.run_id, &engine::run_id(now));
    report.reevaluation = Some(Reevaluation {
        observed_run_id: evidence.run_id.clone(),
        evaluated_at: now,
        judged_with: format!(
            "policy {} (sha256 {}), accepted builds: {accepted}, {} waiver(s)",
            policy.source,
            policy.digest.get(..16).unwrap_or(&policy.digest),
            policy.waivers.len()
        ),
        accepted_builds: accepted,
    });
    let dest = match out {
        Some(d) => d.to_path_buf(),
        None => crate::run::default_dir(
            &Path::new(crate::run::REPORTS_DIR).join(&evidence.environment),
            &report.run_id,
        ),
    };
    // The environment's AWS settings (region, endpoint, credentials,
    // deadlines) reach a KMS key and a store when the config names it; its
    // `signing_key` does not apply: a re-evaluation is signed with the key
    // given (--signing-key or $EPIC_AUDIT_SIGNING_KEY).
    let env_conf = config_env(config.as_ref(), &evidence.environment);
    report.defined_in = match (&config, env_conf) {
        (Some(c), Some(_)) => {
            crate::report::FileLine::environment_table(&c.path, &evidence.environment)
        }
        _ => None,
    }
    .or_else(|| Some(crate::report::FileLine::of(path, 1)));
    let aws_only = env_conf.map(|e| crate::config::Environment {
        signing_key: None,
        ..e.clone()
    });
    let signer = signer(signing, aws_only.as_ref(), config.as_ref())?;
    // Only an explicit --store: evaluating is otherwise offline.
    let store = match signing.store.clone() {
        Some(url) => {
            if env_conf.is_none() {
                eprintln!(
                    "epic-audit: note: no config names environment `{}`, so {url} is reached with \
                     the standard AWS credential chain and region",
                    evidence.environment
                );
            }
            Some(crate::aws::block_on(super::stored::open(url, env_conf)))
        }
        None => None,
    };
    write_and_print(
        &dest,
        &evidence,
        report,
        &policy,
        signer.as_ref(),
        signing.prom.as_deref(),
        store.as_ref(),
    )
}

/// Reads and checks an evidence file: exit 3 naming it when it is missing,
/// not evidence, of another schema, or names its environment or run in a
/// way no directory may be made of.
fn read_evidence(path: &Path) -> Result<EvidenceSet> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError(format!(
            "cannot read {}: {}",
            path.display(),
            crate::output::io_reason(&e)
        ))
    })?;
    let evidence: EvidenceSet = serde_json::from_str(&text).map_err(|e| {
        UsageError(format!(
            "{}: not an epic-audit evidence file: {e}",
            path.display()
        ))
    })?;
    if evidence.schema_version != crate::evidence::SCHEMA_VERSION {
        return Err(UsageError(format!(
            "{}: evidence schema version {} is not supported by this epic-audit (expects {})",
            path.display(),
            evidence.schema_version,
            crate::evidence::SCHEMA_VERSION
        ))
        .into());
    }
    // Both become path components of the default output directory.
    for (what, v) in [
        ("environment", &evidence.environment),
        ("run_id", &evidence.run_id),
    ] {
        crate::config::plain_name(v).map_err(|e| {
            UsageError(format!(
                "{}: its {what} {e}: hand-edited evidence?",
                path.display()
            ))
        })?;
    }
    Ok(evidence)
}

/// Adds the accepted builds to judge with and says which, in words: the
/// file `--accepted-builds` names (`none`: none), else the file the
/// evidence's environment names in the config. Never silently fewer than
/// the observed run used: when the environment names a file that cannot
/// be read here, or the observed run's report (beside the evidence) says
/// it used accepted builds and nothing here names them, it stops (exit 3)
/// and says how to pass them.
fn apply_accepted_builds(
    policy: &mut Policy,
    flag: Option<&Path>,
    config: Option<&Config>,
    evidence: &EvidenceSet,
    path: &Path,
) -> Result<String> {
    let env = &evidence.environment;
    let how = format!(
        "pass --accepted-builds FILE to apply them, or --accepted-builds {NO_ACCEPTED_BUILDS} to judge \
         without (PATCH-001 then judges by the advisory table alone)"
    );
    match flag {
        Some(f) if f == Path::new(NO_ACCEPTED_BUILDS) => {
            return Ok(format!("none (--accepted-builds {NO_ACCEPTED_BUILDS})"))
        }
        Some(f) => {
            let label = format!("{} (--accepted-builds)", f.display());
            policy.accept_builds(f, &label)?;
            return Ok(label);
        }
        None => {}
    }
    if let Some(c) = config.filter(|c| c.environments.contains_key(env)) {
        match accept_environment_builds(policy, c, env, &crate::config::default_lab_dir()) {
            Ok(Some(label)) => return Ok(label),
            Ok(None) => {}
            Err(e) => {
                return Err(UsageError(format!(
                    "environment `{env}` in {} names accepted builds {}, which cannot be applied here ({}): {how}",
                    c.path.display(),
                    e.file,
                    e.detail
                ))
                .into())
            }
        }
    }
    // What the observed run used, from its report beside the evidence.
    let observed = path
        .parent()
        .and_then(|d| crate::run::find::load_report(d).ok());
    if let Some(r) = observed.filter(|r| !r.policy.accepted_builds.is_empty()) {
        return Err(UsageError(format!(
            "run {} was judged with accepted builds from {} (its report.json says so), and no config \
             here names them for environment `{env}`: {how}",
            r.run_id,
            r.policy.accepted_builds.join(", ")
        ))
        .into());
    }
    Ok("none".into())
}
