//! The files a lab node needs: the embedded test PKI, the ACL file with
//! hashed passwords, and each node's redis.conf.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use epic_audit::secret::Secret;

use crate::{io, LabError, LabNames, LabSpec};

/// The test PKI compiled into the binary (fixtures/pki), so the lab works
/// from any directory. TEST ONLY: these private keys are public.
pub(crate) const PKI: &[(&str, &[u8])] = &[
    ("ca.crt", include_bytes!("../../fixtures/pki/ca.crt")),
    (
        "client.crt",
        include_bytes!("../../fixtures/pki/client.crt"),
    ),
    (
        "client.key",
        include_bytes!("../../fixtures/pki/client.key"),
    ),
    ("node1.crt", include_bytes!("../../fixtures/pki/node1.crt")),
    ("node1.key", include_bytes!("../../fixtures/pki/node1.key")),
    ("node2.crt", include_bytes!("../../fixtures/pki/node2.crt")),
    ("node2.key", include_bytes!("../../fixtures/pki/node2.key")),
    ("node3.crt", include_bytes!("../../fixtures/pki/node3.crt")),
    ("node3.key", include_bytes!("../../fixtures/pki/node3.key")),
    ("node4.crt", include_bytes!("../../fixtures/pki/node4.crt")),
    ("node4.key", include_bytes!("../../fixtures/pki/node4.key")),
    ("node5.crt", include_bytes!("../../fixtures/pki/node5.crt")),
    ("node5.key", include_bytes!("../../fixtures/pki/node5.key")),
    ("node6.crt", include_bytes!("../../fixtures/pki/node6.crt")),
    ("node6.key", include_bytes!("../../fixtures/pki/node6.key")),
];

/// The test CA's key, for node certificates past the sixth (scale labs).
/// TEST ONLY: public in this repository.
const CA_KEY: &[u8] = include_bytes!("../../fixtures/pki/ca.key");

/// Issues `node<first>.crt`/`.key`, `node<first+1>...` in `pki`, one per
/// entry of `sans` (an openssl subjectAltName value: `IP:127.0.1.7`,
/// `DNS:redis-1.lab.test`), as scripts/gen-pki.sh issues the six of
/// fixtures/pki (RSA-4096, serverAuth + clientAuth).
pub(crate) fn issue_node_certs(pki: &Path, sans: &[String], first: usize) -> Result<(), LabError> {
    let certs: Vec<(String, String, u32)> = sans
        .iter()
        .enumerate()
        .map(|(k, san)| {
            let n = first + k;
            (format!("node{n}"), san.clone(), 1000 + n as u32)
        })
        .collect();
    issue_certs(pki, &certs)
}

