//! Helpers for the tests of who may do what (scopes, the permission policy, the audit log): an app
//! whose `dev` and `prod` clusters are a fake API server, templates, tasks and audit counts.

use std::path::PathBuf;

use atrium::config::Config;
use atrium::deploy::config::{ClusterConfig, DeployConfig, EnvironmentConfig};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::kube_fake::KubeFake;
use super::{Response, TestApp};

pub const KUBE_TOKEN: &str = "test-service-account-token";

fn cluster(name: &str, environment: &str, url: &str, token_file: PathBuf) -> ClusterConfig {
    ClusterConfig {
        name: name.to_owned(),
        environment: environment.to_owned(),
        namespaces: vec!["apps".to_owned()],
        url: Some(url.to_owned()),
        ca_file: None,
        token_env: None,
        token_file: Some(token_file),
        kubeconfig: None,
        context: None,
        in_cluster: false,
    }
}

/// An app whose `dev` and `prod` clusters are both the fake: a deploy to `prod` that slipped through
/// would show in the fake's requests.
pub async fn app_with_clusters(pool: PgPool) -> (TestApp, KubeFake) {
    app_with_clusters_and(pool, |_| {}).await
}

/// [`app_with_clusters`], with the rest of the configuration (`permissions`...) as `adjust` makes it.
pub async fn app_with_clusters_and(
    pool: PgPool,
    adjust: impl FnOnce(&mut Config),
) -> (TestApp, KubeFake) {
    let fake = KubeFake::start().await;
    fake.require_token(KUBE_TOKEN);
    let token_dir = tempfile::tempdir().expect("tempdir").keep();
    let token_file = token_dir.join("token");
    std::fs::write(&token_file, KUBE_TOKEN).expect("token file");
    let url = fake.url();
    let app = TestApp::with_full_config(pool, |config| {
        let mut environments = std::collections::BTreeMap::new();
        for environment in ["dev", "prod"] {
            environments.insert(environment.to_owned(), EnvironmentConfig::default());
        }
        config.deploy = DeployConfig {
            environments,
            clusters: vec![
                cluster("dev-1", "dev", &url, token_file.clone()),
                cluster("prod-1", "prod", &url, token_file.clone()),
            ],
            poll_interval_ms: 20,
            request_timeout_seconds: 5,
            ..DeployConfig::default()
        };
        adjust(config);
    })
    .await;
    for name in ["x", "y"] {
        add_template(
            &app,
            name,
            "    - id: log\n      action: debug:log\n      input:\n        message: hello ${{ parameters.name }}\n",
        )
        .await;
    }
    (app, fake)
}

/// A template named `name` with one required parameter `name` (lowercase letters) and these steps.
pub async fn add_template(app: &TestApp, name: &str, steps: &str) {
    let template = format!(
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: {name}\nspec:\n  owner: group:platform\n  type: service\n  parameters:\n    - required: [name]\n      properties:\n        name: {{type: string, pattern: '^[a-z]+$'}}\n        environment: {{type: string, default: dev}}\n  steps:\n{steps}"
    );
    app.add(&format!("{name}/template.yaml"), &template).await;
    app.entity("template", name).await;
}

/// A `kube:apply` of one ConfigMap to `environment` (a literal or an expression), optionally once per
/// item of `each`.
pub fn deploy_step(environment: &str, each: Option<&str>) -> String {
    let each = each.map_or(String::new(), |e| format!("      each: {e}\n"));
    format!(
        "    - id: apply\n      action: kube:apply\n{each}      input:\n        environment: \"{environment}\"\n        namespace: apps\n        manifests:\n          - apiVersion: v1\n            kind: ConfigMap\n            metadata: {{name: settings}}\n            data: {{mode: \"${{{{ parameters.name }}}}\"}}\n"
    )
}

pub async fn create_as(app: &TestApp, token: &str, template: &str, values: Value) -> Response {
    app.request_as(
        token,
        Method::POST,
        "/api/scaffolder/v2/tasks",
        Some(json!({"templateRef": format!("template:default/{template}"), "values": values})),
    )
    .await
}

pub fn id_of(response: &Response) -> Uuid {
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    response.body["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid")
}

/// Audit events (newest first) as the admin's `GET /api/audit?{query}` answers them.
pub async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let response = app.get(&format!("/api/audit?{query}")).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response.body["items"].as_array().expect("items").clone()
}

/// How many audit events of `action` with `outcome` there are, on `target` when given.
pub async fn count(app: &TestApp, action: &str, outcome: &str, target: Option<&str>) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "select count(*) from audit_event
          where action = $1 and outcome = $2 and ($3::text is null or target = $3)",
    )
    .bind(action)
    .bind(outcome)
    .bind(target)
    .fetch_one(&app.state.db)
    .await
    .expect("count audit events")
}

pub fn messages(events: &Value) -> String {
    events
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["body"]["message"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}
