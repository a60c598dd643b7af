//! `/api/mcp` driven by the MCP SDK's own client against a live Atrium on loopback: the tools and
//! their hints, reads that follow the token's scopes and the permission policy, a template run by an
//! agent token (named as the task's creator and in the audit log), and refusals that the agent reads
//! as tool errors.

mod common;

use atrium::auth::policy::Policy;
use axum::http::StatusCode;
use common::authz::app_with_clusters_and;
use common::mcp_client::{call, connect, text};
use common::{TestApp, agent_token_for};
use serde_json::json;
use sqlx::PgPool;

const ALICE: &str = "user:default/alice";

const CATALOG: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-a}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: alice}
spec: {memberOf: [team-a]}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: web, title: Web shop}
spec: {type: service, lifecycle: production, owner: team-a}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: vault, namespace: secret}
spec: {type: service, lifecycle: production, owner: team-a}
---
apiVersion: atrium.dev/v1alpha1
kind: Model
metadata: {name: support-llm}
spec:
  type: llm
  owner: team-a
  lifecycle: production
  versions:
    - {name: v1, uri: "hf://acme/support-llm"}
  aliases: {champion: v1}
"#;

/// A live Atrium (the real router on a loopback port) whose policy hides the `secret` namespace.
async fn live(pool: PgPool) -> (TestApp, String, tokio::task::JoinHandle<()>) {
    let (app, _fake) = app_with_clusters_and(pool, |config| {
        config.permissions = serde_json::from_value::<Policy>(json!({"rules": [
            {"name": "secrets-are-hidden", "effect": "deny",
             "actions": ["catalog.entity.read"], "namespaces": ["secret"]}
        ]}))
        .expect("policy");
    })
    .await;
    app.add("catalog.yaml", CATALOG).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let url = format!("http://{}/api/mcp", listener.local_addr().expect("address"));
    let router = app.router.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    (app, url, server)
}

