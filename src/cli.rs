//! Command-line interface: the arguments and their help text, nothing else.
//! Each command's body is in [`crate::cmd`], which also dispatches and maps
//! results to exit codes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes (for CI gates):
  0  every check passed (warnings and waivers allowed)
  1  at least one check failed
  2  at least one check could not decide (error) or was not audited
     (incomplete: e.g. no [aws] table for the AWS checks), none failed;
     only --skip/--only or `enabled = false` leave a check out of the verdict
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
pub(crate) struct Cli {
    /// Config file with the environments [default: epic-audit.toml].
    /// Commands that can work without one (evaluate, verify, export,
    /// acknowledge) use the default file only when it is there; a file
    /// named here must load. A config that is there is always read whole:
    /// any error in it stops the command (exit 3).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Policy directory (checks/*.toml). Default: `checks/` next to the
    /// config file if it exists, else the policy built into the binary.
    #[arg(long, global = true, value_name = "DIR")]
    pub policy: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The config file's path: `--config`, else `epic-audit.toml`.
    pub(crate) fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    }

    /// The whole config, for commands that need an environment (`run`).
    pub(crate) fn config(&self) -> Result<crate::config::Config, crate::config::ConfigError> {
        crate::config::Config::load(&self.config_path())
    }

    /// The config, for commands that can work without one: see
    /// [`crate::config::load_optional`].
    pub(crate) fn optional_config(
        &self,
    ) -> Result<Option<crate::config::Config>, crate::config::ConfigError> {
        crate::config::load_optional(&self.config_path(), self.config.is_some())
    }
}

/// The config file used when `--config` is not given.
pub(crate) const DEFAULT_CONFIG: &str = "epic-audit.toml";

/// An environment name given on the command line: a plain name, since
/// directories are made from it.
fn env_name(s: &str) -> Result<String, String> {
    crate::config::plain_name(s).map(|()| s.to_string())
}

/// Whose ACL line `print-acl` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AclRole {
    /// The least-privilege audit user.
    Auditor,
    /// The exporters' user.
    Exporter,
}

