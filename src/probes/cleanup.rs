//! The latency probe's clean-up: the keys of every latency run not yet
//! deleted, behind one handle the process makes and passes down
//! ([`LatencyCleanup`]), so a Ctrl-C deletes them too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{NodeAddr, Timeouts};
use crate::resp::RedisConn;
use crate::secret::Secret;
use crate::tls::TlsClient;

/// Keys still to delete if the run is interrupted.
pub(crate) struct PendingCleanup {
    pub(crate) id: u64,
    pub(crate) addr: NodeAddr,
    pub(crate) tls: TlsClient,
    pub(crate) timeouts: Timeouts,
    pub(crate) user: String,
    pub(crate) password: Secret,
    pub(crate) keys: Vec<String>,
}

/// The latency probe's clean-up handle: the keys of every latency run not
/// yet cleaned up, whether a latency probe is running, and whether the
/// runs were cancelled. One handle is made by the process (`cmd::main`)
/// and passed down to every run it starts through
/// [`ProbeContext::latency`]; its Ctrl-C path calls [`Self::cleanup_pending`]
/// on the same handle. Clones share one state.
#[derive(Clone, Default)]
pub struct LatencyCleanup(Arc<CleanupState>);

#[derive(Default)]
struct CleanupState {
    pending: Mutex<Vec<PendingCleanup>>,
    /// A latency probe is running: they never overlap (a fleet shares the
    /// handle, so two environments never measure at once).
    running: AtomicBool,
    /// Set by the Ctrl-C path: the writers stop, so no write races the
    /// clean-up.
    cancelled: AtomicBool,
}

impl std::fmt::Debug for LatencyCleanup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyCleanup")
            .field("pending", &self.0.pending.lock().map(|p| p.len()).ok())
            .finish_non_exhaustive()
    }
}

pub(crate) async fn delete_keys(
    addr: &NodeAddr,
    tls: &TlsClient,
    timeouts: &Timeouts,
    user: &str,
    password: &Secret,
    keys: &[String],
) -> Result<u64, String> {
    let mut c = RedisConn::connect_as(addr, tls, timeouts, user, password)
        .await
        .map_err(|e| e.to_string())?;
    let mut deleted = 0;
    for chunk in keys.chunks(500) {
        let mut cmd = vec![b"DEL".to_vec()];
        cmd.extend(chunk.iter().map(|k| k.as_bytes().to_vec()));
        match c.pipeline(&[cmd]).await.map_err(|e| e.to_string())?.pop() {
            Some(redis::Value::Int(n)) => deleted += n as u64,
            other => {
                return Err(format!(
                    "DEL answered {}",
                    crate::resp::describe(other.as_ref())
                ))
            }
        }
    }
    Ok(deleted)
}

impl LatencyCleanup {
    /// Deletes the probe keys of every latency run that has not cleaned up
    /// (called by the Ctrl-C handler).
    pub(crate) async fn cleanup_pending(&self) -> CleanupReport {
        let st = &self.0;
        let active = st.pending.lock().map(|p| p.len()).unwrap_or(0);
        // Stop every ticker, so no write re-creates a key after it is deleted.
        // Each run then deletes its own keys; wait for that (bounded), then
        // delete whatever is left. The process is ending.
        st.cancelled.store(true, Ordering::SeqCst);
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_secs(3)
            && st.pending.lock().map(|p| !p.is_empty()).unwrap_or(false)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = st
            .pending
            .lock()
            .map(|p| p.iter().map(|c| c.keys.len()).sum::<usize>())
            .unwrap_or(0);
        let deleted = self.delete_pending().await;
        CleanupReport {
            active_runs: active,
            left_for_ttl: left.saturating_sub(deleted as usize),
        }
    }

    /// Deletes the keys of runs that did not clean up (e.g. cut by their
    /// deadline), without cancelling other runs.
    pub(crate) async fn delete_pending(&self) -> u64 {
        let pending: Vec<PendingCleanup> = match self.0.pending.lock() {
            Ok(mut p) => p.drain(..).collect(),
            Err(_) => return 0,
        };
        let mut n = 0;
        for p in pending {
            if let Ok(d) =
                delete_keys(&p.addr, &p.tls, &p.timeouts, &p.user, &p.password, &p.keys).await
            {
                n += d;
            }
        }
        n
    }

    pub(crate) fn register(&self, p: PendingCleanup) {
        if let Ok(mut v) = self.0.pending.lock() {
            v.push(p);
        }
    }

    pub(crate) fn unregister(&self, id: u64) {
        if let Ok(mut v) = self.0.pending.lock() {
            v.retain(|p| p.id != id);
        }
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Marks a latency probe as running; false when one already was (they
    /// never overlap in one process).
    pub(crate) fn start(&self) -> bool {
        !self.0.running.swap(true, Ordering::SeqCst)
    }

    /// Marks the latency probe as finished.
    pub(crate) fn finish(&self) {
        self.0.running.store(false, Ordering::SeqCst);
    }
}

/// What the Ctrl-C clean-up did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CleanupReport {
    /// Latency runs that were active.
    pub active_runs: usize,
    /// Keys that could not be deleted (they expire with their TTL).
    pub left_for_ttl: usize,
}
