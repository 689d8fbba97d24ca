//! `epic-audit.toml`: environments to audit, with secret *references*.
//!
//! Every error names the file and, where the TOML parser knows it, the line,
//! column and key. Secrets are resolved only when an environment is used, and
//! a missing secret names the variable or file it was looked for in, never a
//! value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::net::{NodeAddr, Timeouts};
pub use monitoring::MonitoringSettings;
pub use secret_ref::SecretRef;
pub use store::{LockMode, StoreUrl, DEFAULT_RETENTION_YEARS};

mod monitoring;
mod secret_ref;
mod store;
use crate::secret::Secret;

/// The placeholder that config paths may use for the local lab's state
/// directory (see `epic-audit-lab --help`).
pub(crate) const LAB_DIR_PLACEHOLDER: &str = "${LAB_DIR}";

/// The local lab's state directory, which `${LAB_DIR}` in config paths
/// stands for: `$EPIC_AUDIT_LAB_DIR`, else `$TMPDIR/epic-audit-lab`. The
/// audit only reads files there; `epic-audit-lab` creates them.
pub fn default_lab_dir() -> PathBuf {
    std::env::var_os("EPIC_AUDIT_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("epic-audit-lab"))
}

/// Checks that `name` (an environment's) is a plain name, since directory
/// and object names are made from it: letters, digits, `.`, `_` and `-`,
/// not starting with `.`, at most 64 characters.
pub(crate) fn plain_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a plain name: use letters, digits, `.`, `_` and `-` (not first), at most 64 \
             characters; directory names are made from it"
        ))
    }
}

/// The config a command that can work without one reads: the file
/// `--config` names must load; the default file may be absent (then
/// `None`), but when it is there it must load too. Never a half-read
/// config: any error is the command's, with file, line and column.
pub fn load_optional(path: &Path, explicit: bool) -> Result<Option<Config>, ConfigError> {
    if !explicit && !path.exists() {
        return Ok(None);
    }
    Config::load(path).map(Some)
}

/// A configuration problem. Displayed as `config error: <file>: <detail>`;
/// the CLI maps it to exit code 3.
#[derive(Debug, thiserror::Error)]
#[error("config error: {file}: {detail}")]
pub struct ConfigError {
    /// The file at fault (config, policy or secret file).
    pub file: String,
    /// What is wrong, with line and key where known.
    pub detail: String,
}

impl ConfigError {
    pub(crate) fn new(file: impl AsRef<Path>, detail: impl Into<String>) -> Self {
        ConfigError {
            file: file.as_ref().display().to_string(),
            detail: detail.into(),
        }
    }
}

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Environments by name (`[environments.<name>]`).
    pub environments: BTreeMap<String, Environment>,
    /// Where the file was read from; relative paths inside are resolved
    /// against its directory.
    #[serde(skip)]
    pub path: PathBuf,
}

