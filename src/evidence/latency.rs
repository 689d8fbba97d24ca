//! What the latency probe observes on each master: the workload it ran, the
//! client-side distributions (corrected and raw) and the server's own view.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Workload settings, from the latency check's parameters.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct LatencySettings {
    /// User the load runs as (the application's; PERF-001's `user`).
    pub user: String,
    /// Glob the probe's keys are made from: `*` becomes
    /// `epic-audit-probe:{tag}:N`. PERF-001's `key_pattern`, else the
    /// session pattern of the policy's TTL check (DATA-005), so the keys
    /// fall inside the application user's key patterns.
    pub key_pattern: String,
    /// Operations per second per master.
    pub rate_per_master: u32,
    /// Measured duration.
    pub duration_ms: u64,
    /// Warm-up before measuring (discarded).
    pub warmup_ms: u64,
    /// Hard cap on operations per master (warm-up included).
    pub max_ops: u64,
    /// Distinct probe keys per master.
    pub keys: u32,
    /// TTL of the probe keys.
    pub key_ttl_s: u64,
    /// Only these masters (`host:port`); empty measures every master.
    pub masters: Vec<String>,
    /// Every n-th operation is a write (HSET+EXPIRE), the others HGETALL;
    /// 2 alternates, 0 reads only.
    pub write_every: u64,
    /// At most this many operations in flight on the connection; 0 (the
    /// default) is a true open loop. 1 makes a closed loop (the next
    /// operation waits for the previous answer), which is how
    /// redis-benchmark measures: only the `raw` figures mean anything then,
    /// and it exists to compare the client with redis-benchmark.
    pub max_in_flight: u32,
}

impl Default for LatencySettings {
    fn default() -> Self {
        LatencySettings {
            user: String::new(),
            key_pattern: String::new(),
            rate_per_master: 1000,
            duration_ms: 5000,
            warmup_ms: 1000,
            max_ops: 20_000,
            keys: 100,
            key_ttl_s: 60,
            masters: Vec::new(),
            write_every: 2,
            max_in_flight: 0,
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Maximum.
    pub max_us: u64,
    /// Mean.
    pub mean_us: f64,
}

/// What the probe saw on one master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyView {
    /// Master address.
    pub master: String,
    /// User the load ran as.
    pub user: String,
    /// Hash tag mapping the probe keys to this master.
    pub hash_tag: String,
    /// TCP + TLS handshake of the dedicated connection.
    pub connect_us: u64,
    /// The workload.
    pub settings: LatencySettings,
    /// Operations planned (warm-up included).
    pub planned_ops: u64,
    /// Operations completed (warm-up included).
    pub completed_ops: u64,
    /// Operations without an answer before the deadline.
    pub timed_out_ops: u64,
    /// Error replies.
    pub errors: u64,
    /// First error reply.
    pub first_error: Option<String>,
    /// Measured operations per second.
    pub achieved_rate: f64,
    /// Latency from the intended send time (coordinated-omission corrected).
    pub corrected: Distribution,
    /// Latency from the actual send time.
    pub raw: Distribution,
    /// Corrected, HGETALL only.
    pub reads: Distribution,
    /// Corrected, HSET+EXPIRE only.
    pub writes: Distribution,
    /// Server side: INFO commandstats deltas over the run (calls, mean µs).
    pub server_usec_per_call: BTreeMap<String, (u64, f64)>,
    /// Server side: INFO latencystats for the same commands (cumulative
    /// since the server's last stats reset).
    pub server_latencystats: BTreeMap<String, String>,
    /// What the clean-up did.
    pub cleanup: String,
    /// When the probe's keys were created and when its last operation was
    /// answered: the window the figures describe. The engine runs this
    /// probe alone, after every other probe has finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<chrono::DateTime<chrono::Utc>>,
    /// End of the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_end: Option<chrono::DateTime<chrono::Utc>>,
    /// The concurrent load the probe saw: INFO commandstats call deltas
    /// over the window of every command the probe does not send itself
    /// (other clients' traffic on this master), by command.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_commands: BTreeMap<String, u64>,
    /// The auditing host's own latency during the same window, and the
    /// client latency net of it. Absent in evidence from before it was
    /// recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostNoise>,
}

/// What the auditing host itself added during a latency window: a timer
/// on the measuring thread ticked open-loop at `tick_hz` and recorded how
/// late each wake-up was (from its intended time, so coordinated omission
/// is corrected as for the operations); each operation's latency less the
/// part of it the host held (its late send, and every late tick's span
/// inside it) is its net latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostNoise {
    /// Host timer ticks per second.
    pub tick_hz: u32,
    /// How late the host timer woke (µs), over the measured window.
    pub lateness: Distribution,
    /// Each measured operation's corrected latency less what the host held
    /// of it: the cluster's share, as far as the host can tell.
    pub net: Distribution,
}
