//! Checks judge; they never do I/O.
//!
//! A [`Rule`] is a pure function of the [`EvidenceSet`](crate::evidence::EvidenceSet)
//! and its parameters (from the policy TOML) that returns one
//! [`SubjectFinding`] per subject. Policy entries in `checks/*.toml` bind a
//! stable id, severity and HIPAA references to a rule. Adding a rule: write
//! the function in the area's file and add one line to [`registry`]. What
//! every rule is made of lives in [`rule`].

use std::collections::BTreeMap;

pub(crate) mod access;
pub(crate) mod backup;
pub(crate) mod cluster;
pub(crate) mod data;
pub(crate) mod encryption;
pub(crate) mod monitoring;
pub(crate) mod network;
pub(crate) mod patch;
pub(crate) mod performance;
pub(crate) mod permissions;
pub(crate) mod placement;
pub mod reason;
pub(crate) mod rule;
pub(crate) mod sessions;
pub(crate) mod transport;

pub use patch::AdvisoryTable;
pub use reason::Reason;
pub use rule::{Outcome, Rule, SubjectFinding};

/// Every reason a finding can carry, area by area (for the docs and the
/// tests).
pub fn reasons() -> Vec<Reason> {
    let mut v: Vec<Reason> = Vec::new();
    v.extend(reason::Common::ALL.iter().map(|r| Reason::from(*r)));
    v.extend(access::Why::ALL.iter().map(|r| Reason::from(*r)));
    v.extend(permissions::Why::ALL.iter().map(|r| Reason::from(*r)));
    v.extend(transport::Why::ALL.iter().map(|r| Reason::from(*r)));
    v.extend(data::Why::ALL.iter().map(|r| Reason::from(*r)));
    v.extend(sessions::Why::ALL.iter().map(|r| Reason::from(*r)));
    v.extend(monitoring::Why::ALL.iter().map(|r| Reason::from(*r)));
    v.extend(performance::Why::ALL.iter().map(|r| Reason::from(*r)));
    v.extend(cluster::Why::ALL.iter().map(|r| Reason::from(*r)));
    v.extend(placement::Why::ALL.iter().map(|r| Reason::from(*r)));
    v.extend(network::Why::ALL.iter().map(|r| Reason::from(*r)));
    v.extend(encryption::Why::ALL.iter().map(|r| Reason::from(*r)));
    v.extend(backup::Why::ALL.iter().map(|r| Reason::from(*r)));
    v.extend(patch::Why::ALL.iter().map(|r| Reason::from(*r)));
    v
}

/// Every rule, by name.
pub fn registry() -> BTreeMap<&'static str, Rule> {
    let mut rules = cluster::rules();
    rules.extend(access::rules());
    rules.extend(permissions::rules());
    rules.extend(transport::rules());
    rules.extend(performance::rules());
    rules.extend(data::rules());
    rules.extend(sessions::rules());
    rules.extend(monitoring::rules());
    rules.extend(network::rules());
    rules.extend(encryption::rules());
    rules.extend(placement::rules());
    rules.extend(backup::rules());
    rules.extend(patch::rules());
    rules.into_iter().map(|r| (r.name, r)).collect()
}
