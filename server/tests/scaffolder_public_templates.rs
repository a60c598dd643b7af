//! Backstage's own software templates, run unchanged: registered from their files as they are
//! published, dry-run the way Backstage's template editor does it, then run for real against a
//! loopback GitHub (a fake of the REST endpoints `publish:github` calls that verifies every request,
//! in front of a real `git http-backend`), with the catalog reading the pushed repository back.
//!
//! - The example template every new Backstage app ships (`@backstage/create-app`, installed by
//!   `npm ci --prefix tests/backstage-templates`, which scripts/test.sh does) runs in every test run.
//! - The templates of `backstage/software-templates` are not published as a package. Point
//!   `ATRIUM_SOFTWARE_TEMPLATES` at a checkout of that repository and run the ignored test:
//!   `ATRIUM_SOFTWARE_TEMPLATES=/path/to/software-templates cargo nextest run -p atrium
//!   --test scaffolder_public_templates --run-ignored only`.
//!
//! The host `github.com` is configured to publish to the loopback fake: the templates' `allowedHosts:
//! [github.com]` and `repoUrl` values stay as their authors wrote them.

mod common;

use std::path::PathBuf;

use atrium::config::{GitRepositoryConfig, PublishHostConfig};
use axum::http::StatusCode;
use base64::Engine;
use common::TestApp;
use common::git::{git, git_bytes};
use common::github_fake::{Expect, GithubFake, default_branch_protection};
use serde_json::{Value, json};
use sqlx::PgPool;

const TOKEN: &str = "ghp_publicTemplatesToken42";
const OWNER: &str = "acme";

/// One public template to run: where its `template.yaml` is, the form's values, and what the
/// published repository must then hold.
struct PublicTemplate {
    dir: PathBuf,
    name: &'static str,
    values: Value,
    /// The repository the values name (under [`OWNER`]).
    repo: &'static str,
    /// The branch pushed: the template's `defaultBranch`, else Backstage's default `master`.
    branch: &'static str,
    /// `POST /orgs/acme/repos` as Backstage's `publish:github` sends it for this template's input.
    create_body: Value,
    /// Files the pushed branch must hold, with a text each must contain.
    expect_files: Vec<(&'static str, &'static str)>,
    /// The component the catalog must then serve, with its owner.
    component: (&'static str, &'static str),
    /// Lines the task's log must hold.
    expect_log: Vec<&'static str>,
    /// Skeleton files (paths under `skeleton/`) that must be pushed byte for byte: binaries.
    untouched: Vec<&'static str>,
}

/// A Backstage `POST /orgs/{org}/repos` body for a template that sets only `description` (every
/// other input at Backstage's default: a private repository).
fn default_create_body(repo: &str, description: &str) -> Value {
    json!({
        "name": repo,
        "private": true,
        "visibility": "private",
        "description": description,
        "delete_branch_on_merge": false,
        "allow_merge_commit": true,
        "allow_squash_merge": true,
        "allow_rebase_merge": true,
        "allow_auto_merge": false,
        "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
        "squash_merge_commit_message": "COMMIT_MESSAGES"
    })
}

