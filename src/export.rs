//! The quarterly evidence export: every signed run of one environment in a
//! calendar quarter, each verified, packed into one signed `.tar.gz` with a
//! control-by-control history, the waivers that applied and an index page.
//!
//! Archive layout (one top directory, `epic-audit-<env>-<quarter>/`):
//!
//! ```text
//! runs/<run-dir>/...     each run directory, byte for byte (with its own manifest)
//! history.json           per check: outcome in every run, first failure, fix date
//! safeguards.json        per HIPAA provision: its status in every run (same rules as each report)
//! waivers.json           waivers in force during the quarter, and what they waived
//! export.json            environment, quarter, runs, how each was verified, exclusions
//! index.html             the above for people (self-contained)
//! manifest.dsse.json     DSSE envelope over every other file (in-toto Statement)
//! ```
//!
//! `epic-audit verify ARCHIVE --pubkey K` checks the archive's envelope and
//! every digest, then every run's own envelope.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::checks::Outcome;
use crate::report::html::esc;
use crate::report::Report;
use crate::sign::{PublicKey, RunSigner, BUNDLE, ENVELOPE};

/// Predicate type of an export's in-toto Statement.
pub const PREDICATE_TYPE: &str = "https://epic-audit.invalid/predicate/quarterly-export/v1";

/// A calendar quarter, `2026-Q4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quarter {
    /// Year.
    pub year: i32,
    /// 1 to 4.
    pub q: u32,
}

impl std::str::FromStr for Quarter {
    type Err = String;
    fn from_str(s: &str) -> Result<Quarter, String> {
        let bad = || format!("`{s}` is not a quarter like 2026-Q4");
        let (y, q) = s
            .split_once("-Q")
            .or_else(|| s.split_once("-q"))
            .ok_or_else(bad)?;
        let year: i32 = y.parse().map_err(|_| bad())?;
        let q: u32 = q.parse().map_err(|_| bad())?;
        if !(1..=4).contains(&q) || !(1970..=9999).contains(&year) {
            return Err(bad());
        }
        Ok(Quarter { year, q })
    }
}

impl std::fmt::Display for Quarter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-Q{}", self.year, self.q)
    }
}

impl Quarter {
    /// First instant of the quarter (UTC).
    pub fn start(&self) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(self.year, 3 * self.q - 2, 1, 0, 0, 0)
            .single()
            .expect("a valid date")
    }

    /// First instant after the quarter (UTC).
    pub fn end(&self) -> DateTime<Utc> {
        if self.q == 4 {
            Quarter {
                year: self.year + 1,
                q: 1,
            }
            .start()
        } else {
            Quarter {
                year: self.year,
                q: self.q + 1,
            }
            .start()
        }
    }

    /// True when `t` falls in the quarter.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start() <= t && t < self.end()
    }
}

/// One run directory found for the export.
#[derive(Debug, Clone, Serialize)]
pub struct RunEntry {
    /// Directory name (kept in the archive as `runs/<dir>`).
    pub dir: String,
    /// Run id.
    pub run_id: String,
    /// When probing started.
    pub started_at: DateTime<Utc>,
    /// Verdict.
    pub verdict: String,
    /// Exit code.
    pub exit_code: u8,
    /// `valid (key <id>)`, or what failed.
    pub verification: String,
}

/// One check across the quarter.
#[derive(Debug, Clone, Serialize)]
pub struct CheckHistory {
    /// Check id.
    pub id: String,
    /// Title (from the latest run).
    pub title: String,
    /// HIPAA citations.
    pub hipaa: Vec<crate::hipaa::Citation>,
    /// Outcome per run, in run order (`not run` where it was not selected).
    pub outcomes: Vec<String>,
    /// First run (id, start) in which it failed.
    pub first_failure: Option<(String, DateTime<Utc>)>,
    /// The first run after its last failure in which it no longer failed,
    /// when it does not fail at the end of the quarter.
    pub fixed: Option<(String, DateTime<Utc>)>,
    /// Outcome in the last run of the quarter that ran it.
    pub last: String,
}

/// A waiver in force during the quarter.
#[derive(Debug, Clone, Serialize)]
pub struct WaiverUse {
    /// The waiver (check, subject, reason, approver, expires).
    pub waiver: crate::waivers::Waiver,
    /// Runs in which it was in force.
    pub in_force_in: Vec<String>,
    /// Runs in which it turned a failing subject into `waived`.
    pub waived_in: Vec<String>,
}

