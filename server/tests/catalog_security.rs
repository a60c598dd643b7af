//! The catalog's defences against hostile input, over the real router and a real Postgres database.
//!
//! - Request text that Postgres cannot store or compare is refused before any SQL runs: a NUL character
//!   in a query parameter, a JSON body, a cursor or a path answers Backstage's 400 `InputError` (404
//!   `NotFoundError` for a name in a path) naming where it was, never a 500. In a catalog file it is a
//!   processing error shown on the location, instead of a store that fails in the database.
//! - Locations read only public addresses: an allowlisted host that is, or resolves to, a loopback or
//!   private address is refused before any connection, for url locations and git remotes alike, unless
//!   `catalog.url_allow_private_addresses` is set. A test DNS resolver maps a made-up name to 127.0.0.1.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use atrium::net::Lookup;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use common::{TestApp, load_sample};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
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

/// The real router over the sample catalog (`common::load_sample`).
async fn sample_app(pool: PgPool) -> TestApp {
    let app = TestApp::new(pool).await;
    load_sample(&app).await;
    app
}

fn assert_all(failures: Vec<String>) {
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn nul_characters_in_query_parameters_are_input_errors(pool: PgPool) {
    let app = sample_app(pool).await;
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
    let app = sample_app(pool).await;
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
    let app = sample_app(pool).await;
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
    let app = sample_app(pool).await;
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
    let app = sample_app(pool).await;
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

// ---- Server-side requests: only public addresses, whatever name leads there ----

/// A resolver for tests: made-up names with the addresses a test gives them; any other name is unknown.
struct TestDns(Vec<(&'static str, IpAddr)>);

impl Resolve for TestDns {
    fn resolve(&self, name: Name) -> Resolving {
        let found: Vec<SocketAddr> = self
            .0
            .iter()
            .filter(|(known, _)| *known == name.as_str())
            .map(|(_, ip)| SocketAddr::new(*ip, 0))
            .collect();
        Box::pin(async move {
            if found.is_empty() {
                return Err("unknown host".into());
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

const INTERNAL_NAME: &str = "catalog.internal.test";

/// A port on 127.0.0.1 that counts what reaches it: HTTP requests, or bare TCP connections.
struct Listener {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Listener {
    async fn bind() -> (tokio::net::TcpListener, Self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        (listener, Self { port, hits })
    }

    /// An HTTP server answering every path with one catalog file, counting requests.
    async fn catalog_host() -> Self {
        let (listener, this) = Self::bind().await;
        let counted = this.hits.clone();
        let router = axum::Router::new().fallback(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                common::git::component("internal-svc", "read from a private address")
            }
        });
        tokio::spawn(async move { axum::serve(listener, router).await });
        this
    }

    /// Accepts connections and closes them at once, counting them (any protocol).
    async fn connection_counter() -> Self {
        let (listener, this) = Self::bind().await;
        let counted = this.hits.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        this
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// An app allowing `allowlist`, resolving `catalog.internal.test` to 127.0.0.1.
async fn app_resolving_internal_name(
    pool: PgPool,
    allowlist: Vec<String>,
    allow_private: bool,
) -> TestApp {
    TestApp::with_config(pool, |c| {
        c.url_allowlist = allowlist;
        c.url_allow_private_addresses = allow_private;
        c.name_lookup =
            Lookup::custom(TestDns(vec![(INTERNAL_NAME, IpAddr::from([127, 0, 0, 1]))]));
    })
    .await
}

async fn register_location(app: &TestApp, location_type: &str, target: &str) -> common::Response {
    app.post(
        "/api/catalog/locations",
        json!({"type": location_type, "target": target}),
    )
    .await
}

fn location_id(response: &common::Response) -> String {
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    response.body["location"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn an_allowlisted_name_resolving_to_loopback_is_refused_without_a_request(pool: PgPool) {
    let host = Listener::catalog_host().await;
    let app = app_resolving_internal_name(pool, vec![INTERNAL_NAME.to_owned()], false).await;
    let target = format!("http://{INTERNAL_NAME}:{}/c.yaml", host.port);
    let id = location_id(&register_location(&app, "url", &target).await);
    app.process().await;

    let messages = app.location_errors(&id).await;
    let expected = format!(
        "refused: {INTERNAL_NAME} resolves to 127.0.0.1, a loopback address; set catalog.url_allow_private_addresses to allow it"
    );
    assert!(
        messages.iter().any(|m| m.contains(&expected)),
        "{messages:?}"
    );
    assert_eq!(host.hits(), 0, "the private address was never asked");
    assert_eq!(
        app.entity_status("component", "internal-svc").await,
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn private_addresses_are_read_when_the_config_allows_them(pool: PgPool) {
    let host = Listener::catalog_host().await;
    let app = app_resolving_internal_name(pool, vec![INTERNAL_NAME.to_owned()], true).await;
    let target = format!("http://{INTERNAL_NAME}:{}/c.yaml", host.port);
    location_id(&register_location(&app, "url", &target).await);
    app.process().await;
    assert_eq!(
        app.entity("component", "internal-svc").await["metadata"]["description"],
        "read from a private address"
    );
    assert!(host.hits() > 0);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn loopback_written_as_numbers_or_named_localhost_is_refused(pool: PgPool) {
    let host = Listener::catalog_host().await;
    let port = host.port;
    // Every spelling is allowlisted, so only the address rule stands in the way.
    let allowlist = vec![
        format!("127.0.0.1:{port}"),
        format!("[::ffff:7f00:1]:{port}"),
        format!("[::1]:{port}"),
        format!("0.0.0.0:{port}"),
        format!("localhost:{port}"),
    ];
    // The system's resolver: localhost is looked up for real.
    let app = TestApp::with_config(pool, |c| c.url_allowlist = allowlist).await;
    let mut failures = Vec::new();
    for written in [
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "0177.0.0.1",
        "127.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::1]",
        "0.0.0.0",
        "0",
    ] {
        let target = format!("http://{written}:{port}/c.yaml");
        let response = register_location(&app, "url", &target).await;
        let message = response.body["error"]["message"]
            .as_str()
            .unwrap_or_default();
        if response.status != StatusCode::FORBIDDEN
            || response.body["error"]["name"] != "NotAllowedError"
            || !message.contains("refused:")
            || !message.contains("catalog.url_allow_private_addresses")
        {
            failures.push(format!("{target}: {} {}", response.status, response.body));
        }
    }
    // A name is resolved when it is read (or fetched), and refused then.
    let mut ids = Vec::new();
    for (location_type, target) in [
        ("url", format!("http://localhost:{port}/c.yaml")),
        ("git", format!("http://localhost:{port}/shop.git")),
    ] {
        let id = location_id(&register_location(&app, location_type, &target).await);
        ids.push((target, id));
    }
    app.process().await;
    for (target, id) in &ids {
        let messages = app.location_errors(id).await;
        if !messages.iter().any(|m| {
            m.contains("refused: localhost resolves to") && m.contains("a loopback address")
        }) {
            failures.push(format!("{target}: {messages:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(host.hits(), 0, "no spelling reached the server");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn git_remotes_resolving_to_private_addresses_are_not_fetched(pool: PgPool) {
    let port = Listener::connection_counter().await;
    let app = app_resolving_internal_name(
        pool,
        vec![
            format!("{INTERNAL_NAME}:{}", port.port),
            format!("127.0.0.1:{}", port.port),
        ],
        false,
    )
    .await;
    let literal = register_location(
        &app,
        "git",
        &format!("http://127.0.0.1:{}/shop.git", port.port),
    )
    .await;
    assert_eq!(literal.status, StatusCode::FORBIDDEN, "{}", literal.body);
    assert!(
        literal.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("refused: 127.0.0.1 is a loopback address")),
        "{}",
        literal.body
    );
    let mut ids = Vec::new();
    for remote in [
        format!("http://{INTERNAL_NAME}:{}/shop.git", port.port),
        format!("https://{INTERNAL_NAME}:{}/shop.git", port.port),
        format!("git://{INTERNAL_NAME}:{}/shop.git", port.port),
    ] {
        let id = location_id(&register_location(&app, "git", &remote).await);
        ids.push((remote, id));
    }
    app.process().await;
    for (remote, id) in &ids {
        let messages = app.location_errors(id).await;
        assert!(
            messages.iter().any(|m| m.contains(&format!(
                "refused: {INTERNAL_NAME} resolves to 127.0.0.1, a loopback address"
            ))),
            "{remote}: {messages:?}"
        );
    }
    assert_eq!(port.hits(), 0, "no fetch reached the address");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn git_remotes_on_private_addresses_are_fetched_when_allowed(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    let mut shop = common::git::BareRepo::create(repos.path(), "shop.git");
    shop.commit(
        &[(
            "catalog-info.yaml",
            Some(&common::git::component("shop-web", "on a private host")),
        )],
        "initial",
    );
    let daemon = common::git::GitDaemon::start(repos.path());
    let remote = daemon.url("shop.git");
    let allow = format!("127.0.0.1:{}", daemon.port);
    let strict =
        TestApp::with_config(pool.clone(), |c| c.url_allowlist = vec![allow.clone()]).await;
    let refused = register_location(&strict, "git", &remote).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);

    let app = TestApp::with_config(pool, |c| {
        c.url_allowlist = vec![allow];
        c.url_allow_private_addresses = true;
    })
    .await;
    location_id(&register_location(&app, "git", &remote).await);
    app.process().await;
    assert_eq!(
        app.entity("component", "shop-web").await["metadata"]["description"],
        "on a private host"
    );
}
