//! Sign-in with OpenID Connect (`auth::oidc`).
//!
//! Against a real provider first: node-oidc-provider (tests/oidc-provider, installed with `npm ci
//! --prefix tests/oidc-provider`), driven through its login and consent pages like a browser, for the
//! whole flow and the attacks the provider itself must stop (a code from another login, a wrong PKCE
//! verifier) or that we stop before asking it (`state`).
//!
//! Then against a fake provider in this process, whose token endpoint checks each request it gets and
//! answers with an ID token the test forges: wrong nonce, audience or issuer, expired, unsigned,
//! HMAC-signed with the provider's public key (key confusion) or with the client secret, signed by
//! another key. Each is refused with its own error, and a well-formed token through the same path is
//! accepted, so the refusals mean something.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atrium::auth::oidc::{OidcClient, OidcConfig, OidcError, PendingLogin, VerifiedLogin};
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};

const CLIENT_ID: &str = "atrium";
const CLIENT_SECRET: &str = "atrium-test-secret";
/// Atrium's callback. Nothing listens there: the browser stops at the redirect to it.
const REDIRECT_URL: &str = "http://127.0.0.1:7007/auth/oidc/callback";
/// How long the provider may take to start, and a whole sign-in to run.
const DEADLINE: Duration = Duration::from_secs(30);

/// An HTTP client as Atrium's: no redirects followed.
fn http_client() -> reqwest::Client {
    atrium::tls::http_client()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// `auth.oidc` for `issuer`, the client secret in a file under `dir`.
fn config(issuer: &str, dir: &Path) -> OidcConfig {
    let secret_file = dir.join("client-secret");
    std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).expect("write secret");
    OidcConfig {
        issuer: issuer.to_owned(),
        client_id: CLIENT_ID.to_owned(),
        client_secret_env: None,
        client_secret_file: Some(secret_file),
        scopes: ["openid", "email", "profile"].map(String::from).to_vec(),
        display_name: None,
    }
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The real provider.

/// node-oidc-provider running tests/oidc-provider/provider.mjs on a free port; stopped on drop.
struct NodeProvider {
    issuer: String,
    _child: tokio::process::Child,
}

impl NodeProvider {
    async fn start() -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root")
            .join("tests/oidc-provider");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "node_modules missing: run `npm ci --prefix tests/oidc-provider` (scripts/test.sh does)"
        );
        // Port 0: node picks a free port and prints the issuer once it listens.
        let mut child = tokio::process::Command::new("node")
            .arg("provider.mjs")
            .arg("0")
            .current_dir(&dir)
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_REDIRECT_URI", REDIRECT_URL)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (is node on PATH?)");
        // Its stdout is read to the end (the provider logs there, and dies of EPIPE if nobody reads),
        // passing the issuer line on.
        let stdout = child.stdout.take().expect("stdout");
        let (issuer_tx, issuer_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut issuer_tx = Some(issuer_tx);
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match line.strip_prefix("listening on ") {
                    Some(issuer) if issuer_tx.is_some() => {
                        let _ = issuer_tx.take().map(|tx| tx.send(issuer.to_owned()));
                    }
                    _ => eprintln!("provider: {line}"),
                }
            }
        });
        let issuer = tokio::time::timeout(DEADLINE, issuer_rx)
            .await
            .expect("the provider starts in time")
            .expect("the provider listens before it exits");

        // Ready when discovery answers.
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        let http = http_client();
        let ready = tokio::time::timeout(DEADLINE, async {
            loop {
                if let Ok(response) = http.get(&discovery).send().await
                    && response.status().is_success()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(ready.is_ok(), "discovery at {discovery} never answered");
        Self {
            issuer,
            _child: child,
        }
    }
}

/// A browser: follows redirects itself, keeps cookies, fills the provider's sign-in and consent
/// forms, and stops at the redirect to Atrium's callback.
struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: http_client(),
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let cookie = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = if cookie.is_empty() {
            request
        } else {
            request.header(header::COOKIE, cookie)
        };
        let response = request.send().await.expect("provider answers");
        for set in response.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().expect("ascii cookie");
            let pair = set.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("name=value");
            let expired = set
                .to_ascii_lowercase()
                .contains("expires=thu, 01 jan 1970");
            if value.is_empty() || expired {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        response
    }

    /// Signs in as `account` from `authorize_url`, consenting to what is asked; returns the query of
    /// the redirect to the callback (`code`, `state`, `iss`).
    async fn sign_in(&mut self, authorize_url: &str, account: &str) -> HashMap<String, String> {
        let mut response = self.send(self.http.get(authorize_url)).await;
        for _ in 0..20 {
            let url = response.url().clone();
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .expect("location")
                    .to_str()
                    .expect("ascii location");
                let next = url.join(location).expect("location is a URL");
                if next.as_str().starts_with(REDIRECT_URL) {
                    return query(next.as_str());
                }
                response = self.send(self.http.get(next)).await;
                continue;
            }
            let status = response.status();
            let html = response.text().await.expect("page");
            assert_eq!(status, StatusCode::OK, "{url}: {html}");
            let (action, mut fields) = form(&html);
            match fields.get("prompt").map(String::as_str) {
                // The development login page takes any login name as the account id.
                Some("login") => {
                    fields.insert("login".into(), account.into());
                    fields.insert("password".into(), "any password".into());
                }
                Some("consent") => {}
                other => panic!("unexpected page {url} ({other:?}): {html}"),
            }
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&fields)
                .finish();
            let request = self
                .http
                .post(url.join(&action).expect("form action"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body);
            response = self.send(request).await;
        }
        panic!("the sign-in did not reach the callback");
    }
}