/// A user name `print-acl` may print a line for: one Redis accepts in an
/// ACL file (no whitespace or control characters, not empty), and not
/// `default`, whose line would enable the user ACC-004 requires off.
fn acl_user_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("the user name is empty".into());
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{s:?} holds {c:?}: Redis ACL files separate rules by spaces, so a user name has no \
             whitespace or control characters"
        ));
    }
    if s == "default" {
        return Err(
            "`default` is the user every unauthenticated connection is; the policy requires it \
             disabled (ACC-004), and this line would enable it: name a user of its own, e.g. auditor"
                .into(),
        );
    }
    Ok(s.to_string())
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Audit one environment and write its report.
    ///
    /// Discovers every node from the seeds (CLUSTER SHARDS), runs the probes
    /// the selected checks need, judges, and writes evidence.json,
    /// report.json and junit.xml. For the local lab's environment, start
    /// the lab first with `epic-audit-lab up`.
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
    /// The result is a re-evaluation of the run that observed: its own run
    /// id (<run-id>-evaluated-<now>), the observed run's id beside it in
    /// the report, `diff` and the chain, and what it was judged with
    /// (policy, accepted builds, waivers) above the verdict. Writes
    /// report.json and junit.xml (and a copy of the evidence) to --out, or
    /// to reports/<env>/<run-id>-evaluated-<now>/.
    #[command(after_help = EXIT_CODES)]
    Evaluate {
        /// The evidence.json of an earlier run.
        evidence: PathBuf,
        /// Output directory (created; must not hold a run).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Server builds to accept for PATCH-001 (a file of `[[build]]`
        /// entries, as an environment's `accepted_builds`), or `none`.
        /// Default: the file the evidence's environment names in the
        /// config. When that file cannot be read, or the observed run's
        /// report.json says it used accepted builds that no config here
        /// names, evaluate stops (exit 3) rather than judge with fewer.
        #[arg(long, value_name = "FILE")]
        accepted_builds: Option<PathBuf>,
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
    /// Print the ACL of a least-privilege user, to paste into the aclfile
    /// of every node (then ACL LOAD), or to apply with ACL SETUSER: the
    /// audit user (default), or the exporters' user.
    ///
    /// The audit user is read-only: cluster and INFO state, CONFIG GET, the
    /// ACL tables and ACL DRYRUN (which evaluates, never executes),
    /// COMMAND, and SCAN/TTL/TYPE on keys under the policy's session
    /// pattern (read-only key permission). It cannot write a key, change
    /// configuration or users. Then name it in the environment:
    /// `audit_user = "auditor"` and `[environments.NAME.users.auditor]
    /// password_file = "..."`.
    ///
    /// The exporters' user (`--role exporter`, or a --user the policy
    /// names as MON-007's, `exporter` by default) gets exactly the
    /// commands prometheus-redis-exporter sends with its default flags: no
    /// key, no channel, no write. MON-007 proves it on every node.
    ///
    /// Examples: epic-audit print-acl --user auditor
    ///           epic-audit print-acl --user exporter
    PrintAcl {
        /// The user's name: no spaces or control characters, and not
        /// `default` (which the policy requires disabled).
        #[arg(long, value_name = "NAME", value_parser = acl_user_name)]
        user: Option<String>,
        /// Whose line: `auditor` (the audit user) or `exporter` (the
        /// exporters'). Default: `exporter` when --user is the user the
        /// policy's MON-007 judges, else `auditor`.
        #[arg(long, value_enum)]
        role: Option<AclRole>,
    },
    /// Print the least-privilege IAM policy (JSON) for the AWS calls
    /// epic-audit makes: the AWS probe's read-only discovery (always), the
    /// evidence store's on its bucket and prefix (--store), and KMS
    /// signing with one key (--kms-key-arn). Generated from the table of
    /// operations the code calls, so it names nothing more.
    ///
    /// Example: epic-audit print-iam --store s3://hipaa-evidence/epic-audit --kms-key-arn arn:aws:kms:...
    PrintIam {
        /// The evidence store (s3://BUCKET/PREFIX) to grant writing to.
        #[arg(long, value_name = "S3_URL")]
        store: Option<crate::store::StoreUrl>,
        /// The ARN of the KMS key runs are signed with (awskms:...).
        #[arg(long, value_name = "ARN")]
        kms_key_arn: Option<String>,
    },
    /// Write a new Ed25519 signing key pair (private key 0600; never overwrites).
    ///
    /// Example: epic-audit keygen --out /etc/epic-audit/signing
    Keygen {
        /// Directory for epic-audit-signing.key and epic-audit-signing.pub.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Verify a signed run directory, an environment's directory of runs,
    /// or a quarterly export archive: the DSSE signature and every file's
    /// digest (and, in an archive, every run's own signature). Names each
    /// modified, missing or added file. For a directory of runs
    /// (reports/<env>) also the chain of runs: every missing run number,
    /// predecessor digest that does not match, fork and run out of time
    /// order, unless a signed acknowledgement covers the gap.
    ///
    /// Exit codes: 0 valid, 1 invalid (tampered, signed by another key, or
    /// a break in the chain), 3 usage problem (unreadable key, directory or
    /// archive).
    Verify {
        /// A run directory (holding manifest.dsse.json), an environment's
        /// directory of runs (reports/<env>), or an export .tar.gz.
        path: PathBuf,
        /// The signer's public key: SPKI PEM, Ed25519 (from `epic-audit
        /// keygen`) or ECDSA P-256 (a P-256 file key, or a KMS key's
        /// GetPublicKey).
        #[arg(long, value_name = "FILE")]
        pubkey: PathBuf,
        /// For a directory of runs: the public key(s) acknowledgements of
        /// gaps must be signed by (repeatable). Default: the environment's
        /// `acknowledgement_pubkeys` when the config names the directory's
        /// environment, else --pubkey.
        #[arg(long, value_name = "FILE")]
        ack_pubkey: Vec<PathBuf>,
    },
    /// Acknowledge runs missing from an environment's chain of signed runs
    /// (e.g. lost with a CI runner's disk): writes a signed record naming
    /// the missing run numbers, the signed runs on either side of the gap
    /// (run ids and manifest digests) and why, into
    /// REPORTS/<env>/acknowledgements/. `verify` and `export` then list the
    /// gap as acknowledged instead of failing on it.
    ///
    /// Only a gap that exists can be acknowledged: --missing must name a
    /// whole gap of the chain as `verify` reports it, between signed runs
    /// that are there (or before the first run on disk). A record never
    /// excuses a gap in advance, a run that is present, a replaced run, a
    /// fork or a run out of order; if a run it names is later replaced,
    /// `verify` and `export` reject the record. The chain judged is the
    /// evidence store's when one is named (--store or the environment's
    /// `evidence_store`), else REPORTS/<env>/. With
    /// `acknowledgement_pubkeys` in the environment, sign with one of
    /// those keys (--signing-key), not the runs' key.
    Acknowledge {
        /// Environment name (the REPORTS/<env>/ directory).
        #[arg(long, value_name = "NAME", value_parser = env_name)]
        env: String,
        /// The missing run number, or the range, exactly as `verify`/`export`
        /// named the gap: `5` or `5-7`.
        #[arg(long, value_name = "N[-M]")]
        missing: String,
        /// Why they are missing, for the auditors (e.g. "run of 2026-11-14
        /// lost with the CI runner's disk, ticket OPS-123").
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Directory holding <env>/<run> directories.
        #[arg(long, value_name = "DIR", default_value = "reports")]
        reports: PathBuf,
        /// Key to sign the record with. Default: $EPIC_AUDIT_SIGNING_KEY,
        /// then the environment's `signing_key` (with
        /// `acknowledgement_pubkeys` set, give one of those keys' private
        /// halves instead).
        #[arg(long, value_name = "FILE")]
        signing_key: Option<PathBuf>,
        /// Also keep the record in this evidence store, write-once, under
        /// <env>/acknowledgements/ (where `export --from` reads it).
        /// Default: the environment's `evidence_store`.
        #[arg(long, value_name = "S3_URL")]
        store: Option<crate::store::StoreUrl>,
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
        #[arg(long, value_name = "NAME", value_parser = env_name)]
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
        /// Public key(s) acknowledgements of gaps must be signed by
        /// (repeatable). Default: the environment's
        /// `acknowledgement_pubkeys`, else the runs' key.
        #[arg(long, value_name = "FILE")]
        ack_pubkey: Vec<PathBuf>,
        /// Key to sign the archive: a PKCS#8 PEM file (Ed25519 or ECDSA
        /// P-256) or awskms:alias/NAME. Default: $EPIC_AUDIT_SIGNING_KEY,
        /// then the environment's `signing_key`.
        #[arg(long, value_name = "FILE")]
        signing_key: Option<PathBuf>,
        /// Export the runs that verify and list the others as excluded.
        #[arg(long)]
        exclude_unverified: bool,
        /// Read the runs from this evidence store (s3://BUCKET/PREFIX, as
        /// `run --store` wrote them) instead of REPORTS: every stored
        /// manifest is read for the chain, and every file of the quarter's
        /// runs. The archive still goes to --out (default under REPORTS).
        #[arg(long, value_name = "S3_URL")]
        from: Option<crate::store::StoreUrl>,
        /// Also keep the archive in this evidence store, write-once, under
        /// <env>/exports/. Default: the environment's `evidence_store`.
        #[arg(long, value_name = "S3_URL")]
        store: Option<crate::store::StoreUrl>,
    },
}

/// Table or JSON.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns.
    Table,
    /// JSON array.
    Json,
}