fn decode(file: &Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(file["base64Content"].as_str().expect("content"))
        .expect("base64");
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Registers the template from its folder, dry-runs it, runs it for real, and checks the pushed
/// repository, the task's output and the catalog's new component.
async fn run_public_template(pool: PgPool, template: PublicTemplate) {
    let dir = std::fs::canonicalize(&template.dir).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (npm ci --prefix tests/backstage-templates installs it)",
            template.dir.display()
        )
    });
    let repos = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(repos.path().join(OWNER)).expect("owner dir");
    let token_file = repos.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token");
    let full_name = format!("{OWNER}/{}", template.repo);
    let fake = GithubFake::start(
        repos.path(),
        TOKEN,
        vec![
            Expect::new("GET", &format!("/users/{OWNER}"))
                .answer(200, json!({"login": OWNER, "type": "Organization"})),
            Expect::new("POST", &format!("/orgs/{OWNER}/repos"))
                .body(template.create_body.clone())
                .answer(
                    201,
                    json!({
                        "name": template.repo,
                        "full_name": full_name,
                        "owner": {"login": OWNER},
                        "html_url": format!("https://github.com/{full_name}"),
                        "clone_url": format!("https://github.com/{full_name}.git"),
                    }),
                )
                .creates_repo(&full_name),
            Expect::new(
                "PUT",
                &format!("/repos/{full_name}/branches/{}/protection", template.branch),
            )
            .body(default_branch_protection())
            .answer(200, json!({})),
        ],
    )
    .await;

    let template_root = dir.clone();
    let organisation = format!("http://{}/git/{OWNER}", fake.address);
    let app = TestApp::with_full_config(pool, |config| {
        config.catalog.file_roots.push(template_root.clone());
        config.scaffolder.allowed_hosts = vec!["github.com".to_owned()];
        config.scaffolder.hosts = vec![PublishHostConfig {
            host: "github.com".to_owned(),
            remote: fake.remote_pattern(),
            github_api_url: Some(fake.api_url()),
            token_env: None,
            token_file: Some(token_file.clone()),
            username: None,
            ssh_key: None,
        }];
        // The catalog reads the new private repository with the organisation's token.
        config.catalog.git.repositories = vec![GitRepositoryConfig {
            organisation: Some(organisation.clone()),
            token_file: Some(token_file.clone()),
            ..GitRepositoryConfig::default()
        }];
    })
    .await;
    // The people and groups the templates name as owners.
    app.add(
        "org.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: guest\nspec: {}\n---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-a\nspec:\n  type: team\n  children: []\n",
    )
    .await;
    app.state
        .catalog
        .add_location("file", &dir.join("template.yaml").display().to_string())
        .await
        .expect("register the template");
    app.process().await;
    let entity = app.entity("template", template.name).await;
    assert!(
        common::status_messages(&entity).is_empty(),
        "{}",
        entity["status"]
    );

    // The parameter schema Backstage's form asks for.
    let schema = app
        .get(&format!(
            "/api/scaffolder/v2/templates/default/template/{}/parameter-schema",
            template.name
        ))
        .await;
    assert_eq!(schema.status, StatusCode::OK, "{}", schema.body);
    assert!(
        !schema.body["steps"].as_array().expect("steps").is_empty(),
        "{}",
        schema.body
    );

    // A dry run: the skeleton rendered, nothing published.
    let dry = app
        .post(
            "/api/scaffolder/v2/dry-run",
            json!({"template": entity, "values": template.values, "directoryContents": common::directory_contents(&dir, &dir)}),
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    let rendered = dry.body["directoryContents"].as_array().expect("files");
    for (path, text) in &template.expect_files {
        let file = rendered
            .iter()
            .find(|f| f["path"] == *path)
            .unwrap_or_else(|| panic!("{path} in the dry run's files: {rendered:#?}"));
        assert!(decode(file).contains(text), "{path}: {}", decode(file));
    }
    assert!(
        !repos.path().join(&full_name).with_extension("git").exists(),
        "a dry run publishes nothing"
    );

    // For real.
    let created = app
        .post(
            "/api/scaffolder/v2/tasks",
            json!({"templateRef": format!("template:default/{}", template.name), "values": template.values}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    app.state.scaffolder.run_until_idle().await.expect("run");
    let (task, log) = common::task_and_log(&app, &id).await;
    assert_eq!(task["status"], "completed", "{log:#?}");
    assert!(log.iter().all(|l| !l.contains(TOKEN)), "{log:#?}");
    for line in &template.expect_log {
        assert!(log.iter().any(|l| l == line), "{line:?} in {log:#?}");
    }
    let seen = fake.finish();
    assert!(
        seen.iter()
            .any(|s| s.starts_with("git POST") && s.ends_with("git-receive-pack -> 200")),
        "{seen:#?}"
    );

    // The repository holds the rendered skeleton, with no expression left in it.
    let bare = repos.path().join(format!("{full_name}.git"));
    for (path, text) in &template.expect_files {
        let content = git(&bare, &["show", &format!("{}:{path}", template.branch)]);
        assert!(content.contains(text), "{path}: {content}");
        assert!(!content.contains("${{"), "{path}: {content}");
    }

    for path in &template.untouched {
        let pushed = git_bytes(&bare, &["show", &format!("{}:{path}", template.branch)]);
        let original = std::fs::read(dir.join("skeleton").join(path)).expect("skeleton file");
        assert!(pushed == original, "{path} changed");
    }

    // The catalog serves the new component, read from the private repository with the token.
    app.process().await;
    let (kind, name) = template.component.0.split_once(':').expect("ref");
    let component = app.entity(kind, name).await;
    assert_eq!(component["spec"]["owner"], template.component.1);
    let events = app
        .get(&format!("/api/scaffolder/v2/tasks/{id}/events"))
        .await;
    let completion = events
        .body
        .as_array()
        .expect("events")
        .last()
        .expect("completion")
        .clone();
    let links = &completion["body"]["output"]["links"];
    assert_eq!(
        links[0]["url"],
        format!("http://{}/git/{full_name}.git", fake.address),
        "{completion:#}"
    );
    assert_eq!(
        links[1]["entityRef"],
        format!("{kind}:default/{name}"),
        "{completion:#}"
    );
}

fn create_app_template() -> PathBuf {
    common::workspace_root().join(
        "tests/backstage-templates/node_modules/@backstage/create-app/templates/default-app/examples/template",
    )
}

/// The "Example Node.js Template" of every new Backstage app: `fetch:template` from `./content`,
/// `publish:github`, `catalog:register` and `notification:send`.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn the_example_template_of_a_new_backstage_app_runs_unchanged(pool: PgPool) {
    run_public_template(
        pool,
        PublicTemplate {
            dir: create_app_template(),
            name: "example-nodejs-template",
            values: json!({"name": "orders-svc", "repoUrl": "github.com?owner=acme&repo=orders-svc"}),
            repo: "orders-svc",
            branch: "main",
            create_body: default_create_body("orders-svc", "This is orders-svc"),
            expect_files: vec![
                ("catalog-info.yaml", "name: \"orders-svc\""),
                ("package.json", "orders-svc"),
                ("index.js", "Hello from orders-svc!"),
            ],
            component: ("component:orders-svc", "user:guest"),
            expect_log: vec![
                "Notification to user:default/guest (normal): Template executed — Your template has been executed",
            ],
            untouched: vec![],
        },
    )
    .await;
}

/// A checkout of `backstage/software-templates`, from `ATRIUM_SOFTWARE_TEMPLATES`.
fn software_templates(template: &str) -> PathBuf {
    let root = std::env::var_os("ATRIUM_SOFTWARE_TEMPLATES").expect(
        "ATRIUM_SOFTWARE_TEMPLATES: the path of a checkout of backstage/software-templates",
    );
    PathBuf::from(root)
        .join("scaffolder-templates")
        .join(template)
}

/// The values every template of `backstage/software-templates` asks for on its two pages.
fn software_template_values(name_key: &str, name: &str) -> Value {
    json!({
        name_key: name,
        "description": "Made by Atrium",
        "owner": "group:default/team-a",
        "java_package_name": "orders",
        "repoUrl": format!("github.com?owner={OWNER}&repo={name}"),
    })
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
#[ignore = "needs ATRIUM_SOFTWARE_TEMPLATES, a checkout of backstage/software-templates"]
async fn software_templates_docs_template(pool: PgPool) {
    run_public_template(
        pool,
        PublicTemplate {
            dir: software_templates("docs-template"),
            name: "docs-template",
            values: software_template_values("name", "orders-docs"),
            repo: "orders-docs",
            branch: "master",
            create_body: default_create_body("orders-docs", "This is orders-docs"),
            expect_files: vec![
                (
                    "catalog-info.yaml",
                    "github.com/project-slug: acme/orders-docs",
                ),
                ("mkdocs.yml", "orders-docs"),
                ("docs/index.md", ""),
            ],
            component: ("component:orders-docs", "group:default/team-a"),
            expect_log: vec![],
            untouched: vec![],
        },
    )
    .await;
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
#[ignore = "needs ATRIUM_SOFTWARE_TEMPLATES, a checkout of backstage/software-templates"]
async fn software_templates_create_react_app(pool: PgPool) {
    run_public_template(
        pool,
        PublicTemplate {
            dir: software_templates("create-react-app"),
            name: "create-react-app-template",
            values: software_template_values("component_id", "orders-web"),
            repo: "orders-web",
            branch: "master",
            create_body: default_create_body("orders-web", "This is orders-web"),
            expect_files: vec![
                ("catalog-info.yaml", "name: \"orders-web\""),
                ("package.json", "orders-web"),
                ("src/App.tsx", ""),
            ],
            component: ("component:orders-web", "group:default/team-a"),
            expect_log: vec![],
            untouched: vec!["public/favicon.ico", "public/logo192.png"],
        },
    )
    .await;
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
#[ignore = "needs ATRIUM_SOFTWARE_TEMPLATES, a checkout of backstage/software-templates"]
async fn software_templates_react_ssr(pool: PgPool) {
    run_public_template(
        pool,
        PublicTemplate {
            dir: software_templates("react-ssr-template"),
            name: "react-ssr-template",
            values: software_template_values("component_id", "orders-ssr"),
            repo: "orders-ssr",
            branch: "master",
            create_body: default_create_body("orders-ssr", "This is orders-ssr"),
            expect_files: vec![
                ("catalog-info.yaml", "name: \"orders-ssr\""),
                ("package.json", "orders-ssr"),
                ("src/pages/index.tsx", ""),
            ],
            component: ("component:orders-ssr", "group:default/team-a"),
            expect_log: vec![],
            untouched: vec![],
        },
    )
    .await;
}

/// Templated paths: `${{values.artifact_id}}.sh` and a Java package folder named by a parameter.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
#[ignore = "needs ATRIUM_SOFTWARE_TEMPLATES, a checkout of backstage/software-templates"]
async fn software_templates_springboot_grpc(pool: PgPool) {
    run_public_template(
        pool,
        PublicTemplate {
            dir: software_templates("springboot-grpc-template"),
            name: "springboot-template",
            values: software_template_values("component_id", "orders-grpc"),
            repo: "orders-grpc",
            branch: "master",
            create_body: default_create_body("orders-grpc", "This is orders-grpc"),
            expect_files: vec![
                ("catalog-info.yaml", "description: \"Made by Atrium\""),
                ("orders-grpc.sh", ""),
                (
                    "src/main/java/com/example/orders/Application.java",
                    "package com.example.orders;",
                ),
                ("pom.xml", "orders-grpc"),
            ],
            component: ("component:orders-grpc", "group:default/team-a"),
            expect_log: vec![],
            untouched: vec![],
        },
    )
    .await;
}
