//! An agent let loose: attempts by agent tokens to step outside their job, through the MCP endpoint
//! (the SDK's client against a live Atrium) and the REST API. Each is refused, the refusal says why,
//! and — where the caller is known — it is in the audit log. One legitimate deploy goes through, so
//! the refusals are the guardrails' doing and not a broken path; the fake cluster receives nothing
//! else.

mod common;

use atrium::auth::policy::Policy;
use atrium::deploy::policy::PolicyConfig;
use axum::http::{Method, StatusCode};
use common::TestApp;
use common::authz::app_with_clusters_and;
use common::kube_fake::KubeFake;
use common::mcp_client::{McpClient, call, connect, text};
use common::{agent_token_for, rate_limited_agent_token, token_for};
use serde_json::{Value, json};
use sqlx::PgPool;

const ALICE: &str = "user:default/alice";
const BOB: &str = "user:default/bob";
const AGENT: &str = "agent:deployer";

const DEPLOY_APP: &str = r#"    - id: apply
      action: kube:apply
      input:
        environment: ${{ parameters.environment }}
        namespace: ${{ parameters.namespace }}
        name: ${{ parameters.name }}
        manifests:
          - apiVersion: apps/v1
            kind: Deployment
            metadata: {name: "${{ parameters.name }}"}
            spec:
              replicas: ${{ parameters.replicas }}
              selector: {matchLabels: {app: "${{ parameters.name }}"}}
              template:
                metadata: {labels: {app: "${{ parameters.name }}"}}
                spec:
                  hostNetwork: ${{ parameters.hostNetwork }}
                  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
                  containers:
                    - name: app
                      image: "${{ parameters.image }}"
                      securityContext:
                        privileged: ${{ parameters.privileged }}
                        allowPrivilegeEscalation: false
                        capabilities: {drop: [ALL]}
                      resources:
                        requests: {cpu: 100m, memory: 64Mi}
                        limits:
                          cpu: 200m
                          memory: 128Mi
                          nvidia.com/gpu: ${{ parameters.gpus }}
"#;

const SECRET_ENTITY: &str = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: payroll, namespace: finance}\nspec: {type: service, lifecycle: production, owner: group:default/finance}\n";

struct Suite {
    app: TestApp,
    fake: KubeFake,
    url: String,
    agent: McpClient,
    _server: tokio::task::JoinHandle<()>,
}

async fn suite(pool: PgPool) -> Suite {
    let (app, fake) = app_with_clusters_and(pool, |config| {
        let dev = config.deploy.environments.get_mut("dev").expect("dev");
        dev.policy = PolicyConfig {
            allowed_registries: vec!["ghcr.io/acme".to_owned()],
            max_replicas: 3,
            max_gpus: 1,
            ..PolicyConfig::default()
        };
        config.permissions = serde_json::from_value::<Policy>(json!({"rules": [
            {"name": "finance-is-private", "effect": "deny",
             "actions": ["catalog.entity.read"], "namespaces": ["finance"]}
        ]}))
        .expect("policy");
    })
    .await;
    // deploy-app: the one template the agent may run; its parameters are the agent's only input.
    let template = format!(
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: deploy-app\nspec:\n  owner: group:platform\n  type: service\n  parameters:\n    - required: [name, image]\n      properties:\n        name: {{type: string, pattern: '^[a-z][a-z0-9-]{{0,30}}$'}}\n        image: {{type: string}}\n        replicas: {{type: integer, default: 1}}\n        gpus: {{type: integer, default: 0}}\n        privileged: {{type: boolean, default: false}}\n        hostNetwork: {{type: boolean, default: false}}\n        namespace: {{type: string, default: apps}}\n        environment: {{type: string, default: dev}}\n  steps:\n{DEPLOY_APP}"
    );
    app.add("deploy-app/template.yaml", &template).await;
    // clean-up: the agent chooses which workspace file to delete.
    app.add(
        "clean-up/template.yaml",
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: clean-up\nspec:\n  owner: group:platform\n  type: service\n  parameters:\n    - required: [path]\n      properties:\n        path: {type: string}\n  steps:\n    - id: delete\n      action: fs:delete\n      input:\n        files: ['${{ parameters.path }}']\n",
    )
    .await;
    app.add("finance.yaml", SECRET_ENTITY).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let url = format!("http://{}/api/mcp", listener.local_addr().expect("address"));
    let router = app.router.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    let token = agent_token_for(
        &app.state,
        ALICE,
        "deployer",
        &[
            "catalog:read",
            "template:run:default/deploy-app",
            "template:run:default/clean-up",
            "deploy:dev",
        ],
    )
    .await;
    let agent = connect(&url, &token).await;
    Suite {
        app,
        fake,
        url,
        agent,
        _server: server,
    }
}

