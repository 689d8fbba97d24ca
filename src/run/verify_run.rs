//! Verifying one run directory: its signature and every digest, through
//! [`crate::sign`], and the verdict an export lists for it.

use std::collections::BTreeMap;
use std::path::Path;

use super::layout::ENVELOPE;
use crate::sign::{PublicKey, Verification, Verified};

/// Verifies the run directory `dir` against `key`. Every problem is named:
/// a bad signature, a file whose digest differs, a missing file, an extra
/// file.
pub(crate) fn verify(dir: &Path, key: &PublicKey) -> Result<Verified, Vec<String>> {
    let mut files = BTreeMap::new();
    let rd = std::fs::read_dir(dir)
        .map_err(|e| vec![format!("{}: cannot read: {}", dir.display(), e.kind())])?;
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().to_string();
        let p = e.path();
        if p.is_dir() {
            // A run directory is flat: a directory in it was added.
            files.insert(format!("{name}/"), Vec::new());
            continue;
        }
        let data = std::fs::read(&p)
            .map_err(|e| vec![format!("{}: cannot read: {}", p.display(), e.kind())])?;
        files.insert(name, data);
    }
    if !files.contains_key(ENVELOPE) {
        return Err(vec![format!(
            "{}: missing (not a signed run directory)",
            dir.join(ENVELOPE).display()
        )]);
    }
    crate::sign::verify_files(&files, key)
}

/// Verifies `dir` against `key` as an export lists it; `report_readable`
/// says whether its report.json was read as a report.
pub(crate) fn check(dir: &Path, key: &PublicKey, report_readable: bool) -> Verification {
    match (verify(dir, key), report_readable) {
        (Ok(v), true) => Verification::Valid { key_id: v.key_id },
        (Ok(_), false) => Verification::UnreadableReport,
        (Err(problems), _) => Verification::Invalid(problems),
    }
}