/// The first form of a page: its action and its fields with their values.
fn form(html: &str) -> (String, HashMap<String, String>) {
    let page = scraper::Html::parse_document(html);
    let form_selector = scraper::Selector::parse("form").expect("selector");
    let input_selector = scraper::Selector::parse("input[name]").expect("selector");
    let form = page.select(&form_selector).next().expect("a form");
    let action = form.value().attr("action").expect("action").to_owned();
    let fields = form
        .select(&input_selector)
        .map(|input| {
            let name = input.value().attr("name").unwrap_or_default();
            let value = input.value().attr("value").unwrap_or_default();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    (action, fields)
}

/// A provider, a client discovered from it, and a browser.
struct RealSetup {
    _provider: NodeProvider,
    _dir: tempfile::TempDir,
    client: OidcClient,
    browser: Browser,
}

async fn real_setup() -> RealSetup {
    let provider = NodeProvider::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = OidcClient::discover(
        &config(&provider.issuer, dir.path()),
        REDIRECT_URL,
        http_client(),
    )
    .await
    .expect("discovery");
    RealSetup {
        _provider: provider,
        _dir: dir,
        client,
        browser: Browser::new(),
    }
}

impl RealSetup {
    /// `begin()`, then the browser signs in as alice: the pending login and the callback's query.
    async fn sign_in(&mut self) -> (PendingLogin, HashMap<String, String>) {
        let (url, pending) = self.client.begin();
        let callback = self.browser.sign_in(&url, "alice").await;
        (pending, callback)
    }

    async fn finish(
        &self,
        pending: &PendingLogin,
        callback: &HashMap<String, String>,
    ) -> Result<VerifiedLogin, OidcError> {
        self.client
            .finish(pending, &callback["state"], &callback["code"])
            .await
    }
}

fn assert_alice(login: &VerifiedLogin) {
    assert_eq!(login.subject, "alice");
    assert_eq!(login.email.as_deref(), Some("alice@example.com"));
    assert!(login.email_verified);
    assert_eq!(login.preferred_username.as_deref(), Some("alice"));
    assert_eq!(login.name.as_deref(), Some("Alice Liddell"));
}

#[tokio::test]
async fn signs_in_against_a_real_provider() {
    let mut setup = real_setup().await;
    let (url, pending) = setup.client.begin();

    let asked = query(&url);
    assert!(url.starts_with(&format!("{}/auth?", setup._provider.issuer)));
    assert_eq!(asked["response_type"], "code");
    assert_eq!(asked["client_id"], CLIENT_ID);
    assert_eq!(asked["redirect_uri"], REDIRECT_URL);
    assert_eq!(asked["scope"], "openid email profile");
    assert_eq!(asked["state"], pending.state);
    assert_eq!(asked["nonce"], pending.nonce);
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(
        asked["code_challenge"],
        URL_SAFE_NO_PAD.encode(Sha256::digest(pending.pkce_verifier.as_bytes()))
    );
    // Each login has its own secrets.
    let (_, other) = setup.client.begin();
    assert_ne!(other.state, pending.state);
    assert_ne!(other.nonce, pending.nonce);
    assert_ne!(other.pkce_verifier, pending.pkce_verifier);
    // The pending login survives a round trip through the session row.
    let stored = serde_json::to_string(&pending).expect("serialize");
    let pending: PendingLogin = serde_json::from_str(&stored).expect("deserialize");
    assert!(!format!("{pending:?}").contains(&pending.pkce_verifier));

    let callback = setup.browser.sign_in(&url, "alice").await;
    assert_eq!(callback["state"], pending.state);
    assert_eq!(callback["iss"], setup._provider.issuer);
    // node-oidc-provider puts email and profile claims only in userinfo for the code flow, so this
    // also covers filling them in from there.
    let login = setup.finish(&pending, &callback).await.expect("sign-in");
    assert_alice(&login);

    // A code works once.
    let replay = setup.finish(&pending, &callback).await;
    assert!(
        matches!(&replay, Err(OidcError::TokenExchangeRefused { error, .. }) if error == "invalid_grant"),
        "{replay:?}"
    );
}

#[tokio::test]
async fn a_missing_or_mismatched_state_is_refused() {
    let mut setup = real_setup().await;
    let (pending, callback) = setup.sign_in().await;
    let code = &callback["code"];

    let missing = setup.client.finish(&pending, "", code).await;
    assert!(
        matches!(missing, Err(OidcError::StateMissing)),
        "{missing:?}"
    );
    let (_, other) = setup.client.begin();
    let mismatched = setup.client.finish(&pending, &other.state, code).await;
    assert!(
        matches!(mismatched, Err(OidcError::StateMismatch)),
        "{mismatched:?}"
    );
    let prefix = &pending.state[..pending.state.len() - 1];
    let truncated = setup.client.finish(&pending, prefix, code).await;
    assert!(
        matches!(truncated, Err(OidcError::StateMismatch)),
        "{truncated:?}"
    );

    // Refused before the code was spent: with the right state, the same code still signs in.
    let login = setup.finish(&pending, &callback).await.expect("sign-in");
    assert_alice(&login);
}

#[tokio::test]
async fn a_code_from_another_login_is_refused() {
    let mut setup = real_setup().await;
    let (_pending_a, callback_a) = setup.sign_in().await;
    let (pending_b, callback_b) = setup.sign_in().await;

    // A's code, brought to the callback with login B's state (B's pending login): B's PKCE verifier
    // does not match the challenge A's code was issued for.
    let swapped = setup
        .client
        .finish(&pending_b, &callback_b["state"], &callback_a["code"])
        .await;
    assert!(
        matches!(&swapped, Err(OidcError::TokenExchangeRefused { error, .. }) if error == "invalid_grant"),
        "{swapped:?}"
    );

    // B's own code still signs B in.
    let login = setup
        .finish(&pending_b, &callback_b)
        .await
        .expect("sign-in");
    assert_alice(&login);
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_refused() {
    let mut setup = real_setup().await;
    let (pending, callback) = setup.sign_in().await;

    let (_, other) = setup.client.begin();
    let forged = PendingLogin {
        pkce_verifier: other.pkce_verifier,
        ..pending.clone()
    };
    let refused = setup.finish(&forged, &callback).await;
    assert!(
        matches!(&refused, Err(OidcError::TokenExchangeRefused { error, .. }) if error == "invalid_grant"),
        "{refused:?}"
    );

    // The same machinery with the right verifier, on a fresh login.
    let (pending, callback) = setup.sign_in().await;
    let login = setup.finish(&pending, &callback).await.expect("sign-in");
    assert_alice(&login);
}

// ---------------------------------------------------------------------------------------------
// The fake provider.

/// What the fake provider's token endpoint answers once, for one code.
struct Grant {
    code: String,
    /// The PKCE challenge of the authorization request the code was issued for.
    challenge: String,
    id_token: String,
    access_token: String,
}

#[derive(Default)]
struct FakeState {
    jwks: Mutex<Value>,
    grant: Mutex<Option<Grant>>,
    /// Every token request, and whether it passed the checks (or why not).
    token_requests: Mutex<Vec<Result<(), String>>>,
    userinfo: Mutex<Value>,
    /// The access token userinfo accepts.
    userinfo_token: Mutex<String>,
    userinfo_requests: Mutex<usize>,
}

/// An OpenID provider in this process: discovery, keys, a token endpoint that checks what it gets
/// and answers with the ID token a test forged, and userinfo.
struct FakeProvider {
    issuer: String,
    state: Arc<FakeState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeProvider {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let issuer = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(FakeState::default());
        *state.jwks.lock().expect("lock") = json!({ "keys": [jwk(PROVIDER_KEY, "k1")] });
        let discovery = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        });
        let router = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { Json(discovery) }),
            )
            .route(
                "/jwks",
                get(|State(s): State<Arc<FakeState>>| async move {
                    Json(s.jwks.lock().expect("lock").clone())
                }),
            )
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        Self {
            issuer,
            state,
            server,
        }
    }

    fn set_keys(&self, keys: Vec<Value>) {
        *self.state.jwks.lock().expect("lock") = json!({ "keys": keys });
    }

    fn token_requests(&self) -> Vec<Result<(), String>> {
        self.state.token_requests.lock().expect("lock").clone()
    }
}

