//! A run directory: the one place that knows its layout (every file name,
//! the salt beside it, the manifest and bundle), writes a run, finds runs
//! (the previous run of an environment, the runs of a quarter) and verifies
//! one. Adding a file to every run is one edit, in [`write::contents`].
//!
//! ```text
//! reports/<env>/<run-id>/           one run (run id: UTC start, -2, -3... if taken)
//!   evidence.json                   what the probes saw (re-judge it with `evaluate`)
//!   report.json  report.md  report.html  junit.xml
//!   assessment-results.json         NIST OSCAL Assessment Results
//!   report.sarif                    SARIF 2.1.0 (CI code scanning)
//!   manifest.dsse.json              DSSE envelope over every other file (signed runs)
//!   manifest.sigstore.json          the same signature as a Sigstore bundle
//! reports/<env>/<run-id>.salt       the session-hash salt, beside (never inside) the run
//! ```

pub mod chain;
pub(crate) mod find;
pub(crate) mod layout;
pub(crate) mod verify_run;
pub(crate) mod write;

pub(crate) use find::{scan, FoundRun};
pub(crate) use layout::*;
pub(crate) use verify_run::{check, verify};
pub(crate) use write::{write, write_salt, Stored, Written};
