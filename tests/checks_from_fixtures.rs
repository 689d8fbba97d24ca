//! Every cluster check judged from fixture evidence (recorded from the real
//! lab), unmodified and with exactly one defect each. No servers needed.

mod common;

use common::{fixture_evidence, judge_areas, observations_mut};
use epic_audit::checks::Outcome;
use epic_audit::engine::judge;
use epic_audit::evidence::{EvidenceSet, Observation, Observed, OpenSlot, ProbeFailure, SlotRange};
use epic_audit::policy::Policy;
use epic_audit::report::Report;

fn judge_all(ev: &EvidenceSet) -> Report {
    judge_areas(ev, &["cluster"])
}

fn judge_with(ev: &EvidenceSet, p: &Policy) -> Report {
    let sel = p.select(&["cluster".into()], &[]).unwrap();
    judge(ev, p, &sel, &[], &[])
}

/// The code of check `id`'s subject that starts with `subject`.
fn code_of(r: &Report, id: &str, subject: &str) -> String {
    common::result(r, id)
        .subjects
        .iter()
        .find(|s| s.subject.starts_with(subject))
        .unwrap_or_else(|| panic!("{id} has no subject {subject}"))
        .code
        .clone()
}

/// (subject, outcome, observed | message) of one check's subjects.
fn subjects(r: &Report, id: &str) -> Vec<(String, Outcome, String)> {
    common::result(r, id)
        .subjects
        .iter()
        .map(|s| {
            (
                s.subject.clone(),
                s.outcome,
                format!("{} | {}", s.observed, s.message),
            )
        })
        .collect()
}

fn outcome(r: &Report, id: &str) -> Outcome {
    r.checks.iter().find(|c| c.id == id).unwrap().outcome
}

/// Asserts every check but `except` passes.
fn others_pass(r: &Report, except: &[&str]) {
    for c in &r.checks {
        if !except.contains(&c.id.as_str()) {
            assert_eq!(
                c.outcome,
                Outcome::Pass,
                "{} should pass: {:?}",
                c.id,
                c.subjects
            );
        }
    }
}

/// Mutable views of every node, by subject.
fn views_mut(ev: &mut EvidenceSet) -> Vec<(String, &mut epic_audit::evidence::ClusterNodeView)> {
    observations_mut(ev, |o| match o {
        Observation::ClusterNode(v) => Some(v),
        _ => None,
    })
}

fn id_of(ev: &EvidenceSet, addr: &str) -> String {
    let (_, v) = ev
        .cluster_views()
        .into_iter()
        .find(|(_, r)| r.is_ok())
        .unwrap();
    v.unwrap()
        .nodes
        .iter()
        .find(|n| n.addr == addr)
        .unwrap()
        .id
        .clone()
}

#[test]
fn good_lab_evidence_passes_every_cluster_check() {
    let r = judge_all(&fixture_evidence());
    assert_eq!(
        r.checks.iter().filter(|c| c.id.starts_with("CLU-")).count(),
        10
    );
    others_pass(&r, &[]);
    assert_eq!(r.exit_code, 0);
    assert_eq!(r.verdict, Outcome::Pass);
}

#[test]
fn slots_missing_on_every_node_fail_coverage_naming_the_range() {
    let mut ev = fixture_evidence();
    for (_, v) in views_mut(&mut ev) {
        for n in v.nodes.iter_mut().filter(|n| {
            n.slots.contains(&SlotRange {
                start: 0,
                end: 5460,
            })
        }) {
            n.slots = vec![
                SlotRange { start: 0, end: 99 },
                SlotRange {
                    start: 200,
                    end: 5460,
                },
            ];
        }
    }
    let r = judge_all(&ev);
    let s = subjects(&r, "CLU-001");
    assert_eq!(s.len(), 6);
    for (subj, o, text) in &s {
        assert_eq!(*o, Outcome::Fail, "{subj}");
        assert_eq!(code_of(&r, "CLU-001", subj), "CLU-001/slots-unassigned");
        // The finding names the range (what to fix).
        assert!(text.contains("100-199"), "{text}");
    }
    // The range is also not where the documented topology puts it.
    others_pass(&r, &["CLU-001", "CLU-006"]);
    assert_eq!(r.exit_code, 1);
}