async fn token(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let grant = state.grant.lock().expect("lock").take();
    let checked = check_token_request(grant, &headers, &form);
    state
        .token_requests
        .lock()
        .expect("lock")
        .push(checked.as_ref().map(|_| ()).map_err(|(_, why)| why.clone()));
    match checked {
        Ok(grant) => Json(json!({
            "access_token": grant.access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": grant.id_token,
        }))
        .into_response(),
        Err((error, why)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": error, "error_description": why })),
        )
            .into_response(),
    }
}

/// The checks of RFC 6749 §4.1.3 and RFC 7636 §4.6: client authentication (HTTP Basic), the grant
/// type, the code (one use), the redirect URI and the PKCE verifier against the challenge.
fn check_token_request(
    grant: Option<Grant>,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Grant, (&'static str, String)> {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return Err(("invalid_client", "client authentication failed".into()));
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if accept != Some("application/json") {
        return Err(("invalid_request", format!("accept {accept:?}")));
    }
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("grant_type") != Some("authorization_code") {
        return Err((
            "unsupported_grant_type",
            format!("{:?}", field("grant_type")),
        ));
    }
    let grant = grant.ok_or(("invalid_grant", "no code was issued".to_owned()))?;
    if field("code") != Some(grant.code.as_str()) {
        return Err(("invalid_grant", "unknown code".into()));
    }
    if field("redirect_uri") != Some(REDIRECT_URL) {
        return Err((
            "invalid_grant",
            format!("redirect_uri {:?}", field("redirect_uri")),
        ));
    }
    let verifier = field("code_verifier").ok_or(("invalid_grant", "no code_verifier".into()))?;
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != grant.challenge {
        return Err(("invalid_grant", "PKCE verification failed".into()));
    }
    Ok(grant)
}

async fn userinfo(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    *state.userinfo_requests.lock().expect("lock") += 1;
    let expected = format!("Bearer {}", state.userinfo_token.lock().expect("lock"));
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(state.userinfo.lock().expect("lock").clone()).into_response()
}

/// A fake provider and a client discovered from it.
struct FakeSetup {
    fake: FakeProvider,
    _dir: tempfile::TempDir,
    client: OidcClient,
}

async fn fake_setup() -> FakeSetup {
    let fake = FakeProvider::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = OidcClient::discover(
        &config(&fake.issuer, dir.path()),
        REDIRECT_URL,
        http_client(),
    )
    .await
    .expect("discovery");
    FakeSetup {
        fake,
        _dir: dir,
        client,
    }
}

const ACCESS_TOKEN: &str = "access-token-of-this-login";

impl FakeSetup {
    /// A whole login whose token endpoint answers with the ID token `forge` makes from the claims a
    /// good ID token would have (for this login's nonce).
    async fn login(&self, forge: impl FnOnce(Value) -> String) -> Result<VerifiedLogin, OidcError> {
        let (url, pending) = self.client.begin();
        let asked = query(&url);
        assert!(url.starts_with(&format!("{}/authorize?", self.fake.issuer)));
        let claims = json!({
            "iss": self.fake.issuer,
            "sub": "248289761001",
            "aud": CLIENT_ID,
            "exp": now() + 300,
            "iat": now(),
            "nonce": asked["nonce"],
            "email": "bob@example.com",
            "email_verified": true,
            "preferred_username": "bob",
            "name": "Bob Example",
        });
        *self.fake.state.grant.lock().expect("lock") = Some(Grant {
            code: "code-of-this-login".into(),
            challenge: asked["code_challenge"].clone(),
            id_token: forge(claims),
            access_token: ACCESS_TOKEN.into(),
        });
        *self.fake.state.userinfo_token.lock().expect("lock") = ACCESS_TOKEN.into();
        self.client
            .finish(&pending, &asked["state"], "code-of-this-login")
            .await
    }

    /// The token endpoint was asked exactly `count` times, and every request passed its checks: a
    /// refusal is about the ID token, not the exchange.
    fn assert_exchanges(&self, count: usize) {
        let requests = self.fake.token_requests();
        assert_eq!(requests.len(), count, "{requests:?}");
        assert!(requests.iter().all(Result::is_ok), "{requests:?}");
    }
}

fn now() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    i64::try_from(now.as_secs()).expect("seconds")
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS: `header.payload.signature`, the signature made by `sign` over the first two.
fn jws(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

fn private_key(pem: &str) -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::from_pkcs8_pem(pem).expect("test key")
}

fn rs256(pem: &str, kid: &str, claims: &Value) -> String {
    let key = SigningKey::<Sha256>::new(private_key(pem));
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": kid });
    jws(&header, claims, |input| key.sign(input).to_vec())
}

fn hs256(secret: &[u8], claims: &Value) -> String {
    use hmac::{KeyInit, Mac};
    let header = json!({ "alg": "HS256", "typ": "JWT", "kid": "k1" });
    jws(&header, claims, |input| {
        let mut mac = hmac::Hmac::<sha2_0_11::Sha256>::new_from_slice(secret).expect("key");
        mac.update(input);
        mac.finalize().into_bytes().to_vec()
    })
}

/// The public half of a key as a JWK.
fn jwk(pem: &str, kid: &str) -> Value {
    let public = private_key(pem).to_public_key();
    json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": b64(&public.n().to_bytes_be()),
        "e": b64(&public.e().to_bytes_be()),
    })
}

