//! Deployments through golden paths against an in-process fake Kubernetes API server that checks every
//! request (content type, field manager, dry-run flags, never `force`): `kube:apply` with guardrails,
//! dry run and server-side apply; idempotent re-apply; conflicts; `kube:wait` health; rollback; drift;
//! `deploy:model` for both runtimes; the deployments and clusters API and pages.

mod common;

use std::path::PathBuf;

use atrium::deploy::config::{ApprovalConfig, ClusterConfig, DeployConfig, EnvironmentConfig};
use atrium::deploy::policy::PolicyConfig;
use atrium::scaffolder::service::NewTaskRequest;
use axum::http::StatusCode;
use common::TestApp;
use common::kube_fake::KubeFake;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

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

fn dev_policy() -> PolicyConfig {
    PolicyConfig {
        allowed_registries: vec!["ghcr.io/acme".to_owned(), "docker.io/vllm".to_owned()],
        max_replicas: 3,
        max_gpus: 4,
        ..PolicyConfig::default()
    }
}

/// An app whose `dev` environment is the fake cluster (token checked), and whose `prod` cluster
/// cannot be reached.
async fn app_with_cluster(pool: PgPool) -> (TestApp, KubeFake) {
    let fake = KubeFake::start().await;
    fake.require_token(TOKEN);
    let token_dir = tempfile::tempdir().expect("tempdir").keep();
    let token_file = token_dir.join("token");
    std::fs::write(&token_file, TOKEN).expect("token file");
    let url = fake.url();
    let app = TestApp::with_full_config(pool, |config| {
        let mut environments = std::collections::BTreeMap::new();
        environments.insert(
            "dev".to_owned(),
            EnvironmentConfig {
                policy: dev_policy(),
                ..EnvironmentConfig::default()
            },
        );
        environments.insert(
            "staging".to_owned(),
            EnvironmentConfig {
                policy: dev_policy(),
                approval: ApprovalConfig {
                    required: true,
                    timeout_seconds: 600,
                },
            },
        );
        environments.insert(
            "prod".to_owned(),
            EnvironmentConfig {
                policy: dev_policy(),
                ..EnvironmentConfig::default()
            },
        );
        config.deploy = DeployConfig {
            environments,
            clusters: vec![
                cluster("dev-1", "dev", &url, token_file.clone()),
                cluster("staging-1", "staging", &url, token_file.clone()),
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

/// A restricted-compliant Deployment and its Service, as a template skeleton renders them.
const SKELETON: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${{ values.name }}
spec:
  replicas: ${{ values.replicas }}
  selector:
    matchLabels:
      app: ${{ values.name }}
  template:
    metadata:
      labels:
        app: ${{ values.name }}
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: app
          image: ${{ values.image }}
          securityContext:
            allowPrivilegeEscalation: false
            privileged: ${{ values.privileged }}
            capabilities:
              drop: [ALL]
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {cpu: 500m, memory: 256Mi}
---
apiVersion: v1
kind: Service
metadata:
  name: ${{ values.name }}
spec:
  selector:
    app: ${{ values.name }}
  ports:
    - port: 80
      targetPort: 8080
"#;

/// A template that renders the skeleton with the form's values, applies it and (optionally) waits.
async fn add_service_template(app: &TestApp, extra_manifest: &str) {
    app.write("deploy-service/skeleton/k8s/app.yaml", SKELETON);
    if !extra_manifest.is_empty() {
        app.write("deploy-service/skeleton/k8s/extra.yaml", extra_manifest);
    }
    let template = r#"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: deploy-service
  title: Deploy a service
spec:
  owner: group:platform
  type: service
  parameters:
    - title: Service
      required: [name]
      properties:
        name: {type: string}
        image: {type: string, default: "ghcr.io/acme/web:1.4.2"}
        replicas: {type: integer, default: 1}
        namespace: {type: string, default: apps}
        environment: {type: string, default: dev}
        privileged: {type: boolean, default: false}
        wait: {type: boolean, default: false}
  steps:
    - id: render
      name: Render
      action: fetch:template
      input:
        url: ./skeleton
        values:
          name: ${{ parameters.name }}
          image: ${{ parameters.image }}
          replicas: ${{ parameters.replicas }}
          privileged: ${{ parameters.privileged }}
    - id: apply
      name: Apply
      action: kube:apply
      input:
        environment: ${{ parameters.environment }}
        namespace: ${{ parameters.namespace }}
        entityRef: component:default/${{ parameters.name }}
        manifests: [k8s/app.yaml]
    - id: wait
      name: Wait
      if: ${{ parameters.wait }}
      action: kube:wait
      input:
        deploymentId: ${{ steps.apply.output.deploymentId }}
        timeoutSeconds: 30
  output:
    links:
      - title: Deployment
        url: ${{ steps.apply.output.deploymentUrl }}
"#;
    let template = if extra_manifest.is_empty() {
        template.to_owned()
    } else {
        template.replace("[k8s/app.yaml]", "[k8s/app.yaml, k8s/extra.yaml]")
    };
    app.add("deploy-service/template.yaml", &template).await;
    app.entity("template", "deploy-service").await;
}

async fn create(app: &TestApp, template: &str, values: Value) -> Uuid {
    let response = app
        .post(
            "/api/scaffolder/v2/tasks",
            json!({"templateRef": format!("template:default/{template}"), "values": values}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    response.body["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid")
}

/// Runs one task to its end and returns it with its log lines.
async fn run(app: &TestApp, template: &str, values: Value) -> (Value, Vec<String>) {
    let id = create(app, template, values).await;
    assert!(app.state.scaffolder.run_one().await.expect("run"));
    finished(app, id).await
}

async fn finished(app: &TestApp, id: Uuid) -> (Value, Vec<String>) {
    common::task_and_log(app, id).await
}

async fn html(app: &TestApp, uri: &str) -> String {
    let response = app.get(uri).await;
    assert_eq!(response.status, StatusCode::OK, "{uri}: {}", response.body);
    response.body.as_str().expect("an HTML page").to_owned()
}

fn patches(fake: &KubeFake) -> Vec<String> {
    fake.requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| format!("{} {}", r.path, r.query))
        .collect()
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_template_applies_through_a_dry_run_and_records_the_deployment(pool: PgPool) {
    let (app, fake) = app_with_cluster(pool).await;
    add_service_template(&app, "").await;
    let (task, log) = run(&app, "deploy-service", json!({"name": "web"})).await;
    assert_eq!(task["status"], "completed", "{log:#?}");

    let deployment = fake
        .get("apps/v1", "Deployment", "apps", "web")
        .expect("the Deployment exists");
    let labels = &deployment["metadata"]["labels"];
    assert_eq!(labels["backstage.io/kubernetes-id"], "web");
    assert_eq!(labels["atrium.dev/deployment"], "web");
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["backstage.io/kubernetes-id"], "web",
        "pods carry the entity's label too"
    );
    let managers: Vec<&str> = deployment["metadata"]["managedFields"]
        .as_array()
        .expect("managed fields")
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, vec!["atrium"]);
    assert!(fake.get("v1", "Service", "apps", "web").is_some());

    // Every object was dry-run (dryRun=All) before anything was persisted, and nothing was forced.
    let patches = patches(&fake);
    assert_eq!(patches.len(), 4, "{patches:#?}");
    assert!(patches[0].contains("dryRun=All") && patches[1].contains("dryRun=All"));
    assert!(!patches[2].contains("dryRun") && !patches[3].contains("dryRun"));
    assert!(
        patches
            .iter()
            .all(|p| p.contains("fieldManager=atrium") && !p.contains("force"))
    );
    fake.assert_clean();

    let id = task["state"]["steps"]["apply"]["output"]["deploymentId"]
        .as_str()
        .expect("deployment id")
        .to_owned();
    let record = app.get(&format!("/api/deployments/{id}")).await;
    assert_eq!(record.status, StatusCode::OK, "{}", record.body);
    assert_eq!(record.body["revision"], 1);
    assert_eq!(record.body["cluster"], "dev-1");
    assert_eq!(record.body["environment"], "dev");
    assert_eq!(record.body["entityRef"], "component:default/web");
    assert_eq!(record.body["createdBy"], "user:default/admin");
    assert_eq!(record.body["parameters"]["name"], "web");
    assert_eq!(record.body["objects"].as_array().map(Vec::len), Some(2));
    let listed = app
        .get("/api/deployments?entity=component:default/web&environment=dev")
        .await;
    assert_eq!(listed.body["totalItems"], 1, "{}", listed.body);
    let none = app.get("/api/deployments?environment=prod").await;
    assert_eq!(none.body["totalItems"], 0);
    let bad = app.get("/api/deployments?bogus=1").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // The same apply again changes nothing: no new revision, the live objects are untouched.
    let version = deployment["metadata"]["resourceVersion"].clone();
    let (again, log) = run(&app, "deploy-service", json!({"name": "web"})).await;
    assert_eq!(again["status"], "completed", "{log:#?}");
    let output = &again["state"]["steps"]["apply"]["output"];
    assert_eq!(output["unchanged"], true, "{output}");
    assert_eq!(output["deploymentId"], id.as_str());
    assert_eq!(output["revision"], 1);
    let live = fake
        .get("apps/v1", "Deployment", "apps", "web")
        .expect("live");
    assert_eq!(live["metadata"]["resourceVersion"], version);
    assert!(
        log.iter().any(|l| l == "Deployment/apps/web unchanged"),
        "{log:#?}"
    );
    fake.assert_clean();
}

/// Each template below tries something the guardrails refuse; the task fails naming the rule, the
/// object and the field, and the cluster never hears of it.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn guardrails_stop_a_template_before_any_request_reaches_the_cluster(pool: PgPool) {
    let (app, fake) = app_with_cluster(pool).await;
    add_service_template(&app, "").await;
    let cases = [
        (
            json!({"name": "web", "privileged": true}),
            "pss-privileged: Deployment/apps/web spec.template.spec.containers[0].securityContext.privileged",
        ),
        (
            json!({"name": "web", "image": "ghcr.io/acme/web:latest"}),
            "image-tag: Deployment/apps/web spec.template.spec.containers[0].image",
        ),
        (
            json!({"name": "web", "image": "docker.io/evil/miner:1.0"}),
            "image-registry: Deployment/apps/web spec.template.spec.containers[0].image",
        ),
        (
            json!({"name": "web", "namespace": "kube-system"}),
            "namespace: Deployment/kube-system/web",
        ),
        (
            json!({"name": "web", "replicas": 20}),
            "max-replicas: Deployment/apps/web spec.replicas",
        ),
    ];
    for (values, expected) in cases {
        let (task, log) = run(&app, "deploy-service", values.clone()).await;
        assert_eq!(task["status"], "failed", "{values}: {log:#?}");
        let all = log.join("\n");
        assert!(
            all.contains(expected),
            "{values}: expected {expected:?} in {all}"
        );
        assert!(all.contains("nothing was sent to the cluster"), "{all}");
    }
    assert!(
        fake.requests().is_empty(),
        "the cluster saw {:#?}",
        fake.requests()
    );
    assert_eq!(
        app.get("/api/deployments").await.body["totalItems"],
        0,
        "no record for a refused deployment"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_cluster_role_binding_is_refused_before_the_cluster(pool: PgPool) {
    let (app, fake) = app_with_cluster(pool).await;
    let binding = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: ${{ values.name }}-admin\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n  - kind: ServiceAccount\n    name: default\n    namespace: apps\n";
    add_service_template(&app, binding).await;
    let (task, log) = run(&app, "deploy-service", json!({"name": "web"})).await;
    assert_eq!(task["status"], "failed", "{log:#?}");
    assert!(
        log.join("\n")
            .contains("cluster-scoped: ClusterRoleBinding/web-admin"),
        "{log:#?}"
    );
    assert!(fake.requests().is_empty(), "{:#?}", fake.requests());
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_field_owned_by_another_manager_is_a_conflict_never_forced(pool: PgPool) {
    let (app, fake) = app_with_cluster(pool).await;
    add_service_template(&app, "").await;
    let (task, _) = run(&app, "deploy-service", json!({"name": "web"})).await;
    assert_eq!(task["status"], "completed");
    // Someone scales it by hand (kubectl edit): `.spec.replicas` now belongs to them.
    let mut live = fake
        .get("apps/v1", "Deployment", "apps", "web")
        .expect("live");
    live["spec"]["replicas"] = json!(3);
    fake.update_as("kubectl-edit", live);

    let (task, log) = run(
        &app,
        "deploy-service",
        json!({"name": "web", "replicas": 2}),
    )
    .await;
    assert_eq!(task["status"], "failed", "{log:#?}");
    let all = log.join("\n");
    assert!(
        all.contains("conflict with field manager \"kubectl-edit\" on .spec.replicas"),
        "{all}"
    );
    let live = fake
        .get("apps/v1", "Deployment", "apps", "web")
        .expect("live");
    assert_eq!(
        live["spec"]["replicas"], 3,
        "the other manager's value stays"
    );
    fake.assert_clean();

    // Drift: the live object left revision 1, field and manager named.
    let id = app.get("/api/deployments").await.body["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let drift = app.get(&format!("/api/deployments/{id}/drift")).await;
    assert_eq!(drift.status, StatusCode::OK, "{}", drift.body);
    assert_eq!(drift.body["drifted"], true);
    assert_eq!(drift.body["drift"][0]["object"], "Deployment/apps/web");
    assert_eq!(drift.body["drift"][0]["field"], ".spec.replicas");
    assert!(
        drift.body["drift"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("kubectl-edit")),
        "{}",
        drift.body
    );
    let page = html(&app, &format!("/deployments/{id}?drift=1")).await;
    assert!(page.contains(".spec.replicas"), "{page}");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn rollback_re_applies_an_earlier_revision_as_a_new_one(pool: PgPool) {
    let (app, fake) = app_with_cluster(pool).await;
    add_service_template(&app, "").await;
    let (first, _) = run(
        &app,
        "deploy-service",
        json!({"name": "web", "image": "ghcr.io/acme/web:1.0.0"}),
    )
    .await;
    let (second, _) = run(
        &app,
        "deploy-service",
        json!({"name": "web", "image": "ghcr.io/acme/web:2.0.0"}),
    )
    .await;
    assert_eq!(second["state"]["steps"]["apply"]["output"]["revision"], 2);
    let image = |fake: &KubeFake| {
        fake.get("apps/v1", "Deployment", "apps", "web")
            .expect("live")["spec"]["template"]["spec"]["containers"][0]["image"]
            .clone()
    };
    assert_eq!(image(&fake), "ghcr.io/acme/web:2.0.0");
    let first_id = first["state"]["steps"]["apply"]["output"]["deploymentId"]
        .as_str()
        .expect("id");
    let rolled = app
        .post(&format!("/api/deployments/{first_id}/rollback"), json!({}))
        .await;
    assert_eq!(rolled.status, StatusCode::CREATED, "{}", rolled.body);
    assert_eq!(rolled.body["revision"], 3);
    assert_eq!(rolled.body["rollbackOf"], first_id);
    assert_eq!(image(&fake), "ghcr.io/acme/web:1.0.0");
    let no_drift = app
        .get(&format!(
            "/api/deployments/{}/drift",
            rolled.body["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(no_drift.body["drifted"], false, "{}", no_drift.body);
    let missing = app
        .post(
            &format!("/api/deployments/{}/rollback", Uuid::new_v4()),
            json!({}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    fake.assert_clean();
}

/// `kube:wait` follows the health Argo CD would show: a rollout that completes is Healthy; a pod in
/// CrashLoopBackOff makes the Deployment Degraded and fails the task.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn kube_wait_ends_healthy_or_degraded(pool: PgPool) {
    let (app, fake) = app_with_cluster(pool).await;
    add_service_template(&app, "").await;

    for (name, crash) in [("good", false), ("crashy", true)] {
        let id = create(&app, "deploy-service", json!({"name": name, "wait": true})).await;
        let scaffolder = app.state.scaffolder.clone();
        let running = tokio::spawn(async move { scaffolder.run_one().await });
        // The step logs the first health it sees; then the controller (this test) moves on.
        wait_for_log(&app, id, &format!("{name}: Progressing")).await;
        let live = fake
            .get("apps/v1", "Deployment", "apps", name)
            .expect("applied");
        let generation = live["metadata"]["generation"].clone();
        if crash {
            fake.put_pod(json!({
                "metadata": {"name": format!("{name}-5d4f8c7b9-q8m2z"), "namespace": "apps", "labels": {"app": name}},
                "spec": {"restartPolicy": "Always", "containers": [{"name": "app", "image": "ghcr.io/acme/web:1.4.2"}]},
                "status": {"phase": "Running", "containerStatuses": [{"name": "app", "ready": false, "restartCount": 5,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}}}]}
            }));
        } else {
            fake.set_status(
                "apps/v1",
                "Deployment",
                "apps",
                name,
                json!({
                    "observedGeneration": generation, "replicas": 1, "updatedReplicas": 1,
                    "readyReplicas": 1, "availableReplicas": 1,
                }),
            );
        }
        running.await.expect("join").expect("run");
        let (task, log) = finished(&app, id).await;
        if crash {
            assert_eq!(task["status"], "failed", "{log:#?}");
            let all = log.join("\n");
            assert!(
                all.contains("is Degraded") && all.contains("CrashLoopBackOff"),
                "{all}"
            );
        } else {
            assert_eq!(task["status"], "completed", "{log:#?}");
            assert_eq!(
                task["state"]["steps"]["wait"]["output"]["health"],
                "Healthy"
            );
        }
        let record = app.get(&format!("/api/deployments?name={name}")).await;
        let record = &record.body["items"][0];
        let expected = if crash { "Degraded" } else { "Healthy" };
        assert_eq!(record["health"]["status"], expected, "{record}");
        let one = app
            .get(&format!(
                "/api/deployments/{}",
                record["id"].as_str().expect("id")
            ))
            .await;
        let history: Vec<&str> = one.body["healthHistory"]
            .as_array()
            .expect("history")
            .iter()
            .filter_map(|h| h["status"].as_str())
            .collect();
        assert_eq!(history, vec!["Progressing", expected]);
    }
    fake.assert_clean();
}

async fn wait_for_log(app: &TestApp, id: Uuid, prefix: &str) {
    let mut after = 0;
    loop {
        let batch = app
            .get(&format!(
                "/api/scaffolder/v2/tasks/{id}/events?after={after}"
            ))
            .await;
        for event in batch.body.as_array().expect("events") {
            after = event["id"].as_i64().expect("id");
            let message = event["body"]["message"].as_str().unwrap_or_default();
            if message.starts_with(prefix) {
                return;
            }
            assert_ne!(
                event["type"], "completion",
                "the task ended before {prefix:?}: {message}"
            );
        }
    }
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn an_unreachable_cluster_fails_the_step_and_a_dry_run_still_shows_the_plan(pool: PgPool) {
    let (app, fake) = app_with_cluster(pool).await;
    add_service_template(&app, "").await;
    let (task, log) = run(
        &app,
        "deploy-service",
        json!({"name": "web", "environment": "prod"}),
    )
    .await;
    assert_eq!(task["status"], "failed", "{log:#?}");
    let all = log.join("\n");
    assert!(all.contains("cluster `prod-1` is unreachable"), "{all}");

    // The dry run renders, runs the guardrails and shows the labelled objects.
    let template = app.entity("template", "deploy-service").await;
    let files = {
        use base64::Engine as _;
        json!([{"path": "skeleton/k8s/app.yaml",
            "base64Content": base64::engine::general_purpose::STANDARD.encode(SKELETON)}])
    };
    let dry = app
        .post(
            "/api/scaffolder/v2/dry-run",
            json!({"template": template, "values": {"name": "web", "environment": "prod"}, "directoryContents": files}),
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    let messages: Vec<&str> = dry.body["log"]
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|e| e["body"]["message"].as_str())
        .collect();
    let all = messages.join("\n");
    assert!(all.contains("the guardrails of `prod` passed"), "{all}");
    assert!(all.contains("atrium.dev/deployment: web"), "{all}");
    // A dry run against the reachable cluster asks it with dryRun=All only.
    let dry = app
        .post(
            "/api/scaffolder/v2/dry-run",
            json!({"template": template, "values": {"name": "web"}, "directoryContents": files}),
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    let patches = patches(&fake);
    assert!(
        !patches.is_empty() && patches.iter().all(|p| p.contains("dryRun=All")),
        "{patches:#?}"
    );
    assert!(fake.get("apps/v1", "Deployment", "apps", "web").is_none());
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
    - name: v2
      uri: hf://northwind/support-assistant-v2
      aliases: [champion]
"#;

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn deploy_model_serves_a_catalog_model_with_vllm_or_kserve(pool: PgPool) {
    let (app, fake) = app_with_cluster(pool).await;
    app.add("models/model.yaml", MODEL).await;
    app.entity("model", "support-assistant").await;
    let template = r#"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: serve-model
spec:
  owner: group:ml-platform
  type: model-deployment
  parameters:
    - properties:
        runtime: {type: string}
        name: {type: string}
  steps:
    - id: deploy
      name: Deploy the model
      action: deploy:model
      input:
        model: model:default/support-assistant
        version: champion
        runtime: ${{ parameters.runtime }}
        name: ${{ parameters.name }}
        environment: dev
        namespace: model-serving
        gpus: 1
        waitForHealthy: false
"#;
    app.add("serve-model/template.yaml", template).await;
    app.entity("template", "serve-model").await;

    let (task, log) = run(
        &app,
        "serve-model",
        json!({"runtime": "vllm", "name": "assistant-vllm"}),
    )
    .await;
    assert_eq!(task["status"], "completed", "{log:#?}");
    let deployment = fake
        .get("apps/v1", "Deployment", "model-serving", "assistant-vllm")
        .expect("vLLM Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "vllm/vllm-openai:v0.11.0");
    assert_eq!(container["args"][0], "northwind/support-assistant-v2");
    assert_eq!(container["resources"]["limits"]["nvidia.com/gpu"], "1");
    assert!(
        fake.get("v1", "Service", "model-serving", "assistant-vllm")
            .is_some()
    );
    assert_eq!(
        deployment["metadata"]["labels"]["backstage.io/kubernetes-id"],
        "support-assistant"
    );
    let output = &task["state"]["steps"]["deploy"]["output"];
    assert_eq!(output["version"], "v2");

    let (task, log) = run(
        &app,
        "serve-model",
        json!({"runtime": "kserve", "name": "assistant"}),
    )
    .await;
    assert_eq!(task["status"], "completed", "{log:#?}");
    let service = fake
        .get(
            "serving.kserve.io/v1beta1",
            "InferenceService",
            "model-serving",
            "assistant",
        )
        .expect("InferenceService");
    assert_eq!(
        service["spec"]["predictor"]["model"]["storageUri"],
        "hf://northwind/support-assistant-v2"
    );
    let listed = app
        .get("/api/deployments?entity=model:default/support-assistant")
        .await;
    assert_eq!(listed.body["totalItems"], 2, "{}", listed.body);
    fake.assert_clean();
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn clusters_show_reachability_in_the_api_and_the_page(pool: PgPool) {
    let (app, _fake) = app_with_cluster(pool).await;
    let clusters = app.get("/api/clusters").await;
    assert_eq!(clusters.status, StatusCode::OK);
    let items = clusters.body["items"].as_array().expect("items");
    assert_eq!(items[0]["name"], "dev-1");
    assert_eq!(items[0]["reachable"], true);
    assert_eq!(items[0]["version"], "v1.33.0");
    assert_eq!(items[0]["namespaces"], json!(["apps", "model-serving"]));
    assert_eq!(items[2]["name"], "prod-1");
    assert_eq!(items[2]["reachable"], false);
    assert!(
        items[2]["error"]
            .as_str()
            .is_some_and(|e| e.contains("prod-1")),
        "{}",
        clusters.body
    );
    let page = html(&app, "/clusters").await;
    assert!(
        page.contains("dev-1") && page.contains("yes, v1.33.0"),
        "{page}"
    );
    assert!(page.contains("prod-1"));
}

/// The GitOps path: `kube:check` labels and checks the rendered manifests as `kube:apply` would, and
/// rewrites them so that what is committed is what passed; no cluster is asked.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn kube_check_guards_manifests_bound_for_a_gitops_repository(pool: PgPool) {
    let (app, fake) = app_with_cluster(pool).await;
    app.write("gitops/skeleton/k8s/app.yaml", SKELETON);
    app.add(
        "gitops/template.yaml",
        r#"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: gitops
spec:
  owner: group:platform
  type: service
  parameters:
    - properties:
        image: {type: string}
  steps:
    - id: render
      action: fetch:template
      input:
        url: ./skeleton
        values: {name: web, image: "${{ parameters.image }}", replicas: 2, privileged: false}
    - id: check
      action: kube:check
      input: {environment: dev, namespace: apps, manifests: [k8s/app.yaml]}
"#,
    )
    .await;
    app.entity("template", "gitops").await;
    let template = app.entity("template", "gitops").await;
    let files = {
        use base64::Engine as _;
        json!([{"path": "skeleton/k8s/app.yaml",
            "base64Content": base64::engine::general_purpose::STANDARD.encode(SKELETON)}])
    };
    let dry = app
        .post(
            "/api/scaffolder/v2/dry-run",
            json!({"template": template, "values": {"image": "ghcr.io/acme/web:1.0.0"}, "directoryContents": files}),
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    let written = dry.body["directoryContents"]
        .as_array()
        .expect("contents")
        .iter()
        .find(|f| f["path"] == "k8s/app.yaml")
        .expect("the manifest");
    let text = {
        use base64::Engine as _;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(written["base64Content"].as_str().expect("base64"))
                .expect("decodes"),
        )
        .expect("utf-8")
    };
    assert!(text.contains("atrium.dev/deployment: web"), "{text}");
    assert!(text.contains("namespace: apps"), "{text}");
    let steps = &dry.body["steps"];
    assert!(steps.is_array(), "{}", dry.body);

    let bad = app
        .post(
            "/api/scaffolder/v2/dry-run",
            json!({"template": template, "values": {"image": "ghcr.io/acme/web:latest"}, "directoryContents": files}),
        )
        .await;
    let log: Vec<&str> = bad.body["log"]
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|e| e["body"]["message"].as_str())
        .collect();
    assert!(
        log.join("\n").contains("image-tag: Deployment/apps/web"),
        "{log:#?}"
    );
    assert!(fake.requests().is_empty(), "{:#?}", fake.requests());
}

const PEOPLE: &str = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: platform\nspec:\n  type: team\n  children: []\n---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: ml\nspec:\n  type: team\n  children: []\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: guest\nspec:\n  memberOf: [platform]\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: alice\nspec:\n  memberOf: [platform]\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: gateway\nspec:\n  type: service\n  lifecycle: production\n  owner: group:ml\n";

/// Creates a task as `user` (a person with a person's scopes) and runs it in the background.
async fn start_as(
    app: &TestApp,
    user: &str,
    values: Value,
) -> (Uuid, tokio::task::JoinHandle<anyhow::Result<bool>>) {
    start_with(app, user, None, values).await
}

/// [`start_as`], for `agent` (acting for `user`, a person or a group) when given.
async fn start_with(
    app: &TestApp,
    user: &str,
    agent: Option<&str>,
    values: Value,
) -> (Uuid, tokio::task::JoinHandle<anyhow::Result<bool>>) {
    let id = app
        .state
        .scaffolder
        .create_task(NewTaskRequest {
            template_ref: "template:default/deploy-service",
            values: &values,
            secrets: None,
            idempotency_key: None,
            caller: &atrium::auth::Caller {
                user_ref: user.to_owned(),
                kind: if agent.is_some() {
                    atrium::auth::ActorKind::Agent
                } else {
                    atrium::auth::ActorKind::User
                },
                token_id: None,
                agent: agent.map(str::to_owned),
                scopes: atrium::auth::Scopes::person(false),
                groups: Vec::new(),
                request_id: None,
            },
        })
        .await
        .unwrap_or_else(|e| panic!("create: {e:?}"));
    let scaffolder = app.state.scaffolder.clone();
    (id, tokio::spawn(async move { scaffolder.run_one().await }))
}

async fn pending_approval(app: &TestApp, task: Uuid) -> Value {
    wait_for_log(app, task, "Waiting for approval").await;
    let pending = app.get("/api/deployments/approvals?status=pending").await;
    pending.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|a| a["taskId"] == task.to_string())
        .cloned()
        .unwrap_or_else(|| panic!("no approval for {task}: {}", pending.body))
}

fn decide(decision: &str, comment: &str) -> Value {
    json!({"decision": decision, "comment": comment})
}

/// A POST from `user`'s browser session: only a person decides on an approval, never a token.
async fn post_as_person(app: &TestApp, user: &str, uri: &str, body: Value) -> common::Response {
    use axum::body::Body;
    use axum::http::{Method, Request, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let session = app.state.auth.sign_in(user, None).await.expect("session");
    let request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(
            header::COOKIE,
            format!("{}={session}", atrium::auth::middleware::SESSION_COOKIE),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = app.router.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    common::Response {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// `staging` requires an approval: the step waits after the cluster's dry run, showing what would be
/// applied; only a member of the owning group other than the requester decides; a denial or the time
/// running out fails the task, and nothing but dry runs reached the cluster.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn an_environment_that_requires_approval_waits_for_another_member(pool: PgPool) {
    let (app, fake) = app_with_cluster(pool).await;
    app.add("people.yaml", PEOPLE).await;
    app.entity("user", "guest").await;
    add_service_template(&app, "").await;

    // Alice asks; the guest (a member of group:platform, the template's owner) approves.
    let (task, running) = start_as(
        &app,
        "user:default/alice",
        json!({"name": "web", "environment": "staging"}),
    )
    .await;
    let approval = pending_approval(&app, task).await;
    assert_eq!(approval["requestedBy"], "user:default/alice");
    assert_eq!(approval["approverGroup"], "group:default/platform");
    assert_eq!(approval["planned"][0]["kind"], "Deployment");
    assert!(
        patches(&fake).iter().all(|p| p.contains("dryRun=All")),
        "nothing but dry runs before the approval"
    );
    let page = html(
        &app,
        &format!(
            "/deployments/approvals/{}",
            approval["id"].as_str().expect("id")
        ),
    )
    .await;
    assert!(page.contains("atrium.dev/deployment: web"), "{page}");
    let url = format!(
        "/api/deployments/approvals/{}",
        approval["id"].as_str().expect("id")
    );
    let bad = app.post(&url, json!({"decision": "maybe"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let token = app.post(&url, decide("approve", "looks right")).await;
    assert_eq!(token.status, StatusCode::FORBIDDEN, "tokens do not decide");
    let approved = post_as_person(
        &app,
        "user:default/guest",
        &url,
        decide("approve", "looks right"),
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["decidedBy"], "user:default/guest");
    running.await.expect("join").expect("run");
    let (done, log) = finished(&app, task).await;
    assert_eq!(done["status"], "completed", "{log:#?}");
    assert!(
        log.iter()
            .any(|l| l == "Approved by user:default/guest: looks right"),
        "{log:#?}"
    );
    assert!(fake.get("apps/v1", "Deployment", "apps", "web").is_some());
    let record = app.get("/api/deployments?environment=staging").await;
    assert_eq!(record.body["items"][0]["approvalId"], approval["id"]);
    let again = app.post(&url, decide("deny", "")).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "decided once only");

    // Alice asks again; the guest denies: the task fails naming who and why; nothing applied.
    let applied_before = patches(&fake)
        .iter()
        .filter(|p| !p.contains("dryRun"))
        .count();
    let (task, running) = start_as(
        &app,
        "user:default/alice",
        json!({"name": "web", "environment": "staging", "replicas": 2}),
    )
    .await;
    let approval = pending_approval(&app, task).await;
    let url = format!(
        "/api/deployments/approvals/{}",
        approval["id"].as_str().expect("id")
    );
    let denied = post_as_person(
        &app,
        "user:default/guest",
        &url,
        decide("deny", "not during the freeze"),
    )
    .await;
    assert_eq!(denied.status, StatusCode::OK, "{}", denied.body);
    running.await.expect("join").expect("run");
    let (done, log) = finished(&app, task).await;
    assert_eq!(done["status"], "failed");
    assert!(
        log.join("\n")
            .contains("denied by user:default/guest: not during the freeze"),
        "{log:#?}"
    );
    assert_eq!(
        patches(&fake)
            .iter()
            .filter(|p| !p.contains("dryRun"))
            .count(),
        applied_before
    );

    // The requester may not approve their own deployment; when nobody decides in time, it fails.
    let (task, running) = start_as(
        &app,
        "user:default/guest",
        json!({"name": "web", "environment": "staging", "replicas": 3}),
    )
    .await;
    let approval = pending_approval(&app, task).await;
    let url = format!(
        "/api/deployments/approvals/{}",
        approval["id"].as_str().expect("id")
    );
    let own = post_as_person(&app, "user:default/guest", &url, decide("approve", "")).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.body);
    assert!(
        own.body.to_string().contains("requested this deployment"),
        "{}",
        own.body
    );
    sqlx::query("update deployment_approval set expires_at = now() where status = 'pending'")
        .execute(&app.state.db)
        .await
        .expect("expire");
    running.await.expect("join").expect("run");
    let (done, log) = finished(&app, task).await;
    assert_eq!(done["status"], "failed");
    assert!(
        log.join("\n").contains("was not approved within 600 s"),
        "{log:#?}"
    );

    // A group's agent asks: no member of that group decides (the token's maker is one of them).
    let (task, running) = start_with(
        &app,
        "group:default/platform",
        Some("release-bot"),
        json!({"name": "web", "environment": "staging", "replicas": 2}),
    )
    .await;
    let approval = pending_approval(&app, task).await;
    assert_eq!(approval["requestedBy"], "group:default/platform");
    let url = format!(
        "/api/deployments/approvals/{}",
        approval["id"].as_str().expect("id")
    );
    let teammate = post_as_person(&app, "user:default/alice", &url, decide("approve", "")).await;
    assert_eq!(teammate.status, StatusCode::FORBIDDEN, "{}", teammate.body);
    assert!(
        teammate
            .body
            .to_string()
            .contains("whose agent requested this deployment"),
        "{}",
        teammate.body
    );
    sqlx::query("update deployment_approval set expires_at = now() where status = 'pending'")
        .execute(&app.state.db)
        .await
        .expect("expire");
    running.await.expect("join").expect("run");
    assert_eq!(finished(&app, task).await.0["status"], "failed");

    // An entity owned by another group: the guest is not a member, so may not decide.
    let (task, running) = start_as(
        &app,
        "user:default/alice",
        json!({"name": "gateway", "environment": "staging"}),
    )
    .await;
    let approval = pending_approval(&app, task).await;
    assert_eq!(approval["approverGroup"], "group:default/ml");
    let url = format!(
        "/api/deployments/approvals/{}",
        approval["id"].as_str().expect("id")
    );
    let outsider = post_as_person(&app, "user:default/guest", &url, decide("approve", "")).await;
    assert_eq!(outsider.status, StatusCode::FORBIDDEN, "{}", outsider.body);
    assert!(
        outsider
            .body
            .to_string()
            .contains("is not a member of group:default/ml"),
        "{}",
        outsider.body
    );
    sqlx::query("update deployment_approval set expires_at = now() where status = 'pending'")
        .execute(&app.state.db)
        .await
        .expect("expire");
    running.await.expect("join").expect("run");
    fake.assert_clean();
}