/// What an export wrote.
#[derive(Debug)]
pub struct Exported {
    /// The archive.
    pub path: PathBuf,
    /// Runs included.
    pub runs: Vec<RunEntry>,
    /// Runs left out (with `--exclude-unverified`) and why.
    pub excluded: Vec<RunEntry>,
    /// Key id of the signer.
    pub key_id: String,
}

/// Why an export was not written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Nothing to export.
    #[error("no run of environment `{env}` started in {quarter} ({from} to {to}) under {dir}")]
    NoRuns {
        /// Environment.
        env: String,
        /// Quarter.
        quarter: Quarter,
        /// Start.
        from: String,
        /// End.
        to: String,
        /// Where runs were looked for.
        dir: String,
    },
    /// Some runs do not verify.
    #[error("{} run(s) of the quarter do not verify, so the export would not be evidence:\n{}\n(fix or remove them, or pass --exclude-unverified to export the rest and list these as excluded)", .0.len(), .0.iter().map(|r| format!("  {}: {}", r.dir, r.verification)).collect::<Vec<_>>().join("\n"))]
    Unverified(Vec<RunEntry>),
    /// File system.
    #[error("{0}")]
    Io(String),
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest<'a> {
    /// Environment (the `<reports>/<env>/` directory).
    pub env: &'a str,
    /// The quarter.
    pub quarter: Quarter,
    /// Directory holding `<env>/<run>/` directories.
    pub reports_dir: &'a Path,
    /// The archive to write.
    pub out: &'a Path,
    /// Export the runs that verify and list the others as excluded.
    pub exclude_unverified: bool,
    /// The export's timestamp.
    pub now: DateTime<Utc>,
}

