//! Every transport check judged from fixture evidence recorded on the real
//! lab, unmodified and with one defect each.

mod common;

use chrono::Duration;
use common::{
    distinct_codes, fixture_evidence, judge_areas, messages, not_passing, observations_mut, only,
};
use epic_audit::checks::Outcome;
use epic_audit::evidence::{
    EvidenceSet, Observation, Observed, ProbeFailure, TlsConfigView, TlsEndpointView,
};
use epic_audit::report::Report;

fn judge_transport(ev: &EvidenceSet) -> Report {
    judge_areas(ev, &["transport"])
}

fn endpoints(ev: &mut EvidenceSet) -> Vec<&mut TlsEndpointView> {
    let endpoints = observations_mut(ev, |o| match o {
        Observation::TlsEndpoint(v) => Some(v.as_mut()),
        _ => None,
    });
    endpoints.into_iter().map(|(_, v)| v).collect()
}

fn configs(ev: &mut EvidenceSet) -> Vec<(String, &mut TlsConfigView)> {
    observations_mut(ev, |o| match o {
        Observation::TlsConfig(v) => Some(v),
        _ => None,
    })
}

/// Applies `f` to both endpoints of node 127.0.1.4.
fn on_node4(ev: &mut EvidenceSet, f: impl Fn(&mut TlsEndpointView)) {
    for v in endpoints(ev)
        .into_iter()
        .filter(|v| v.node.starts_with("127.0.1.4:"))
    {
        f(v);
    }
}

#[test]
fn good_lab_passes_every_transport_check() {
    let ev = fixture_evidence();
    let r = judge_transport(&ev);
    assert_eq!(r.checks.len(), 11);
    assert_eq!(
        not_passing(&r),
        vec![],
        "{:#?}",
        r.checks
            .iter()
            .map(|c| messages(&r, &c.id))
            .collect::<Vec<_>>()
    );
    assert_eq!(ev.tls_endpoints().len(), 12, "6 nodes x (client + bus)");
}

#[test]
fn an_accepted_tls12_fails_versions() {
    let mut ev = fixture_evidence();
    for v in endpoints(&mut ev) {
        let r = v
            .versions
            .iter_mut()
            .find(|r| r.version == epic_audit::evidence::TlsVersion::Tls12)
            .unwrap();
        r.outcome = epic_audit::evidence::VersionOutcome::Accepted;
        r.detail = "ServerHello TLSv1.2 cipher 0xc030".into();
    }
    let r = judge_transport(&ev);
    assert_eq!(not_passing(&r), only("TLS-001", Outcome::Fail));
    assert_eq!(messages(&r, "TLS-001").len(), 12);
    assert_eq!(
        distinct_codes(&r, "TLS-001"),
        vec!["TLS-001/forbidden-version-accepted"]
    );
}

#[test]
fn an_undetermined_legacy_version_is_an_error_and_a_failed_confirmation_fails() {
    let mut ev = fixture_evidence();
    on_node4(&mut ev, |v| {
        v.versions[0].outcome = epic_audit::evidence::VersionOutcome::Undetermined;
        v.versions[0].detail = "no answer within 3000 ms".into();
    });
    let r = judge_transport(&ev);
    assert_eq!(not_passing(&r), only("TLS-001", Outcome::Error));
    assert_eq!(
        distinct_codes(&r, "TLS-001"),
        vec!["TLS-001/version-undetermined"]
    );
    let mut ev = fixture_evidence();
    on_node4(&mut ev, |v| {
        v.handshake.completed = false;
        v.handshake.detail =
            "refused after the handshake: received fatal alert: BadCertificate".into();
    });
    let r = judge_transport(&ev);
    assert_eq!(not_passing(&r), only("TLS-001", Outcome::Fail));
    assert_eq!(
        distinct_codes(&r, "TLS-001"),
        vec!["TLS-001/tls13-handshake-failed"]
    );
}

#[test]
fn weak_key_fails_key_check() {
    let mut ev = fixture_evidence();
    on_node4(&mut ev, |v| v.chain[0].key_bits = 2048);
    let r = judge_transport(&ev);
    assert_eq!(not_passing(&r), only("TLS-002", Outcome::Fail));
    assert_eq!(distinct_codes(&r, "TLS-002"), vec!["TLS-002/key-too-short"]);
}

#[test]
fn sha1_signature_fails_signature_check() {
    let mut ev = fixture_evidence();
    on_node4(&mut ev, |v| {
        v.chain[0].signature_algorithm = "sha1WithRSAEncryption".into()
    });
    let r = judge_transport(&ev);
    assert_eq!(not_passing(&r), only("TLS-003", Outcome::Fail));
    assert_eq!(
        distinct_codes(&r, "TLS-003"),
        vec!["TLS-003/weak-signature"]
    );
}

#[test]
fn validity_windows_fail_warn_and_expired() {
    let at = fixture_evidence().started_at;
    for (days, want) in [
        (-3, Outcome::Fail),
        (10, Outcome::Fail),
        (45, Outcome::Warn),
    ] {
        let mut ev = fixture_evidence();
        on_node4(&mut ev, |v| {
            v.chain[0].not_after = at + Duration::days(days)
        });
        let r = judge_transport(&ev);
        assert_eq!(not_passing(&r), only("TLS-004", want), "{days} days");
        let why = match days {
            -3 => "certificate-expired",
            10 => "expires-soon",
            _ => "expires-within-warning",
        };
        assert_eq!(
            distinct_codes(&r, "TLS-004"),
            vec![format!("TLS-004/{why}")]
        );
    }
}

