//! The build the lab accepts for PATCH-001 (patch level).
//!
//! The lab's servers are Debian packages (Debian 12's redis-server 7.0.15,
//! Debian 13's redis-server 8.0.2 and valkey-server 8.1.1). Debian
//! backports security fixes without changing the upstream version, so by
//! the advisory table alone every one of them is unpatched or on an
//! end-of-life branch. The built-in policy accepts no build; the lab
//! environments in `epic-audit.toml` name `${LAB_DIR}/accepted-builds.toml`,
//! which `up` writes here after reading, from the package database of the
//! root the server came from, the package that owns the binary, its version
//! and the CVEs its Debian changelog names, and pairing them with the build
//! id the running node reports. A server that is not a Debian package gets
//! no acceptance, and PATCH-001 then judges it by the table alone.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::{LabError, ServerBuild};

/// The file `up` writes in the lab's state directory.
pub const FILE: &str = "accepted-builds.toml";

/// What a Debian package says of the server build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Provenance {
    /// The package owning the binary, e.g. `redis-server`.
    pub package: String,
    /// Its Debian version, e.g. `5:7.0.15-1~deb12u10`.
    pub version: String,
    /// Every CVE id its Debian changelog names, oldest first as written.
    pub cves: Vec<String>,
}

/// The CVE ids in `text`, each once, in order of first mention.
fn cve_ids(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, _) in text.match_indices("CVE-") {
        let id: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let parts: Vec<&str> = id.split('-').collect();
        let ok = parts.len() == 3
            && parts[1].len() == 4
            && parts[1].chars().all(|c| c.is_ascii_digit())
            && parts[2].len() >= 4
            && parts[2].chars().all(|c| c.is_ascii_digit());
        if ok && !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// The `Version:` of `package` in a dpkg status file.
fn status_version(status: &str, package: &str) -> Option<String> {
    status.split("\n\n").find_map(|stanza| {
        let mut lines = stanza.lines();
        let named = lines.clone().any(|l| l == format!("Package: {package}"));
        let installed = lines
            .clone()
            .any(|l| l.starts_with("Status:") && l.ends_with(" installed"));
        (named && installed)
            .then(|| lines.find_map(|l| l.strip_prefix("Version: ").map(str::to_string)))
            .flatten()
    })
}

/// The package of `root` that installed `/usr/bin/<binary>`, with its
/// version and changelog's CVEs; `None` where dpkg does not know the file.
pub(crate) fn debian_package(root: &Path, binary: &str) -> Option<Provenance> {
    let info = root.join("var/lib/dpkg/info");
    let target = format!("/usr/bin/{binary}");
    let owner = std::fs::read_dir(&info).ok()?.find_map(|e| {
        let p = e.ok()?.path();
        let name = p.file_name()?.to_str()?.strip_suffix(".list")?.to_string();
        let list = std::fs::read_to_string(&p).ok()?;
        list.lines()
            .any(|l| l == target)
            .then(|| name.split(':').next().unwrap_or(&name).to_string())
    })?;
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).ok()?;
    let version = status_version(&status, &owner)?;
    // Debian's tools package carries the changelog where the server
    // package's doc directory links to it.
    let tools = owner.replace("-server", "-tools");
    let changelog = [&owner, &tools]
        .iter()
        .map(|p| root.join(format!("usr/share/doc/{p}/changelog.Debian.gz")))
        .find(|p| p.is_file())
        .and_then(|p| Command::new("zcat").arg(p).output().ok())
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    Some(Provenance {
        package: owner,
        version,
        cves: cve_ids(&changelog),
    })
}

/// The package behind a process lab's server build.
pub(crate) fn of_build(build: &ServerBuild) -> Option<Provenance> {
    match build {
        ServerBuild::Path => {
            let bin = crate::process::ServerCommand::of(build).ok()?.program;
            let bin = std::fs::canonicalize(&bin).unwrap_or(bin);
            // Only a binary where dpkg put it is that package's.
            (bin.parent() == Some(Path::new("/usr/bin")))
                .then(|| debian_package(Path::new("/"), "redis-server"))
                .flatten()
        }
        ServerBuild::Root { root, binary } => debian_package(root, binary),
    }
}

