//! The golden-path pages in a real headless Chromium: the template gallery filtered by tag, the
//! "Python FastAPI service" form refused with an invalid name (the error next to the field, the other
//! values kept) and then accepted, the task page following the run live over the event stream until
//! it shows the link to the new component, and the task history. Then the same task page without
//! JavaScript, requested through the router. Screenshots go to `target/screenshots/`; the test ends by
//! asserting the browser reported no Content-Security-Policy violation.

mod common;
// Not every helper of the harness is used here.
#[allow(dead_code)]
#[path = "common/browser.rs"]
mod harness;

use std::path::Path;
use std::time::Duration;

use atrium::config::PublishHostConfig;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::workspace_root;
use fantoccini::{Client, Locator};
use harness::{Chromedriver, Portal, console_errors, screenshot, wait_for, wait_for_url};
use scraper::{Html, Selector};
use sqlx::PgPool;
use tower::ServiceExt;

/// The demo portal, publishing `localhost?owner=o&repo=r` to bare repositories under `git_dir` (also
/// a catalog file root, so `catalog:register` can read what was published), with task workspaces in
/// a temporary directory.
async fn portal(pool: PgPool, git_dir: &Path, workspaces: &Path) -> Portal {
    let git_dir = git_dir.to_path_buf();
    let workspaces = workspaces.to_path_buf();
    Portal::start_with(pool, workspace_root(), move |config| {
        config.catalog.file_roots.push(git_dir.clone());
        config.scaffolder.workspace_dir = workspaces;
        config.scaffolder.allowed_hosts = vec!["localhost".to_owned()];
        config.scaffolder.hosts = vec![PublishHostConfig {
            host: "localhost".to_owned(),
            remote: format!("file://{}/{{owner}}/{{repo}}.git", git_dir.display()),
            github_api_url: None,
            token_env: None,
            token_file: None,
            username: None,
            ssh_key: None,
        }];
        // The demo's guardrails for `dev`, which the Python golden path checks its manifests against.
        config.deploy = atrium::config::Config::demo().deploy;
    })
    .await
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn value_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default()
}

async fn fill(client: &Client, css: &str, text: &str) {
    let input = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    input.clear().await.expect("clear");
    input.send_keys(text).await.expect("type");
}

async fn texts(client: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for element in client.find_all(Locator::Css(css)).await.expect(css) {
        out.push(element.text().await.expect("text").trim().to_owned());
    }
    out
}

