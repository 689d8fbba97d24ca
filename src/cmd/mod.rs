//! The body of each CLI command, one file per command, and the dispatch
//! from parsed arguments ([`crate::cli`]) to them with the mapping of
//! results to exit codes. Helpers shared by the commands that write a run
//! (`run`, `evaluate`) live in this file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use clap::Parser;

use crate::cli::{Cli, Command, Signing, UsageError};
use crate::config::{Config, ConfigError};
use crate::evidence::EvidenceSet;
use crate::output::{self, OutputError};
use crate::policy::Policy;
use crate::probes::latency::LatencyCleanup;
use crate::report::{junit, terminal, Report, EXIT_RUNTIME, EXIT_USAGE};

pub mod catalogue;
pub mod diff;
pub mod evaluate;
pub mod export;
pub mod fleet;
pub mod keygen;
pub mod run;
pub mod verify;

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    // Output piped into `head` and the like: stop quietly when the reader
    // goes away (the Unix default), instead of panicking on a broken pipe.
    // SAFETY: restores the default disposition of one signal at start-up,
    // before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    crate::install_crypto_provider();
    // Bad arguments exit 3 (usage), not clap's 2, which means `error` here.
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("epic-audit: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    // The latency probe's clean-up handle, shared by every run this
    // process starts and by the Ctrl-C path below.
    let latency = LatencyCleanup::default();
    let result = rt.block_on(async {
        tokio::select! {
            r = dispatch(cli, &latency) => Some(r),
            _ = tokio::signal::ctrl_c() => {
                // The probes are dropped mid-flight; delete whatever the
                // latency probe had created (its keys also carry a TTL).
                let r = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    latency.cleanup_pending(),
                )
                .await
                .unwrap_or_default();
                if r.active_runs > 0 {
                    if r.left_for_ttl == 0 {
                        eprintln!("epic-audit: stopped the latency probe on {} master(s); its latency-probe keys were deleted", r.active_runs);
                    } else {
                        eprintln!(
                            "epic-audit: stopped the latency probe; {} latency-probe keys could not be deleted and expire with their TTL",
                            r.left_for_ttl
                        );
                    }
                }
                None
            }
        }
    });
    match result {
        None => {
            eprintln!("epic-audit: interrupted; no report was written");
            ExitCode::from(130)
        }
        Some(Ok(code)) => ExitCode::from(code),
        Some(Err(e)) => {
            eprintln!("epic-audit: {e:#}");
            ExitCode::from(error_exit_code(&e))
        }
    }
}

