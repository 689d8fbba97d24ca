//! An environment's `[monitoring]` table.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::secret_ref::SecretRef;

/// The monitoring layer: where the exporters listen, the Prometheus that
/// scrapes them, and the ACL user they log in as.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringSettings {
    /// Exporter port on each node's host, when not listed in `exporters`.
    pub exporter_port: u16,
    /// Explicit node (`host:port`) -> exporter (`host:port`, as Prometheus
    /// scrapes it).
    pub exporters: BTreeMap<String, String>,
    /// Prometheus's base URL (`http://10.0.3.205:9090`; https verifies
    /// against the environment's CA). Without it the Prometheus checks
    /// (MON-003 to MON-005) are `incomplete`.
    pub prometheus_url: Option<crate::http::HttpUrl>,
    /// A bearer token for Prometheus, by reference (`{ password_env = "..." }`
    /// or `{ password_file = "..." }`).
    pub prometheus_token: Option<SecretRef>,
    /// A basic-auth user for Prometheus (with `prometheus_password`).
    pub prometheus_user: Option<String>,
    /// Its password, by reference.
    pub prometheus_password: Option<SecretRef>,
    /// The ACL user the exporters log in as: MON-007 sweeps it with ACL
    /// DRYRUN in place of the policy's `user` (default: the policy's).
    pub exporter_user: Option<String>,
}

impl Default for MonitoringSettings {
    fn default() -> Self {
        MonitoringSettings {
            exporter_port: 9121,
            exporters: BTreeMap::new(),
            prometheus_url: None,
            prometheus_token: None,
            prometheus_user: None,
            prometheus_password: None,
            exporter_user: None,
        }
    }
}