/// A page requested through the router, as a browser without JavaScript gets it.
async fn get_html(portal: &Portal, path: &str) -> (StatusCode, Html) {
    let response = atrium::app(portal.state.clone())
        .oneshot(
            Request::builder()
                .uri(path)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (
        status,
        Html::parse_document(&String::from_utf8_lossy(&body)),
    )
}

fn select_texts(html: &Html, css: &str) -> Vec<String> {
    html.select(&Selector::parse(css).expect("selector"))
        .map(|e| e.text().collect::<Vec<_>>().join(" "))
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn run_a_golden_path_from_the_browser(pool: PgPool) {
    let workspace = workspace_root();
    let git_dir = tempfile::tempdir().expect("tempdir");
    let git_dir = std::fs::canonicalize(git_dir.path()).expect("canonical");
    let workspaces = tempfile::tempdir().expect("tempdir");
    let portal = portal(pool, &git_dir, workspaces.path()).await;
    let driver = Chromedriver::start().await;
    let client = driver.session().await;
    client.set_window_size(1280, 800).await.expect("size");

    // The gallery, filtered by a tag through its GET form.
    client.goto(&portal.url("/create")).await.expect("gallery");
    wait_for(&client, "a.template-link").await;
    let all = texts(&client, "a.template-link").await;
    assert!(
        all.len() >= 3 && all.contains(&"Python FastAPI service".to_owned()),
        "{all:?}"
    );
    screenshot(&client, workspace, "create-gallery-1280").await;
    wait_for(&client, "#filter-tag")
        .await
        .select_by_value("python")
        .await
        .expect("choose python");
    click(&client, ".filter-actions button").await;
    wait_for_url(&client, |u| {
        u.query().is_some_and(|q| q.contains("tag=python"))
    })
    .await;
    assert_eq!(
        texts(&client, "a.template-link").await,
        ["Python FastAPI service"]
    );

    // The form: an invalid name comes back with the error next to the field, other values kept.
    click(&client, "a.template-link").await;
    wait_for_url(&client, |u| {
        u.path() == "/create/templates/default/python-fastapi-service"
    })
    .await;
    wait_for(&client, "#field-name").await;
    assert_eq!(value_of(&client, "#field-port").await, "8080", "default");
    assert_eq!(value_of(&client, "#field-lifecycle").await, "experimental");
    screenshot(&client, workspace, "create-form-1280").await;
    fill(&client, "#field-name", "Orders API").await;
    fill(&client, "#field-description", "Takes orders").await;
    wait_for(&client, "#field-owner")
        .await
        .select_by_value("group:default/payments-team")
        .await
        .expect("owner");
    wait_for(&client, "#field-system")
        .await
        .select_by_value("system:default/payments")
        .await
        .expect("system");
    wait_for(&client, "#field-repoUrl-host")
        .await
        .select_by_value("localhost")
        .await
        .expect("host");
    fill(&client, "#field-repoUrl-owner", "northwind").await;
    fill(&client, "#field-repoUrl-repo", "orders-api").await;
    // The browser checks the pattern itself (the attribute mirrors the schema); turn that off to see
    // what a client that does not check gets from the server.
    client
        .execute(
            "document.querySelector('form.template-form').noValidate = true",
            Vec::new(),
        )
        .await
        .expect("novalidate");
    click(&client, "form.template-form button.primary").await;
    let error = wait_for(&client, "#field-name-error").await;
    let message = error.text().await.expect("error text");
    assert!(message.contains("does not match"), "{message}");
    assert_eq!(
        wait_for(&client, "#field-name-field #field-name-error")
            .await
            .attr("id")
            .await
            .expect("id")
            .as_deref(),
        Some("field-name-error"),
        "the error sits in the name field's block"
    );
    assert_eq!(value_of(&client, "#field-name").await, "Orders API");
    assert_eq!(
        value_of(&client, "#field-description").await,
        "Takes orders"
    );
    assert_eq!(
        value_of(&client, "#field-owner").await,
        "group:default/payments-team"
    );
    assert_eq!(
        value_of(&client, "#field-system").await,
        "system:default/payments"
    );
    assert_eq!(value_of(&client, "#field-repoUrl-owner").await, "northwind");
    assert_eq!(value_of(&client, "#field-repoUrl-repo").await, "orders-api");
    assert_eq!(
        texts(&client, ".field-error").await.len(),
        1,
        "only the name is wrong"
    );
    screenshot(&client, workspace, "create-form-error-1280").await;

    // Fixed: the task page opens, and follows the run once a worker picks it up.
    fill(&client, "#field-name", "orders-api").await;
    click(&client, "form.template-form button.primary").await;
    let url = wait_for_url(&client, |u| u.path().starts_with("/create/tasks/")).await;
    let task_path = url.path().to_owned();
    let task_id: uuid::Uuid = task_path
        .trim_start_matches("/create/tasks/")
        .parse()
        .expect("task id");
    // Connected to the stream before any worker runs, so everything below arrives live.
    wait_for(&client, "#task[data-live=connected]").await;
    assert_eq!(
        texts(&client, "#task-status").await,
        ["open"],
        "rendered before the run"
    );
    screenshot(&client, workspace, "create-task-open-1280").await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = portal.state.scaffolder.spawn_workers(stopped);
    // `data-followed` is set only by task.js, after the completion event, on the page it fetched.
    client
        .wait()
        .at_most(Duration::from_secs(90))
        .for_element(Locator::Css("#task[data-followed=completed]"))
        .await
        .expect("the page followed the run to its completion");
    assert_eq!(
        client.current_url().await.expect("url").path(),
        task_path,
        "no navigation"
    );
    assert_eq!(texts(&client, "#task-status").await, ["completed"]);
    assert_eq!(
        texts(&client, "#task-steps .step-status").await,
        [
            "completed",
            "completed",
            "completed",
            "completed",
            "skipped",
            "completed"
        ]
    );
    let log = texts(&client, "#task-log li").await;
    assert!(
        log.iter()
            .any(|l| l.contains("Finished step Create the repository")),
        "{log:?}"
    );
    let link = wait_for(
        &client,
        "a.output-link[href='/catalog/default/component/orders-api']",
    )
    .await;
    screenshot(&client, workspace, "create-task-completed-1280").await;
    portal
        .state
        .catalog
        .process_until_idle()
        .await
        .expect("catalog reads the new repository");
    link.click().await.expect("open the new component");
    let title = wait_for(&client, ".entity-header h1").await;
    assert_eq!(title.text().await.expect("title"), "orders-api");

    // The history lists it, also filtered by status.
    client
        .goto(&portal.url("/create/tasks"))
        .await
        .expect("history");
    let row = wait_for(&client, &format!("a.task-link[href='{task_path}']")).await;
    assert_eq!(row.text().await.expect("text"), "Python FastAPI service");
    wait_for(&client, "#filter-status")
        .await
        .select_by_value("completed")
        .await
        .expect("status");
    click(&client, ".filter-actions button").await;
    wait_for_url(&client, |u| {
        u.query().is_some_and(|q| q.contains("status=completed"))
    })
    .await;
    wait_for(&client, &format!("a.task-link[href='{task_path}']")).await;
    screenshot(&client, workspace, "create-history-1280").await;

    // Phone size: the same pages, stacked.
    client.set_window_size(375, 812).await.expect("size");
    for (path, name) in [
        ("/create", "create-gallery-375"),
        (
            "/create/templates/default/python-fastapi-service",
            "create-form-375",
        ),
        (task_path.as_str(), "create-task-completed-375"),
        ("/create/tasks", "create-history-375"),
    ] {
        client.goto(&portal.url(path)).await.expect(path);
        wait_for(&client, "main h1").await;
        screenshot(&client, workspace, name).await;
    }

    // Without JavaScript: the finished task page as the server renders it.
    let (status, html) = get_html(&portal, &task_path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        select_texts(&html, "#task-steps .step-name"),
        [
            "Render the skeleton",
            "Check the manifests against the dev guardrails",
            "Create the repository",
            "Register in the catalog",
            "Deploy to dev",
            "Summary"
        ]
    );
    assert_eq!(
        select_texts(&html, "#task-steps .step-status"),
        [
            "completed",
            "completed",
            "completed",
            "completed",
            "skipped",
            "completed"
        ]
    );
    let durations = select_texts(&html, "#task-steps .step-duration");
    assert_eq!(
        durations
            .iter()
            .filter(|d| d.ends_with(" ms") || d.ends_with(" s"))
            .count(),
        5,
        "every step that ran has a duration (the skipped deploy has none): {durations:?}"
    );
    let log = select_texts(&html, "#task-log li");
    assert!(
        log.iter()
            .any(|l| l.contains("Beginning step Render the skeleton"))
            && log
                .last()
                .is_some_and(|l| l.contains("Run completed with status: completed")),
        "{log:?}"
    );
    assert_eq!(
        select_texts(&html, "a.refresh-link"),
        ["Refresh"],
        "a way to see progress without JavaScript"
    );
    assert!(
        select_texts(&html, ".cancel-form").is_empty(),
        "no cancel once ended"
    );
    assert!(
        select_texts(&html, ".output-text")
            .iter()
            .any(|t| t.contains("port 8080"))
    );
    for script in html.select(&Selector::parse("script").expect("selector")) {
        assert!(script.value().attr("src").is_some(), "inline script");
    }
    assert!(
        html.select(&Selector::parse("[style]").expect("selector"))
            .next()
            .is_none()
    );
    // The task is the one the API knows.
    assert_eq!(
        portal
            .state
            .scaffolder
            .task(task_id)
            .await
            .expect("task")
            .status,
        "completed"
    );

    // One more navigation so reports sent by earlier pages have arrived.
    client.goto(&portal.url("/create")).await.expect("gallery");
    wait_for(&client, "a.template-link").await;
    assert_eq!(
        atrium::ui::csp::report_count(),
        0,
        "the browser reported Content-Security-Policy violations (see the log)"
    );
    let errors = console_errors(&client).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    client.close().await.expect("close");
    stop.send(true).expect("stop workers");
    workers.await.expect("workers end");
}

/// Without a worker a task stays open: its page offers Cancel, a form post from this site cancels it,
/// one from another site is refused.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn an_open_task_can_be_cancelled_from_its_page(pool: PgPool) {
    let git_dir = tempfile::tempdir().expect("tempdir");
    let workspaces = tempfile::tempdir().expect("tempdir");
    let portal = portal(pool, git_dir.path(), workspaces.path()).await;
    let values = serde_json::json!({
        "name": "orders-api", "description": "Takes orders",
        "owner": "group:default/payments-team", "system": "system:default/payments",
        "repoUrl": "localhost?owner=northwind&repo=orders-api",
    });
    let id = portal
        .state
        .scaffolder
        .create_task(atrium::scaffolder::service::NewTaskRequest {
            template_ref: "template:default/python-fastapi-service",
            values: &values,
            secrets: None,
            idempotency_key: None,
            caller: &atrium::auth::Caller::guest(),
        })
        .await
        .expect("task created");
    let path = format!("/create/tasks/{id}");
    let (status, html) = get_html(&portal, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(select_texts(&html, "#task-status"), ["open"]);
    assert_eq!(select_texts(&html, ".cancel-form button"), ["Cancel"]);
    assert_eq!(
        select_texts(&html, "#task-steps .step-status"),
        ["open", "open", "open", "open", "open", "open"]
    );

    let post = |site: &'static str| {
        Request::builder()
            .method(Method::POST)
            .uri(format!("{path}/cancel"))
            .header("sec-fetch-site", site)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::empty())
            .expect("request")
    };
    let refused = atrium::app(portal.state.clone())
        .oneshot(post("cross-site"))
        .await
        .expect("response");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let cancelled = atrium::app(portal.state.clone())
        .oneshot(post("same-origin"))
        .await
        .expect("response");
    assert_eq!(cancelled.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        cancelled
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some(path.as_str())
    );
    let (_, html) = get_html(&portal, &path).await;
    assert_eq!(select_texts(&html, "#task-status"), ["cancelled"]);
    assert!(select_texts(&html, ".cancel-form").is_empty());
    assert!(
        select_texts(&html, "#task-log li")
            .iter()
            .any(|l| l.contains("Run cancelled"))
    );

    // The history's status filter.
    let (status, html) = get_html(&portal, "/create/tasks?status=cancelled").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(select_texts(&html, "a.task-link").len(), 1);
    let (_, html) = get_html(&portal, "/create/tasks?status=completed").await;
    assert!(select_texts(&html, "a.task-link").is_empty());
}