/// One Redis Cluster to audit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Free text shown in reports.
    #[serde(default)]
    pub description: String,
    /// `true` for the local lab (`epic-audit-lab`): `${LAB_DIR}` in paths is
    /// its state directory, and errors say how to start it.
    #[serde(default)]
    pub lab: bool,
    /// One or more `host:port` of cluster nodes (TLS client port). Every
    /// other node is discovered from CLUSTER SHARDS of the seeds.
    pub seeds: Vec<NodeAddr>,
    /// Which configured user the audit connects as. Required: there is no
    /// default, so an administrator is never used by accident.
    #[serde(default = "default_audit_user")]
    pub audit_user: toml::Spanned<String>,
    /// TLS material for the client connection.
    pub tls: TlsSettings,
    /// Users and where their passwords are.
    #[serde(default)]
    pub users: BTreeMap<String, SecretRef>,
    /// Deadlines for network operations.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// AWS discovery settings (used by the AWS probes).
    #[serde(default)]
    pub aws: Option<AwsSettings>,
    /// Where each node's Prometheus exporter listens.
    #[serde(default)]
    pub monitoring: MonitoringSettings,
    /// The name CONFIG has on the nodes (`rename-command CONFIG
    /// CONFIG-a8e1`, a common hardening step): every CONFIG GET the probes
    /// send uses it. Default `CONFIG`. ACL rules keep naming the original
    /// command (`+config|get`), as Redis requires.
    #[serde(default = "default_config_command")]
    pub config_command: String,
    /// Key that signs this environment's runs: a PKCS#8 PEM file (Ed25519
    /// or ECDSA P-256; relative to this file), or `awskms:alias/NAME`
    /// (`EPIC_AUDIT_SIGNING_KEY` or `--signing-key` take precedence).
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
    /// A TOML file of `[[build]]` entries (`server`, `version`, `build_id`,
    /// `reason`): distribution builds this environment accepts although
    /// their version is below PATCH-001's advisory table (relative to this
    /// file; `${LAB_DIR}` allowed). Reported as accepted, never as pass.
    #[serde(default)]
    pub accepted_builds: Option<PathBuf>,
    /// Where every signed run is also kept, write-once:
    /// `s3://BUCKET/PREFIX` (reached with the `[aws]` settings, else the
    /// standard AWS chain). `--store` takes precedence.
    #[serde(default)]
    pub evidence_store: Option<StoreUrl>,
    /// Years each stored object is locked for (default 6: HIPAA's
    /// retention of safeguard documentation, 45 CFR 164.316(b)(2)(i)).
    #[serde(default = "default_retention_years")]
    pub evidence_retention_years: u32,
    /// S3 Object Lock mode of stored objects: `compliance` (default) or
    /// `governance`.
    #[serde(default)]
    pub evidence_lock_mode: LockMode,
    /// Public keys (SPKI PEM files, relative to this file) that alone may
    /// sign acknowledgements of this environment's missing runs. Empty:
    /// the key that signs the runs. Set it to separate duties: the CI
    /// runner's key then cannot excuse the gaps in its own chain.
    #[serde(default)]
    pub acknowledgement_pubkeys: Vec<PathBuf>,
}

fn default_config_command() -> String {
    "CONFIG".into()
}

fn default_retention_years() -> u32 {
    DEFAULT_RETENTION_YEARS
}

/// Absent `audit_user`: empty, refused by [`Config::parse`] with a hint.
fn default_audit_user() -> toml::Spanned<String> {
    toml::Spanned::new(0..0, String::new())
}

/// TLS client settings. Paths are relative to the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file with the organisation's CA: the only trust anchor used.
    pub ca: PathBuf,
    /// PEM client certificate (Redis `tls-auth-clients yes` requires one).
    pub client_cert: PathBuf,
    /// PEM private key of the client certificate.
    pub client_key: PathBuf,
    /// Name to verify the server certificates against, when the nodes'
    /// certificates carry a DNS name instead of their IP address.
    #[serde(default)]
    pub server_name: Option<String>,
}

/// AWS settings for the estate probes (security groups, EBS/KMS,
/// placement). Credentials come from the standard AWS chain (environment,
/// profile, SSO, IMDS) unless `credentials = "emulator"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// AWS region, e.g. `us-east-1` (else the standard chain's region).
    pub region: Option<String>,
    /// Named profile from the standard AWS config files.
    pub profile: Option<String>,
    /// Endpoint override, e.g. the local emulator `http://127.0.0.1:7379`.
    pub endpoint: Option<String>,
    /// `chain` (default): the standard AWS credential chain. `emulator`:
    /// fixed dummy keys, for a loopback emulator endpoint only, so the lab
    /// never consults the chain (nor the instance metadata service).
    #[serde(default)]
    pub credentials: AwsCredentials,
    /// EC2 tag that identifies the cluster's instances.
    pub discovery: TagFilter,
    /// Explicit Redis node (`host:port` or `host`) -> EC2 private IP, for
    /// setups where the address Redis announces is not the instance's
    /// private IP (NAT, the local lab). Other nodes join by their own IP.
    #[serde(default)]
    pub node_ip_map: BTreeMap<String, String>,
}

/// Where the AWS probes get credentials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwsCredentials {
    /// The standard AWS chain.
    #[default]
    Chain,
    /// Dummy keys for a loopback emulator.
    Emulator,
}

impl AwsSettings {
    /// Checks what TOML cannot: an endpoint is an http(s) URL, and emulator
    /// credentials are used with a loopback endpoint only.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Some(e) = &self.endpoint {
            endpoint_host(e)?;
        }
        if self.credentials == AwsCredentials::Emulator {
            let Some(e) = &self.endpoint else {
                return Err("credentials = \"emulator\" needs an `endpoint` on loopback".into());
            };
            let host = endpoint_host(e)?;
            let loopback = host == "localhost"
                || host
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(format!(
                    "credentials = \"emulator\" is for a loopback emulator only, not `{e}`; \
                     real AWS takes credentials from the standard chain (omit `credentials`)"
                ));
            }
        }
        for (node, ip) in &self.node_ip_map {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(format!(
                    "node_ip_map: `{node}` maps to `{ip}`, which is not an IP address"
                ));
            }
        }
        Ok(())
    }
}