#[test]
fn an_untrusted_chain_fails_chain_check() {
    let mut ev = fixture_evidence();
    on_node4(&mut ev, |v| {
        v.chain_verification = "invalid peer certificate: UnknownIssuer".into();
        v.chain[0].self_signed = true;
    });
    let r = judge_transport(&ev);
    assert_eq!(not_passing(&r), only("TLS-005", Outcome::Fail));
    assert_eq!(
        distinct_codes(&r, "TLS-005"),
        vec!["TLS-005/chain-untrusted"]
    );
}

#[test]
fn a_san_for_another_address_fails() {
    let mut ev = fixture_evidence();
    on_node4(&mut ev, |v| v.chain[0].san_ip = vec!["127.0.1.9".into()]);
    let r = judge_transport(&ev);
    assert_eq!(not_passing(&r), only("TLS-006", Outcome::Fail));
    assert_eq!(distinct_codes(&r, "TLS-006"), vec!["TLS-006/san-missing"]);
}

#[test]
fn missing_client_auth_eku_fails() {
    let mut ev = fixture_evidence();
    on_node4(&mut ev, |v| v.chain[0].eku_client_auth = false);
    let r = judge_transport(&ev);
    assert_eq!(not_passing(&r), only("TLS-007", Outcome::Fail));
    assert_eq!(
        distinct_codes(&r, "TLS-007"),
        vec!["TLS-007/key-usage-missing"]
    );
}

#[test]
fn different_certificates_on_client_and_bus_fail_identity() {
    let mut ev = fixture_evidence();
    for v in endpoints(&mut ev).into_iter().filter(|v| {
        v.node.starts_with("127.0.1.4:") && v.port_kind == epic_audit::evidence::PortKind::Bus
    }) {
        v.chain[0].sha256 = "0".repeat(64);
    }
    let r = judge_transport(&ev);
    assert_eq!(not_passing(&r), only("TLS-008", Outcome::Fail));
    assert_eq!(
        distinct_codes(&r, "TLS-008"),
        vec!["TLS-008/identity-differs"]
    );
}

#[test]
fn plaintext_port_or_answer_fails() {
    let mut ev = fixture_evidence();
    for (s, v) in configs(&mut ev) {
        if s.starts_with("127.0.1.2:") {
            v.config.insert("port".into(), "6380".into());
            v.plaintext.push(epic_audit::evidence::PlaintextProbe {
                port: 6380,
                source: epic_audit::evidence::PlaintextSource::ConfigPort,
                redis_answered: true,
                detail: "Redis answered in plaintext: `-NOAUTH Authentication required.`".into(),
            });
        }
    }
    let r = judge_transport(&ev);
    assert_eq!(not_passing(&r), only("TLS-009", Outcome::Fail));
    assert_eq!(
        distinct_codes(&r, "TLS-009"),
        vec!["TLS-009/plaintext-port-configured"]
    );
}

#[test]
fn an_advertised_plaintext_port_that_nobody_answers_on_passes() {
    let mut ev = fixture_evidence();
    for (_, v) in configs(&mut ev) {
        v.plaintext.push(epic_audit::evidence::PlaintextProbe {
            port: 6380,
            source: epic_audit::evidence::PlaintextSource::Advertised,
            redis_answered: false,
            detail: "no listener: Connection refused (os error 111)".into(),
        });
    }
    assert_eq!(not_passing(&judge_transport(&ev)), vec![]);
}

#[test]
fn replication_in_clear_fails_internode_check() {
    let mut ev = fixture_evidence();
    for (_, v) in configs(&mut ev) {
        v.config.insert("tls-replication".into(), "no".into());
    }
    let r = judge_transport(&ev);
    assert_eq!(not_passing(&r), only("TLS-010", Outcome::Fail));
    assert_eq!(
        distinct_codes(&r, "TLS-010"),
        vec!["TLS-010/internode-plaintext"]
    );
}

#[test]
fn clients_without_certificates_accepted_fails() {
    let mut ev = fixture_evidence();
    for v in endpoints(&mut ev)
        .into_iter()
        .filter(|v| v.port_kind == epic_audit::evidence::PortKind::Client)
    {
        v.without_client_cert.completed = true;
        v.without_client_cert.detail = "PING answered `-NOAUTH Authentication required.`".into();
    }
    for (_, v) in configs(&mut ev) {
        v.config
            .insert("tls-auth-clients".into(), "optional".into());
    }
    let r = judge_transport(&ev);
    assert_eq!(not_passing(&r), only("TLS-011", Outcome::Fail));
    // The first problem decides the code; the message names both.
    assert_eq!(
        distinct_codes(&r, "TLS-011"),
        vec!["TLS-011/client-auth-off"]
    );
    let m = &messages(&r, "TLS-011")[0];
    assert!(m.contains("was accepted"), "{m}");
}

#[test]
fn unobserved_endpoints_and_configs_are_errors_never_pass() {
    let mut ev = fixture_evidence();
    for e in ev
        .items
        .iter_mut()
        .filter(|e| e.probe.as_str().starts_with("tls."))
    {
        e.result = Observed::Failure(ProbeFailure {
            kind: epic_audit::evidence::FailureKind::Deadline,
            message: format!("{}: TLS probe did not finish within 10000 ms", e.subject),
        });
    }
    let r = judge_transport(&ev);
    for c in &r.checks {
        assert_eq!(c.outcome, Outcome::Error, "{}", c.id);
    }
    // And with no TLS evidence at all.
    let mut ev = fixture_evidence();
    ev.items.retain(|e| !e.probe.as_str().starts_with("tls."));
    for c in &judge_transport(&ev).checks {
        assert_eq!(c.outcome, Outcome::Error, "{}", c.id);
    }
}
