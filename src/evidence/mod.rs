//! What the probes saw: typed, serialisable, with subject, time and method.
//!
//! An [`EvidenceSet`] is the complete record of one run's observations. It is
//! written as `evidence.json` and can be judged again offline with
//! `epic-audit evaluate`, so everything a check needs must be in here.

pub mod acl;
pub mod aws;
pub mod cluster;
pub mod data;
pub mod latency;
pub mod set;
pub mod tls;
pub mod topology;

pub use acl::*;
pub use aws::*;
pub use cluster::*;
pub use data::*;
pub use latency::*;
pub use set::*;
pub use tls::*;
pub use topology::Topology;