/// Finds, verifies and exports the runs of the request, signed by
/// `signer`; runs must verify against `run_key`.
pub fn export(
    req: &ExportRequest<'_>,
    signer: &RunSigner,
    run_key: &PublicKey,
) -> Result<Exported, ExportError> {
    let ExportRequest {
        env,
        quarter,
        reports_dir,
        out,
        exclude_unverified,
        now,
    } = req.clone();
    let base = reports_dir.join(env);
    let mut found: Vec<(RunEntry, Option<Report>, PathBuf)> = Vec::new();
    let rd = std::fs::read_dir(&base)
        .map_err(|e| ExportError::Io(format!("cannot read {}: {}", base.display(), e.kind())))?;
    for e in rd.filter_map(Result::ok) {
        let dir = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || !dir.is_dir() {
            continue;
        }
        let mut report = std::fs::read_to_string(dir.join("report.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Report>(&t).ok());
        // The history needs outcomes, and waived subjects for the waivers:
        // keep only those, so a quarter of thousands of runs stays small.
        if let Some(r) = report.as_mut() {
            for c in r.checks.iter_mut() {
                c.subjects.retain(|s| s.outcome == Outcome::Waived);
            }
        }
        // When it ran: from its report, else from its (still unverified)
        // manifest, else from a run-id directory name. A damaged run in the
        // quarter must be reported, never silently left out.
        let Some((run_env, started_at)) = report
            .as_ref()
            .map(|r| (r.environment.clone(), r.started_at))
            .or_else(|| claimed_by_manifest(&dir))
            .or_else(|| started_from_name(&name).map(|t| (env.to_string(), t)))
        else {
            continue;
        };
        if run_env != env || !quarter.contains(started_at) {
            continue;
        }
        let verification = match (crate::sign::verify(&dir, run_key), &report) {
            (Ok(v), Some(_)) => format!("valid (key {})", v.key_id),
            (Ok(_), None) => "report.json is not a readable epic-audit report".into(),
            (Err(problems), _) => problems.join("; "),
        };
        found.push((
            RunEntry {
                dir: name,
                run_id: report
                    .as_ref()
                    .map(|r| r.run_id.clone())
                    .unwrap_or_default(),
                started_at,
                verdict: report
                    .as_ref()
                    .map(|r| r.verdict.to_string())
                    .unwrap_or_else(|| "?".into()),
                exit_code: report.as_ref().map(|r| r.exit_code).unwrap_or(0),
                verification,
            },
            report,
            dir,
        ));
    }
    found.sort_by(|a, b| (a.0.started_at, &a.0.dir).cmp(&(b.0.started_at, &b.0.dir)));
    let (ok, bad): (Vec<_>, Vec<_>) = found
        .into_iter()
        .partition(|(r, _, _)| r.verification.starts_with("valid"));
    let excluded: Vec<RunEntry> = bad.into_iter().map(|(r, _, _)| r).collect();
    if !excluded.is_empty() && !exclude_unverified {
        return Err(ExportError::Unverified(excluded));
    }
    if ok.is_empty() {
        return Err(ExportError::NoRuns {
            env: env.into(),
            quarter,
            from: quarter.start().to_rfc3339(),
            to: quarter.end().to_rfc3339(),
            dir: base.display().to_string(),
        });
    }

    let reports: Vec<&Report> = ok.iter().filter_map(|(_, r, _)| r.as_ref()).collect();
    let runs: Vec<RunEntry> = ok.iter().map(|(e, _, _)| e.clone()).collect();
    let history = history(&reports);
    let safeguards = safeguard_history(&reports);
    let waivers = waiver_uses(&reports);
    let root = format!("epic-audit-{env}-{quarter}");

    // Run files are hashed now and streamed into the archive later (never
    // all in memory); the generated files are small.
    let mut run_files: Vec<(String, PathBuf, String)> = Vec::new();
    for (entry, _, dir) in &ok {
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| ExportError::Io(format!("{}: {}", dir.display(), e.kind())))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        for p in names {
            let digest = sha256_file(&p)
                .map_err(|e| ExportError::Io(format!("{}: {}", p.display(), e.kind())))?;
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            run_files.push((format!("runs/{}/{name}", entry.dir), p, digest));
        }
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let meta = serde_json::json!({
        "environment": env,
        "quarter": quarter.to_string(),
        "from": quarter.start(),
        "to": quarter.end(),
        "generated_at": now,
        "tool": {"name": "epic-audit", "version": env!("CARGO_PKG_VERSION")},
        "runs": runs,
        "excluded": excluded,
    });
    let json = |v: &serde_json::Value| serde_json::to_vec_pretty(v).expect("JSON serialises");
    files.push(("export.json".into(), json(&meta)));
    files.push((
        "history.json".into(),
        json(&serde_json::to_value(&history).expect("serialises")),
    ));
    files.push((
        "safeguards.json".into(),
        json(&serde_json::to_value(&safeguards).expect("serialises")),
    ));
    files.push((
        "waivers.json".into(),
        json(&serde_json::to_value(&waivers).expect("serialises")),
    ));
    files.push((
        "index.html".into(),
        index_html(
            env,
            quarter,
            now,
            &runs,
            &excluded,
            &history,
            &safeguards,
            &waivers,
        )
        .into_bytes(),
    ));
    let digests: Vec<(String, String)> = run_files
        .iter()
        .map(|(n, _, d)| (n.clone(), d.clone()))
        .chain(
            files
                .iter()
                .map(|(n, d)| (n.clone(), hex::encode(Sha256::digest(d)))),
        )
        .collect();
    let failing_at_end = history.iter().filter(|h| h.last == "fail").count();
    let predicate = serde_json::json!({
        "environment": env,
        "quarter": quarter.to_string(),
        "runs": runs.iter().map(|r| &r.run_id).collect::<Vec<_>>(),
        "excluded": excluded.iter().map(|r| &r.dir).collect::<Vec<_>>(),
        "checks_failing_at_end": failing_at_end,
        "generated_at": now,
        "tool": {"name": "epic-audit", "version": env!("CARGO_PKG_VERSION")},
    });
    let envelope = signer
        .envelope_for_digests(&digests, PREDICATE_TYPE, predicate)
        .map_err(|e| ExportError::Io(format!("signing the export: {e}")))?;
    files.push((
        ENVELOPE.into(),
        serde_json::to_vec_pretty(&envelope).expect("envelope serialises"),
    ));
    files.push((
        BUNDLE.into(),
        serde_json::to_vec_pretty(&crate::sign::sigstore_bundle(&envelope))
            .expect("bundle serialises"),
    ));

    pack(&root, &run_files, &files, out, now)?;
    Ok(Exported {
        path: out.to_path_buf(),
        runs,
        excluded,
        key_id: signer.key_id(),
    })
}

/// (environment, started_at) as a run's manifest predicate claims them,
/// read without verifying (only to decide whether the run is in scope).
fn claimed_by_manifest(dir: &Path) -> Option<(String, DateTime<Utc>)> {
    use base64::Engine;
    let env: crate::sign::Envelope =
        serde_json::from_slice(&std::fs::read(dir.join(ENVELOPE)).ok()?).ok()?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env.payload)
        .ok()?;
    let st: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    let p = &st["predicate"];
    Some((
        p["environment"].as_str()?.to_string(),
        p["started_at"].as_str()?.parse().ok()?,
    ))
}

/// The start time in a run directory name (`20261126T080000Z...`).
fn started_from_name(name: &str) -> Option<DateTime<Utc>> {
    let ts = name.get(..16)?;
    chrono::NaiveDateTime::parse_from_str(ts, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// SHA-256 of a file, read in chunks.
fn sha256_file(p: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(p)?, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    h: Sha256,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.h.update(&buf[..n]);
        Ok(n)
    }
}

/// Writes the archive next to `out` and moves it into place only when it
/// is complete and synced; never replaces an existing file. Run files are
/// streamed from disk and hashed again on the way in: a file that changed
/// since it was signed into the manifest aborts the export.
fn pack(
    root: &str,
    run_files: &[(String, PathBuf, String)],
    files: &[(String, Vec<u8>)],
    out: &Path,
    now: DateTime<Utc>,
) -> Result<(), ExportError> {
    let io = |what: &str, e: std::io::Error| ExportError::Io(format!("{what}: {e}"));
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir.display().to_string(), e))?;
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let result = (|| -> Result<(), ExportError> {
        let file = std::fs::File::create(&tmp).map_err(|e| io(&tmp.display().to_string(), e))?;
        let gz = flate2::write::GzEncoder::new(
            std::io::BufWriter::new(file),
            flate2::Compression::default(),
        );
        let mut tar = tar::Builder::new(gz);
        let header = |len: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_size(len);
            h.set_mode(0o644);
            h.set_mtime(now.timestamp().max(0) as u64);
            h.set_entry_type(tar::EntryType::Regular);
            h
        };
        for (name, src, digest) in run_files {
            let f = std::fs::File::open(src).map_err(|e| io(&src.display().to_string(), e))?;
            let len = f
                .metadata()
                .map_err(|e| io(&src.display().to_string(), e))?
                .len();
            let mut r = Hashing {
                inner: f,
                h: Sha256::new(),
            };
            tar.append_data(&mut header(len), format!("{root}/{name}"), &mut r)
                .map_err(|e| io(name, e))?;
            if hex::encode(r.h.finalize()) != *digest {
                return Err(ExportError::Io(format!(
                    "{} changed while it was being exported; run the export again",
                    src.display()
                )));
            }
        }
        for (name, data) in files {
            tar.append_data(
                &mut header(data.len() as u64),
                format!("{root}/{name}"),
                data.as_slice(),
            )
            .map_err(|e| io(name, e))?;
        }
        let w = tar
            .into_inner()
            .and_then(|gz| gz.finish())
            .map_err(|e| io("finishing the archive", e))?;
        let f = w
            .into_inner()
            .map_err(|e| io("finishing the archive", e.into_error()))?;
        f.sync_all().map_err(|e| io("syncing the archive", e))?;
        // A hard link never replaces an existing file (unlike rename).
        std::fs::hard_link(&tmp, out).map_err(|e| io(&out.display().to_string(), e))?;
        Ok(())
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Reads an export archive: (top directory, relative path -> contents).
/// Anything but regular files and directories, or a path leaving the top
/// directory, is an error.
pub fn unpack(path: &Path) -> Result<(String, BTreeMap<String, Vec<u8>>), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {}", path.display(), e.kind()))?;
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut root: Option<String> = None;
    let mut files = BTreeMap::new();
    for e in a
        .entries()
        .map_err(|e| format!("not a .tar.gz archive: {e}"))?
    {
        let mut e = e.map_err(|e| format!("corrupt archive: {e}"))?;
        let p = e
            .path()
            .map_err(|e| format!("corrupt archive: {e}"))?
            .to_string_lossy()
            .to_string();
        let kind = e.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(format!("{p}: not a regular file"));
        }
        let (top, rest) = p
            .split_once('/')
            .ok_or_else(|| format!("{p}: outside the top directory"))?;
        if rest.is_empty() || rest.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(format!("{p}: not a plain relative path"));
        }
        match &root {
            None => root = Some(top.to_string()),
            Some(r) if r != top => return Err(format!("{p}: a second top directory")),
            _ => {}
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).map_err(|e| format!("{p}: {e}"))?;
        files.insert(rest.to_string(), data);
    }
    Ok((root.ok_or("empty archive")?, files))
}

