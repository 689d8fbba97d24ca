//! The chain of an environment's signed runs: every signed run names its
//! predecessor in the same environment (sequence number, the previous
//! run's id and the SHA-256 of its signed manifest), inside its signed
//! predicate, so a run deleted, replaced or re-signed later breaks the
//! chain where anyone with the public key can see it. The first chained
//! run of an environment is its genesis (`previous: null`).
//!
//! Where the predecessor comes from: the environment's reports directory
//! (the newest chained run there). Two runs written at once, or on two
//! machines with their own directories, can claim the same predecessor:
//! that is not prevented at write time but found at `verify` and `export`
//! as a fork, and named.
//!
//! A break that cannot be mended (a run lost with a CI runner's disk) is
//! acknowledged by a signed record (`epic-audit acknowledge`) naming the
//! missing sequence numbers and the reason; the export then passes and
//! lists it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::find::{manifest_statement, run_dirs};
use super::layout::{ACKNOWLEDGEMENTS, ENVELOPE};
use crate::sign::PublicKey;

/// Predicate type of a gap acknowledgement.
pub const ACK_PREDICATE_TYPE: &str = "https://epic-audit.invalid/predicate/gap-acknowledgement/v1";

/// A run's place in its environment's chain (in its signed predicate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// 1 for the environment's first chained run, then one more per run.
    pub sequence: u64,
    /// The run before it; `None` for the genesis run.
    pub previous: Option<Previous>,
}

/// The predecessor a run names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous {
    /// Its run id.
    pub run_id: String,
    /// Its directory name.
    pub dir: String,
    /// SHA-256 of its `manifest.dsse.json`, as written.
    pub manifest_sha256: String,
}

/// A signed run as the chain sees it (read from its manifest, unverified:
/// the caller verifies the run itself).
#[derive(Debug, Clone)]
pub struct Member {
    /// Directory name.
    pub dir: String,
    /// Run id.
    pub run_id: String,
    /// When probing started.
    pub started_at: DateTime<Utc>,
    /// Its link; `None` for a run from before chaining.
    pub link: Option<Link>,
    /// SHA-256 of its manifest file.
    pub manifest_sha256: String,
}

/// A break in the chain, each naming the runs around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// Sequence numbers with no run.
    Missing {
        /// First missing sequence number.
        from: u64,
        /// Last missing sequence number.
        to: u64,
        /// The run before the gap, if any.
        after: Option<String>,
        /// The run after the gap.
        before: String,
    },
    /// A run's recorded predecessor is not the run on disk.
    Digest {
        /// The run that names its predecessor.
        run: String,
        /// The run at the previous sequence number.
        predecessor: String,
        /// What it recorded.
        recorded: String,
        /// What is there.
        found: String,
    },
    /// Two or more runs with the same sequence number.
    Fork {
        /// The sequence number.
        sequence: u64,
        /// The runs claiming it.
        runs: Vec<String>,
    },
    /// A run started before its predecessor.
    OutOfOrder {
        /// The later run in the chain.
        run: String,
        /// Its predecessor, which started after it.
        predecessor: String,
    },
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Missing {
                from,
                to,
                after,
                before,
            } => {
                let which = if from == to {
                    format!("run {from} is missing")
                } else {
                    format!("runs {from} to {to} are missing")
                };
                match after {
                    Some(a) => write!(f, "{which} (between {a} and {before})"),
                    None => write!(f, "{which} (before {before}, the first run on disk)"),
                }
            }
            Break::Digest {
                run,
                predecessor,
                recorded,
                found,
            } => write!(
                f,
                "{run} names a predecessor manifest sha256 {} but {predecessor}'s is {}: the predecessor was \
                 replaced or rewritten after {run} was signed",
                short(recorded),
                short(found)
            ),
            Break::Fork { sequence, runs } => write!(
                f,
                "fork: {} all claim run number {sequence} (written concurrently, or from two reports \
                 directories)",
                runs.join(", ")
            ),
            Break::OutOfOrder { run, predecessor } => write!(
                f,
                "{run} started before its predecessor {predecessor}: out of time order"
            ),
        }
    }
}