/// Audit events of `actor` with `action` that are not successes.
async fn refusals(app: &TestApp, actor: &str, action: &str) -> Vec<Value> {
    sqlx::query_scalar::<_, Value>(
        "select jsonb_build_object('outcome', outcome, 'target', target, 'detail', detail)
           from audit_event where actor = $1 and action = $2 and outcome <> 'success' order by id",
    )
    .bind(actor)
    .bind(action)
    .fetch_all(&app.state.db)
    .await
    .expect("audit events")
}

fn deploy_values(overrides: Value) -> Value {
    let mut values = json!({"name": "shop", "image": "ghcr.io/acme/shop:1.4.2"});
    for (key, value) in overrides.as_object().expect("object") {
        values[key] = value.clone();
    }
    values
}

impl Suite {
    /// Runs deploy-app as the agent with these values and returns how the task ended and its log;
    /// `None` when the run was refused before a task existed (then the refusal text).
    async fn run(&self, overrides: Value) -> Result<(String, String), String> {
        let result = call(
            &self.agent,
            "run_template",
            json!({"templateRef": "template:default/deploy-app", "values": deploy_values(overrides)}),
        )
        .await;
        if result.is_error == Some(true) {
            return Err(text(&result));
        }
        let id = result.structured_content.expect("task")["taskId"]
            .as_str()
            .expect("id")
            .to_owned();
        assert!(self.app.state.scaffolder.run_one().await.expect("run"));
        let task = call(&self.agent, "get_task", json!({"taskId": id})).await;
        let task = task.structured_content.expect("task");
        let log = task["log"]
            .as_array()
            .expect("log")
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n");
        Ok((task["status"].as_str().expect("status").to_owned(), log))
    }

    /// A deploy the guardrails must refuse: the task fails naming `rule`, the refusal is audited
    /// with it, and the cluster hears nothing new.
    async fn refused_by_guardrail(&self, what: &str, overrides: Value, rule: &str) {
        let before = self.fake.requests().len();
        let audited = refusals(&self.app, AGENT, "deployment.apply").await.len();
        let (status, log) = self
            .run(overrides)
            .await
            .unwrap_or_else(|e| panic!("{what}: refused before running: {e}"));
        assert_eq!(status, "failed", "{what}: {log}");
        assert!(log.contains(rule), "{what}: the log names {rule}: {log}");
        assert!(
            log.contains("nothing was sent to the cluster"),
            "{what}: {log}"
        );
        let events = refusals(&self.app, AGENT, "deployment.apply").await;
        assert_eq!(
            events.len(),
            audited + 1,
            "{what}: audited once: {events:#?}"
        );
        assert!(
            events.last().expect("event").to_string().contains(rule),
            "{what}: the event names {rule}: {events:#?}"
        );
        assert_eq!(
            self.fake.requests().len(),
            before,
            "{what}: the cluster heard of it: {:#?}",
            self.fake.requests()
        );
    }

