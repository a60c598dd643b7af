//! The permission policy (`permissions` in `atrium.yaml`) through the real router: rules over the
//! caller's groups (from the catalog), the target's owner, the template, the environment and the step
//! decide catalog reads (lists, queries, facets, pages and the gallery only show what the caller may
//! see), deletes, template runs, scaffolder steps and deployments. A refusal answers a plain 403 (or
//! 404 for what the caller may not see), is audited with the rule, and a refused step fails its task
//! naming the rule — it is never skipped.

mod common;

use atrium::auth::policy::Policy;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::TestApp;
use common::authz::{
    add_template, app_with_clusters_and, audit, count, create_as, deploy_step, id_of, messages,
};
use common::{agent_token_for, token_for};
use serde_json::{Value, json};
use sqlx::PgPool;

const ALICE: &str = "user:default/alice";
const SAM: &str = "user:default/sam";
const PAT: &str = "user:default/pat";

const PEOPLE: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-a}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-b}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: security}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: platform}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: alice}
spec: {memberOf: [team-a]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: sam}
spec: {memberOf: [security]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: pat}
spec: {memberOf: [platform]}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: web}
spec: {type: service, lifecycle: production, owner: team-a}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: billing}
spec: {type: service, lifecycle: production, owner: team-b}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: vault, namespace: secret}
spec: {type: service, lifecycle: production, owner: group:default/security}
"#;

/// The policy under test, as an operator writes it (here as JSON, which `atrium.yaml` is a superset of).
fn policy() -> Policy {
    let policy: Policy = serde_json::from_value(json!({
        "rules": [
            {"name": "security-sees-secrets", "effect": "allow",
             "actions": ["catalog.entity.read"], "groups": ["security"], "namespaces": ["secret"]},
            {"name": "secrets-are-hidden", "effect": "deny",
             "actions": ["catalog.entity.read"], "namespaces": ["secret"]},
            {"name": "platform-sees-internal", "effect": "allow",
             "actions": ["catalog.entity.read"], "groups": ["platform"],
             "entities": ["template:default/internal"]},
            {"name": "internal-is-hidden", "effect": "deny",
             "actions": ["catalog.entity.read"], "entities": ["template:default/internal"]},
            {"name": "owners-delete", "effect": "allow",
             "actions": ["catalog.entity.delete"], "owner": true},
            {"name": "nobody-else-deletes", "effect": "deny", "actions": ["catalog.entity.delete"]},
            {"name": "platform-runs-x", "effect": "allow",
             "actions": ["scaffolder.task.create"], "groups": ["platform"], "templates": ["x"]},
            {"name": "only-platform-runs-x", "effect": "deny",
             "actions": ["scaffolder.task.create"], "templates": ["x"]},
            {"name": "no-prod-from-y", "effect": "deny",
             "actions": ["scaffolder.action.execute"], "templates": ["y-deploy"], "environments": ["prod"]},
            {"name": "agents-stay-out-of-prod", "effect": "deny",
             "actions": ["deploy.*"], "callers": ["agent"], "environments": ["prod"]}
        ]
    }))
    .expect("policy");
    policy.check().expect("a valid policy");
    policy
}

async fn app(pool: PgPool) -> (TestApp, common::kube_fake::KubeFake) {
    let (app, fake) = app_with_clusters_and(pool, |config| config.permissions = policy()).await;
    app.add("people.yaml", PEOPLE).await;
    for name in ["internal", "deploy-prod"] {
        let steps = if name == "deploy-prod" {
            deploy_step("prod", None)
        } else {
            "    - id: log\n      action: debug:log\n      input:\n        message: hi\n".to_owned()
        };
        add_template(&app, name, &steps).await;
    }
    (app, fake)
}

async fn names_as(app: &TestApp, token: &str, uri: &str) -> Vec<String> {
    let response = app.request_as(token, Method::GET, uri, None).await;
    assert_eq!(response.status, StatusCode::OK, "{uri}: {}", response.body);
    TestApp::names(&response.body)
}

