//! `epic-audit keygen`: a new Ed25519 signing key pair.

use std::path::Path;

use anyhow::Result;

use crate::cli::UsageError;

/// Writes a key pair into `out` (never overwriting) and says where.
pub(crate) fn keygen(out: &Path) -> Result<u8> {
    let (private, public) = crate::sign::keygen(out).map_err(|e| UsageError(e.to_string()))?;
    println!("private key (keep it secret, 0600): {}", private.display());
    println!("public key (give it to auditors):   {}", public.display());
    Ok(0)
}