#[test]
fn one_node_with_another_slot_map_fails_agreement_on_that_node_only() {
    let mut ev = fixture_evidence();
    let other = id_of(&ev, "127.0.1.2:6379");
    for (subj, v) in views_mut(&mut ev) {
        if subj == "127.0.1.4:6379" {
            for n in v.nodes.iter_mut() {
                if n.slots.first()
                    == Some(&SlotRange {
                        start: 0,
                        end: 5460,
                    })
                {
                    n.slots = vec![SlotRange {
                        start: 100,
                        end: 5460,
                    }];
                } else if n.id == other {
                    n.slots.insert(0, SlotRange { start: 0, end: 99 });
                }
            }
        }
    }
    let r = judge_all(&ev);
    let s = subjects(&r, "CLU-002");
    for (subj, o, text) in &s {
        if subj == "127.0.1.4:6379" {
            assert_eq!(*o, Outcome::Fail);
            assert_eq!(code_of(&r, "CLU-002", subj), "CLU-002/slot-map-disagrees");
            assert!(
                text.contains("slots 0-99: this node says 127.0.1.2:6379"),
                "{text}"
            );
            assert!(text.contains("5 of 6 nodes say 127.0.1.1:6379"), "{text}");
        } else {
            assert_eq!(*o, Outcome::Pass, "{subj}: {text}");
        }
    }
    others_pass(&r, &["CLU-002"]);
}

#[test]
fn a_migrating_slot_fails_open_slots_on_that_node_only() {
    let mut ev = fixture_evidence();
    let target = id_of(&ev, "127.0.1.2:6379");
    for (subj, v) in views_mut(&mut ev) {
        if subj == "127.0.1.1:6379" {
            let me = v.myself.clone();
            let n = v.nodes.iter_mut().find(|n| n.id == me).unwrap();
            n.migrating.push(OpenSlot {
                slot: 42,
                node: target.clone(),
            });
        }
    }
    let r = judge_all(&ev);
    let fails: Vec<_> = subjects(&r, "CLU-003")
        .into_iter()
        .filter(|s| s.1 == Outcome::Fail)
        .collect();
    assert_eq!(fails.len(), 1);
    assert_eq!(fails[0].0, "127.0.1.1:6379");
    assert_eq!(code_of(&r, "CLU-003", &fails[0].0), "CLU-003/open-slots");
    assert!(
        fails[0].2.contains("slot 42 migrating to 127.0.1.2:6379"),
        "{}",
        fails[0].2
    );
    others_pass(&r, &["CLU-003"]);
}

#[test]
fn cluster_state_fail_on_one_node_fails_state_check() {
    let mut ev = fixture_evidence();
    for (subj, v) in views_mut(&mut ev) {
        if subj == "127.0.1.3:6379" {
            v.info.insert("cluster_state".into(), "fail".into());
        }
    }
    let r = judge_all(&ev);
    let fails: Vec<_> = subjects(&r, "CLU-004")
        .into_iter()
        .filter(|s| s.1 == Outcome::Fail)
        .collect();
    assert_eq!(fails.len(), 1);
    assert_eq!(code_of(&r, "CLU-004", &fails[0].0), "CLU-004/state-fail");
    others_pass(&r, &["CLU-004"]);
}

#[test]
fn a_node_flagged_fail_by_peers_fails_online_check() {
    let mut ev = fixture_evidence();
    let dead = id_of(&ev, "127.0.1.2:6379");
    for (_, v) in views_mut(&mut ev) {
        for n in v
            .nodes
            .iter_mut()
            .filter(|n| n.id == dead && !n.has_flag("myself"))
        {
            n.flags.push("fail".into());
            n.link_state = "disconnected".into();
        }
    }
    let r = judge_all(&ev);
    let s = subjects(&r, "CLU-005");
    let bad: Vec<_> = s.iter().filter(|s| s.1 != Outcome::Pass).collect();
    assert_eq!(bad.len(), 1, "{s:?}");
    assert!(bad[0].0.starts_with("127.0.1.2:6379"));
    assert_eq!(bad[0].1, Outcome::Fail);
    assert_eq!(
        code_of(&r, "CLU-005", &bad[0].0),
        "CLU-005/node-flagged-failing"
    );
    assert!(bad[0].2.contains("link disconnected"), "{}", bad[0].2);
    others_pass(&r, &["CLU-005"]);
}

