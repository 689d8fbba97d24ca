//! Session latency, measured safely: an open-loop load at a fixed rate per
//! master, with latency taken from each operation's *intended* send time so
//! that stalls are not hidden (coordinated omission), in HdrHistograms.
//!
//! Safety: it runs as the application user (the production ACL path) on one
//! dedicated connection per master, touches only keys made from the
//! session pattern with `*` = `epic-audit-probe:{tag}:N` ([`probe_keys`]),
//! whose hash tag maps them to the master being measured (no MOVED), gives them a short TTL, deletes them at the end,
//! also after an error, and from the Ctrl-C handler
//! ([`LatencyCleanup::cleanup_pending`], reached through the process's handle).
//! Total operations and duration are capped by the policy, and two latency
//! probes never run at once in one process.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};

use super::cleanup::{delete_keys, LatencyCleanup, PendingCleanup};
use super::scaffold::{engine_margin, per_target, Probe, ProbeContext, ProbeFuture, Target};
use super::timing::{host_lateness, host_tick_hz, net_latency, OpKind, Recorder, Schedule, Tick};
use crate::config::{NodeAddr, Timeouts};
use crate::evidence::{
    Distribution, Evidence, FailureKind, HostNoise, LatencySettings, LatencyView, Observation,
    Observed, ProbeFailure, ProbeId, SlotRange,
};
use crate::resp::{as_text, encode_command, error_text, parse_info, ReadError, RedisConn};

/// What a probe key's `*` becomes (before the hash tag and number), so
/// its keys are recognisable in any namespace.
pub(crate) const KEY_WORD: &str = "epic-audit-probe";

/// The `count` probe keys for one master: `pattern` (the session glob)
/// with `*` = `epic-audit-probe:{epic-audit-I}:N`, for the first I whose
/// keys all hash to a slot in `ranges`. Returns the hash tag and the keys,
/// or why none exist (the pattern has no `*`, or pins every key to one
/// slot with a hash tag of its own that another master serves).
pub(crate) fn probe_keys(
    pattern: &str,
    ranges: &[SlotRange],
    count: u32,
) -> Result<(String, Vec<String>), String> {
    let make = |tag: &str, n: u32| {
        crate::evidence::sample_key_with(pattern, &format!("{KEY_WORD}:{{{tag}}}:{n}"))
    };
    let slot = |k: &str| crate::evidence::key_slot(k.as_bytes());
    let ours = |k: &str| {
        let s = slot(k);
        ranges.iter().any(|r| (r.start..=r.end).contains(&s))
    };
    let (Some(a), Some(b)) = (make("epic-audit-0", 0), make("epic-audit-0", 1)) else {
        return Err(format!(
            "no key matches the session pattern {pattern:?}: set PERF-001's key_pattern to a glob with a `*`"
        ));
    };
    if a == b {
        return Err(format!(
            "the session pattern {pattern:?} has no `*`, so distinct probe keys cannot be made inside it: \
             set PERF-001's key_pattern to a glob with a `*` that the application user may write"
        ));
    }
    let pinned = make("epic-audit-1", 0).is_some_and(|c| slot(&c) == slot(&a));
    for i in 0..if pinned { 1 } else { 100_000 } {
        let tag = format!("epic-audit-{i}");
        let keys: Option<Vec<String>> = (0..count.max(1)).map(|n| make(&tag, n)).collect();
        if let Some(keys) = keys.filter(|k| k.iter().all(|k| ours(k))) {
            return Ok((tag, keys));
        }
    }
    Err(format!(
        "the session pattern {pattern:?} has a hash tag of its own, so every probe key hashes to slot {}, \
         which this master does not serve: set PERF-001's key_pattern (or `masters`) accordingly",
        slot(&a)
    ))
}

fn words(ws: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    let args: Vec<&[u8]> = ws.iter().map(|w| w.as_bytes()).collect();
    encode_command(&mut out, &args);
    out
}

