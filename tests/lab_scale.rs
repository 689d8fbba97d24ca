//! Session expiry at a size a real cluster has: a million session hashes
//! written as the session manager writes them (HSET, then EXPIRE 1800), of
//! which three on one master never got their EXPIRE. The scan reads a
//! capped sample; INFO keyspace counts every key without a TTL exactly, so
//! DATA-005 fails naming the three however the sample fell.

mod common;

use common::*;
use epic_audit_lab::fill::{session_key, Fill};

/// Session keys written with a TTL.
const SESSIONS: u64 = 1_000_000;

#[tokio::test(flavor = "multi_thread")]
async fn three_sessions_without_ttl_among_a_million_are_counted_exactly() {
    let t = start_lab_with(|s| s.sessions = 0).await;
    let ns = t.lab.spec.names.namespace.clone();
    let written = t
        .lab
        .fill(&Fill {
            namespace: ns.clone(),
            first: 0,
            count: SESSIONS,
            ttl_s: Some(1800),
            tagged: false,
        })
        .await
        .unwrap();
    assert_eq!(written, SESSIONS);
    // Three more keys, all on the first master, that never expire.
    let (lo, hi) = epic_audit_lab::master_slots(t.lab.spec.masters)[0];
    let mut on_first = Vec::new();
    let mut n = SESSIONS;
    while on_first.len() < 3 {
        let slot = epic_audit::evidence::key_slot(session_key(&ns, n).as_bytes());
        if (lo..=hi).contains(&slot) {
            on_first.push(n);
        }
        n += 1;
    }
    for &k in &on_first {
        t.lab
            .fill(&Fill {
                namespace: ns.clone(),
                first: k,
                count: 1,
                ttl_s: None,
                tagged: false,
            })
            .await
            .unwrap();
    }

    // The test's policy scans a sample of 1,000 keys per master (of about
    // 333,000): it almost surely misses the three, and the counts must
    // not depend on it.
    let policy = t.policy_copy("policy", |text| {
        text.replace("cap_per_master = 100000", "cap_per_master = 1000")
    });
    let cfg = t.config(&[], (2000, 5000, 30000));
    let out = t.out("scale");
    let r = run_env(
        &t,
        &cfg,
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--only",
            "DATA-005",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let rep = report(&out);
    let failing = failing_subjects(&rep, "DATA-005");
    let first = t.lab.spec.client_addr(0).to_string();
    assert_eq!(failing.len(), 1, "{failing:?}");
    let (subject, m) = &failing[0];
    eprintln!("DATA-005 {subject}: {m}");
    assert_eq!(subject, &first);
    assert!(
        m.contains("3 of ") && m.contains(" keys have no TTL (INFO keyspace)"),
        "{m}"
    );
    assert!(
        m.contains("the sample of 1,000 keys matching session:*"),
        "{m}"
    );
    // Whether the sample saw one of them or not, the counts name three:
    // the code says which.
    let code = check(&rep, "DATA-005")["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject"] == first.as_str())
        .map(|s| s["code"].as_str().unwrap().to_string())
        .unwrap();
    assert!(
        code == "DATA-005/keys-without-ttl" || code == "DATA-005/session-without-ttl",
        "{code}"
    );
    // The other masters pass, saying what they counted and scanned.
    for (s, outcome, m) in subjects(&rep, "DATA-005") {
        if s != first {
            assert_eq!(outcome, "pass", "{s}: {m}");
            assert!(
                m.contains("| 0 of ") && m.contains("the sample of 1,000 keys"),
                "{m}"
            );
        }
    }

    // The shipped policy (a sample of up to 100,000 keys per master at
    // 20,000 keys/s: 5 s) under a 2 s probe deadline: the scan ends as a
    // sample before the deadline instead of timing out, and the counts
    // still name the three.
    let cfg = t.config(&[], (2000, 3000, 2000));
    let out = t.out("short-deadline");
    let r = run_env(
        &t,
        &cfg,
        &["--only", "DATA-005", "--out", out.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let rep = report(&out);
    let failing = failing_subjects(&rep, "DATA-005");
    assert_eq!(failing.len(), 1, "{failing:?}");
    let (subject, m) = &failing[0];
    assert_eq!(subject, &first);
    assert!(
        m.contains("sample: stopped at three quarters of probe_ms, before the cap")
            && m.contains("3 of "),
        "{m}"
    );
}
