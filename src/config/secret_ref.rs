//! A secret's reference in the config: an environment variable or a file,
//! never the value.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// Where a password comes from. Exactly one of the two keys must be set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// Read from this environment variable.
    Env(String),
    /// Read from this file (first line, trailing newline stripped).
    File(PathBuf),
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            password_env: Option<String>,
            password_file: Option<PathBuf>,
        }
        let raw = Raw::deserialize(d)?;
        match (raw.password_env, raw.password_file) {
            (Some(v), None) if !v.is_empty() => Ok(SecretRef::Env(v)),
            (None, Some(f)) => Ok(SecretRef::File(f)),
            (Some(_), Some(_)) => Err(serde::de::Error::custom(
                "set either password_env or password_file, not both",
            )),
            _ => Err(serde::de::Error::custom(
                "a user needs password_env (an environment variable name) or password_file (a path); \
                 passwords are never written in the config itself",
            )),
        }
    }
}
