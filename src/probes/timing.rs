//! The latency probe's arithmetic, pure so it can be driven by a fake
//! clock: the open-loop [`Schedule`], the [`Recorder`] of each operation's
//! latency, HdrHistogram distributions, and how much of each operation's
//! latency the auditing host itself caused.
//!
//! The host's own latency is measured the way `redis-cli
//! --intrinsic-latency` and cyclictest do, on the thread that measures
//! Redis: a timer ticks open-loop at [`HOST_TICKS_PER_OP`] times the
//! probe's rate and records how late each wake-up was, from the tick's
//! intended time (so a stall charges every tick scheduled during it, as it
//! charges every operation: coordinated omission corrected the same way).
//! A tick that fired late means the thread could not run from its
//! intended time until it fired: the host, not Redis, held the operation
//! then. An operation's *net* latency is its latency less the part of
//! `[intended send, reply read]` the host held: its own late send, and
//! every late tick's `[intended, fired]` inside the span.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::evidence::Distribution;

/// Host ticks per probe operation: a stall is seen within a quarter of the
/// operation interval (at most 1/4 ms at the default 1,000 ops/s).
pub(crate) const HOST_TICKS_PER_OP: u32 = 4;

/// The most host ticks per second per master, whatever the probe's rate.
pub(crate) const MAX_HOST_TICK_HZ: u32 = 10_000;

/// The host timer's rate for a probe rate of `ops_per_sec`.
pub(crate) fn host_tick_hz(ops_per_sec: u32) -> u32 {
    ops_per_sec
        .saturating_mul(HOST_TICKS_PER_OP)
        .clamp(ops_per_sec.max(1), MAX_HOST_TICK_HZ.max(ops_per_sec))
}

/// An empty histogram in µs, 1 µs to 1 h, 3 significant figures.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

/// The percentiles of `h`.
pub(crate) fn distribution(h: &Histogram<u64>) -> Distribution {
    if h.is_empty() {
        return Distribution::default();
    }
    Distribution {
        count: h.len(),
        p50_us: h.value_at_quantile(0.50),
        p90_us: h.value_at_quantile(0.90),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        max_us: h.max(),
        mean_us: (h.mean() * 10.0).round() / 10.0,
    }
}

/// A duration in whole µs, at least 1 (HdrHistogram's lowest value).
pub(crate) fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

/// One measured operation, as offsets from the probe's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Op {
    /// When it was due to be sent.
    pub(crate) intended: Duration,
    /// When it was sent.
    pub(crate) sent: Duration,
    /// When its reply was read.
    pub(crate) received: Duration,
}

/// One host-timer tick, as offsets from the probe's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tick {
    /// When it was due.
    pub(crate) intended: Duration,
    /// When the thread woke for it.
    pub(crate) fired: Duration,
}

/// The host's own latency: how late each tick at or after `from` fired.
pub(crate) fn host_lateness(ticks: &[Tick], from: Duration) -> Distribution {
    let mut h = histogram();
    for t in ticks.iter().filter(|t| t.intended >= from) {
        h.saturating_record(us(t.fired.saturating_sub(t.intended)));
    }
    distribution(&h)
}

/// How much of `op`'s span the host held: its late send, and every late
/// tick's `[intended, fired]` inside `[intended, received]`, merged.
/// `ticks` are in tick order (intended increasing, fired non-decreasing).
pub(crate) fn host_share(op: &Op, ticks: &[Tick]) -> Duration {
    let (a, b) = (op.intended, op.received.max(op.intended));
    // The first tick that was still waiting after the operation was due.
    let first = ticks.partition_point(|t| t.fired <= a);
    let mut covered = Duration::ZERO;
    let mut cur = (a, op.sent.clamp(a, b));
    for t in ticks[first..].iter().take_while(|t| t.intended < b) {
        let (s, e) = (t.intended.max(a), t.fired.min(b));
        if e <= s {
            continue;
        }
        if s <= cur.1 {
            cur.1 = cur.1.max(e);
        } else {
            covered += cur.1 - cur.0;
            cur = (s, e);
        }
    }
    covered + (cur.1 - cur.0)
}

