//! The AWS checks against the real AWS SDK and a real EC2/KMS emulator
//! (moto on 127.0.0.1), joined to a real lab cluster: the seed inventory
//! passes, and each defect fails exactly its check.

mod common;

use common::*;
use epic_audit_lab::aws::AwsDefect;

/// Every AWS-backed check: network, encryption, and the placement checks
/// of the cluster area.
const AWS_CHECKS: &str = "network,encryption,backup,CLU-008,CLU-009,CLU-010";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_inventory_passes_and_each_defect_fails_exactly_its_check() {
    let t = start_lab_with(|s| {
        s.aws = true;
        s.exporters = false;
    })
    .await;
    t.config_with_aws((2000, 3000, 10000), &t.lab.aws_settings());

    let (code, rep, not_passing) = audit_area(&t, AWS_CHECKS, "good");
    assert_eq!(not_passing, vec![], "good inventory");
    assert_eq!(code, 0);
    assert_eq!(rep["checks"].as_array().unwrap().len(), 11);
    // Each Redis node joined to its instance; 3 instances x 2 volumes, of
    // which the 3 data volumes (not the root devices) need backups.
    assert_eq!(subjects(&rep, "CLU-010").len(), 6);
    assert_eq!(subjects(&rep, "ENC-001").len(), 6);
    let backups = subjects(&rep, "BAK-001");
    assert_eq!(backups.len(), 3, "{backups:?}");
    assert!(
        backups
            .iter()
            .all(|(s, o, m)| s.contains("/dev/sdf") && o == "pass" && m.contains("encrypted with")),
        "{backups:?}"
    );
    assert_eq!(subjects(&rep, "NET-001").len(), 4);

    // The environment's evidence store, in the same emulator: a real run
    // is kept there, locked for the environment's retention from its start.
    {
        let aws = t.lab.aws_settings();
        let conf = epic_audit::aws::sdk_config(&aws, &Default::default()).await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&conf)
                .force_path_style(true)
                .build(),
        );
        s3.create_bucket()
            .bucket("lab-evidence")
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
            .unwrap();
        let cfg = t.tmp.path().join("epic-audit.toml");
        let plain = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(
            &cfg,
            plain.replacen(
                "[environments.t]\n",
                "[environments.t]\nevidence_store = \"s3://lab-evidence/audits\"\nevidence_retention_years = 7\n",
                1,
            ),
        )
        .unwrap();
        let out = t.out("stored");
        let r = run_env(
            &t,
            &cfg,
            &["--only", "CLU-001", "--out", out.to_str().unwrap()],
        );
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        let started: chrono::DateTime<chrono::Utc> = report(&out)["started_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let line = r
            .stdout
            .lines()
            .find(|l| l.starts_with("stored: s3://lab-evidence/audits/t/stored/ ("))
            .unwrap_or_else(|| panic!("{}", r.stdout));
        // Seven calendar years from the run's start, to the second above.
        let until = epic_audit::store::retain_until(started, 7);
        assert_eq!(
            until.timestamp() - started.timestamp(),
            (started.checked_add_months(chrono::Months::new(84)).unwrap() - started).num_seconds()
                + i64::from(started.timestamp_subsec_nanos() > 0)
        );
        assert!(
            line.contains(&format!(
                "Object Lock COMPLIANCE until {}",
                until.format("%Y-%m-%d %H:%M:%SZ")
            )),
            "{line}"
        );
        let head = s3
            .head_object()
            .bucket("lab-evidence")
            .key("audits/t/stored/evidence.json")
            .send()
            .await
            .unwrap();
        assert_eq!(head.object_lock_mode().unwrap().as_str(), "COMPLIANCE");
        std::fs::write(&cfg, plain).unwrap();
    }

    // (defect, the one failing check, a substring of a failing subject,
    // a substring of its message)
    let cases = [
        (
            AwsDefect::RedisFromAnywhere,
            "NET-001",
            "tcp 6379 from 0.0.0.0/0",
            "OPEN TO THE INTERNET",
        ),
        (
            AwsDefect::SshFromAnywhere,
            "NET-001",
            "tcp 22 from 0.0.0.0/0",
            "port 22 (SSH from the admin host) is reachable from 0.0.0.0/0",
        ),
        (
            AwsDefect::AllTrafficFromVpc,
            "NET-001",
            "all traffic from 10.0.0.0/16",
            "every protocol and port",
        ),
        (
            AwsDefect::RedisFromAnywhereV6,
            "NET-001",
            "tcp 6379 from ::/0",
            "port 6379 (Redis client and cluster bus) is reachable from ::/0",
        ),
        (
            AwsDefect::UnencryptedVolume,
            "ENC-001",
            "/dev/sdf",
            "unencrypted",
        ),
        (
            AwsDefect::AwsManagedKey,
            "ENC-002",
            "/dev/sdf",
            "AWS-managed default key",
        ),
        (
            AwsDefect::RotationOff,
            "ENC-004",
            "/dev/sdf",
            "rotation is off",
        ),
        (AwsDefect::KeyDisabled, "ENC-003", "/dev/sdf", "is Disabled"),
        (
            AwsDefect::WrongKeySpec,
            "ENC-005",
            "/dev/sdf",
            "the key spec is RSA_2048, not SYMMETRIC_DEFAULT",
        ),
        (
            AwsDefect::NoSnapshot,
            "BAK-001",
            "/dev/sdf",
            "this data volume has no completed snapshot",
        ),
        (
            AwsDefect::MastersInOneAz,
            "CLU-008",
            "us-east-1b",
            "shares us-east-1b with master",
        ),
    ];
    // Encryption by default off: ENC-006 warns (today's volumes are all
    // encrypted, so it is not a failure) and nothing else moves.
    t.lab.reseed(AwsDefect::EbsDefaultOff).await.unwrap();
    let (code, rep, not_passing) = audit_area(&t, AWS_CHECKS, "ebs-default-off");
    assert_eq!(
        not_passing,
        vec![("ENC-006".to_string(), "warn".to_string())],
        "{rep:#}"
    );
    assert_eq!(code, 0);
    assert!(failing_subjects(&rep, "ENC-006")[0]
        .1
        .contains("encryption by default off"));

    for (defect, id, subject, message) in cases {
        let seeded = t.lab.reseed(defect).await.unwrap();
        let name = format!("{defect:?}");
        let (code, rep, not_passing) = audit_area(&t, AWS_CHECKS, &name);
        let fails: Vec<&(String, String)> =
            not_passing.iter().filter(|(_, o)| o == "fail").collect();
        assert_eq!(fails, vec![&(id.to_string(), "fail".to_string())], "{name}");
        assert_eq!(code, 1, "{name}");
        let bad = failing_subjects(&rep, id);
        assert!(
            bad.iter()
                .any(|(s, m)| s.contains(subject) && m.contains(message)),
            "{name}: {bad:#?}"
        );
        match defect {
            // Two masters in one zone necessarily puts one replica with
            // its master (three instances, a replica ring): a warning.
            AwsDefect::MastersInOneAz => {
                assert_eq!(
                    not_passing,
                    vec![
                        ("CLU-008".to_string(), "fail".to_string()),
                        ("CLU-009".to_string(), "warn".to_string())
                    ],
                    "{name}"
                );
                assert_eq!(bad.len(), 2, "both masters in the zone are named");
            }
            // A volume-level defect names exactly the first instance's
            // data volume, linked to its instance and nodes.
            AwsDefect::UnencryptedVolume
            | AwsDefect::AwsManagedKey
            | AwsDefect::NoSnapshot
            | AwsDefect::WrongKeySpec => {
                assert_eq!(not_passing.len(), 1, "{name}: {not_passing:?}");
                assert_eq!(bad.len(), 1, "{name}: {bad:#?}");
                let (s, _) = &bad[0];
                assert!(s.starts_with(&seeded.data_volumes[0]), "{s}");
                assert!(s.contains(&seeded.instances[0]), "{s}");
                assert!(s.contains(&t.lab.spec.addr(0).to_string()), "{s}");
            }
            // A key-level defect hits every volume on that key.
            AwsDefect::RotationOff | AwsDefect::KeyDisabled => {
                assert_eq!(not_passing.len(), 1, "{name}: {not_passing:?}");
                assert_eq!(bad.len(), 6, "{name}");
            }
            _ => {
                assert_eq!(not_passing.len(), 1, "{name}: {not_passing:?}");
                assert_eq!(bad.len(), 1, "{name}: {bad:#?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_silent_aws_endpoint_is_an_error_and_redis_is_still_audited() {
    let t = start_lab_with(|s| s.exporters = false).await;
    let settings = t.lab.aws_settings();

    // Nothing listens: connection refused, three attempts, then error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut down = settings.clone();
    down.endpoint = Some(format!("http://127.0.0.1:{port}"));
    // A listener that accepts and never answers: every attempt times out.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut mute = settings.clone();
    mute.endpoint = Some(format!("http://{}", silent.local_addr().unwrap()));

    for (name, aws, kind) in [("down", &down, "connect"), ("silent", &mute, "timeout")] {
        t.config_with_aws((500, 500, 5000), aws);
        let started = std::time::Instant::now();
        let (code, rep, not_passing) = audit_area(&t, &format!("cluster,{AWS_CHECKS}"), name);
        // Liveness guard only (not a performance measurement): without the
        // SDK's timeouts a silent endpoint would hang the run for ever.
        assert!(
            started.elapsed().as_secs() < 60,
            "{name}: run took too long"
        );
        assert_eq!(code, 2, "{name}: error, not fail");
        // The Redis checks ran and passed.
        for id in ["CLU-001", "CLU-002", "CLU-003", "CLU-004", "CLU-005"] {
            assert_eq!(check(&rep, id)["outcome"], "pass", "{name} {id}");
        }
        // Every AWS check is an error naming the call and the cause.
        assert_eq!(not_passing.len(), 11, "{name}: {not_passing:?}");
        assert!(
            not_passing.iter().all(|(_, o)| o == "error"),
            "{not_passing:?}"
        );
        for (id, _) in &not_passing {
            let s = subjects(&rep, id);
            assert_eq!(s.len(), 1, "{name} {id}");
            assert_eq!(s[0].0, "aws:us-east-1");
            assert!(
                s[0].2.contains(&format!("no observation ({kind})"))
                    && s[0].2.contains("ec2:DescribeInstances failed"),
                "{name} {id}: {}",
                s[0].2
            );
        }
        assert!(t.out(name).join("report.json").is_file());
    }
    drop(silent);
}
