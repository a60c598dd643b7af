//! The demo catalog's golden path "Python FastAPI service", as a newcomer runs it: dry run, then a real
//! run that renders the skeleton, publishes it with `publish:git` to a local bare repository and
//! registers the new component in the catalog.

mod common;

use std::path::Path;

use atrium::config::PublishHostConfig;
use axum::http::StatusCode;
use base64::Engine;
use common::TestApp;
use common::git::git;
use serde_json::{Value, json};
use sqlx::PgPool;

async fn demo_app(pool: PgPool, git_dir: &Path) -> TestApp {
    let catalog = std::fs::canonicalize(common::workspace_root().join("catalog")).expect("catalog");
    let git_dir = git_dir.to_path_buf();
    let app = TestApp::with_full_config(pool, |config| {
        config.catalog.file_roots.push(catalog.clone());
        config.catalog.file_roots.push(git_dir.clone());
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
        // The demo's deploy configuration, with a kubeconfig that does not exist.
        config.deploy = atrium::config::Config::demo().deploy;
        config.deploy.clusters[0].kubeconfig = Some(git_dir.join("no-kubeconfig"));
    })
    .await;
    app.state
        .catalog
        .add_location("file", &catalog.join("all.yaml").display().to_string())
        .await
        .expect("demo catalog");
    app.process().await;
    app
}

fn values() -> Value {
    json!({
        "name": "orders-api",
        "description": "Takes orders",
        "owner": "group:default/payments-team",
        "system": "system:default/payments",
        "repoUrl": "localhost?owner=northwind&repo=orders-api",
    })
}

