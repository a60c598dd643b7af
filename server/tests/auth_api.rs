//! Authentication of the API and the pages, and API tokens (`/api/auth/tokens`, `/settings/tokens`).
//!
//! The first test reads the API routers' sources (every `.route(...)` of `src/**/api*.rs` and
//! `src/**/api/*.rs`) and where `lib.rs` mounts them, and sends each route, for each method it declares,
//! without credentials: a new route cannot be forgotten.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::TestApp;
use scraper::{Html, Selector};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// Routes served to anyone (they authenticate otherwise: the webhook by its signature).
const PUBLIC_API_ROUTES: [&str; 1] = ["/api/catalog/webhooks/git"];

/// At least this many (method, route) pairs are declared today; fewer means the parser broke.
const ROUTE_FLOOR: usize = 40;

const METHODS: [(&str, Method); 5] = [
    ("get", Method::GET),
    ("post", Method::POST),
    ("delete", Method::DELETE),
    ("put", Method::PUT),
    ("patch", Method::PATCH),
];

/// Source text without comment lines (comments may quote code).
fn source(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .flat_map(|line| [line, "\n"])
        .collect()
}

/// `src/**/api*.rs` and `src/**/api/*.rs`.
fn api_files(src: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read source dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let in_api_dir = path
                .parent()
                .and_then(|p| p.file_name())
                .is_some_and(|d| d == "api");
            if name.ends_with(".rs") && (name.starts_with("api") || in_api_dir) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The text between the parenthesis at `open` and its match.
fn parenthesised(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses after {}", &text[open..]);
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The name of the function whose body `at` is in: the last `fn <name>` before it.
fn enclosing_fn(text: &str, at: usize) -> String {
    let before = &text[..at];
    let start = before
        .rmatch_indices("fn ")
        .find(|(i, _)| *i == 0 || !is_ident_char(before[..*i].chars().last().unwrap_or(' ')))
        .map(|(i, _)| i + 3)
        .expect("a route outside any function");
    before[start..]
        .chars()
        .take_while(|c| is_ident_char(*c))
        .collect()
}

/// A declared route: one path and one method, with the router function that declares it.
#[derive(Debug)]
struct DeclaredRoute {
    /// `catalog/api/mod.rs::router`.
    router: (PathBuf, String),
    path: String,
    method: Method,
}

/// Every `.route("path", handlers)` of a file, once per method its handlers name.
fn declared_routes(file: &Path) -> Vec<DeclaredRoute> {
    let text = source(file);
    let mut routes = Vec::new();
    for (at, _) in text.match_indices(".route(") {
        let args = parenthesised(&text, at + ".route".len());
        let (path, handlers) = args.split_once(',').expect("route(path, handlers)");
        let path = path.trim().trim_matches('"').to_owned();
        assert!(path.starts_with('/'), "{}: route {path:?}", file.display());
        let mut methods = Vec::new();
        for (name, method) in &METHODS {
            let call = format!("{name}(");
            let named = handlers.match_indices(&call).any(|(i, _)| {
                i == 0 || !is_ident_char(handlers[..i].chars().last().unwrap_or(' '))
            });
            if named {
                methods.push(method.clone());
            }
        }
        assert!(
            !methods.is_empty(),
            "{}: route {path} names no method this test knows: {handlers}",
            file.display()
        );
        let router = (file.to_path_buf(), enclosing_fn(&text, at));
        routes.extend(methods.into_iter().map(|method| DeclaredRoute {
            router: router.clone(),
            path: path.clone(),
            method,
        }));
    }
    routes
}

/// Where `lib.rs` mounts each API router function: `(file, fn) → prefix`. A router is found as
/// `<feature>::api::<fn>()` inside `.nest("<prefix>", ...)` or `.merge(...)`; when that is part of a
/// `let <var> = ...;` that is itself nested (`.nest("/api", <var>)`), the outer prefix comes first.
fn mounts(src: &Path) -> BTreeMap<(PathBuf, String), String> {
    let lib = source(&src.join("lib.rs"));
    let mut found = BTreeMap::new();
    for (at, _) in lib.match_indices("::api::") {
        let module_start = lib[..at]
            .rfind(|c: char| !(is_ident_char(c) || c == ':'))
            .map_or(0, |i| i + 1);
        let module = &lib[module_start..at];
        let function: String = lib[at + "::api::".len()..]
            .chars()
            .take_while(|c| is_ident_char(*c))
            .collect();
        let before = lib[..module_start].trim_end();
        let mut prefix = if let Some(before) = before.strip_suffix(',') {
            let before = before.trim_end();
            let literal_end = before.len() - 1;
            assert!(
                before.ends_with('"'),
                "lib.rs: {module}::api::{function} mounted how?"
            );
            let literal_start = before[..literal_end].rfind('"').expect("a string") + 1;
            assert!(
                before[..literal_start - 1].trim_end().ends_with(".nest("),
                "lib.rs: {module}::api::{function} mounted how?"
            );
            before[literal_start..literal_end].to_owned()
        } else {
            assert!(
                before.ends_with(".merge("),
                "lib.rs: {module}::api::{function} is neither nested nor merged"
            );
            String::new()
        };
        // Outer nests of the variable the router is built into.
        let mut position = at;
        while let Some(let_at) = lib[..position].rfind("let ") {
            let variable: String = lib[let_at + 4..]
                .chars()
                .take_while(|c| is_ident_char(*c))
                .collect();
            let statement_end = position + lib[position..].find(';').expect("a statement end");
            let nest = format!(", {variable})");
            let Some(nested_at) = lib[statement_end..].find(&nest).map(|i| i + statement_end)
            else {
                break;
            };
            let open = lib[..nested_at].rfind(".nest(").expect("a nest") + ".nest(".len();
            let outer = lib[open..nested_at].trim().trim_matches('"');
            prefix = format!("{outer}{prefix}");
            position = nested_at;
        }
        let mut file = src.to_path_buf();
        file.extend(module.split("::"));
        file.push("api");
        let file = if file.join("mod.rs").exists() {
            file.join("mod.rs")
        } else {
            file.with_extension("rs")
        };
        found.insert((file, function), prefix);
    }
    found
}

/// A plausible value for a `{param}` segment.
fn fill(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{uid}" | "{id}" => "8a6d3c1e-2b4f-4c5d-9e7f-0a1b2c3d4e5f",
            "{kind}" => "component",
            "{namespace}" => "default",
            s if s.starts_with("{*") => "a/b",
            s if s.starts_with('{') => "x",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn every_api_route_needs_credentials(pool: PgPool) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mounts = mounts(&src);
    let file = |relative: &str| src.join(relative);
    // The parser reads lib.rs as it is written today.
    for (router, prefix) in [
        (("catalog/api/mod.rs", "router"), "/api/catalog"),
        (("catalog/api/mod.rs", "atrium_router"), "/api/atrium"),
        (("scaffolder/api.rs", "router"), "/api/scaffolder"),
        (("scaffolder/api.rs", "streams"), "/api/scaffolder"),
        (("deploy/api.rs", "router"), "/api"),
        (("auth/api.rs", "router"), "/api"),
    ] {
        let key = (file(router.0), router.1.to_owned());
        assert_eq!(
            mounts.get(&key).map(String::as_str),
            Some(prefix),
            "{router:?} in {mounts:#?}"
        );
    }

    let mut routes = Vec::new();
    for api_file in api_files(&src) {
        for route in declared_routes(&api_file) {
            let prefix = mounts.get(&route.router).unwrap_or_else(|| {
                panic!(
                    "{}::{} declares {} but lib.rs mounts it nowhere this test can see: {mounts:#?}",
                    route.router.0.display(),
                    route.router.1,
                    route.path
                )
            });
            routes.push((route.method, format!("{prefix}{}", route.path)));
        }
    }
    assert!(
        routes.len() >= ROUTE_FLOOR,
        "found only {} routes: {routes:?}",
        routes.len()
    );
    for public in PUBLIC_API_ROUTES {
        assert!(
            routes.iter().any(|(_, path)| path == public),
            "the public route {public} is gone: update PUBLIC_API_ROUTES"
        );
    }

    let app = TestApp::new(pool).await.anonymous();
    let mut failures = Vec::new();
    for (method, path) in &routes {
        if PUBLIC_API_ROUTES.contains(&path.as_str()) {
            continue;
        }
        let uri = fill(path);
        let mut request = Request::builder().method(method.clone()).uri(&uri);
        let body = if *method == Method::GET {
            Body::empty()
        } else {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from("{}")
        };
        let (status, _, bytes) = app.send_raw(request.body(body).expect("request")).await;
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status != StatusCode::UNAUTHORIZED || json["error"]["name"] != "AuthenticationError" {
            failures.push(format!("{method} {uri}: {status} {json}"));
        }
    }
    assert!(
        failures.is_empty(),
        "answered without credentials:\n{}",
        failures.join("\n")
    );
}

/// A request with a bearer token, a session cookie, or nothing (the app must be `anonymous()`).
enum As<'a> {
    Token(&'a str),
    Session(&'a str),
}

async fn call(app: &TestApp, who: As<'_>, method: Method, uri: &str, body: Option<Value>) -> Value {
    let (status, body) = call_status(app, who, method, uri, body).await;
    json!({"status": status.as_u16(), "body": body})
}

async fn call_status(
    app: &TestApp,
    who: As<'_>,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    request = match who {
        As::Token(token) => request.header(header::AUTHORIZATION, format!("Bearer {token}")),
        As::Session(id) => request.header(
            header::COOKIE,
            format!("{}={id}", atrium::auth::middleware::SESSION_COOKIE),
        ),
    };
    let body = match body {
        Some(json) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let (status, _, bytes) = app.send_raw(request.body(body).expect("request")).await;
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json)
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn bad_tokens_are_refused_at_once(pool: PgPool) {
    let app = TestApp::new(pool).await.anonymous();
    let unauthenticated = |(status, body): (StatusCode, Value), what: &str| {
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"]["name"], "AuthenticationError", "{what}");
    };
    let entities = "/api/catalog/entities";
    let unknown = atrium::auth::token::generate().expect("a well-formed token nobody made");
    for (what, token) in [
        ("malformed", "nonsense"),
        ("mistyped", &unknown[..unknown.len() - 1]),
        ("unknown", unknown.as_str()),
    ] {
        unauthenticated(
            call_status(&app, As::Token(token), Method::GET, entities, None).await,
            what,
        );
    }
    // A bad token is refused even alongside a good session: it never falls back.
    let session = app
        .state
        .auth
        .sign_in("user:default/alice", None)
        .await
        .expect("session");
    let request = Request::builder()
        .uri(entities)
        .header(header::AUTHORIZATION, "Basic YWxpY2U6c2VjcmV0")
        .header(
            header::COOKIE,
            format!("{}={session}", atrium::auth::middleware::SESSION_COOKIE),
        )
        .body(Body::empty())
        .expect("request");
    assert_eq!(app.send_raw(request).await.0, StatusCode::UNAUTHORIZED);

    // Expired.
    let expired = common::token_for(&app.state, "user:default/alice", &["catalog:read"]).await;
    assert_eq!(
        call_status(&app, As::Token(&expired), Method::GET, entities, None)
            .await
            .0,
        StatusCode::OK
    );
    sqlx::query!(
        "update api_token set expires_at = now() - interval '1 second' where token_hash = $1",
        sha256_hex(&expired)
    )
    .execute(&app.state.db)
    .await
    .expect("expire");
    unauthenticated(
        call_status(&app, As::Token(&expired), Method::GET, entities, None).await,
        "expired",
    );

    // Revoked through the API: refused at the very next request.
    let created = call(
        &app,
        As::Session(&session),
        Method::POST,
        "/api/auth/tokens",
        Some(json!({"name": "ci", "scopes": ["catalog:read"], "expiresInDays": 7})),
    )
    .await;
    assert_eq!(created["status"], 201, "{created}");
    let token = created["body"]["token"].as_str().expect("token").to_owned();
    let id = created["body"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        call_status(&app, As::Token(&token), Method::GET, entities, None)
            .await
            .0,
        StatusCode::OK
    );
    let revoked = call(
        &app,
        As::Session(&session),
        Method::DELETE,
        &format!("/api/auth/tokens/{id}"),
        None,
    )
    .await;
    assert_eq!(revoked["status"], 200, "{revoked}");
    assert!(revoked["body"]["revokedAt"].is_string());
    unauthenticated(
        call_status(&app, As::Token(&token), Method::GET, entities, None).await,
        "revoked",
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_read_token_cannot_write_and_the_denial_is_audited(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let reader = common::token_for(&app.state, "user:default/bob", &["catalog:read"]).await;
    app.write("x.yaml", common::ORG);
    let target = app.path("x.yaml").display().to_string();
    let refused = app
        .request_as(
            &reader,
            Method::POST,
            "/api/catalog/locations",
            Some(json!({"type": "file", "target": target})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.body["error"]["name"], "NotAllowedError");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("catalog:write"))
    );
    let request_id = refused.headers["x-request-id"].to_str().expect("id");

    let denials = app
        .get("/api/audit?outcome=denied&actor=user:default/bob")
        .await;
    assert_eq!(denials.status, StatusCode::OK, "{}", denials.body);
    let items = denials.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["action"], "permission");
    assert_eq!(items[0]["target"], "POST /api/catalog/locations");
    assert_eq!(items[0]["actorKind"], "token");
    assert_eq!(items[0]["requestId"], request_id);
    assert_eq!(items[0]["detail"]["needs"], "catalog:write");
    // Nothing was registered, and nothing says it was.
    assert_eq!(app.get("/api/catalog/locations").await.body, json!([]));
    let added = app.get("/api/audit?action=location.add").await;
    assert_eq!(added.body["items"], json!([]));
}

/// An agent token with a rate limit gets `limit` requests a minute, shared by every replica (the count
/// is in Postgres); past it, 429 with `Retry-After`, and the first refusal of the minute is audited.
/// The requests may straddle a minute boundary, so the test makes enough of them for a refusal in
/// any case and checks no window let more than `limit` through.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_rate_limited_token_is_refused_past_its_limit(pool: PgPool) {
    let app = TestApp::new(pool).await;
    const LIMIT: usize = 3;
    let bot = common::rate_limited_agent_token(
        &app.state,
        "user:default/bob",
        "bot",
        &["catalog:read"],
        LIMIT as u32,
    )
    .await;
    let other = common::token_for(&app.state, "user:default/bob", &["catalog:read"]).await;
    let mut statuses = Vec::new();
    let mut refusal = None;
    for _ in 0..(2 * LIMIT + 1) {
        let response = app
            .request_as(&bot, Method::GET, "/api/catalog/entities", None)
            .await;
        statuses.push(response.status);
        if response.status == StatusCode::TOO_MANY_REQUESTS && refusal.is_none() {
            refusal = Some(response);
        }
    }
    assert!(
        statuses[..LIMIT].iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let allowed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(allowed <= 2 * LIMIT, "{statuses:?}");
    let refusal = refusal.expect("a refusal past the limit");
    assert_eq!(refusal.body["error"]["name"], "TooManyRequestsError");
    assert!(
        refusal.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("3 requests a minute")),
        "{}",
        refusal.body
    );
    let retry_after: u64 = refusal.headers["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Another token of the same person is not held back.
    assert_eq!(
        app.request_as(&other, Method::GET, "/api/catalog/entities", None)
            .await
            .status,
        StatusCode::OK
    );
    let audited = app.get("/api/audit?action=rate-limit").await;
    let items = audited.body["items"].as_array().expect("items");
    assert!(
        (1..=2).contains(&items.len()),
        "one event per minute refused: {items:?}"
    );
    assert_eq!(items[0]["actor"], "agent:bot");
    assert_eq!(items[0]["outcome"], "denied");
    assert_eq!(items[0]["detail"]["limitPerMinute"], 3);

    let zero = app
        .post(
            "/api/auth/tokens",
            json!({"name": "z", "scopes": ["catalog:read"], "expiresInDays": 1, "rateLimitPerMinute": 0}),
        )
        .await;
    assert_eq!(zero.status, StatusCode::BAD_REQUEST, "{}", zero.body);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn pages_send_anonymous_callers_to_sign_in(pool: PgPool) {
    let app = TestApp::new(pool).await.anonymous();
    for (uri, return_to) in [
        ("/", "%2F"),
        ("/catalog?kind=component", "%2Fcatalog%3Fkind%3Dcomponent"),
        ("/settings/tokens", "%2Fsettings%2Ftokens"),
        ("/audit", "%2Faudit"),
    ] {
        let request = Request::builder()
            .uri(uri)
            .body(Body::empty())
            .expect("request");
        let (status, headers, _) = app.send_raw(request).await;
        assert!(
            matches!(
                status,
                StatusCode::SEE_OTHER | StatusCode::TEMPORARY_REDIRECT
            ),
            "{uri}: {status}"
        );
        assert_eq!(
            headers[header::LOCATION],
            format!("/signin?returnTo={return_to}").as_str(),
            "{uri}"
        );
    }
    // A form post is refused the same way, before it does anything.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/settings/tokens")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("name=x&scope=admin&expiresInDays=1"))
        .expect("request");
    assert_eq!(app.send_raw(request).await.0, StatusCode::SEE_OTHER);
    let count = sqlx::query_scalar!(r#"select count(*) as "n!" from api_token"#)
        .fetch_one(&app.state.db)
        .await
        .expect("count");
    assert_eq!(count, 1, "only the harness's token");

    for uri in ["/healthz", "/static/app.css", "/signin"] {
        let request = Request::builder()
            .uri(uri)
            .body(Body::empty())
            .expect("request");
        let (status, headers, _) = app.send_raw(request).await;
        assert_ne!(status, StatusCode::UNAUTHORIZED, "{uri}");
        let to_sign_in = headers
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .is_some_and(|l| l.starts_with("/signin?"));
        assert!(!to_sign_in, "{uri} sends to sign-in");
        if uri != "/signin" {
            assert_eq!(status, StatusCode::OK, "{uri}");
        }
    }
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn tokens_are_shown_once_and_stored_as_hashes(pool: PgPool) {
    let app = TestApp::new(pool).await.anonymous();
    let alice = app
        .state
        .auth
        .sign_in("user:default/alice", None)
        .await
        .expect("session");
    let created = call(
        &app,
        As::Session(&alice),
        Method::POST,
        "/api/auth/tokens",
        Some(json!({
            "name": "deploy bot",
            "scopes": ["catalog:read", "deploy:dev"],
            "expiresInDays": 30,
            "agent": "deploy-bot",
            "rateLimitPerMinute": 60,
        })),
    )
    .await;
    assert_eq!(created["status"], 201, "{created}");
    let body = &created["body"];
    let token = body["token"].as_str().expect("the token, this once");
    assert!(token.starts_with("atr_"));
    assert_eq!(body["prefix"], &token[..8]);
    assert_eq!(body["scopes"], json!(["catalog:read", "deploy:dev"]));
    assert_eq!(body["agent"], "deploy-bot");
    assert_eq!(body["ownerRef"], "user:default/alice");
    let id: uuid::Uuid = body["id"].as_str().expect("id").parse().expect("uuid");

    let stored = sqlx::query_scalar!("select token_hash from api_token where id = $1", id)
        .fetch_one(&app.state.db)
        .await
        .expect("stored");
    assert_eq!(stored, sha256_hex(token));
    let anywhere = sqlx::query_scalar!(
        r#"select count(*) as "n!" from api_token t where t::text like '%' || $1 || '%'"#,
        token
    )
    .fetch_one(&app.state.db)
    .await
    .expect("search");
    assert_eq!(anywhere, 0, "the token itself is stored nowhere");

    let listed = call(
        &app,
        As::Session(&alice),
        Method::GET,
        "/api/auth/tokens",
        None,
    )
    .await;
    assert_eq!(listed["status"], 200);
    let items = listed["body"]["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert!(items[0].get("token").is_none());
    assert!(
        !listed.to_string().contains(token),
        "the list shows no token"
    );

    // The agent token works, as the agent.
    let me = call(&app, As::Token(token), Method::GET, "/api/auth/me", None).await;
    assert_eq!(me["body"]["actor"], "agent:deploy-bot");
    assert_eq!(me["body"]["userRef"], "user:default/alice");
    let events = sqlx::query_scalar!(
        r#"select count(*) as "n!" from audit_event where action = 'token.create' and actor = 'user:default/alice' and detail::text not like '%' || $1 || '%'"#,
        token
    )
    .fetch_one(&app.state.db)
    .await
    .expect("events");
    assert_eq!(events, 1, "the creation is audited, without the token");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn token_requests_are_checked(pool: PgPool) {
    let app = TestApp::new(pool).await.anonymous();
    let alice = app
        .state
        .auth
        .sign_in("user:default/alice", None)
        .await
        .expect("session");
    let create = |body: Value| {
        let app = &app;
        let alice = alice.clone();
        async move {
            call(
                app,
                As::Session(&alice),
                Method::POST,
                "/api/auth/tokens",
                Some(body),
            )
            .await
        }
    };

    // Wider than its maker: alice is no admin.
    let wider = create(json!({"name": "x", "scopes": ["admin"], "expiresInDays": 1})).await;
    assert_eq!(wider["status"], 403, "{wider}");
    assert_eq!(wider["body"]["error"]["name"], "NotAllowedError");

    // Every token ends, and not too late.
    let no_expiry = create(json!({"name": "x", "scopes": ["catalog:read"]})).await;
    assert_eq!(no_expiry["status"], 400, "{no_expiry}");
    assert_eq!(no_expiry["body"]["error"]["name"], "InputError");
    assert!(
        no_expiry["body"]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expiresInDays")),
        "{no_expiry}"
    );
    for days in [0, 366] {
        let bad =
            create(json!({"name": "x", "scopes": ["catalog:read"], "expiresInDays": days})).await;
        assert_eq!(bad["status"], 400, "{days}: {bad}");
        // The JSON body names no field (only pages show `field`); the message says which rule.
        assert_eq!(bad["body"]["error"]["name"], "InputError");
        assert!(
            bad["body"]["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("must expire, in 1 to 365 days")),
            "{days}: {bad}"
        );
    }

    // A token may not make tokens.
    let token = common::token_for(&app.state, "user:default/alice", &["catalog:write"]).await;
    let by_token = call(
        &app,
        As::Token(&token),
        Method::POST,
        "/api/auth/tokens",
        Some(json!({"name": "x", "scopes": ["catalog:read"], "expiresInDays": 1})),
    )
    .await;
    assert_eq!(by_token["status"], 403, "{by_token}");
    assert_eq!(by_token["body"]["error"]["name"], "NotAllowedError");

    // Only its maker (or an admin) revokes a token; to anyone else it does not exist.
    let made =
        create(json!({"name": "mine", "scopes": ["catalog:read"], "expiresInDays": 1})).await;
    let mine = made["body"]["token"].as_str().expect("token").to_owned();
    let id = made["body"]["id"].as_str().expect("id").to_owned();
    let bob = app
        .state
        .auth
        .sign_in("user:default/bob", None)
        .await
        .expect("session");
    let by_bob = call(
        &app,
        As::Session(&bob),
        Method::DELETE,
        &format!("/api/auth/tokens/{id}"),
        None,
    )
    .await;
    assert_eq!(by_bob["status"], 404, "{by_bob}");
    assert_eq!(by_bob["body"]["error"]["name"], "NotFoundError");
    let bobs_list = call(
        &app,
        As::Session(&bob),
        Method::GET,
        "/api/auth/tokens",
        None,
    )
    .await;
    assert_eq!(bobs_list["body"]["items"], json!([]));
    assert_eq!(
        call_status(
            &app,
            As::Token(&mine),
            Method::GET,
            "/api/catalog/entities",
            None
        )
        .await
        .0,
        StatusCode::OK,
        "still valid"
    );
    let denied = sqlx::query_scalar!(
        r#"select count(*) as "n!" from audit_event
            where action = 'token.revoke' and outcome = 'denied' and actor = 'user:default/bob'"#
    )
    .fetch_one(&app.state.db)
    .await
    .expect("count");
    assert_eq!(denied, 1);
}

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    html: Html,
    text: String,
}

impl Page {
    fn texts(&self, selector: &str) -> Vec<String> {
        let selector = Selector::parse(selector).expect("selector");
        self.html
            .select(&selector)
            .map(|e| e.text().collect::<Vec<_>>().join(" "))
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    fn attrs(&self, selector: &str, attr: &str) -> Vec<String> {
        let selector = Selector::parse(selector).expect("selector");
        self.html
            .select(&selector)
            .filter_map(|e| e.value().attr(attr).map(str::to_owned))
            .collect()
    }
}

async fn page(
    app: &TestApp,
    session: &str,
    method: Method,
    uri: &str,
    form: &[(&str, &str)],
    site: &str,
) -> Page {
    let mut request = Request::builder().method(method.clone()).uri(uri).header(
        header::COOKIE,
        format!("{}={session}", atrium::auth::middleware::SESSION_COOKIE),
    );
    let body = if method == Method::POST {
        request = request
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::HOST, "localhost")
            .header("sec-fetch-site", site);
        Body::from(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        )
    } else {
        Body::empty()
    };
    let (status, headers, bytes) = app.send_raw(request.body(body).expect("request")).await;
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
    Page {
        status,
        headers,
        html: Html::parse_document(&text),
        text,
    }
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn the_tokens_page_creates_shows_once_and_revokes(pool: PgPool) {
    let app = TestApp::new(pool).await.anonymous();
    let alice = app
        .state
        .auth
        .sign_in("user:default/alice", None)
        .await
        .expect("session");
    let empty = page(&app, &alice, Method::GET, "/settings/tokens", &[], "").await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    assert!(empty.texts("table.tokens tr.token").is_empty());
    // alice is no admin: the page does not offer what would be refused.
    assert_eq!(
        empty.attrs("input[name=scope]", "value"),
        ["catalog:read", "catalog:write"]
    );
    assert_eq!(
        empty.texts("nav.site-nav a[href='/settings/tokens']"),
        ["Tokens"]
    );

    // Errors come back next to their fields, with what was typed.
    let wrong = page(
        &app,
        &alice,
        Method::POST,
        "/settings/tokens",
        &[
            ("name", "ci"),
            ("otherScopes", "deploy:dev\nadmin"),
            ("expiresInDays", ""),
        ],
        "same-origin",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::OK);
    assert_eq!(
        wrong.texts("#token-expires-error").len(),
        1,
        "{}",
        wrong.text
    );
    assert_eq!(wrong.attrs("#token-name", "value"), ["ci"]);
    let wider = page(
        &app,
        &alice,
        Method::POST,
        "/settings/tokens",
        &[
            ("name", "ci"),
            ("otherScopes", "deploy:dev\nadmin"),
            ("expiresInDays", "400"),
        ],
        "same-origin",
    )
    .await;
    assert_eq!(
        wider.texts("#token-expires-error").len(),
        1,
        "{}",
        wider.text
    );
    let wider = page(
        &app,
        &alice,
        Method::POST,
        "/settings/tokens",
        &[
            ("name", "ci"),
            ("otherScopes", "deploy:dev\nadmin"),
            ("expiresInDays", "7"),
        ],
        "same-origin",
    )
    .await;
    assert_eq!(
        wider.texts("#token-scopes-error").len(),
        1,
        "{}",
        wider.text
    );
    assert_eq!(wider.texts("#token-other-scopes"), ["deploy:dev admin"]);
    assert!(wider.texts("#new-token").is_empty());

    // Made: shown on this response only, never cached.
    let made = page(
        &app,
        &alice,
        Method::POST,
        "/settings/tokens",
        &[
            ("name", "ci"),
            ("scope", "catalog:read"),
            ("otherScopes", "deploy:dev\r\n"),
            ("expiresInDays", "7"),
            ("agent", ""),
            ("rateLimitPerMinute", "30"),
        ],
        "same-origin",
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text);
    assert_eq!(made.headers[header::CACHE_CONTROL], "no-store");
    let token = made
        .texts("#new-token code.new-token")
        .pop()
        .expect("the new token");
    assert!(token.starts_with("atr_"));
    assert_eq!(made.texts("tr.token .token-name"), ["ci"]);
    assert_eq!(
        made.texts("tr.token .token-scopes"),
        ["catalog:read, deploy:dev"]
    );
    let me = call(&app, As::Token(&token), Method::GET, "/api/auth/me", None).await;
    assert_eq!(me["body"]["scopes"], json!(["catalog:read", "deploy:dev"]));
    let again = page(&app, &alice, Method::GET, "/settings/tokens", &[], "").await;
    assert!(!again.text.contains(&token), "shown once only");
    assert!(again.texts("#new-token").is_empty());

    // Revoked by its button: a POST, from this site only.
    let action = again
        .attrs("tr.token form.revoke-form", "action")
        .pop()
        .expect("a revoke button");
    let forged = page(&app, &alice, Method::POST, &action, &[], "cross-site").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        call_status(&app, As::Token(&token), Method::GET, "/api/auth/me", None)
            .await
            .0,
        StatusCode::OK
    );
    let revoked = page(&app, &alice, Method::POST, &action, &[], "same-origin").await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(revoked.headers[header::LOCATION], "/settings/tokens");
    assert_eq!(
        call_status(&app, As::Token(&token), Method::GET, "/api/auth/me", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let after = page(&app, &alice, Method::GET, "/settings/tokens", &[], "").await;
    assert_eq!(after.texts("tr.token .token-revoked").len(), 1);
    assert!(!after.texts("tr.token .token-revoked")[0].is_empty());
    assert!(
        after
            .attrs("tr.token form.revoke-form", "action")
            .is_empty()
    );

    // Someone else's token cannot be revoked from the page either.
    let bob = app
        .state
        .auth
        .sign_in("user:default/bob", None)
        .await
        .expect("session");
    let by_bob = page(&app, &bob, Method::POST, &action, &[], "same-origin").await;
    assert_eq!(by_bob.status, StatusCode::NOT_FOUND);
}
