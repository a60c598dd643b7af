//! Signing in with a browser (`auth::signin`): `/signin`, the round trip to the provider, the session
//! cookie, `/signout`.
//!
//! The whole flow runs against a live Atrium (a real TCP port) and a real OpenID provider
//! (node-oidc-provider, see `common/oidc_provider.rs`), driven like a browser: redirects followed one
//! by one, cookies kept per origin. GitHub sign-in runs against a small fake of GitHub's OAuth and
//! REST endpoints. The rest (the page's variants, refusals, session ends) goes through the router.

mod common;
#[path = "common/oidc_provider.rs"]
mod oidc_provider;

use atrium::AppState;
use atrium::auth::config::{AuthConfig, Resolver};
use atrium::config::{CatalogConfig, Config, GitConfig, LocationConfig, OrphanPolicy};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::IntoResponse;
use common::TestApp;
use oidc_provider::{Browser, NodeProvider};
use serde_json::{Value, json};
use sqlx::PgPool;

const SESSION_COOKIE: &str = "__Host-atrium_session";

/// alice, whose email is the provider account's, and bob.
const USERS: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: alice
spec:
  profile:
    email: Alice@Example.com
  memberOf: []
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: bob
spec:
  profile:
    email: bob@example.com
  memberOf: []
"#;

/// Only bob: nobody matches alice.
const ONLY_BOB: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: bob
spec:
  profile:
    email: bob@example.com
  memberOf: []
"#;

// ---------------------------------------------------------------------------------------------
// Live: Atrium on a port, the real provider.

