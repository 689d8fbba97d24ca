//! The export archive: packing a quarter into one `.tar.gz` (run files
//! streamed from disk and hashed again on the way in), reading one back,
//! and verifying one as it streams (only the manifests are kept).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::sign::{PublicKey, BUNDLE, ENVELOPE};

/// SHA-256 of a file, read in chunks.
pub(crate) fn sha256_file(p: &Path) -> std::io::Result<String> {
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
pub(crate) fn pack(
    root: &str,
    run_files: &[(String, PathBuf, String)],
    files: &[(String, Vec<u8>)],
    out: &Path,
    now: DateTime<Utc>,
) -> Result<(), String> {
    // Errors name the archive asked for (never the hidden temporary file
    // beside it, gone by the time the message is read) or the run file
    // that could not be read; as `--out` errors do, with the same hint.
    let cannot_write = |e: std::io::Error| {
        crate::output::OutputError::Io {
            path: out.to_path_buf(),
            error: e,
        }
        .to_string()
    };
    let cannot_read = |p: &Path, e: std::io::Error| {
        format!(
            "cannot read {}: {}",
            p.display(),
            crate::output::io_reason(&e)
        )
    };
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(cannot_write)?;
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let result = (|| -> Result<(), String> {
        let file = std::fs::File::create(&tmp).map_err(cannot_write)?;
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
            let f = std::fs::File::open(src).map_err(|e| cannot_read(src, e))?;
            let len = f.metadata().map_err(|e| cannot_read(src, e))?.len();
            let mut r = Hashing {
                inner: f,
                h: Sha256::new(),
            };
            // Reading `src` or writing the archive: either may fail here,
            // so the message names both.
            tar.append_data(&mut header(len), format!("{root}/{name}"), &mut r)
                .map_err(|e| {
                    format!(
                        "cannot add {} to {}: {}",
                        src.display(),
                        out.display(),
                        crate::output::io_reason(&e)
                    )
                })?;
            if hex::encode(r.h.finalize()) != *digest {
                return Err(format!(
                    "{} changed while it was being exported; run the export again",
                    src.display()
                ));
            }
        }
        for (name, data) in files {
            tar.append_data(
                &mut header(data.len() as u64),
                format!("{root}/{name}"),
                data.as_slice(),
            )
            .map_err(cannot_write)?;
        }
        let w = tar
            .into_inner()
            .and_then(|gz| gz.finish())
            .map_err(cannot_write)?;
        let f = w.into_inner().map_err(|e| cannot_write(e.into_error()))?;
        f.sync_all().map_err(cannot_write)?;
        // A hard link never replaces an existing file (unlike rename).
        std::fs::hard_link(&tmp, out).map_err(cannot_write)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_archive_or_the_run_file_never_the_temporary_file() {
        let t = tempfile::tempdir().unwrap();
        let now = Utc::now();
        // A name the filesystem takes, whose temporary twin it does not.
        let out = t.path().join(format!("{}.tar.gz", "q".repeat(240)));
        let e = pack("r", &[], &[("a".into(), vec![1])], &out, now).unwrap_err();
        assert!(
            e.starts_with(&format!("cannot write {}: ", out.display())),
            "{e}"
        );
        assert!(!e.contains("partial") && !e.contains("os error"), "{e}");
        assert!(!out.exists());
        // A run file gone since the manifest was signed.
        let out = t.path().join("q.tar.gz");
        let gone = t.path().join("run/report.json");
        let run = [("report.json".to_string(), gone.clone(), String::new())];
        let e = pack("r", &run, &[], &out, now).unwrap_err();
        assert_eq!(
            e,
            format!("cannot read {}: No such file or directory", gone.display())
        );
        assert!(!out.exists());
        assert_eq!(
            std::fs::read_dir(t.path()).unwrap().count(),
            0,
            "no leftovers"
        );
    }
}