fn short(d: &str) -> &str {
    d.get(..16).unwrap_or(d)
}

/// Every signed run of `env` in `base` (`<reports>/<env>/`), in directory
/// order, placed by its manifest alone (its environment, start, run id and
/// link, and the manifest's digest); unsigned runs are not members.
pub fn members(base: &Path, env: &str) -> std::io::Result<Vec<Member>> {
    let mut out = Vec::new();
    for (name, dir) in run_dirs(base)? {
        let Some(st) = manifest_statement(&dir) else {
            continue;
        };
        let p = &st["predicate"];
        let started_at = p["started_at"].as_str().and_then(|t| t.parse().ok());
        let (Some(started_at), Ok(bytes)) = (started_at, std::fs::read(dir.join(ENVELOPE))) else {
            continue;
        };
        if p["environment"] != env {
            continue;
        }
        out.push(Member {
            run_id: p["run_id"].as_str().unwrap_or(&name).to_string(),
            link: serde_json::from_value::<Link>(p["chain"].clone()).ok(),
            dir: name,
            started_at,
            manifest_sha256: hex::encode(Sha256::digest(bytes)),
        });
    }
    Ok(out)
}

/// The link of the next run written to `base`: after the chained run with
/// the highest sequence number (the newest by start time among equals),
/// else the genesis.
pub fn next(base: &Path, env: &str) -> Link {
    let members = members(base, env).unwrap_or_default();
    let head = members
        .iter()
        .filter_map(|m| m.link.as_ref().map(|l| (l.sequence, m.started_at, m)))
        .max_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    match head {
        None => Link {
            sequence: 1,
            previous: None,
        },
        Some((sequence, _, m)) => Link {
            sequence: sequence + 1,
            previous: Some(Previous {
                run_id: m.run_id.clone(),
                dir: m.dir.clone(),
                manifest_sha256: m.manifest_sha256.clone(),
            }),
        },
    }
}

/// Every break among `members` (the chained ones; runs from before
/// chaining are left out).
pub fn breaks(members: &[Member]) -> Vec<Break> {
    let mut by_seq: BTreeMap<u64, Vec<&Member>> = BTreeMap::new();
    for m in members {
        if let Some(l) = &m.link {
            by_seq.entry(l.sequence).or_default().push(m);
        }
    }
    let mut out = Vec::new();
    for (seq, ms) in &by_seq {
        if ms.len() > 1 {
            out.push(Break::Fork {
                sequence: *seq,
                runs: ms.iter().map(|m| m.dir.clone()).collect(),
            });
        }
    }
    let mut prev: Option<(u64, &Member)> = None;
    for (seq, ms) in &by_seq {
        let m = ms[0];
        match prev {
            None if *seq > 1 => out.push(Break::Missing {
                from: 1,
                to: seq - 1,
                after: None,
                before: m.dir.clone(),
            }),
            Some((p, pm)) if *seq > p + 1 => out.push(Break::Missing {
                from: p + 1,
                to: seq - 1,
                after: Some(pm.dir.clone()),
                before: m.dir.clone(),
            }),
            Some((p, pm)) if *seq == p + 1 => {
                // Each claimant of this number must name the run before it.
                for m in ms {
                    if let Some(named) = m.link.as_ref().and_then(|l| l.previous.as_ref()) {
                        if named.manifest_sha256 != pm.manifest_sha256
                            && by_seq[&p]
                                .iter()
                                .all(|c| c.manifest_sha256 != named.manifest_sha256)
                        {
                            out.push(Break::Digest {
                                run: m.dir.clone(),
                                predecessor: pm.dir.clone(),
                                recorded: named.manifest_sha256.clone(),
                                found: pm.manifest_sha256.clone(),
                            });
                        }
                    }
                    if m.started_at < pm.started_at {
                        out.push(Break::OutOfOrder {
                            run: m.dir.clone(),
                            predecessor: pm.dir.clone(),
                        });
                    }
                }
            }
            _ => {}
        }
        prev = Some((*seq, m));
    }
    out
}