/// A template whose fields depend on another's value (`dependencies` with `oneOf`, and `if`/`then`):
/// the browser shows only the fields that apply, and what was typed into a field that stopped
/// applying is not sent.
const CONDITIONAL_TEMPLATE: &str = r#"
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: conditional-fields
  title: Conditional fields
spec:
  owner: group:default/payments-team
  type: library
  parameters:
    - title: What to make
      required: [kind]
      properties:
        kind:
          title: Kind
          type: string
          enum: [library, service]
          default: library
        public:
          title: Public
          type: boolean
      dependencies:
        kind:
          oneOf:
            - properties:
                kind: {enum: [library]}
                registry: {title: Registry, type: string}
            - properties:
                kind: {enum: [service]}
                port: {title: Port, type: integer}
              required: [port]
      if:
        properties:
          public: {const: true}
      then:
        properties:
          domain: {title: Domain, type: string}
        required: [domain]
  steps:
    - id: log
      name: Log
      action: debug:log
      input:
        message: made a ${{ parameters.kind }}
"#;

async fn displayed(client: &Client, css: &str) -> bool {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .is_displayed()
        .await
        .expect("displayed")
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn conditional_fields_show_only_when_they_apply(pool: PgPool) {
    let git_dir = tempfile::tempdir().expect("tempdir");
    let git_dir = std::fs::canonicalize(git_dir.path()).expect("canonical");
    let workspaces = tempfile::tempdir().expect("tempdir");
    let portal = portal(pool.clone(), &git_dir, workspaces.path()).await;
    let file = git_dir.join("conditional.yaml");
    std::fs::write(&file, CONDITIONAL_TEMPLATE).expect("write");
    portal
        .state
        .catalog
        .add_location("file", &file.display().to_string())
        .await
        .expect("register");
    portal
        .state
        .catalog
        .process_until_idle()
        .await
        .expect("process");

    // Without the script: every field, each saying when it applies.
    let (status, html) = get_html(&portal, "/create/templates/default/conditional-fields").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        select_texts(&html, ".field-when"),
        [
            "Only when Kind is library.",
            "Only when Kind is service. Required then.",
            "Only when Public is true. Required then."
        ]
    );

    let driver = Chromedriver::start().await;
    let client = driver.session().await;
    client
        .goto(&portal.url("/create/templates/default/conditional-fields"))
        .await
        .expect("form");
    wait_for(&client, "#field-kind").await;
    assert!(displayed(&client, "#field-registry-field").await);
    assert!(!displayed(&client, "#field-port-field").await);
    assert!(!displayed(&client, "#field-domain-field").await);
    fill(&client, "#field-registry", "npm-internal").await;

    wait_for(&client, "#field-kind")
        .await
        .select_by_value("service")
        .await
        .expect("kind");
    assert!(!displayed(&client, "#field-registry-field").await);
    assert!(displayed(&client, "#field-port-field").await);
    // Sent without the port the service needs: the error sits next to the port.
    click(&client, "form.template-form button.primary").await;
    let error = wait_for(&client, "#field-port-field #field-port-error").await;
    assert!(
        error.text().await.expect("text").contains("required"),
        "{:?}",
        error.text().await
    );
    assert!(displayed(&client, "#field-port-field").await);
    fill(&client, "#field-port", "8080").await;
    click(&client, "#field-public").await;
    assert!(displayed(&client, "#field-domain-field").await);
    fill(&client, "#field-domain", "orders.example.com").await;
    screenshot(&client, workspace_root(), "create-form-conditional-1280").await;
    click(&client, "form.template-form button.primary").await;
    let url = wait_for_url(&client, |u| u.path().starts_with("/create/tasks/")).await;
    let id: uuid::Uuid = url
        .path()
        .trim_start_matches("/create/tasks/")
        .parse()
        .expect("task id");
    let spec: serde_json::Value =
        sqlx::query_scalar("select spec from scaffolder_task where id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("task");
    assert_eq!(
        spec["parameters"],
        serde_json::json!({"kind": "service", "port": 8080, "public": true, "domain": "orders.example.com"}),
        "the registry typed while it applied is not sent"
    );
    let errors = console_errors(&client).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    client.close().await.expect("close");
}
