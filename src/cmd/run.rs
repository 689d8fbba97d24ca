//! `epic-audit run --env NAME`: observe one environment, judge it, write
//! the run. Several `--env` are a fleet (`cmd::fleet`), which audits each
//! environment with [`run_one`].

use std::path::Path;

use anyhow::Result;

use super::shared::{accept_environment_builds, load_policy, print_run, signer};
use crate::cli::{Cli, RunArgs, UsageError};
use crate::engine;
use crate::output::OutputError;
use crate::policy::Policy;
use crate::probes::cleanup::LatencyCleanup;
use crate::probes::ProbeContext;
use crate::tls::TlsClient;

/// One environment resolved from the config, once, before anything is
/// observed: everything wrong (a selection that judges nothing, an
/// occupied output directory, a lab that is not up, unreadable accepted
/// builds, TLS files, secrets, the signing key, the store) is refused
/// here. The run then flows down through the engine, the report, the run
/// directory and the store without going back to the config.
struct Resolved {
    /// The policy with the environment's accepted builds.
    policy: Policy,
    /// What the probes need: seeds, TLS client, credentials, timeouts,
    /// monitoring and AWS settings (the inputs and salt are the run's own).
    probes: ProbeContext,
    /// Signs the run (`None`: --unsigned).
    signer: Option<crate::sign::RunSigner>,
    /// The evidence store the run goes to, when one is named.
    store: Option<crate::store::Store>,
    /// Where the environment is defined (its config table), for SARIF.
    defined_in: Option<crate::report::FileLine>,
}

/// Resolves environment `name` (see [`Resolved`]).
async fn resolve(
    cli: &Cli,
    args: &RunArgs,
    name: &str,
    latency: &LatencyCleanup,
) -> Result<Resolved> {
    let config = cli.config()?;
    let env = config.environment(name)?;
    let mut policy = load_policy(cli)?;
    // A bad selection is refused before anything else is looked at.
    policy
        .select(&args.select.only, &args.select.skip)
        .map_err(UsageError)?;
    if let Some(out) = &args.out {
        refuse_occupied(out)?;
    }
    let lab_dir = crate::config::default_lab_dir();
    if env.lab {
        lab_hint(name, env, &lab_dir).await?;
    }
    accept_environment_builds(&mut policy, &config, name, &lab_dir)?;
    let tls = TlsClient::from_files(
        &config.resolve_path(&env.tls.ca, &lab_dir),
        &config.resolve_path(&env.tls.client_cert, &lab_dir),
        &config.resolve_path(&env.tls.client_key, &lab_dir),
        env.tls.server_name.clone(),
    )?;
    let user = env.audit_user.get_ref().clone();
    let password = config.resolve_secret(name, &user, &lab_dir)?;
    let mut credentials = std::collections::BTreeMap::new();
    for user_name in env.users.keys() {
        credentials.insert(
            user_name.clone(),
            config.resolve_secret(name, user_name, &lab_dir)?,
        );
    }
    // Resolved after the TLS material and secrets (a lab environment's key
    // is created by `lab up`), and still before any probe runs.
    let signer = signer(&args.signing, Some(env), Some(&config))?;
    let store = match super::stored::store_url(args.signing.store.as_ref(), Some(env)) {
        Some(url) => Some(super::stored::open(url, Some(env)).await),
        None => None,
    };
    let prometheus_auth = prometheus_auth(&config, name, &env.monitoring, &lab_dir)?;
    let probes = ProbeContext {
        targets: env.seeds.clone(),
        tls,
        timeouts: env.timeouts.clone(),
        user,
        password,
        credentials,
        inputs: Default::default(),
        topology: Default::default(),
        monitoring: env.monitoring.clone(),
        prometheus_auth,
        config_command: env.config_command.clone(),
        session_salt: crate::probes::data::RunSalt::random().map_err(|e| {
            anyhow::anyhow!("drawing this run's salt from the OS random source: {e}")
        })?,
        aws: env.aws.clone(),
        conns: Default::default(),
        latency: latency.clone(),
    };
    Ok(Resolved {
        policy,
        probes,
        signer,
        store,
        defined_in: crate::report::FileLine::environment_table(&config.path, name),
    })
}

