//! The body of each CLI command, one file per command, and the dispatch
//! from parsed arguments ([`crate::cli`]) to them with the mapping of
//! results to exit codes. What several commands share is in [`shared`].

use std::process::ExitCode;

use anyhow::Result;

use clap::Parser;

use crate::cli::{Cli, Command, UsageError};
use crate::probes::cleanup::LatencyCleanup;
use crate::report::{EXIT_RUNTIME, EXIT_USAGE};
use shared::{error_exit_code, load_policy};

pub(crate) mod acknowledge;
pub(crate) mod catalogue;
pub(crate) mod diff;
pub(crate) mod evaluate;
pub(crate) mod export;
pub(crate) mod fleet;
pub(crate) mod keygen;
pub(crate) mod run;
pub(crate) mod shared;
pub(crate) mod stored;
pub(crate) mod verify;

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

async fn dispatch(cli: Cli, latency: &LatencyCleanup) -> Result<u8> {
    match &cli.command {
        Command::Run(args) => match args.env.as_slice() {
            [one] => run::run_one(&cli, args, one, true, latency)
                .await
                .map(|w| w.exit_code()),
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
            accepted_builds,
            select,
            signing,
        } => evaluate::evaluate(
            &cli,
            evidence,
            out.as_deref(),
            accepted_builds.as_deref(),
            select,
            signing,
        ),
        Command::Diff { run_a, run_b } => diff::diff(run_a, run_b),
        Command::Keygen { out } => keygen::keygen(out),
        Command::PrintAcl { user, role } => {
            let p = load_policy(&cli)?;
            print!("{}", catalogue::print_acl(&p, user.as_deref(), *role));
            Ok(0)
        }
        Command::PrintIam { store, kms_key_arn } => {
            if let Some(arn) = kms_key_arn.as_deref() {
                if !arn.starts_with("arn:") || !arn.contains(":kms:") || !arn.contains(":key/") {
                    return Err(UsageError(format!(
                        "--kms-key-arn {arn:?}: give the key's ARN (arn:aws:kms:REGION:ACCOUNT:key/ID); \
                         an alias does not restrict a policy's resource"
                    ))
                    .into());
                }
            }
            let p = crate::iam::policy(
                store
                    .as_ref()
                    .map(|s| (s.bucket.as_str(), s.prefix.as_str())),
                kms_key_arn.as_deref(),
            );
            println!("{}", serde_json::to_string_pretty(&p)?);
            Ok(0)
        }
        Command::Export {
            env,
            quarter,
            out,
            reports,
            pubkey,
            ack_pubkey,
            signing_key,
            exclude_unverified,
            from,
            store,
        } => export::export(
            &cli,
            env,
            *quarter,
            out.as_deref(),
            reports,
            pubkey.as_deref(),
            ack_pubkey,
            signing_key.clone(),
            *exclude_unverified,
            export::Stores {
                from: from.as_ref(),
                keep: store.as_ref(),
            },
        ),
        Command::Verify {
            path,
            pubkey,
            ack_pubkey,
        } => verify::verify(&cli, path, pubkey, ack_pubkey),
        Command::Acknowledge {
            env,
            missing,
            reason,
            reports,
            signing_key,
            store,
        } => acknowledge::acknowledge(
            &cli,
            env,
            missing,
            reason,
            reports,
            signing_key.clone(),
            store.as_ref(),
        ),
    }
}