/// Each operation's latency less what the host held of it.
pub(crate) fn net_latency(ops: &[Op], ticks: &[Tick]) -> Distribution {
    let mut h = histogram();
    for op in ops {
        let latency = op.received.saturating_sub(op.intended);
        h.saturating_record(us(latency.saturating_sub(host_share(op, ticks))));
    }
    distribution(&h)
}

/// The open-loop schedule: operation `i` is due at `i * interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// Time between two operations.
    pub interval: Duration,
    /// Operations in the warm-up (not measured).
    pub warmup_ops: u64,
    /// All operations (warm-up included), capped.
    pub total_ops: u64,
}

impl Schedule {
    /// The schedule for a rate, warm-up, duration and cap.
    pub(crate) fn new(
        rate_per_s: u32,
        warmup: Duration,
        duration: Duration,
        max_ops: u64,
    ) -> Schedule {
        let rate = rate_per_s.max(1) as u64;
        let interval = Duration::from_nanos(1_000_000_000 / rate);
        let warmup_ops = warmup.as_nanos() as u64 / interval.as_nanos().max(1) as u64;
        let measured = duration.as_nanos() as u64 / interval.as_nanos().max(1) as u64;
        let total_ops = (warmup_ops + measured).min(max_ops);
        Schedule {
            interval,
            warmup_ops: warmup_ops.min(total_ops),
            total_ops,
        }
    }

    /// When operation `i` is due, from the start.
    pub(crate) fn intended(&self, i: u64) -> Duration {
        self.interval * i as u32
    }
}

/// Kind of operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    /// HGETALL.
    Read,
    /// HSET + EXPIRE (pipelined; measured to the EXPIRE reply).
    Write,
}

/// Bookkeeping of completed operations. Pure: times are offsets from the
/// start, so it can be driven by a fake clock.
pub(crate) struct Recorder {
    corrected: Histogram<u64>,
    raw: Histogram<u64>,
    reads: Histogram<u64>,
    writes: Histogram<u64>,
    /// Error replies.
    pub errors: u64,
    /// The first error reply.
    pub first_error: Option<String>,
    /// Operations completed (warm-up included).
    pub completed: u64,
    last_received: Duration,
    first_measured_intended: Option<Duration>,
    /// Every measured operation's times, for the host-noise attribution.
    ops: Vec<Op>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            corrected: histogram(),
            raw: histogram(),
            reads: histogram(),
            writes: histogram(),
            errors: 0,
            first_error: None,
            completed: 0,
            last_received: Duration::ZERO,
            first_measured_intended: None,
            ops: Vec::new(),
        }
    }
}

impl Recorder {
    /// Records one completed operation. `corrected` latency runs from the
    /// intended send time, `raw` from the actual one; warm-up operations
    /// (`measured == false`) are counted but not recorded.
    pub(crate) fn record(
        &mut self,
        kind: OpKind,
        intended: Duration,
        sent: Duration,
        received: Duration,
        measured: bool,
    ) {
        self.completed += 1;
        self.last_received = self.last_received.max(received);
        if !measured {
            return;
        }
        self.first_measured_intended.get_or_insert(intended);
        self.ops.push(Op {
            intended,
            sent,
            received,
        });
        let corrected = us(received.saturating_sub(intended));
        self.corrected.saturating_record(corrected);
        self.raw
            .saturating_record(us(received.saturating_sub(sent)));
        match kind {
            OpKind::Read => self.reads.saturating_record(corrected),
            OpKind::Write => self.writes.saturating_record(corrected),
        }
    }

    /// Records an operation that never got an answer before the deadline:
    /// its latency is at least `deadline - intended`.
    pub(crate) fn record_timeout(&mut self, intended: Duration, deadline: Duration) {
        self.corrected
            .saturating_record(us(deadline.saturating_sub(intended)));
    }

    /// Counts an error reply.
    pub(crate) fn error(&mut self, reply: &str) {
        self.errors += 1;
        self.first_error.get_or_insert_with(|| reply.to_string());
    }