/// The archive verified: its own envelope, then each run's.
#[derive(Debug)]
pub struct ArchiveVerified {
    /// The archive's envelope.
    pub outer: crate::sign::Verified,
    /// Per run directory: Ok(predicate) or its problems.
    pub runs: Vec<(String, Result<crate::sign::Verified, Vec<String>>)>,
}

/// Why an archive did not verify.
#[derive(Debug)]
pub enum ArchiveError {
    /// Not a readable archive at all (usage problem).
    Unreadable(String),
    /// Read, but tampered, incomplete or signed by another key.
    Invalid(Vec<String>),
}

/// Verifies an export archive against `key`, streaming: every file is
/// hashed as it is read (only the manifests are kept), then the archive
/// manifest is checked (every file, nothing missing or added), then each
/// `runs/<dir>/` against its own manifest.
pub fn verify_archive(path: &Path, key: &PublicKey) -> Result<ArchiveVerified, ArchiveError> {
    let f = std::fs::File::open(path)
        .map_err(|e| ArchiveError::Unreadable(format!("{}: {}", path.display(), e.kind())))?;
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)));
    let mut root: Option<String> = None;
    let mut digests: BTreeMap<String, String> = BTreeMap::new();
    let mut manifests: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut read_any = false;
    let entries = a
        .entries()
        .map_err(|e| ArchiveError::Unreadable(format!("not a .tar.gz archive: {e}")))?;
    for e in entries {
        let mut e = match e {
            Ok(e) => e,
            Err(err) if !read_any => {
                return Err(ArchiveError::Unreadable(format!(
                    "not a .tar.gz archive: {err}"
                )))
            }
            Err(err) => {
                problems.push(format!(
                    "the archive is corrupt after {} files: {err}",
                    digests.len()
                ));
                break;
            }
        };
        read_any = true;
        let p = match e.path() {
            Ok(p) => p.to_string_lossy().to_string(),
            Err(err) => {
                problems.push(format!("an entry with an unreadable path: {err}"));
                continue;
            }
        };
        let kind = e.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            problems.push(format!("{p}: not a regular file"));
            continue;
        }
        let Some((top, rest)) = p.split_once('/') else {
            problems.push(format!("{p}: outside the top directory"));
            continue;
        };
        if rest.is_empty() || rest.split('/').any(|c| c == ".." || c.is_empty()) {
            problems.push(format!("{p}: not a plain relative path"));
            continue;
        }
        match &root {
            None => root = Some(top.to_string()),
            Some(r) if r != top => {
                problems.push(format!("{p}: a second top directory"));
                continue;
            }
            _ => {}
        }
        let keep = [ENVELOPE, BUNDLE]
            .iter()
            .any(|m| rest == *m || (rest.starts_with("runs/") && rest.ends_with(&format!("/{m}"))));
        let mut h = Sha256::new();
        let mut kept = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            match std::io::Read::read(&mut e, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    h.update(&buf[..n]);
                    if keep && kept.len() < 16 * 1024 * 1024 {
                        kept.extend_from_slice(&buf[..n]);
                    }
                }
                Err(err) => {
                    problems.push(format!("{rest}: unreadable: {err}"));
                    break;
                }
            }
        }
        if keep {
            manifests.insert(rest.to_string(), kept);
        }
        digests.insert(rest.to_string(), hex::encode(h.finalize()));
    }
    if !problems.is_empty() {
        return Err(ArchiveError::Invalid(problems));
    }
    let Some(outer_env) = manifests.get(ENVELOPE) else {
        return Err(ArchiveError::Invalid(vec![format!("{ENVELOPE}: missing")]));
    };
    let mut files = digests.clone();
    files.remove(ENVELOPE);
    files.remove(BUNDLE);
    let outer = crate::sign::verify_digests(
        outer_env,
        manifests.get(BUNDLE).map(Vec::as_slice),
        &files,
        key,
    )
    .map_err(ArchiveError::Invalid)?;
    let dirs: BTreeSet<String> = digests
        .keys()
        .filter_map(|n| n.strip_prefix("runs/"))
        .filter_map(|n| n.split_once('/').map(|(d, _)| d.to_string()))
        .collect();
    let runs = dirs
        .into_iter()
        .map(|d| {
            let prefix = format!("runs/{d}/");
            let sub: BTreeMap<String, String> = digests
                .iter()
                .filter_map(|(n, v)| n.strip_prefix(&prefix).map(|r| (r.to_string(), v.clone())))
                .filter(|(n, _)| n != ENVELOPE && n != BUNDLE)
                .collect();
            let bundle = manifests.get(&format!("{prefix}{BUNDLE}"));
            let r = match manifests.get(&format!("{prefix}{ENVELOPE}")) {
                Some(env) => crate::sign::verify_digests(env, bundle.map(Vec::as_slice), &sub, key),
                None => Err(vec![format!("{ENVELOPE}: missing (not a signed run)")]),
            };
            (d, r)
        })
        .collect();
    Ok(ArchiveVerified { outer, runs })
}

