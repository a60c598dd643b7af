//! The catalog's defences against hostile input, over the real router and a real Postgres database.
//!
//! - Request text that Postgres cannot store or compare is refused before any SQL runs: a NUL character
//!   in a query parameter, a JSON body, a cursor or a path answers Backstage's 400 `InputError` (404
//!   `NotFoundError` for a name in a path) naming where it was, never a 500. In a catalog file it is a
//!   processing error shown on the location, instead of a store that fails in the database.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use common::{TestApp, load_sample};
use serde_json::{Value, json};
use sqlx::PgPool;

/// Checks Backstage's error body in `response` to `method uri`, with `needle` in the message; says what
/// is wrong otherwise. Every case of a test is checked, and the test fails listing all that are wrong.
fn check_error(
    response: &common::Response,
    method: &str,
    uri: &str,
    status: StatusCode,
    needle: &str,
) -> Result<(), String> {
    let body = &response.body;
    let name = if status == StatusCode::NOT_FOUND {
        "NotFoundError"
    } else {
        "InputError"
    };
    let message = body["error"]["message"].as_str().unwrap_or_default();
    // The URL as the client sent it, or as the catalog router sees it (without the mount prefix).
    let url = body["request"]["url"].as_str().unwrap_or_default();
    let ok = response.status == status
        && body["error"]["name"] == name
        && body["response"]["statusCode"] == status.as_u16()
        && body["request"]["method"] == method
        && !url.is_empty()
        && uri.ends_with(url)
        && message.contains(needle)
        && message.contains("NUL");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{method} {uri}: expected {status} {name} naming {needle:?}, got {}: {body}",
            response.status
        ))
    }
}