async fn commandstats(c: &mut RedisConn) -> Result<BTreeMap<String, (u64, u64)>, ProbeFailure> {
    let text = as_text(&c.cmd_str(&["INFO", "commandstats"]).await?).unwrap_or_default();
    let mut out = BTreeMap::new();
    for (k, v) in parse_info(&text) {
        let Some(cmd) = k.strip_prefix("cmdstat_") else {
            continue;
        };
        let field = |name: &str| {
            v.split(',')
                .find_map(|kv| kv.strip_prefix(name))
                .and_then(|x| x.parse::<u64>().ok())
                .unwrap_or(0)
        };
        out.insert(cmd.to_string(), (field("calls="), field("usec=")));
    }
    Ok(out)
}

struct Pending {
    i: u64,
    kind: OpKind,
    intended: Instant,
    sent: Instant,
    parts: usize,
}

/// A one-shot high-resolution timer (Linux timerfd) on the current
/// runtime's reactor.
struct Ticker {
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

impl Ticker {
    fn new() -> std::io::Result<Ticker> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain syscall; the fd is owned below.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        // SAFETY: `owned` is a valid, open timerfd that stays open (and the
        // same file) for as long as the AsyncFd holds it.
        let fd = unsafe { tokio::io::unix::AsyncFd::register(owned) }
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Ticker { fd })
    }

    /// Returns at `due` (at once when it has passed).
    async fn wait_until(&self, due: std::time::Instant) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let Some(left) = due.checked_duration_since(std::time::Instant::now()) else {
            return Ok(());
        };
        if left.is_zero() {
            return Ok(());
        }
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            },
        };
        let raw = self.fd.get_ref().as_raw_fd();
        // SAFETY: valid fd and itimerspec; relative one-shot timer.
        if unsafe { libc::timerfd_settime(raw, 0, &spec, std::ptr::null_mut()) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        loop {
            let mut guard = self.fd.readable().await?;
            let mut expirations = [0u8; 8];
            // SAFETY: reads 8 bytes into a local buffer.
            let n = unsafe { libc::read(raw, expirations.as_mut_ptr().cast(), 8) };
            if n == 8 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::WouldBlock {
                return Err(e);
            }
            guard.clear_ready();
        }
    }
}

/// Runs [`measure`] on a dedicated thread with its own single-threaded
/// runtime: the writer, the reader and their wake-ups stay on one thread,
/// so the client adds as little as possible to the measured tail.
async fn measure_isolated(
    ctx: Arc<ProbeContext>,
    settings: LatencySettings,
    addr: NodeAddr,
    ranges: Vec<SlotRange>,
    id: u64,
) -> Result<LatencyView, ProbeFailure> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("epic-audit-latency-{id}"))
        .spawn(move || {
            let result = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(measure(&ctx, &settings, &addr, &ranges, id)),
                Err(e) => Err(ProbeFailure {
                    kind: FailureKind::Io,
                    message: format!("cannot start a runtime: {e}"),
                }),
            };
            let _ = tx.send(result);
        });
    if let Err(e) = spawned {
        return Err(ProbeFailure {
            kind: FailureKind::Io,
            message: format!("cannot start the latency thread: {e}"),
        });
    }
    rx.await.unwrap_or_else(|_| {
        Err(ProbeFailure {
            kind: FailureKind::Io,
            message: "the latency thread ended without a result".into(),
        })
    })
}

