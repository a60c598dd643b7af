//! Ingestion: locations read from disk and over HTTP, updates, orphans, conflicts, errors kept visible.

mod common;

use axum::http::StatusCode;
use common::{TestApp, load_sample, relations, status_messages};
use serde_json::Value;
use sqlx::PgPool;

fn component(name: &str, owner: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: service\n  lifecycle: production\n  owner: {owner}\n"
    )
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn edits_are_picked_up_and_relations_follow(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let before = app.entity("component", "checkout").await;

    let services = common::SERVICES.replace(
        "  owner: team-a\n  system: payments",
        "  owner: user:alice\n  system: payments",
    );
    app.write("services.yaml", &services);
    app.refresh_all().await;

    let after = app.entity("component", "checkout").await;
    assert_eq!(
        after["metadata"]["uid"], before["metadata"]["uid"],
        "uid survives updates"
    );
    assert_ne!(after["metadata"]["etag"], before["metadata"]["etag"]);
    assert!(relations(&after).contains(&"ownedBy user:default/alice".to_owned()));
    let team = app.entity("group", "team-a").await;
    assert!(
        !relations(&team).contains(&"ownerOf component:default/checkout".to_owned()),
        "old reverse relation removed"
    );
    let alice = app.entity("user", "alice").await;
    assert!(
        relations(&alice).contains(&"ownerOf component:default/checkout".to_owned()),
        "new reverse relation added"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn unchanged_refresh_writes_no_entity(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    load_sample(&app).await;
    let before = etags(&pool).await;
    let written_before = entity_rows_written(&pool).await;
    app.refresh_all().await;
    let after = etags(&pool).await;
    assert_eq!(before, after);
    let queued: i64 = sqlx::query_scalar!(r#"select count(*) as "count!" from stitch_queue"#)
        .fetch_one(&pool)
        .await
        .expect("queue");
    assert_eq!(queued, 0);
    // Statistics are collected asynchronously; they can only lag, never over-count our writes.
    let written_after = entity_rows_written(&pool).await;
    assert_eq!(
        written_after, written_before,
        "a refresh of unchanged files writes no entity row"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn removed_entities_are_orphaned_then_deleted(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    load_sample(&app).await;
    let only_checkout = common::SERVICES
        .split("---")
        .next()
        .expect("first doc")
        .to_owned()
        + "---\n"
        + common::SERVICES.split("---").nth(2).expect("api doc");
    app.write("services.yaml", &only_checkout);
    app.refresh_all().await;
    assert_eq!(
        app.entity_status("component", "storefront").await,
        StatusCode::NOT_FOUND
    );
    let checkout = app.entity("component", "checkout").await;
    assert!(
        !relations(&checkout)
            .iter()
            .any(|r| r.contains("storefront")),
        "its relations are gone too"
    );

    // Dropping a file from the root Location orphans everything in it.
    app.write(
        "catalog.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: sample\nspec:\n  targets: [./org.yaml]\n",
    );
    app.refresh_all().await;
    assert_eq!(
        app.entity_status("component", "checkout").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.entity_status("group", "team-a").await, StatusCode::OK);
    assert_eq!(
        rows_of_missing_entities(&pool).await,
        (0, 0),
        "relations and facet rows go with their entity"
    );
}

/// Relation and facet rows whose entity is gone: (relations, facet rows).
async fn rows_of_missing_entities(pool: &PgPool) -> (i64, i64) {
    let row = sqlx::query!(
        r#"select
             (select count(*) from relation r
              where not exists (select 1 from entity e where e.id = r.originating_entity_id)) as "relations!",
             (select count(*) from entity_facet f
              where not exists (select 1 from entity e where e.id = f.entity_id)) as "facets!""#
    )
    .fetch_one(pool)
    .await
    .expect("dangling rows");
    (row.relations, row.facets)
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn orphan_policy_keep_marks_instead_of_deleting(pool: PgPool) {
    let app = TestApp::with_config(pool, |c| {
        c.orphan_policy = atrium::config::OrphanPolicy::Keep;
    })
    .await;
    load_sample(&app).await;
    app.write("services.yaml", &component("checkout", "team-a"));
    app.refresh_all().await;
    let storefront = app.entity("component", "storefront").await;
    assert_eq!(
        storefront["metadata"]["annotations"]["backstage.io/orphan"],
        "true"
    );
    let orphans = app
        .get("/api/catalog/entities?filter=metadata.annotations.backstage.io/orphan=true")
        .await;
    assert_eq!(
        TestApp::names(&orphans.body),
        ["checkout-api", "storefront"]
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_broken_file_keeps_the_last_good_entities_and_shows_the_error(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    app.write(
        "services.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: [unclosed\n",
    );
    app.refresh_all().await;
    assert_eq!(
        app.entity_status("component", "checkout").await,
        StatusCode::OK,
        "nothing lost"
    );
    // The error shows on the Location entity that points at the file.
    let sample = app.entity("location", "sample").await;
    let messages = status_messages(&sample);
    assert!(
        messages
            .iter()
            .any(|m| m.contains("services.yaml") && m.contains("line")),
        "{messages:?}"
    );

    // An invalid document keeps its entity's last good version, with the error on the entity.
    let invalid = common::SERVICES.replace("  lifecycle: experimental\n", "  lifecycle: 42\n");
    app.write("services.yaml", &invalid);
    app.refresh_all().await;
    let storefront = app.entity("component", "storefront").await;
    assert_eq!(
        storefront["spec"]["lifecycle"], "experimental",
        "last good body kept"
    );
    let messages = status_messages(&storefront);
    assert!(
        messages.iter().any(|m| m.contains("spec.lifecycle")),
        "{messages:?}"
    );
    assert!(
        status_messages(&app.entity("location", "sample").await).is_empty(),
        "the syntax error is gone"
    );

    // Fixing the file clears the error.
    app.write("services.yaml", common::SERVICES);
    app.refresh_all().await;
    assert!(status_messages(&app.entity("component", "storefront").await).is_empty());
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_second_location_cannot_take_over_an_entity(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.write("first.yaml", &component("shared", "team-a"));
    app.write(
        "second.yaml",
        &(component("shared", "team-b") + "---\n" + &component("other", "team-b")),
    );
    app.register("first.yaml").await;
    app.process().await;
    let second_id = app.register("second.yaml").await;
    app.process().await;

    let shared = app.entity("component", "shared").await;
    assert_eq!(
        shared["spec"]["owner"], "team-a",
        "the first location keeps it"
    );
    assert_eq!(
        app.entity_status("component", "other").await,
        StatusCode::OK
    );
    let messages = app.location_errors(&second_id).await;
    assert!(
        messages
            .iter()
            .any(|m| m.contains("ConflictError") && m.contains("component:default/shared")),
        "{messages:?}"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn missing_placeholder_file_is_an_entity_error(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.write(
        "api.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: a\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-a\n  definition:\n    $text: ../../etc/passwd\n",
    );
    let id = app.register("api.yaml").await;
    app.process().await;
    assert_eq!(
        app.entity_status("api", "a").await,
        StatusCode::NOT_FOUND,
        "never stored with a bad definition"
    );
    let messages = app.location_errors(&id).await;
    assert!(
        messages
            .iter()
            .any(|m| m.contains("spec.definition") && m.contains("outside the allowed roots")),
        "{messages:?}"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn url_locations_are_read_from_allowed_hosts_only(pool: PgPool) {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let big = "x".repeat(2 * 1024 * 1024);
    let server = axum::Router::new()
        .route("/catalog.yaml", get(|| async { component("remote", "team-a") }))
        .route("/api.yaml", get(|| async {
            "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: remote-api\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-a\n  definition:\n    $text: ./def.yaml\n"
        }))
        .route("/def.yaml", get(|| async { "openapi: 3.0.0" }))
        .route("/big.yaml", get(move || async move { big }))
        .route("/redirect.yaml", get(|| async { axum::response::Redirect::temporary("http://elsewhere.example.com/x.yaml") }));
    tokio::spawn(async move { axum::serve(listener, server).await });

    let app = TestApp::with_config(pool, |c| {
        c.url_allowlist = vec![format!("127.0.0.1:{}", addr.port())];
        c.url_allow_private_addresses = true;
    })
    .await;
    let register = |path: &str| {
        app.post(
            "/api/catalog/locations",
            serde_json::json!({"type": "url", "target": format!("http://{addr}{path}")}),
        )
    };
    assert_eq!(register("/catalog.yaml").await.status, StatusCode::CREATED);
    assert_eq!(register("/api.yaml").await.status, StatusCode::CREATED);
    let big = register("/big.yaml").await;
    let redirect = register("/redirect.yaml").await;
    app.process().await;
    assert_eq!(
        app.entity("component", "remote").await["spec"]["owner"],
        "team-a"
    );
    assert_eq!(
        app.entity("api", "remote-api").await["spec"]["definition"],
        "openapi: 3.0.0"
    );

    let id_of = |body: &Value| body["location"]["id"].as_str().expect("id").to_owned();
    let messages = app.location_errors(&id_of(&big.body)).await;
    assert!(
        messages.iter().any(|m| m.contains("byte limit")),
        "{messages:?}"
    );
    let messages = app.location_errors(&id_of(&redirect.body)).await;
    assert!(
        messages
            .iter()
            .any(|m| m.contains("redirected") && m.contains("not allowed")),
        "{messages:?}"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn claims_are_exclusive_between_workers(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    for i in 0..20 {
        app.write(
            &format!("c{i}.yaml"),
            &component(&format!("c{i}"), "team-a"),
        );
        app.register(&format!("c{i}.yaml")).await;
    }
    // Two claimers racing (as two replicas would) never get the same location.
    let (a, b) = tokio::join!(
        atrium::catalog::db::claim_due_locations(&pool, 15, 60.0),
        atrium::catalog::db::claim_due_locations(&pool, 15, 60.0)
    );
    let (a, b) = (a.expect("claim a"), b.expect("claim b"));
    assert_eq!(a.len() + b.len(), 20);
    assert!(a.iter().all(|x| !b.iter().any(|y| y.id == x.id)));
    // Claimed work is leased: nothing is due until the lease ends.
    let again = atrium::catalog::db::claim_due_locations(&pool, 50, 60.0)
        .await
        .expect("claim");
    assert!(again.is_empty());
    // An expired lease (a dead worker) makes the work due again.
    sqlx::query!("update location set next_refresh_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .expect("expire");
    app.process().await;
    let count = app
        .get("/api/catalog/entities/by-query?filter=kind=component&limit=0")
        .await;
    assert_eq!(count.body["totalItems"], 20);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn configured_locations_are_synced_at_start(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    app.write("configured.yaml", &component("from-config", "team-a"));
    let target = app.path("configured.yaml").display().to_string();
    let mut config = (*app.state.config).clone();
    config.catalog.locations = vec![atrium::config::LocationConfig {
        location_type: "file".into(),
        target,
    }];
    let state = atrium::AppState::new(pool.clone(), config.clone()).expect("state");
    state
        .catalog
        .sync_configured_locations()
        .await
        .expect("sync");
    state
        .catalog
        .sync_configured_locations()
        .await
        .expect("sync twice is harmless");
    state.catalog.process_until_idle().await.expect("process");
    assert_eq!(
        app.entity_status("component", "from-config").await,
        StatusCode::OK
    );

    // Removing it from the config unregisters it.
    config.catalog.locations.clear();
    let state = atrium::AppState::new(pool, config).expect("state");
    state
        .catalog
        .sync_configured_locations()
        .await
        .expect("sync");
    state.catalog.process_until_idle().await.expect("process");
    assert_eq!(
        app.entity_status("component", "from-config").await,
        StatusCode::NOT_FOUND
    );
}

/// Every entity's key and etag, in key order.
async fn etags(pool: &PgPool) -> Vec<(String, Option<String>)> {
    sqlx::query!("select entity_key, etag from entity order by entity_key")
        .fetch_all(pool)
        .await
        .expect("etags")
        .into_iter()
        .map(|row| (row.entity_key, row.etag))
        .collect()
}

/// Rows inserted into or updated in `entity` so far, from Postgres's statistics.
async fn entity_rows_written(pool: &PgPool) -> i64 {
    sqlx::query_scalar!(
        r#"select n_tup_upd + n_tup_ins as "written!" from pg_stat_user_tables where relname = 'entity'"#,
    )
    .fetch_one(pool)
    .await
    .expect("stats")
}
