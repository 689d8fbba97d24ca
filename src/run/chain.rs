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
    pub previous: Option<Predecessor>,
}

/// The predecessor a run names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Predecessor {
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
    /// When it was made: when probing started, or for a re-evaluation
    /// when it judged (the chain's time order).
    pub started_at: DateTime<Utc>,
    /// For a re-evaluation: the run id of the run that observed.
    pub observed_run_id: Option<String>,
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
        /// The signed run before the gap, if any.
        after: Option<Neighbour>,
        /// The signed run after the gap.
        before: Neighbour,
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
                    Some(a) => write!(f, "{which} (between {} and {})", a.dir, before.dir),
                    None => write!(f, "{which} (before {}, the first run on disk)", before.dir),
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
        let re = &p["reevaluation"];
        let started_at = re["evaluated_at"]
            .as_str()
            .or(p["started_at"].as_str())
            .and_then(|t| t.parse().ok());
        let (Some(started_at), Ok(bytes)) = (started_at, std::fs::read(dir.join(ENVELOPE))) else {
            continue;
        };
        if p["environment"] != env {
            continue;
        }
        out.push(Member {
            observed_run_id: re["observed_run_id"].as_str().map(str::to_string),
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
            previous: Some(Predecessor {
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
                before: Neighbour::of(m, *seq),
            }),
            Some((p, pm)) if *seq > p + 1 => out.push(Break::Missing {
                from: p + 1,
                to: seq - 1,
                after: Some(Neighbour::of(pm, p)),
                before: Neighbour::of(m, *seq),
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

/// A signed run beside a gap, as an acknowledgement names it: which run
/// it is, and the digest of its signed manifest, so the record holds only
/// for the chain as it was when it was signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbour {
    /// Its sequence number.
    pub sequence: u64,
    /// Its run id.
    pub run_id: String,
    /// Its directory name.
    pub dir: String,
    /// SHA-256 of its `manifest.dsse.json`.
    pub manifest_sha256: String,
}

impl Neighbour {
    fn of(m: &Member, sequence: u64) -> Neighbour {
        Neighbour {
            sequence,
            run_id: m.run_id.clone(),
            dir: m.dir.clone(),
            manifest_sha256: m.manifest_sha256.clone(),
        }
    }
}

/// A signed acknowledgement of missing runs: one gap of the chain, bound
/// to the signed runs on either side of it as they were when it was
/// signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// Environment.
    pub environment: String,
    /// First missing sequence number it covers.
    pub missing_from: u64,
    /// Last missing sequence number it covers.
    pub missing_to: u64,
    /// The signed run before the gap; `None` for a gap before the first
    /// run on disk.
    #[serde(default)]
    pub after: Option<Neighbour>,
    /// The signed run after the gap. `None` only in records from before
    /// acknowledgements were bound to the chain, which cover nothing.
    #[serde(default)]
    pub before: Option<Neighbour>,
    /// Why the runs are missing.
    pub reason: String,
    /// When it was signed.
    pub acknowledged_at: DateTime<Utc>,
}

impl Acknowledgement {
    /// An acknowledgement of the gap `b` (a [`Break::Missing`]), or `None`
    /// for any other break.
    pub fn of_gap(b: &Break, environment: &str, reason: &str, at: DateTime<Utc>) -> Option<Self> {
        match b {
            Break::Missing {
                from,
                to,
                after,
                before,
            } => Some(Acknowledgement {
                environment: environment.to_string(),
                missing_from: *from,
                missing_to: *to,
                after: after.clone(),
                before: Some(before.clone()),
                reason: reason.to_string(),
                acknowledged_at: at,
            }),
            _ => None,
        }
    }

    /// True when it covers the gap `b`: the same missing numbers between
    /// the same signed runs (run ids and manifest digests).
    pub fn covers(&self, b: &Break) -> bool {
        matches!(b, Break::Missing { from, to, after, before }
            if self.missing_from == *from
                && self.missing_to == *to
                && self.after == *after
                && self.before.as_ref() == Some(before))
    }

    /// Why it cannot hold for the chain `members`, if it cannot: it names
    /// no neighbours (an old record), names a run that is not there or
    /// whose manifest was replaced since, or was signed before a run it
    /// names existed.
    pub fn mismatch(&self, members: &[Member]) -> Option<String> {
        let Some(before) = &self.before else {
            return Some(
                "does not name the signed runs on either side of its gap (a record from an older \
                 epic-audit, or signed before the gap existed), so it covers nothing: acknowledge the \
                 gap again"
                    .into(),
            );
        };
        for n in self.after.iter().chain([before]) {
            let same_dir: Vec<&Member> = members.iter().filter(|m| m.dir == n.dir).collect();
            let Some(m) = same_dir.first() else {
                return Some(format!(
                    "names run {} (run {}) that is not there",
                    n.dir, n.sequence
                ));
            };
            if m.manifest_sha256 != n.manifest_sha256 {
                return Some(format!(
                    "names run {} with manifest sha256 {}, but its manifest is now {}: the run was \
                     replaced after the acknowledgement was signed",
                    n.dir,
                    short(&n.manifest_sha256),
                    short(&m.manifest_sha256)
                ));
            }
            if self.acknowledged_at < m.started_at {
                return Some(format!(
                    "was signed at {} before run {} ({}) existed",
                    self.acknowledged_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    n.sequence,
                    n.dir
                ));
            }
        }
        None
    }

    /// Its file name in the acknowledgements directory.
    pub fn file_name(&self) -> String {
        format!("gap-{}-{}.dsse.json", self.missing_from, self.missing_to)
    }
}

/// Why `--missing FROM-TO` cannot be acknowledged in the chain `members`,
/// or the gap it names: only a whole gap of the chain as it is, between
/// signed runs that exist, can be.
pub fn gap_to_acknowledge(members: &[Member], from: u64, to: u64) -> Result<Break, String> {
    let all = breaks(members);
    if let Some(b) = all
        .iter()
        .find(|b| matches!(b, Break::Missing { from: f, to: t, .. } if *f == from && *t == to))
    {
        return Ok(b.clone());
    }
    let which = if from == to {
        format!("run {from}")
    } else {
        format!("runs {from} to {to}")
    };
    let chained: Vec<(u64, &Member)> = members
        .iter()
        .filter_map(|m| m.link.as_ref().map(|l| (l.sequence, m)))
        .collect();
    if let Some((seq, m)) = chained.iter().find(|(s, _)| (from..=to).contains(s)) {
        return Err(format!(
            "run {seq} is not missing: it is on disk as {}; only a missing run can be acknowledged",
            m.dir
        ));
    }
    let newest = chained.iter().map(|(s, _)| *s).max().unwrap_or(0);
    if to > newest {
        return Err(format!(
            "{which} cannot be acknowledged: the newest signed run is run {newest}, so there is no \
             signed run after {} yet; a gap is acknowledged once the run after it exists",
            if from == to { "it" } else { "them" }
        ));
    }
    let overlapping: Vec<String> = all
        .iter()
        .filter_map(|b| match b {
            Break::Missing { from: f, to: t, .. } if *f <= to && from <= *t => Some(if f == t {
                format!("--missing {f}")
            } else {
                format!("--missing {f}-{t}")
            }),
            _ => None,
        })
        .collect();
    if !overlapping.is_empty() {
        return Err(format!(
            "{which} is not a whole gap of the chain: acknowledge the gap as it is, {}",
            overlapping.join(" and ")
        ));
    }
    Err(format!("{which} is not a gap of the chain"))
}

/// The keys an acknowledgement may be signed by: the key the runs are
/// signed with, unless the environment names its own
/// (`acknowledgement_pubkeys`: separation of duties, so the key that signs
/// the runs cannot excuse their gaps).
#[derive(Debug, Clone, Copy)]
pub enum AckKeys<'a> {
    /// Acknowledgements verify against the run key.
    RunKey(&'a PublicKey),
    /// Acknowledgements verify only against these keys.
    Only(&'a [PublicKey]),
}

impl<'a> AckKeys<'a> {
    /// `only` when the environment names acknowledgement keys, else the
    /// runs' key `run_key`.
    pub fn of(only: Option<&'a [PublicKey]>, run_key: &'a PublicKey) -> Self {
        only.map_or(AckKeys::RunKey(run_key), AckKeys::Only)
    }

    fn keys(&self) -> &[PublicKey] {
        match self {
            AckKeys::RunKey(k) => std::slice::from_ref(*k),
            AckKeys::Only(ks) => ks,
        }
    }
}

/// One acknowledgement file that verified.
#[derive(Debug, Clone)]
pub struct AckFile {
    /// Its path.
    pub path: PathBuf,
    /// What it says.
    pub ack: Acknowledgement,
    /// The id of the key that signed it.
    pub key_id: String,
}

/// The acknowledgements of `env` in `base` that verify against one of
/// `keys`; those that do not verify are returned as problems.
pub fn acknowledgements(base: &Path, env: &str, keys: AckKeys<'_>) -> (Vec<AckFile>, Vec<String>) {
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    let Ok(rd) = std::fs::read_dir(base.join(ACKNOWLEDGEMENTS)) else {
        return (ok, bad);
    };
    let mut files: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    files.sort();
    for p in files.into_iter().filter(|p| p.is_file()) {
        let mut last_err = String::new();
        let verified = keys.keys().iter().find_map(|k| match verify_ack(&p, k) {
            Ok(a) => Some((a, k.key_id())),
            Err(e) => {
                last_err = e;
                None
            }
        });
        match (verified, keys) {
            (Some((a, key_id)), _) if a.environment == env => ok.push(AckFile {
                path: p,
                ack: a,
                key_id,
            }),
            (Some(_), _) => {}
            (None, AckKeys::Only(ks)) => bad.push(format!(
                "{}: not signed by any of the environment's {} acknowledgement key(s) ({}): {last_err}",
                p.display(),
                ks.len(),
                ks.iter().map(|k| k.key_id()).collect::<Vec<_>>().join(", ")
            )),
            (None, AckKeys::RunKey(_)) => bad.push(format!("{}: {last_err}", p.display())),
        }
    }
    (ok, bad)
}

/// Reads and verifies one acknowledgement file.
fn verify_ack(p: &Path, key: &PublicKey) -> Result<Acknowledgement, String> {
    let text = std::fs::read(p).map_err(|e| crate::output::io_reason(&e))?;
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
    let dir = base.join(ACKNOWLEDGEMENTS);
    std::fs::create_dir_all(&dir).map_err(|e| {
        anyhow::anyhow!(
            "creating {}: {}",
            dir.display(),
            crate::output::io_reason(&e)
        )
    })?;
    let path = dir.join(ack.file_name());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), crate::output::io_reason(&e)))?;
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
    /// Gaps an acknowledgement covers: (the gap, its acknowledgement).
    pub acknowledged: Vec<(String, AckFile)>,
    /// Runs from before chaining (no chain fields in their manifest).
    pub before_chaining: Vec<String>,
    /// Lowest and highest sequence number among the runs.
    pub span: Option<(u64, u64)>,
}