/// One HIPAA provision across the quarter.
#[derive(Debug, Clone, Serialize)]
pub struct SafeguardHistory {
    /// `164.312(e)(1)`.
    pub reference: String,
    /// Its heading.
    pub title: String,
    /// `administrative` or `technical`.
    pub safeguard: String,
    /// `Required`, `Addressable` or `Standard`.
    pub specification: String,
    /// Status per run, in run order, in the reports' words (`not cited`
    /// where no selected check cited it).
    pub statuses: Vec<String>,
    /// Why, in the last run that cited it.
    pub last_reasons: Vec<String>,
    /// What remains for a person to assess.
    pub manual: String,
}

/// Per HIPAA provision, its status in every run ([`crate::report::safeguards`]).
pub fn safeguard_history(reports: &[&Report]) -> Vec<SafeguardHistory> {
    let per_run: Vec<Vec<crate::report::safeguards::Row>> = reports
        .iter()
        .map(|r| crate::report::safeguards::rows(r))
        .collect();
    let mut refs: BTreeSet<String> = BTreeSet::new();
    for rows in &per_run {
        refs.extend(rows.iter().map(|r| r.reference.clone()));
    }
    refs.into_iter()
        .map(|reference| {
            let mut h = SafeguardHistory {
                reference: reference.clone(),
                title: String::new(),
                safeguard: String::new(),
                specification: String::new(),
                statuses: Vec::new(),
                last_reasons: Vec::new(),
                manual: String::new(),
            };
            for rows in &per_run {
                match rows.iter().find(|r| r.reference == reference) {
                    None => h.statuses.push("not cited".into()),
                    Some(r) => {
                        h.title = r.title.clone();
                        h.safeguard = r.safeguard_label().into();
                        h.specification = r.specification_label().into();
                        h.statuses.push(r.status.label().into());
                        h.last_reasons = r.reasons.clone();
                        h.manual = r.manual.clone();
                    }
                }
            }
            h
        })
        .collect()
}

