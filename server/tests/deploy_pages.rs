//! An entity's Kubernetes tab (`/catalog/{namespace}/{kind}/{name}/kubernetes`) against the fake
//! Kubernetes API server and a second cluster that cannot be reached: live workloads found by the
//! entity's annotations, their pods and events with health, the entity's deployment records, and
//! where each version of a Model runs. HTML is checked by CSS selectors.

mod common;

use std::path::PathBuf;

use atrium::deploy::config::{ClusterConfig, DeployConfig, EnvironmentConfig};
use atrium::deploy::policy::PolicyConfig;
use axum::http::StatusCode;
use common::TestApp;
use common::kube_fake::KubeFake;
use scraper::{ElementRef, Html, Selector};
use serde_json::{Value, json};
use sqlx::PgPool;

const TOKEN: &str = "test-service-account-token";

fn cluster(name: &str, environment: &str, url: &str, token_file: PathBuf) -> ClusterConfig {
    ClusterConfig {
        name: name.to_owned(),
        environment: environment.to_owned(),
        namespaces: vec!["apps".to_owned(), "model-serving".to_owned()],
        url: Some(url.to_owned()),
        ca_file: None,
        token_env: None,
        token_file: Some(token_file),
        kubeconfig: None,
        context: None,
        in_cluster: false,
    }
}

/// An app whose `dev-1` cluster is the fake (token checked) and whose `prod-1` cluster cannot be
/// reached.
async fn app_with_clusters(pool: PgPool) -> (TestApp, KubeFake) {
    let fake = KubeFake::start().await;
    fake.require_token(TOKEN);
    let token_dir = tempfile::tempdir().expect("tempdir").keep();
    let token_file = token_dir.join("token");
    std::fs::write(&token_file, TOKEN).expect("token file");
    let url = fake.url();
    let app = TestApp::with_full_config(pool, |config| {
        let policy = PolicyConfig {
            allowed_registries: vec!["ghcr.io/acme".to_owned(), "docker.io/vllm".to_owned()],
            max_replicas: 3,
            max_gpus: 4,
            ..PolicyConfig::default()
        };
        let environments = ["dev", "prod"]
            .into_iter()
            .map(|env| {
                let policy = policy.clone();
                (
                    env.to_owned(),
                    EnvironmentConfig {
                        policy,
                        ..EnvironmentConfig::default()
                    },
                )
            })
            .collect();
        config.deploy = DeployConfig {
            environments,
            clusters: vec![
                cluster("dev-1", "dev", &url, token_file.clone()),
                // Nothing listens on port 9 of loopback.
                cluster("prod-1", "prod", "http://127.0.0.1:9", token_file.clone()),
            ],
            poll_interval_ms: 20,
            request_timeout_seconds: 5,
            ..DeployConfig::default()
        };
    })
    .await;
    (app, fake)
}

struct Page {
    html: Html,
}

impl Page {
    async fn get(app: &TestApp, uri: &str) -> Self {
        let response = app.get(uri).await;
        assert_eq!(response.status, StatusCode::OK, "{uri}: {}", response.body);
        let text = response.body.as_str().expect("an HTML page");
        Self {
            html: Html::parse_document(text),
        }
    }

    fn select(&self, selector: &str) -> Vec<ElementRef<'_>> {
        let selector = Selector::parse(selector).expect("selector");
        self.html.select(&selector).collect()
    }

    /// Text of every element matching `selector`, whitespace collapsed.
    fn texts(&self, selector: &str) -> Vec<String> {
        self.select(selector).into_iter().map(text).collect()
    }

    /// Each row matching `selector` as the texts of its cells.
    fn rows(&self, selector: &str) -> Vec<Vec<String>> {
        let cell = Selector::parse("td").expect("selector");
        self.select(selector)
            .into_iter()
            .map(|row| row.select(&cell).map(text).collect())
            .collect()
    }
}

fn text(element: ElementRef<'_>) -> String {
    element
        .text()
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn component(name: &str, annotations: Value) -> String {
    let entity = json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"type": "service", "owner": "group:platform", "lifecycle": "production"},
    });
    serde_saphyr::to_string(&entity).expect("yaml")
}

fn deployment(namespace: &str, name: &str, labels: Value, status: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/web:1.4.2"}]}},
        },
        "status": status,
    })
}