/// Prometheus's credentials from their references: a bearer token, or a
/// basic-auth user and password, never both.
fn prometheus_auth(
    config: &crate::config::Config,
    name: &str,
    m: &crate::config::MonitoringSettings,
    lab_dir: &Path,
) -> Result<crate::http::HttpAuth> {
    use crate::http::HttpAuth;
    let key =
        |k: &str| format!("the Prometheus {k} (environments.{name}.monitoring.prometheus_{k}");
    Ok(
        match (
            &m.prometheus_token,
            &m.prometheus_user,
            &m.prometheus_password,
        ) {
            (None, None, None) => HttpAuth::None,
            (Some(t), None, None) => {
                HttpAuth::Bearer(config.resolve_ref(name, t, &key("token"), lab_dir)?)
            }
            (None, Some(u), Some(p)) => HttpAuth::Basic(
                u.clone(),
                config.resolve_ref(name, p, &key("password"), lab_dir)?,
            ),
            _ => {
                return Err(UsageError(format!(
                "environments.{name}.monitoring: set prometheus_token, or prometheus_user with \
                 prometheus_password, not a mix"
            ))
                .into())
            }
        },
    )
}

/// Refuses an output directory that holds a run, or whose session-hash
/// salt from an earlier run is still beside it.
fn refuse_occupied(out: &Path) -> Result<()> {
    if crate::run::occupied(out) {
        return Err(OutputError::Exists(out.to_path_buf()).into());
    }
    // The salt goes beside the run directory; one left from an earlier run
    // there is refused now, before anything is observed or printed.
    let salt = crate::run::salt_path(out);
    if salt.exists() {
        return Err(UsageError(format!(
            "{} exists: it is the session-hash salt of an earlier run written to {}; \
             move it away (it maps that run's reported key hashes back to key names) or delete it",
            salt.display(),
            out.display()
        ))
        .into());
    }
    Ok(())
}

/// Audits environment `name` and writes its run; prints its summary when
/// `print` (a fleet prints one line per environment instead). `latency` is
/// the process's latency clean-up handle (the Ctrl-C path uses it).
pub(crate) async fn run_one(
    cli: &Cli,
    args: &RunArgs,
    name: &str,
    print: bool,
    latency: &LatencyCleanup,
) -> Result<crate::run::Written> {
    let Resolved {
        policy,
        mut probes,
        signer,
        store,
        defined_in,
    } = resolve(cli, args, name, latency).await?;
    let selected = policy
        .select(&args.select.only, &args.select.skip)
        .map_err(UsageError)?;
    probes.inputs = engine::probe_inputs(&policy, &selected);
    let seeds = probes.targets.clone();
    let salt = probes.session_salt.clone();
    let needed = engine::needed_probes(&selected);
    let evidence = engine::observe(name, &seeds, probes, &needed).await;
    let mut report = engine::judge(
        &evidence,
        &policy,
        &selected,
        &args.select.only,
        &args.select.skip,
    );
    report.defined_in = defined_in;
    let dest = match &args.out {
        Some(d) => d.clone(),
        None => crate::run::default_dir(
            &crate::run::env_dir(Path::new(crate::run::REPORTS_DIR), name),
            &evidence.run_id,
        ),
    };
    // The salt is written before the run is committed and the verdict
    // printed, so the exit code printed is the one the process returns; if
    // writing the run then fails, the salt is removed with it.
    let salt_file = if needed.contains(&crate::evidence::ProbeId::Sessions) {
        Some(crate::run::write_salt(&dest, &salt.0)?)
    } else {
        None
    };
    let written = super::stored::write_run(
        &dest,
        &evidence,
        report,
        &policy,
        signer.as_ref(),
        args.signing.prom.as_deref(),
        store.as_ref(),
    )
    .await
    .inspect_err(|_| {
        if let Some(f) = &salt_file {
            let _ = std::fs::remove_file(f);
        }
    })?;
    if print {
        print_run(&written, signer.as_ref());
        if let Some(file) = salt_file {
            println!(
                "session keys appear in the report only as keyed hashes; the key (this run's salt) is in {} — keep it local",
                file.display()
            );
        }
    }
    Ok(written)
}

/// For the local lab's environment: fails early, saying how to start the
/// lab, when it is not up (its TLS material is missing or its first seed
/// does not accept connections). The audit binary never starts servers.
async fn lab_hint(name: &str, env: &crate::config::Environment, lab_dir: &Path) -> Result<()> {
    let seed = &env.seeds[0];
    let ca_missing = !lab_dir.join("pki").is_dir();
    let refused = tokio::time::timeout(
        env.timeouts.connect(),
        tokio::net::TcpStream::connect((seed.host.as_str(), seed.port)),
    )
    .await
    .map_or(true, |r| r.is_err());
    if ca_missing || refused {
        return Err(UsageError(format!(
            "environment `{name}` is the local lab, and it is not running ({}): start it with \
             `epic-audit-lab up --port {}` (or run `bash scripts/audit-lab.sh`, which starts it and audits it)",
            if ca_missing {
                format!("{} has no pki/", lab_dir.display())
            } else {
                format!("nothing accepts connections on {seed}")
            },
            seed.port
        ))
        .into());
    }
    Ok(())
}
