//! What names an evidence store: its `s3://bucket/prefix` address and the
//! write-once retention its objects get, as the config and the command
//! line give them (the store itself is `crate::store`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// `s3://bucket/prefix`: a bucket and a key prefix (possibly empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without leading or trailing `/` (may be empty).
    pub prefix: String,
}

impl StoreUrl {
    /// The key of `rest` under the prefix.
    pub fn key(&self, rest: &str) -> String {
        if self.prefix.is_empty() {
            rest.to_string()
        } else {
            format!("{}/{rest}", self.prefix)
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

impl FromStr for StoreUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let rest = s.strip_prefix("s3://").ok_or_else(|| {
            format!(
                "`{s}` is not an evidence store: write s3://BUCKET/PREFIX (S3 is the only store)"
            )
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3's bucket naming rules: 3 to 63 characters of lower-case
        // letters, digits, dots and hyphens, starting and ending with a
        // letter or digit.
        let edge_ok =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
            && edge_ok(bucket.chars().next())
            && edge_ok(bucket.chars().last());
        if !valid {
            return Err(format!(
                "`{s}`: `{bucket}` is not a valid S3 bucket name (3 to 63 lower-case letters, digits, dots \
                 and hyphens, starting and ending with a letter or digit)"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            return Err(format!(
                "`{s}`: the prefix may not hold empty, `.` or `..` segments"
            ));
        }
        Ok(StoreUrl {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

impl<'de> Deserialize<'de> for StoreUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The S3 Object Lock mode of stored evidence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// Nobody, not even the account's root user, can delete an object
    /// version or shorten its retention before it expires.
    #[default]
    Compliance,
    /// Users with `s3:BypassGovernanceRetention` can; for trials only.
    Governance,
}

impl LockMode {
    /// As S3 writes it: `COMPLIANCE` or `GOVERNANCE`.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Compliance => "COMPLIANCE",
            LockMode::Governance => "GOVERNANCE",
        }
    }
}

/// HIPAA's retention of the documentation of safeguards: six years from
/// its creation (45 CFR 164.316(b)(2)(i)).
pub const DEFAULT_RETENTION_YEARS: u32 = 6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse_and_refuse_what_s3_would() {
        let u: StoreUrl = "s3://hipaa-evidence/epic-audit/prod/".parse().unwrap();
        assert_eq!(u.bucket, "hipaa-evidence");
        assert_eq!(u.prefix, "epic-audit/prod");
        assert_eq!(u.key("prod/run/x"), "epic-audit/prod/prod/run/x");
        assert_eq!(u.to_string(), "s3://hipaa-evidence/epic-audit/prod");
        let bare: StoreUrl = "s3://evidence".parse().unwrap();
        assert_eq!(bare.key("a"), "a");
        for bad in [
            "https://evidence/x",
            "s3://Evidence/x",
            "s3://ev/x",
            "s3://-evidence/x",
            "s3://evidence/a/../b",
            "s3://evidence/a//b",
        ] {
            assert!(bad.parse::<StoreUrl>().is_err(), "{bad}");
        }
    }
}
