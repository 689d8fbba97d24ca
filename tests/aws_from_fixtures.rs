//! The AWS checks judged from the fixture evidence recorded on the real
//! lab's emulator: the encryption checks (ENC-001..006: volumes all on one
//! customer-managed, enabled, rotating AES-256 key), the security-group
//! allowlist (NET-001) and placement (CLU-008..010: three instances in
//! three zones of one VPC), unmodified and with one defect each. Each
//! defect fails exactly its own check, with its reason code, on exactly
//! the subjects it is on. (BAK-001 has its own file.)

mod common;

use common::{codes, fixture_evidence, inventory, judge_areas, not_passing, only};
use epic_audit::checks::Outcome;
use epic_audit::evidence::{AwsInventory, EvidenceSet};

fn judge(ev: &EvidenceSet) -> epic_audit::report::Report {
    judge_areas(ev, &["encryption"])
}

/// The fixture with `plant` applied to its AWS inventory.
fn with(plant: impl FnOnce(&mut AwsInventory)) -> EvidenceSet {
    let mut ev = fixture_evidence();
    plant(inventory(&mut ev));
    ev
}

#[test]
fn the_lab_passes_every_encryption_check_with_one_subject_per_volume() {
    let r = judge(&fixture_evidence());
    assert_eq!(not_passing(&r), vec![]);
    let volumes = inventory(&mut fixture_evidence()).volumes.len();
    for id in ["ENC-001", "ENC-002", "ENC-003", "ENC-004", "ENC-005"] {
        let c = r.checks.iter().find(|c| c.id == id).unwrap();
        assert_eq!(c.subjects.len(), volumes, "{id}");
    }
    let c = r.checks.iter().find(|c| c.id == "ENC-005").unwrap();
    assert!(c.subjects.iter().all(|s| s.code == "ENC-005/key-spec-ok"));
}

#[test]
fn each_key_and_volume_defect_fails_exactly_its_check_with_its_reason() {
    // (what is wrong, the evidence, the check it fails, the outcome, the
    // reason of every subject that does not pass, how many subjects)
    let all = inventory(&mut fixture_evidence()).volumes.len();
    let cases: Vec<(&str, EvidenceSet, &str, Outcome, &str, usize)> = vec![
        (
            "a signing key behind the volumes",
            with(|inv| inv.keys[0].key_usage = Some("SIGN_VERIFY".into())),
            "ENC-005",
            Outcome::Fail,
            "not-an-encryption-key",
            all,
        ),
        (
            "the key disabled",
            with(|inv| inv.keys[0].key_state = Some("Disabled".into())),
            "ENC-003",
            Outcome::Fail,
            "key-not-enabled",
            all,
        ),
        (
            "the key scheduled for deletion",
            with(|inv| inv.keys[0].key_state = Some("PendingDeletion".into())),
            "ENC-003",
            Outcome::Fail,
            "key-pending-deletion",
            all,
        ),
        (
            "rotation off",
            with(|inv| inv.keys[0].rotation_enabled = Some(false)),
            "ENC-004",
            Outcome::Fail,
            "rotation-off",
            all,
        ),
        (
            "rotation status unread",
            with(|inv| inv.keys[0].rotation_enabled = None),
            "ENC-004",
            Outcome::Error,
            "rotation-unknown",
            all,
        ),
        (
            "encryption by default off",
            with(|inv| inv.ebs_encryption_by_default = Some(false)),
            "ENC-006",
            Outcome::Warn,
            "default-encryption-off",
            1,
        ),
    ];
    for (what, ev, id, outcome, why, n) in cases {
        let r = judge(&ev);
        assert_eq!(not_passing(&r), only(id, outcome), "{what}");
        let got = codes(&r, id);
        assert_eq!(got.len(), n, "{what}: {got:?}");
        assert!(
            got.iter().all(|(_, c)| *c == format!("{id}/{why}")),
            "{what}: {got:?}"
        );
    }
}

#[test]
fn an_unencrypted_volume_fails_enc_001_and_the_key_checks_skip_it() {
    let ev = with(|inv| {
        inv.volumes[0].encrypted = false;
        inv.volumes[0].kms_key_id = None;
    });
    let r = judge(&ev);
    assert_eq!(not_passing(&r), only("ENC-001", Outcome::Fail));
    let failed = codes(&r, "ENC-001");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].1, "ENC-001/volume-not-encrypted");
    for id in ["ENC-002", "ENC-003", "ENC-004", "ENC-005"] {
        assert_eq!(
            codes(&r, id),
            vec![(failed[0].0.clone(), format!("{id}/volume-not-encrypted"))],
            "{id}"
        );
    }
}

#[test]
fn the_aws_managed_key_fails_enc_002_and_is_not_judged_for_rotation() {
    let ev = with(|inv| {
        let k = &mut inv.keys[0];
        k.key_manager = Some("AWS".into());
        k.aliases = vec!["alias/aws/ebs".into()];
    });
    let r = judge(&ev);
    // AWS rotates its own keys: ENC-004 has nothing to judge (skip).
    assert_eq!(
        not_passing(&r),
        vec![
            ("ENC-002".to_string(), Outcome::Fail),
            ("ENC-004".to_string(), Outcome::Skip)
        ]
    );
    assert!(codes(&r, "ENC-002")
        .iter()
        .all(|(_, c)| c == "ENC-002/aws-managed-key"));
    assert!(codes(&r, "ENC-004")
        .iter()
        .all(|(_, c)| c == "ENC-004/aws-managed-key-rotation"));
}