fn assert_all(failures: Vec<String>) {
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn nul_characters_in_query_parameters_are_input_errors(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let mut failures = Vec::new();
    for (uri, parameter) in [
        ("/api/catalog/entities/by-query?filter=kind=%00", "filter"),
        ("/api/catalog/entities/by-query?filter=%00=x", "filter"),
        (
            "/api/catalog/entities/by-query?fullTextFilterTerm=%00",
            "fullTextFilterTerm",
        ),
        (
            "/api/catalog/entities/by-query?fullTextFilterTerm=x&fullTextFilterFields=metadata.%00",
            "fullTextFilterFields",
        ),
        (
            "/api/catalog/entities/by-query?orderField=metadata.%00,asc",
            "orderField",
        ),
        ("/api/catalog/entities/by-query?fields=%00", "fields"),
        ("/api/catalog/entities/by-query?cursor=%00", "cursor"),
        ("/api/catalog/entities?filter=metadata.name=%00", "filter"),
        ("/api/catalog/entities?order=asc:metadata.%00", "order"),
        ("/api/catalog/entity-facets?facet=%00", "facet"),
        (
            "/api/catalog/entity-facets?facet=kind&filter=kind=%00",
            "filter",
        ),
        ("/api/catalog/entities?x%00=1", "parameter name"),
    ] {
        let response = app.get(uri).await;
        failures
            .extend(check_error(&response, "GET", uri, StatusCode::BAD_REQUEST, parameter).err());
    }
    assert_all(failures);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn nul_characters_in_json_bodies_are_input_errors(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let file = app.path("x\u{0}.yaml").display().to_string();
    let mut failures = Vec::new();
    for (uri, body, field) in [
        (
            "/api/catalog/entities/by-refs",
            json!({"entityRefs": ["component:default/checkout", "component:default/\u{0}"]}),
            "entityRefs[1]",
        ),
        (
            "/api/catalog/entities/by-refs",
            json!({"entityRefs": ["component:default/checkout"], "query": {"kind": "\u{0}"}}),
            "query.kind",
        ),
        (
            "/api/catalog/entities/by-query",
            json!({"query": {"$all": [{"kind": "component"}, {"metadata.name": {"$in": ["\u{0}"]}}]}}),
            "query.$all[1].metadata.name.$in[0]",
        ),
        (
            "/api/catalog/entities/by-query",
            json!({"query": {"spec.\u{0}": "x"}}),
            "query",
        ),
        (
            "/api/catalog/entities/by-query",
            json!({"orderBy": [{"field": "metadata.\u{0}", "order": "asc"}]}),
            "orderBy[0].field",
        ),
        (
            "/api/catalog/entities/by-query",
            json!({"fullTextFilter": {"term": "\u{0}"}}),
            "fullTextFilter.term",
        ),
        (
            "/api/catalog/entities/by-query",
            json!({"fields": ["metadata.\u{0}"]}),
            "fields[0]",
        ),
        (
            "/api/catalog/entity-facets",
            json!({"facets": ["\u{0}"]}),
            "facets[0]",
        ),
        (
            "/api/catalog/locations",
            json!({"type": "url", "target": "https://example.com/\u{0}.yaml"}),
            "target",
        ),
        (
            "/api/catalog/locations",
            json!({"type": "file", "target": file}),
            "target",
        ),
        (
            "/api/catalog/locations?dryRun=true",
            json!({"type": "file", "target": file}),
            "target",
        ),
        (
            "/api/catalog/analyze-location",
            json!({"location": {"type": "file", "target": file}}),
            "location.target",
        ),
        (
            "/api/catalog/refresh",
            json!({"entityRef": "component:default/\u{0}"}),
            "entityRef",
        ),
    ] {
        let response = app.post(uri, body).await;
        failures.extend(check_error(&response, "POST", uri, StatusCode::BAD_REQUEST, field).err());
    }
    assert_all(failures);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn nul_characters_inside_cursors_are_input_errors(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    // A real cursor, with a NUL put into each of its texts in turn.
    let page = app
        .get("/api/catalog/entities/by-query?filter=kind=component&orderField=metadata.name,asc&limit=1&fullTextFilterTerm=o")
        .await;
    let cursor = page.body["pageInfo"]["nextCursor"]
        .as_str()
        .expect("a next page");
    let decoded: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(cursor)
            .expect("base64"),
    )
    .expect("json");
    let mut failures = Vec::new();
    for pointer in [
        "/filter/0",
        "/orderField/field",
        "/fullTextFilter/term",
        "/keyset/sort_value",
    ] {
        let mut tampered = decoded.clone();
        *tampered.pointer_mut(pointer).expect(pointer) = json!("x\u{0}");
        let raw = base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(&tampered).expect("json"));
        let encoded: String = url::form_urlencoded::byte_serialize(raw.as_bytes()).collect();
        let uri = format!("/api/catalog/entities/by-query?cursor={encoded}");
        let response = app.get(&uri).await;
        failures
            .extend(check_error(&response, "GET", &uri, StatusCode::BAD_REQUEST, "cursor").err());
        let response = app
            .post("/api/catalog/entities/by-query", json!({"cursor": raw}))
            .await;
        failures.extend(
            check_error(
                &response,
                "POST",
                "/api/catalog/entities/by-query",
                StatusCode::BAD_REQUEST,
                "cursor",
            )
            .err(),
        );
    }
    assert_all(failures);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn nul_characters_in_path_names_are_not_found(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let mut failures = Vec::new();
    for (uri, parameter) in [
        (
            "/api/catalog/entities/by-name/component/default/%00",
            "name",
        ),
        (
            "/api/catalog/entities/by-name/component/default/check%00out",
            "name",
        ),
        (
            "/api/catalog/entities/by-name/component/%00/checkout",
            "namespace",
        ),
        ("/api/catalog/entities/by-name/%00/default/checkout", "kind"),
        (
            "/api/catalog/entities/by-name/component/default/%00/ancestry",
            "name",
        ),
        (
            "/api/catalog/locations/by-entity/component/default/%00",
            "name",
        ),
    ] {
        let response = app.get(uri).await;
        failures.extend(check_error(&response, "GET", uri, StatusCode::NOT_FOUND, parameter).err());
    }
    assert_all(failures);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn nul_characters_in_catalog_files_are_shown_as_errors(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let component = |name: &str, description: &str| {
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  description: {description}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
        )
    };
    app.write("escaped.yaml", &component("escaped", "\"a\\0b\""));
    app.write("nul-key.yaml", &component("nul-key", "x\n  \"a\\0\": y"));
    app.write("text.txt", "binary\u{0}content");
    app.write("json.json", r#""x\u0000""#);
    app.write("text.yaml", &component("from-text", "{$text: ./text.txt}"));
    app.write("json.yaml", &component("from-json", "{$json: ./json.json}"));
    app.write("fine.yaml", &component("fine", "no NUL here"));
    let mut ids = Vec::new();
    for file in ["escaped.yaml", "nul-key.yaml", "text.yaml", "json.yaml"] {
        ids.push((file, app.register(file).await));
    }
    app.register("fine.yaml").await;
    app.process().await;

    // Every location was processed and stored (none is left failing in the database), the good file
    // is read, and each bad one says why on its Location entity.
    assert_eq!(app.entity_status("component", "fine").await, StatusCode::OK);
    let mut failures = Vec::new();
    for (file, id) in &ids {
        let location = app.get(&format!("/api/catalog/locations/{id}")).await;
        let name = location.body["entityRef"]
            .as_str()
            .and_then(|r| r.rsplit('/').next())
            .unwrap_or_default()
            .to_owned();
        let entity = app
            .get(&format!(
                "/api/catalog/entities/by-name/location/default/{name}"
            ))
            .await;
        let messages = common::status_messages(&entity.body);
        if entity.status != StatusCode::OK || !messages.iter().any(|m| m.contains("NUL character"))
        {
            failures.push(format!("{file}: {} {messages:?}", entity.status));
        }
    }
    assert_all(failures);
    let processing = app.get("/api/atrium/processing").await;
    assert_eq!(processing.body["locationsDue"], 0, "{}", processing.body);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn nul_characters_in_page_requests_are_refused_before_sql(pool: PgPool) {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    let mut failures = Vec::new();
    for (uri, status) in [
        ("/catalog?q=%00", StatusCode::BAD_REQUEST),
        ("/catalog?kind=%00", StatusCode::BAD_REQUEST),
        ("/catalog/component/default/%00", StatusCode::NOT_FOUND),
    ] {
        let request = Request::builder()
            .method(Method::GET)
            .uri(uri)
            .body(Body::empty())
            .expect("request");
        let (got, _, body) = app.send_raw(request).await;
        let html = String::from_utf8_lossy(&body);
        if got != status || !html.contains("NUL") {
            failures.push(format!("{uri}: expected {status}, got {got}: {html}"));
        }
    }
    assert_all(failures);
}
