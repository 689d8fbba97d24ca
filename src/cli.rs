//! Command-line interface: parse, call the library, map results to exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Config, ConfigError};
use crate::engine;
use crate::evidence::EvidenceSet;
use crate::lab::{self, Lab, LabSpec};
use crate::output::{self, OutputError};
use crate::policy::Policy;
use crate::probes::ProbeContext;
use crate::report::{junit, terminal, Report, EXIT_RUNTIME, EXIT_USAGE};
use crate::tls::TlsClient;

const EXIT_CODES: &str = "\
Exit codes (for CI gates):
  0  every check passed (warnings and waivers allowed)
  1  at least one check failed
  2  at least one check could not decide (error), none failed
  3  usage or configuration problem: nothing was audited
  4  the audit could not run or its report could not be written
  130 interrupted (Ctrl-C): nothing was written";

/// epic-audit: live HIPAA compliance audit of a self-managed Redis Cluster.
///
/// Probes connect to every node of the cluster (TLS, with your CA and client
/// certificate) and record what they see; checks from the policy
/// (checks/*.toml) judge that evidence. Each run writes evidence.json,
/// report.json and junit.xml to reports/<env>/<run-id>/.
///
/// Probes never change what they audit, every network operation has a
/// deadline, and passwords are only ever read from env vars or files named
/// in the config.
#[derive(Debug, Parser)]
#[command(name = "epic-audit", version, about, long_about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Config file with the environments.
    #[arg(
        long,
        global = true,
        default_value = "epic-audit.toml",
        value_name = "PATH"
    )]
    pub config: PathBuf,
    /// Policy directory (checks/*.toml). Default: `checks/` next to the
    /// config file if it exists, else the policy built into the binary.
    #[arg(long, global = true, value_name = "DIR")]
    pub policy: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit one environment and write its report.
    ///
    /// Discovers every node from the seeds (CLUSTER SHARDS), runs the probes
    /// the selected checks need, judges, and writes evidence.json,
    /// report.json and junit.xml. With an environment marked `lab = true`
    /// the local lab is started first if it is not running.
    ///
    /// Example: epic-audit run --env prod --only cluster --out ./audit
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// List the checks of the policy: id, area, severity, title, HIPAA refs.
    Checks {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Explain a check: why it matters, how it is probed, how to fix it.
    ///
    /// Example: epic-audit explain CLU-001
    Explain {
        /// Check id, e.g. CLU-001 (case-insensitive).
        check_id: String,
    },
    /// Judge a saved evidence.json again with the current policy (no network).
    ///
    /// Writes report.json and junit.xml (and a copy of the evidence) to
    /// --out, or to reports/<env>/<run-id>-evaluated-<now>/.
    #[command(after_help = EXIT_CODES)]
    Evaluate {
        /// The evidence.json of an earlier run.
        evidence: PathBuf,
        /// Output directory (created; must not hold a run).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        select: Select,
        #[command(flatten)]
        signing: Signing,
    },
    /// Compare two runs: newly failing, fixed and still failing checks, and
    /// changed observations (from each run's report.json).
    ///
    /// Example: epic-audit diff reports/prod/20261101T000000Z reports/prod/20261126T000000Z
    Diff {
        /// The earlier run directory.
        run_a: PathBuf,
        /// The later run directory.
        run_b: PathBuf,
    },
    /// Write a new Ed25519 signing key pair (private key 0600; never overwrites).
    ///
    /// Example: epic-audit keygen --out /etc/epic-audit/signing
    Keygen {
        /// Directory for epic-audit-signing.key and epic-audit-signing.pub.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Verify a signed run directory or a quarterly export archive: the DSSE
    /// signature and every file's digest (and, in an archive, every run's
    /// own signature). Names each modified, missing or added file.
    ///
    /// Exit codes: 0 valid, 1 invalid (tampered or signed by another key),
    /// 3 usage problem (unreadable key, directory or archive).
    Verify {
        /// A run directory (holding manifest.dsse.json) or an export .tar.gz.
        path: PathBuf,
        /// The signer's public key (SPKI PEM, from `epic-audit keygen`).
        #[arg(long, value_name = "FILE")]
        pubkey: PathBuf,
    },
    /// Export one quarter of an environment's signed runs for the auditors:
    /// every run under REPORTS/<env>/ that started in the quarter (UTC) is
    /// verified, then all of them go into one signed .tar.gz with a
    /// control-by-control history (outcome per run, first failure, fix
    /// date), the waivers that applied, and an index.html.
    ///
    /// A run that does not verify stops the export (exit 1) and is named;
    /// --exclude-unverified exports the others and lists it as excluded.
    ///
    /// Example: epic-audit export --env prod --quarter 2026-Q4
    Export {
        /// Environment name (the REPORTS/<env>/ directory).
        #[arg(long, value_name = "NAME")]
        env: String,
        /// Calendar quarter, e.g. 2026-Q4 (October to December, UTC).
        #[arg(long, value_name = "YYYY-QN")]
        quarter: crate::export::Quarter,
        /// Archive to write (never overwritten). Default:
        /// REPORTS/export-<env>-<quarter>.tar.gz.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Directory holding <env>/<run> directories.
        #[arg(long, value_name = "DIR", default_value = "reports")]
        reports: PathBuf,
        /// Public key the runs must verify against. Default: the public half
        /// of the signing key.
        #[arg(long, value_name = "FILE")]
        pubkey: Option<PathBuf>,
        /// Ed25519 private key to sign the archive. Default:
        /// $EPIC_AUDIT_SIGNING_KEY, then the environment's `signing_key`.
        #[arg(long, value_name = "FILE")]
        signing_key: Option<PathBuf>,
        /// Export the runs that verify and list the others as excluded.
        #[arg(long)]
        exclude_unverified: bool,
    },
    /// Start, stop or inspect the local lab cluster.
    ///
    /// The lab is six real redis-server processes (3 masters, 3 replicas) on
    /// 127.0.1.1-127.0.1.6 port 6379, TLS 1.3 only with the test PKI from
    /// fixtures/pki, ACL users admin_user/app_user/dev_user (default off),
    /// AOF on, and about 200 session hashes. Its state, generated passwords
    /// and logs live in $EPIC_AUDIT_LAB_DIR (default $TMPDIR/epic-audit-lab);
    /// config paths refer to it as ${LAB_DIR}.
    Lab {
        #[command(subcommand)]
        action: LabAction,
        /// Lab state directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `lab` actions.
#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// Start the lab (fails if it already runs): six redis-servers, an
    /// exporter per node, and the EC2/KMS emulator (moto) on
    /// 127.0.0.1:<port+1000> seeded with the seed architecture.
    Up {
        /// TLS port of every node (bus port = port + 10000).
        #[arg(long, default_value_t = 6379)]
        port: u16,
        /// Do not start the EC2/KMS emulator (the AWS checks then `error`
        /// for an environment whose [aws] table points at it).
        #[arg(long)]
        no_aws: bool,
    },
    /// Stop exactly the processes the lab started (by pid) and remove its state.
    Down,
    /// Show whether each node runs and answers; exit 0 only when all do.
    Status,
}

/// Table or JSON.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// JSON array.
    Json,
}

/// `run` arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Environment name from the config (e.g. local, staging, prod).
    #[arg(long, value_name = "NAME")]
    pub env: String,
    /// Write the run's files directly in DIR (created; an existing run there
    /// is never overwritten). Default: reports/<env>/<run-id>/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub select: Select,
    #[command(flatten)]
    pub signing: Signing,
}