async fn audit_count(app: &TestApp, action: &str, outcome: &str, actor: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "select count(*) from audit_event where action = $1 and outcome = $2 and actor = $3",
    )
    .bind(action)
    .bind(outcome)
    .bind(actor)
    .fetch_one(&app.state.db)
    .await
    .expect("count")
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn an_agent_lists_and_calls_the_tools_within_its_token(pool: PgPool) {
    let (app, url, server) = live(pool).await;
    let token = agent_token_for(
        &app.state,
        ALICE,
        "helper-bot",
        &["catalog:read", "template:run:default/x"],
    )
    .await;
    let client = connect(&url, &token).await;

    // The tools, with hints that say what they change.
    let tools = client.list_all_tools().await.expect("tools");
    let hints = |name: &str| {
        let tool = tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} is listed"));
        let a = tool.annotations.clone().expect("annotations");
        (a.read_only_hint, a.destructive_hint, a.idempotent_hint)
    };
    for read in [
        "search_entities",
        "get_entity",
        "describe_catalog",
        "list_templates",
        "dry_run_template",
        "get_task",
        "list_deployments",
        "get_model",
    ] {
        assert_eq!(hints(read), (Some(true), Some(false), Some(true)), "{read}");
    }
    assert_eq!(
        hints("run_template"),
        (Some(false), Some(false), Some(false))
    );

    // Reads see what the token's owner may see: the secret namespace is hidden.
    let found = call(
        &client,
        "search_entities",
        json!({"filter": "kind=component"}),
    )
    .await;
    assert_ne!(found.is_error, Some(true), "{}", text(&found));
    let found = found.structured_content.expect("structured");
    assert_eq!(found["totalItems"], 1, "{found}");
    assert_eq!(found["items"][0]["ref"], "component:default/web");
    assert_eq!(found["items"][0]["owner"], "group:default/team-a");
    let hidden = call(
        &client,
        "get_entity",
        json!({"ref": "component:secret/vault"}),
    )
    .await;
    assert_eq!(hidden.is_error, Some(true));
    assert!(
        text(&hidden).contains("No entity named"),
        "{}",
        text(&hidden)
    );
    let web = call(
        &client,
        "get_entity",
        json!({"ref": "component:default/web"}),
    )
    .await;
    assert_eq!(
        web.structured_content.expect("entity")["metadata"]["title"],
        "Web shop"
    );
    let model = call(&client, "get_model", json!({"ref": "support-llm"})).await;
    let model = model.structured_content.expect("model");
    assert_eq!(model["versions"][0]["name"], "v1", "{model}");
    assert_eq!(model["deployments"], json!([]));
    let kinds = call(&client, "describe_catalog", json!({})).await;
    let kinds = kinds.structured_content.expect("kinds");
    let kind = |name: &str| {
        kinds["kinds"]
            .as_array()
            .expect("kinds")
            .iter()
            .find(|k| k["kind"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} is not described: {kinds}"))
    };
    // What an agent needs to write or query an entity: the counts it may see, and each spec field.
    let component = kind("Component");
    assert_eq!(component["count"], 1, "{component}");
    assert_eq!(component["apiVersions"][0], "backstage.io/v1alpha1");
    assert_eq!(
        component["spec"]["owner"],
        json!({"type": "entityRef", "defaultKind": "Group", "required": true})
    );
    assert_eq!(component["spec"]["system"]["required"], false);
    let model = kind("Model");
    assert_eq!(model["count"], 1);
    assert_eq!(model["apiVersions"], json!(["atrium.dev/v1alpha1"]));
    assert!(
        model["spec"]["versions"]["type"]
            .as_str()
            .is_some_and(|t| t.contains("uri")),
        "{model}"
    );
    assert!(kinds["metadata"]["name"].is_string());
    let templates = call(&client, "list_templates", json!({})).await;
    let templates = templates.structured_content.expect("templates");
    assert_eq!(
        templates["items"][0]["ref"], "template:default/x",
        "{templates}"
    );
    assert!(templates["items"][0]["parameters"].is_array());

    // Running the template its token names: a task created by the agent, followed to its end.
    let run = call(
        &client,
        "run_template",
        json!({"templateRef": "template:default/x", "values": {"name": "svc"}}),
    )
    .await;
    assert_ne!(run.is_error, Some(true), "{}", text(&run));
    let task_id = run.structured_content.expect("task")["taskId"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(app.state.scaffolder.run_one().await.expect("run"));
    let task = call(&client, "get_task", json!({"taskId": task_id})).await;
    let task = task.structured_content.expect("task");
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(task["createdBy"], "agent:helper-bot");
    assert!(
        task["log"]
            .as_array()
            .expect("log")
            .iter()
            .any(|line| line.as_str().is_some_and(|l| l.contains("hello svc"))),
        "{task}"
    );

    // Another template: refused, and the agent reads why.
    let refused = call(
        &client,
        "run_template",
        json!({"templateRef": "template:default/y", "values": {"name": "svc"}}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).contains("template:run:default/y"),
        "{}",
        text(&refused)
    );
    let bad = call(
        &client,
        "run_template",
        json!({"templateRef": "template:default/x", "values": {"name": "NOT OK"}}),
    )
    .await;
    assert_eq!(bad.is_error, Some(true));
    assert!(text(&bad).contains("name"), "{}", text(&bad));

    // Every call is audited as the agent.
    let agent = "agent:helper-bot";
    assert_eq!(
        audit_count(&app, "mcp.search_entities", "success", agent).await,
        1
    );
    assert_eq!(
        audit_count(&app, "mcp.run_template", "success", agent).await,
        1
    );
    assert_eq!(
        audit_count(&app, "mcp.run_template", "denied", agent).await,
        1
    );
    assert_eq!(
        audit_count(&app, "mcp.run_template", "failure", agent).await,
        1
    );

    // Skills are resources: listed by what the caller may see, read from their source location.
    app.write(
        "skills/deploy/SKILL.md",
        "---\nname: deploy\ndescription: How we deploy\n---\n# Deploy\nUse deploy-app.\n",
    );
    let source = app.path("skills/deploy/").display().to_string();
    app.add(
        "skills.yaml",
        &format!(
            "apiVersion: backstage.io/v1alpha1\nkind: AiResource\nmetadata:\n  name: deploy\n  description: How we deploy\n  annotations:\n    backstage.io/source-location: 'file:{source}'\nspec: {{type: skill, owner: team-a, lifecycle: production}}\n---\napiVersion: backstage.io/v1alpha1\nkind: AiResource\nmetadata:\n  name: vault-skill\n  namespace: secret\nspec: {{type: skill, owner: team-a, lifecycle: production}}\n"
        ),
    )
    .await;
    let resources = client.list_all_resources().await.expect("resources");
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        ["skill://deploy/SKILL.md"],
        "the hidden namespace's skill is not listed"
    );
    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "skill://deploy/SKILL.md",
        ))
        .await
        .expect("read");
    let read = serde_json::to_value(&read).expect("json");
    assert!(read.to_string().contains("# Deploy"), "{read}");
    assert!(
        client
            .read_resource(rmcp::model::ReadResourceRequestParams::new(
                "skill://vault-skill/SKILL.md",
            ))
            .await
            .is_err(),
        "a hidden skill cannot be read"
    );

    // The agents page shows the agent, its scopes and what it did; to its owner and admins only.
    let (status, page) = page_as(&app, &alice_token(&app).await, "/agents").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("agent:helper-bot"), "{page}");
    assert!(page.contains("template:run:default/x"), "{page}");
    assert!(page.contains("mcp.run_template"), "{page}");
    assert!(page.contains("task.create"), "{page}");
    let bob = common::token_for(&app.state, "user:default/bob", &["catalog:read"]).await;
    let (_, page) = page_as(&app, &bob, "/agents").await;
    assert!(
        !page.contains("helper-bot"),
        "bob sees alice's agent: {page}"
    );
    assert!(page.contains("No agent tokens yet"), "{page}");
    client.cancel().await.expect("close");
    server.abort();
}

