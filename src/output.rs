//! Writing a run's files atomically: everything goes into a hidden staging
//! directory next to the destination, which is renamed into place only when
//! every file is written and synced. A crash leaves no half-written run.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the output could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OutputError {
    /// The destination already holds a run.
    #[error("{0} already exists and is not empty; refusing to overwrite an existing run (choose another --out)")]
    Exists(PathBuf),
    /// Filesystem error (said once: not chained as a source, so the
    /// message does not repeat it).
    #[error("cannot write {}: {}{}", path.display(), io_reason(error), permission_hint(error))]
    Io {
        /// The path at fault.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
}

/// What to do about a directory this user may not write: the usual cause is
/// a container running as another user than the mounted directory's owner.
/// It names no flag: `--out`, `--prom` and `export --out` all come here, and
/// the message names the path.
fn permission_hint(e: &std::io::Error) -> String {
    if e.kind() != std::io::ErrorKind::PermissionDenied {
        return String::new();
    }
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    format!(
        " (this process runs as uid {uid}; give it a path it may write, or, in the container \
         image, run it as the directory's owner: docker run --user \"$(id -u):$(id -g)\" ...)"
    )
}

/// What an I/O error says, in words, without Rust's `(os error N)` tail:
/// every message that quotes one names the path beside it.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    without_os_error(e.to_string())
}

/// `text` without a trailing `(os error N)`.
pub(crate) fn without_os_error(text: String) -> String {
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text,
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |error| OutputError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Writes `files` (name, contents) as the directory `dest`, atomically.
/// `dest` must not exist, or be an empty directory.
pub(crate) fn write_run(dest: &Path, files: &[(&str, Vec<u8>)]) -> Result<PathBuf, OutputError> {
    if dest.exists() {
        let empty = fs::read_dir(dest).map_err(io(dest))?.next().is_none();
        if !empty || !dest.is_dir() {
            return Err(OutputError::Exists(dest.to_path_buf()));
        }
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io(&parent))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "run".into());
    let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    // Errors name what the user asked for (`dest`, `dest/file`), never the
    // hidden staging directory, which is gone by the time they read it.
    fs::create_dir(&staging).map_err(io(dest))?;
    let result = (|| {
        for (fname, data) in files {
            let p = staging.join(fname);
            let said = dest.join(fname);
            let mut f = fs::File::create(&p).map_err(io(&said))?;
            f.write_all(data).map_err(io(&said))?;
            f.sync_all().map_err(io(&said))?;
        }
        fs::rename(&staging, dest).map_err(io(dest))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result?;
    if let Ok(d) = fs::File::open(&parent) {
        let _ = d.sync_all();
    }
    Ok(dest.to_path_buf())
}

/// Replaces `path` with `data` atomically (temp file in the same
/// directory, fsync, rename).
pub(crate) fn write_file_atomic(path: &Path, data: &[u8]) -> Result<(), OutputError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io(&parent))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    // As in write_run: errors name `path`, not the temporary file.
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(io(path))?;
        f.write_all(data).map_err(io(path))?;
        f.sync_all().map_err(io(path))?;
        fs::rename(&tmp, path).map_err(io(path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_refuses_to_overwrite() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b/run1");
        write_run(&d, &[("x.json", b"{}".to_vec())]).unwrap();
        assert_eq!(fs::read(d.join("x.json")).unwrap(), b"{}");
        let e = write_run(&d, &[("x.json", b"[]".to_vec())]).unwrap_err();
        assert!(matches!(e, OutputError::Exists(_)), "{e}");
        assert_eq!(fs::read(d.join("x.json")).unwrap(), b"{}");
        // An existing empty directory is fine (e.g. made by a CI step).
        let empty = t.path().join("empty");
        fs::create_dir(&empty).unwrap();
        write_run(&empty, &[("x", vec![1])]).unwrap();
        // No staging directories left behind.
        let leftovers: Vec<_> = fs::read_dir(t.path().join("a/b"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn an_error_names_the_destination_not_the_staging_directory() {
        let t = tempfile::tempdir().unwrap();
        // A name the filesystem takes, whose staging name it does not.
        let d = t.path().join("r".repeat(250));
        let e = write_run(&d, &[("x", vec![1])]).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("cannot write {}: ", d.display())),
            "{e}"
        );
        assert!(!e.contains("partial") && !e.contains("os error"), "{e}");
        assert!(!d.exists());
        // The same for a single file replaced in place.
        let f = t.path().join("f".repeat(250));
        let e = write_file_atomic(&f, b"{}").unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("cannot write {}: ", f.display())),
            "{e}"
        );
        assert!(!e.contains(".tmp-") && !f.exists(), "{e}");
    }

    #[test]
    fn a_denied_path_gets_the_uid_hint_naming_no_flag() {
        // (Built by hand: the suite may run as root, which no mode denies.)
        let e = OutputError::Io {
            path: PathBuf::from("/evidence/epic-audit.prom"),
            error: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        }
        .to_string();
        assert!(
            e.starts_with("cannot write /evidence/epic-audit.prom: permission denied (this process runs as uid "),
            "{e}"
        );
        assert!(
            e.contains("docker run --user") && !e.contains("--out"),
            "{e}"
        );
        let other = OutputError::Io {
            path: PathBuf::from("/x"),
            error: std::io::Error::from(std::io::ErrorKind::NotFound),
        }
        .to_string();
        assert!(!other.contains("uid"), "{other}");
    }
}