/// How the run's files are signed.
#[derive(Debug, Args, Clone, Default)]
pub struct Signing {
    /// Ed25519 private key (PKCS#8 PEM) to sign with. Default:
    /// $EPIC_AUDIT_SIGNING_KEY, then the environment's `signing_key`.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
    /// Write the report without a signature; it then says so on its first
    /// line. Without this flag a run with no key fails (exit 3).
    #[arg(long, conflicts_with = "signing_key")]
    pub unsigned: bool,
    /// Also write a Prometheus textfile here (epic_audit_check_status per
    /// check, run timestamp, exit code), replaced atomically.
    #[arg(long, value_name = "FILE")]
    pub prom: Option<PathBuf>,
}

/// Check selection.
#[derive(Debug, Args, Clone, Default)]
pub struct Select {
    /// Only these areas or check ids (repeatable, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "AREA_OR_ID")]
    pub only: Vec<String>,
    /// Leave out these areas or check ids (repeatable, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "AREA_OR_ID")]
    pub skip: Vec<String>,
}

/// A problem with how the tool was called (exit 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

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
    let result = rt.block_on(async {
        tokio::select! {
            r = dispatch(cli) => Some(r),
            _ = tokio::signal::ctrl_c() => {
                // The probes are dropped mid-flight; delete whatever the
                // latency probe had created (its keys also carry a TTL).
                let r = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    crate::probes::latency::cleanup_pending(),
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
            let usage = e.downcast_ref::<ConfigError>().is_some()
                || e.downcast_ref::<UsageError>().is_some()
                || matches!(
                    e.downcast_ref::<OutputError>(),
                    Some(OutputError::Exists(_))
                );
            ExitCode::from(if usage { EXIT_USAGE } else { EXIT_RUNTIME })
        }
    }
}

async fn dispatch(cli: Cli) -> Result<u8> {
    match &cli.command {
        Command::Run(args) => run(&cli, args).await,
        Command::Checks { format } => {
            let p = load_policy(&cli)?;
            print!("{}", render_catalogue(&p, *format));
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
            print!("{}", explain(c));
            Ok(0)
        }
        Command::Evaluate {
            evidence,
            out,
            select,
            signing,
        } => evaluate(&cli, evidence, out.as_deref(), select, signing),
        Command::Diff { run_a, run_b } => {
            let load = |p: &Path| -> Result<Report> {
                let f = p.join("report.json");
                let text = std::fs::read_to_string(&f)
                    .map_err(|e| UsageError(format!("cannot read {}: {e}", f.display())))?;
                Ok(serde_json::from_str(&text).map_err(|e| {
                    UsageError(format!("{}: not an epic-audit report: {e}", f.display()))
                })?)
            };
            let (a, b) = (load(run_a)?, load(run_b)?);
            let d = crate::report::diff::diff(&a, &b);
            print!("{}", crate::report::diff::render(&a, &b, &d));
            Ok(0)
        }
        Command::Keygen { out } => {
            let (private, public) =
                crate::sign::keygen(out).map_err(|e| UsageError(e.to_string()))?;
            println!("private key (keep it secret, 0600): {}", private.display());
            println!("public key (give it to auditors):   {}", public.display());
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
        } => export_cmd(
            &cli,
            env,
            *quarter,
            out.as_deref(),
            reports,
            pubkey.as_deref(),
            signing_key.clone(),
            *exclude_unverified,
        ),
        Command::Verify { path, pubkey } if path.is_file() => {
            let key = crate::sign::load_public(pubkey)?;
            verify_archive_cmd(path, &key)
        }
        Command::Verify { path, pubkey } => {
            let key = crate::sign::load_public(pubkey)?;
            if !path.join(crate::sign::ENVELOPE).is_file() {
                return Err(UsageError(format!(
                    "{} has no {}: not a signed run directory",
                    path.display(),
                    crate::sign::ENVELOPE
                ))
                .into());
            }
            match crate::sign::verify(path, &key) {
                Ok(v) => {
                    println!(
                        "VALID: {} files signed by key {} ({} run {}, verdict {})",
                        v.files.len(),
                        v.key_id,
                        v.predicate["environment"].as_str().unwrap_or("?"),
                        v.predicate["run_id"].as_str().unwrap_or("?"),
                        v.predicate["verdict"].as_str().unwrap_or("?")
                    );
                    Ok(0)
                }
                Err(problems) => {
                    println!("INVALID: {}", path.display());
                    for p in problems {
                        println!("  {p}");
                    }
                    Ok(1)
                }
            }
        }
        Command::Lab { action, dir } => {
            lab_cmd(action, dir.clone().unwrap_or_else(lab::default_dir)).await
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn export_cmd(
    cli: &Cli,
    env: &str,
    quarter: crate::export::Quarter,
    out: Option<&Path>,
    reports: &Path,
    pubkey: Option<&Path>,
    signing_key: Option<PathBuf>,
    exclude_unverified: bool,
) -> Result<u8> {
    use crate::export::ExportError;
    // The environment's signing key, when the config names one.
    let config = Config::load(&cli.config).ok();
    let env_key = config
        .as_ref()
        .and_then(|c| c.environments.get(env))
        .and_then(|e| e.signing_key.clone());
    let s = Signing {
        signing_key,
        ..Default::default()
    };
    let Some(signer) = signer(&s, env_key, config.as_ref())? else {
        return Err(UsageError("the export must be signed".into()).into());
    };
    let run_key = match pubkey {
        Some(p) => crate::sign::load_public(p)?,
        None => signer.verifying_key(),
    };
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| reports.join(format!("export-{env}-{quarter}.tar.gz")));
    if out.exists() {
        return Err(OutputError::Exists(out).into());
    }
    let req = crate::export::ExportRequest {
        env,
        quarter,
        reports_dir: reports,
        out: &out,
        exclude_unverified,
        now: chrono::Utc::now(),
    };
    match crate::export::export(&req, &signer, &run_key) {
        Ok(x) => {
            println!(
                "exported {} run(s) of `{env}` in {quarter} ({} to {}):",
                x.runs.len(),
                quarter.start().format("%Y-%m-%d"),
                (quarter.end() - chrono::Duration::days(1)).format("%Y-%m-%d")
            );
            for r in &x.runs {
                println!(
                    "  {} {} verdict {} · {}",
                    r.dir,
                    r.started_at.format("%Y-%m-%d %H:%M:%SZ"),
                    r.verdict,
                    r.verification
                );
            }
            for r in &x.excluded {
                println!("  EXCLUDED {}: {}", r.dir, r.verification);
            }
            println!(
                "archive: {} (signed, Ed25519 key id {}); check it with `epic-audit verify {} --pubkey PUBLIC_KEY`",
                x.path.display(),
                x.key_id,
                x.path.display()
            );
            Ok(0)
        }
        Err(e @ ExportError::Unverified(_)) => {
            eprintln!("epic-audit: {e}");
            Ok(1)
        }
        Err(e @ ExportError::NoRuns { .. }) => Err(UsageError(e.to_string()).into()),
        Err(ExportError::Io(e)) => Err(anyhow::anyhow!("writing the export: {e}")),
    }
}

fn verify_archive_cmd(path: &Path, key: &ed25519_dalek::VerifyingKey) -> Result<u8> {
    match crate::export::verify_archive(path, key) {
        Ok(v) => {
            let bad = v.runs.iter().filter(|(_, r)| r.is_err()).count();
            println!(
                "{}: archive {} · {} files signed by key {} ({} {}, {} run(s))",
                if bad == 0 { "VALID" } else { "INVALID" },
                path.display(),
                v.outer.files.len(),
                v.outer.key_id,
                v.outer.predicate["environment"].as_str().unwrap_or("?"),
                v.outer.predicate["quarter"].as_str().unwrap_or("?"),
                v.runs.len()
            );
            for (dir, r) in &v.runs {
                match r {
                    Ok(rv) => println!(
                        "  run {dir}: valid ({} files, verdict {})",
                        rv.files.len(),
                        rv.predicate["verdict"].as_str().unwrap_or("?")
                    ),
                    Err(problems) => {
                        println!("  run {dir}: INVALID");
                        for p in problems {
                            println!("    {p}");
                        }
                    }
                }
            }
            Ok(if bad == 0 { 0 } else { 1 })
        }
        Err(crate::export::ArchiveError::Unreadable(e)) => Err(UsageError(format!(
            "{} is neither a run directory nor a readable export archive: {e}",
            path.display()
        ))
        .into()),
        Err(crate::export::ArchiveError::Invalid(problems)) => {
            println!("INVALID: {}", path.display());
            for p in problems {
                println!("  {p}");
            }
            Ok(1)
        }
    }
}

fn load_policy(cli: &Cli) -> Result<Policy, ConfigError> {
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
fn signer(
    s: &Signing,
    env_key: Option<PathBuf>,
    config: Option<&Config>,
) -> Result<Option<crate::sign::RunSigner>> {
    if s.unsigned {
        return Ok(None);
    }
    let from_env = std::env::var_os(crate::sign::KEY_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let path = s.signing_key.clone().or(from_env).or_else(|| {
        let lab_dir = lab::default_dir();
        env_key.map(|k| config.map(|c| c.resolve_path(&k, &lab_dir)).unwrap_or(k))
    });
    match path {
        Some(p) => Ok(Some(crate::sign::RunSigner::load(&p)?)),
        None => Err(UsageError(format!(
            "no signing key: pass --signing-key FILE, set {} or `signing_key` in the environment \
             (`epic-audit keygen` makes one), or pass --unsigned for a report that says it is unsigned",
            crate::sign::KEY_ENV
        ))
        .into()),
    }
}

async fn run(cli: &Cli, args: &RunArgs) -> Result<u8> {
    let config = Config::load(&cli.config)?;
    let env = config.environment(&args.env)?;
    let policy = load_policy(cli)?;
    let selected = policy
        .select(&args.select.only, &args.select.skip)
        .map_err(UsageError)?;
    if let Some(out) = &args.out {
        if out.exists()
            && std::fs::read_dir(out)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(OutputError::Exists(out.clone()).into());
        }
    }
    let lab_dir = lab::default_dir();
    if env.lab && !lab::is_running(&lab_dir) {
        eprintln!("epic-audit: environment `{}` is the local lab and it is not running; starting it in {}", args.env, lab_dir.display());
        let mut spec = LabSpec::standard(lab_dir.clone());
        // The lab listens where the environment's first seed says.
        spec.port = env.seeds[0].port;
        Lab::up(spec)
            .await
            .context("starting the local lab")?
            .detach();
    }
    let tls = TlsClient::from_files(
        &config.resolve_path(&env.tls.ca, &lab_dir),
        &config.resolve_path(&env.tls.client_cert, &lab_dir),
        &config.resolve_path(&env.tls.client_key, &lab_dir),
        env.tls.server_name.clone(),
    )?;
    let user = env.audit_user.get_ref().clone();
    let password = config.resolve_secret(&args.env, &user, &lab_dir)?;
    let mut credentials = std::collections::BTreeMap::new();
    for name in env.users.keys() {
        credentials.insert(
            name.clone(),
            config.resolve_secret(&args.env, name, &lab_dir)?,
        );
    }
    // Resolved after the TLS material and secrets (a lab environment's key
    // is created by `lab up`), and still before any probe runs.
    let signer = signer(&args.signing, env.signing_key.clone(), Some(&config))?;
    let ctx = ProbeContext {
        targets: env.seeds.clone(),
        tls,
        timeouts: env.timeouts.clone(),
        user,
        password,
        credentials,
        inputs: engine::probe_inputs(&selected),
        topology: Default::default(),
        monitoring: env.monitoring.clone(),
        session_salt: crate::probes::data::RunSalt::random(),
        aws: env.aws.clone(),
    };
    let salt = ctx.session_salt.clone();
    let needed = engine::needed_probes(&selected);
    let evidence = engine::observe(&args.env, &env.seeds, ctx, &needed).await;
    let report = engine::judge(
        &evidence,
        &policy,
        &selected,
        &args.select.only,
        &args.select.skip,
    );
    let dest = match &args.out {
        Some(d) => d.clone(),
        None => output::default_run_dir(&Path::new("reports").join(&args.env), &evidence.run_id),
    };
    let code = write_and_print(
        &dest,
        &evidence,
        report,
        &policy,
        signer.as_ref(),
        args.signing.prom.as_deref(),
    )?;
    if needed.contains(crate::probes::data::SESSIONS_PROBE) {
        let file = write_salt(&dest, &salt)?;
        println!(
            "session keys appear in the report only as keyed hashes; the key (this run's salt) is in {} — keep it local",
            file.display()
        );
    }
    Ok(code)
}

fn write_and_print(
    dest: &Path,
    evidence: &EvidenceSet,
    mut report: Report,
    policy: &Policy,
    signer: Option<&crate::sign::RunSigner>,
    prom: Option<&Path>,
) -> Result<u8> {
    report.signature = match signer {
        Some(s) => format!(
            "DSSE envelope {} (in-toto Statement, Ed25519 key id {})",
            crate::sign::ENVELOPE,
            s.key_id()
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
            crate::report::html::render(&report).into_bytes(),
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
        let envelope = s.envelope(&files, predicate);
        let bytes = serde_json::to_vec_pretty(&envelope).context("serialising the envelope")?;
        files.push((crate::sign::ENVELOPE, bytes));
    }
    let dir = output::write_run(dest, &files)?;
    if let Some(p) = prom {
        output::write_file_atomic(p, crate::report::prom::render(&report).as_bytes())?;
    }
    print!("{}", terminal::render(&report, terminal::want_colour()));
    println!(
        "report: {}/ (report.html, report.md, report.json, junit.xml, assessment-results.json (OSCAL), evidence.json)",
        dir.display()
    );
    if let Some(s) = signer {
        println!(
            "signed: {}/{} (Ed25519 key id {}); check it with `epic-audit verify {} --pubkey PUBLIC_KEY`",
            dir.display(),
            crate::sign::ENVELOPE,
            s.key_id(),
            dir.display()
        );
    }
    Ok(report.exit_code)
}

/// Writes the run's salt next to (not inside) the run directory, 0600: an
/// operator can map a reported hash back to a key name with it
/// (`printf %s KEY | openssl dgst -sha256 -mac HMAC -macopt hexkey:$(cat FILE)`,
/// first 12 hex digits); the report itself never holds it.
fn write_salt(dest: &Path, salt: &crate::probes::data::RunSalt) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut name = dest
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".salt");
    let file = dest.with_file_name(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .with_context(|| format!("writing the session-hash salt {}", file.display()))?;
    f.write_all(format!("{}\n", hex::encode(salt.0)).as_bytes())?;
    Ok(file)
}

fn evaluate(
    cli: &Cli,
    path: &Path,
    out: Option<&Path>,
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
    let policy = load_policy(cli)?;
    let selected = policy
        .select(&select.only, &select.skip)
        .map_err(UsageError)?;
    let report = engine::judge(&evidence, &policy, &selected, &select.only, &select.skip);
    let dest = match out {
        Some(d) => d.to_path_buf(),
        None => {
            let now = engine::run_id(chrono::Utc::now());
            output::default_run_dir(
                &Path::new("reports").join(&evidence.environment),
                &format!("{}-evaluated-{now}", evidence.run_id),
            )
        }
    };
    let signer = signer(signing, None, None)?;
    write_and_print(
        &dest,
        &evidence,
        report,
        &policy,
        signer.as_ref(),
        signing.prom.as_deref(),
    )
}

/// The `checks` listing.
pub fn render_catalogue(p: &Policy, format: Format) -> String {
    match format {
        Format::Json => {
            let v: Vec<serde_json::Value> = p
                .checks
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "id": c.id, "area": c.area, "severity": c.severity, "title": c.title,
                        "hipaa": c.hipaa, "rule": c.rule, "enabled": c.enabled, "params": c.params,
                    })
                })
                .collect();
            serde_json::to_string_pretty(&v).expect("catalogue serialises") + "\n"
        }
        Format::Table => {
            let mut s = format!(
                "{:<8} {:<11} {:<9} {:<58} {}\n",
                "ID", "AREA", "SEVERITY", "TITLE", "HIPAA (45 CFR)"
            );
            for c in &p.checks {
                let title = if c.enabled {
                    c.title.clone()
                } else {
                    format!("{} (disabled)", c.title)
                };
                s.push_str(&format!(
                    "{:<8} {:<11} {:<9} {:<58} {}\n",
                    c.id,
                    c.area.to_string(),
                    c.severity.to_string(),
                    title,
                    c.hipaa.join(", ")
                ));
            }
            s.push_str(&format!(
                "\n{} checks from {} policy (digest {}). `epic-audit explain ID` for details.\n",
                p.checks.len(),
                p.source,
                &p.digest[..12]
            ));
            s
        }
    }
}

