//! The evidence store: an S3 bucket with Object Lock where every signed
//! run is kept write-once for its retention (six years by default), and
//! where the environment's chain head lives, so runs made on different
//! machines chain.
//!
//! ```text
//! s3://BUCKET/PREFIX/<env>/<run-dir>/<file>        every file of a signed run (not its salt)
//! s3://BUCKET/PREFIX/<env>/acknowledgements/<file> signed gap acknowledgements
//! s3://BUCKET/PREFIX/<env>/exports/<archive>       quarterly exports (`export --store`)
//! s3://BUCKET/PREFIX/<env>/chain-head.json         the newest stored run (mutable pointer)
//! ```
//!
//! Every evidence object is written with `If-None-Match: *` (never over
//! another), S3's SHA-256 checksum, and Object Lock retention (mode and
//! retain-until date); it is then read back and its bytes, lock mode and
//! date compared with what was sent. The chain head is replaced with a
//! conditional write (`If-Match` its ETag, or `If-None-Match: *` for the
//! first): of two runs that read the same head, the second to finish is
//! refused, says so, and exits non-zero; its run is stored all the same and
//! `verify`/`export` name the fork. Every call runs under the
//! environment's AWS deadlines.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ObjectLockMode};
use base64::Engine;
use chrono::{DateTime, Months, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::config::{LockMode, StoreUrl, DEFAULT_RETENTION_YEARS};

use crate::config::{AwsSettings, Timeouts};
use crate::run::chain::{Link, Predecessor};
use crate::run::layout::{ACKNOWLEDGEMENTS, BUNDLE, ENVELOPE};

/// The chain head object's name under `<prefix>/<env>/`.
pub const HEAD: &str = "chain-head.json";
/// Where exports go under `<prefix>/<env>/`.
pub const EXPORTS: &str = "exports";

/// Why the store could not do what was asked. Never holds credentials
/// (the SDK's messages carry codes, messages and the endpoint only).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another run replaced the chain head between this run's read and
    /// its write.
    #[error(
        "another run of `{env}` was stored while this one was written (the chain head now names {now}): \
         both claim run number {sequence}. This run is stored; `epic-audit verify` and `export` will name \
         the fork. Run audits of one environment one at a time"
    )]
    Raced {
        /// Environment.
        env: String,
        /// The sequence number both claim.
        sequence: u64,
        /// The run the head names now.
        now: String,
    },
    /// Anything else, as a sentence naming the call and the object.
    #[error("{0}")]
    Failed(String),
}

/// The newest stored run of an environment (the chain head object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadRecord {
    /// Environment.
    pub environment: String,
    /// Its sequence number.
    pub sequence: u64,
    /// Its run id.
    pub run_id: String,
    /// Its directory name.
    pub dir: String,
    /// SHA-256 of its manifest.
    pub manifest_sha256: String,
}

impl HeadRecord {
    /// The link of the run after it.
    pub fn next(&self) -> Link {
        Link {
            sequence: self.sequence + 1,
            previous: Some(Predecessor {
                run_id: self.run_id.clone(),
                dir: self.dir.clone(),
                manifest_sha256: self.manifest_sha256.clone(),
            }),
        }
    }
}

/// The chain head as read: the record (none before the first stored run)
/// and the ETag a conditional replacement must match.
#[derive(Debug, Clone)]
pub struct Head {
    /// The newest stored run.
    pub record: Option<HeadRecord>,
    etag: Option<String>,
}

/// An object as read: its bytes and what S3 says of it.
struct Read {
    bytes: Vec<u8>,
    etag: Option<String>,
    /// Object Lock mode, as S3 writes it.
    mode: Option<String>,
    /// Retain-until date, seconds since the epoch.
    until: Option<i64>,
    /// S3's SHA-256 checksum (base64), when it keeps one.
    checksum: Option<String>,
}

/// What storing a run did.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// `s3://bucket/prefix/env/dir/`.
    pub location: String,
    /// Objects written and read back.
    pub objects: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Lock mode.
    pub mode: LockMode,
    /// Retained until.
    pub retain_until: DateTime<Utc>,
    /// Upload, read-back and head update, wall clock.
    pub elapsed: Duration,
}

