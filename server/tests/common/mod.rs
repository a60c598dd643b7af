//! Shared test helpers: a `TestApp` that drives the real router against the per-test Postgres database
//! that `#[sqlx::test]` creates, with a temporary directory as the only allowed catalog root.

#![allow(dead_code)] // each test binary uses a different subset

pub mod authz;
pub mod git;
pub mod github_fake;
pub mod kube_fake;
pub mod mcp_client;

use std::path::{Path, PathBuf};

use atrium::config::{CatalogConfig, Config, GitConfig, OrphanPolicy, ScaffolderConfig};
use atrium::{AppState, app};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::PgPool;
use tower::ServiceExt;

pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub root: tempfile::TempDir,
    /// An admin's API token, sent with every request that carries no `Authorization` of its own
    /// (the harness acts as a signed-in admin); `None` after `anonymous()`.
    pub token: Option<String>,
}

/// An admin's API token (a day long) for requests to `state`'s router.
pub async fn admin_token(state: &AppState) -> String {
    state
        .auth
        .issue(
            "user:default/admin",
            &atrium::auth::Scopes(vec![atrium::auth::Scope::Admin]),
            "test harness",
            1,
        )
        .await
        .expect("an admin token for the test harness")
}

/// A token acting for `user_ref` with `scopes` (`["catalog:read", "template:run:default/x"]`), made
/// the way a person makes one (`POST /api/auth/tokens`), for tests of who may do what.
pub async fn token_for(state: &AppState, user_ref: &str, scopes: &[&str]) -> String {
    token_with(state, user_ref, scopes, None, None).await
}

/// An agent token: `agent` is the actor of what it does, acting for `user_ref`.
pub async fn agent_token_for(
    state: &AppState,
    user_ref: &str,
    agent: &str,
    scopes: &[&str],
) -> String {
    token_with(state, user_ref, scopes, Some(agent), None).await
}

/// An agent token allowed `per_minute` requests a minute.
pub async fn rate_limited_agent_token(
    state: &AppState,
    user_ref: &str,
    agent: &str,
    scopes: &[&str],
    per_minute: u32,
) -> String {
    token_with(state, user_ref, scopes, Some(agent), Some(per_minute)).await
}

async fn token_with(
    state: &AppState,
    user_ref: &str,
    scopes: &[&str],
    agent: Option<&str>,
    rate_limit_per_minute: Option<u32>,
) -> String {
    let maker = atrium::auth::Caller {
        user_ref: user_ref.to_owned(),
        kind: atrium::auth::ActorKind::User,
        token_id: None,
        agent: None,
        scopes: atrium::auth::Scopes(vec![atrium::auth::Scope::Admin]),
        groups: Vec::new(),
        request_id: None,
    };
    let request = atrium::auth::service::TokenRequest {
        name: format!("test token for {user_ref}"),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        expires_in_days: 1,
        agent: agent.map(str::to_owned),
        rate_limit_per_minute,
        owner: None,
    };
    state
        .auth
        .create_token(&maker, &request)
        .await
        .expect("a token")
        .0
}

pub struct Response {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub async fn new(pool: PgPool) -> Self {
        Self::with_config(pool, |_| {}).await
    }

    /// A test app whose catalog config `adjust` may change (allowlists, orphan policy...).
    pub async fn with_config(pool: PgPool, adjust: impl FnOnce(&mut CatalogConfig)) -> Self {
        Self::with_full_config(pool, |config| adjust(&mut config.catalog)).await
    }