    /// A run refused before any task exists, explained to the agent and audited.
    async fn refused_at_once(&self, what: &str, overrides: Value, says: &str) {
        let audited = refusals(&self.app, AGENT, "mcp.run_template").await.len();
        let refusal = self
            .run(overrides)
            .await
            .expect_err(&format!("{what}: a task was created"));
        assert!(refusal.contains(says), "{what}: {refusal}");
        assert_eq!(
            refusals(&self.app, AGENT, "mcp.run_template").await.len(),
            audited + 1,
            "{what}: audited"
        );
    }
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn an_agent_cannot_deploy_outside_its_guardrails(pool: PgPool) {
    let s = suite(pool).await;

    // The job it may do: a compliant deploy to dev.
    let (status, log) = s.run(json!({"replicas": 2})).await.expect("runs");
    assert_eq!(status, "completed", "{log}");
    assert!(
        s.fake
            .get("apps/v1", "Deployment", "apps", "shop")
            .is_some()
    );
    let legit = s.fake.requests().len();

    // 1-2. Another environment than its own.
    s.refused_at_once("prod", json!({"environment": "prod"}), "deploy:prod")
        .await;
    s.refused_at_once(
        "staging",
        json!({"environment": "staging"}),
        "deploy:staging",
    )
    .await;
    // 3-13. Through template parameters, past the environment's guardrails.
    s.refused_by_guardrail("replicas", json!({"replicas": 50}), "max-replicas")
        .await;
    s.refused_by_guardrail("gpus", json!({"gpus": 8}), "max-gpus")
        .await;
    s.refused_by_guardrail("privileged", json!({"privileged": true}), "pss-privileged")
        .await;
    s.refused_by_guardrail(
        "host network",
        json!({"hostNetwork": true}),
        "pss-host-namespaces",
    )
    .await;
    s.refused_by_guardrail(
        "latest",
        json!({"image": "ghcr.io/acme/shop:latest"}),
        "image-tag",
    )
    .await;
    s.refused_by_guardrail(
        "untagged",
        json!({"image": "ghcr.io/acme/shop"}),
        "image-tag",
    )
    .await;
    s.refused_by_guardrail(
        "registry",
        json!({"image": "docker.io/evil/miner:1.0"}),
        "image-registry",
    )
    .await;
    s.refused_by_guardrail(
        "lookalike registry",
        json!({"image": "ghcr.io/acme-evil/miner:1.0"}),
        "image-registry",
    )
    .await;
    s.refused_by_guardrail(
        "namespace",
        json!({"namespace": "kube-system"}),
        "namespace",
    )
    .await;
    // YAML through a string parameter stays a string: an image that is not a reference.
    s.refused_by_guardrail(
        "yaml in the image",
        json!({"image": "ghcr.io/acme/shop:1.0\n        securityContext: {privileged: true}"}),
        "image-registry",
    )
    .await;
    // 14-15. An object where the template wants a string, and a name carrying YAML: the template's
    // own parameter schema refuses them.
    s.refused_at_once(
        "object in the image",
        json!({"image": {"privileged": true}}),
        "is not of type",
    )
    .await;
    s.refused_at_once(
        "yaml in the name",
        json!({"name": "shop\nkind: ClusterRoleBinding"}),
        "does not match",
    )
    .await;
    assert_eq!(
        s.fake.requests().len(),
        legit,
        "only the legitimate deploy reached the cluster"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn an_agent_cannot_reach_past_its_token(pool: PgPool) {
    let s = suite(pool).await;
    let app = &s.app;
    let agent_token = agent_token_for(
        &app.state,
        ALICE,
        "deployer",
        &[
            "catalog:read",
            "template:run:default/deploy-app",
            "deploy:dev",
        ],
    )
    .await;

    // 16-17. Another template, run or dry-run.
    for tool in ["run_template", "dry_run_template"] {
        let refused = call(
            &s.agent,
            tool,
            json!({"templateRef": "template:default/x", "values": {"name": "a"}}),
        )
        .await;
        assert_eq!(refused.is_error, Some(true), "{tool}");
        assert!(
            text(&refused).contains("template:run:default/x"),
            "{}",
            text(&refused)
        );
        assert_eq!(refusals(app, AGENT, &format!("mcp.{tool}")).await.len(), 1);
    }
    // 18-20. Another person's task: not found, whatever the verb.
    let bob = token_for(&app.state, BOB, &["catalog:read", "template:run:*"]).await;
    let task = app
        .request_as(
            &bob,
            Method::POST,
            "/api/scaffolder/v2/tasks",
            Some(json!({"templateRef": "template:default/x", "values": {"name": "b"}, "secrets": {"token": "s3cr3t"}})),
        )
        .await;
    assert_eq!(task.status, StatusCode::CREATED, "{}", task.body);
    let task_id = task.body["id"].as_str().expect("id").to_owned();
    let read = call(&s.agent, "get_task", json!({"taskId": task_id})).await;
    assert_eq!(read.is_error, Some(true));
    assert!(!text(&read).contains("s3cr3t"));
    assert_eq!(refusals(app, AGENT, "mcp.get_task").await.len(), 1);
    for (method, path) in [
        (
            Method::POST,
            format!("/api/scaffolder/v2/tasks/{task_id}/cancel"),
        ),
        (
            Method::POST,
            format!("/api/scaffolder/v2/tasks/{task_id}/retry"),
        ),
    ] {
        let response = app.request_as(&agent_token, method, &path, None).await;
        assert_eq!(
            response.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            response.body
        );
    }
    // 21. An entity the policy hides.
    let hidden = call(
        &s.agent,
        "get_entity",
        json!({"ref": "component:finance/payroll"}),
    )
    .await;
    assert_eq!(hidden.is_error, Some(true));
    let found = call(&s.agent, "search_entities", json!({"text": "payroll"})).await;
    assert_eq!(found.structured_content.expect("found")["totalItems"], 0);
    // 22-23. Make a token, or a wider one.
    for scopes in [json!(["catalog:read"]), json!(["admin"])] {
        let made = app
            .request_as(
                &agent_token,
                Method::POST,
                "/api/auth/tokens",
                Some(json!({"name": "more", "scopes": scopes, "expiresInDays": 1})),
            )
            .await;
        assert_eq!(made.status, StatusCode::FORBIDDEN, "{}", made.body);
    }
    // 24-26. Catalog writes: register a location (in or outside the roots), delete an entity.
    let registered = app
        .request_as(
            &agent_token,
            Method::POST,
            "/api/catalog/locations",
            Some(json!({"type": "file", "target": "/etc/passwd"})),
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::FORBIDDEN,
        "{}",
        registered.body
    );
    let writer = agent_token_for(&app.state, ALICE, "writer", &["catalog:write"]).await;
    let outside = app
        .request_as(
            &writer,
            Method::POST,
            "/api/catalog/locations",
            Some(json!({"type": "file", "target": "/etc/passwd"})),
        )
        .await;
    assert_eq!(outside.status, StatusCode::FORBIDDEN, "{}", outside.body);
    let uid = app.entity("template", "x").await["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_owned();
    let deleted = app
        .request_as(
            &agent_token,
            Method::DELETE,
            &format!("/api/catalog/entities/by-uid/{uid}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::FORBIDDEN);
    assert_eq!(refusals(app, AGENT, "token.create").await.len(), 2);
    assert_eq!(refusals(app, AGENT, "permission").await.len(), 2);
    assert_eq!(refusals(app, "agent:writer", "location.add").await.len(), 1);
    // 27. A read-only agent cannot start anything.
    let reader = agent_token_for(&app.state, ALICE, "reader", &["catalog:read"]).await;
    let client = connect(&s.url, &reader).await;
    let run = call(
        &client,
        "run_template",
        json!({"templateRef": "template:default/deploy-app", "values": deploy_values(json!({}))}),
    )
    .await;
    assert_eq!(run.is_error, Some(true));
    assert_eq!(
        refusals(app, "agent:reader", "mcp.run_template")
            .await
            .len(),
        1
    );
    // 28. Past its rate limit.
    let limited = rate_limited_agent_token(&app.state, ALICE, "chatty", &["catalog:read"], 2).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            app.request_as(&limited, Method::GET, "/api/catalog/entities", None)
                .await
                .status,
        );
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(!refusals(app, "agent:chatty", "rate-limit").await.is_empty());
    // 29-30. Out of the task's workspace, through a path parameter: the step fails, nothing outside
    // is touched, and the attempt is audited as the agent's denial.
    let outside = tempfile::tempdir().expect("tempdir");
    let victim = outside.path().join("keep.txt");
    std::fs::write(&victim, "keep").expect("victim");
    for path in [
        "../../../../../../../../".to_owned() + victim.to_str().expect("path"),
        victim.display().to_string(),
    ] {
        let run = call(
            &s.agent,
            "run_template",
            json!({"templateRef": "template:default/clean-up", "values": {"path": path}}),
        )
        .await;
        let Some(created) = run.structured_content else {
            panic!("{path}: {}", text(&run))
        };
        let id = created["taskId"].as_str().expect("id").to_owned();
        app.state.scaffolder.run_until_idle().await.expect("run");
        let task = call(&s.agent, "get_task", json!({"taskId": id})).await;
        let task = task.structured_content.expect("task");
        assert_eq!(task["status"], "failed", "{path}: {task}");
        assert!(
            victim.exists(),
            "{path} deleted a file outside the workspace"
        );
    }
    let escapes = refusals(app, AGENT, "scaffolder.workspace").await;
    assert_eq!(escapes.len(), 2, "{escapes:?}");
    for escape in &escapes {
        assert_eq!(escape["outcome"], "denied");
        let reason = escape["detail"]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("fs:delete") && reason.contains("workspace"),
            "{reason}"
        );
    }
    // 31-32. Revoked or expired: refused at once, and recorded as the agent's.
    let revoked = agent_token_for(&app.state, ALICE, "gone", &["catalog:read"]).await;
    let expired = agent_token_for(&app.state, ALICE, "old", &["catalog:read"]).await;
    sqlx::query("update api_token set revoked_at = now() where agent = 'gone'")
        .execute(&app.state.db)
        .await
        .expect("revoke");
    sqlx::query(
        "update api_token set expires_at = now() - interval '1 minute' where agent = 'old'",
    )
    .execute(&app.state.db)
    .await
    .expect("expire");
    for token in [&revoked, &expired] {
        let response = app
            .request_as(token, Method::GET, "/api/catalog/entities", None)
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    }
    // 33. No token at all on the MCP endpoint.
    let anonymous = reqwest::Client::new()
        .post(&s.url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "run_template"}}))
        .send()
        .await
        .expect("answered");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // Nothing of it reached the cluster.
    assert!(s.fake.requests().is_empty(), "{:#?}", s.fake.requests());
}
