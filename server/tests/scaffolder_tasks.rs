//! The task engine through `/api/scaffolder/v2` against real Postgres: creating, running, following,
//! cancelling, retrying tasks; leases, fencing and recovery; idempotency; retention; redaction.

mod common;

use std::time::Duration;

use atrium::scaffolder::ScaffolderService;
use atrium::scaffolder::tasks::db;
use axum::http::{Method, Request, StatusCode};
use common::TestApp;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// A template in the catalog whose steps are `steps` (YAML list items, indented by 4).
async fn app_with_template(pool: PgPool, name: &str, parameters: &str, steps: &str) -> TestApp {
    let app = TestApp::new(pool).await;
    add_template(&app, name, parameters, steps).await;
    app
}

async fn add_template(app: &TestApp, name: &str, parameters: &str, steps: &str) {
    let yaml = format!(
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: {name}\n  title: Test {name}\nspec:\n  owner: group:platform\n  type: service\n  parameters:\n{parameters}\n  steps:\n{steps}\n  output:\n    text:\n      - title: Done\n        content: finished\n"
    );
    app.add(&format!("{name}/template.yaml"), &yaml).await;
    app.entity("template", name).await;
}

const NAME_PAGE: &str = "    - title: About\n      required: [name]\n      properties:\n        name:\n          type: string\n          pattern: '^[a-z][a-z0-9-]*$'";

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

async fn events(app: &TestApp, id: Uuid) -> Vec<Value> {
    let response = app
        .get(&format!("/api/scaffolder/v2/tasks/{id}/events"))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response.body.as_array().expect("events").clone()
}

/// Follows the task's events with the long poll (no sleeps) until one carries `message`.
async fn wait_for_message(app: &TestApp, id: Uuid, message: &str) {
    let mut after = 0;
    loop {
        let batch = app
            .get(&format!(
                "/api/scaffolder/v2/tasks/{id}/events?after={after}"
            ))
            .await;
        for event in batch
            .body
            .as_array()
            .unwrap_or_else(|| panic!("events: {}", batch.body))
        {
            after = event["id"].as_i64().expect("id");
            if event["body"]["message"] == message {
                return;
            }
        }
    }
}

