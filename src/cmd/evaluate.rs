//! `epic-audit evaluate`: judge a saved evidence.json again (no network).

use std::path::Path;

use anyhow::Result;

use super::shared::{accept_environment_builds, load_policy, signer, write_and_print};
use crate::cli::{Cli, Select, Signing, UsageError};
use crate::engine;
use crate::evidence::EvidenceSet;

/// Judges the evidence at `path` with the current policy.
pub(crate) fn evaluate(
    cli: &Cli,
    path: &Path,
    out: Option<&Path>,
    accepted_builds: Option<&Path>,
    select: &Select,
    signing: &Signing,
) -> Result<u8> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
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
        let ok = !v.is_empty()
            && !v.starts_with('.')
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !ok {
            return Err(UsageError(format!(
                "{}: its {what} is not a plain name (letters, digits, `.`, `_`, `-`): hand-edited evidence?",
                path.display()
            ))
            .into());
        }
    }
    let mut policy = load_policy(cli)?;
    // The builds given, else those the evidence's environment accepts
    // where the config still names it (the run was judged with them too).
    if let Some(f) = accepted_builds {
        policy.accept_builds(f, &format!("{} (--accepted-builds)", f.display()))?;
    } else if let Ok(config) = crate::config::Config::load(&cli.config) {
        if config.environment(&evidence.environment).is_ok() {
            accept_environment_builds(
                &mut policy,
                &config,
                &evidence.environment,
                &crate::config::default_lab_dir(),
            )?;
        }
    }
    let selected = policy
        .select(&select.only, &select.skip)
        .map_err(UsageError)?;
    let report = engine::judge(&evidence, &policy, &selected, &select.only, &select.skip);
    let dest = match out {
        Some(d) => d.to_path_buf(),
        None => {
            let now = engine::run_id(chrono::Utc::now());
            crate::run::default_dir(
                &Path::new("reports").join(&evidence.environment),
                &format!("{}-evaluated-{now}", evidence.run_id),
            )
        }
    };
    let signer = signer(signing, None, None)?;
    // Only an explicit --store: evaluating is otherwise offline. The
    // environment's AWS settings apply when the config names it.
    let store = signing.store.clone().map(|url| {
        let env = super::stored::config_env(&cli.config, &evidence.environment);
        crate::aws::block_on(super::stored::open(url, env.as_ref()))
    });
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