/// The host of an `http://host[:port][/...]` endpoint URL.
fn endpoint_host(url: &str) -> Result<&str, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("endpoint `{url}` must start with http:// or https://"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if host.is_empty() {
        return Err(format!("endpoint `{url}` has no host"));
    }
    Ok(host)
}

/// An EC2 tag filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagFilter {
    /// Tag key.
    pub tag: String,
    /// Tag value.
    pub value: String,
}

/// 1-based line number of a byte offset in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// A TOML error as a [`ConfigError`] that never quotes the file: `toml`'s
/// own message prints the offending source line, and that line can hold a
/// secret (`password = "..."` where a reference belongs), which would then
/// reach a terminal and CI logs. This gives the line, the column and the
/// parser's message, with every double-quoted value in it hidden (serde
/// quotes an unexpected string value verbatim).
pub(crate) fn toml_error(file: impl AsRef<Path>, text: &str, e: &toml::de::Error) -> ConfigError {
    let at = match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let key = key_at(text, line_start, start)
                .map(|k| format!(" (key {k})"))
                .unwrap_or_default();
            format!(
                "line {}, column {}{key}: ",
                line_of(text, start),
                text[line_start..start].chars().count() + 1
            )
        }
        None => String::new(),
    };
    ConfigError::new(file, format!("{at}{}", hide_quoted(e.message().trim_end())))
}

/// The dotted name of the key whose line holds `offset` (`[table]` header
/// before it plus `key =` on the line), never its value.
fn key_at(text: &str, line_start: usize, offset: usize) -> Option<String> {
    let sane = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.\" ".contains(c))
    };
    let line = text[line_start..].lines().next().unwrap_or_default();
    let header = |l: &str| {
        let l = l.trim();
        (l.starts_with('[') && l.ends_with(']'))
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
    };
    if let Some(h) = header(line) {
        return sane(&h).then_some(h);
    }
    let key = line[..(offset - line_start).min(line.len())]
        .split_once('=')
        .map(|(k, _)| k.trim().to_string())?;
    if !sane(&key) {
        return None;
    }
    let table = text[..line_start].lines().rev().find_map(header);
    Some(match table {
        Some(t) if sane(&t) => format!("{t}.{key}"),
        _ => key,
    })
}