fn public_pem(pem: &str) -> String {
    private_key(pem)
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("pem")
}

fn assert_bob(login: &VerifiedLogin) {
    assert_eq!(login.subject, "248289761001");
    assert_eq!(login.email.as_deref(), Some("bob@example.com"));
    assert!(login.email_verified);
    assert_eq!(login.preferred_username.as_deref(), Some("bob"));
    assert_eq!(login.name.as_deref(), Some("Bob Example"));
}

#[tokio::test]
async fn a_well_formed_id_token_is_accepted() {
    let setup = fake_setup().await;
    let login = setup
        .login(|claims| rs256(PROVIDER_KEY, "k1", &claims))
        .await
        .expect("sign-in");
    assert_bob(&login);
    setup.assert_exchanges(1);
    // Everything was in the ID token: no userinfo request.
    assert_eq!(*setup.fake.state.userinfo_requests.lock().expect("lock"), 0);
}

#[tokio::test]
async fn a_wrong_nonce_is_refused() {
    let setup = fake_setup().await;
    let refused = setup
        .login(|mut claims| {
            claims["nonce"] = json!("the nonce of another login");
            rs256(PROVIDER_KEY, "k1", &claims)
        })
        .await;
    assert!(
        matches!(refused, Err(OidcError::NonceMismatch(_))),
        "{refused:?}"
    );
    let missing = setup
        .login(|mut claims| {
            claims.as_object_mut().expect("object").remove("nonce");
            rs256(PROVIDER_KEY, "k1", &claims)
        })
        .await;
    assert!(
        matches!(missing, Err(OidcError::NonceMismatch(_))),
        "{missing:?}"
    );
    setup.assert_exchanges(2);
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let setup = fake_setup().await;
    let other = setup
        .login(|mut claims| {
            claims["aud"] = json!("another-client");
            rs256(PROVIDER_KEY, "k1", &claims)
        })
        .await;
    assert!(matches!(other, Err(OidcError::BadAudience(_))), "{other:?}");
    // Also when we are one audience among others we do not trust.
    let shared = setup
        .login(|mut claims| {
            claims["aud"] = json!([CLIENT_ID, "another-client"]);
            rs256(PROVIDER_KEY, "k1", &claims)
        })
        .await;
    assert!(
        matches!(shared, Err(OidcError::BadAudience(_))),
        "{shared:?}"
    );
    setup.assert_exchanges(2);
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let setup = fake_setup().await;
    let refused = setup
        .login(|mut claims| {
            claims["iss"] = json!("https://evil.example.com");
            rs256(PROVIDER_KEY, "k1", &claims)
        })
        .await;
    assert!(
        matches!(refused, Err(OidcError::BadIssuer(_))),
        "{refused:?}"
    );
    setup.assert_exchanges(1);
}

#[tokio::test]
async fn an_expired_id_token_is_refused_beyond_the_clock_skew() {
    let setup = fake_setup().await;
    let expired = setup
        .login(|mut claims| {
            claims["iat"] = json!(now() - 600);
            claims["exp"] = json!(now() - 120);
            rs256(PROVIDER_KEY, "k1", &claims)
        })
        .await;
    assert!(matches!(expired, Err(OidcError::Expired(_))), "{expired:?}");
    // Issued by a clock far ahead of ours.
    let future = setup
        .login(|mut claims| {
            claims["iat"] = json!(now() + 600);
            claims["exp"] = json!(now() + 900);
            rs256(PROVIDER_KEY, "k1", &claims)
        })
        .await;
    assert!(matches!(future, Err(OidcError::Expired(_))), "{future:?}");
    // Within the 60 s of skew: accepted.
    let skewed = setup
        .login(|mut claims| {
            claims["iat"] = json!(now() + 20);
            claims["exp"] = json!(now() - 20);
            rs256(PROVIDER_KEY, "k1", &claims)
        })
        .await;
    assert_bob(&skewed.expect("within the skew"));
    setup.assert_exchanges(3);
}

#[tokio::test]
async fn an_unsigned_id_token_is_refused() {
    let setup = fake_setup().await;
    let refused = setup
        .login(|claims| {
            let header = json!({ "alg": "none", "typ": "JWT" });
            jws(&header, &claims, |_| Vec::new())
        })
        .await;
    assert!(
        matches!(refused, Err(OidcError::AlgorithmRefused(_))),
        "{refused:?}"
    );
    setup.assert_exchanges(1);
}