/// Measures one master.
async fn measure(
    ctx: &ProbeContext,
    settings: &LatencySettings,
    master: &NodeAddr,
    ranges: &[SlotRange],
    id: u64,
) -> Result<LatencyView, ProbeFailure> {
    let fail = |kind: FailureKind, message: String| ProbeFailure { kind, message };
    let password = ctx
        .credentials
        .get(&settings.user)
        .cloned()
        .ok_or_else(|| fail(FailureKind::Config, format!("no password reference for {} in the environment: the load runs as the application user", settings.user)))?;
    let (tag, keys) = probe_keys(&settings.key_pattern, ranges, settings.keys)
        .map_err(|m| fail(FailureKind::Config, m))?;
    // Command statistics come over the audit's shared connection.
    let before = commandstats(&mut *ctx.conn(master).await?).await?;

    let t_connect = std::time::Instant::now();
    let mut conn = RedisConn::connect(master, &ctx.tls, &ctx.timeouts).await?;
    let connect_us = t_connect.elapsed().as_micros() as u64;
    conn.auth(&settings.user, &password).await?;

    // From here on keys may exist: make sure they are deleted whatever happens.
    ctx.latency.register(PendingCleanup {
        id,
        addr: master.clone(),
        tls: ctx.tls.clone(),
        timeouts: ctx.timeouts.clone(),
        user: settings.user.clone(),
        password: password.clone(),
        keys: keys.clone(),
    });
    let ttl = settings.key_ttl_s.to_string();
    let now = Utc::now().timestamp().to_string();
    let setup: Vec<Vec<Vec<u8>>> = keys
        .iter()
        .flat_map(|k| {
            [
                [
                    "HSET",
                    k,
                    "user_id",
                    "epic-audit-probe",
                    "portal",
                    "probe",
                    "last_activity",
                    &now,
                ]
                .iter()
                .map(|w| w.as_bytes().to_vec())
                .collect(),
                ["EXPIRE", k, &ttl]
                    .iter()
                    .map(|w| w.as_bytes().to_vec())
                    .collect::<Vec<_>>(),
            ]
        })
        .collect();
    let window_start = Utc::now();
    let run = async {
        for r in conn.pipeline(&setup).await? {
            if let redis::Value::ServerError(e) = r {
                return Err(fail(
                    FailureKind::ServerError,
                    format!(
                        "{master}: creating probe keys as {}: {}",
                        settings.user,
                        error_text(&e)
                    ),
                ));
            }
        }
        open_loop(conn, settings, &keys, ctx.timeouts.command(), &ctx.latency).await
    };
    let result = run.await;
    let window_end = Utc::now();
    let cleanup = match delete_keys(
        master,
        &ctx.tls,
        &ctx.timeouts,
        &settings.user,
        &password,
        &keys,
    )
    .await
    {
        Ok(n) => {
            ctx.latency.unregister(id);
            format!("deleted {n} of {} probe keys", keys.len())
        }
        Err(e) => format!(
            "clean-up failed ({e}); the keys expire within {} s",
            settings.key_ttl_s
        ),
    };
    let (rec, schedule, timed_out, host) = result?;
    let mut admin = ctx.conn(master).await?;
    let after = commandstats(&mut admin).await?;
    let mut server_usec_per_call = BTreeMap::new();
    for cmd in ["hgetall", "hset", "expire"] {
        let (c0, u0) = before.get(cmd).copied().unwrap_or((0, 0));
        let (c1, u1) = after.get(cmd).copied().unwrap_or((0, 0));
        let calls = c1.saturating_sub(c0);
        if calls > 0 {
            server_usec_per_call.insert(
                cmd.to_string(),
                (
                    calls,
                    ((u1.saturating_sub(u0)) as f64 / calls as f64 * 100.0).round() / 100.0,
                ),
            );
        }
    }
    // Everything else the master executed meanwhile: other clients' load.
    let own = [
        "hgetall", "hset", "expire", "info", "auth", "del", "hello", "ping",
    ];
    let other_commands: BTreeMap<String, u64> = after
        .iter()
        .filter(|(cmd, _)| !own.contains(&cmd.as_str()))
        .filter_map(|(cmd, (c1, _))| {
            let c0 = before.get(cmd).map_or(0, |(c, _)| *c);
            let d = c1.saturating_sub(c0);
            (d > 0).then(|| (cmd.clone(), d))
        })
        .collect();
    let lat = as_text(&admin.cmd_str(&["INFO", "latencystats"]).await?).unwrap_or_default();
    let server_latencystats = parse_info(&lat)
        .into_iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("latency_percentiles_usec_")
                .map(|c| (c.to_string(), v))
        })
        .filter(|(c, _)| ["hgetall", "hset", "expire"].contains(&c.as_str()))
        .collect();
    Ok(LatencyView {
        master: master.to_string(),
        user: settings.user.clone(),
        hash_tag: tag,
        connect_us,
        settings: settings.clone(),
        planned_ops: schedule.total_ops,
        completed_ops: rec.completed,
        timed_out_ops: timed_out,
        errors: rec.errors,
        first_error: rec.first_error.clone(),
        achieved_rate: rec.achieved_rate(),
        corrected: rec.corrected(),
        raw: rec.raw(),
        reads: rec.reads(),
        writes: rec.writes(),
        server_usec_per_call,
        server_latencystats,
        cleanup,
        window_start: Some(window_start),
        window_end: Some(window_end),
        other_commands,
        host: Some(HostNoise {
            tick_hz: host.tick_hz,
            lateness: host.lateness,
            net: host.net,
        }),
    })
}