/// `msg` with every value the parser quotes hidden: the content of each
/// `"..."`, and of the backticks after `integer`, `floating point`,
/// `boolean` and `character` (serde's unexpected-value wording). Field
/// names in backticks (`unknown field `x``) stay.
fn hide_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut inside: Option<char> = None;
    let mut escaped = false;
    for ch in msg.chars() {
        if let Some(close) = inside {
            if escaped {
                escaped = false;
            } else if ch == '\\' && close == '"' {
                escaped = true;
            } else if ch == close {
                inside = None;
                out.push('…');
                out.push(ch);
            }
            continue;
        }
        out.push(ch);
        if ch == '"' {
            inside = Some('"');
        } else if ch == '`'
            && ["integer `", "floating point `", "boolean `", "character `"]
                .iter()
                .any(|p| out.ends_with(p))
        {
            inside = Some('`');
        }
    }
    if inside.is_some() {
        out.push('…');
    }
    out
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                path,
                format!(
                    "cannot read it: {} (pass --config PATH to use another file)",
                    crate::output::io_reason(&e)
                ),
            )
        })?;
        Config::parse(&text, path)
    }

    /// Parses config text; `path` is used for messages and relative paths.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        cfg.path = path.to_path_buf();
        for (name, env) in &cfg.environments {
            plain_name(name).map_err(|e| {
                ConfigError::new(path, format!("[environments.{name}]: the name {e}"))
            })?;
            if env.seeds.is_empty() {
                return Err(ConfigError::new(
                    path,
                    format!("environments.{name}.seeds: give at least one host:port"),
                ));
            }
            if let Some(aws) = &env.aws {
                aws.validate()
                    .map_err(|e| ConfigError::new(path, format!("environments.{name}.aws: {e}")))?;
            }
            if !(1..=100).contains(&env.evidence_retention_years) {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "environments.{name}.evidence_retention_years = {}: give 1 to 100 years \
                         (HIPAA keeps safeguard documentation for 6)",
                        env.evidence_retention_years
                    ),
                ));
            }
            let c = &env.config_command;
            if c.is_empty()
                || c.len() > 128
                || c.chars().any(|ch| ch.is_whitespace() || ch.is_control())
            {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "environments.{name}.config_command: give the name CONFIG has on the nodes \
                         (one word, as in `rename-command CONFIG <name>`); a CONFIG disabled with \
                         `rename-command CONFIG \"\"` cannot be named"
                    ),
                ));
            }
            let user = env.audit_user.get_ref();
            if user.is_empty() {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "environments.{name}: no audit_user: name the user the audit connects as \
                         (a read-only user: `epic-audit print-acl` prints its ACL), e.g. \
                         audit_user = \"auditor\" with [environments.{name}.users.auditor] \
                         password_file = \"...\""
                    ),
                ));
            }
            if !env.users.contains_key(user) {
                let span = env.audit_user.span();
                let at = if span.is_empty() {
                    String::new()
                } else {
                    format!("line {}: ", line_of(text, span.start))
                };
                return Err(ConfigError::new(
                    path,
                    format!(
                        "{at}environments.{name}.audit_user = `{user}`, but there is no \
                         [environments.{name}.users.{user}] with its password reference"
                    ),
                ));
            }
        }
        Ok(cfg)
    }

    /// The named environment, or an error listing the ones that exist.
    pub(crate) fn environment(&self, name: &str) -> Result<&Environment, ConfigError> {
        self.environments.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.environments.keys().map(String::as_str).collect();
            ConfigError::new(
                &self.path,
                format!(
                    "no environment `{name}`; this file defines: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })
    }

    /// Resolves a path from the config: `${LAB_DIR}` is replaced by the lab
    /// state directory, and relative paths are taken from the config file's
    /// directory.
    pub(crate) fn resolve_path(&self, p: &Path, lab_dir: &Path) -> PathBuf {
        let s = p.to_string_lossy();
        let expanded = if s.contains(LAB_DIR_PLACEHOLDER) {
            PathBuf::from(s.replace(LAB_DIR_PLACEHOLDER, &lab_dir.to_string_lossy()))
        } else {
            p.to_path_buf()
        };
        if expanded.is_absolute() {
            expanded
        } else {
            self.path
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join(expanded)
        }
    }

    /// Reads the password of `user` in `env_name` from its reference.
    pub(crate) fn resolve_secret(
        &self,
        env_name: &str,
        user: &str,
        lab_dir: &Path,
    ) -> Result<Secret, ConfigError> {
        let env = self.environment(env_name)?;
        let r = env.users.get(user).ok_or_else(|| {
            ConfigError::new(
                &self.path,
                format!("environments.{env_name}.users.{user} is not configured"),
            )
        })?;
        self.resolve_ref(
            env_name,
            r,
            &format!("the password of {user} (environments.{env_name}.users.{user}"),
            lab_dir,
        )
    }

    /// Reads a secret from its reference. `what` names it for messages, as
    /// `the password of X (environments.E.users.X` (the key is appended).
    pub(crate) fn resolve_ref(
        &self,
        env_name: &str,
        r: &SecretRef,
        what: &str,
        lab_dir: &Path,
    ) -> Result<Secret, ConfigError> {
        let env = self.environment(env_name)?;
        match r {
            SecretRef::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                _ => Err(ConfigError::new(
                    &self.path,
                    format!(
                        "{what}.password_env) is read from environment variable {var}, which is not set or empty"
                    ),
                )),
            },
            SecretRef::File(f) => {
                let path = self.resolve_path(f, lab_dir);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    let hint = if env.lab {
                        " (is the lab up? start it with `epic-audit-lab up`)"
                    } else {
                        ""
                    };
                    ConfigError::new(
                        &self.path,
                        format!(
                            "{what}.password_file) cannot be read from {}: {}{hint}",
                            path.display(),
                            e.kind()
                        ),
                    )
                })?;
                let first = text.lines().next().unwrap_or("").trim_end_matches('\r');
                if first.is_empty() {
                    let who = what.split(" (").next().unwrap_or(what);
                    return Err(ConfigError::new(
                        &self.path,
                        format!("{who} is read from {}, which is empty", path.display()),
                    ));
                }
                Ok(Secret::new(first))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[environments.a]
seeds = ["127.0.0.1:7000", "[::1]:7001"]
audit_user = "admin_user"
[environments.a.tls]
ca = "ca.crt"
client_cert = "c.crt"
client_key = "c.key"
[environments.a.users.admin_user]
password_env = "EPIC_AUDIT_TEST_NEVER_SET_VAR"
[environments.a.users.dev_user]
password_file = "${LAB_DIR}/secrets/dev_user.pass"
"#;

    #[test]
    fn parses_a_good_environment_with_defaults() {
        let c = Config::parse(GOOD, Path::new("/etc/x/epic-audit.toml")).unwrap();
        let e = c.environment("a").unwrap();
        assert_eq!(e.seeds[1].host, "::1");
        assert_eq!(e.seeds[1].to_string(), "[::1]:7001");
        assert_eq!(e.audit_user.get_ref(), "admin_user");
        assert_eq!(e.timeouts.connect_ms, 3000);
        assert_eq!(
            c.resolve_path(Path::new("${LAB_DIR}/secrets/x"), Path::new("/tmp/lab")),
            PathBuf::from("/tmp/lab/secrets/x")
        );
        assert_eq!(
            c.resolve_path(Path::new("ca.crt"), Path::new("/tmp/lab")),
            PathBuf::from("/etc/x/ca.crt")
        );
    }

    #[test]
    fn prometheus_settings_take_references_and_refuse_credentials_in_the_url() {
        let with = |t: &str| {
            Config::parse(
                &format!("{GOOD}[environments.a.monitoring]\n{t}\n"),
                Path::new("e.toml"),
            )
        };
        let c = with(
            "prometheus_url = \"https://prom.internal:9090/\"\nprometheus_token = { password_env = \"PROM_TOKEN\" }\nexporter_user = \"metrics\"",
        )
        .unwrap();
        let m = &c.environment("a").unwrap().monitoring;
        assert_eq!(
            m.prometheus_url.as_ref().unwrap().to_string(),
            "https://prom.internal:9090"
        );
        assert_eq!(
            m.prometheus_token,
            Some(SecretRef::Env("PROM_TOKEN".into()))
        );
        assert_eq!(m.exporter_user.as_deref(), Some("metrics"));
        let e = with("prometheus_url = \"http://admin:hunter2@prom:9090\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("may not carry a user or password"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        // A literal token is not a reference.
        let e = with("prometheus_token = \"tok-literal-value\"")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("tok-literal-value"), "{e}");
    }

    fn with_aws(table: &str) -> Result<Config, ConfigError> {
        Config::parse(
            &format!("{GOOD}[environments.a.aws]\n{table}\n"),
            Path::new("e.toml"),
        )
    }

    #[test]
    fn emulator_credentials_are_refused_for_anything_but_loopback() {
        let tag = r#"discovery = { tag = "t", value = "v" }"#;
        for ok in [
            "http://127.0.0.1:7379",
            "http://localhost:7379",
            "http://[::1]:7379/",
        ] {
            let c = with_aws(&format!(
                "endpoint = \"{ok}\"\ncredentials = \"emulator\"\n{tag}"
            ));
            assert!(c.is_ok(), "{ok}: {:?}", c.err());
        }
        for bad in [
            "http://10.0.1.5:4566",
            "https://ec2.us-east-1.amazonaws.com",
        ] {
            let e = with_aws(&format!(
                "endpoint = \"{bad}\"\ncredentials = \"emulator\"\n{tag}"
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains("loopback emulator only"), "{e}");
        }
        let e = with_aws(&format!("credentials = \"emulator\"\n{tag}")).unwrap_err();
        assert!(e.to_string().contains("needs an `endpoint`"), "{e}");
        let e = with_aws(&format!("endpoint = \"127.0.0.1:7379\"\n{tag}")).unwrap_err();
        assert!(e.to_string().contains("http://"), "{e}");
        // Real AWS: the standard chain, no endpoint needed.
        assert!(with_aws(&format!("region = \"us-east-1\"\n{tag}")).is_ok());
        let e = with_aws("region = \"us-east-1\"").unwrap_err();
        assert!(e.to_string().contains("discovery"), "{e}");
        let e = with_aws(&format!(
            "{tag}\nnode_ip_map = {{ \"127.0.1.1\" = \"ip-10-0-1-5\" }}"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("not an IP address"), "{e}");
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let bad = GOOD.replace("seeds =", "seedz =");
        let e = Config::parse(&bad, Path::new("my.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("my.toml"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("seedz"), "{msg}");
    }

    #[test]
    fn a_password_value_in_config_is_refused() {
        let bad = GOOD.replace(
            "password_env = \"EPIC_AUDIT_TEST_NEVER_SET_VAR\"",
            "password = \"hunter2\"",
        );
        let msg = Config::parse(&bad, Path::new("my.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 10"), "{msg}");
        assert!(msg.contains("password"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn no_config_error_quotes_a_value_from_the_file() {
        // A password where a table or a number belongs: serde names the
        // unexpected value, toml quotes the source line; neither may show.
        for (from, to) in [
            (
                "password_env = \"EPIC_AUDIT_TEST_NEVER_SET_VAR\"",
                "password = \"hunter2\"",
            ),
            (
                "[environments.a.users.dev_user]\npassword_file = \"${LAB_DIR}/secrets/dev_user.pass\"",
                "[environments.a.users]\ndev_user = \"hunter2\"",
            ),
            ("password_env = \"EPIC_AUDIT_TEST_NEVER_SET_VAR\"", "password_env = \"hunter2"),
        ] {
            assert!(GOOD.contains(from), "{from}");
            let bad = GOOD.replacen(from, to, 1);
            let msg = Config::parse(&bad, Path::new("my.toml"))
                .unwrap_err()
                .to_string();
            assert!(!msg.contains("hunter2"), "{msg}");
            assert!(msg.contains("line "), "{msg}");
        }
    }

    #[test]
    fn hide_quoted_hides_every_quoted_value() {
        assert_eq!(
            hide_quoted(r#"invalid type: string "s3cr\"et", expected `x`"#),
            "invalid type: string \"…\", expected `x`"
        );
        assert_eq!(hide_quoted(r#"open "abc"#), "open \"…");
        assert_eq!(
            hide_quoted(
                "invalid type: integer `12345678`, expected a string; unknown field `password`"
            ),
            "invalid type: integer `…`, expected a string; unknown field `password`"
        );
    }

    #[test]
    fn bad_seed_is_named() {
        let bad = GOOD.replace("127.0.0.1:7000", "127.0.0.1");
        let msg = Config::parse(&bad, Path::new("my.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("line 3") && msg.contains("not host:port"),
            "{msg}"
        );
    }

    #[test]
    fn audit_user_without_secret_is_named_with_line() {
        let bad = GOOD.replace("audit_user = \"admin_user\"", "audit_user = \"ops\"");
        let msg = Config::parse(&bad, Path::new("my.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 4") && msg.contains("`ops`"), "{msg}");
    }

    #[test]
    fn there_is_no_default_audit_user() {
        let bad = GOOD.replace("audit_user = \"admin_user\"\n", "");
        let msg = Config::parse(&bad, Path::new("my.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("environments.a: no audit_user") && msg.contains("epic-audit print-acl"),
            "{msg}"
        );
    }

    #[test]
    fn missing_secret_names_variable_and_file_never_value() {
        let c = Config::parse(GOOD, Path::new("/etc/x/epic-audit.toml")).unwrap();
        let msg = c
            .resolve_secret("a", "admin_user", Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("EPIC_AUDIT_TEST_NEVER_SET_VAR"), "{msg}");
        let msg = c
            .resolve_secret("a", "dev_user", Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("/nonexistent/secrets/dev_user.pass"), "{msg}");
    }

    #[test]
    fn secret_file_first_line_is_the_password() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        std::fs::write(dir.path().join("secrets/dev_user.pass"), "s3cret\n").unwrap();
        let c = Config::parse(GOOD, Path::new("/etc/x/epic-audit.toml")).unwrap();
        let s = c.resolve_secret("a", "dev_user", dir.path()).unwrap();
        assert_eq!(s.expose(), "s3cret");
    }

    #[test]
    fn unknown_environment_lists_known_ones() {
        let c = Config::parse(GOOD, Path::new("x.toml")).unwrap();
        let msg = c.environment("prod").unwrap_err().to_string();
        assert!(msg.contains("defines: a"), "{msg}");
    }
}