/// A signed acknowledgement of missing runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// Environment.
    pub environment: String,
    /// First missing sequence number it covers.
    pub missing_from: u64,
    /// Last missing sequence number it covers.
    pub missing_to: u64,
    /// Why the runs are missing.
    pub reason: String,
    /// When it was signed.
    pub acknowledged_at: DateTime<Utc>,
}

impl Acknowledgement {
    /// True when it covers the gap `b`.
    pub fn covers(&self, b: &Break) -> bool {
        matches!(b, Break::Missing { from, to, .. } if self.missing_from <= *from && *to <= self.missing_to)
    }

    /// Its file name in the acknowledgements directory.
    pub fn file_name(&self) -> String {
        format!("gap-{}-{}.dsse.json", self.missing_from, self.missing_to)
    }
}

/// `<reports>/<env>/acknowledgements/`.
pub fn acknowledgements_dir(base: &Path) -> PathBuf {
    base.join(ACKNOWLEDGEMENTS)
}

/// The acknowledgements of `env` in `base` that verify against `key`, with
/// their files; those that do not verify are returned as problems.
pub fn acknowledgements(
    base: &Path,
    env: &str,
    key: &PublicKey,
) -> (Vec<(PathBuf, Acknowledgement)>, Vec<String>) {
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    let Ok(rd) = std::fs::read_dir(acknowledgements_dir(base)) else {
        return (ok, bad);
    };
    let mut files: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    files.sort();
    for p in files.into_iter().filter(|p| p.is_file()) {
        match verify_ack(&p, key) {
            Ok(a) if a.environment == env => ok.push((p, a)),
            Ok(_) => {}
            Err(e) => bad.push(format!("{}: {e}", p.display())),
        }
    }
    (ok, bad)
}

/// Reads and verifies one acknowledgement file.
fn verify_ack(p: &Path, key: &PublicKey) -> Result<Acknowledgement, String> {
    let text = std::fs::read(p).map_err(|e| e.kind().to_string())?;
    let st = crate::sign::verify_statement(&text, key)?;
    if st["predicateType"] != ACK_PREDICATE_TYPE {
        return Err("not a gap acknowledgement".into());
    }
    serde_json::from_value(st["predicate"].clone())
        .map_err(|e| format!("not a gap acknowledgement: {e}"))
}

/// Writes a signed acknowledgement into `base`'s acknowledgements
/// directory (never replacing one) and returns its path.
pub fn acknowledge(
    base: &Path,
    ack: &Acknowledgement,
    signer: &crate::sign::RunSigner,
) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    let predicate = serde_json::to_value(ack)?;
    let subject = vec![(
        format!(
            "{}/gap-{}-{}",
            ack.environment, ack.missing_from, ack.missing_to
        ),
        hex::encode(Sha256::digest(ack.reason.as_bytes())),
    )];
    let envelope = signer.envelope_for_digests(&subject, ACK_PREDICATE_TYPE, predicate)?;
    let dir = acknowledgements_dir(base);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(ack.file_name());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    f.write_all(&serde_json::to_vec_pretty(&envelope)?)?;
    f.sync_all()?;
    Ok(path)
}

/// The chain as it bears on some runs (a quarter's): its breaks that
/// touch them, acknowledged or not, and those runs from before chaining.
#[derive(Debug, Default)]
pub struct Status {
    /// Breaks no acknowledgement covers (and acknowledgements that do not
    /// verify), as sentences.
    pub unacknowledged: Vec<String>,
    /// Gaps an acknowledgement covers: (the gap, its acknowledgement, its file).
    pub acknowledged: Vec<(String, Acknowledgement, PathBuf)>,
    /// Runs from before chaining (no chain fields in their manifest).
    pub before_chaining: Vec<String>,
    /// Lowest and highest sequence number among the runs.
    pub span: Option<(u64, u64)>,
}

