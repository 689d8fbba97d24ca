//! PATCH-001 on a real lab: the Debian build the nodes run is what the
//! lab's `accepted-builds.toml` names (build id read from the running
//! node, package and changelog from dpkg), so the lab environment reports
//! it `waived` with that reason; the same lab audited without the file, or
//! with an acceptance for another build, fails on every node.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_labs_debian_build_is_accepted_by_id_and_fails_without_it() {
    let t = start_lab().await;
    let cfg = t.config(&[], (2000, 3000, 10000));
    let accepted = t.lab.spec.dir.join("accepted-builds.toml");
    let text = std::fs::read_to_string(&accepted).unwrap();

    // The file names the build every node reports.
    let mut c = t.lab.admin(0).await.unwrap();
    let info = epic_audit::resp::parse_info(
        &epic_audit::resp::as_text(&c.cmd_str(&["INFO", "server"]).await.unwrap()).unwrap(),
    );
    let build = &info["redis_build_id"];
    assert!(text.contains(&format!("build_id = \"{build}\"")), "{text}");
    assert!(text.contains("the lab's Debian package"), "{text}");

    // 1. As the lab environment: accepted, on every node, never pass.
    let (code, rep, not_passing) = audit_area(&t, "patching", "accepted");
    assert_eq!(code, 0, "{not_passing:?}");
    assert_eq!(not_passing, vec![("PATCH-001".into(), "waived".into())]);
    assert_lab_build_accepted(&rep);
    assert_eq!(subjects(&rep, "PATCH-001").len(), 6);

    // 2. Without the acceptance: the table alone fails every node and
    // says how a distribution build is accepted.
    let bare = t.tmp.path().join("bare.toml");
    let cfg_text = std::fs::read_to_string(&cfg).unwrap();
    assert!(cfg_text.contains("accepted_builds"));
    std::fs::write(
        &bare,
        cfg_text
            .lines()
            .filter(|l| !l.starts_with("accepted_builds"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let out = t.out("bare");
    let r = run_env(
        &t,
        &bare,
        &["--only", "patching", "--out", out.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let rep = report(&out);
    let found = subjects(&rep, "PATCH-001");
    assert_eq!(found.len(), 6);
    for (s, o, m) in &found {
        assert_eq!(o, "fail", "{s}: {m}");
        assert!(m.contains("accept it by build id"), "{s}: {m}");
    }

    // 3. An acceptance for another build of the same version does not
    // cover this one.
    let other = t.tmp.path().join("other-build.toml");
    std::fs::write(&other, text.replace(build.as_str(), "0000000000000000")).unwrap();
    let other_cfg = t.tmp.path().join("other.toml");
    std::fs::write(
        &other_cfg,
        cfg_text.replace(
            &accepted.display().to_string(),
            &other.display().to_string(),
        ),
    )
    .unwrap();
    let out = t.out("other");
    let r = run_env(
        &t,
        &other_cfg,
        &["--only", "patching", "--out", out.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(subjects(&report(&out), "PATCH-001")
        .iter()
        .all(|(_, o, _)| o == "fail"));
}