/// `run` arguments.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Environment name from the config (e.g. local, staging, prod).
    /// Repeat it to audit a fleet: the environments are audited
    /// concurrently (at most --max-concurrent at a time), each into its own
    /// run directory as when audited alone, and a fleet summary (one line
    /// per environment, an overall verdict and exit code) is printed and
    /// written with a combined JUnit file (one suite per environment and
    /// area) to --fleet-out.
    #[arg(long, value_name = "NAME", required = true, value_parser = env_name)]
    pub env: Vec<String>,
    /// With several --env: how many environments are audited at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent: u16,
    /// With several --env: where the fleet summary (fleet.json, junit.xml)
    /// goes. Default: reports/fleet/<fleet-id>/.
    #[arg(long, value_name = "DIR")]
    pub fleet_out: Option<PathBuf>,
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
pub(crate) struct Signing {
    /// Key to sign with: a PKCS#8 PEM file (Ed25519 or ECDSA P-256), or an
    /// AWS KMS key as awskms:alias/NAME (ECC_NIST_P256, SIGN_VERIFY; reached
    /// with the environment's [aws] settings). Default:
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
    /// Also keep the signed run in this evidence store, write-once:
    /// s3://BUCKET/PREFIX (a bucket created with Object Lock). Every file
    /// is uploaded with S3 Object Lock (the environment's
    /// evidence_lock_mode, default COMPLIANCE) until the run's start plus
    /// evidence_retention_years (default 6) and a SHA-256 checksum, then
    /// read back and compared; the run chains after the store's newest run,
    /// so runs from several machines form one chain. A failed upload keeps
    /// the local copy and exits 4. Default: the environment's
    /// `evidence_store`.
    #[arg(long, value_name = "S3_URL")]
    pub store: Option<crate::store::StoreUrl>,
}

/// Check selection.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct Select {
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
pub(crate) struct UsageError(pub String);