fn pod(name: &str, app_label: &str, restarts: u64, waiting: Option<&str>) -> Value {
    let state = match waiting {
        Some(reason) => {
            json!({"waiting": {"reason": reason, "message": "back-off 40s restarting failed container"}})
        }
        None => json!({"running": {"startedAt": "2025-01-01T10:00:00Z"}}),
    };
    json!({
        "metadata": {"name": name, "namespace": "apps",
            "labels": {"app": app_label, "backstage.io/kubernetes-id": "web"}},
        "spec": {"restartPolicy": "Always",
            "containers": [{"name": "app", "image": "ghcr.io/acme/web:1.4.2"}]},
        "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": if waiting.is_none() { "True" } else { "False" }}],
            "containerStatuses": [{"name": "app",
            "ready": waiting.is_none(), "restartCount": restarts, "state": state}]},
    })
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn the_kubernetes_tab_shows_workloads_pods_and_events_of_each_cluster(pool: PgPool) {
    let (app, fake) = app_with_clusters(pool).await;
    app.add(
        "web/catalog-info.yaml",
        &component("web", json!({"backstage.io/kubernetes-id": "web"})),
    )
    .await;
    let labels = json!({"app": "web", "backstage.io/kubernetes-id": "web"});
    fake.insert(deployment(
        "apps",
        "web",
        labels.clone(),
        json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
               "readyReplicas": 1, "availableReplicas": 1}),
    ));
    fake.insert(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "apps", "labels": labels},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.12", "selector": {"app": "web"},
                 "ports": [{"port": 80, "protocol": "TCP"}]},
    }));
    fake.put_pod(pod("web-7c9d-healthy", "web", 0, None));
    let crashing = fake.put_pod(pod("web-7c9d-crashing", "web", 4, Some("CrashLoopBackOff")));
    fake.add_event(
        &crashing,
        "Warning",
        "BackOff",
        "Back-off restarting failed container app",
    );
    // Not the entity's: another label value, and a namespace Atrium may not touch.
    fake.insert(deployment(
        "apps",
        "billing",
        json!({"app": "billing", "backstage.io/kubernetes-id": "billing"}),
        json!({}),
    ));
    fake.insert(deployment(
        "kube-system",
        "web-elsewhere",
        json!({"app": "web-elsewhere", "backstage.io/kubernetes-id": "web"}),
        json!({}),
    ));

    // The entity page links to its Kubernetes tab.
    let entity = Page::get(&app, "/catalog/default/component/web").await;
    let links: Vec<String> = entity
        .select("a.kubernetes-link")
        .into_iter()
        .filter_map(|a| a.value().attr("href").map(str::to_owned))
        .collect();
    assert_eq!(links, vec!["/catalog/default/component/web/kubernetes"]);

    let page = Page::get(&app, "/catalog/default/component/web/kubernetes").await;
    assert_eq!(
        page.texts("#selector"),
        vec!["backstage.io/kubernetes-id=web"]
    );
    let dev = "section.cluster-workloads[data-cluster='dev-1']";
    assert!(page.select(&format!("{dev} .cluster-error")).is_empty());
    let workloads = page.rows(&format!("{dev} tr.workload"));
    let summary: Vec<(&str, &str, &str)> = workloads
        .iter()
        .map(|w| (w[0].as_str(), w[1].as_str(), w[2].as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![("Deployment", "web", "apps"), ("Service", "web", "apps")],
        "{workloads:#?}"
    );
    assert_eq!(
        page.texts(&format!("{dev} tr.workload[data-kind=Deployment] .health")),
        vec!["Degraded"],
        "a crash-looping pod makes its Deployment Degraded"
    );
    assert_eq!(
        page.texts(&format!("{dev} tr.workload[data-kind=Deployment] .detail")),
        vec!["1/2 ready"]
    );
    assert!(
        page.texts(&format!(
            "{dev} tr.workload[data-kind=Deployment] .health-message"
        ))[0]
            .contains("CrashLoopBackOff"),
    );
    assert_eq!(
        page.texts(&format!("{dev} tr.workload[data-kind=Service] .health")),
        vec!["Healthy"]
    );

    let crashing = format!("{dev} tr.pod[data-name='web-7c9d-crashing']");
    assert_eq!(page.texts(&format!("{crashing} .phase")), vec!["Running"]);
    assert_eq!(page.texts(&format!("{crashing} .ready")), vec!["0/1"]);
    assert_eq!(page.texts(&format!("{crashing} .restarts")), vec!["4"]);
    assert_eq!(
        page.texts(&format!("{crashing} .waiting")),
        vec!["CrashLoopBackOff"]
    );
    let healthy = format!("{dev} tr.pod[data-name='web-7c9d-healthy']");
    assert_eq!(page.texts(&format!("{healthy} .ready")), vec!["1/1"]);
    assert_eq!(page.texts(&format!("{healthy} .restarts")), vec!["0"]);
    assert_eq!(page.texts(&format!("{healthy} .health")), vec!["Healthy"]);

    let events = page.rows(&format!("{dev} tr.event"));
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(
        events[0][1..4],
        ["Warning", "Pod/web-7c9d-crashing", "BackOff"]
    );
    assert_eq!(events[0][4], "Back-off restarting failed container app");

    // The unreachable cluster says so; the reachable one's workloads are still there (above).
    let prod = "section.cluster-workloads[data-cluster='prod-1']";
    let errors = page.texts(&format!("{prod} .cluster-error"));
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("cluster `prod-1` is unreachable"),
        "{errors:?}"
    );
    assert!(page.select(&format!("{prod} tr.workload")).is_empty());
    // Nothing was deployed by Atrium.
    assert!(page.select("tr.deployment").is_empty());
    assert!(page.select("#versions").is_empty(), "not a Model");

    // Only reads, only in the allowed namespaces.
    for request in fake.requests() {
        assert_eq!(request.method, "GET", "{request:?}");
        assert!(!request.path.contains("kube-system"), "{request:?}");
    }
    fake.assert_clean();
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_label_selector_annotation_is_used_as_is(pool: PgPool) {
    let (app, fake) = app_with_clusters(pool).await;
    // A cluster without KServe: its InferenceServices are not asked for again, and not an error.
    fake.without_group("serving.kserve.io");
    app.add(
        "api/catalog-info.yaml",
        &component(
            "api",
            json!({"backstage.io/kubernetes-label-selector": "app=api,tier=backend"}),
        ),
    )
    .await;
    fake.insert(deployment(
        "model-serving",
        "api",
        json!({"app": "api", "tier": "backend"}),
        json!({}),
    ));
    fake.insert(deployment(
        "apps",
        "api-frontend",
        json!({"app": "api", "tier": "frontend"}),
        json!({}),
    ));
    let page = Page::get(&app, "/catalog/default/component/api/kubernetes").await;
    assert_eq!(page.texts("#selector"), vec!["app=api,tier=backend"]);
    let dev = "section.cluster-workloads[data-cluster='dev-1']";
    let names = page.texts(&format!("{dev} tr.workload .name"));
    assert_eq!(names, vec!["api"]);
    assert!(page.select(&format!("{dev} .cluster-error")).is_empty());
    assert!(
        page.select(&format!("{dev} .warnings")).is_empty(),
        "{:?}",
        page.texts(&format!("{dev} .warnings"))
    );
    let selectors: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/deployments"))
        .map(|r| r.query.clone())
        .collect();
    assert!(
        selectors
            .iter()
            .all(|q| q.contains("labelSelector=app%3Dapi%2Ctier%3Dbackend")),
        "{selectors:#?}"
    );
    fake.assert_clean();
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn an_entity_without_annotations_is_told_which_to_add(pool: PgPool) {
    let (app, fake) = app_with_clusters(pool).await;
    app.add("plain/catalog-info.yaml", &component("plain", json!({})))
        .await;
    let page = Page::get(&app, "/catalog/default/component/plain/kubernetes").await;
    let help = page.texts("#no-selector");
    assert_eq!(help.len(), 1);
    assert!(
        help[0].contains("backstage.io/kubernetes-id")
            && help[0].contains("backstage.io/kubernetes-label-selector"),
        "{help:?}"
    );
    assert!(page.select("section.cluster-workloads").is_empty());
    assert!(
        fake.requests().is_empty(),
        "no cluster is asked: {:#?}",
        fake.requests()
    );

    let missing = app
        .get("/catalog/default/component/nobody/kubernetes")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let missing = Html::parse_document(missing.body.as_str().expect("an HTML page"));
    let main = Selector::parse("main").expect("selector");
    let body = missing.select(&main).map(text).collect::<String>();
    assert!(body.contains("nobody"), "{body}");
    fake.assert_clean();
}

const MODEL: &str = r#"apiVersion: atrium.dev/v1alpha1
kind: Model
metadata:
  name: support-assistant
spec:
  type: llm
  owner: group:ml-platform
  lifecycle: production
  format: safetensors
  versions:
    - name: v1
      uri: hf://northwind/support-assistant-v1
    - name: v2
      uri: hf://northwind/support-assistant-v2
      aliases: [champion]
    - name: v3
      uri: hf://northwind/support-assistant-v3
"#;

const SERVE_MODEL: &str = r#"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: serve-model
spec:
  owner: group:ml-platform
  type: model-deployment
  parameters:
    - properties:
        version: {type: string}
        name: {type: string}
  steps:
    - id: deploy
      name: Deploy the model
      action: deploy:model
      input:
        model: model:default/support-assistant
        version: ${{ parameters.version }}
        runtime: vllm
        name: ${{ parameters.name }}
        environment: dev
        namespace: model-serving
        gpus: 1
        waitForHealthy: false
"#;

async fn serve(app: &TestApp, version: &str, name: &str) {
    let created = app
        .post(
            "/api/scaffolder/v2/tasks",
            json!({"templateRef": "template:default/serve-model",
                   "values": {"version": version, "name": name}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert!(app.state.scaffolder.run_one().await.expect("run"));
    let id = created.body["id"].as_str().expect("id");
    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    assert_eq!(task.body["status"], "completed", "{}", task.body);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_model_page_shows_where_each_version_runs(pool: PgPool) {
    let (app, fake) = app_with_clusters(pool).await;
    app.add("models/model.yaml", MODEL).await;
    app.add("serve-model/template.yaml", SERVE_MODEL).await;
    app.entity("template", "serve-model").await;
    // `assistant-a` serves v1, then v2 (only its latest revision runs); `assistant-b` serves v1.
    serve(&app, "v1", "assistant-a").await;
    serve(&app, "v2", "assistant-a").await;
    serve(&app, "v1", "assistant-b").await;
    // The controller rolls `assistant-a` out; `assistant-b` is still starting.
    let live = fake
        .get("apps/v1", "Deployment", "model-serving", "assistant-a")
        .expect("applied");
    fake.set_status(
        "apps/v1",
        "Deployment",
        "model-serving",
        "assistant-a",
        json!({"observedGeneration": live["metadata"]["generation"], "replicas": 1,
               "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}),
    );

    let page = Page::get(&app, "/catalog/default/model/support-assistant/kubernetes").await;
    let version = |v: &str| format!("#versions .model-version[data-version='{v}']");
    let running = |v: &str| page.rows(&format!("{} tr.running-target", version(v)));
    let v1 = running("v1");
    assert_eq!(v1.len(), 1, "{v1:#?}");
    assert_eq!(v1[0][..3], ["dev", "dev-1", "model-serving"]);
    assert!(v1[0][3].starts_with("assistant-b"), "{v1:#?}");
    assert!(v1[0][4].starts_with("Progressing"), "{v1:#?}");
    let v2 = running("v2");
    assert_eq!(v2.len(), 1, "{v2:#?}");
    assert_eq!(v2[0][..3], ["dev", "dev-1", "model-serving"]);
    assert!(v2[0][3].starts_with("assistant-a revision 2"), "{v2:#?}");
    assert_eq!(
        page.texts(&format!("{} .health", version("v2"))),
        vec!["Healthy"]
    );
    assert_eq!(
        page.texts(&format!("{} .health-source", version("v2"))),
        vec!["live"]
    );
    assert!(running("v3").is_empty());
    assert_eq!(
        page.select(&format!("{} .not-running", version("v3")))
            .len(),
        1
    );

    // The Model has no annotation: its workloads are found by the label Atrium deployed it with.
    assert_eq!(
        page.texts("#selector"),
        vec!["backstage.io/kubernetes-id=support-assistant"]
    );
    // Every record, newest first, each linking to its page.
    let records = page.rows("tr.deployment");
    let names: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("assistant-b", "1"),
            ("assistant-a", "2"),
            ("assistant-a", "1")
        ]
    );
    assert!(
        page.select("tr.deployment a.deployment-link")
            .iter()
            .all(|a| a
                .value()
                .attr("href")
                .is_some_and(|h| h.starts_with("/deployments/"))),
    );
    fake.assert_clean();
}