#[test]
fn a_key_kms_could_not_describe_is_an_error_on_every_key_check() {
    let ev = with(|inv| {
        let k = &mut inv.keys[0];
        k.key_id = None;
        k.error = Some("kms:DescribeKey failed: AccessDeniedException".into());
    });
    let r = judge(&ev);
    let errored: Vec<_> = not_passing(&r);
    assert_eq!(
        errored,
        ["ENC-002", "ENC-003", "ENC-004", "ENC-005"]
            .iter()
            .map(|id| (id.to_string(), Outcome::Error))
            .collect::<Vec<_>>()
    );
    assert!(codes(&r, "ENC-005")
        .iter()
        .all(|(_, c)| c == "ENC-005/key-not-described"));
}

#[test]
fn the_lab_passes_the_allowlist_and_placement() {
    let r = judge_areas(
        &fixture_evidence(),
        &["network", "CLU-008", "CLU-009", "CLU-010"],
    );
    assert_eq!(not_passing(&r), vec![]);
}

#[test]
fn each_allowlist_and_placement_defect_fails_exactly_its_check() {
    use epic_audit::evidence::{IngressRule, Source};
    let open = |port: i32, source: Source| IngressRule {
        protocol: "tcp".into(),
        from_port: Some(port),
        to_port: Some(port),
        source,
        description: None,
    };
    // (what is wrong, the evidence, the check, its outcome, the reason of
    // every subject of the check that does not pass)
    let cases: Vec<(&str, EvidenceSet, &str, Outcome, &str)> = vec![
        (
            "Redis open to the internet",
            with(|inv| {
                inv.security_groups[0]
                    .ingress
                    .push(open(6379, Source::Cidr4("0.0.0.0/0".into())))
            }),
            "NET-001",
            Outcome::Fail,
            "open-to-internet",
        ),
        (
            "a port the allowlist does not name, from the VPC",
            with(|inv| {
                inv.security_groups[0]
                    .ingress
                    .push(open(8080, Source::Cidr4("10.0.0.0/16".into())))
            }),
            "NET-001",
            Outcome::Fail,
            "port-not-allowlisted",
        ),
        (
            "SSH from the whole VPC instead of the admin host",
            with(|inv| {
                inv.security_groups[0]
                    .ingress
                    .push(open(22, Source::Cidr4("10.0.0.0/16".into())))
            }),
            "NET-001",
            Outcome::Fail,
            "source-not-allowed",
        ),
        (
            "an instance in another VPC",
            with(|inv| inv.instances[2].vpc_id = Some("vpc-other".into())),
            "CLU-010",
            Outcome::Fail,
            "outside-vpc",
        ),
    ];
    for (what, ev, id, outcome, why) in cases {
        let r = judge_areas(&ev, &["network", "CLU-008", "CLU-009", "CLU-010"]);
        assert_eq!(not_passing(&r), only(id, outcome), "{what}");
        let got = codes(&r, id);
        assert!(
            !got.is_empty() && got.iter().all(|(_, c)| *c == format!("{id}/{why}")),
            "{what}: {got:?}"
        );
    }
}

#[test]
fn masters_sharing_a_zone_fail_and_a_replica_beside_its_master_warns() {
    // All three instances in one zone: every master shares it (CLU-008
    // fails) and every replica sits in its master's zone (CLU-009 warns).
    let ev = with(|inv| {
        for i in inv.instances.iter_mut() {
            i.availability_zone = Some("us-east-1a".into());
        }
    });
    let r = judge_areas(&ev, &["CLU-008", "CLU-009"]);
    assert_eq!(
        not_passing(&r),
        vec![
            ("CLU-008".to_string(), Outcome::Fail),
            ("CLU-009".to_string(), Outcome::Warn)
        ]
    );
    assert!(codes(&r, "CLU-008")
        .iter()
        .all(|(_, c)| c == "CLU-008/masters-share-zone"));
    assert_eq!(codes(&r, "CLU-008").len(), 3);
    assert!(codes(&r, "CLU-009")
        .iter()
        .all(|(_, c)| c == "CLU-009/replica-shares-master-zone"));
}

#[test]
fn an_rsa_key_fails_enc_005_and_is_not_judged_for_rotation() {
    // One volume on a second, RSA-2048 key (as the lab's WrongKeySpec
    // defect seeds it): ENC-005 fails that volume; ENC-004 skips it (AWS
    // rotates only symmetric keys) and passes the others.
    let ev = with(|inv| {
        let mut rsa = inv.keys[0].clone();
        rsa.reference = "rsa-key".into();
        rsa.key_id = Some("rsa-key".into());
        rsa.arn = None;
        rsa.aliases = vec![];
        rsa.key_spec = Some("RSA_2048".into());
        rsa.rotation_enabled = Some(false);
        inv.keys.push(rsa);
        inv.volumes[1].kms_key_id = Some("rsa-key".into());
    });
    let r = judge(&ev);
    assert_eq!(not_passing(&r), only("ENC-005", Outcome::Fail));
    let failed = codes(&r, "ENC-005");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].1, "ENC-005/wrong-key-spec");
    assert_eq!(
        codes(&r, "ENC-004"),
        vec![(
            failed[0].0.clone(),
            "ENC-004/rotation-not-applicable".into()
        )]
    );
}