    /// Corrected (from intended send time).
    pub(crate) fn corrected(&self) -> Distribution {
        distribution(&self.corrected)
    }
    /// Raw (from actual send time), as a closed-loop client would report.
    pub(crate) fn raw(&self) -> Distribution {
        distribution(&self.raw)
    }
    /// Corrected, HGETALL only.
    pub(crate) fn reads(&self) -> Distribution {
        distribution(&self.reads)
    }
    /// Corrected, HSET+EXPIRE only.
    pub(crate) fn writes(&self) -> Distribution {
        distribution(&self.writes)
    }
    /// Every measured operation's times.
    pub(crate) fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Measured operations per second actually completed.
    pub(crate) fn achieved_rate(&self) -> f64 {
        match self.first_measured_intended {
            Some(first) if self.last_received > first => {
                let n = self.corrected.len() as f64;
                (n / (self.last_received - first).as_secs_f64() * 10.0).round() / 10.0
            }
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(x: f64) -> Duration {
        Duration::from_micros((x * 1000.0) as u64)
    }

    /// Ticks every 0.25 ms from 0.125 ms, on time except those due in
    /// `stall` (start, end), which fire at its end.
    fn ticks(until: f64, stall: Option<(f64, f64)>) -> Vec<Tick> {
        let mut out = Vec::new();
        let mut t = 0.125;
        while t < until {
            let fired = match stall {
                Some((s, e)) if t >= s && t < e => e,
                _ => t + 0.005,
            };
            out.push(Tick {
                intended: ms(t),
                fired: ms(fired),
            });
            t += 0.25;
        }
        out
    }

    #[test]
    fn a_slow_server_with_a_quiet_host_keeps_its_whole_latency() {
        let op = Op {
            intended: ms(1.0),
            sent: ms(1.01),
            received: ms(5.0),
        };
        let t = ticks(10.0, None);
        assert!(host_share(&op, &t) < ms(0.1), "{:?}", host_share(&op, &t));
        assert!(net_latency(&[op], &t).p99_us >= 3_900);
        assert!(host_lateness(&t, Duration::ZERO).p99_us <= 5);
    }

    #[test]
    fn a_host_stall_is_taken_out_of_the_operations_it_held() {
        // Due at 1.0, the thread stalled 1.0..6.0: sent at 6.0, answered
        // 60 µs later.
        let sent_late = Op {
            intended: ms(1.0),
            sent: ms(6.0),
            received: ms(6.06),
        };
        // Sent on time at 0.9, the reply arrived at 0.95 but the thread
        // stalled 0.95..6.0 (ticks due from 1.125 on fire at 6.0).
        let read_late = Op {
            intended: ms(0.9),
            sent: ms(0.9),
            received: ms(6.0),
        };
        let t = ticks(10.0, Some((0.95, 6.0)));
        assert!(net_latency(&[sent_late], &t).p99_us <= 70);
        // Only the gap before the first tick inside the stall (0.95 to
        // 1.125) stays charged: at most one tick interval.
        let n = net_latency(&[read_late], &t).p99_us;
        assert!((200..=260).contains(&n), "{n}");
        assert_eq!(host_lateness(&t, Duration::ZERO).max_us, 4_875);
    }

    #[test]
    fn overlapping_late_ticks_are_counted_once() {
        let op = Op {
            intended: ms(0.0),
            sent: ms(0.0),
            received: ms(4.0),
        };
        let t = ticks(10.0, Some((1.0, 3.0)));
        let share = host_share(&op, &t);
        assert!(share >= ms(1.8) && share <= ms(2.0), "{share:?}");
    }

    #[test]
    fn the_tick_rate_follows_the_probe_within_bounds() {
        assert_eq!(host_tick_hz(1000), 4000);
        assert_eq!(host_tick_hz(5000), 10_000);
        assert_eq!(host_tick_hz(20_000), 20_000);
        assert_eq!(host_tick_hz(0), 1);
    }
}