impl std::fmt::Display for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} objects, {} bytes; Object Lock {} until {}; SHA-256 of every object read back and matched; {} ms)",
            self.location,
            self.objects,
            self.bytes,
            self.mode.as_str(),
            self.retain_until.format("%Y-%m-%d %H:%M:%SZ"),
            self.elapsed.as_millis()
        )
    }
}

/// An evidence store reached with an environment's AWS settings.
pub struct Store {
    client: aws_sdk_s3::Client,
    /// Where it is.
    pub url: StoreUrl,
    /// Lock mode of what it writes.
    pub mode: LockMode,
    /// Years each object is locked for.
    pub years: u32,
    deadline: Duration,
}

/// `retain_until` of an object written for a run started at `t`: `years`
/// calendar years later, rounded up to the second (S3 keeps seconds).
pub fn retain_until(t: DateTime<Utc>, years: u32) -> DateTime<Utc> {
    let until = t
        .checked_add_months(Months::new(12 * years))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let whole = until.timestamp() + i64::from(until.timestamp_subsec_nanos() > 0);
    DateTime::<Utc>::from_timestamp(whole, 0).unwrap_or(until)
}

fn sha256_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

fn failed<E, R>(call: &str, key: &str, e: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let detail = match e {
        SdkError::ServiceError(_) => format!(
            "{}: {}",
            e.code().unwrap_or("unknown"),
            e.message().unwrap_or("(no message)")
        ),
        _ => crate::aws::error_chain(e),
    };
    let hint = if detail.contains("Object Lock") || detail.contains("ObjectLock") {
        " (the bucket must be created with Object Lock enabled: `aws s3api create-bucket ... \
         --object-lock-enabled-for-bucket`)"
    } else {
        ""
    };
    StoreError::Failed(format!("s3:{call} {key} failed: {detail}{hint}"))
}

fn precondition_failed<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(e, SdkError::ServiceError(_)) && e.code() == Some("PreconditionFailed")
}

impl Store {
    /// A store at `url`, reached with `aws` (region, profile, endpoint and
    /// credentials; `None`: the standard AWS chain) within `timeouts`.
    /// A custom endpoint (an S3-compatible service or the emulator) is
    /// addressed path-style.
    pub async fn connect(
        url: StoreUrl,
        aws: Option<&AwsSettings>,
        timeouts: &Timeouts,
        mode: LockMode,
        years: u32,
    ) -> Store {
        let conf = crate::aws::sdk_config_for(
            aws.and_then(|a| a.region.as_deref()),
            aws.and_then(|a| a.profile.as_deref()),
            aws.and_then(|a| a.endpoint.as_deref()),
            aws.map(|a| a.credentials).unwrap_or_default(),
            timeouts,
        )
        .await;
        let s3 = aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(aws.is_some_and(|a| a.endpoint.is_some()))
            .build();
        Store {
            client: aws_sdk_s3::Client::from_conf(s3),
            url,
            mode,
            years,
            deadline: timeouts.command() * 3 + timeouts.connect() + Duration::from_secs(2),
        }
    }

