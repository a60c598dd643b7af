//! Who may do what with golden paths and deployments, through the real router: a token runs only the
//! templates its scopes name and deploys only to its environments (refused when the task is created if
//! the environment is known then, else by the step, before the cluster hears of it); a task is its
//! creator's (anyone else gets 404, an admin sees all); an agent is named as the creator; and every
//! change writes exactly one audit event, every refusal a `denied` one.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::authz::{
    add_template, app_with_clusters, audit, count, create_as, deploy_step, id_of, messages,
};
use common::{agent_token_for, token_for};
use serde_json::json;
use sqlx::PgPool;

const ALICE: &str = "user:default/alice";
const BOB: &str = "user:default/bob";

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_token_runs_only_the_templates_it_names(pool: PgPool) {
    let (app, _fake) = app_with_clusters(pool).await;
    let token = token_for(
        &app.state,
        ALICE,
        &["catalog:read", "template:run:default/x"],
    )
    .await;

    let x = create_as(&app, &token, "x", json!({"name": "svc"})).await;
    id_of(&x);

    let y = create_as(&app, &token, "y", json!({"name": "svc"})).await;
    assert_eq!(y.status, StatusCode::FORBIDDEN, "{}", y.body);
    assert_eq!(
        y.body["error"]["message"],
        "You are not allowed to do this: it needs the permission template:run:default/y"
    );
    // Whether a template exists is not told to who may not run it.
    let missing = create_as(&app, &token, "nowhere", json!({})).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN, "{}", missing.body);

    let denied = audit(&app, "action=task.create&outcome=denied").await;
    assert_eq!(denied.len(), 2, "{denied:#?}");
    let on_y = denied
        .iter()
        .find(|e| e["target"] == "template:default/y")
        .expect("the refusal of y is audited");
    assert_eq!(on_y["actor"], ALICE);
    assert_eq!(on_y["actorKind"], "token");
    assert_eq!(on_y["detail"]["needs"], "template:run:default/y");

    // The dry run of y and its form are refused the same way.
    let template = app.entity("template", "y").await;
    let dry = app
        .request_as(
            &token,
            Method::POST,
            "/api/scaffolder/v2/dry-run",
            Some(json!({"template": template, "values": {"name": "svc"}, "directoryContents": []})),
        )
        .await;
    assert_eq!(dry.status, StatusCode::FORBIDDEN, "{}", dry.body);
    let form = Request::builder()
        .method(Method::POST)
        .uri("/create/templates/default/y")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("name=svc"))
        .expect("request");
    let (status, _, page) = app.send_raw(form).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        String::from_utf8_lossy(&page).contains("template:run:default/y"),
        "the form says which permission is missing: {}",
        String::from_utf8_lossy(&page)
    );
    assert_eq!(count(&app, "task.create", "success", None).await, 1);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_read_only_token_creates_registers_and_rolls_back_nothing(pool: PgPool) {
    let (app, fake) = app_with_clusters(pool).await;
    add_template(
        &app,
        "deploy-config",
        &deploy_step("${{ parameters.environment }}", None),
    )
    .await;
    // The admin deploys twice, so there is an earlier revision to roll back to.
    let mut deployments = Vec::new();
    for name in ["svc", "other"] {
        let id = id_of(
            &app.post(
                "/api/scaffolder/v2/tasks",
                json!({"templateRef": "template:default/deploy-config", "values": {"name": name}}),
            )
            .await,
        );
        app.state.scaffolder.run_until_idle().await.expect("run");
        let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
        assert_eq!(task.body["status"], "completed", "{}", task.body);
        let output = &task.body["state"]["steps"]["apply"]["output"];
        deployments.push(
            output["deploymentId"]
                .as_str()
                .expect("deployment id")
                .to_owned(),
        );
    }
    let deployment = deployments[0].clone();
    let applied = audit(&app, "action=deployment.apply").await;
    assert_eq!(applied.len(), 2, "one event per record: {applied:#?}");
    let first = &applied[1];
    assert_eq!(first["target"], format!("deployment:{deployment}"));
    assert_eq!(first["actor"], "user:default/admin");
    assert_eq!(first["outcome"], "success");
    assert_eq!(first["detail"]["cluster"], "dev-1");
    assert_eq!(first["detail"]["environment"], "dev");
    assert_eq!(first["detail"]["namespace"], "apps");
    assert_eq!(first["detail"]["revision"], 1);
    let requests_before = fake.requests().len();

    let reader = token_for(&app.state, ALICE, &["catalog:read"]).await;
    let created = create_as(&app, &reader, "x", json!({"name": "svc"})).await;
    assert_eq!(created.status, StatusCode::FORBIDDEN, "{}", created.body);
    let target = app.path("x/template.yaml").display().to_string();
    let registered = app
        .request_as(
            &reader,
            Method::POST,
            "/api/catalog/locations",
            Some(json!({"type": "file", "target": target})),
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::FORBIDDEN,
        "{}",
        registered.body
    );
    let rolled = app
        .request_as(
            &reader,
            Method::POST,
            &format!("/api/deployments/{deployment}/rollback"),
            Some(json!({})),
        )
        .await;
    assert_eq!(rolled.status, StatusCode::FORBIDDEN, "{}", rolled.body);
    assert!(
        rolled.body.to_string().contains("deploy:dev"),
        "{}",
        rolled.body
    );
    assert_eq!(
        count(
            &app,
            "deployment.rollback",
            "denied",
            Some(&format!("deployment:{deployment}"))
        )
        .await,
        1
    );
    assert_eq!(
        fake.requests().len(),
        requests_before,
        "the cluster heard nothing"
    );

    // A token that may deploy to dev rolls back, audited once in the record's transaction.
    let deployer = token_for(&app.state, ALICE, &["catalog:read", "deploy:dev"]).await;
    let rolled = app
        .request_as(
            &deployer,
            Method::POST,
            &format!("/api/deployments/{deployment}/rollback"),
            Some(json!({})),
        )
        .await;
    assert_eq!(rolled.status, StatusCode::CREATED, "{}", rolled.body);
    assert_eq!(rolled.body["createdBy"], ALICE);
    let target = format!("deployment:{}", rolled.body["id"].as_str().expect("id"));
    assert_eq!(
        count(&app, "deployment.rollback", "success", Some(&target)).await,
        1
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_task_is_its_creators_and_an_admins(pool: PgPool) {
    let (app, _fake) = app_with_clusters(pool).await;
    let scopes = ["catalog:read", "template:run:default/x"];
    let alice = token_for(&app.state, ALICE, &scopes).await;
    let bob = token_for(&app.state, BOB, &scopes).await;
    let id = id_of(&create_as(&app, &alice, "x", json!({"name": "svc"})).await);
    let task = format!("/api/scaffolder/v2/tasks/{id}");

    for (method, uri) in [
        (Method::GET, task.clone()),
        (Method::GET, format!("{task}/events")),
        (Method::GET, format!("{task}/eventstream")),
        (Method::POST, format!("{task}/cancel")),
        (Method::POST, format!("{task}/retry")),
    ] {
        let response = app.request_as(&bob, method.clone(), &uri, None).await;
        assert_eq!(
            response.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            response.body
        );
        assert_eq!(
            response.body["error"]["message"],
            format!("Task with id {id} does not exist"),
            "as if it did not exist"
        );
    }
    let page = Request::builder()
        .uri(format!("/create/tasks/{id}"))
        .header(header::AUTHORIZATION, format!("Bearer {bob}"))
        .body(Body::empty())
        .expect("request");
    assert_eq!(app.send_raw(page).await.0, StatusCode::NOT_FOUND);
    let history = Request::builder()
        .uri("/create/tasks")
        .header(header::AUTHORIZATION, format!("Bearer {bob}"))
        .body(Body::empty())
        .expect("request");
    let (status, _, html) = app.send_raw(history).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!String::from_utf8_lossy(&html).contains(&id.to_string()));
    for query in ["", "?createdBy=user:default/alice"] {
        let listed = app
            .request_as(
                &bob,
                Method::GET,
                &format!("/api/scaffolder/v2/tasks{query}"),
                None,
            )
            .await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
        assert_eq!(listed.body["totalTasks"], 0, "{query}: {}", listed.body);
        assert_eq!(listed.body["tasks"], json!([]));
    }

    app.state.scaffolder.run_until_idle().await.expect("run");
    let own = app.request_as(&alice, Method::GET, &task, None).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(own.body["createdBy"], ALICE);
    assert_eq!(own.body["status"], "completed");
    let events = app
        .request_as(&alice, Method::GET, &format!("{task}/events"), None)
        .await;
    assert!(
        messages(&events.body).contains("hello svc"),
        "{}",
        events.body
    );
    let stream = app
        .request_as(&alice, Method::GET, &format!("{task}/eventstream"), None)
        .await;
    assert_eq!(stream.status, StatusCode::OK);
    assert!(
        stream
            .body
            .as_str()
            .is_some_and(|s| s.contains("event: completion")),
        "{}",
        stream.body
    );
    let listed = app
        .request_as(&alice, Method::GET, "/api/scaffolder/v2/tasks", None)
        .await;
    assert_eq!(listed.body["totalTasks"], 1, "{}", listed.body);
    let retried = app
        .request_as(&alice, Method::POST, &format!("{task}/retry"), None)
        .await;
    let retry = id_of(&retried);

    // An admin sees and acts on anyone's task; `createdBy` still filters.
    assert_eq!(app.get(&task).await.status, StatusCode::OK);
    let all = app.get("/api/scaffolder/v2/tasks").await;
    assert_eq!(all.body["totalTasks"], 2, "{}", all.body);
    let bobs = app
        .get("/api/scaffolder/v2/tasks?createdBy=user:default/bob")
        .await;
    assert_eq!(bobs.body["totalTasks"], 0, "{}", bobs.body);
    let cancelled = app
        .post(
            &format!("/api/scaffolder/v2/tasks/{retry}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    let cancel_event = audit(&app, "action=task.cancel&outcome=success").await;
    assert_eq!(cancel_event.len(), 1, "{cancel_event:#?}");
    assert_eq!(cancel_event[0]["actor"], "user:default/admin");
    assert_eq!(cancel_event[0]["target"], format!("task:{retry}"));

    // Bob's attempts on alice's task were refused as denied, never as success.
    assert_eq!(
        count(&app, "task.cancel", "denied", Some(&format!("task:{id}"))).await,
        1
    );
    assert_eq!(
        count(&app, "task.retry", "denied", Some(&format!("task:{id}"))).await,
        1
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn an_agent_is_named_as_the_creator(pool: PgPool) {
    let (app, _fake) = app_with_clusters(pool).await;
    let agent = agent_token_for(
        &app.state,
        ALICE,
        "release-bot",
        &["catalog:read", "template:run:default/x"],
    )
    .await;
    let id = id_of(&create_as(&app, &agent, "x", json!({"name": "svc"})).await);
    let task = app
        .request_as(
            &agent,
            Method::GET,
            &format!("/api/scaffolder/v2/tasks/{id}"),
            None,
        )
        .await;
    assert_eq!(task.status, StatusCode::OK, "{}", task.body);
    assert_eq!(task.body["createdBy"], "agent:release-bot");
    assert_eq!(
        task.body["spec"]["user"]["ref"], ALICE,
        "templates see the owner"
    );
    assert_eq!(task.body["spec"]["user"]["actor"], "agent:release-bot");

    let created = audit(&app, "action=task.create").await;
    assert_eq!(created.len(), 1, "{created:#?}");
    assert_eq!(created[0]["actor"], "agent:release-bot");
    assert_eq!(created[0]["actorKind"], "agent");
    assert_eq!(created[0]["target"], format!("task:{id}"));
    assert_eq!(created[0]["detail"]["template"], "template:default/x");
    assert_eq!(created[0]["detail"]["onBehalfOf"], ALICE);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_deploy_step_runs_only_where_its_creator_may_deploy(pool: PgPool) {
    let (app, fake) = app_with_clusters(pool).await;
    add_template(&app, "deploy-prod", &deploy_step("prod", None)).await;
    add_template(
        &app,
        "deploy-config",
        &deploy_step("${{ parameters.environment }}", None),
    )
    .await;
    add_template(
        &app,
        "deploy-each",
        &deploy_step("${{ each.value }}", Some("[prod]")),
    )
    .await;
    let dev_only = token_for(
        &app.state,
        ALICE,
        &["catalog:read", "template:run:*", "deploy:dev"],
    )
    .await;

    // Known when the task is created: refused then, naming the missing scope.
    for (template, values) in [
        ("deploy-prod", json!({"name": "svc"})),
        (
            "deploy-config",
            json!({"name": "svc", "environment": "prod"}),
        ),
    ] {
        let refused = create_as(&app, &dev_only, template, values).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{template}: {}",
            refused.body
        );
        assert_eq!(
            refused.body["error"]["message"],
            "You are not allowed to do this: it needs the permission deploy:prod"
        );
    }
    assert_eq!(count(&app, "task.create", "denied", None).await, 2);
    assert_eq!(count(&app, "task.create", "success", None).await, 0);

    // Known only when the step runs: the step fails naming the rule; the cluster hears nothing.
    let id = id_of(&create_as(&app, &dev_only, "deploy-each", json!({"name": "svc"})).await);
    assert!(app.state.scaffolder.run_one().await.expect("run"));
    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    assert_eq!(task.body["status"], "failed", "{}", task.body);
    let events = app
        .get(&format!("/api/scaffolder/v2/tasks/{id}/events"))
        .await;
    let log = messages(&events.body);
    assert!(
        log.contains("deploy:prod is not granted to user:default/alice"),
        "{log}"
    );
    assert!(
        fake.requests().is_empty(),
        "the cluster saw {:#?}",
        fake.requests()
    );
    assert_eq!(
        count(&app, "deployment.apply", "denied", None).await,
        1,
        "the refused step is audited"
    );
    assert_eq!(app.get("/api/deployments").await.body["totalItems"], 0);

    // Where it may deploy, it does, recorded as its creator's.
    let id = id_of(&create_as(&app, &dev_only, "deploy-config", json!({"name": "svc"})).await);
    assert!(app.state.scaffolder.run_one().await.expect("run"));
    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    assert_eq!(task.body["status"], "completed", "{}", task.body);
    assert!(fake.get("v1", "ConfigMap", "apps", "settings").is_some());
    let records = app.get("/api/deployments").await;
    assert_eq!(
        records.body["items"][0]["createdBy"], ALICE,
        "{}",
        records.body
    );
    assert_eq!(count(&app, "deployment.apply", "success", None).await, 1);
    fake.assert_clean();
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn each_change_writes_one_audit_event_and_a_refused_one_none(pool: PgPool) {
    let (app, _fake) = app_with_clusters(pool).await;
    let token = token_for(
        &app.state,
        ALICE,
        &["catalog:read", "template:run:default/x"],
    )
    .await;

    let invalid = create_as(&app, &token, "x", json!({"name": "NOT VALID"})).await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST, "{}", invalid.body);
    let none =
        sqlx::query_scalar::<_, i64>("select count(*) from audit_event where action like 'task.%'")
            .fetch_one(&app.state.db)
            .await
            .expect("count");
    assert_eq!(none, 0, "a task that was not created is not audited");

    let id = id_of(&create_as(&app, &token, "x", json!({"name": "svc"})).await);
    let target = format!("task:{id}");
    assert_eq!(
        count(&app, "task.create", "success", Some(&target)).await,
        1
    );

    let cancel = format!("/api/scaffolder/v2/tasks/{id}/cancel");
    for _ in 0..2 {
        let cancelled = app.request_as(&token, Method::POST, &cancel, None).await;
        assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
        assert_eq!(cancelled.body["status"], "cancelled");
    }
    assert_eq!(
        count(&app, "task.cancel", "success", Some(&target)).await,
        1,
        "cancelling an ended task changes nothing and records nothing"
    );

    let retried = app
        .request_as(
            &token,
            Method::POST,
            &format!("/api/scaffolder/v2/tasks/{id}/retry"),
            None,
        )
        .await;
    let retry = id_of(&retried);
    let events = audit(&app, "action=task.retry").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["target"], target);
    assert_eq!(events[0]["detail"]["newTask"], retry.to_string());
    assert_eq!(count(&app, "task.create", "success", None).await, 1);
}
