//! The real `handoff serve` binary: the port it prints, refusals, secrets,
//! SIGHUP, SIGTERM.

use crate::helpers::{save_in_place, start_binary, start_binary_in, version_of, workspace};

#[tokio::test]
async fn it_serves_on_the_port_it_prints() {
    let app = start_binary(&[], &[]).await.expect("the server starts");
    assert!(!app.base.ends_with(":0"), "{}", app.base);
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let stopped = app.stop().await;
    assert!(
        stopped.stderr.contains("the API is open"),
        "{}",
        stopped.stderr
    );
}

#[tokio::test]
async fn sigterm_is_a_graceful_shutdown_with_exit_0() {
    let app = start_binary(&[], &[]).await.expect("the server starts");
    let url = app.url("/healthz");
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);
    let stopped = app.stop().await;
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("shutting down"),
        "{}",
        stopped.stderr
    );
    assert!(stopped.stderr.contains("stopped"), "{}", stopped.stderr);
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
}

#[tokio::test]
async fn a_network_address_without_a_token_is_refused() {
    let stopped = start_binary(&["--listen", "0.0.0.0:0"], &[])
        .await
        .err()
        .expect("the server refuses to start");
    assert_eq!(stopped.status.code(), Some(2));
    assert!(
        stopped
            .stderr
            .contains("refusing to listen on 0.0.0.0:0 without an API token"),
        "{}",
        stopped.stderr
    );
    assert!(stopped.stderr.contains("HANDOFF_API_TOKEN"));

    // With a token it starts.
    let app = start_binary(
        &["--listen", "0.0.0.0:0"],
        &[("HANDOFF_API_TOKEN", "3f9c0a6e2b7d41850c2e")],
    )
    .await
    .expect("a token makes it safe");
    assert_eq!(app.stop().await.status.code(), Some(0));
}

#[tokio::test]
async fn invalid_workflows_at_start_are_reported_and_exit_2() {
    let dir = workspace();
    let file = dir.path().join("workflows/crm.handoff");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("object deal {", "object deal")).unwrap();
    let stopped = start_binary_in(dir, &[], &[])
        .await
        .err()
        .expect("no start");
    assert_eq!(stopped.status.code(), Some(2));
    assert!(stopped.stderr.contains("crm.handoff"), "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("cannot be loaded"),
        "{}",
        stopped.stderr
    );
}

#[tokio::test]
async fn the_config_file_in_the_current_folder_is_read() {
    let dir = workspace();
    std::fs::rename(dir.path().join("workflows"), dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("handoff.toml"), "workflows = \"rules\"\n").unwrap();
    let app = start_binary_in(dir, &[], &[])
        .await
        .expect("the server starts");
    let view = app.wait_for_workflows(None, |_| true).await;
    assert!(
        view.files.iter().all(|f| f.path.contains("rules")),
        "{view:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn secrets_are_never_logged_or_echoed() {
    const SECRETS: [(&str, &str); 5] = [
        ("HANDOFF_API_TOKEN", "tok-7d1e0c55aa"),
        (
            "HANDOFF_GENERIC_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        ("HANDOFF_HUBSPOT_CLIENT_SECRET", "hub-3b9f44e1"),
        ("HANDOFF_PIPEDRIVE_USER", "pd-user-81c2"),
        ("HANDOFF_PIPEDRIVE_PASSWORD", "pd-pass-5e6a"),
    ];
    for format in ["human", "json"] {
        let mut envs = SECRETS.to_vec();
        envs.push(("RUST_LOG", "trace"));
        let app = start_binary(&["--log-format", format], &envs)
            .await
            .expect("the server starts");
        let token = SECRETS[0].1;
        let mut bodies = String::new();
        for path in ["/workflows", "/readyz", "/metrics"] {
            let res = app
                .client
                .get(app.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{path}");
            bodies.push_str(&res.text().await.unwrap());
        }
        let wrong = app
            .client
            .get(app.url("/workflows"))
            .bearer_auth(format!("{token}-wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        bodies.push_str(&wrong.text().await.unwrap());

        let stopped = app.stop().await;
        assert!(stopped.stderr.contains("serving"), "logs were written");
        for (var, value) in SECRETS {
            let bare = value.trim_start_matches("whsec_");
            for (what, text) in [
                ("responses", &bodies),
                ("stdout", &stopped.stdout),
                ("stderr", &stopped.stderr),
            ] {
                assert!(!text.contains(bare), "{var} appears in {what} ({format})");
            }
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_the_workflows() {
    // With the watcher off, only SIGHUP can make the edit active.
    let app = start_binary(&[], &[("HANDOFF_WATCH", "false")])
        .await
        .expect("the server starts");
    let before = app.wait_for_workflows(None, |_| true).await;
    let file = app.workflow("crm.handoff");
    let text = std::fs::read_to_string(&file).unwrap();
    save_in_place(&file, &format!("{text}\n# reloaded by SIGHUP\n"));
    let expected = version_of(&app.workflow(""));
    assert_ne!(before.version, expected);

    app.signal(libc::SIGHUP);
    let view = app
        .wait_for_workflows(None, |v| v.version == expected)
        .await;
    assert_eq!(view.reloads, 1);
    let stopped = app.stop().await;
    assert!(stopped.stderr.contains("SIGHUP"), "{}", stopped.stderr);
    assert_eq!(stopped.status.code(), Some(0));
}

/// One server per database file: a second one on the same file is refused
/// while the first runs (it would take back the outbox actions the first
/// is sending), and starts once the first has stopped.
#[tokio::test]
async fn a_second_server_on_the_same_database_is_refused_until_the_first_stops() {
    let first = start_binary(&[], &[])
        .await
        .expect("the first server starts");
    let db = first.dir.path().join("handoff.db");
    let db_arg = db.to_str().unwrap().to_string();
    let second = start_binary(&["--db", &db_arg], &[])
        .await
        .err()
        .expect("the second server refuses to start");
    assert_eq!(second.status.code(), Some(2));
    assert!(
        second
            .stderr
            .contains("another `handoff serve` is using the database"),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains("another --db"), "{}", second.stderr);
    let (_dir, stopped) = first.stop_keeping_dir().await;
    assert_eq!(stopped.status.code(), Some(0));
    let again = start_binary(&["--db", &db_arg], &[])
        .await
        .expect("the lock went with the first server");
    assert_eq!(again.stop().await.status.code(), Some(0));
}