/// Issues `<stem>.crt`/`.key` in `pki` for each `(stem, subjectAltName,
/// serial)`, signed by the test CA, with the `openssl` command: the keys
/// are generated in parallel, then each is certified. The CA key is
/// written only for the signing and removed after.
pub(crate) fn issue_certs(pki: &Path, certs: &[(String, String, u32)]) -> Result<(), LabError> {
    let ca_key = pki.join("ca.key.tmp");
    write_private(&ca_key, CA_KEY)?;
    let result = (|| {
        let failed = |stem: &str, detail: String| LabError::Step {
            step: format!("issuing the certificate {stem}"),
            detail,
        };
        let cannot_run = |e: std::io::Error| {
            format!("cannot run openssl ({e}); install it (Debian: `apt-get install openssl`)")
        };
        let keys: Vec<(&str, std::process::Child)> = certs
            .iter()
            .map(|(stem, _, _)| {
                std::process::Command::new("openssl")
                    .arg("genrsa")
                    .arg("-out")
                    .arg(pki.join(format!("{stem}.key")))
                    .arg("4096")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .map(|c| (stem.as_str(), c))
                    .map_err(|e| failed(stem, cannot_run(e)))
            })
            .collect::<Result<_, _>>()?;
        for (stem, child) in keys {
            let out = child
                .wait_with_output()
                .map_err(|e| failed(stem, cannot_run(e)))?;
            if !out.status.success() {
                return Err(failed(
                    stem,
                    String::from_utf8_lossy(&out.stderr).trim().to_string(),
                ));
            }
        }
        for (stem, san, serial) in certs {
            let name = pki.join(stem);
            let ext = pki.join(format!("{stem}.ext"));
            std::fs::write(
                &ext,
                format!(
                    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                     extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName={san}\n"
                ),
            )
            .map_err(io(&ext))?;
            let key = name.with_extension("key");
            let csr = name.with_extension("csr");
            let crt = name.with_extension("crt");
            let subj = format!("/O=epic-audit TEST ONLY - not for production/CN=lab-{stem}");
            let ca = pki.join("ca.crt");
            let serial = serial.to_string();
            let mut req = std::process::Command::new("openssl");
            req.args(["req", "-new", "-key"])
                .arg(&key)
                .arg("-out")
                .arg(&csr)
                .args(["-subj", &subj]);
            let mut sign = std::process::Command::new("openssl");
            sign.args(["x509", "-req", "-in"])
                .arg(&csr)
                .arg("-CA")
                .arg(&ca)
                .arg("-CAkey")
                .arg(&ca_key)
                .args([
                    "-set_serial",
                    &serial,
                    "-sha256",
                    "-days",
                    "825",
                    "-extfile",
                ])
                .arg(&ext)
                .arg("-out")
                .arg(&crt);
            for mut cmd in [req, sign] {
                let out = cmd.output().map_err(|e| failed(stem, cannot_run(e)))?;
                if !out.status.success() {
                    return Err(failed(
                        stem,
                        String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    ));
                }
            }
            let _ = std::fs::remove_file(&csr);
            let _ = std::fs::remove_file(&ext);
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                .map_err(io(&key))?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&ca_key);
    result
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("the OS random source is available");
    hex::encode(b)
}

pub(crate) fn write_private(path: &Path, data: &[u8]) -> Result<(), LabError> {
    std::fs::write(path, data).map_err(io(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))
}

/// The ACL file of the seed architecture, with `names`' users and session
/// namespace. Passwords are stored as SHA-256 (`#hex`), never in clear.
/// `-pfmerge` for the application user: Redis 7.0 extracts no key from a
/// single-key `PFMERGE dest`, so the key-pattern check is skipped and a
/// key-restricted user can create keys anywhere (found by ACC-006).
/// `-@scripting` too: the application runs no server-side scripts, and
/// `+@write` alone would let it FUNCTION LOAD (ACC-006 denies @scripting).
pub fn acl_file(names: &LabNames, passwords: &BTreeMap<String, Secret>) -> String {
    let h = |u: &str| hex::encode(Sha256::digest(passwords[u].expose().as_bytes()));
    let cluster_read =
        "+cluster|slots +cluster|shards +cluster|nodes +cluster|info +cluster|keyslot";
    let sessions = names.session_pattern();
    format!(
        "user default off resetpass resetkeys resetchannels -@all\n\
         user {admin} on #{} ~* &* +@all\n\
         user {app} on #{} ~{sessions} resetchannels -@all +@read +@write +@keyspace +@hash +@string +@connection +@transaction -@admin -@dangerous -@scripting -pfmerge {cluster_read}\n\
         user {dev} on #{} ~* resetchannels -@all +@read +@connection -@admin -@dangerous {cluster_read}\n\
         user {auditor} on #{} {}\n\
         user {exporter} on #{} {}\n",
        h(&names.admin),
        h(&names.app),
        h(&names.dev),
        h(&names.auditor),
        epic_audit::probes::auditor_rules(std::slice::from_ref(&sessions)),
        h(&names.exporter),
        epic_audit::probes::exporter_rules(),
        exporter = names.exporter,
        admin = names.admin,
        app = names.app,
        dev = names.dev,
        auditor = names.auditor,
    )
}

pub(crate) fn node_conf(
    spec: &LabSpec,
    i: usize,
    dir: &Path,
    pki: &Path,
    admin_pw: &Secret,
) -> String {
    let n = i + 1;
    let mut c = format!(
        "# epic-audit lab node {n} (TEST ONLY)\n\
         bind {ip}\n\
         bind-source-addr {ip}\n\
         cluster-announce-ip {ip}\n\
         port 0\n\
         tls-port {port}\n\
         tls-cert-file {pki}/node{n}.crt\n\
         tls-key-file {pki}/node{n}.key\n\
         tls-ca-cert-file {pki}/ca.crt\n\
         tls-protocols \"TLSv1.3\"\n\
         tls-auth-clients yes\n\
         tls-cluster yes\n\
         tls-replication yes\n\
         cluster-enabled yes\n\
         cluster-config-file nodes.conf\n\
         cluster-node-timeout {timeout}\n\
         cluster-require-full-coverage yes\n\
         appendonly yes\n\
         appendfsync everysec\n\
         save \"\"\n\
         dir {dir}\n\
         aclfile {dir}/users.acl\n\
         protected-mode yes\n\
         enable-debug-command no\n\
         enable-module-command no\n\
         maxmemory-policy noeviction\n\
         timeout 300\n\
         daemonize no\n\
         logfile {dir}/redis.log\n\
         masteruser {admin}\n\
         masterauth {pw}\n",
        ip = spec.ips[i],
        port = spec.port,
        pki = pki.display(),
        timeout = spec.node_timeout_ms,
        dir = dir.display(),
        pw = admin_pw.expose(),
        admin = spec.names.admin,
    );
    if let Some(name) = spec.hostname(i) {
        c.push_str(&format!(
            "cluster-announce-hostname {name}\ncluster-preferred-endpoint-type hostname\n"
        ));
    }
    match spec.config_command.as_deref() {
        // Disabled outright: no name at all.
        Some("") => c.push_str("rename-command CONFIG \"\"\n"),
        Some(name) => c.push_str(&format!("rename-command CONFIG {name}\n")),
        None => {}
    }
    for l in &spec.extra_conf {
        c.push_str(l);
        c.push('\n');
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passwords(names: &LabNames) -> BTreeMap<String, Secret> {
        names
            .users()
            .iter()
            .map(|u| (u.to_string(), Secret::new(format!("pw-of-{u}"))))
            .collect()
    }

    #[test]
    fn acl_file_never_contains_clear_passwords() {
        let names = LabNames::default();
        let acl = acl_file(&names, &passwords(&names));
        assert!(!acl.contains("pw-of-"));
        assert!(acl.contains("user default off resetpass"));
        assert!(acl.contains("user app_user on #") && acl.contains("~session:*"));
        assert!(acl.contains("user auditor on #") && acl.contains("%R~session:*"));
    }

    #[test]
    fn acl_file_uses_the_names_it_is_given() {
        let names = LabNames {
            admin: "ops_root".into(),
            app: "svc_app".into(),
            dev: "analyst".into(),
            auditor: "audit_ro".into(),
            exporter: "metrics_ro".into(),
            namespace: "sess:".into(),
        };
        let acl = acl_file(&names, &passwords(&names));
        for l in [
            "user ops_root on #",
            "user svc_app on #",
            "user analyst on #",
            "user audit_ro on #",
            "user metrics_ro on #",
        ] {
            assert!(acl.contains(l), "{l}\n{acl}");
        }
        assert!(
            acl.contains("~sess:* ") && acl.contains("%R~sess:*"),
            "{acl}"
        );
        for old in ["admin_user", "app_user", "dev_user", "auditor ", "session:"] {
            assert!(!acl.contains(old), "{old} in\n{acl}");
        }
    }
}
