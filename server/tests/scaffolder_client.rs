//! Wire compatibility: Backstage's own `ScaffolderClient` (`@backstage/plugin-scaffolder-common`, in
//! tests/scaffolder-client) driven against a running Atrium on a fresh database, with the scaffolder's
//! workers running so the tasks the suite creates really run. The node suite is the oracle.

mod common;

use std::process::Stdio;

use atrium::config::{CatalogConfig, Config, OrphanPolicy, PublishHostConfig, ScaffolderConfig};
use common::github_fake::{Expect, GithubFake};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn backstage_scaffolder_client_suite_passes(pool: PgPool) {
    let suite = common::workspace_root().join("tests/scaffolder-client");
    assert!(
        suite
            .join("node_modules/@backstage/plugin-scaffolder-common")
            .exists(),
        "node_modules missing: run `npm ci --prefix tests/scaffolder-client` (scripts/test.sh does)"
    );
    let fixtures = std::fs::canonicalize(suite.join("fixtures")).expect("fixtures");
    let workspaces = tempfile::tempdir().expect("tempdir");
    // The GitHub the autocomplete test asks, with the caller's own token.
    let github = GithubFake::start(
        workspaces.path(),
        "gho_callersOwnToken",
        vec![
            Expect::new("GET", "/user/orgs?per_page=100&page=1")
                .answer(200, json!([{"login": "acme"}, {"login": "northwind"}])),
        ],
    )
    .await;

    let config = Config {
        catalog: CatalogConfig {
            locations: Vec::new(),
            file_roots: vec![fixtures.clone()],
            orphan_policy: OrphanPolicy::Delete,
            ..CatalogConfig::default()
        },
        scaffolder: ScaffolderConfig {
            workspace_dir: workspaces.path().to_path_buf(),
            hosts: vec![PublishHostConfig {
                host: "github.test".to_owned(),
                remote: github.remote_pattern(),
                github_api_url: Some(github.api_url()),
                token_env: None,
                token_file: None,
                username: None,
                ssh_key: None,
            }],
            ..ScaffolderConfig::default()
        },
        // Served on loopback in guest mode: the suite calls as the guest, without a token.
        auth: atrium::auth::config::AuthConfig {
            guest: true,
            ..Default::default()
        },
        ..Config::default()
    };
    let state = atrium::AppState::new(pool, config).expect("state");
    let target = fixtures.join("catalog.yaml").display().to_string();
    state
        .catalog
        .add_location("file", &target)
        .await
        .expect("register fixtures");
    state
        .catalog
        .process_until_idle()
        .await
        .expect("ingest fixtures");

    // The scaffolder's workers and event listener, as in `atrium serve`.
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let workers = state.scaffolder.spawn_workers(shutdown_rx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, atrium::app(state)).await });

    let output = tokio::process::Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .current_dir(&suite)
        .env("ATRIUM_URL", format!("http://{address}"))
        .env("ATRIUM_FIXTURES_DIR", &fixtures)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("node runs");
    let _ = shutdown.send(true);
    let _ = workers.await;
    server.abort();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scaffolder-client suite failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // The node runner prints its own totals; make sure it really ran tests.
    assert!(
        stdout.contains("# pass") || stdout.contains("ℹ pass"),
        "{stdout}"
    );
    assert!(stdout.contains("fail 0"), "{stdout}");
    github.finish();
}

/// The same client given API tokens, against an Atrium that requires credentials (no guest mode):
/// per-request tokens as Backstage backend plugins pass them, and a FetchApi as its frontend wires it.
/// Running a template needs `template:run:<that template>`; a task is its creator's alone.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn backstage_scaffolder_client_works_with_api_tokens(pool: PgPool) {
    let suite = common::workspace_root().join("tests/scaffolder-client");
    assert!(
        suite
            .join("node_modules/@backstage/plugin-scaffolder-common")
            .exists(),
        "node_modules missing: run `npm ci --prefix tests/scaffolder-client` (scripts/test.sh does)"
    );
    let fixtures = std::fs::canonicalize(suite.join("fixtures")).expect("fixtures");
    let workspaces = tempfile::tempdir().expect("tempdir");
    let config = Config {
        catalog: CatalogConfig {
            locations: Vec::new(),
            file_roots: vec![fixtures.clone()],
            orphan_policy: OrphanPolicy::Delete,
            ..CatalogConfig::default()
        },
        scaffolder: ScaffolderConfig {
            workspace_dir: workspaces.path().to_path_buf(),
            ..ScaffolderConfig::default()
        },
        ..Config::default()
    };
    assert!(!config.auth.guest, "credentials are required");
    let state = atrium::AppState::new(pool, config).expect("state");
    state
        .catalog
        .add_location("file", &fixtures.join("catalog.yaml").display().to_string())
        .await
        .expect("register fixtures");
    state
        .catalog
        .process_until_idle()
        .await
        .expect("ingest fixtures");
    let read = common::token_for(&state, "user:default/reader", &["catalog:read"]).await;
    let run_hello = ["catalog:read", "template:run:default/hello-service"];
    let run = common::token_for(&state, "user:default/runner", &run_hello).await;
    // Another user with the same rights: what it is refused is refused for not being the creator.
    let other = common::token_for(&state, "user:default/other", &run_hello).await;

    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let workers = state.scaffolder.spawn_workers(shutdown_rx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, atrium::app(state)).await });
    let output = tokio::process::Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg("token.test.mjs")
        .current_dir(&suite)
        .env("ATRIUM_URL", format!("http://{address}"))
        .env("ATRIUM_FIXTURES_DIR", &fixtures)
        .env("ATRIUM_READ_TOKEN", &read)
        .env("ATRIUM_RUN_TOKEN", &run)
        .env("ATRIUM_OTHER_TOKEN", &other)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("node runs");
    let _ = shutdown.send(true);
    let _ = workers.await;
    server.abort();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the token suite failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("pass 7"), "all seven ran:\n{stdout}");
    assert!(stdout.contains("fail 0"), "{stdout}");
}