/// The chain of `env`'s runs `members` (from [`members`] of `base`),
/// judged for the runs `scope` (directory names): every break that names
/// one of them, each acknowledged by a signed record in `base` that one of
/// `keys` verifies or not. A record whose neighbouring runs do not match
/// the chain (not there, replaced since, or younger than the record) is a
/// problem of its own and covers nothing.
pub fn status(
    base: &Path,
    env: &str,
    keys: AckKeys<'_>,
    members: &[Member],
    scope: &[String],
) -> Status {
    let in_scope = |d: &str| scope.iter().any(|s| s == d);
    let (mut acks, bad) = acknowledgements(base, env, keys);
    let mut st = Status {
        unacknowledged: bad
            .into_iter()
            .map(|b| format!("acknowledgement {b}"))
            .collect(),
        ..Default::default()
    };
    acks.retain(|a| match a.ack.mismatch(members) {
        Some(why) => {
            st.unacknowledged
                .push(format!("acknowledgement {} {why}", a.path.display()));
            false
        }
        None => true,
    });
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
                in_scope(&before.dir) || after.as_ref().is_some_and(|a| in_scope(&a.dir))
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
        match acks.iter().find(|a| a.ack.covers(&b)) {
            Some(a) => st.acknowledged.push((b.to_string(), a.clone())),
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
            observed_run_id: None,
            started_at: format!("2026-11-01T10:{minute:02}:00Z").parse().unwrap(),
            link: Some(Link {
                sequence: seq,
                previous: prev.map(|p| Predecessor {
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
        let b = breaks(&c);
        assert_eq!(b.len(), 1);
        assert!(
            matches!(&b[0], Break::Missing { from: 1, to: 2, after: None, before } if before.dir == "c"),
            "{b:?}"
        );
        let at = "2026-11-02T00:00:00Z".parse().unwrap();
        let ack = Acknowledgement::of_gap(&b[0], "e", "lost", at).unwrap();
        assert!(ack.covers(&b[0]));
        assert_eq!(ack.mismatch(&c), None);
    }

    #[test]
    fn an_acknowledgement_holds_only_for_the_chain_it_was_signed_for() {
        let c = [
            m("a", 1, None, "a-digest", 1),
            m("c", 3, Some("b"), "c-digest", 3),
            m("d", 4, Some("c"), "d-digest", 4),
        ];
        let at = "2026-11-02T00:00:00Z".parse().unwrap();
        // Only the whole gap, between runs that are there.
        let gap = gap_to_acknowledge(&c, 2, 2).unwrap();
        let ack = Acknowledgement::of_gap(&gap, "e", "lost", at).unwrap();
        assert!(ack.covers(&gap));
        assert_eq!(ack.mismatch(&c), None);
        let e = gap_to_acknowledge(&c, 3, 3).unwrap_err();
        assert!(
            e.contains("run 3 is not missing: it is on disk as c"),
            "{e}"
        );
        let e = gap_to_acknowledge(&c, 5, 5).unwrap_err();
        assert!(e.contains("the newest signed run is run 4"), "{e}");
        let e = gap_to_acknowledge(&c, 1, u64::MAX).unwrap_err();
        assert!(e.contains("not missing"), "{e}");
        // The run after the gap replaced: the record covers nothing and
        // says why.
        let replaced = [
            m("a", 1, None, "a-digest", 1),
            m("c", 3, Some("b"), "c-forged", 3),
            m("d", 4, Some("c"), "d-digest", 4),
        ];
        assert!(!ack.covers(&breaks(&replaced)[0]));
        let why = ack.mismatch(&replaced).unwrap();
        assert!(
            why.contains("names run c") && why.contains("replaced"),
            "{why}"
        );
        // The run before it gone.
        let gone = [m("c", 3, Some("b"), "c-digest", 3)];
        let why = ack.mismatch(&gone).unwrap();
        assert!(
            why.contains("names run a (run 1) that is not there"),
            "{why}"
        );
        // Signed before a run it names started.
        let early = Acknowledgement {
            acknowledged_at: "2026-11-01T10:02:00Z".parse().unwrap(),
            ..ack.clone()
        };
        let why = early.mismatch(&c).unwrap();
        assert!(why.contains("before run 3 (c) existed"), "{why}");
        // A record without neighbours (an older epic-audit's) covers nothing.
        let old = Acknowledgement {
            after: None,
            before: None,
            ..ack
        };
        assert!(!old.covers(&gap));
        assert!(old.mismatch(&c).unwrap().contains("covers nothing"));
    }
}