/// The open loop: a writer sends each operation at its intended time
/// whatever the replies do; a reader matches replies in order.
async fn open_loop(
    conn: RedisConn,
    s: &LatencySettings,
    keys: &[String],
    grace: Duration,
    cleanup: &LatencyCleanup,
) -> Result<(Recorder, Schedule, u64, HostTimer), ProbeFailure> {
    let cleanup = cleanup.clone();
    let addr = conn.addr().to_string();
    let schedule = Schedule::new(
        s.rate_per_master,
        Duration::from_millis(s.warmup_ms),
        Duration::from_millis(s.duration_ms),
        s.max_ops,
    );
    let (stream, mut decoder) = conn.into_parts();
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Pending>();
    let start_std = std::time::Instant::now() + Duration::from_millis(5);
    let start = Instant::from_std(start_std);
    let deadline = start + schedule.intended(schedule.total_ops) + grace;
    let ttl = s.key_ttl_s.to_string();
    let write_every = s.write_every;
    // tokio's timers have 1 ms resolution: waking up to 1 ms late would be
    // charged to the server. A timerfd (kernel high-resolution timer) on
    // this thread's own reactor keeps the schedule to microseconds without
    // a second thread: a ticker thread handing each tick over cost a
    // cross-thread wake-up per operation and, on a busy 2-core machine, a
    // third runnable thread competing with the client and the server.
    let ticker = Ticker::new().map_err(|e| ProbeFailure {
        kind: FailureKind::Io,
        message: format!("cannot create the latency timer: {e}"),
    })?;
    let host_ticker = Ticker::new().map_err(|e| ProbeFailure {
        kind: FailureKind::Io,
        message: format!("cannot create the host timer: {e}"),
    })?;
    let tick_hz = host_tick_hz(s.rate_per_master);
    let tick_interval = Duration::from_secs(1) / tick_hz;
    // Set when the reader is done: the host timer stops with the last reply.
    let done = std::cell::Cell::new(false);
    let done = &done;
    let total = schedule.total_ops;
    // In-flight limit (closed loop when 1): the reader returns a permit per
    // answered operation.
    let in_flight = (s.max_in_flight > 0)
        .then(|| Arc::new(tokio::sync::Semaphore::new(s.max_in_flight as usize)));
    let reader_permits = in_flight.clone();
    let writer = async move {
        for i in 0..total {
            ticker
                .wait_until(start_std + schedule.intended(i))
                .await
                .map_err(|e| format!("latency timer: {e}"))?;
            if let Some(sem) = &in_flight {
                match timeout_at(deadline, sem.acquire()).await {
                    Ok(Ok(p)) => p.forget(),
                    _ => break, // no answer before the deadline: stop sending
                }
            }
            if cleanup.cancelled() {
                break; // the run was cancelled: no write races the clean-up
            }
            let intended = start + schedule.intended(i);
            let key = &keys[i as usize % keys.len()];
            let is_write = write_every > 0 && i % write_every == write_every - 1;
            let (kind, bytes, parts) = if !is_write {
                (OpKind::Read, words(&["HGETALL", key]), 1)
            } else {
                let ts = Utc::now().timestamp().to_string();
                let mut b = words(&["HSET", key, "last_activity", &ts]);
                b.extend(words(&["EXPIRE", key, &ttl]));
                (OpKind::Write, b, 2)
            };
            let sent = Instant::now();
            if tx
                .send(Pending {
                    i,
                    kind,
                    intended,
                    sent,
                    parts,
                })
                .is_err()
            {
                break;
            }
            match timeout_at(deadline, wr.write_all(&bytes)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err("write blocked until the deadline".into()),
            }
        }
        Ok(())
    };
    let reader = async move {
        let mut rec = Recorder::default();
        let mut outstanding = 0u64;
        'ops: while let Some(p) = rx.recv().await {
            for _ in 0..p.parts {
                let frame = match timeout_at(deadline, decoder.next(&mut rd)).await {
                    Err(_) => {
                        rec.record_timeout(p.intended - start, deadline - start);
                        outstanding += 1;
                        break 'ops;
                    }
                    Ok(Ok(f)) => f,
                    Ok(Err(ReadError::Closed)) => {
                        return Err("connection closed by the server".into())
                    }
                    Ok(Err(ReadError::NotResp(e))) => return Err(format!("not RESP: {e}")),
                    Ok(Err(e)) => return Err(e.to_string()),
                };
                if let redis::Value::ServerError(e) = &frame {
                    rec.error(&error_text(e));
                }
            }
            let received = Instant::now();
            if let Some(sem) = &reader_permits {
                sem.add_permits(1);
            }
            rec.record(
                p.kind,
                p.intended - start,
                p.sent - start,
                received - start,
                p.i >= schedule.warmup_ops,
            );
        }
        // Whatever is still queued never got an answer.
        while let Ok(p) = rx.try_recv() {
            rec.record_timeout(p.intended - start, deadline - start);
            outstanding += 1;
        }
        Ok((rec, outstanding))
    };
    // However the reader ends (all replies read, or an error), the host
    // timer stops with it.
    let reader = async move {
        let r = reader.await;
        done.set(true);
        r
    };
    // The host's own latency on this thread, for exactly this window: a
    // tick every `tick_interval` (half an interval off the operations', so
    // the two timers do not fire together), each recording how late it
    // woke. Runs until the last reply is read.
    let host = async move {
        let mut ticks = Vec::new();
        let mut j: u32 = 0;
        loop {
            let due = tick_interval * j + tick_interval / 2;
            if done.get() || start + due >= deadline {
                break;
            }
            if host_ticker.wait_until(start_std + due).await.is_err() {
                break;
            }
            ticks.push(Tick {
                intended: due,
                fired: start_std.elapsed(),
            });
            j = j.saturating_add(1);
        }
        ticks
    };
    let (w, r, ticks) = tokio::join!(writer, reader, host);
    let io = |e: String| ProbeFailure {
        kind: FailureKind::Io,
        message: format!("{addr}: latency load: {e}"),
    };
    let (rec, outstanding) = r.map_err(io)?;
    w.map_err(io)?;
    let measured_from = schedule.intended(schedule.warmup_ops);
    let host = HostTimer {
        tick_hz,
        lateness: host_lateness(&ticks, measured_from),
        net: net_latency(rec.ops(), &ticks),
    };
    Ok((rec, schedule, outstanding, host))
}