/// Per check, its outcome in every run, in run order.
pub fn history(reports: &[&Report]) -> Vec<CheckHistory> {
    let mut order: Vec<String> = Vec::new();
    for r in reports {
        for c in &r.checks {
            if !order.contains(&c.id) {
                order.push(c.id.clone());
            }
        }
    }
    order
        .into_iter()
        .map(|id| {
            let mut h = CheckHistory {
                id: id.clone(),
                title: String::new(),
                hipaa: Vec::new(),
                outcomes: Vec::new(),
                first_failure: None,
                fixed: None,
                last: "not run".into(),
            };
            let mut failing = false;
            for r in reports {
                match r.checks.iter().find(|c| c.id == id) {
                    None => h.outcomes.push("not run".into()),
                    Some(c) => {
                        h.title = c.title.clone();
                        h.hipaa = c.hipaa.clone();
                        h.outcomes.push(c.outcome.to_string());
                        h.last = c.outcome.to_string();
                        if c.outcome == Outcome::Fail {
                            if h.first_failure.is_none() {
                                h.first_failure = Some((r.run_id.clone(), r.started_at));
                            }
                            failing = true;
                            h.fixed = None;
                        } else if failing && c.outcome != Outcome::Error {
                            // An error decides nothing: not a fix.
                            failing = false;
                            h.fixed = Some((r.run_id.clone(), r.started_at));
                        }
                    }
                }
            }
            h
        })
        .collect()
}

