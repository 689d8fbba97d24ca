//! What several commands share: the policy to judge with, the key to sign
//! with, writing and printing a judged run, and the exit code of a command
//! that stopped on an error.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::{Cli, Signing, UsageError};
use crate::config::{Config, ConfigError};
use crate::evidence::EvidenceSet;
use crate::output::OutputError;
use crate::policy::Policy;
use crate::report::{terminal, Report, EXIT_RUNTIME, EXIT_USAGE};
use crate::run::Written;

/// The exit code of a command that stopped on `e`: usage (3) for a bad
/// config, argument or an output that would be overwritten; runtime (4)
/// otherwise.
pub(crate) fn error_exit_code(e: &anyhow::Error) -> u8 {
    let usage = e.downcast_ref::<ConfigError>().is_some()
        || e.downcast_ref::<UsageError>().is_some()
        || matches!(
            e.downcast_ref::<OutputError>(),
            Some(OutputError::Exists(_))
        );
    if usage {
        EXIT_USAGE
    } else {
        EXIT_RUNTIME
    }
}

/// The policy: `--policy DIR`, else `checks/` beside the config file, else
/// the policy built into the binary.
pub(crate) fn load_policy(cli: &Cli) -> Result<Policy, ConfigError> {
    if let Some(dir) = &cli.policy {
        return Policy::load_dir(dir);
    }
    let config = cli.config_path();
    let beside = config.parent().unwrap_or(Path::new(".")).join("checks");
    if beside.is_dir() {
        Policy::load_dir(&beside)
    } else {
        Policy::builtin()
    }
}

/// Makes `policy` environment `name`'s: the builds it accepts (its
/// `accepted_builds` file, if it names one), labelled as the config says
/// it, and the exporters' ACL user (`[monitoring] exporter_user`); returns
/// the accepted builds' label, or `None` when the environment names no file.
pub(crate) fn accept_environment_builds(
    policy: &mut Policy,
    config: &Config,
    name: &str,
    lab_dir: &Path,
) -> Result<Option<String>, ConfigError> {
    let env = config.environment(name)?;
    if let Some(u) = &env.monitoring.exporter_user {
        policy.set_exporter_user(u);
    }
    let Some(f) = &env.accepted_builds else {
        return Ok(None);
    };
    let label = format!("{} (environments.{name}.accepted_builds)", f.display());
    policy.accept_builds(&config.resolve_path(f, lab_dir), &label)?;
    Ok(Some(label))
}

/// The key to sign with: --signing-key, then $EPIC_AUDIT_SIGNING_KEY, then
/// the environment's `signing_key`; none and no --unsigned is an error.
/// `awskms:KEY` (a key id, ARN or `alias/NAME`) signs with that KMS key,
/// reached with the environment's `[aws]` region, profile, endpoint and
/// credentials (else the standard AWS chain) within its timeouts.
pub(crate) fn signer(
    s: &Signing,
    env: Option<&crate::config::Environment>,
    config: Option<&Config>,
) -> Result<Option<crate::sign::RunSigner>> {
    if s.unsigned {
        return Ok(None);
    }
    match configured_key(s.signing_key.clone(), env, config)? {
        Some(k) => Ok(Some(k)),
        None => Err(UsageError(format!(
            "no signing key: pass --signing-key FILE (or awskms:alias/NAME), set {} or `signing_key` \
             in the environment (`epic-audit keygen` makes one), or pass --unsigned for a report \
             that says it is unsigned",
            crate::sign::KEY_ENV
        ))
        .into()),
    }
}