/// What the host timer saw during one master's window.
struct HostTimer {
    tick_hz: u32,
    lateness: Distribution,
    net: Distribution,
}

/// What one master's run may take: its window (warm-up and duration) on top
/// of `probe_ms`.
fn master_budget(settings: &LatencySettings, t: &Timeouts) -> Duration {
    Duration::from_millis(settings.warmup_ms.saturating_add(settings.duration_ms)) + t.probe()
}

/// The latency probe: every master, concurrently.
pub(crate) struct LatencyProbe;

impl Probe for LatencyProbe {
    fn name(&self) -> ProbeId {
        ProbeId::Latency
    }

    /// Each master's own budget ([`master_budget`]: the window on top of
    /// `probe_ms`), then the cleanup of runs cut at it, one master after
    /// another (a connect with its handshake, AUTH and DEL each), then the
    /// engine's margin. A net at the default (one `probe_ms`) cut every
    /// master's evidence, the live ones' too, whenever the window and a
    /// slow master outlasted it.
    fn deadline(&self, ctx: &ProbeContext) -> Duration {
        let settings = ctx.inputs.latency.clone().unwrap_or_default();
        let t = &ctx.timeouts;
        let masters = ctx.topology.masters.len() as u64;
        let cleanup = masters.saturating_mul(
            t.connect_ms
                .saturating_mul(2)
                .saturating_add(t.command_ms.saturating_mul(2)),
        );
        master_budget(&settings, t) + Duration::from_millis(cleanup) + engine_margin(t)
    }

