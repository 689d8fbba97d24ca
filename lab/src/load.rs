//! Load a lab test puts on its own cluster: masters kept busy by long Lua
//! scripts, so that clients wait behind them however quiet Redis's own
//! per-command statistics look (INFO latencystats times execution, not the
//! wait behind another command). Lab-only: nothing in the audit sends it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::Lab;

/// A script that keeps the server busy for ARGV[1] µs (by its own clock).
const BUSY_SCRIPT: &str = "local t = redis.call('TIME') \
local start = t[1] * 1000000 + t[2] \
local now = start \
while now - start < tonumber(ARGV[1]) do \
  local x = redis.call('TIME') \
  now = x[1] * 1000000 + x[2] \
end \
return now - start";

/// Masters kept busy: on each, a script of `busy` runs `per_sec` times a
/// second, over an admin connection, until this is dropped or stopped.
pub struct SlowMasters {
    stop: Arc<AtomicBool>,
    ran: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SlowMasters {
    /// Starts the scripts on lab nodes `masters` (0-based).
    pub async fn start(
        lab: &Lab,
        masters: &[usize],
        busy: Duration,
        per_sec: u32,
    ) -> Result<SlowMasters, epic_audit::resp::ConnError> {
        let stop = Arc::new(AtomicBool::new(false));
        let ran = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for &i in masters {
            let mut conn = lab.admin(i).await?;
            let (stop, ran) = (stop.clone(), ran.clone());
            let micros = busy.as_micros().to_string();
            let period = Duration::from_secs(1) / per_sec.max(1);
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while !stop.load(Ordering::SeqCst) {
                    tick.tick().await;
                    // Every command is bounded by the connection's deadline.
                    if conn
                        .cmd_str(&["EVAL", BUSY_SCRIPT, "0", &micros])
                        .await
                        .is_ok()
                    {
                        ran.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }));
        }
        Ok(SlowMasters { stop, ran, tasks })
    }

    /// How many scripts have run so far.
    pub fn ran(&self) -> u64 {
        self.ran.load(Ordering::SeqCst)
    }

    /// Stops the scripts and waits for the last one to end.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for SlowMasters {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in &self.tasks {
            t.abort();
        }
    }
}
