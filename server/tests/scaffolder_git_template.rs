//! A software template kept in a git repository, as platform teams keep theirs: registered as a `git`
//! location, it runs with its skeleton read from the repository (rendered names and contents, a file
//! shared beside it with `../`, an executable script, a link inside the skeleton), and a skeleton
//! whose link points out of it fails the task, saying which link.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use common::git::BareRepo;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

fn template(name: &str, skeleton: &str) -> String {
    format!(
        r#"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: {name}
spec:
  owner: group:platform
  type: service
  parameters:
    - required: [name]
      properties:
        name: {{type: string}}
  steps:
    - id: fetch
      action: fetch:template
      input:
        url: {skeleton}
        values:
          name: ${{{{ parameters.name }}}}
    - id: shared
      action: fetch:plain
      input:
        url: ../shared
        targetPath: shared
    - id: list
      action: debug:log
      input:
        listWorkspace: with-contents
"#
    )
}

async fn run(app: &TestApp, template: &str) -> (Value, Vec<String>) {
    let created = app
        .post(
            "/api/scaffolder/v2/tasks",
            json!({"templateRef": format!("template:default/{template}"), "values": {"name": "world"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id: Uuid = created.body["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    app.state.scaffolder.run_until_idle().await.expect("run");
    common::task_and_log(app, id).await
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_template_in_git_reads_its_skeleton_from_the_repository(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let repos = app.path("repos");
    std::fs::create_dir_all(&repos).expect("repos");
    let mut repo = BareRepo::create(&repos, "templates.git");
    repo.set_mode("hello/skeleton/run.sh", 0o100755);
    repo.set_mode("hello/skeleton/latest", 0o120000);
    repo.set_mode("leaky/skeleton/passwd", 0o120000);
    repo.commit(
        &[
            (
                "hello/catalog-info.yaml",
                Some(&template("hello", "./skeleton")),
            ),
            (
                "hello/skeleton/${{ values.name }}.txt",
                Some("Hello ${{ values.name }}\n"),
            ),
            ("hello/skeleton/run.sh", Some("#!/bin/sh\necho run\n")),
            ("hello/skeleton/latest", Some("run.sh")),
            ("shared/NOTICE", Some("shared notice\n")),
            (
                "leaky/catalog-info.yaml",
                Some(&template("leaky", "./skeleton")),
            ),
            (
                "leaky/skeleton/passwd",
                Some("../../../../../../etc/passwd"),
            ),
        ],
        "two templates",
    );
    let registered = app
        .post(
            "/api/catalog/locations",
            json!({"type": "git", "target": repo.url()}),
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.body
    );
    app.process().await;
    let hello = app.entity("template", "hello").await;
    assert!(
        hello["metadata"]["annotations"]["backstage.io/managed-by-location"]
            .as_str()
            .is_some_and(|l| l.starts_with("git-file:")),
        "{hello}"
    );

    let (task, log) = run(&app, "hello").await;
    assert_eq!(task["status"], "completed", "{log:#?}");
    let log = log.join("\n");
    for expected in [
        "world.txt",
        "Hello world",
        "run.sh",
        "echo run",
        "- latest",
        "shared/NOTICE",
        "shared notice",
    ] {
        assert!(log.contains(expected), "{expected} missing from:\n{log}");
    }

    let (task, log) = run(&app, "leaky").await;
    assert_eq!(task["status"], "failed", "{log:#?}");
    let log = log.join("\n");
    assert!(
        log.contains(
            "is a symbolic link to ../../../../../../etc/passwd, outside the fetched directory"
        ),
        "{log}"
    );
}

/// A template registered from its file's raw URL on a git host (GitLab's `/-/raw/<branch>/<path>`
/// here) reads its skeleton from that repository, fetched when the task runs (with the
/// organisation's token): a skeleton changed after the template was read is the one rendered.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_template_at_a_git_hosts_raw_url_reads_its_skeleton_from_the_repository(pool: PgPool) {
    const TOKEN: &str = "glpat-templatesToken";
    let repos = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(repos.path().join("acme")).expect("owner");
    let mut repo = BareRepo::create(&repos.path().join("acme"), "templates.git");
    repo.commit(
        &[
            (
                "hello/catalog-info.yaml",
                Some(&template("hello", "./skeleton")),
            ),
            (
                "hello/skeleton/${{ values.name }}.txt",
                Some("Hello ${{ values.name }}\n"),
            ),
            ("shared/NOTICE", Some("shared notice\n")),
        ],
        "a template",
    );
    let address = common::git::serve_http_with_token(repos.path().to_path_buf(), TOKEN).await;
    let token_file = repos.path().join("token");
    std::fs::write(&token_file, TOKEN).expect("token");
    let organisation = format!("http://{address}/acme");
    let app = TestApp::with_full_config(pool, |config| {
        config.catalog.url_allowlist = vec!["127.0.0.1".to_owned()];
        config.catalog.url_allow_private_addresses = true;
        config.catalog.git.repositories = vec![atrium::config::GitRepositoryConfig {
            organisation: Some(organisation.clone()),
            token_file: Some(token_file.clone()),
            ..Default::default()
        }];
    })
    .await;
    let registered = app
        .post(
            "/api/catalog/locations",
            json!({"type": "url", "target": format!("http://{address}/acme/templates/-/raw/main/hello/catalog-info.yaml")}),
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.body
    );
    app.process().await;
    app.entity("template", "hello").await;

    let (task, log) = run(&app, "hello").await;
    assert_eq!(task["status"], "completed", "{log:#?}");
    let log = log.join("\n");
    for expected in ["world.txt", "Hello world", "shared/NOTICE", "shared notice"] {
        assert!(log.contains(expected), "{expected} missing from:\n{log}");
    }

    // The skeleton changes; the catalog's copy of the template does not. The next task reads the
    // repository as it is now.
    repo.commit(
        &[(
            "hello/skeleton/${{ values.name }}.txt",
            Some("Welcome ${{ values.name }}\n"),
        )],
        "friendlier",
    );
    let (task, log) = run(&app, "hello").await;
    assert_eq!(task["status"], "completed", "{log:#?}");
    assert!(log.join("\n").contains("Welcome world"), "{log:#?}");
}