#[tokio::test]
async fn an_hmac_signed_id_token_is_refused() {
    let setup = fake_setup().await;
    // Key confusion: the provider's public key, which anyone can read, as an HMAC secret.
    let confused = setup
        .login(|claims| hs256(public_pem(PROVIDER_KEY).as_bytes(), &claims))
        .await;
    assert!(
        matches!(confused, Err(OidcError::AlgorithmRefused(_))),
        "{confused:?}"
    );
    // The spec allows HS256 with the client secret; we take public-key signatures only.
    let shared = setup
        .login(|claims| hs256(CLIENT_SECRET.as_bytes(), &claims))
        .await;
    assert!(
        matches!(shared, Err(OidcError::AlgorithmRefused(_))),
        "{shared:?}"
    );
    setup.assert_exchanges(2);
}

#[tokio::test]
async fn a_signature_by_another_key_is_refused() {
    let setup = fake_setup().await;
    // Signed by another key under the provider key's id.
    let refused = setup.login(|claims| rs256(OTHER_KEY, "k1", &claims)).await;
    assert!(
        matches!(refused, Err(OidcError::BadSignature(_))),
        "{refused:?}"
    );
    // A valid signature over other claims, then the claims swapped.
    let tampered = setup
        .login(|claims| {
            let token = rs256(PROVIDER_KEY, "k1", &claims);
            let mut parts: Vec<&str> = token.split('.').collect();
            let mut admin = claims.clone();
            admin["sub"] = json!("admin");
            let payload = b64(admin.to_string().as_bytes());
            parts[1] = &payload;
            parts.join(".")
        })
        .await;
    assert!(
        matches!(tampered, Err(OidcError::BadSignature(_))),
        "{tampered:?}"
    );
    setup.assert_exchanges(2);
}

#[tokio::test]
async fn rotated_keys_are_fetched_again() {
    let setup = fake_setup().await;
    // The provider now signs with a new key, published after our discovery.
    setup
        .fake
        .set_keys(vec![jwk(PROVIDER_KEY, "k1"), jwk(OTHER_KEY, "k2")]);
    let login = setup
        .login(|claims| rs256(OTHER_KEY, "k2", &claims))
        .await
        .expect("sign-in with the new key");
    assert_bob(&login);
    // A key id the provider does not publish is not a key.
    let unknown = setup.login(|claims| rs256(OTHER_KEY, "k3", &claims)).await;
    assert!(
        matches!(unknown, Err(OidcError::BadSignature(_))),
        "{unknown:?}"
    );
    setup.assert_exchanges(2);
}

#[tokio::test]
async fn an_access_token_not_issued_with_the_id_token_is_refused() {
    let setup = fake_setup().await;
    let at_hash = |token: &str| b64(&Sha256::digest(token.as_bytes())[..16]);
    let matching = setup
        .login(|mut claims| {
            claims["at_hash"] = json!(at_hash(ACCESS_TOKEN));
            rs256(PROVIDER_KEY, "k1", &claims)
        })
        .await;
    assert_bob(&matching.expect("matching at_hash"));
    let other = setup
        .login(|mut claims| {
            claims["at_hash"] = json!(at_hash("another access token"));
            rs256(PROVIDER_KEY, "k1", &claims)
        })
        .await;
    assert!(
        matches!(other, Err(OidcError::AccessTokenMismatch)),
        "{other:?}"
    );
    setup.assert_exchanges(2);
}

#[tokio::test]
async fn missing_claims_come_from_userinfo_for_the_same_subject() {
    let setup = fake_setup().await;
    let bare = |mut claims: Value| {
        for claim in ["email", "email_verified", "preferred_username", "name"] {
            claims.as_object_mut().expect("object").remove(claim);
        }
        rs256(PROVIDER_KEY, "k1", &claims)
    };
    *setup.fake.state.userinfo.lock().expect("lock") = json!({
        "sub": "248289761001",
        "email": "bob@example.com",
        "email_verified": true,
        "preferred_username": "bob",
        "name": "Bob Example",
    });
    let login = setup.login(bare).await.expect("sign-in");
    assert_bob(&login);
    assert_eq!(*setup.fake.state.userinfo_requests.lock().expect("lock"), 1);

    // Userinfo about someone else is not about this login.
    *setup.fake.state.userinfo.lock().expect("lock") = json!({
        "sub": "someone-else",
        "email": "mallory@example.com",
        "email_verified": true,
    });
    let other = setup.login(bare).await;
    assert!(matches!(other, Err(OidcError::UserInfo(_))), "{other:?}");
    setup.assert_exchanges(2);
}

#[tokio::test]
async fn the_token_request_carries_the_client_credentials() {
    let setup = fake_setup().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut wrong = config(&setup.fake.issuer, dir.path());
    std::fs::write(dir.path().join("wrong-secret"), "not the secret").expect("write");
    wrong.client_secret_file = Some(dir.path().join("wrong-secret"));
    let client = OidcClient::discover(&wrong, REDIRECT_URL, http_client())
        .await
        .expect("discovery");
    let setup = FakeSetup { client, ..setup };
    let refused = setup
        .login(|claims| rs256(PROVIDER_KEY, "k1", &claims))
        .await;
    assert!(
        matches!(&refused, Err(OidcError::TokenExchangeRefused { error, .. }) if error == "invalid_client"),
        "{refused:?}"
    );
    // The message names the failure, never the secret.
    let message = refused.expect_err("refused").to_string();
    assert!(!message.contains("not the secret"), "{message}");
}

#[test]
fn the_config_has_defaults_and_refuses_unknown_fields() {
    let config: OidcConfig = serde_json::from_value(json!({
        "issuer": "https://accounts.example.com",
        "client_id": "atrium",
    }))
    .expect("minimal config");
    assert_eq!(config.scopes, ["openid", "email", "profile"]);
    assert_eq!(config.display_name(), "Sign in");
    assert_eq!(config.client_secret_env, None);
    assert_eq!(config.client_secret_file, None::<PathBuf>);
    let unknown = serde_json::from_value::<OidcConfig>(json!({
        "issuer": "https://accounts.example.com",
        "client_id": "atrium",
        "client_secret": "inline secrets are not read",
    }));
    assert!(unknown.is_err());
}