/// Atrium serving on 127.0.0.1 with `auth.oidc` pointing at a real provider, `users` in the catalog.
struct Live {
    base: String,
    state: AppState,
    provider: NodeProvider,
    admin: String,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Live {
    async fn start(pool: PgPool, users: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let provider = NodeProvider::start(&format!("{base}/auth/oidc/callback")).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let users_file = dir.path().join("users.yaml");
        std::fs::write(&users_file, users).expect("write users");
        let config = Config {
            catalog: CatalogConfig {
                locations: vec![LocationConfig {
                    location_type: "file".to_owned(),
                    target: users_file.display().to_string(),
                }],
                file_roots: vec![dir.path().to_path_buf()],
                orphan_policy: OrphanPolicy::Delete,
                git: GitConfig {
                    cache_dir: dir.path().join(".git-cache"),
                    ..GitConfig::default()
                },
                ..CatalogConfig::default()
            },
            auth: AuthConfig {
                public_url: Some(base.clone()),
                oidc: Some(provider.config(dir.path())),
                ..AuthConfig::default()
            },
            ..Config::default()
        };
        let state = AppState::new(pool, config).expect("state");
        state
            .catalog
            .sync_configured_locations()
            .await
            .expect("locations");
        state.catalog.process_until_idle().await.expect("ingest");
        let admin = common::admin_token(&state).await;
        let router = atrium::app(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        Self {
            base,
            state,
            provider,
            admin,
            server,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path` with only this session cookie (or none).
    async fn get_with_session(&self, path: &str, session: Option<&str>) -> reqwest::Response {
        let mut request = oidc_provider::http_client().get(self.url(path));
        if let Some(session) = session {
            request = request.header(header::COOKIE, format!("{SESSION_COOKIE}={session}"));
        }
        request.send().await.expect("atrium answers")
    }

    /// `POST /signout` as a browser sends it from a page of `site` (`same-origin`, `cross-site`).
    async fn sign_out(&self, session: &str, site: &str) -> reqwest::Response {
        oidc_provider::http_client()
            .post(self.url("/signout"))
            .header(header::COOKIE, format!("{SESSION_COOKIE}={session}"))
            .header("sec-fetch-site", site)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("")
            .send()
            .await
            .expect("atrium answers")
    }

    /// Audit events with `action`, oldest first.
    async fn audit(&self, action: &str) -> Vec<Value> {
        let response = oidc_provider::http_client()
            .get(self.url(&format!("/api/audit?action={action}")))
            .bearer_auth(&self.admin)
            .send()
            .await
            .expect("atrium answers");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        let mut items = body["items"].as_array().expect("items").clone();
        items.reverse();
        items
    }

    /// Through `/auth/oidc/start?returnTo=` and the provider as `account`, up to (not into) the
    /// callback: the pending session's id and the callback URL.
    async fn to_callback(
        &self,
        browser: &mut Browser,
        return_to: &str,
        account: &str,
    ) -> (String, String) {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("returnTo", return_to)
            .finish();
        let start = browser
            .get(&self.url(&format!("/auth/oidc/start?{query}")))
            .await;
        assert_eq!(start.status(), StatusCode::SEE_OTHER);
        let authorize = location(&start);
        assert!(
            authorize.starts_with(&format!("{}/auth?", self.provider.issuer)),
            "{authorize}"
        );
        assert_session_cookie(&start, 600);
        let pending = browser
            .cookie(&self.base, SESSION_COOKIE)
            .expect("a pending session cookie");
        let callback = browser
            .sign_in_at_provider(&authorize, account, &self.url("/auth/oidc/callback"))
            .await;
        (pending, callback)
    }
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .expect("location")
        .to_str()
        .expect("ascii")
        .to_owned()
}

/// The response sets the session cookie with the attributes it must have.
fn assert_session_cookie(response: &reqwest::Response, max_age: u64) {
    let set = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .find(|v| v.starts_with(&format!("{SESSION_COOKIE}=")))
        .expect("a session cookie is set");
    let attributes: Vec<&str> = set.split(';').skip(1).map(str::trim).collect();
    for wanted in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        &format!("Max-Age={max_age}"),
    ] {
        assert!(attributes.contains(&wanted), "{wanted} missing in {set}");
    }
    assert!(!set.contains("Domain="), "{set}");
}

/// The `Set-Cookie` of the response clears the session cookie.
fn clears_session_cookie(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with(&format!("{SESSION_COOKIE}=;")) && v.contains("Max-Age=0"))
}

fn html_select(html: &str, selector: &str) -> Vec<(String, String)> {
    let page = scraper::Html::parse_document(html);
    let selector = scraper::Selector::parse(selector).expect("selector");
    page.select(&selector)
        .map(|e| {
            (
                e.value().attr("href").unwrap_or_default().to_owned(),
                e.text().collect::<String>().trim().to_owned(),
            )
        })
        .collect()
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn signs_in_with_the_provider_and_out_again(pool: PgPool) {
    let live = Live::start(pool, USERS).await;
    let mut browser = Browser::new();

    // A page without a session sends the browser to sign in, remembering where it was going.
    let catalog = browser.get(&live.url("/catalog")).await;
    assert_eq!(catalog.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&catalog), "/signin?returnTo=%2Fcatalog");

    // The sign-in page has the provider's button, which carries returnTo on.
    let page = browser.get(&live.url("/signin?returnTo=%2Fcatalog")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert_eq!(
        html_select(&html, ".signin-providers a"),
        [(
            "/auth/oidc/start?returnTo=%2Fcatalog".to_owned(),
            "Sign in with Test ID".to_owned()
        )]
    );

    let (pending, callback) = live.to_callback(&mut browser, "/catalog", "alice").await;
    // Before the callback, the pending session authenticates nothing.
    let me = live.get_with_session("/api/auth/me", Some(&pending)).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);

    let back = browser.get(&callback).await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&back), "/catalog");
    assert_eq!(
        back.headers().get(header::CACHE_CONTROL).expect("no-store"),
        "no-store"
    );
    assert_session_cookie(&back, 7 * 24 * 3600);
    let session = browser
        .cookie(&live.base, SESSION_COOKIE)
        .expect("a session cookie");
    // Session fixation: a new id, and the one from before the sign-in is gone.
    assert_ne!(session, pending);
    let fixed = live.get_with_session("/api/auth/me", Some(&pending)).await;
    assert_eq!(fixed.status(), StatusCode::UNAUTHORIZED);

    let me = browser.get(&live.url("/api/auth/me")).await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.expect("json");
    assert_eq!(me["userRef"], "user:default/alice");
    assert_eq!(me["kind"], "user");
    let catalog = browser.get(&live.url("/catalog")).await;
    assert_eq!(catalog.status(), StatusCode::OK);
    // The sign-in page knows who is signed in.
    let page = browser.get(&live.url("/signin")).await;
    let html = page.text().await.expect("html");
    assert!(html.contains("user:default/alice"), "{html}");

    // The callback cannot be replayed: its login was used.
    let replay = callback.replace(&live.base, "");
    let replay = live.get_with_session(&replay, Some(&pending)).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);

    // Signing out from another site is refused; the session lives on.
    let forged = live.sign_out(&session, "cross-site").await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let me = live.get_with_session("/api/auth/me", Some(&session)).await;
    assert_eq!(me.status(), StatusCode::OK);

    let out = live.sign_out(&session, "same-origin").await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&out), "/signin");
    assert!(clears_session_cookie(&out));
    let me = live.get_with_session("/api/auth/me", Some(&session)).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);

    let sign_ins = live.audit("sign-in").await;
    assert_eq!(sign_ins.len(), 1, "{sign_ins:?}");
    assert_eq!(sign_ins[0]["actor"], "user:default/alice");
    assert_eq!(sign_ins[0]["outcome"], "success");
    let sign_outs = live.audit("sign-out").await;
    assert_eq!(sign_outs.len(), 1, "{sign_outs:?}");
    assert_eq!(sign_outs[0]["actor"], "user:default/alice");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn nobody_in_the_catalog_means_no_session(pool: PgPool) {
    let live = Live::start(pool, ONLY_BOB).await;
    let mut browser = Browser::new();
    let (pending, callback) = live.to_callback(&mut browser, "/catalog", "alice").await;

    let refused = browser.get(&callback).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(clears_session_cookie(&refused));
    let html = refused.text().await.expect("html");
    for said in [
        "alice@example.com",
        "Sign in with Test ID",
        "a User whose spec.profile.email is alice@example.com",
        "spec.profile.email: alice@example.com",
    ] {
        assert!(html.contains(said), "{said} not in {html}");
    }
    assert!(browser.cookie(&live.base, SESSION_COOKIE).is_none());
    let me = live.get_with_session("/api/auth/me", Some(&pending)).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    let sessions: i64 = sqlx::query_scalar("select count(*) from auth_session")
        .fetch_one(&live.state.db)
        .await
        .expect("count");
    assert_eq!(sessions, 0);

    let events = live.audit("sign-in").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["outcome"], "denied");
    assert_eq!(event["actor"], "oidc:alice");
    assert_eq!(event["actorKind"], "anonymous");
    assert_eq!(event["target"], "alice@example.com");
    assert_eq!(event["detail"]["email"], "alice@example.com");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn return_to_cannot_leave_the_site_through_the_callback(pool: PgPool) {
    let live = Live::start(pool, USERS).await;
    let mut browser = Browser::new();

    let page = browser
        .get(&live.url("/signin?returnTo=%2F%2Fevil.example%2Fx"))
        .await;
    let html = page.text().await.expect("html");
    assert_eq!(
        html_select(&html, ".signin-providers a")[0].0,
        "/auth/oidc/start?returnTo=%2F"
    );

    // Straight to start, as an attacker's link would.
    let (_, callback) = live
        .to_callback(&mut browser, "https://atrium@evil.example/", "alice")
        .await;
    let back = browser.get(&callback).await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&back), "/");

    let (_, callback) = live
        .to_callback(&mut browser, "/catalog?kind=user", "alice")
        .await;
    let back = browser.get(&callback).await;
    assert_eq!(location(&back), "/catalog?kind=user");
}

// ---------------------------------------------------------------------------------------------
// Through the router.

async fn anonymous_app(pool: PgPool, adjust: impl FnOnce(&mut AuthConfig)) -> TestApp {
    TestApp::with_full_config(pool, |config| adjust(&mut config.auth))
        .await
        .anonymous()
}

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    html: String,
}

async fn send(app: &TestApp, request: Request<Body>) -> Page {
    let (status, headers, bytes) = app.send_raw(request).await;
    Page {
        status,
        headers,
        html: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(app: &TestApp, uri: &str, session: Option<&str>) -> Page {
    let mut request = Request::builder().uri(uri);
    if let Some(session) = session {
        request = request.header(header::COOKIE, format!("{SESSION_COOKIE}={session}"));
    }
    send(app, request.body(Body::empty()).expect("request")).await
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn the_page_says_how_to_configure_sign_in_when_nothing_is(pool: PgPool) {
    let app = anonymous_app(pool, |_| {}).await;
    let page = get(&app, "/signin", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("id=\"no-provider\""), "{}", page.html);
    assert!(page.html.contains("auth.oidc") || page.html.contains("oidc:"));
    assert!(!page.html.contains("guest-note"));
    // No provider, no round trip.
    let start = get(&app, "/auth/oidc/start", None).await;
    assert_eq!(start.status, StatusCode::NOT_FOUND);
    let start = get(&app, "/auth/saml/start", None).await;
    assert_eq!(start.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn the_page_tells_a_guest_they_browse_as_the_guest(pool: PgPool) {
    let app = anonymous_app(pool, |auth| auth.guest = true).await;
    let page = get(&app, "/signin?returnTo=%2Fcreate", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("id=\"guest-note\""), "{}", page.html);
    assert!(page.html.contains("user:default/guest"));
    assert!(page.html.contains("href=\"/create\""));
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_provider_that_is_down_is_an_error_on_its_button_not_at_start_up(pool: PgPool) {
    // Nothing listens on port 1: discovery fails, at the first sign-in rather than at start-up.
    let app = anonymous_app(pool, |auth| {
        auth.oidc = Some(atrium::auth::oidc::OidcConfig {
            issuer: "http://127.0.0.1:1".to_owned(),
            client_id: "atrium".to_owned(),
            client_secret_env: None,
            client_secret_file: None,
            scopes: vec!["openid".to_owned()],
            display_name: Some("Company login".to_owned()),
        });
    })
    .await;
    let page = get(&app, "/signin", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Company login"));

    let start = get(&app, "/auth/oidc/start?returnTo=%2Fcatalog", None).await;
    assert_eq!(start.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(start.headers.get(header::SET_COOKIE).is_none());
    assert!(
        start
            .html
            .contains("Company login is not available just now"),
        "{}",
        start.html
    );
    // The button is still there to try again, returnTo kept.
    assert!(
        start
            .html
            .contains("href=\"/auth/oidc/start?returnTo=%2Fcatalog\"")
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_callback_without_its_login_is_refused(pool: PgPool) {
    let app = anonymous_app(pool, |auth| {
        auth.oidc = Some(atrium::auth::oidc::OidcConfig {
            issuer: "http://127.0.0.1:1".to_owned(),
            client_id: "atrium".to_owned(),
            client_secret_env: None,
            client_secret_file: None,
            scopes: vec!["openid".to_owned()],
            display_name: None,
        });
    })
    .await;
    let callback = get(&app, "/auth/oidc/callback?code=c&state=s", None).await;
    assert_eq!(callback.status, StatusCode::BAD_REQUEST);
    assert!(callback.html.contains("Start again"), "{}", callback.html);

    // A signed-in session brought to the callback is not a login under way, and is left alone.
    let session = app
        .state
        .auth
        .sign_in("user:default/alice", None)
        .await
        .expect("session");
    let callback = get(&app, "/auth/oidc/callback?code=c&state=s", Some(&session)).await;
    assert_eq!(callback.status, StatusCode::BAD_REQUEST);
    assert!(callback.headers.get(header::SET_COOKIE).is_none());
    let me = get(&app, "/api/auth/me", Some(&session)).await;
    assert_eq!(me.status, StatusCode::OK);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn sessions_end_when_idle_and_at_their_absolute_end(pool: PgPool) {
    let app = anonymous_app(pool, |_| {}).await;
    let idle = app
        .state
        .auth
        .sign_in("user:default/alice", None)
        .await
        .expect("session");
    let old = app
        .state
        .auth
        .sign_in("user:default/alice", None)
        .await
        .expect("session");
    for session in [&idle, &old] {
        let me = get(&app, "/api/auth/me", Some(session)).await;
        assert_eq!(me.status, StatusCode::OK);
    }

    let hash = |id: &str| atrium::auth::token::hash(id);
    // Idle for longer than the idle timeout (8 hours by default).
    sqlx::query(
        "update auth_session set last_seen_at = now() - interval '9 hours' where id_hash = $1",
    )
    .bind(hash(&idle))
    .execute(&app.state.db)
    .await
    .expect("update");
    // Past the absolute end, though just used.
    sqlx::query(
        "update auth_session set expires_at = now() - interval '1 second' where id_hash = $1",
    )
    .bind(hash(&old))
    .execute(&app.state.db)
    .await
    .expect("update");
    for session in [&idle, &old] {
        let me = get(&app, "/api/auth/me", Some(session)).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED);
        let page = get(&app, "/catalog", Some(session)).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
    }
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn sign_out_from_another_site_is_refused(pool: PgPool) {
    let app = anonymous_app(pool, |_| {}).await;
    let session = app
        .state
        .auth
        .sign_in("user:default/alice", None)
        .await
        .expect("session");
    let sign_out = |site: &'static str| {
        Request::builder()
            .method(Method::POST)
            .uri("/signout")
            .header(header::COOKIE, format!("{SESSION_COOKIE}={session}"))
            .header("sec-fetch-site", site)
            .body(Body::empty())
            .expect("request")
    };
    let forged = send(&app, sign_out("cross-site")).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.headers.get(header::SET_COOKIE).is_none());
    assert_eq!(
        get(&app, "/api/auth/me", Some(&session)).await.status,
        StatusCode::OK
    );
    let out = send(&app, sign_out("same-origin")).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        get(&app, "/api/auth/me", Some(&session)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

// ---------------------------------------------------------------------------------------------
// GitHub, against a fake of its OAuth and REST endpoints.

/// GitHub's access-token endpoint (checks the code and that a PKCE verifier came), `/user` and
/// `/user/emails` for the token it gave.
async fn fake_github(login: &'static str, email: &'static str) -> String {
    use axum::routing::{get, post};
    let authorized = |headers: &axum::http::HeaderMap| {
        headers
            .get(header::AUTHORIZATION)
            .is_some_and(|v| v == "Bearer gho_test")
    };
    let router = axum::Router::new()
        .route(
            "/login/oauth/access_token",
            post(move |body: String| async move {
                let form: std::collections::HashMap<String, String> =
                    url::form_urlencoded::parse(body.as_bytes())
                        .into_owned()
                        .collect();
                let good = form.get("code").is_some_and(|c| c == "the-code")
                    && form.get("client_secret").is_some_and(|s| s == "gh-secret")
                    && form.get("code_verifier").is_some_and(|v| v.len() >= 43);
                axum::Json(if good {
                    json!({"access_token": "gho_test", "token_type": "bearer", "scope": "read:user,user:email"})
                } else {
                    json!({"error": "bad_verification_code"})
                })
            }),
        )
        .route(
            "/api/v3/user",
            get(move |headers: axum::http::HeaderMap| async move {
                if !authorized(&headers) {
                    return (StatusCode::UNAUTHORIZED, axum::Json(json!({}))).into_response();
                }
                axum::Json(json!({"id": 4242, "login": login, "name": "Alice"})).into_response()
            }),
        )
        .route(
            "/api/v3/user/emails",
            get(move |headers: axum::http::HeaderMap| async move {
                if !authorized(&headers) {
                    return (StatusCode::UNAUTHORIZED, axum::Json(json!([]))).into_response();
                }
                axum::Json(json!([
                    {"email": "old@example.com", "primary": false, "verified": true},
                    {"email": email, "primary": true, "verified": true},
                ]))
                .into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    base
}

/// `/auth/github/start` then the callback with GitHub's code: the callback's answer.
async fn github_sign_in(app: &TestApp, return_to: &str) -> Page {
    let start = get(
        app,
        &format!("/auth/github/start?returnTo={return_to}"),
        None,
    )
    .await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.html);
    let authorize = start.headers[header::LOCATION].to_str().expect("ascii");
    let asked: std::collections::HashMap<String, String> = url::Url::parse(authorize)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(asked["client_id"], "gh-client");
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(
        asked["redirect_uri"],
        "http://127.0.0.1:7007/auth/github/callback"
    );
    let set = start.headers[header::SET_COOKIE].to_str().expect("ascii");
    let pending = set
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .expect("cookie")
        .1
        .to_owned();
    get(
        app,
        &format!(
            "/auth/github/callback?code=the-code&state={}",
            asked["state"]
        ),
        Some(&pending),
    )
    .await
}

async fn github_app(pool: PgPool, login: &'static str, resolvers: Vec<Resolver>) -> TestApp {
    let github = fake_github(login, "ALICE@example.com").await;
    let app = TestApp::with_full_config(pool, |config| {
        // The secret is read at the first sign-in, from the app's temporary root.
        let secret = config.catalog.file_roots[0].join("gh-secret");
        std::fs::write(&secret, "gh-secret\n").expect("write");
        config.auth.github = Some(atrium::auth::github::GithubConfig {
            client_id: "gh-client".to_owned(),
            client_secret_env: None,
            client_secret_file: Some(secret),
            api_url: format!("{github}/api/v3"),
            web_url: github.clone(),
            display_name: None,
        });
        config.auth.sign_in_resolvers = resolvers;
    })
    .await;
    app.add("users.yaml", USERS).await;
    app.anonymous()
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn signs_in_with_github_by_verified_email(pool: PgPool) {
    let app = github_app(pool, "alice-gh", vec![Resolver::Email]).await;
    let page = get(&app, "/signin", None).await;
    assert!(page.html.contains("Sign in with GitHub"), "{}", page.html);

    let back = github_sign_in(&app, "%2Fcreate").await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.html);
    assert_eq!(back.headers[header::LOCATION], "/create");
    let set = back.headers[header::SET_COOKIE].to_str().expect("ascii");
    let session = set
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .expect("cookie")
        .1
        .to_owned();
    let me = get(&app, "/api/auth/me", Some(&session)).await;
    let me: Value = serde_json::from_str(&me.html).expect("json");
    assert_eq!(me["userRef"], "user:default/alice");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn github_logins_match_user_names_only_when_asked(pool: PgPool) {
    // The login `bob` with alice's email: by user name, it is bob.
    let app = github_app(pool, "bob", vec![Resolver::Username]).await;
    let back = github_sign_in(&app, "%2F").await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.html);
    let set = back.headers[header::SET_COOKIE].to_str().expect("ascii");
    let session = set
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .expect("cookie")
        .1
        .to_owned();
    let me = get(&app, "/api/auth/me", Some(&session)).await;
    let me: Value = serde_json::from_str(&me.html).expect("json");
    assert_eq!(me["userRef"], "user:default/bob");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn github_login_without_a_matching_resolver_is_denied(pool: PgPool) {
    // The login `alice-gh` is nobody's name, and email resolvers are off.
    let app = github_app(pool, "alice-gh", vec![Resolver::Username]).await;
    let back = github_sign_in(&app, "%2F").await;
    assert_eq!(back.status, StatusCode::FORBIDDEN, "{}", back.html);
    assert!(back.html.contains("a User named alice-gh"), "{}", back.html);
}
