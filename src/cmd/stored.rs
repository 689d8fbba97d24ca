//! Keeping evidence in the store: which store a command uses (`--store`,
//! else the environment's `evidence_store`), and writing a signed run so
//! that it chains after the store's head and is kept there, write-once.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::{Config, Environment};
use crate::evidence::EvidenceSet;
use crate::policy::Policy;
use crate::report::Report;
use crate::run::{Stored, Written};
use crate::store::{Store, StoreUrl, DEFAULT_RETENTION_YEARS};

/// The store to use: `flag`, else the environment's `evidence_store`.
pub(crate) fn store_url(flag: Option<&StoreUrl>, env: Option<&Environment>) -> Option<StoreUrl> {
    flag.cloned()
        .or_else(|| env.and_then(|e| e.evidence_store.clone()))
}

/// The environment `name` of `config`, when there is a config and it has
/// one (commands that work without a config use its AWS settings if
/// present).
pub(crate) fn config_env<'a>(config: Option<&'a Config>, name: &str) -> Option<&'a Environment> {
    config.and_then(|c| c.environments.get(name))
}

/// A directory removed when dropped (runs fetched from a store).
pub(crate) struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fetches `env`'s chain from the store at `url` into a scratch reports
/// directory: every stored manifest (for the chain), every file of the
/// runs that started when `wanted` says, and the acknowledgements.
/// Returns the scratch directory and how many whole runs it holds.
pub(crate) fn fetch_chain(
    url: &StoreUrl,
    env_conf: Option<&Environment>,
    env: &str,
    wanted: &dyn Fn(chrono::DateTime<chrono::Utc>) -> bool,
) -> Result<(Scratch, usize)> {
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "epic-audit-chain-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )));
    let store = crate::aws::block_on(open(url.clone(), env_conf));
    let n = crate::aws::block_on(store.fetch_env(env, &scratch.0, wanted))
        .map_err(|e| anyhow::anyhow!("reading the runs of `{env}` from {url}: {e}"))?;
    Ok((scratch, n))
}

/// The store at `url`, reached with `env`'s AWS settings, deadlines,
/// retention and lock mode (none: the standard AWS chain, default
/// deadlines, six years, compliance mode).
pub(crate) async fn open(url: StoreUrl, env: Option<&Environment>) -> Store {
    let timeouts = env.map(|e| e.timeouts.clone()).unwrap_or_default();
    Store::connect(
        url,
        env.and_then(|e| e.aws.as_ref()),
        &timeouts,
        env.map(|e| e.evidence_lock_mode).unwrap_or_default(),
        env.map_or(DEFAULT_RETENTION_YEARS, |e| e.evidence_retention_years),
    )
    .await
}

/// Writes a judged run to `dest` and, when `store` is given and the run is
/// signed, keeps it there: the run chains after the store's head (or, for
/// the first stored run, after the newest run beside `dest`), every file
/// is uploaded locked and read back, and the head advances to it. A store
/// that fails leaves the run written locally and is reported in
/// [`Written::stored`] (the command then exits 4).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write_run(
    dest: &Path,
    evidence: &EvidenceSet,
    report: Report,
    policy: &Policy,
    signer: Option<&crate::sign::RunSigner>,
    prom: Option<&Path>,
    store: Option<&Store>,
) -> Result<Written> {
    let env = evidence.environment.as_str();
    // The chain head, read before signing (only a signed run is stored),
    // and the link it gives: after the store's head; for the first stored
    // run, after the newest run beside `dest` (as without a store).
    let head = match (store, signer) {
        (Some(s), Some(_)) => Some(s.head(env).await.map(|h| {
            let link = match &h.record {
                Some(r) => r.next(),
                None => crate::run::chain::next(dest.parent().unwrap_or(Path::new(".")), env),
            };
            (h, link)
        })),
        _ => None,
    };
    let link = match &head {
        Some(Ok((_, l))) => Some(l.clone()),
        _ => None,
    };
    let mut w = crate::run::write(dest, evidence, report, policy, signer, prom, link)?;
    w.stored = match (store, head) {
        (None, _) => None,
        (Some(s), None) => Some(Stored::Skipped(format!(
            "not stored in {}: an unsigned run is not evidence",
            s.url
        ))),
        (Some(s), Some(Err(e))) => Some(Stored::Failed(format!(
            "not stored in {}: reading its chain head failed: {e}",
            s.url
        ))),
        (Some(s), Some(Ok((h, link)))) => Some(
            match s
                .put_run(
                    env,
                    &w.dir,
                    &link,
                    &h,
                    w.report.started_at,
                    &w.report.run_id,
                )
                .await
            {
                Ok(r) => Stored::Yes(format!(
                    "{r}; chain: run {}{}",
                    link.sequence,
                    link.previous
                        .as_ref()
                        .map(|p| format!(" after {}", p.dir))
                        .unwrap_or_else(|| " (the first)".into())
                )),
                Err(e) => Stored::Failed(format!("storing the run in {} failed: {e}", s.url)),
            },
        ),
    };
    Ok(w)
}

/// Keeps one more signed file of `env` (an acknowledgement, an export) in
/// the store `flag` names, else the environment's: prints where, or the
/// error and that `file` is kept locally. The command's exit code: 0, or 4
/// when storing failed; 0 with no store.
pub(crate) fn keep_file(
    flag: Option<&StoreUrl>,
    env_conf: Option<&Environment>,
    env: &str,
    folder: &str,
    file: &Path,
    what: &str,
) -> u8 {
    let Some(url) = store_url(flag, env_conf) else {
        return 0;
    };
    let store = crate::aws::block_on(open(url.clone(), env_conf));
    match crate::aws::block_on(store.put_file(env, folder, file)) {
        Ok(at) => {
            println!(
                "stored: {at} (Object Lock {}, {} years)",
                store.mode.as_str(),
                store.years
            );
            0
        }
        Err(e) => {
            eprintln!(
                "epic-audit: storing the {what} in {url} failed: {e}; it is kept at {}",
                file.display()
            );
            crate::report::EXIT_RUNTIME
        }
    }
}