#[test]
fn a_replica_still_loading_is_a_warning_not_a_failure() {
    let mut ev = fixture_evidence();
    for (subj, v) in views_mut(&mut ev) {
        if subj == "127.0.1.6:6379" {
            for sn in v
                .shards
                .iter_mut()
                .flat_map(|s| s.nodes.iter_mut())
                .filter(|n| n.ip == "127.0.1.5")
            {
                sn.health = epic_audit::evidence::ShardHealth::Loading;
            }
        }
    }
    let r = judge_all(&ev);
    assert_eq!(outcome(&r, "CLU-005"), Outcome::Warn);
    assert_eq!(r.exit_code, 0, "warnings do not fail the gate");
    let warned = subjects(&r, "CLU-005")
        .into_iter()
        .find(|s| s.1 == Outcome::Warn)
        .unwrap();
    assert_eq!(code_of(&r, "CLU-005", &warned.0), "CLU-005/replica-syncing");
    assert!(warned.2.contains("could not be read"), "{warned:?}");

    // The replica's own INFO says it is in sync: the peer's `loading` is
    // gossip that has not caught up, and the node passes (saying so).
    let own = |ev: &mut EvidenceSet, sync: &str| {
        for (subj, v) in views_mut(ev) {
            if subj == "127.0.1.5:6379" {
                v.own_state = [
                    ("role", "slave"),
                    ("master_link_status", "up"),
                    ("master_sync_in_progress", sync),
                    ("loading", "0"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            }
        }
    };
    own(&mut ev, "0");
    let r = judge_all(&ev);
    others_pass(&r, &[]);
    let s = subjects(&r, "CLU-005")
        .into_iter()
        .find(|s| s.0.starts_with("127.0.1.5:6379"))
        .unwrap();
    assert_eq!(code_of(&r, "CLU-005", &s.0), "CLU-005/peers-gossip-stale");
    // Still syncing by its own account: a warning that says it is transient.
    own(&mut ev, "1");
    let r = judge_all(&ev);
    assert_eq!(outcome(&r, "CLU-005"), Outcome::Warn);
    let warned = subjects(&r, "CLU-005")
        .into_iter()
        .find(|s| s.1 == Outcome::Warn)
        .unwrap();
    assert_eq!(code_of(&r, "CLU-005", &warned.0), "CLU-005/replica-syncing");
    assert!(warned.2.contains("master_sync_in_progress:1"), "{warned:?}");
}

#[test]
fn an_unobserved_node_is_error_in_every_per_node_check_never_pass() {
    let mut ev = fixture_evidence();
    for e in ev
        .items
        .iter_mut()
        .filter(|e| e.subject == "127.0.1.2:6379")
    {
        e.result = Observed::Failure(ProbeFailure {
            kind: epic_audit::evidence::FailureKind::Timeout,
            message: "TLS handshake on 127.0.1.2:6379 got no answer within 2000 ms".into(),
        });
    }
    let r = judge_all(&ev);
    for id in ["CLU-001", "CLU-002", "CLU-003", "CLU-004", "CLU-005"] {
        let s = subjects(&r, id);
        let node: Vec<_> = s
            .iter()
            .filter(|s| s.0.starts_with("127.0.1.2:6379"))
            .collect();
        assert_eq!(node.len(), 1, "{id}: {s:?}");
        assert_eq!(node[0].1, Outcome::Error, "{id}");
        assert_eq!(code_of(&r, id, &node[0].0), format!("{id}/unobserved"));
        assert!(node[0].2.contains("within 2000 ms"), "{id}: {}", node[0].2);
        assert_eq!(outcome(&r, id), Outcome::Error, "{id}");
    }
    assert_eq!(r.exit_code, 2, "errors without failures exit 2");
}

#[test]
fn no_evidence_at_all_is_error_for_every_check() {
    let mut ev = fixture_evidence();
    ev.items.clear();
    let r = judge_all(&ev);
    for c in &r.checks {
        assert_eq!(c.outcome, Outcome::Error, "{}", c.id);
    }
    assert_eq!(r.exit_code, 2);
}

#[test]
fn topology_expectations_from_policy_params() {
    let text = epic_audit::policy::builtin_file("cluster.toml")
        .replace("masters = 3", "masters = 4")
        .replace(
            "[5461, 10922], [10923, 16383]",
            "[5461, 10000], [10001, 16383]",
        );
    let p = Policy::from_files(vec![("cluster.toml".into(), text.to_string())], "test").unwrap();
    let r = judge_with(&fixture_evidence(), &p);
    let s = subjects(&r, "CLU-006");
    let get = |name: &str| s.iter().find(|x| x.0 == name).unwrap().clone();
    assert_eq!(get("masters").1, Outcome::Fail);
    assert_eq!(
        code_of(&r, "CLU-006", "masters"),
        "CLU-006/master-count-wrong"
    );
    assert_eq!(get("slots 0-5460").1, Outcome::Pass);
    let split = get("slots 10001-16383");
    assert_eq!(split.1, Outcome::Fail);
    assert_eq!(
        code_of(&r, "CLU-006", "slots 10001-16383"),
        "CLU-006/range-split"
    );
    assert!(split.2.contains("10001-10922"), "{}", split.2);
    let partial = get("slots 5461-10000");
    assert_eq!(partial.1, Outcome::Fail);
    assert_eq!(
        code_of(&r, "CLU-006", "slots 5461-10000"),
        "CLU-006/master-serves-more"
    );
}

#[test]
fn key_slot_mismatch_fails_and_missing_samples_error() {
    let mut ev = fixture_evidence();
    for e in ev.items.iter_mut() {
        if let Observed::Observation(Observation::KeySlots(k)) = &mut e.result {
            let s = k
                .samples
                .iter_mut()
                .find(|s| s.key == "{user1000}.following")
                .unwrap();
            s.server_slot = (s.server_slot + 1) % 16384;
        }
    }
    let r = judge_all(&ev);
    let fails: Vec<_> = subjects(&r, "CLU-007")
        .into_iter()
        .filter(|s| s.1 == Outcome::Fail)
        .collect();
    assert_eq!(fails.len(), 1);
    assert_eq!(fails[0].0, "key `{user1000}.following`");
    others_pass(&r, &["CLU-007"]);

    let mut ev = fixture_evidence();
    ev.items.retain(|e| e.probe != "cluster.keyslot");
    assert_eq!(outcome(&judge_all(&ev), "CLU-007"), Outcome::Error);
}

#[test]
fn disabled_check_is_reported_as_skip_with_reason() {
    let text = epic_audit::policy::builtin_file("cluster.toml").replacen(
        "rule = \"cluster.open_slots\"",
        "rule = \"cluster.open_slots\"\nenabled = false",
        1,
    );
    let p = Policy::from_files(vec![("cluster.toml".into(), text.to_string())], "test").unwrap();
    let r = judge_with(&fixture_evidence(), &p);
    assert_eq!(outcome(&r, "CLU-003"), Outcome::Skip);
    assert_eq!(code_of(&r, "CLU-003", "policy"), "CLU-003/disabled");
    assert_eq!(r.exit_code, 0);
}

#[test]
fn evidence_round_trips_through_json() {
    let ev = fixture_evidence();
    let again: EvidenceSet = serde_json::from_str(&serde_json::to_string(&ev).unwrap()).unwrap();
    assert_eq!(judge_all(&ev).to_json(), judge_all(&again).to_json());
}

#[test]
fn masters_at_names_each_ranges_master_and_a_moved_master_fails() {
    let with = |at: &str| {
        let text = epic_audit::policy::builtin_file("cluster.toml").replace(
            "# masters_at = [\"10.0.1.102:6379\", \"10.0.2.27:6379\", \"10.0.3.205:6379\"]",
            &format!("masters_at = {at}"),
        );
        let p =
            Policy::from_files(vec![("cluster.toml".into(), text.to_string())], "test").unwrap();
        subjects(&judge_with(&fixture_evidence(), &p), "CLU-006")
    };
    // The fixture's masters are 127.0.1.1-3 in range order.
    let s = with(r#"["127.0.1.1:6379", "127.0.1.2:6379", "127.0.1.3:6379"]"#);
    assert!(s.iter().all(|x| x.1 == Outcome::Pass), "{s:?}");
    // The plan puts the first range on 127.0.1.4 (say, before a failover).
    let s = with(r#"["127.0.1.4:6379", "127.0.1.2:6379", "127.0.1.3:6379"]"#);
    let moved: Vec<_> = s.iter().filter(|x| x.1 != Outcome::Pass).collect();
    assert_eq!(moved.len(), 1, "{s:?}");
    assert_eq!(moved[0].0, "slots 0-5460");
    assert_eq!(moved[0].1, Outcome::Fail);
    assert!(
        moved[0].2.contains("names 127.0.1.4:6379") && moved[0].2.contains("127.0.1.1:6379"),
        "{}",
        moved[0].2
    );
    // A list that does not match the ranges is an error, never a pass.
    let s = with(r#"["127.0.1.1:6379"]"#);
    assert!(
        s.iter()
            .any(|x| x.0 == "masters_at" && x.1 == Outcome::Error),
        "{s:?}"
    );
}
