//! PERF-001 judged from constructed latency evidence.

use chrono::Utc;
use epic_audit::checks::Outcome;
use epic_audit::engine::judge;
use epic_audit::evidence::{
    Distribution, Evidence, EvidenceSet, LatencySettings, LatencyView, Observation, Observed,
    ProbeFailure, ProbeId,
};
use epic_audit::policy::Policy;

fn dist(p50: u64, p99: u64, p999: u64) -> Distribution {
    Distribution {
        count: 5000,
        p50_us: p50,
        p90_us: p50 + 10,
        p99_us: p99,
        p999_us: p999,
        max_us: p999 + 100,
        mean_us: p50 as f64,
    }
}

fn view(master: &str, corrected: Distribution) -> LatencyView {
    LatencyView {
        master: master.into(),
        user: "app_user".into(),
        hash_tag: "epic-audit-1".into(),
        connect_us: 800,
        settings: LatencySettings::default(),
        planned_ops: 6000,
        completed_ops: 6000,
        timed_out_ops: 0,
        errors: 0,
        first_error: None,
        achieved_rate: 1000.0,
        raw: corrected.clone(),
        reads: corrected.clone(),
        writes: corrected.clone(),
        corrected,
        server_usec_per_call: [("hgetall".to_string(), (3000, 2.5))].into_iter().collect(),
        server_latencystats: Default::default(),
        cleanup: "deleted 100 of 100 probe keys".into(),
        window_start: None,
        window_end: None,
        other_commands: Default::default(),
    }
}

fn set(views: Vec<Result<LatencyView, ProbeFailure>>) -> EvidenceSet {
    EvidenceSet {
        schema_version: 1,
        tool_version: "test".into(),
        environment: "t".into(),
        run_id: "x".into(),
        started_at: Utc::now(),
        finished_at: Utc::now(),
        seeds: vec![],
        targets: vec![],
        tls_handshakes: Default::default(),
        items: views
            .into_iter()
            .enumerate()
            .map(|(i, v)| Evidence {
                probe: ProbeId::Latency,
                subject: format!("127.0.1.{}:6379", i + 1),
                method: "test".into(),
                observed_at: Utc::now(),
                duration_ms: 6000,
                result: match v {
                    Ok(v) => Observed::Observation(Observation::Latency(Box::new(v))),
                    Err(f) => Observed::Failure(f),
                },
            })
            .collect(),
    }
}

fn outcomes(ev: &EvidenceSet) -> Vec<Outcome> {
    let p = Policy::builtin().unwrap();
    let sel = p.select(&["PERF-001".into()], &[]).unwrap();
    let r = judge(ev, &p, &sel, &[], &[]);
    r.checks[0].subjects.iter().map(|s| s.outcome).collect()
}

#[test]
fn within_objective_passes_and_p999_over_warns() {
    let ev = set(vec![
        Ok(view("a", dist(150, 400, 800))),
        Ok(view("b", dist(150, 400, 1500))),
    ]);
    assert_eq!(outcomes(&ev), vec![Outcome::Pass, Outcome::Warn]);
}

#[test]
fn p99_over_objective_fails_and_unanswered_ops_fail() {
    let mut slow = view("a", dist(600, 1200, 3000));
    slow.raw = dist(100, 300, 400);
    let mut lost = view("b", dist(150, 400, 800));
    lost.timed_out_ops = 3;
    assert_eq!(
        outcomes(&set(vec![Ok(slow), Ok(lost)])),
        vec![Outcome::Fail, Outcome::Fail]
    );
}

#[test]
fn errors_too_few_samples_and_missing_evidence_are_errors() {
    let mut denied = view("a", dist(150, 400, 800));
    denied.errors = 10;
    denied.first_error =
        Some("NOPERM this user has no permissions to run the 'hgetall' command".into());
    let mut short = view("b", dist(150, 400, 800));
    short.corrected.count = 10;
    let failed = Err(ProbeFailure {
        kind: epic_audit::evidence::FailureKind::Auth,
        message: "authentication as app_user refused".into(),
    });
    assert_eq!(
        outcomes(&set(vec![Ok(denied), Ok(short), failed])),
        vec![Outcome::Error; 3]
    );
    assert_eq!(
        outcomes(&set(vec![])),
        vec![Outcome::Error],
        "no evidence never passes"
    );
}

#[test]
fn a_failure_says_whether_the_time_is_spent_in_redis_or_outside_it() {
    let messages = |v: LatencyView| -> String {
        let ev = set(vec![Ok(v)]);
        let p = Policy::builtin().unwrap();
        let sel = p.select(&["PERF-001".into()], &[]).unwrap();
        judge(&ev, &p, &sel, &[], &[]).checks[0].subjects[0]
            .message
            .clone()
    };
    // The lab's case: client p99 2.5 ms, Redis's own HGETALL p99 13 µs.
    let mut outside = view("a", dist(600, 2555, 7000));
    outside.server_latencystats = [(
        "hgetall".to_string(),
        "p50=6.015,p99=13.055,p99.9=40.191".to_string(),
    )]
    .into_iter()
    .collect();
    let m = messages(outside);
    assert!(
        m.contains("p99 13.055 µs") && m.contains("outside Redis") && m.contains("auditing host"),
        "{m}"
    );
    // Redis itself slow: the server's p99 is most of the client's.
    let mut inside = view("a", dist(600, 2555, 7000));
    inside.server_latencystats = [("hgetall".to_string(), "p50=900,p99=2100.5".to_string())]
        .into_iter()
        .collect();
    let m = messages(inside);
    assert!(
        m.contains("Redis itself is slow") && m.contains("SLOWLOG"),
        "{m}"
    );
    // No server figure: the generic advice.
    let m = messages(view("a", dist(600, 2555, 7000)));
    assert!(m.contains("INFO latencystats / SLOWLOG"), "{m}");
    // The p99.9 warning gets the same diagnosis.
    let mut tail = view("a", dist(150, 400, 5000));
    tail.server_latencystats = [("hgetall".to_string(), "p99=12".to_string())]
        .into_iter()
        .collect();
    assert!(messages(tail).contains("outside Redis"));
}
