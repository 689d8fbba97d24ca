//! What the probes saw: typed, serialisable, with subject, time and method.
//!
//! An [`EvidenceSet`] is the complete record of one run's observations. It is
//! written as `evidence.json` and can be judged again offline with
//! `epic-audit evaluate`, so everything a check needs must be in here.

pub(crate) mod acl;
pub(crate) mod aws;
pub(crate) mod cluster;
pub(crate) mod data;
pub(crate) mod latency;
pub(crate) mod set;
pub mod tls;
pub mod topology;

pub use acl::*;
pub use aws::*;
pub use cluster::*;
pub use data::*;
pub use latency::*;
pub use set::*;
pub use tls::*;
pub(crate) use topology::Topology;