/// The package behind a compose lab's nodes, read inside `node1`.
pub(crate) fn of_compose(
    state: &crate::compose::ComposeState,
    dir: &Path,
    binary: &str,
) -> Option<Provenance> {
    let tools = binary.replace("-server", "-tools");
    let script = format!(
        "pkg=$(dpkg-query -S /usr/bin/{binary} | cut -d: -f1) && echo \"$pkg\" && \
         dpkg-query -W -f '${{Version}}\\n' \"$pkg\" && \
         (zcat /usr/share/doc/\"$pkg\"/changelog.Debian.gz 2>/dev/null || \
          zcat /usr/share/doc/{tools}/changelog.Debian.gz 2>/dev/null || true)"
    );
    let out = state
        .run(
            dir,
            &["exec", "-T", "node1", "sh", "-c", &script],
            Duration::from_secs(60),
        )
        .ok()?;
    let mut lines = out.lines();
    let package = lines.next()?.trim().to_string();
    let version = lines.next()?.trim().to_string();
    let rest: Vec<&str> = lines.collect();
    (!package.is_empty() && !version.is_empty()).then(|| Provenance {
        package,
        version,
        cves: cve_ids(&rest.join("\n")),
    })
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The text of `accepted-builds.toml`: one `[[build]]` for the server the
/// node reports (`server`, `version`, `build_id` from INFO server), with
/// the package's own record as the reason; none without a package.
pub(crate) fn file_text(
    server: &str,
    version: &str,
    build_id: &str,
    provenance: Option<&Provenance>,
) -> String {
    let mut text = String::from(
        "# Written by `epic-audit-lab up`: the server build the local lab accepts for PATCH-001\n\
         # (patch level). The built-in policy accepts none; see docs/lab.md.\n",
    );
    let Some(p) = provenance else {
        text.push_str(&format!(
            "# {server} {version} (build {build_id}) is not a Debian package here: nothing is accepted,\n\
             # and PATCH-001 judges it by the advisory table alone.\n"
        ));
        return text;
    };
    let recent: Vec<&str> = p
        .cves
        .iter()
        .map(String::as_str)
        .filter(|c| c.starts_with("CVE-2025-") || c.starts_with("CVE-2026-"))
        .collect();
    let reason = format!(
        "the lab's Debian package {} {}: Debian backports fixes without changing the upstream version, \
         and its changelog names {} CVEs, {} of them from 2025-2026 ({}); accepted for the local lab only",
        p.package,
        p.version,
        p.cves.len(),
        recent.len(),
        if recent.is_empty() {
            "none".to_string()
        } else {
            recent.join(", ")
        }
    );
    text.push_str(&format!(
        "[[build]]\nserver = {}\nversion = {}\nbuild_id = {}\nreason = {}\n",
        quote(server),
        quote(version),
        quote(build_id),
        quote(&reason)
    ));
    text
}

/// Writes the file into `dir` (private, like the lab's other state).
pub(crate) fn write(dir: &Path, text: &str) -> Result<(), LabError> {
    crate::files::write_private(&dir.join(FILE), text.as_bytes())
}

impl crate::Lab {
    /// Asks node 1 which build it runs (INFO server) and writes
    /// [`FILE`] accepting it where a Debian package says what it is.
    pub(crate) async fn write_accepted_builds(&self) -> Result<(), LabError> {
        let step = |detail: String| LabError::Step {
            step: "reading the server build (INFO server)".into(),
            detail,
        };
        let mut c = self.admin(0).await.map_err(|e| step(e.to_string()))?;
        let reply = c
            .cmd_str(&["INFO", "server"])
            .await
            .map_err(|e| step(e.to_string()))?;
        let info = epic_audit::resp::parse_info(
            &epic_audit::resp::as_text(&reply).ok_or_else(|| step("no text reply".into()))?,
        );
        let id = epic_audit::evidence::ServerIdentity::from_info(&info)
            .ok_or_else(|| step("INFO server names no version".into()))?;
        let build_id = info.get("redis_build_id").cloned().unwrap_or_default();
        let provenance = match &self.state.compose {
            Some(state) => {
                let binary = state
                    .server
                    .as_ref()
                    .map(|s| s.binary.clone())
                    .unwrap_or_else(|| "redis-server".into());
                of_compose(state, &self.spec.dir, &binary)
            }
            None => of_build(&self.spec.server),
        };
        write(
            &self.spec.dir,
            &file_text(&id.name, &id.version, &build_id, provenance.as_ref()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cve_ids_are_found_once_each() {
        let t = "  * CVE-2026-23631: x\n  * CVE-2025-49844, CVE-2026-23631 and CVE-20x-1 (CVE-2024-3144)";
        assert_eq!(
            cve_ids(t),
            ["CVE-2026-23631", "CVE-2025-49844", "CVE-2024-3144"]
        );
    }

    #[test]
    fn the_installed_version_is_read_from_dpkg_status() {
        let s = "Package: redis-tools\nStatus: install ok installed\nVersion: 1\n\n\
                 Package: redis-server\nStatus: install ok installed\nVersion: 5:7.0.15-1~deb12u10\n";
        assert_eq!(
            status_version(s, "redis-server").as_deref(),
            Some("5:7.0.15-1~deb12u10")
        );
        assert_eq!(status_version(s, "valkey-server"), None);
    }

    #[test]
    fn the_file_parses_and_says_why() {
        let p = Provenance {
            package: "redis-server".into(),
            version: "5:7.0.15-1~deb12u10".into(),
            cves: vec!["CVE-2023-1".into(), "CVE-2025-49844".into()],
        };
        let text = file_text("redis", "7.0.15", "ae4d7c971a948f0", Some(&p));
        let v: toml::Table = toml::from_str(&text).unwrap();
        let b = &v["build"].as_array().unwrap()[0];
        assert_eq!(b["build_id"].as_str(), Some("ae4d7c971a948f0"));
        assert!(b["reason"]
            .as_str()
            .unwrap()
            .contains("5:7.0.15-1~deb12u10"));
        assert!(b["reason"].as_str().unwrap().contains("CVE-2025-49844"));
        let none: toml::Table = toml::from_str(&file_text("redis", "7.0.15", "x", None)).unwrap();
        assert!(none.get("build").is_none());
    }
}