async fn page_as(app: &TestApp, token: &str, uri: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = app.send_raw(request).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn facet_values(body: &Value, facet: &str) -> Vec<String> {
    body["facets"][facet]
        .as_array()
        .expect("facet")
        .iter()
        .map(|f| f["value"].as_str().expect("value").to_owned())
        .collect()
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn people_see_only_what_the_policy_lets_them_see(pool: PgPool) {
    let (app, _fake) = app(pool).await;
    let alice = token_for(&app.state, ALICE, &["catalog:read"]).await;
    let sam = token_for(&app.state, SAM, &["catalog:read"]).await;

    let components = "/api/catalog/entities?filter=kind=component";
    assert_eq!(names_as(&app, &alice, components).await, ["billing", "web"]);
    assert_eq!(
        names_as(&app, &sam, components).await,
        ["billing", "vault", "web"]
    );
    // Asked again: each caller's kept answer is their own (the key holds their restriction).
    assert_eq!(names_as(&app, &alice, components).await, ["billing", "web"]);
    assert_eq!(
        names_as(&app, &sam, components).await,
        ["billing", "vault", "web"]
    );
    // Paginated lists and cursor pages too, with their totals.
    let paged = "/api/catalog/entities?filter=kind=component&limit=10";
    assert_eq!(names_as(&app, &alice, paged).await, ["billing", "web"]);
    let query = app
        .request_as(
            &alice,
            Method::GET,
            "/api/catalog/entities/by-query?filter=kind=component",
            None,
        )
        .await;
    assert_eq!(query.body["totalItems"], 2, "{}", query.body);
    let query = app
        .request_as(
            &sam,
            Method::GET,
            "/api/catalog/entities/by-query?filter=kind=component",
            None,
        )
        .await;
    assert_eq!(query.body["totalItems"], 3, "{}", query.body);

    // One entity: what may not be seen does not exist.
    let vault = "/api/catalog/entities/by-name/component/secret/vault";
    let hidden = app.request_as(&alice, Method::GET, vault, None).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.body);
    let shown = app.request_as(&sam, Method::GET, vault, None).await;
    assert_eq!(shown.status, StatusCode::OK);
    let uid = shown.body["metadata"]["uid"].as_str().expect("uid");
    let by_uid = app
        .request_as(
            &alice,
            Method::GET,
            &format!("/api/catalog/entities/by-uid/{uid}"),
            None,
        )
        .await;
    assert_eq!(by_uid.status, StatusCode::NOT_FOUND);
    let ancestry = app
        .request_as(&alice, Method::GET, &format!("{vault}/ancestry"), None)
        .await;
    assert_eq!(ancestry.status, StatusCode::NOT_FOUND);
    let refs = app
        .request_as(
            &alice,
            Method::POST,
            "/api/catalog/entities/by-refs",
            Some(json!({"entityRefs": ["component:secret/vault", "component:default/web"]})),
        )
        .await;
    assert_eq!(refs.body["items"][0], Value::Null, "{}", refs.body);
    assert_eq!(refs.body["items"][1]["metadata"]["name"], "web");

    // Facets count only what the caller sees.
    let facets = app
        .request_as(
            &alice,
            Method::GET,
            "/api/catalog/entity-facets?facet=metadata.namespace",
            None,
        )
        .await;
    assert_eq!(
        facet_values(&facets.body, "metadata.namespace"),
        ["default"]
    );
    let facets = app
        .request_as(
            &sam,
            Method::GET,
            "/api/catalog/entity-facets?facet=metadata.namespace",
            None,
        )
        .await;
    assert!(facet_values(&facets.body, "metadata.namespace").contains(&"secret".to_owned()));

    // Pages: the list, the entity page, the home page's counts.
    let (_, list) = page_as(&app, &alice, "/catalog?kind=component").await;
    assert!(list.contains(">web<") || list.contains("web"), "{list}");
    assert!(!list.contains("vault"), "alice's list shows vault");
    let (_, list) = page_as(&app, &sam, "/catalog?kind=component").await;
    assert!(list.contains("vault"), "sam's list lacks vault");
    let (status, _) = page_as(&app, &alice, "/catalog/secret/component/vault").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = page_as(&app, &sam, "/catalog/secret/component/vault").await;
    assert_eq!(status, StatusCode::OK);

    // An admin is not subject to the rules.
    let all = app.get(components).await;
    assert_eq!(TestApp::names(&all.body), ["billing", "vault", "web"]);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn the_gallery_and_templates_follow_the_same_rules(pool: PgPool) {
    let (app, _fake) = app(pool).await;
    let alice = token_for(&app.state, ALICE, &["catalog:read", "template:run:*"]).await;
    let pat = token_for(&app.state, PAT, &["catalog:read", "template:run:*"]).await;

    let (_, gallery) = page_as(&app, &alice, "/create").await;
    assert!(gallery.contains("deploy-prod"), "{gallery}");
    assert!(
        !gallery.contains("internal"),
        "alice's gallery shows internal"
    );
    let (_, gallery) = page_as(&app, &pat, "/create").await;
    assert!(gallery.contains("internal"), "pat's gallery lacks internal");

    let schema = "/api/scaffolder/v2/templates/default/template/internal/parameter-schema";
    let hidden = app.request_as(&alice, Method::GET, schema, None).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.body);
    assert_eq!(
        app.request_as(&pat, Method::GET, schema, None).await.status,
        StatusCode::OK
    );
    let (status, _) = page_as(&app, &alice, "/create/templates/default/internal").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let run = create_as(&app, &alice, "internal", json!({"name": "svc"})).await;
    assert_eq!(run.status, StatusCode::NOT_FOUND, "{}", run.body);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn owners_delete_their_entities_and_nobody_elses(pool: PgPool) {
    let (app, _fake) = app(pool).await;
    let alice = token_for(&app.state, ALICE, &["catalog:write"]).await;
    let uid_of = |entity: Value| entity["metadata"]["uid"].as_str().expect("uid").to_owned();
    let billing = uid_of(app.entity("component", "billing").await);
    let web = uid_of(app.entity("component", "web").await);

    let refused = app
        .request_as(
            &alice,
            Method::DELETE,
            &format!("/api/catalog/entities/by-uid/{billing}"),
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let message = refused.body["error"]["message"].as_str().expect("message");
    assert_eq!(message, "You are not allowed to do this");
    assert_eq!(
        app.entity_status("component", "billing").await,
        StatusCode::OK
    );
    let denied = audit(&app, "action=catalog.entity.delete&outcome=denied").await;
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert_eq!(denied[0]["actor"], ALICE);
    assert_eq!(denied[0]["target"], "component:default/billing");
    assert_eq!(denied[0]["detail"]["policy"], "nobody-else-deletes");

    let deleted = app
        .request_as(
            &alice,
            Method::DELETE,
            &format!("/api/catalog/entities/by-uid/{web}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert_eq!(
        app.entity_status("component", "web").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(count(&app, "entity.delete", "success", None).await, 1);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn templates_steps_and_deployments_are_decided_by_rules_that_are_named(pool: PgPool) {
    let (app, fake) = app(pool).await;
    let everything = ["catalog:read", "template:run:*", "deploy:*"];
    let alice = token_for(&app.state, ALICE, &everything).await;
    let pat = token_for(&app.state, PAT, &everything).await;

    // Running x is the platform team's.
    let refused = create_as(&app, &alice, "x", json!({"name": "svc"})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        !refused.body.to_string().contains("only-platform-runs-x"),
        "the answer names no rule: {}",
        refused.body
    );
    let denied = audit(&app, "action=scaffolder.task.create&outcome=denied").await;
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert_eq!(denied[0]["detail"]["policy"], "only-platform-runs-x");
    id_of(&create_as(&app, &pat, "x", json!({"name": "svc"})).await);
    assert!(app.state.scaffolder.run_one().await.expect("run"));

    // A step the policy refuses fails its task, naming the rule; nothing after it runs.
    let deploy_y = format!(
        "{}    - id: after\n      action: debug:log\n      input:\n        message: after the deploy\n",
        deploy_step("prod", None)
    );
    add_template(&app, "y-deploy", &deploy_y).await;
    let id = id_of(&create_as(&app, &pat, "y-deploy", json!({"name": "svc"})).await);
    assert!(app.state.scaffolder.run_one().await.expect("run"));
    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    assert_eq!(task.body["status"], "failed", "{}", task.body);
    let events = app
        .get(&format!("/api/scaffolder/v2/tasks/{id}/events"))
        .await;
    let log = messages(&events.body);
    assert!(
        log.contains("step apply (kube:apply) was not run: the permission policy denies it: deny (rule no-prod-from-y)"),
        "{log}"
    );
    assert!(!log.contains("after the deploy"), "{log}");
    assert!(fake.requests().is_empty(), "{:#?}", fake.requests());
    assert_eq!(
        count(&app, "scaffolder.action.execute", "denied", None).await,
        1
    );

    // An agent may not deploy to prod, whatever its scopes: the deploy step fails on the rule and
    // the cluster hears nothing.
    let agent = agent_token_for(&app.state, PAT, "release-bot", &everything).await;
    let id = id_of(&create_as(&app, &agent, "deploy-prod", json!({"name": "svc"})).await);
    assert!(app.state.scaffolder.run_one().await.expect("run"));
    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    assert_eq!(task.body["status"], "failed", "{}", task.body);
    let log = messages(
        &app.get(&format!("/api/scaffolder/v2/tasks/{id}/events"))
            .await
            .body,
    );
    assert!(log.contains("rule agents-stay-out-of-prod"), "{log}");
    assert!(fake.requests().is_empty(), "{:#?}", fake.requests());
    let denied = audit(&app, "action=deploy.apply&outcome=denied").await;
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert_eq!(denied[0]["actor"], "agent:release-bot");
    assert_eq!(denied[0]["detail"]["policy"], "agents-stay-out-of-prod");

    // The same template by a person deploys.
    let id = id_of(&create_as(&app, &pat, "deploy-prod", json!({"name": "svc"})).await);
    assert!(app.state.scaffolder.run_one().await.expect("run"));
    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    assert_eq!(task.body["status"], "completed", "{}", task.body);
    assert!(fake.get("v1", "ConfigMap", "apps", "settings").is_some());

    // A deployment of an entity hidden from someone is hidden from them too: lists, totals, record.
    sqlx::query("update deployment set entity_ref = 'component:secret/vault'")
        .execute(&app.state.db)
        .await
        .expect("a deployment of vault");
    let sam = token_for(&app.state, SAM, &["catalog:read"]).await;
    let reader = token_for(&app.state, ALICE, &["catalog:read"]).await;
    let seen = app
        .request_as(&sam, Method::GET, "/api/deployments", None)
        .await;
    assert_eq!(seen.body["totalItems"], 1, "{}", seen.body);
    let id = seen.body["items"][0]["id"].as_str().expect("id").to_owned();
    let unseen = app
        .request_as(&reader, Method::GET, "/api/deployments", None)
        .await;
    assert_eq!(unseen.body["totalItems"], 0, "{}", unseen.body);
    assert_eq!(unseen.body["items"], json!([]));
    let record = app
        .request_as(
            &reader,
            Method::GET,
            &format!("/api/deployments/{id}"),
            None,
        )
        .await;
    assert_eq!(record.status, StatusCode::NOT_FOUND, "{}", record.body);
    let (_, page) = page_as(&app, &sam, "/deployments").await;
    assert!(page.contains(&id), "sam's deployments page lacks {id}");
    let (_, page) = page_as(&app, &reader, "/deployments").await;
    assert!(!page.contains(&id), "alice's deployments page lists {id}");
    let (status, _) = page_as(&app, &reader, &format!("/deployments/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn explain_names_the_deciding_rule(pool: PgPool) {
    let (app, _fake) = app(pool).await;
    let ask = |user: &'static str, action: &'static str, target: Option<&'static str>| {
        let auth = app.state.auth.clone();
        async move {
            auth.explain(&atrium::auth::service::Question {
                user,
                action,
                target,
                template: None,
                environment: None,
                step: None,
            })
            .await
            .expect("explain")
            .to_string()
        }
    };
    let answer = ask(
        "alice",
        "catalog.entity.delete",
        Some("component:default/billing"),
    )
    .await;
    assert_eq!(
        answer,
        "caller: user:default/alice (group:default/team-a)\ntarget: component:default/billing (owned by group:default/team-b)\ndeny (rule nobody-else-deletes)\n"
    );
    let answer = ask("sam", "catalog.entity.read", Some("component:secret/vault")).await;
    assert!(
        answer.ends_with("allow (rule security-sees-secrets)\n"),
        "{answer}"
    );
    let answer = ask(
        "alice",
        "catalog.entity.read",
        Some("component:default/web"),
    )
    .await;
    assert!(
        answer.ends_with("allow (no rule matched; permissions.default)\n"),
        "{answer}"
    );
    let bad = app
        .state
        .auth
        .explain(&atrium::auth::service::Question {
            user: "alice",
            action: "catalog.entity.remove",
            target: None,
            template: None,
            environment: None,
            step: None,
        })
        .await
        .err()
        .expect("an unknown action is refused")
        .to_string();
    assert!(
        bad.contains("unknown action `catalog.entity.remove`"),
        "{bad}"
    );
}
