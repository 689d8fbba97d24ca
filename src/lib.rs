//! epic-audit: a live HIPAA compliance audit of a self-managed Redis Cluster.
//!
//! The data flow is deliberately one-way, so that every verdict can be traced
//! to what was seen and re-judged later without a network:
//!
//! ```text
//! config + policy -> probes (observe, async, deadlines) -> EvidenceSet
//!                 -> checks (pure functions) -> Report -> terminal, report.json,
//!                    junit.xml, report.md, report.html, report.sarif and
//!                    assessment-results.json (OSCAL), signed in manifest.json
//! ```
//!
//! - [`probes`] connect to things and record what they saw; they never judge.
//! - [`checks`] are pure functions of evidence and policy parameters.
//! - [`engine`] wires the two together with concurrency and deadlines.
//! - [`report`] renders the judged result; [`run`] owns the run directory
//!   (layout, writing, finding, verifying), written atomically by [`output`];
//!   [`sign`] signs and verifies; [`export`] packs a quarter.
//! - [`aws`] is the AWS plumbing (SDK configuration, errors) under the AWS
//!   probe, the KMS signer and the lab.
//!
//! # The API
//!
//! The library has two users besides the `epic-audit` binary: the lab
//! crate (`lab/`, binary `epic-audit-lab`) and the integration tests. Items
//! marked `pub` are what they use: the configuration and policy types, the
//! evidence model (so tests build and judge fixture evidence), the checks'
//! outcomes and findings, the engine's `observe`/`judge`, the report
//! renderers, run verification and export, the deadline-bounded Redis
//! connection (`resp`, `tls`, `net`) and the secrets type. Everything else
//! is `pub(crate)`: free to change without touching the lab or the tests.

#![warn(unreachable_pub)]

pub mod aws;
pub mod checks;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod engine;
pub mod evidence;
pub mod export;
pub mod hipaa;
pub mod http;
pub mod iam;
pub mod net;
pub mod output;
pub mod policy;
pub mod probes;
pub mod report;
pub mod resp;
pub mod run;
pub mod secret;
pub mod sign;
pub mod store;
pub mod tls;
pub mod waivers;

/// Installs the one rustls crypto provider this binary uses (aws-lc-rs).
///
/// rustls panics in `ClientConfig::builder()` when it cannot tell which
/// provider to use; installing it once at start-up makes that impossible.
/// Safe to call many times (tests call it from every entry point).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