    /// Runs one call under the store's deadline.
    async fn bounded<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.deadline, fut)
            .await
            .map_err(|_| {
                StoreError::Failed(format!(
                    "{what}: no answer from {} within {} s",
                    self.url,
                    self.deadline.as_secs()
                ))
            })?
    }

    fn key(&self, env: &str, rest: &str) -> String {
        self.url.key(&format!("{env}/{rest}"))
    }

    /// Reads `env`'s chain head.
    pub async fn head(&self, env: &str) -> Result<Head, StoreError> {
        let key = self.key(env, HEAD);
        let Some(got) = self.read(&key, "reading the chain head").await? else {
            return Ok(Head {
                record: None,
                etag: None,
            });
        };
        let record: HeadRecord = serde_json::from_slice(&got.bytes).map_err(|e| {
            StoreError::Failed(format!(
                "{}/{key} is not an epic-audit chain head ({e}); it was not written by epic-audit",
                self.url.bucket
            ))
        })?;
        Ok(Head {
            record: Some(record),
            etag: got.etag,
        })
    }

    /// Reads the object `key` whole, with what S3 says of it (`None`: no
    /// such key), under the deadline; S3's checksum is asked for and the
    /// SDK validates the body against it.
    async fn read(&self, key: &str, what: &str) -> Result<Option<Read>, StoreError> {
        self.bounded(what, async {
            let out = match self
                .client
                .get_object()
                .bucket(&self.url.bucket)
                .key(key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
            {
                Ok(o) => o,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                    return Ok(None)
                }
                Err(e) => return Err(failed("GetObject", key, &e)),
            };
            let mut got = Read {
                etag: out.e_tag().map(str::to_string),
                mode: out.object_lock_mode().map(|m| m.as_str().to_string()),
                until: out.object_lock_retain_until_date().map(|d| d.secs()),
                checksum: out.checksum_sha256().map(str::to_string),
                bytes: Vec::new(),
            };
            got.bytes = out
                .body
                .collect()
                .await
                .map_err(|e| {
                    StoreError::Failed(format!("s3:GetObject {key}: reading the body: {e}"))
                })?
                .into_bytes()
                .to_vec();
            Ok(Some(got))
        })
        .await
    }

    /// [`Store::read`] of an object that must exist.
    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        match self.read(key, "reading an object").await? {
            Some(got) => Ok(got.bytes),
            None => Err(StoreError::Failed(format!(
                "s3://{}/{key} was listed but cannot be found",
                self.url.bucket
            ))),
        }
    }

    /// Writes one evidence object (never over an existing one), locked
    /// until `until`, and reads it back: its bytes' SHA-256, lock mode and
    /// date must be what was sent.
    pub(crate) async fn put_locked(
        &self,
        key: &str,
        bytes: Vec<u8>,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let digest = sha256_b64(&bytes);
        let mode = ObjectLockMode::from(self.mode.as_str());
        let when = aws_sdk_s3::primitives::DateTime::from_secs(until.timestamp());
        let content_type = if key.ends_with(".json") || key.ends_with(".sarif") {
            "application/json"
        } else if key.ends_with(".html") {
            "text/html; charset=utf-8"
        } else if key.ends_with(".xml") {
            "application/xml"
        } else if key.ends_with(".md") {
            "text/markdown; charset=utf-8"
        } else {
            "application/octet-stream"
        };
        self.bounded("storing an object", async {
            self.client
                .put_object()
                .bucket(&self.url.bucket)
                .key(key)
                .content_type(content_type)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .checksum_sha256(&digest)
                .object_lock_mode(mode.clone())
                .object_lock_retain_until_date(when)
                .if_none_match("*")
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map_err(|e| {
                    if precondition_failed(&e) {
                        StoreError::Failed(format!(
                            "s3://{}/{key} exists already: evidence is never overwritten (a run with \
                             this directory name was stored before)",
                            self.url.bucket
                        ))
                    } else {
                        failed("PutObject", key, &e)
                    }
                })
        })
        .await?;
        let Some(got) = self.read(key, "reading an object back").await? else {
            return Err(StoreError::Failed(format!(
                "s3://{}/{key} was stored but cannot be read back",
                self.url.bucket
            )));
        };
        let mut problems = Vec::new();
        if sha256_b64(&got.bytes) != digest {
            problems.push("its bytes read back differ from those sent".to_string());
        }
        if got.checksum.as_deref().is_some_and(|c| c != digest) {
            problems.push("S3's SHA-256 checksum differs from ours".to_string());
        }
        if got.mode.as_deref() != Some(self.mode.as_str()) {
            problems.push(format!(
                "its Object Lock mode is {} (expected {})",
                got.mode.as_deref().unwrap_or("none"),
                self.mode.as_str()
            ));
        }
        if got.until.is_none_or(|t| t < until.timestamp()) {
            problems.push(format!(
                "it is retained until {} (expected {})",
                got.until
                    .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "no date".into()),
                until.to_rfc3339()
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Failed(format!(
                "s3://{}/{key} was stored but does not hold what was sent: {}",
                self.url.bucket,
                problems.join("; ")
            )))
        }
    }

    /// Stores every file of the signed run in `dir` of `env` (its
    /// manifest last, so a run whose upload stopped half-way has none and
    /// is no member of the chain), locked until `started_at` + the
    /// retention, then advances the chain head from `head` to it.
    pub async fn put_run(
        &self,
        env: &str,
        dir: &Path,
        link: &Link,
        head: &Head,
        started_at: DateTime<Utc>,
        run_id: &str,
    ) -> Result<Receipt, StoreError> {
        let t0 = Instant::now();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .ok_or_else(|| {
                StoreError::Failed(format!("{} has no directory name", dir.display()))
            })?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| StoreError::Failed(format!("reading {}: {e}", dir.display())))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        // Manifest and bundle last.
        files.sort_by_key(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().to_string());
            let rank = match n.as_deref() {
                Some(BUNDLE) => 1,
                Some(ENVELOPE) => 2,
                _ => 0,
            };
            (rank, p.clone())
        });
        if !files.iter().any(|p| p.ends_with(ENVELOPE)) {
            return Err(StoreError::Failed(format!(
                "{} holds no {ENVELOPE}: only signed runs are evidence to store",
                dir.display()
            )));
        }
        let until = retain_until(started_at, self.years);
        let mut bytes_total = 0u64;
        let mut manifest_sha256 = String::new();
        for f in &files {
            let file = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let bytes = std::fs::read(f)
                .map_err(|e| StoreError::Failed(format!("reading {}: {e}", f.display())))?;
            if file == ENVELOPE {
                manifest_sha256 = hex::encode(Sha256::digest(&bytes));
            }
            bytes_total += bytes.len() as u64;
            self.put_locked(&self.key(env, &format!("{name}/{file}")), bytes, until)
                .await?;
        }
        self.advance(env, head, link, &name, run_id, manifest_sha256)
            .await?;
        Ok(Receipt {
            location: format!("s3://{}/{}/", self.url.bucket, self.key(env, &name)),
            objects: files.len(),
            bytes: bytes_total,
            mode: self.mode,
            retain_until: until,
            elapsed: t0.elapsed(),
        })
    }

    /// Replaces the chain head read as `head` with the run just stored.
    async fn advance(
        &self,
        env: &str,
        head: &Head,
        link: &Link,
        dir: &str,
        run_id: &str,
        manifest_sha256: String,
    ) -> Result<(), StoreError> {
        let key = self.key(env, HEAD);
        let record = HeadRecord {
            environment: env.to_string(),
            sequence: link.sequence,
            run_id: run_id.to_string(),
            dir: dir.to_string(),
            manifest_sha256,
        };
        let body = serde_json::to_vec_pretty(&record).expect("a head record serialises");
        let digest = sha256_b64(&body);
        let raced = self
            .bounded("advancing the chain head", async {
                let mut put = self
                    .client
                    .put_object()
                    .bucket(&self.url.bucket)
                    .key(&key)
                    .content_type("application/json")
                    .checksum_algorithm(ChecksumAlgorithm::Sha256)
                    .checksum_sha256(digest);
                put = match &head.etag {
                    Some(e) => put.if_match(e),
                    None => put.if_none_match("*"),
                };
                match put.body(ByteStream::from(body)).send().await {
                    Ok(_) => Ok(false),
                    Err(e) if precondition_failed(&e) => Ok(true),
                    Err(e) => Err(failed("PutObject", &key, &e)),
                }
            })
            .await?;
        if raced {
            let now = self
                .head(env)
                .await
                .ok()
                .and_then(|h| h.record)
                .map(|r| format!("{} (run {})", r.dir, r.sequence))
                .unwrap_or_else(|| "another run".into());
            return Err(StoreError::Raced {
                env: env.to_string(),
                sequence: link.sequence,
                now,
            });
        }
        Ok(())
    }

    /// Stores one more evidence file of `env` (an acknowledgement, an
    /// export) under `<env>/<folder>/<file name>`, locked for the
    /// retention from now; returns its `s3://` address.
    pub async fn put_file(
        &self,
        env: &str,
        folder: &str,
        file: &Path,
    ) -> Result<String, StoreError> {
        let bytes = std::fs::read(file)
            .map_err(|e| StoreError::Failed(format!("reading {}: {e}", file.display())))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let key = self.key(env, &format!("{folder}/{name}"));
        self.put_locked(&key, bytes, retain_until(Utc::now(), self.years))
            .await?;
        Ok(format!("s3://{}/{key}", self.url.bucket))
    }

    /// Every key under `<prefix>/<env>/`, relative to it.
    async fn list(&self, env: &str) -> Result<Vec<String>, StoreError> {
        let base = self.key(env, "");
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .bounded("listing the store", async {
                    self.client
                        .list_objects_v2()
                        .bucket(&self.url.bucket)
                        .prefix(&base)
                        .set_continuation_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| failed("ListObjectsV2", &base, &e))
                })
                .await?;
            for o in page.contents() {
                if let Some(rest) = o.key().and_then(|k| k.strip_prefix(&base)) {
                    keys.push(rest.to_string());
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Copies `env`'s stored evidence into `dest/<env>/` laid out as a
    /// reports directory: every run's manifest (the chain needs them all),
    /// every file of the runs `wanted` picks by their manifest's start
    /// time, and every acknowledgement. Returns the number of runs copied
    /// whole.
    pub async fn fetch_env(
        &self,
        env: &str,
        dest: &Path,
        wanted: &dyn Fn(DateTime<Utc>) -> bool,
    ) -> Result<usize, StoreError> {
        let keys = self.list(env).await?;
        let base = dest.join(env);
        let write = |rel: &str, bytes: &[u8]| -> Result<(), StoreError> {
            let p = base.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Failed(format!("creating {}: {e}", parent.display()))
                })?;
            }
            std::fs::write(&p, bytes)
                .map_err(|e| StoreError::Failed(format!("writing {}: {e}", p.display())))
        };
        let mut runs: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for k in &keys {
            let Some((first, file)) = k.split_once('/') else {
                continue; // the chain head
            };
            // Keys are relative to <env>/; a safe local path has no `..`.
            if file.contains('/')
                || first == EXPORTS
                || first.starts_with('.')
                || file.starts_with('.')
            {
                continue;
            }
            if first == ACKNOWLEDGEMENTS {
                write(k, &self.get(&self.key(env, k)).await?)?;
            } else {
                runs.entry(first).or_default().push(file);
            }
        }
        let mut whole = 0;
        for (dir, files) in runs {
            if !files.contains(&ENVELOPE) {
                continue; // an upload that stopped before its manifest
            }
            let manifest = self
                .get(&self.key(env, &format!("{dir}/{ENVELOPE}")))
                .await?;
            write(&format!("{dir}/{ENVELOPE}"), &manifest)?;
            let started = crate::run::find::manifest_statement(&base.join(dir))
                .and_then(|st| st["predicate"]["started_at"].as_str()?.parse().ok());
            if started.is_some_and(wanted) {
                for f in files.iter().filter(|f| **f != ENVELOPE) {
                    write(
                        &format!("{dir}/{f}"),
                        &self.get(&self.key(env, &format!("{dir}/{f}"))).await?,
                    )?;
                }
                whole += 1;
            }
        }
        Ok(whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_calendar_years_from_the_run() {
        let t: DateTime<Utc> = "2026-02-28T08:00:00Z".parse().unwrap();
        assert_eq!(retain_until(t, 6).to_rfc3339(), "2032-02-28T08:00:00+00:00");
        let leap: DateTime<Utc> = "2028-02-29T08:00:00Z".parse().unwrap();
        assert_eq!(
            retain_until(leap, 1).to_rfc3339(),
            "2029-02-28T08:00:00+00:00"
        );
    }

    #[test]
    fn the_next_link_follows_the_head() {
        let h = HeadRecord {
            environment: "prod".into(),
            sequence: 41,
            run_id: "r".into(),
            dir: "d".into(),
            manifest_sha256: "ab".into(),
        };
        let l = h.next();
        assert_eq!(l.sequence, 42);
        assert_eq!(l.previous.unwrap().manifest_sha256, "ab");
    }
}