/// The chain of `env`'s runs `members` (from [`members`] of `base`),
/// judged for the runs `scope` (directory names): every break that names
/// one of them, each acknowledged by a signed record in `base` that `key`
/// verifies or not.
pub fn status(
    base: &Path,
    env: &str,
    key: &PublicKey,
    members: &[Member],
    scope: &[String],
) -> Status {
    let in_scope = |d: &str| scope.iter().any(|s| s == d);
    let (acks, bad) = acknowledgements(base, env, key);
    let mut st = Status {
        unacknowledged: bad
            .into_iter()
            .map(|b| format!("acknowledgement {b}"))
            .collect(),
        ..Default::default()
    };
    for m in members.iter().filter(|m| in_scope(&m.dir)) {
        match &m.link {
            None => st.before_chaining.push(m.dir.clone()),
            Some(l) => {
                st.span = Some(match st.span {
                    None => (l.sequence, l.sequence),
                    Some((a, b)) => (a.min(l.sequence), b.max(l.sequence)),
                })
            }
        }
    }
    for b in breaks(members) {
        let touches = match &b {
            Break::Missing { after, before, .. } => {
                in_scope(before) || after.as_deref().is_some_and(in_scope)
            }
            Break::Digest {
                run, predecessor, ..
            }
            | Break::OutOfOrder { run, predecessor } => in_scope(run) || in_scope(predecessor),
            Break::Fork { runs, .. } => runs.iter().any(|r| in_scope(r)),
        };
        if !touches {
            continue;
        }
        match acks.iter().find(|(_, a)| a.covers(&b)) {
            Some((p, a)) => st.acknowledged.push((b.to_string(), a.clone(), p.clone())),
            None => st.unacknowledged.push(b.to_string()),
        }
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(dir: &str, seq: u64, prev: Option<&str>, digest: &str, minute: u32) -> Member {
        Member {
            dir: dir.into(),
            run_id: dir.into(),
            started_at: format!("2026-11-01T10:{minute:02}:00Z").parse().unwrap(),
            link: Some(Link {
                sequence: seq,
                previous: prev.map(|p| Previous {
                    run_id: p.into(),
                    dir: p.into(),
                    manifest_sha256: format!("{p}-digest"),
                }),
            }),
            manifest_sha256: digest.into(),
        }
    }

    #[test]
    fn an_intact_chain_has_no_break() {
        let c = [
            m("a", 1, None, "a-digest", 1),
            m("b", 2, Some("a"), "b-digest", 2),
            m("c", 3, Some("b"), "c-digest", 3),
        ];
        assert_eq!(breaks(&c), vec![]);
    }

    #[test]
    fn every_kind_of_break_is_named() {
        // b missing; d's recorded digest of c is not c's; e and e2 fork;
        // f started before e.
        let c = [
            m("a", 1, None, "a-digest", 1),
            m("c", 3, Some("b"), "c-rewritten", 3),
            m("d", 4, Some("c"), "d-digest", 4),
            m("e", 5, Some("d"), "e-digest", 6),
            m("e2", 5, Some("d"), "e2-digest", 7),
            m("f", 6, Some("e"), "f-digest", 5),
        ];
        let b = breaks(&c);
        let text: Vec<String> = b.iter().map(|b| b.to_string()).collect();
        assert!(
            text.contains(&"run 2 is missing (between a and c)".to_string()),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("d names a predecessor manifest sha256")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("fork: e, e2 all claim run number 5")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t == "f started before its predecessor e: out of time order"),
            "{text:#?}"
        );
        assert_eq!(b.len(), 4, "{text:#?}");
    }

    #[test]
    fn a_missing_start_and_runs_before_chaining() {
        let mut old = m("old", 1, None, "x", 0);
        old.link = None;
        let c = [old, m("c", 3, Some("b"), "c-digest", 3)];
        assert_eq!(
            breaks(&c),
            vec![Break::Missing {
                from: 1,
                to: 2,
                after: None,
                before: "c".into()
            }]
        );
        let ack = Acknowledgement {
            environment: "e".into(),
            missing_from: 1,
            missing_to: 2,
            reason: "lost".into(),
            acknowledged_at: Utc::now(),
        };
        assert!(ack.covers(&breaks(&c)[0]));
    }
}
