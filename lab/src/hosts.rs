//! The hostname lab's names: lines in the host's `/etc/hosts` that map each
//! node's DNS name to its loopback address, so the system resolver (the
//! audit's, the exporters', redis-cli's) answers for them as private DNS
//! would. Each lab's lines carry its zone as a marker and are removed on
//! `down` or when a test's lab is dropped; a rewrite happens under a lock
//! so labs started in parallel never lose each other's lines.

use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::LabError;

/// The hosts file the system resolver reads.
const HOSTS: &str = "/etc/hosts";

/// Serialises rewrites of the hosts file between lab processes.
const LOCK: &str = "/tmp/epic-audit-lab-hosts.lock";

fn marker(zone: &str) -> String {
    format!("# epic-audit-lab {zone}")
}

/// Adds `name -> ip` lines for `zone` (replacing any it had, e.g. from a
/// lab that was killed), under the lock.
pub(crate) fn add(zone: &str, entries: &[(String, Ipv4Addr)]) -> Result<(), LabError> {
    rewrite(Path::new(HOSTS), zone, entries).map_err(|e| LabError::Step {
        step: "adding the nodes' names to /etc/hosts".into(),
        detail: format!(
            "{e}; a hostname lab needs its names resolvable on this host: run it as root, or add these lines \
             to /etc/hosts yourself:\n{}",
            lines(zone, entries).join("\n")
        ),
    })
}

/// Removes the lines of `zone` (nothing to do when there are none).
pub(crate) fn remove(zone: &str) -> Result<(), LabError> {
    rewrite(Path::new(HOSTS), zone, &[]).map_err(|e| LabError::Step {
        step: "removing the nodes' names from /etc/hosts".into(),
        detail: format!("{e}; remove the lines marked `{}` by hand", marker(zone)),
    })
}

fn lines(zone: &str, entries: &[(String, Ipv4Addr)]) -> Vec<String> {
    entries
        .iter()
        .map(|(name, ip)| format!("{ip} {name} {}", marker(zone)))
        .collect()
}

/// Drops `zone`'s lines from `path` and appends `entries`' lines, holding
/// an exclusive lock. Written to a temporary file and renamed over the
/// hosts file (a reader never sees it half-written); where the file is a
/// bind mount (containers), rename is refused and it is rewritten in place.
fn rewrite(path: &Path, zone: &str, entries: &[(String, Ipv4Addr)]) -> std::io::Result<()> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(path))?;
    // SAFETY: flock on a file descriptor this function owns.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let old = std::fs::read_to_string(path)?;
    let mark = marker(zone);
    let mut kept: Vec<&str> = old
        .lines()
        .filter(|l| !l.trim_end().ends_with(&mark))
        .collect();
    let added = lines(zone, entries);
    kept.extend(added.iter().map(String::as_str));
    let mut text = kept.join("\n");
    text.push('\n');
    if text == old {
        return Ok(());
    }
    let tmp = path.with_extension("epic-audit-lab.tmp");
    let renamed = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        let mode = std::fs::metadata(path)?.permissions();
        std::fs::set_permissions(&tmp, mode)?;
        std::fs::rename(&tmp, path)
    })();
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
        std::fs::write(path, text.as_bytes())?;
    }
    Ok(())
    // The lock is released when `lock` is closed.
}

fn lock_path(path: &Path) -> PathBuf {
    if path == Path::new(HOSTS) {
        PathBuf::from(LOCK)
    } else {
        path.with_extension("lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_replaces_and_removes_only_its_own_zone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts");
        std::fs::write(&p, "127.0.0.1 localhost\n").unwrap();
        let a = |n: &str, last: u8| (n.to_string(), Ipv4Addr::new(127, 0, 1, last));
        rewrite(&p, "z1.test", &[a("redis-1.z1.test", 1)]).unwrap();
        rewrite(&p, "z2.test", &[a("redis-1.z2.test", 1)]).unwrap();
        // A second add for z1 replaces its lines, never duplicates them.
        rewrite(
            &p,
            "z1.test",
            &[a("redis-1.z1.test", 1), a("redis-2.z1.test", 2)],
        )
        .unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.matches("redis-1.z1.test").count(), 1, "{text}");
        assert!(text.contains("127.0.1.2 redis-2.z1.test # epic-audit-lab z1.test"));
        rewrite(&p, "z1.test", &[]).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "127.0.0.1 localhost\n127.0.1.1 redis-1.z2.test # epic-audit-lab z2.test\n"
        );
    }
}