async fn alice_token(app: &TestApp) -> String {
    common::token_for(&app.state, ALICE, &["catalog:read"]).await
}

async fn page_as(app: &TestApp, token: &str, uri: &str) -> (StatusCode, String) {
    let request = axum::http::Request::builder()
        .uri(uri)
        .header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .expect("request");
    let (status, _, body) = app.send_raw(request).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn without_a_token_or_with_the_wrong_one_nothing_is_done(pool: PgPool) {
    let (app, url, server) = live(pool).await;
    let anonymous = reqwest::Client::new()
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}))
        .send()
        .await
        .expect("answered");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // A token that may run templates but not read the catalog: reads refused, as over REST.
    let runner = agent_token_for(&app.state, ALICE, "runner", &["template:run:default/x"]).await;
    let client = connect(&url, &runner).await;
    let search = call(&client, "search_entities", json!({})).await;
    assert_eq!(search.is_error, Some(true));
    assert!(text(&search).contains("catalog:read"), "{}", text(&search));
    // A read-only token cannot start anything.
    let reader = agent_token_for(&app.state, ALICE, "reader", &["catalog:read"]).await;
    let client = connect(&url, &reader).await;
    let run = call(
        &client,
        "run_template",
        json!({"templateRef": "template:default/x", "values": {"name": "svc"}}),
    )
    .await;
    assert_eq!(run.is_error, Some(true));
    let tasks: i64 = sqlx::query_scalar("select count(*) from scaffolder_task")
        .fetch_one(&app.state.db)
        .await
        .expect("count");
    assert_eq!(tasks, 0);
    server.abort();
}