#[tokio::test]
async fn discovery_refuses_a_provider_that_names_another_issuer() {
    let fake = FakeProvider::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The same provider, but the issuer configured with a trailing slash: the document's issuer
    // must match the configured one exactly (tokens carry it as `iss`).
    let other = format!("{}/", fake.issuer);
    let refused =
        OidcClient::discover(&config(&other, dir.path()), REDIRECT_URL, http_client()).await;
    assert!(
        matches!(refused, Err(OidcError::Discovery { .. })),
        "{refused:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// GitHub OAuth apps (`auth::github`), against a fake of GitHub's OAuth endpoints and REST API that
// checks every request it gets.

const GITHUB_CLIENT_ID: &str = "Iv1.atrium";
const GITHUB_CODE: &str = "github-code-of-this-login";
const GITHUB_TOKEN: &str = "gho_token-of-this-login";

#[derive(Default)]
struct GithubState {
    /// The PKCE challenge of the authorization request `GITHUB_CODE` was issued for.
    challenge: Mutex<String>,
    emails: Mutex<Value>,
    /// Every request (`METHOD path`), and whether it passed the checks (or why not).
    requests: Mutex<Vec<(String, Result<(), String>)>>,
}

struct FakeGithub {
    url: String,
    state: Arc<GithubState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeGithub {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(GithubState::default());
        *state.emails.lock().expect("lock") = json!([
            { "email": "old@example.com", "primary": false, "verified": true, "visibility": null },
            { "email": "octocat@github.com", "primary": true, "verified": true, "visibility": "public" },
        ]);
        let router = Router::new()
            .route("/login/oauth/access_token", post(github_token))
            .route("/api/v3/user", get(github_user))
            .route("/api/v3/user/emails", get(github_emails))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        Self { url, state, server }
    }

    fn config(&self, dir: &Path) -> atrium::auth::github::GithubConfig {
        let secret_file = dir.join("github-secret");
        std::fs::write(&secret_file, CLIENT_SECRET).expect("write secret");
        atrium::auth::github::GithubConfig {
            client_id: GITHUB_CLIENT_ID.into(),
            client_secret_env: None,
            client_secret_file: Some(secret_file),
            api_url: format!("{}/api/v3", self.url),
            web_url: self.url.clone(),
            display_name: None,
        }
    }

    fn requests(&self) -> Vec<(String, Result<(), String>)> {
        self.state.requests.lock().expect("lock").clone()
    }
}

/// GitHub's token endpoint: credentials and code as form fields, JSON when asked for, and refusals
/// with `200 OK` and an error object, as GitHub answers them.
async fn github_token(
    State(state): State<Arc<GithubState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str);
    let checked = (|| {
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
        if accept != Some("application/json") {
            return Err(("unsupported_accept", format!("accept {accept:?}")));
        }
        if field("client_id") != Some(GITHUB_CLIENT_ID)
            || field("client_secret") != Some(CLIENT_SECRET)
        {
            return Err(("incorrect_client_credentials", "client id or secret".into()));
        }
        if field("code") != Some(GITHUB_CODE) {
            return Err(("bad_verification_code", "unknown code".into()));
        }
        if field("redirect_uri") != Some(REDIRECT_URL) {
            return Err((
                "redirect_uri_mismatch",
                format!("{:?}", field("redirect_uri")),
            ));
        }
        let verifier = field("code_verifier").unwrap_or_default();
        if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
            != *state.challenge.lock().expect("lock")
        {
            return Err(("bad_verification_code", "PKCE verification failed".into()));
        }
        Ok(())
    })();
    state.requests.lock().expect("lock").push((
        "POST /login/oauth/access_token".into(),
        checked.clone().map_err(|(_, why)| why),
    ));
    match checked {
        Ok(()) => Json(json!({
            "access_token": GITHUB_TOKEN,
            "token_type": "bearer",
            "scope": "read:user,user:email",
        })),
        Err((error, why)) => Json(json!({ "error": error, "error_description": why })),
    }
    .into_response()
}

/// The REST API's checks: the token as a bearer token, GitHub's media type and API version, a user
/// agent (GitHub refuses requests without one).
fn check_api_request(headers: &HeaderMap) -> Result<(), String> {
    let value = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let expected = format!("Bearer {GITHUB_TOKEN}");
    if value(header::AUTHORIZATION) != Some(expected.as_str()) {
        return Err("authorization".into());
    }
    if value(header::ACCEPT) != Some("application/vnd.github+json") {
        return Err(format!("accept {:?}", value(header::ACCEPT)));
    }
    if value(header::HeaderName::from_static("x-github-api-version")) != Some("2022-11-28") {
        return Err("x-github-api-version".into());
    }
    if !value(header::USER_AGENT).is_some_and(|agent| agent.starts_with("atrium/")) {
        return Err(format!("user-agent {:?}", value(header::USER_AGENT)));
    }
    Ok(())
}

async fn github_user(State(state): State<Arc<GithubState>>, headers: HeaderMap) -> Response {
    let checked = check_api_request(&headers);
    let ok = checked.is_ok();
    state
        .requests
        .lock()
        .expect("lock")
        .push(("GET /api/v3/user".into(), checked));
    if !ok {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(json!({ "id": 583231, "login": "octocat", "name": "The Octocat", "email": null }))
        .into_response()
}

async fn github_emails(State(state): State<Arc<GithubState>>, headers: HeaderMap) -> Response {
    let checked = check_api_request(&headers);
    let ok = checked.is_ok();
    state
        .requests
        .lock()
        .expect("lock")
        .push(("GET /api/v3/user/emails".into(), checked));
    if !ok {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(state.emails.lock().expect("lock").clone()).into_response()
}

async fn github_setup() -> (
    FakeGithub,
    tempfile::TempDir,
    atrium::auth::github::GithubClient,
) {
    let fake = FakeGithub::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = atrium::auth::github::GithubClient::new(
        &fake.config(dir.path()),
        REDIRECT_URL,
        http_client(),
    )
    .await
    .expect("github client");
    (fake, dir, client)
}

#[tokio::test]
async fn github_sign_in_reads_the_user_and_the_primary_verified_email() {
    let (fake, _dir, client) = github_setup().await;
    let (url, pending) = client.begin();
    let asked = query(&url);
    assert!(url.starts_with(&format!("{}/login/oauth/authorize?", fake.url)));
    assert_eq!(asked["response_type"], "code");
    assert_eq!(asked["client_id"], GITHUB_CLIENT_ID);
    assert_eq!(asked["redirect_uri"], REDIRECT_URL);
    assert_eq!(asked["scope"], "read:user user:email");
    assert_eq!(asked["state"], pending.state);
    assert_eq!(asked["code_challenge_method"], "S256");
    *fake.state.challenge.lock().expect("lock") = asked["code_challenge"].clone();

    let login = client
        .finish(&pending, &asked["state"], GITHUB_CODE)
        .await
        .expect("sign-in");
    assert_eq!(login.subject, "583231");
    assert_eq!(login.preferred_username.as_deref(), Some("octocat"));
    assert_eq!(login.name.as_deref(), Some("The Octocat"));
    assert_eq!(login.email.as_deref(), Some("octocat@github.com"));
    assert!(login.email_verified);
    let requests = fake.requests();
    let names: Vec<&str> = requests.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "POST /login/oauth/access_token",
            "GET /api/v3/user",
            "GET /api/v3/user/emails"
        ]
    );
    assert!(
        requests.iter().all(|(_, checked)| checked.is_ok()),
        "{requests:?}"
    );

    // A primary address GitHub has not verified is no address.
    *fake.state.emails.lock().expect("lock") =
        json!([{ "email": "octocat@github.com", "primary": true, "verified": false }]);
    let (url, pending) = client.begin();
    let asked = query(&url);
    *fake.state.challenge.lock().expect("lock") = asked["code_challenge"].clone();
    let login = client
        .finish(&pending, &asked["state"], GITHUB_CODE)
        .await
        .expect("sign-in");
    assert_eq!(login.email, None);
    assert!(!login.email_verified);
}

#[tokio::test]
async fn github_refuses_a_wrong_state_code_or_verifier() {
    let (fake, _dir, client) = github_setup().await;
    let (url, pending) = client.begin();
    let asked = query(&url);
    *fake.state.challenge.lock().expect("lock") = asked["code_challenge"].clone();

    let (_, other) = client.begin();
    let mismatched = client.finish(&pending, &other.state, GITHUB_CODE).await;
    assert!(
        matches!(mismatched, Err(OidcError::StateMismatch)),
        "{mismatched:?}"
    );
    assert!(fake.requests().is_empty(), "no exchange without the state");

    // GitHub refuses with 200 OK and an error object.
    let bad_code = client
        .finish(&pending, &pending.state, "another code")
        .await;
    assert!(
        matches!(&bad_code, Err(OidcError::TokenExchangeRefused { error, .. }) if error == "bad_verification_code"),
        "{bad_code:?}"
    );
    let forged = PendingLogin {
        pkce_verifier: other.pkce_verifier,
        ..pending.clone()
    };
    let bad_verifier = client.finish(&forged, &pending.state, GITHUB_CODE).await;
    assert!(
        matches!(&bad_verifier, Err(OidcError::TokenExchangeRefused { error, .. }) if error == "bad_verification_code"),
        "{bad_verifier:?}"
    );
    // The control: the right code and verifier through the same client.
    let login = client
        .finish(&pending, &pending.state, GITHUB_CODE)
        .await
        .expect("sign-in");
    assert_eq!(login.subject, "583231");
    let refusals = fake
        .requests()
        .into_iter()
        .filter(|(_, checked)| checked.is_err())
        .count();
    assert_eq!(refusals, 2);
}

// ---------------------------------------------------------------------------------------------
// Test keys.

/// The fake provider's signing key (RSA 2048, PKCS#8). Made for this file; it protects nothing.
const PROVIDER_KEY: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCnwmu/DwRmH/pa
jsRhLuSgrFw/O0tG8LNWrEhD4XE0rpktsBXvXX01JC14RLhi3aGFEFCIvOhxKpZ1
mCMxKQmSrfMXSnmO5QY5AlHvB++5/7tSbhSuAGUIhQpuOw00JiNpXMPhqeeI5J92
XAdZ3ynBAjPjhbsN0ZVChjKOBqx3nG2Slo6UOhJDV7Xd9icPghDedMEGNpLNdRCT
HwnOsbwgWvXOm6/kgP2CfG8WFV9jt1cKncwrWjY2jGPqHUbd6zg65Vks4tM4YrMd
ZxWl8/VDgrYqBMQqObwWqnlGQvlJT2fWhf0Ye+0+U3rz+YFHS1k2LOJbMAjxWGYu
Gg1226NtAgMBAAECggEADt/zU86OEkwVk8AC86cHyKNfzo+AXjrre+zsv3AW7Jfq
px1s5HuCpZqemYJmYwXJ05WdvnIZnicrjiO+QxajbakU2+TToHL4OUfWYf5vKCvf
vTBbjw4j5zx8r0d3JT+Ydjgueizphb7X0NPaJwLdneqHFU5/Rntl468ofmVjF3vX
joK9bPXxV9DfyLWwvb3K1UuVpiuNxPl7oKehcBAdDw1XCSHTZ6W/Na9f/SYrz/m5
aGe5Og5JtuQ4Rdj+2Z4lVQO0U/O6veNNyxN4/XneTglCU+nu0zgqKE2Ip5fzEc+t
QT14rENYxC/fQ/BY0yGNxceFEI5ME5s9QhZaouCQYQKBgQDRylYBHTPnDR3uKEH1
i4GLDGG5Ftyx5+KUZLdT/ZLO459pF4K8eo+RKetDi0BWsvhdpA8hTxzx5rfqllSv
QThLe6CYy3F9Hxqbfn/ve1+hTwqWoqcXKS/O5ejUaBogX8i4uNtxCmeuwyO+zqQa
2LYN/ijbaEbw73tV8h5faONjCQKBgQDMtgttApJ39xYR09w4D4r12NcelvgUl+Sp
/ePOrVMJpR+5t871ulXq5SmzYgff2HWbVrxpfkrvDwdkwDvOyQSPTP1pkIjJZ+qq
vt/r1zDRmi1Ng5DVnZB+/WcR8NsmdV2qoEFko1WelZdJb8IuSR7Kso/oG4NBmU7+
d0wiqATiRQKBgHQY8Td0ncCDtciSZs4oAeydUYdIa6HYnb9ZbUsBzTjJJvLVm/gK
K2E+PYAHk/dm26OWovjf+zizYZxkzUCfazP6mol0LL39dJAQlWRGdkmioE10fduH
Y3mwKgVCBxNbbo0rX+VSyMYiH6n8WTyyKS3dNWcWcgvru+l4L+7E8PFhAoGABW9f
5kkHMoAw6dBCLIrdGaHkND+13nYZ8Bl5juczKTJlIT0sFYIY/d+Pt9+Gbf8FQFaR
MgvUWXyAqcAg1mCn6lYU9FSODSrhJB9lOpHADhCV21T+520DhRudPPC0INVE417V
3aIoh8lY9u4sraXrV15eS79PQNKdMkxgjRsA5jECgYEAvr/EOd81u1uGSRjuAjhh
YNvEYLSvtOeUOmvn8x18dAUFig7EXO101SX2AbBOWSG423iBY+HZXHDcppZ9iMEL
N9ax2GCt8niYwSOfnb1JUaQN7/ltGhqt6YPiEYyddZQj9gd6JV4GLSBl6KZWKuRG
ZjwiObuV9NJbuFPUCTUiT9o=
-----END PRIVATE KEY-----
";

/// Another key, for forged signatures and key rotation.
const OTHER_KEY: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDBZM5dQGfSE8vn
n0RTaaMxrVH5IiGJLVVYX0koFU2FWyJ4TpW5VGUiVWWCkxk+QKFH2jtjexaiV8iU
ITTQgNs/0tohveKQsx4AvBcBSm6q30ACWuus2C3rAaMAaJs7bTuxscEHQ4EZ8Hb0
UjDsHPfgkQyAyhYl7+6oKYCL9maK/htP/CtZrwLx4/TCTEi52eLE9RzJqNw5llpc
yFW0cWAfTRFLh6dOdEKkGdzHH8EMvY4TP1y6jKv/4Oz2kCbCG4TDFrQUIQrnxcGI
WgBHSJH8jXgNzHhlW42ITRXjmz95ss27gOuvHSn3+tVh5TIK51lV9zEH+BpxO49G
gSxXGc2dAgMBAAECggEABKeyBfGabiaW1mTxhpZ43KXA3t/Q8dXbA40LnEDjBE48
xquRlAvxgUGP93Ql++cfWrTokAzy7wZw6AvikxA+9srTAFPrQ7NkCf19CkVp44gL
KONaX+c2N71q2IQsFGKdOLpAHLYlweOVYW0nC0/pMYkcRW9X2CLt2jNhijzsm/TW
GwSzfbePMNH9oH0nnDHXCszCUFSLgOJYOKDprjFVC730U9qsqwB47sVPQi7Z0r/w
Zgc3+MAxvyx301zE2GJ+JbRmRDtLYAWSnKkh6IgXXDO001kA90VGPo931E/ngmD5
1kk1ed8DPUWvn/lAFwBpCSmteHMRlIXRt6vqqU/rOwKBgQD3O04rLRFFCbjrFw7p
5xJxxnkMyxVnoRdQVTnk6TGMRQ2G10ou6BVECZ2R1xd2YosaFp/N9MaxlQghXysZ
/2V4RvrFL6/o7wIzRTwg4s/tnXsWSwDFfn/uHeOfuDOgKJg50l95EvCFlv8xRkrG
oDaBcahdYLEJhS9gqWuKArgCfwKBgQDIQLCDt5pEihigmDT/LrhPipD6ekIETthG
+IYIbe9gyFDky4wsbFpMimFZYcY96MufkJsDihuVF/eMP2woFIcQGqawZHj8bunp
6ecsIBHF1cU2V3lKL3CtJ8K8EVIRWuyd7f3dinzKoZVWwSazwPGWevPDz2+hvnZw
GI8141bp4wKBgAwUR7NwVkGrQe+qhr4C3jHU4qEvYvJXOo5gO53ljtgtn4WRCzzT
dgaG+b3gZnMQSX+Sz2f+p56Ri34l6jMw+UIxJZtwwwV8d/0NSuzIaCRR52ulano7
vgBiUXbCRzNyCE3661M9C6dbQ0ijCJA/z6nvZax6RuwSJ8hvPqPVkiv9AoGABFhS
/Cipsj8E1cc3rynGWgN5rdWlRQ6o5rFRxzELdqAiETTRb81SEEMYZaYXdRRuBqJO
mr8OZifE+UgPArefTpwlbcJgVanabXbjyzNO72n6A3nWaeOpoDgyo34Et9evNqYJ
UhtFJehnoyBBxLi1BTzZuS/xDiNh0oDV6qdqJV0CgYAOQ+BWhjX5JNbPXlgkadk/
BAFs9g5CD+aiaInIPio667cKfNEa31LYTg6fm9hV59aSR/J5vXDAsNOLz+U3PgZ7
dX+n+WUJBdLYuVbl1JMwqEAS+TRnte7FgWpMM+eIYHNnu2BJUwP2WqncjcFKniZX
DDKxKH7mvoCJJNDZJpEvMA==
-----END PRIVATE KEY-----
";