/// A demo template's skeleton, as Backstage's template editor sends it to a dry run.
fn template_files(template: &str) -> Vec<Value> {
    let root = common::workspace_root()
        .join("catalog/templates")
        .join(template);
    common::directory_contents(&root, &root.join("skeleton"))
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn the_python_service_golden_path_publishes_and_registers_a_component(pool: PgPool) {
    let git_dir = tempfile::tempdir().expect("tempdir");
    let git_dir = std::fs::canonicalize(git_dir.path()).expect("canonical");
    let app = demo_app(pool, &git_dir).await;

    let response = app
        .post(
            "/api/scaffolder/v2/tasks",
            json!({"templateRef": "template:default/python-fastapi-service", "values": values()}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    let id = response.body["id"].as_str().expect("id").to_owned();
    app.state.scaffolder.run_until_idle().await.expect("run");

    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    let events = app
        .get(&format!("/api/scaffolder/v2/tasks/{id}/events"))
        .await;
    assert_eq!(task.body["status"], "completed", "{:#}", events.body);
    assert_eq!(
        task.body["spec"]["parameters"]["port"], 8080,
        "schema defaults filled in"
    );
    let completion = events
        .body
        .as_array()
        .expect("events")
        .last()
        .expect("completion")
        .clone();
    let output = &completion["body"]["output"];
    assert_eq!(
        output["links"][1]["entityRef"],
        "component:default/orders-api"
    );
    assert!(
        output["text"][0]["content"]
            .as_str()
            .expect("text")
            .contains("port 8080"),
        "{output}"
    );

    // The repository holds the rendered skeleton on main.
    let bare = git_dir.join("northwind/orders-api.git");
    let files = git(&bare, &["ls-tree", "-r", "--name-only", "main"]);
    for file in [
        "catalog-info.yaml",
        "Dockerfile",
        "deploy/kubernetes.yaml",
        "src/app/main.py",
    ] {
        assert!(files.lines().any(|l| l == file), "{file} in {files}");
    }
    let catalog_info = git(&bare, &["show", "main:catalog-info.yaml"]);
    assert!(catalog_info.contains("name: orders-api"), "{catalog_info}");
    assert!(
        catalog_info.contains("github.com/project-slug: northwind/orders-api"),
        "{catalog_info}"
    );
    assert!(!catalog_info.contains("${{"), "{catalog_info}");
    // The manifests passed the dev guardrails before the commit and carry Atrium's labels.
    let manifests = git(&bare, &["show", "main:deploy/kubernetes.yaml"]);
    assert!(
        manifests.contains("atrium.dev/deployment: orders-api"),
        "{manifests}"
    );
    assert!(manifests.contains("namespace: apps"), "{manifests}");

    // And the catalog serves the new component once it has read the repository.
    app.process().await;
    let entity = app.entity("component", "orders-api").await;
    assert_eq!(entity["spec"]["owner"], "group:default/payments-team");
    assert!(
        entity["relations"]
            .as_array()
            .expect("relations")
            .iter()
            .any(|r| r["type"] == "partOf" && r["targetRef"] == "system:default/payments"),
        "{entity:#}"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_dry_run_renders_the_skeleton_without_publishing(pool: PgPool) {
    let git_dir = tempfile::tempdir().expect("tempdir");
    let git_dir = std::fs::canonicalize(git_dir.path()).expect("canonical");
    let app = demo_app(pool, &git_dir).await;
    let template = app.entity("template", "python-fastapi-service").await;
    let contents = template_files("python-fastapi-service");
    let response = app
        .post(
            "/api/scaffolder/v2/dry-run",
            json!({"template": template, "values": values(), "directoryContents": contents}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let files = response.body["directoryContents"]
        .as_array()
        .expect("files");
    let info = files
        .iter()
        .find(|f| f["path"] == "catalog-info.yaml")
        .expect("catalog-info.yaml rendered");
    let text = base64::engine::general_purpose::STANDARD
        .decode(info["base64Content"].as_str().expect("content"))
        .expect("base64");
    assert!(String::from_utf8_lossy(&text).contains("name: orders-api"));
    let log: Vec<String> = response.body["log"]
        .as_array()
        .expect("log")
        .iter()
        .map(|e| e["body"]["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        log.contains(&"Skipping because publish:git does not support dry-run".to_owned()),
        "{log:#?}"
    );
    assert!(
        log.contains(&"Skipping because catalog:register does not support dry-run".to_owned()),
        "{log:#?}"
    );
    assert_eq!(response.body["steps"].as_array().map(Vec::len), Some(6));
    // Nothing was published or registered.
    assert!(!git_dir.join("northwind").exists());
    let locations = app.get("/api/catalog/locations").await;
    assert_eq!(
        locations.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        locations.body
    );
}

/// "Deploy an LLM to Kubernetes" in the demo configuration: its one cluster comes from a kubeconfig
/// that is not there, so the deploy step fails saying so and the portal goes on; a dry run still
/// shows what would be applied, after the guardrails passed.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn the_llm_golden_path_without_a_cluster_fails_clearly_and_dry_runs_the_plan(pool: PgPool) {
    let git_dir = tempfile::tempdir().expect("tempdir");
    let app = demo_app(pool, git_dir.path()).await;
    let values = json!({
        "model": "model:default/support-assistant",
        "version": "champion",
        "gpuCount": 1,
        "maxModelLen": 8192,
        "minReplicas": 1,
        "maxReplicas": 2,
        "name": "support-assistant",
        "environment": "dev",
        "namespace": "model-serving",
        "owner": "group:default/ml-platform-team",
        "restrictIngress": false,
    });
    let template = app.entity("template", "deploy-llm-model").await;
    let response = app
        .post(
            "/api/scaffolder/v2/dry-run",
            json!({"template": template, "values": values, "directoryContents": template_files("deploy-llm-model")}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let log: Vec<String> = response.body["log"]
        .as_array()
        .expect("log")
        .iter()
        .map(|e| e["body"]["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    let all = log.join("\n");
    assert!(all.contains("the guardrails of `dev` passed"), "{all}");
    assert!(all.contains("kind: InferenceService"), "{all}");
    assert!(
        all.contains("storageUri: oci://registry.example.com/models/support-assistant:v2"),
        "{all}"
    );

    let created = app
        .post(
            "/api/scaffolder/v2/tasks",
            json!({"templateRef": "template:default/deploy-llm-model", "values": values}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert!(app.state.scaffolder.run_one().await.expect("run"));
    let id = created.body["id"].as_str().expect("id");
    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    assert_eq!(task.body["status"], "failed");
    let events = app
        .get(&format!("/api/scaffolder/v2/tasks/{id}/events"))
        .await;
    let all = events.body.to_string();
    assert!(
        all.contains("cluster `local`: cannot read kubeconfig"),
        "{all}"
    );
    // The portal goes on.
    assert_eq!(app.get("/api/clusters").await.status, StatusCode::OK);
}

/// "Deploy to dev now": the Python golden path publishes, registers and applies its manifests to the
/// demo's dev cluster (here the fake API server), through the dev guardrails.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn the_python_service_golden_path_deploys_to_dev_when_asked(pool: PgPool) {
    let fake = common::kube_fake::KubeFake::start().await;
    let git_dir = tempfile::tempdir().expect("tempdir");
    let app = demo_app(pool, git_dir.path()).await;
    // The demo's dev cluster, reached at the fake instead of a kubeconfig.
    let token = git_dir.path().join("token");
    std::fs::write(&token, "t").expect("token");
    let mut config = (*app.state.config).clone();
    let cluster = &mut config.deploy.clusters[0];
    cluster.kubeconfig = None;
    cluster.url = Some(fake.url());
    cluster.token_file = Some(token);
    let state = atrium::AppState::new(app.state.db.clone(), config).expect("state");
    let mut values = values();
    values["deployToDev"] = json!(true);
    let id = state
        .scaffolder
        .create_task(atrium::scaffolder::service::NewTaskRequest {
            template_ref: "template:default/python-fastapi-service",
            values: &values,
            secrets: None,
            idempotency_key: None,
            caller: &atrium::auth::Caller::guest(),
        })
        .await
        .expect("task");
    assert!(state.scaffolder.run_one().await.expect("run"));
    let task = state.scaffolder.task(id).await.expect("task");
    assert_eq!(task.status, "completed", "{:#}", task.state);
    let deployment = fake
        .get("apps/v1", "Deployment", "apps", "orders-api")
        .expect("deployed to dev");
    assert_eq!(
        deployment["metadata"]["labels"]["backstage.io/kubernetes-id"],
        "orders-api"
    );
    assert!(fake.get("v1", "Service", "apps", "orders-api").is_some());
    fake.assert_clean();
}

/// "Register an AI model": a repository holding the Model entity and its card, registered, and the
/// catalog then serving the model with its version, owner, system and base model.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn the_register_model_golden_path_puts_a_model_in_the_catalog(pool: PgPool) {
    let git_dir = tempfile::tempdir().expect("tempdir");
    let git_dir = std::fs::canonicalize(git_dir.path()).expect("canonical");
    let app = demo_app(pool, &git_dir).await;
    let values = json!({
        "name": "support-llm-ft",
        "title": "Support assistant: fine-tuned",
        "description": "Answers support tickets. Not for legal or medical advice.",
        "owner": "group:default/ml-platform-team",
        "system": "system:default/ml-platform",
        "type": "llm",
        "task": "chat",
        "provider": "Northwind Labs",
        "license": "llama3.1",
        "baseModel": "model:default/llama-3.1-8b-instruct",
        "version": "v1",
        "uri": "oci://registry.example.com/models/support-llm-ft:v1",
        "repoUrl": "localhost?owner=northwind&repo=support-llm-ft",
    });
    let response = app
        .post(
            "/api/scaffolder/v2/tasks",
            json!({"templateRef": "template:default/register-ai-model", "values": values}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    let id = response.body["id"].as_str().expect("id").to_owned();
    app.state.scaffolder.run_until_idle().await.expect("run");
    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    let events = app
        .get(&format!("/api/scaffolder/v2/tasks/{id}/events"))
        .await;
    assert_eq!(task.body["status"], "completed", "{:#}", events.body);
    let output = &events
        .body
        .as_array()
        .expect("events")
        .last()
        .expect("completion")["body"]["output"];
    assert_eq!(
        output["links"][1]["entityRef"],
        "model:default/support-llm-ft"
    );

    let bare = git_dir.join("northwind/support-llm-ft.git");
    let card = git(&bare, &["show", "main:README.md"]);
    assert!(
        card.starts_with("# Support assistant: fine-tuned"),
        "{card}"
    );
    let catalog_info = git(&bare, &["show", "main:catalog-info.yaml"]);
    assert!(!catalog_info.contains("${{"), "{catalog_info}");

    app.process().await;
    let model = app.entity("model", "support-llm-ft").await;
    assert_eq!(model["metadata"]["title"], "Support assistant: fine-tuned");
    assert_eq!(
        model["spec"]["lifecycle"], "experimental",
        "the form's default"
    );
    assert_eq!(model["spec"]["format"], "safetensors");
    assert_eq!(model["spec"]["license"], "llama3.1");
    assert_eq!(
        model["spec"]["versions"],
        json!([{"name": "v1", "uri": "oci://registry.example.com/models/support-llm-ft:v1"}])
    );
    let relations: Vec<(String, String)> = model["relations"]
        .as_array()
        .expect("relations")
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap_or_default().to_owned(),
                r["targetRef"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("ownedBy", "group:default/ml-platform-team"),
        ("partOf", "system:default/ml-platform"),
        ("dependsOn", "model:default/llama-3.1-8b-instruct"),
    ] {
        assert!(
            relations
                .iter()
                .any(|(t, r)| t == expected.0 && r == expected.1),
            "{expected:?} in {relations:?}"
        );
    }
    assert!(
        app.entity_status("model", "support-llm-ft").await == StatusCode::OK,
        "served"
    );
    let errors = common::status_messages(&model);
    assert!(errors.is_empty(), "{errors:?}");
}