    fn run(&self, ctx: Arc<ProbeContext>) -> ProbeFuture {
        Box::pin(async move {
            let settings = ctx.inputs.latency.clone().unwrap_or_default();
            let busy = !ctx.latency.start();
            let masters: Vec<(NodeAddr, Vec<SlotRange>)> = ctx
                .topology
                .masters
                .iter()
                .filter(|(a, _)| settings.masters.is_empty() || settings.masters.contains(a))
                .filter_map(|(a, r)| NodeAddr::parse(a).ok().map(|a| (a, r.clone())))
                .collect();
            let lp = match settings.max_in_flight {
                0 => "open loop".to_string(),
                1 => "CLOSED loop (1 in flight: only the raw figures are meaningful)".to_string(),
                n => format!("open loop limited to {n} in flight"),
            };
            let method = format!(
                "{lp}, {} ops/s per master for {} ms after a {} ms warm-up (cap {} ops): HGETALL, with every {}th \
                 operation HSET+EXPIRE instead (0: none), on {} keys {:?} with * = {KEY_WORD}:{{tag}}:N, the tag hashing to that master \
                 (TTL {} s, deleted afterwards) as {}, on one dedicated TLS \
                 connection per master; latency from the intended send time (HdrHistogram, µs, 3 significant figures); \
                 INFO commandstats/latencystats as {} for the server side",
                settings.rate_per_master, settings.duration_ms, settings.warmup_ms, settings.max_ops, settings.write_every, settings.keys,
                settings.key_pattern, settings.key_ttl_s, settings.user, ctx.user
            );
            let failure_for_all = |message: String| -> Vec<Evidence> {
                let subjects: Vec<String> = if masters.is_empty() {
                    vec!["cluster".into()]
                } else {
                    masters.iter().map(|(a, _)| a.to_string()).collect()
                };
                subjects
                    .into_iter()
                    .map(|s| Evidence {
                        probe: ProbeId::Latency,
                        subject: s,
                        method: method.clone(),
                        observed_at: Utc::now(),
                        duration_ms: 0,
                        result: Observed::Failure(ProbeFailure {
                            kind: FailureKind::NotRun,
                            message: message.clone(),
                        }),
                    })
                    .collect()
            };
            if busy {
                return failure_for_all(
                    "another latency probe is running in this process; it never overlaps itself"
                        .into(),
                );
            }
            let unset = if settings.user.is_empty() {
                Some("PERF-001 names no `user` to run the load as (the application user)")
            } else if settings.key_pattern.is_empty() {
                Some("no session key pattern to write the probe keys under: set PERF-001's `key_pattern`, or DATA-005's `pattern`, in the policy")
            } else if masters.is_empty() {
                Some("discovery found no master serving slots")
            } else {
                None
            };
            if let Some(why) = unset {
                ctx.latency.finish();
                return failure_for_all(why.into());
            }
            let budget = master_budget(&settings, &ctx.timeouts);
            let targets = masters
                .into_iter()
                .enumerate()
                .map(|(n, (addr, ranges))| Target {
                    subject: addr.to_string(),
                    method: method.clone(),
                    input: (n as u64, addr, ranges),
                })
                .collect();
            let out = per_target(
                ProbeId::Latency,
                "latency probe",
                budget,
                targets,
                |(n, addr, ranges)| {
                    let (ctx, settings) = (ctx.clone(), settings.clone());
                    async move {
                        measure_isolated(ctx, settings, addr, ranges, n)
                            .await
                            .map(|v| Observation::Latency(Box::new(v)))
                    }
                },
            )
            .await;
            // Runs that hit their deadline were cancelled before cleaning up.
            ctx.latency.delete_pending().await;
            ctx.latency.finish();
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn schedule_spaces_operations_and_caps_them() {
        let s = Schedule::new(1000, Duration::from_secs(1), Duration::from_secs(5), 20_000);
        assert_eq!((s.interval, s.warmup_ops, s.total_ops), (MS, 1000, 6000));
        assert_eq!(s.intended(2500), Duration::from_millis(2500));
        let capped = Schedule::new(1000, Duration::from_secs(1), Duration::from_secs(60), 5000);
        assert_eq!(capped.total_ops, 5000);
    }

    #[test]
    fn warmup_is_discarded() {
        let mut r = Recorder::default();
        r.record(OpKind::Read, Duration::ZERO, Duration::ZERO, 50 * MS, false);
        r.record(OpKind::Read, MS, MS, MS + Duration::from_micros(100), true);
        assert_eq!(r.completed, 2);
        assert_eq!(r.corrected().count, 1);
        assert!(r.corrected().max_us < 200);
    }

    /// A fake-clock run: 1000 ops at 1 ms intervals, 100 µs service time,
    /// and one stall of `stall` at op 500. `closed_loop` models a sender
    /// that waits for the stall (sends late), as closed-loop tools do.
    fn simulate(stall: Duration, closed_loop: bool) -> Recorder {
        let sched = Schedule::new(1000, Duration::ZERO, Duration::from_secs(1), 10_000);
        let service = Duration::from_micros(100);
        let mut r = Recorder::default();
        let mut server_free = Duration::ZERO;
        for i in 0..sched.total_ops {
            let intended = sched.intended(i);
            let sent = if closed_loop {
                intended.max(server_free)
            } else {
                intended
            };
            let start = sent.max(server_free);
            let extra = if i == 500 { stall } else { Duration::ZERO };
            let done = start + service + extra;
            server_free = done;
            r.record(
                if i % 2 == 0 {
                    OpKind::Read
                } else {
                    OpKind::Write
                },
                intended,
                sent,
                done,
                true,
            );
        }
        r
    }

    #[test]
    fn a_stall_shows_in_the_corrected_p99() {
        let calm = simulate(Duration::ZERO, false);
        assert!(calm.corrected().p99_us <= 110, "{:?}", calm.corrected());
        let stalled = simulate(50 * MS, false);
        // 50 ms stall at 1 ms spacing: ~50 operations queue behind it, so
        // about 5% of samples are slow and p99 is tens of milliseconds.
        assert!(
            stalled.corrected().p99_us >= 40_000,
            "{:?}",
            stalled.corrected()
        );
        assert!(stalled.corrected().max_us >= 50_000);
    }

    #[test]
    fn coordinated_omission_hides_the_stall_from_raw_but_not_corrected() {
        let r = simulate(50 * MS, true);
        // The closed-loop sender waited, so each request looks fast from its
        // own send time, except the stalled one.
        assert!(r.raw().p99_us <= 110, "raw {:?}", r.raw());
        assert!(
            r.corrected().p99_us >= 40_000,
            "corrected {:?}",
            r.corrected()
        );
        assert_eq!(r.corrected().count, 1000);
    }

    #[test]
    fn timeouts_count_as_at_least_the_deadline() {
        let mut r = Recorder::default();
        r.record_timeout(MS, 2001 * MS);
        assert!(r.corrected().max_us >= 1_999_000);
    }

    #[test]
    fn probe_keys_follow_the_session_pattern_and_land_on_the_master() {
        let ranges = [SlotRange {
            start: 5461,
            end: 10922,
        }];
        for (pattern, prefix) in [
            ("session:*", "session:epic-audit-probe:{"),
            ("sess:*", "sess:epic-audit-probe:{"),
            ("app[12]:s:*", "app1:s:epic-audit-probe:{"),
        ] {
            let (tag, keys) = probe_keys(pattern, &ranges, 5).unwrap();
            assert_eq!(keys.len(), 5);
            for (n, key) in keys.iter().enumerate() {
                assert!(key.starts_with(prefix) && key.contains(&tag), "{key}");
                assert!(key.ends_with(&format!(":{n}")), "{key}");
                assert!(crate::evidence::glob(pattern, key), "{pattern} {key}");
                let slot = crate::evidence::key_slot(key.as_bytes());
                assert!((5461..=10922).contains(&slot), "{key} -> {slot}");
            }
        }
        // No `*`: every key would be the same one.
        assert!(probe_keys("sess:current", &ranges, 5)
            .unwrap_err()
            .contains("has no `*`"));
        // A hash tag in the pattern pins the slot: {a} is slot 15495.
        let e = probe_keys("{a}:*", &ranges, 5).unwrap_err();
        assert!(e.contains("slot 15495"), "{e}");
        let high = [SlotRange {
            start: 10923,
            end: 16383,
        }];
        assert!(probe_keys("{a}:*", &high, 5).is_ok());
    }
}