/// The key given (`flag`), else $EPIC_AUDIT_SIGNING_KEY, else the
/// environment's `signing_key`, loaded; `None` when none is named.
fn configured_key(
    flag: Option<PathBuf>,
    env: Option<&crate::config::Environment>,
    config: Option<&Config>,
) -> Result<Option<crate::sign::RunSigner>> {
    let from_env = std::env::var_os(crate::sign::KEY_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let env_key = env.and_then(|e| e.signing_key.clone());
    let (key, from_config) = match (flag.or(from_env), env_key) {
        (Some(k), _) => (k, false),
        (None, Some(k)) => (k, true),
        (None, None) => return Ok(None),
    };
    if let Some(reference) = key
        .to_str()
        .and_then(|k| k.strip_prefix(crate::sign::KMS_PREFIX))
    {
        if reference.is_empty() {
            return Err(UsageError(format!(
                "`{}` names no KMS key: write awskms:alias/NAME, awskms:KEY-ID or awskms:ARN",
                key.display()
            ))
            .into());
        }
        let timeouts = env.map(|e| e.timeouts.clone()).unwrap_or_default();
        let aws = env.and_then(|e| e.aws.as_ref());
        let conf = crate::aws::block_on(crate::aws::sdk_config_for(
            aws.and_then(|a| a.region.as_deref()),
            aws.and_then(|a| a.profile.as_deref()),
            aws.and_then(|a| a.endpoint.as_deref()),
            aws.map(|a| a.credentials).unwrap_or_default(),
            &timeouts,
        ));
        let deadline =
            timeouts.command() * 3 + timeouts.connect() + std::time::Duration::from_secs(2);
        let endpoint = aws.and_then(|a| a.endpoint.clone());
        return crate::sign::RunSigner::kms(reference, &conf, deadline)
            .map(Some)
            .map_err(|e| match endpoint {
                Some(url) => {
                    anyhow::anyhow!("{e} (KMS endpoint {url}, from the environment's [aws])")
                }
                None => e.into(),
            });
    }
    // A key file named in the config is relative to the config's directory.
    let path = if from_config {
        let lab_dir = crate::config::default_lab_dir();
        config
            .map(|c| c.resolve_path(&key, &lab_dir))
            .unwrap_or(key)
    } else {
        key
    };
    Ok(Some(crate::sign::RunSigner::load(&path)?))
}

/// The terminal summary of a written run and where its files are.
pub(crate) fn print_run(w: &Written, signer: Option<&crate::sign::RunSigner>) {
    let (dir, report) = (&w.dir, &w.report);
    let not_stored = match &w.stored {
        Some(crate::run::Stored::Failed(e)) => {
            eprintln!("epic-audit: {e}");
            Some(("NOT STORED", w.exit_code()))
        }
        _ => None,
    };
    print!(
        "{}",
        terminal::render_exit(report, terminal::want_colour(), not_stored)
    );
    println!(
        "report: {}/ ({})",
        dir.display(),
        crate::run::REPORT_FILES
            .map(|f| if f == crate::run::OSCAL {
                format!("{f} (OSCAL)")
            } else {
                f.to_string()
            })
            .join(", ")
    );
    if let Some(s) = signer {
        println!(
            "signed: {}/{} ({} key id {}); check it with `epic-audit verify {} --pubkey PUBLIC_KEY`",
            dir.display(),
            crate::run::ENVELOPE,
            s.public_key().algorithm(),
            s.key_id(),
            dir.display()
        );
    }
    match &w.stored {
        Some(crate::run::Stored::Yes(r)) => println!("stored: {r}"),
        Some(crate::run::Stored::Skipped(why)) => println!("{why}"),
        Some(crate::run::Stored::Failed(_)) => println!(
            "NOT STORED: the run is kept only at {}/ (the error is above); exit code {}",
            dir.display(),
            w.exit_code()
        ),
        None => {}
    }
}

/// Writes a judged run (evidence, reports, OSCAL, SARIF, signature) to
/// `dest` and keeps it in `store` (see [`super::stored::write_run`]),
/// prints the terminal summary and returns the exit code.
pub(crate) fn write_and_print(
    dest: &Path,
    evidence: &EvidenceSet,
    report: Report,
    policy: &Policy,
    signer: Option<&crate::sign::RunSigner>,
    prom: Option<&Path>,
    store: Option<&crate::store::Store>,
) -> Result<u8> {
    let w = crate::aws::block_on(super::stored::write_run(
        dest, evidence, report, policy, signer, prom, store,
    ))?;
    print_run(&w, signer);
    Ok(w.exit_code())
}

/// The key that signs what an environment's commands write outside a run
/// (an export, an acknowledgement): `signing_key`, else
/// $EPIC_AUDIT_SIGNING_KEY, else the environment's `signing_key` when
/// `config` names the environment. `what` says what must be signed.
pub(crate) fn env_signer(
    config: Option<&Config>,
    env: &str,
    signing_key: Option<PathBuf>,
    what: &str,
) -> Result<crate::sign::RunSigner> {
    let env_conf = config.and_then(|c| c.environments.get(env));
    configured_key(signing_key, env_conf, config)?.ok_or_else(|| {
        UsageError(format!(
            "{what} must be signed, and no signing key is named: pass --signing-key FILE (or \
             awskms:alias/NAME), set {}, or set `signing_key` in environment `{env}` of the config",
            crate::sign::KEY_ENV
        ))
        .into()
    })
}

/// The public keys acknowledgements of `env`'s gaps must be signed by:
/// `flag` (--ack-pubkey), else the environment's
/// `acknowledgement_pubkeys` (relative to the config), else `None` (the
/// runs' key).
pub(crate) fn ack_pubkeys(
    flag: &[PathBuf],
    config: Option<&Config>,
    env: &str,
) -> Result<Option<Vec<crate::sign::PublicKey>>, ConfigError> {
    let paths: Vec<PathBuf> = if flag.is_empty() {
        match config.and_then(|c| c.environments.get(env).map(|e| (c, e))) {
            Some((c, e)) => e
                .acknowledgement_pubkeys
                .iter()
                .map(|p| c.resolve_path(p, &crate::config::default_lab_dir()))
                .collect(),
            None => Vec::new(),
        }
    } else {
        flag.to_vec()
    };
    if paths.is_empty() {
        return Ok(None);
    }
    paths
        .iter()
        .map(|p| crate::sign::load_public(p))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