/// The waivers in force in any run, and the runs where they waived
/// something.
pub fn waiver_uses(reports: &[&Report]) -> Vec<WaiverUse> {
    let mut out: Vec<WaiverUse> = Vec::new();
    for r in reports {
        for w in r.waivers.iter().filter(|w| w.status == "in force") {
            let waived = r.checks.iter().any(|c| {
                c.id.eq_ignore_ascii_case(&w.waiver.check)
                    && c.subjects.iter().any(|s| {
                        s.outcome == Outcome::Waived
                            && w.waiver.subject.as_ref().is_none_or(|x| x == &s.subject)
                    })
            });
            let i = match out.iter().position(|u| {
                u.waiver.check == w.waiver.check
                    && u.waiver.subject == w.waiver.subject
                    && u.waiver.expires == w.waiver.expires
            }) {
                Some(i) => i,
                None => {
                    out.push(WaiverUse {
                        waiver: w.waiver.clone(),
                        in_force_in: Vec::new(),
                        waived_in: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            out[i].in_force_in.push(r.run_id.clone());
            if waived {
                out[i].waived_in.push(r.run_id.clone());
            }
        }
    }
    out
}

fn day(t: &DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}

#[allow(clippy::too_many_arguments)]
fn index_html(
    env: &str,
    quarter: Quarter,
    now: DateTime<Utc>,
    runs: &[RunEntry],
    excluded: &[RunEntry],
    history: &[CheckHistory],
    safeguards: &[SafeguardHistory],
    waivers: &[WaiverUse],
) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>epic-audit {e} {quarter}</title>\
<style>body{{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#111}}table{{border-collapse:collapse;margin:1em 0}}\
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left}}.pass{{background:#dfd}}.fail{{background:#fcc}}\
.error{{background:#fec}}.warn{{background:#ffc}}.waived{{background:#def}}.skip,.notrun{{color:#888}}\
.satisfied{{background:#dfd}}.notsatisfied{{background:#fcc}}.notassessed{{background:#fec}}.manual{{background:#eee}}</style></head><body>\
<h1>HIPAA evidence export: {e}, {quarter}</h1>\
<p>{n} signed run(s) from {from} to {to} (UTC), each verified before export; generated {now}. \
Verify this archive with <code>epic-audit verify ARCHIVE --pubkey PUBLIC_KEY</code>.</p>",
        e = esc(env),
        n = runs.len(),
        from = quarter.start().format("%Y-%m-%d"),
        to = (quarter.end() - chrono::Duration::days(1)).format("%Y-%m-%d"),
        now = now.format("%Y-%m-%d %H:%M:%SZ"),
    );
    o.push_str("<h2>Runs</h2><table><tr><th>run</th><th>started</th><th>verdict</th><th>exit</th><th>signature</th><th>report</th></tr>");
    for r in runs {
        let _ = write!(
            o,
            "<tr><td>{id}</td><td>{t}</td><td class=\"{v}\">{v}</td><td>{x}</td><td>{s}</td><td><a href=\"runs/{d}/report.html\">report.html</a></td></tr>",
            id = esc(&r.run_id),
            t = r.started_at.format("%Y-%m-%d %H:%M:%SZ"),
            v = esc(&r.verdict),
            x = r.exit_code,
            s = esc(&r.verification),
            d = esc(&r.dir),
        );
    }
    o.push_str("</table>");
    if !excluded.is_empty() {
        o.push_str("<h2>Excluded (did not verify)</h2><ul>");
        for r in excluded {
            let _ = write!(o, "<li>{}: {}</li>", esc(&r.dir), esc(&r.verification));
        }
        o.push_str("</ul>");
    }
    let _ = write!(
        o,
        "<h2>HIPAA safeguards</h2><p>{}</p>",
        esc(crate::report::safeguards::PREAMBLE)
    );
    let starts: Vec<DateTime<Utc>> = runs.iter().map(|r| r.started_at).collect();
    let rates = safeguard_pass_rates(history, safeguards);
    if !rates.is_empty() {
        let _ = write!(
            o,
            "<h3>Pass rate per safeguard over the quarter</h3><p>Per provision, the share of the checks citing it \
             (primary or supporting) that passed in each run: pass, warn or waived, among those judged (skipped, \
             not audited and not run are left out; an error counts as not passed).</p>{}",
            crate::report::svg::safeguard_rates(quarter.start(), quarter.end(), &starts, &rates)
        );
    }
    o.push_str("<table><tr><th>provision</th><th>safeguard</th><th>R/A</th>");
    for r in runs {
        let _ = write!(o, "<th>{}</th>", day(&r.started_at));
    }
    o.push_str("<th>last run: why</th><th>remains manual</th></tr>");
    for h in safeguards {
        let _ = write!(
            o,
            "<tr><td>{r} {t}</td><td>{k}</td><td>{s}</td>",
            r = esc(&h.reference),
            t = esc(&h.title),
            k = esc(&h.safeguard),
            s = esc(&h.specification)
        );
        for st in &h.statuses {
            let class = match st.as_str() {
                x if x.starts_with("satisfied") => "satisfied",
                "not satisfied" => "notsatisfied",
                "not assessed" => "notassessed",
                _ => "manual",
            };
            let _ = write!(o, "<td class=\"{class}\">{}</td>", esc(st));
        }
        let _ = write!(
            o,
            "<td>{}</td><td>{}</td></tr>",
            esc(&h.last_reasons.join("; ")),
            esc(&h.manual)
        );
    }
    o.push_str("</table>");
    o.push_str("<h2>Control history</h2>");
    let strips: Vec<(&str, &str, &[String])> = history
        .iter()
        .map(|h| (h.id.as_str(), h.title.as_str(), h.outcomes.as_slice()))
        .collect();
    let _ = write!(
        o,
        "<p>Each strip is one check; each mark one run, placed by when it started, coloured by its outcome \
         (green pass, yellow warn, red fail, orange error, blue waived, grey not audited or not run).</p>{}",
        crate::report::svg::timeline_strips(quarter.start(), quarter.end(), &starts, &strips)
    );
    o.push_str("<table><tr><th>check</th><th>HIPAA</th>");
    for r in runs {
        let _ = write!(o, "<th>{}</th>", day(&r.started_at));
    }
    o.push_str("<th>first failure</th><th>fixed</th></tr>");
    for h in history {
        let _ = write!(
            o,
            "<tr><td title=\"{t}\">{id}</td><td>{hipaa}</td>",
            t = esc(&h.title),
            id = esc(&h.id),
            hipaa = esc(&crate::hipaa::list(&h.hipaa))
        );
        for out in &h.outcomes {
            let _ = write!(
                o,
                "<td class=\"{}\">{}</td>",
                out.replace(' ', ""),
                esc(out)
            );
        }
        let when = |x: &Option<(String, DateTime<Utc>)>| {
            x.as_ref()
                .map(|(_, t)| day(t).to_string())
                .unwrap_or_else(|| "—".into())
        };
        let _ = write!(
            o,
            "<td>{}</td><td>{}</td></tr>",
            when(&h.first_failure),
            when(&h.fixed)
        );
    }
    o.push_str("</table><h2>Waivers in force during the quarter</h2>");
    if waivers.is_empty() {
        o.push_str("<p>None.</p>");
    } else {
        o.push_str("<table><tr><th>check</th><th>subject</th><th>reason</th><th>approver</th><th>expires</th><th>waived a failure in</th></tr>");
        for w in waivers {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&w.waiver.check),
                esc(w.waiver.subject.as_deref().unwrap_or("all subjects")),
                esc(&w.waiver.reason),
                esc(&w.waiver.approver),
                w.waiver.expires,
                esc(&w.waived_in.join(", "))
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</body></html>\n");
    o
}

/// Per provision of `safeguards`, the share of the checks citing it that
/// passed in each run (see the index's explanation); `None` for a run in
/// which none of them was judged.
pub fn safeguard_pass_rates(
    history: &[CheckHistory],
    safeguards: &[SafeguardHistory],
) -> Vec<(String, String, Vec<Option<f64>>)> {
    safeguards
        .iter()
        .map(|s| {
            let citing: Vec<&CheckHistory> = history
                .iter()
                .filter(|h| h.hipaa.iter().any(|c| c.reference == s.reference))
                .collect();
            let rates = (0..s.statuses.len())
                .map(|i| {
                    let judged: Vec<&str> = citing
                        .iter()
                        .filter_map(|h| h.outcomes.get(i).map(String::as_str))
                        .filter(|o| ["pass", "warn", "waived", "fail", "error"].contains(o))
                        .collect();
                    let passed = judged
                        .iter()
                        .filter(|o| ["pass", "warn", "waived"].contains(o))
                        .count();
                    (!judged.is_empty()).then(|| passed as f64 / judged.len() as f64)
                })
                .collect();
            (s.reference.clone(), s.title.clone(), rates)
        })
        .collect()
}

/// Today's quarter, for `--quarter` defaults and messages.
pub fn quarter_of(t: DateTime<Utc>) -> Quarter {
    Quarter {
        year: t.year(),
        q: (t.month() - 1) / 3 + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters_parse_and_bound_their_months() {
        let q: Quarter = "2026-Q4".parse().unwrap();
        assert_eq!(q.start().to_rfc3339(), "2026-10-01T00:00:00+00:00");
        assert_eq!(q.end().to_rfc3339(), "2027-01-01T00:00:00+00:00");
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert!(q.contains(t("2026-10-01T00:00:00Z")));
        assert!(q.contains(t("2026-12-31T23:59:59Z")));
        assert!(!q.contains(t("2026-09-30T23:59:59Z")));
        assert!(!q.contains(t("2027-01-01T00:00:00Z")));
        let q1: Quarter = "2027-Q1".parse().unwrap();
        assert_eq!(q1.end().to_rfc3339(), "2027-04-01T00:00:00+00:00");
        for bad in ["2026-Q5", "2026-Q0", "2026Q4", "Q4-2026", "2026-Q"] {
            assert!(bad.parse::<Quarter>().is_err(), "{bad}");
        }
        assert_eq!(quarter_of(t("2026-11-26T08:00:00Z")), q);
    }
}