/// The `explain` text.
pub fn explain(c: &crate::policy::CheckDef) -> String {
    let rules = crate::checks::registry();
    let method = rules
        .get(c.rule.as_str())
        .map(|r| r.method)
        .unwrap_or("(unknown rule)");
    let indent = |t: &str| {
        t.trim()
            .lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let params = if c.params.is_empty() {
        "  (none)".to_string()
    } else {
        indent(&toml::to_string(&c.params).unwrap_or_default())
    };
    format!(
        "{id}  {title}\n\
         area: {area} · severity: {sev} · HIPAA (45 CFR): {hipaa}\n\
         rule: {rule} (defined in {src}){disabled}\n\n\
         Why it matters\n{why}\n\n\
         How it is probed\n{how}\n\n\
         Parameters\n{params}\n\n\
         How to fix\n{fix}\n",
        id = c.id,
        title = c.title,
        area = c.area,
        sev = c.severity,
        hipaa = c.hipaa.join(", "),
        rule = c.rule,
        src = c.source,
        disabled = if c.enabled {
            ""
        } else {
            "\nDISABLED in the policy: reported as skip"
        },
        why = indent(&c.rationale),
        how = indent(&textwrap(method, 76)),
        fix = indent(&c.remediation),
    )
}

fn textwrap(s: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for w in s.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + w.len() > width {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    out.push_str(&line);
    out
}

async fn lab_cmd(action: &LabAction, dir: PathBuf) -> Result<u8> {
    match action {
        LabAction::Up { port, no_aws } => {
            let mut spec = LabSpec::standard(dir.clone());
            spec.port = *port;
            spec.aws = !no_aws;
            let lab = Lab::up(spec).await?;
            println!("lab up: 3 masters + 3 replicas, TLS 1.3 only, ACLs on");
            for (i, n) in lab.state.nodes.iter().enumerate() {
                println!(
                    "  node{} {}:{} {:<7} pid {}",
                    i + 1,
                    n.ip,
                    lab.state.port,
                    n.role,
                    n.pid
                );
            }
            if let Some(e) = &lab.state.emulator {
                println!(
                    "  EC2/KMS emulator (moto) http://{} pid {}: VPC 10.0.0.0/16, 3 instances tagged {}={}, redis-cluster-sg, encrypted volumes on a rotating customer key",
                    e.listen,
                    e.pid,
                    lab::aws::TAG.0,
                    lab::aws::TAG.1
                );
            }
            println!(
                "state, logs and generated passwords (0600): {}",
                dir.display()
            );
            println!(
                "signing key pair for the lab's reports: {}/signing/epic-audit-signing.{{key,pub}}",
                dir.display()
            );
            println!("audit it:  epic-audit run --env local");
            println!("stop it:   epic-audit lab down");
            lab.detach();
            Ok(0)
        }
        LabAction::Down => {
            let pids = lab::down(&dir)?;
            if pids.is_empty() {
                println!("no lab processes were running in {}", dir.display());
            } else {
                println!(
                    "stopped {} redis-server processes (pids {:?}) and removed {}",
                    pids.len(),
                    pids,
                    dir.display()
                );
            }
            Ok(0)
        }
        LabAction::Status => lab_status(&dir).await,
    }
}

async fn lab_status(dir: &Path) -> Result<u8> {
    let Some(state) = lab::read_state(dir) else {
        println!(
            "no lab in {} (start one with `epic-audit lab up`)",
            dir.display()
        );
        return Ok(1);
    };
    let pki = dir.join("pki");
    let tls = TlsClient::from_files(
        &pki.join("ca.crt"),
        &pki.join("client.crt"),
        &pki.join("client.key"),
        None,
    )?;
    let pw = std::fs::read_to_string(dir.join("secrets/admin_user.pass")).unwrap_or_default();
    let pw = crate::secret::Secret::new(pw.trim_end());
    let timeouts = crate::config::Timeouts {
        connect_ms: 1000,
        command_ms: 1000,
        probe_ms: 2000,
    };
    let mut healthy = true;
    println!("lab in {} (started {})", dir.display(), state.started_at);
    for (i, n) in state.nodes.iter().enumerate() {
        let addr = crate::config::NodeAddr {
            host: n.ip.clone(),
            port: state.port,
        };
        let running = std::fs::read(format!("/proc/{}/cmdline", n.pid))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("redis-server"));
        let answer =
            match crate::resp::RedisConn::connect_as(&addr, &tls, &timeouts, "admin_user", &pw)
                .await
            {
                Ok(mut c) => match c.cmd_str(&["CLUSTER", "INFO"]).await {
                    Ok(f) => crate::resp::as_text(&f)
                        .map(|t| {
                            crate::resp::parse_info(&t)
                                .get("cluster_state")
                                .cloned()
                                .unwrap_or_default()
                        })
                        .map(|s| format!("cluster_state:{s}"))
                        .unwrap_or_else(|| "answers".into()),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
        healthy &= running && answer == "cluster_state:ok";
        println!(
            "  node{} {addr} {:<7} pid {} {} · {answer}",
            i + 1,
            n.role,
            n.pid,
            if running { "running" } else { "NOT RUNNING" }
        );
    }
    if let Some(e) = &state.emulator {
        let port = e.listen.rsplit_once(':').and_then(|(_, p)| p.parse().ok());
        let answers = match port {
            Some(p) => lab::aws::wait_ready(p, std::time::Duration::from_millis(500))
                .await
                .is_ok(),
            None => false,
        };
        healthy &= answers;
        println!(
            "  EC2/KMS emulator http://{} pid {} · {}",
            e.listen,
            e.pid,
            if answers { "answers" } else { "NOT ANSWERING" }
        );
    }
    Ok(if healthy { 0 } else { 1 })
}