    /// A test app whose whole config `adjust` may change. Task workspaces live in the temporary root.
    pub async fn with_full_config(pool: PgPool, adjust: impl FnOnce(&mut Config)) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            catalog: CatalogConfig {
                locations: Vec::new(),
                file_roots: vec![root.path().to_path_buf()],
                orphan_policy: OrphanPolicy::Delete,
                git: GitConfig {
                    cache_dir: root.path().join(".git-cache"),
                    ..GitConfig::default()
                },
                ..CatalogConfig::default()
            },
            scaffolder: ScaffolderConfig {
                workspace_dir: root.path().join(".workspaces"),
                ..ScaffolderConfig::default()
            },
            ..Config::default()
        };
        adjust(&mut config);
        let state = AppState::new(pool, config).expect("state");
        // Long polls and event streams hear of new task events as a server's would.
        state.scaffolder.spawn_listener();
        let router = app(state.clone());
        let token = admin_token(&state).await;
        Self {
            state,
            router,
            root,
            token: Some(token),
        }
    }

    /// The same app, sending no credentials (for tests of what anonymous callers get).
    pub fn anonymous(mut self) -> Self {
        self.token = None;
        self
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    /// Writes a file under the catalog root (creating folders).
    pub fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, content).expect("write");
        path
    }

    pub fn remove(&self, relative: &str) {
        std::fs::remove_file(self.path(relative)).expect("remove");
    }

    /// Registers a file location through the API and returns its id.
    /// Writes a catalog file, registers it and processes it; returns the location id.
    pub async fn add(&self, relative: &str, content: &str) -> String {
        self.write(relative, content);
        let id = self.register(relative).await;
        self.process().await;
        id
    }

    pub async fn register(&self, relative: &str) -> String {
        let target = self.path(relative).display().to_string();
        let response = self
            .post(
                "/api/catalog/locations",
                serde_json::json!({"type": "file", "target": target}),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "register {relative}: {}",
            response.body
        );
        response.body["location"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// Runs processing and stitching until nothing is due (deterministic: no background workers).
    pub async fn process(&self) {
        self.state
            .catalog
            .process_until_idle()
            .await
            .expect("processing");
    }

    /// Makes every location due now and processes: what the next refresh interval would do.
    pub async fn refresh_all(&self) {
        sqlx::query!("update location set next_refresh_at = now()")
            .execute(&self.state.db)
            .await
            .expect("make due");
        self.process().await;
    }

    /// A request with another caller's token instead of the harness's admin token.
    pub async fn request_as(
        &self,
        token: &str,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> Response {
        let credentials = (header::AUTHORIZATION, format!("Bearer {token}"));
        self.request_with(credentials, method, uri, body).await
    }

    /// A request in a signed-in person's session (`AuthService::sign_in`'s id) instead of a token.
    pub async fn request_in_session(
        &self,
        session: &str,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> Response {
        let cookie = format!("{}={session}", atrium::auth::middleware::SESSION_COOKIE);
        self.request_with((header::COOKIE, cookie), method, uri, body)
            .await
    }

    async fn request_with(
        &self,
        (name, value): (header::HeaderName, String),
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> Response {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(name, value);
        let body = match body {
            Some(json) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let (status, headers, bytes) = self.send_raw(builder.body(body).expect("request")).await;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Response {
            status,
            headers,
            body,
        }
    }

    pub async fn request(&self, method: Method, uri: &str, body: Option<Value>) -> Response {
        let mut builder = Request::builder().method(method).uri(uri);
        let body = match body {
            Some(json) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let (status, headers, bytes) = self.send_raw(builder.body(body).expect("request")).await;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Response {
            status,
            headers,
            body,
        }
    }

    /// Sends any request through the router; the body comes back as bytes (HTML, JSON, CSS...).
    pub async fn send_raw(
        &self,
        mut request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, axum::body::Bytes) {
        // A request with credentials of its own (a token, a session cookie) goes as that caller.
        if let Some(token) = &self.token
            && !request.headers().contains_key(header::AUTHORIZATION)
            && !request.headers().contains_key(header::COOKIE)
        {
            request.headers_mut().insert(
                header::AUTHORIZATION,
                format!("Bearer {token}").parse().expect("header value"),
            );
        }
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, headers, bytes)
    }

    pub async fn get(&self, uri: &str) -> Response {
        self.request(Method::GET, uri, None).await
    }

    pub async fn post(&self, uri: &str, body: Value) -> Response {
        self.request(Method::POST, uri, Some(body)).await
    }

    pub async fn delete(&self, uri: &str) -> Response {
        self.request(Method::DELETE, uri, None).await
    }

    /// The entity's final JSON, or panics with the status.
    pub async fn entity(&self, kind: &str, name: &str) -> Value {
        let response = self
            .get(&format!(
                "/api/catalog/entities/by-name/{kind}/default/{name}"
            ))
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{kind}/{name}: {}",
            response.body
        );
        response.body
    }

    pub async fn entity_status(&self, kind: &str, name: &str) -> StatusCode {
        self.get(&format!(
            "/api/catalog/entities/by-name/{kind}/default/{name}"
        ))
        .await
        .status
    }

    /// Names of the entities an entity list answer holds, sorted.
    pub fn names(body: &Value) -> Vec<String> {
        let items = body.get("items").unwrap_or(body);
        let mut names: Vec<String> = items
            .as_array()
            .expect("array")
            .iter()
            .map(|e| e["metadata"]["name"].as_str().expect("name").to_owned())
            .collect();
        names.sort();
        names
    }
}

/// Messages of an entity's `status.items`.
pub fn status_messages(entity: &Value) -> Vec<String> {
    entity["status"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

impl TestApp {
    /// Processing errors of a registered location, as shown on its generated Location entity.
    pub async fn location_errors(&self, location_id: &str) -> Vec<String> {
        let location = self
            .get(&format!("/api/catalog/locations/{location_id}"))
            .await;
        let entity_ref = location.body["entityRef"].as_str().expect("entityRef");
        let name = entity_ref.rsplit('/').next().expect("name");
        status_messages(&self.entity("location", name).await)
    }
}

/// Relations of an entity as "type target" strings, sorted.
pub fn relations(entity: &Value) -> Vec<String> {
    let mut out: Vec<String> = entity["relations"]
        .as_array()
        .expect("relations")
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["type"].as_str().expect("type"),
                r["targetRef"].as_str().expect("ref")
            )
        })
        .collect();
    out.sort();
    out
}

pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
}

/// A small, valid company catalog used by several tests.
pub const ORG: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
  title: Team A
spec:
  type: team
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: alice
spec:
  memberOf: [team-a]
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: payments
spec:
  owner: team-a
"#;

pub const SERVICES: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  description: Takes the money
  tags: [java, pci]
spec:
  type: service
  lifecycle: production
  owner: team-a
  system: payments
  providesApis: [checkout-api]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: storefront
  tags: [typescript]
spec:
  type: website
  lifecycle: experimental
  owner: user:alice
  consumesApis: [checkout-api]
  dependsOn: [component:checkout]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: checkout-api
spec:
  type: openapi
  lifecycle: production
  owner: team-a
  definition:
    $text: ./checkout-openapi.yaml
"#;

pub const CHECKOUT_OPENAPI: &str =
    "openapi: 3.0.0\ninfo: {title: Checkout, version: '1'}\npaths: {}\n";

/// Writes ORG + SERVICES under a root `catalog.yaml` Location and registers it; returns the location id.
pub async fn load_sample(app: &TestApp) -> String {
    app.write("org.yaml", ORG);
    app.write("services.yaml", SERVICES);
    app.write("checkout-openapi.yaml", CHECKOUT_OPENAPI);
    app.write(
        "catalog.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: sample\nspec:\n  targets: [./org.yaml, ./services.yaml]\n",
    );
    let id = app.register("catalog.yaml").await;
    app.process().await;
    id
}

/// A scaffolder task as the API shows it, and its log lines (every event's `body.message`), in order.
pub async fn task_and_log(app: &TestApp, id: impl std::fmt::Display) -> (Value, Vec<String>) {
    let task = app.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
    let events = app
        .get(&format!("/api/scaffolder/v2/tasks/{id}/events"))
        .await;
    let log = events
        .body
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["body"]["message"].as_str().map(str::to_owned))
        .collect();
    (task.body, log)
}

/// Every file under `start`, named by its path from `root`, as Backstage's template editor sends a
/// template's folder to `POST /v2/dry-run` (`directoryContents`).
pub fn directory_contents(root: &Path, start: &Path) -> Vec<Value> {
    use base64::Engine;
    let mut contents = Vec::new();
    let mut stack = vec![start.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path
                    .strip_prefix(root)
                    .expect("inside")
                    .display()
                    .to_string();
                let bytes = std::fs::read(&path).expect("read");
                contents.push(serde_json::json!({
                    "path": relative,
                    "base64Content": base64::engine::general_purpose::STANDARD.encode(bytes),
                }));
            }
        }
    }
    contents
}
