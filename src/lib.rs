//! epic-audit: a live HIPAA compliance audit of a self-managed Redis Cluster.
//!
//! The data flow is deliberately one-way, so that every verdict can be traced
//! to what was seen and re-judged later without a network:
//!
//! ```text
//! config + policy -> probes (observe, async, deadlines) -> EvidenceSet
//!                 -> checks (pure functions) -> Report -> json / junit / terminal
//! ```
//!
//! - [`probes`] connect to things and record what they saw; they never judge.
//! - [`checks`] are pure functions of evidence and policy parameters.
//! - [`engine`] wires the two together with concurrency and deadlines.
//! - [`report`] renders the judged result; [`output`] writes it atomically.

pub mod aws;
pub mod checks;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod engine;
pub mod evidence;
pub mod export;
pub mod hipaa;
pub mod net;
pub mod output;
pub mod policy;
pub mod probes;
pub mod report;
pub mod resp;
pub mod run;
pub mod secret;
pub mod sign;
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