fn messages(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["type"].as_str().unwrap_or(""),
                e["body"]["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_task_runs_its_steps_and_completes_with_its_output(pool: PgPool) {
    let app = app_with_template(
        pool,
        "hello",
        NAME_PAGE,
        "    - id: one\n      name: First\n      action: debug:log\n      input:\n        message: hello there\n    - id: two\n      action: debug:log\n      input:\n        message: second",
    )
    .await;
    let id = create(&app, "hello", json!({"name": "svc"})).await;
    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    assert_eq!(task.body["status"], "open");
    assert_eq!(task.body["spec"]["parameters"], json!({"name": "svc"}));
    assert_eq!(
        task.body["spec"]["steps"][1]["name"], "debug:log",
        "a step without name is named after its action"
    );
    assert_eq!(task.body["createdBy"], "user:default/admin");
    assert!(task.body.get("secrets").is_none());

    app.state.scaffolder.run_until_idle().await.expect("run");

    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    assert_eq!(task.body["status"], "completed", "{}", task.body);
    let all = events(&app, id).await;
    assert_eq!(
        messages(&all),
        [
            "log Beginning step First",
            "log hello there",
            "log Finished step First",
            "log Beginning step debug:log",
            "log second",
            "log Finished step debug:log",
            "completion Run completed with status: completed",
        ]
    );
    assert_eq!(all[1]["body"]["stepId"], "one");
    let completion = all.last().expect("completion");
    assert_eq!(
        completion["body"]["output"]["text"][0]["content"],
        "finished"
    );
    // Events after an id: the long poll returns at once for an ended task.
    let after = all[4]["id"].as_i64().expect("id");
    let rest = app
        .get(&format!(
            "/api/scaffolder/v2/tasks/{id}/events?after={after}"
        ))
        .await;
    assert_eq!(rest.body.as_array().map(Vec::len), Some(2));
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn invalid_values_are_refused_with_errors_next_to_their_field(pool: PgPool) {
    let app = app_with_template(pool, "strict", NAME_PAGE, "    - action: debug:log").await;
    let response = app
        .post(
            "/api/scaffolder/v2/tasks",
            json!({"templateRef": "template:default/strict", "values": {"name": "Not Valid"}}),
        )
        .await;
    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{}",
        response.body
    );
    assert_eq!(
        response.body["errors"][0]["property"], "instance.name",
        "{}",
        response.body
    );
    assert_eq!(response.body["errors"][0]["name"], "pattern");
    let missing = app
        .post(
            "/api/scaffolder/v2/tasks",
            json!({"templateRef": "template:default/strict", "values": {}}),
        )
        .await;
    assert_eq!(
        missing.body["errors"][0]["stack"],
        "instance.name is required"
    );
    let unknown = app
        .post(
            "/api/scaffolder/v2/tasks",
            json!({"templateRef": "template:default/nope", "values": {}}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["error"]["name"], "NotFoundError");
    let count: i64 = sqlx::query_scalar!(r#"select count(*) as "n!" from scaffolder_task"#)
        .fetch_one(&app.state.db)
        .await
        .expect("count");
    assert_eq!(count, 0, "nothing stored for refused requests");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn the_same_idempotency_key_returns_the_same_task(pool: PgPool) {
    let app = app_with_template(pool, "idem", NAME_PAGE, "    - action: debug:log").await;
    let post = |values: Value| {
        let body = json!({"templateRef": "template:default/idem", "values": values}).to_string();
        Request::builder()
            .method(Method::POST)
            .uri("/api/scaffolder/v2/tasks")
            .header("content-type", "application/json")
            .header("idempotency-key", "deploy-42")
            .body(axum::body::Body::from(body))
            .expect("request")
    };
    let (s1, _, b1) = app.send_raw(post(json!({"name": "a"}))).await;
    let (s2, _, b2) = app.send_raw(post(json!({"name": "a"}))).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(b1, b2, "same task id");
    let (s3, _, b3) = app.send_raw(post(json!({"name": "b"}))).await;
    assert_eq!(s3, StatusCode::CONFLICT, "{}", String::from_utf8_lossy(&b3));
    let count: i64 = sqlx::query_scalar!(r#"select count(*) as "n!" from scaffolder_task"#)
        .fetch_one(&app.state.db)
        .await
        .expect("count");
    assert_eq!(count, 1);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn cancelling_an_open_task_ends_it_before_it_runs(pool: PgPool) {
    let app = app_with_template(
        pool,
        "later",
        NAME_PAGE,
        "    - id: log\n      action: debug:log\n      input:\n        message: must not run",
    )
    .await;
    let id = create(&app, "later", json!({"name": "x"})).await;
    let response = app
        .post(&format!("/api/scaffolder/v2/tasks/{id}/cancel"), json!({}))
        .await;
    assert_eq!(response.body, json!({"status": "cancelled"}));
    app.state.scaffolder.run_until_idle().await.expect("run");
    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    assert_eq!(task.body["status"], "cancelled");
    let all = messages(&events(&app, id).await);
    assert!(!all.iter().any(|m| m.contains("must not run")), "{all:?}");
    assert_eq!(
        all.last().map(String::as_str),
        Some("completion Run cancelled")
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_cancel_during_a_step_stops_at_the_step_boundary_and_stays_cancelled(pool: PgPool) {
    let app = app_with_template(
        pool,
        "slow",
        NAME_PAGE,
        "    - id: wait\n      action: debug:wait\n      input:\n        milliseconds: 1500\n    - id: after\n      action: debug:log\n      input:\n        message: second step ran",
    )
    .await;
    let id = create(&app, "slow", json!({"name": "x"})).await;
    let scaffolder = app.state.scaffolder.clone();
    let run = tokio::spawn(async move { scaffolder.run_one().await });
    // Wait (long poll, no sleep) until the first step has begun, then cancel.
    wait_for_message(&app, id, "Beginning step debug:wait").await;
    let response = app
        .post(&format!("/api/scaffolder/v2/tasks/{id}/cancel"), json!({}))
        .await;
    assert_eq!(response.body, json!({"status": "cancelled"}));
    assert!(run.await.expect("join").expect("run"));
    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    assert_eq!(
        task.body["status"], "cancelled",
        "the wait step succeeded, the task stays cancelled"
    );
    let all = messages(&events(&app, id).await);
    assert!(
        !all.iter().any(|m| m.contains("second step ran")),
        "{all:?}"
    );
    assert_eq!(
        all.last().map(String::as_str),
        Some("completion Run cancelled")
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_worker_that_lost_its_lease_cannot_write(pool: PgPool) {
    let app = app_with_template(pool, "fenced", NAME_PAGE, "    - action: debug:log").await;
    let id = create(&app, "fenced", json!({"name": "x"})).await;
    let db = &app.state.db;
    let first = db::claim(db, "worker-a", 30.0)
        .await
        .expect("claim")
        .expect("a task");
    assert_eq!((first.id, first.recovered), (id, false));
    // Worker A pauses past its lease (its lease runs out), worker B takes the task over.
    sqlx::query!("update scaffolder_task set lease_expires_at = now() - interval '1 second'")
        .execute(db)
        .await
        .expect("expire");
    let second = db::claim(db, "worker-b", 30.0)
        .await
        .expect("claim")
        .expect("recovered");
    assert!(second.recovered);
    assert_eq!(second.token, first.token + 1);
    // A wakes up and tries every kind of write: none lands.
    let log = json!({"message": "stale"});
    assert!(
        !db::append_event(db, id, Some(first.token), "log", &log)
            .await
            .expect("event")
    );
    assert!(
        !db::save_state(db, id, first.token, &json!({"stale": true}))
            .await
            .expect("state")
    );
    assert_eq!(
        db::heartbeat(db, id, first.token, 30.0)
            .await
            .expect("heartbeat"),
        None
    );
    assert_eq!(
        db::finish(db, id, first.token, "completed", &json!({}))
            .await
            .expect("finish"),
        None
    );
    // B's writes land.
    assert!(
        db::append_event(
            db,
            id,
            Some(second.token),
            "log",
            &json!({"message": "fresh"})
        )
        .await
        .expect("event")
    );
    let task = app.state.scaffolder.task(id).await.expect("task");
    assert_eq!(task.status, "processing");
    assert!(task.state.get("stale").is_none());
    let all = messages(&events(&app, id).await);
    assert_eq!(all, ["log fresh"]);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_task_whose_worker_died_is_recovered_without_redoing_finished_steps(pool: PgPool) {
    let app = TestApp::new(pool).await;
    // The register step's target: a catalog file under the root. A second registration of it would
    // be a conflict and fail the run, so a redone step shows.
    let target = app.write(
        "registered/catalog-info.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: made-by-template\nspec:\n  type: service\n  owner: team-a\n  lifecycle: experimental\n",
    );
    add_template(
        &app,
        "recover",
        NAME_PAGE,
        &format!(
            "    - id: register\n      action: catalog:register\n      input:\n        catalogInfoUrl: file:{}\n    - id: wait\n      action: debug:wait\n      input:\n        milliseconds: 1500\n    - id: last\n      action: debug:log\n      input:\n        message: last step",
            target.display()
        ),
    )
    .await;
    let id = create(&app, "recover", json!({"name": "x"})).await;
    let scaffolder = app.state.scaffolder.clone();
    let worker = tokio::spawn(async move { scaffolder.run_one().await });
    wait_for_message(&app, id, "Beginning step debug:wait").await;
    // The worker dies mid-step: nothing of it runs any more, its lease runs out.
    worker.abort();
    let _ = worker.await;
    sqlx::query!("update scaffolder_task set lease_expires_at = now() - interval '1 second'")
        .execute(&app.state.db)
        .await
        .expect("expire the lease");
    let other = ScaffolderService::new(
        app.state.db.clone(),
        app.state.config.clone(),
        app.state.catalog.clone(),
        Vec::new(),
    );
    assert!(other.run_one().await.expect("recover"));
    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    let all = messages(&events(&app, id).await);
    assert_eq!(task.body["status"], "completed", "{all:#?}");
    let begun_register = all
        .iter()
        .filter(|m| m.as_str() == "log Beginning step catalog:register")
        .count();
    assert_eq!(
        begun_register, 1,
        "the finished register step is not run again: {all:#?}"
    );
    assert!(
        all.iter().any(|m| m == "recovered Task recovered"),
        "{all:#?}"
    );
    assert!(
        all.iter()
            .any(|m| m.contains("finished in an earlier attempt")),
        "{all:#?}"
    );
    assert!(all.iter().any(|m| m == "log last step"));
    let output = &task.body["state"]["steps"]["register"]["output"];
    assert_eq!(output["entityRef"], "component:default/made-by-template");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn two_replicas_run_each_of_200_tasks_exactly_once(pool: PgPool) {
    let app = app_with_template(
        pool,
        "many",
        NAME_PAGE,
        "    - id: log\n      action: debug:log\n      input:\n        message: ran",
    )
    .await;
    for _ in 0..200 {
        create(&app, "many", json!({"name": "x"})).await;
    }
    let replica = |app: &TestApp| {
        ScaffolderService::new(
            app.state.db.clone(),
            app.state.config.clone(),
            app.state.catalog.clone(),
            Vec::new(),
        )
    };
    let (a, b) = (replica(&app), replica(&app));
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { a.run_until_idle().await }),
        tokio::spawn(async move { b.run_until_idle().await })
    );
    ra.expect("join").expect("replica a");
    rb.expect("join").expect("replica b");
    let rows = sqlx::query!(
        r#"select t.status, t.lease_token,
                  (select count(*) from scaffolder_task_event e where e.task_id = t.id and e.body->>'message' = 'ran') as "ran!",
                  (select count(*) from scaffolder_task_event e where e.task_id = t.id and e.event_type = 'completion') as "completions!"
           from scaffolder_task t"#
    )
    .fetch_all(&app.state.db)
    .await
    .expect("rows");
    assert_eq!(rows.len(), 200);
    for row in rows {
        assert_eq!(
            (
                row.status.as_str(),
                row.lease_token,
                row.ran,
                row.completions
            ),
            ("completed", 1, 1, 1)
        );
    }
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn secrets_are_redacted_everywhere_and_dropped_when_the_task_ends(pool: PgPool) {
    let app = app_with_template(
        pool,
        "secret",
        NAME_PAGE,
        "    - id: echo\n      action: debug:log\n      input:\n        message: token ${{ secrets.token }} and aHVudGVyMi1zM2NyZXQ= and ${{ secrets.other | urlencode }}",
    )
    .await;
    let response = app
        .post(
            "/api/scaffolder/v2/tasks",
            json!({"templateRef": "template:default/secret", "values": {"name": "x"},
                   "secrets": {"token": "hunter2-s3cret", "other": "hunter2-s3cret!"}}),
        )
        .await;
    let id = response.body["id"].as_str().expect("id").to_owned();
    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    assert!(task.body.get("secrets").is_none(), "{}", task.body);
    app.state.scaffolder.run_until_idle().await.expect("run");
    let all = app
        .get(&format!("/api/scaffolder/v2/tasks/{id}/events"))
        .await;
    let text = all.body.to_string();
    assert!(
        !text.contains("hunter2") && !text.contains("aHVudGVyMi1zM2NyZXQ"),
        "{text}"
    );
    assert!(text.contains("token *** and *** and ***"), "{text}");
    let stored: Option<Value> = sqlx::query_scalar!("select secrets from scaffolder_task")
        .fetch_one(&app.state.db)
        .await
        .expect("secrets");
    assert_eq!(stored, None, "secrets are dropped once the task ended");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn lists_filter_and_sort_only_on_allowed_fields(pool: PgPool) {
    let app = app_with_template(pool, "listed", NAME_PAGE, "    - action: debug:log").await;
    let first = create(&app, "listed", json!({"name": "a"})).await;
    let second = create(&app, "listed", json!({"name": "b"})).await;
    app.post(
        &format!("/api/scaffolder/v2/tasks/{first}/cancel"),
        json!({}),
    )
    .await;
    let all = app
        .get("/api/scaffolder/v2/tasks?order=asc:created_at&createdBy=user:default/admin")
        .await;
    assert_eq!(all.body["totalTasks"], 2);
    let ids: Vec<_> = all.body["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, [first.to_string(), second.to_string()]);
    let open = app
        .get("/api/scaffolder/v2/tasks?status=open&limit=1")
        .await;
    assert_eq!(open.body["totalTasks"], 1);
    assert_eq!(open.body["tasks"][0]["id"], second.to_string());
    for bad in [
        "order=desc:secrets",
        "order=asc:spec",
        "order=sideways:status",
        "status=bogus",
        "sort=x",
    ] {
        let response = app.get(&format!("/api/scaffolder/v2/tasks?{bad}")).await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            response.body
        );
        assert_eq!(response.body["error"]["name"], "InputError");
    }
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn finished_tasks_older_than_the_retention_are_pruned(pool: PgPool) {
    let app = app_with_template(pool, "old", NAME_PAGE, "    - action: debug:log").await;
    let old = create(&app, "old", json!({"name": "a"})).await;
    let recent = create(&app, "old", json!({"name": "b"})).await;
    let running = create(&app, "old", json!({"name": "c"})).await;
    app.post(&format!("/api/scaffolder/v2/tasks/{old}/cancel"), json!({}))
        .await;
    app.post(
        &format!("/api/scaffolder/v2/tasks/{recent}/cancel"),
        json!({}),
    )
    .await;
    sqlx::query!(
        "update scaffolder_task set finished_at = now() - interval '31 days' where id = $1",
        old
    )
    .execute(&app.state.db)
    .await
    .expect("age");
    assert_eq!(app.state.scaffolder.prune().await.expect("prune"), 1);
    let left = app.get("/api/scaffolder/v2/tasks?status=cancelled").await;
    assert_eq!(
        left.body["totalTasks"], 1,
        "the pruned task is no longer counted"
    );
    let all = app.get("/api/scaffolder/v2/tasks").await;
    assert_eq!(all.body["totalTasks"], 2);
    assert_eq!(
        app.get(&format!("/api/scaffolder/v2/tasks/{old}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/scaffolder/v2/tasks/{recent}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/api/scaffolder/v2/tasks/{running}"))
            .await
            .status,
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_retry_is_a_new_attempt_that_keeps_finished_side_effects(pool: PgPool) {
    let app = app_with_template(
        pool,
        "flaky",
        NAME_PAGE,
        "    - id: boom\n      action: does:not-exist",
    )
    .await;
    let id = create(&app, "flaky", json!({"name": "a"})).await;
    app.state.scaffolder.run_until_idle().await.expect("run");
    let failed = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    assert_eq!(failed.body["status"], "failed");
    let all = events(&app, id).await;
    let completion = all.last().expect("completion");
    assert_eq!(completion["type"], "completion");
    assert!(
        completion["body"]["error"]["message"]
            .as_str()
            .expect("message")
            .contains("there is no action \"does:not-exist\"")
    );
    let retried = app
        .post(&format!("/api/scaffolder/v2/tasks/{id}/retry"), json!({}))
        .await;
    assert_eq!(retried.status, StatusCode::CREATED);
    let new_id = retried.body["id"].as_str().expect("id");
    assert_ne!(new_id, id.to_string());
    let attempt = app.get(&format!("/api/scaffolder/v2/tasks/{new_id}")).await;
    assert_eq!(
        (
            attempt.body["status"].as_str(),
            attempt.body["attempt"].as_i64()
        ),
        (Some("open"), Some(2))
    );
    assert_eq!(attempt.body["retryOf"], id.to_string());
    assert_eq!(attempt.body["spec"], failed.body["spec"]);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn actions_and_parameter_schemas_are_described(pool: PgPool) {
    let app = app_with_template(pool, "described", NAME_PAGE, "    - action: debug:log").await;
    let actions = app.get("/api/scaffolder/v2/actions").await;
    let ids: Vec<_> = actions
        .body
        .as_array()
        .expect("list")
        .iter()
        .map(|a| a["id"].as_str().expect("id"))
        .collect();
    for id in [
        "debug:log",
        "debug:wait",
        "catalog:register",
        "catalog:fetch",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    let log = actions
        .body
        .as_array()
        .expect("list")
        .iter()
        .find(|a| a["id"] == "debug:log")
        .expect("debug:log");
    assert_eq!(
        log["schema"]["input"]["properties"]["message"]["type"],
        "string"
    );
    let schema = app
        .get("/api/scaffolder/v2/templates/default/template/described/parameter-schema")
        .await;
    assert_eq!(schema.status, StatusCode::OK, "{}", schema.body);
    assert_eq!(schema.body["title"], "Test described");
    assert_eq!(schema.body["steps"][0]["title"], "About");
    assert_eq!(
        schema.body["steps"][0]["schema"]["required"],
        json!(["name"])
    );
    let wrong_kind = app
        .get("/api/scaffolder/v2/templates/default/component/described/parameter-schema")
        .await;
    assert_eq!(wrong_kind.status, StatusCode::BAD_REQUEST);
    let _ = Duration::ZERO;
}