/// The exit code of a command that stopped on `e`: usage (3) for a bad
/// config, argument or an output that would be overwritten; runtime (4)
/// otherwise.
pub fn error_exit_code(e: &anyhow::Error) -> u8 {
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

async fn dispatch(cli: Cli, latency: &LatencyCleanup) -> Result<u8> {
    match &cli.command {
        Command::Run(args) => match args.env.as_slice() {
            [one] => run::run_one(&cli, args, one, true, latency)
                .await
                .map(|w| w.report.exit_code),
            _ => fleet::fleet(&cli, args, latency).await,
        },
        Command::Checks { format } => {
            let p = load_policy(&cli)?;
            print!("{}", catalogue::render_catalogue(&p, *format));
            Ok(0)
        }
        Command::Explain { check_id } => {
            let p = load_policy(&cli)?;
            let c = p.get(check_id).ok_or_else(|| {
                UsageError(format!(
                    "no check `{check_id}`; `epic-audit checks` lists them ({})",
                    p.checks
                        .iter()
                        .map(|c| c.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            print!("{}", catalogue::explain(c));
            Ok(0)
        }
        Command::Evaluate {
            evidence,
            out,
            select,
            signing,
        } => evaluate::evaluate(&cli, evidence, out.as_deref(), select, signing),
        Command::Diff { run_a, run_b } => diff::diff(run_a, run_b),
        Command::Keygen { out } => keygen::keygen(out),
        Command::PrintAcl { user } => {
            let p = load_policy(&cli)?;
            print!("{}", catalogue::print_acl(&p, user));
            Ok(0)
        }
        Command::Export {
            env,
            quarter,
            out,
            reports,
            pubkey,
            signing_key,
            exclude_unverified,
        } => export::export(
            &cli,
            env,
            *quarter,
            out.as_deref(),
            reports,
            pubkey.as_deref(),
            signing_key.clone(),
            *exclude_unverified,
        ),
        Command::Verify { path, pubkey } => verify::verify(path, pubkey),
    }
}

/// The policy: `--policy DIR`, else `checks/` beside the config file, else
/// the policy built into the binary.
pub fn load_policy(cli: &Cli) -> Result<Policy, ConfigError> {
    if let Some(dir) = &cli.policy {
        return Policy::load_dir(dir);
    }
    let beside = cli.config.parent().unwrap_or(Path::new(".")).join("checks");
    if beside.is_dir() {
        Policy::load_dir(&beside)
    } else {
        Policy::builtin()
    }
}

/// The key to sign with: --signing-key, then $EPIC_AUDIT_SIGNING_KEY, then
/// the environment's `signing_key`; none and no --unsigned is an error.
/// `awskms:KEY` (a key id, ARN or `alias/NAME`) signs with that KMS key,
/// reached with the environment's `[aws]` region, profile, endpoint and
/// credentials (else the standard AWS chain) within its timeouts.
pub fn signer(
    s: &Signing,
    env: Option<&crate::config::Environment>,
    config: Option<&Config>,
) -> Result<Option<crate::sign::RunSigner>> {
    if s.unsigned {
        return Ok(None);
    }
    let from_env = std::env::var_os(crate::sign::KEY_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let env_key = env.and_then(|e| e.signing_key.clone());
    let (key, from_config) = match (s.signing_key.clone().or(from_env), env_key) {
        (Some(k), _) => (k, false),
        (None, Some(k)) => (k, true),
        (None, None) => {
        return Err(UsageError(format!(
            "no signing key: pass --signing-key FILE (or awskms:alias/NAME), set {} or `signing_key` \
             in the environment (`epic-audit keygen` makes one), or pass --unsigned for a report \
             that says it is unsigned",
            crate::sign::KEY_ENV
            ))
            .into())
        }
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
        return Ok(Some(crate::sign::RunSigner::kms(
            reference, &conf, deadline,
        )?));
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

/// A run written to disk.
pub struct Written {
    /// Its directory.
    pub dir: PathBuf,
    /// Its report, as written.
    pub report: Report,
}

/// Writes a judged run (evidence, reports, OSCAL, signature) to `dest`,
/// prints the terminal summary and returns the exit code.
pub fn write_and_print(
    dest: &Path,
    evidence: &EvidenceSet,
    report: Report,
    policy: &Policy,
    signer: Option<&crate::sign::RunSigner>,
    prom: Option<&Path>,
) -> Result<u8> {
    let w = write_run(dest, evidence, report, policy, signer, prom)?;
    print_run(&w, signer);
    Ok(w.report.exit_code)
}

/// Writes a judged run (evidence, reports, OSCAL, signature) to `dest`,
/// printing nothing.
pub fn write_run(
    dest: &Path,
    evidence: &EvidenceSet,
    mut report: Report,
    policy: &Policy,
    signer: Option<&crate::sign::RunSigner>,
    prom: Option<&Path>,
) -> Result<Written> {
    report.signature = match signer {
        Some(s) => format!(
            "DSSE envelope {} (in-toto Statement, {} key id {}; the same as a Sigstore bundle in {})",
            crate::sign::ENVELOPE,
            s.public_key().algorithm(),
            s.key_id(),
            crate::sign::BUNDLE
        ),
        None => "UNSIGNED REPORT: written with --unsigned; it is not evidence until signed".into(),
    };
    // Changes since the previous run of this environment next to this one.
    if let Some(base) = dest.parent() {
        if let Some(prev) = crate::report::diff::previous_run(base, &report.environment, dest) {
            let d = crate::report::diff::diff(&prev, &report);
            report.previous = Some(crate::report::diff::summary(&prev, &d));
        }
    }
    let ev_json = serde_json::to_string_pretty(evidence).context("serialising evidence")? + "\n";
    let mut files = vec![
        ("evidence.json", ev_json.into_bytes()),
        ("report.json", report.to_json().into_bytes()),
        ("junit.xml", junit::render(&report).into_bytes()),
        (
            "report.md",
            crate::report::markdown::render(&report).into_bytes(),
        ),
        (
            "report.html",
            crate::report::html::render(&report, evidence).into_bytes(),
        ),
        (
            "assessment-results.json",
            crate::report::oscal::render(&report, evidence, &|id| policy.probes_of(id))
                .into_bytes(),
        ),
    ];
    if let Some(s) = signer {
        let counts: std::collections::BTreeMap<String, usize> = report
            .counts
            .iter()
            .map(|(o, n)| (o.to_string(), *n))
            .collect();
        let predicate = serde_json::json!({
            "environment": report.environment,
            "run_id": report.run_id,
            "tool": {"name": report.tool.name, "version": report.tool.version},
            "policy": {"source": report.policy.source, "sha256": report.policy.digest},
            "started_at": report.started_at,
            "finished_at": report.finished_at,
            "counts": counts,
            "verdict": report.verdict,
            "exit_code": report.exit_code,
        });
        let envelope = s.envelope(&files, predicate)?;
        let bytes = serde_json::to_vec_pretty(&envelope).context("serialising the envelope")?;
        files.push((crate::sign::ENVELOPE, bytes));
        let bundle = serde_json::to_vec_pretty(&crate::sign::sigstore_bundle(&envelope))
            .context("serialising the bundle")?;
        files.push((crate::sign::BUNDLE, bundle));
    }
    let dir = output::write_run(dest, &files)?;
    if let Some(p) = prom {
        output::write_file_atomic(p, crate::report::prom::render(&report).as_bytes())?;
    }
    Ok(Written { dir, report })
}

/// The terminal summary of a written run and where its files are.
pub fn print_run(w: &Written, signer: Option<&crate::sign::RunSigner>) {
    let (dir, report) = (&w.dir, &w.report);
    print!("{}", terminal::render(report, terminal::want_colour()));
    println!(
        "report: {}/ (report.html, report.md, report.json, junit.xml, assessment-results.json (OSCAL), evidence.json)",
        dir.display()
    );
    if let Some(s) = signer {
        println!(
            "signed: {}/{} ({} key id {}); check it with `epic-audit verify {} --pubkey PUBLIC_KEY`",
            dir.display(),
            crate::sign::ENVELOPE,
            s.public_key().algorithm(),
            s.key_id(),
            dir.display()
        );
    }
}
