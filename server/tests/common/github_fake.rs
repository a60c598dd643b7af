//! A loopback fake of the GitHub endpoints `publish:github` calls, in the manner of a scenario
//! verifier: the test lists the requests it expects, in order, each with the answer to give; every
//! request is checked (method, path, bearer token, API headers, exact JSON body) and anything else is
//! recorded as a problem that [`GithubFake::finish`] turns into a test failure.
//!
//! Under `/git/` it is a git host: `git http-backend` over the bare repositories in `repos`, behind
//! Basic authentication that accepts exactly the token as the password. A creation the script marks
//! with [`Expect::creates_repo`] makes the (empty) bare repository, as GitHub would.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::http::{Request, Response, StatusCode, header};
use base64::Engine;
use serde_json::Value;

/// The branch protection Backstage's `publish:github` asks for by default (`protectDefaultBranch`).
pub fn default_branch_protection() -> Value {
    serde_json::json!({
        "required_status_checks": {"strict": true, "contexts": []},
        "restrictions": null,
        "enforce_admins": true,
        "required_pull_request_reviews": {
            "required_approving_review_count": 1,
            "require_code_owner_reviews": false,
            "dismiss_stale_reviews": false,
            "require_last_push_approval": false
        },
        "required_conversation_resolution": false,
        "required_linear_history": false
    })
}

/// GitHub's 422 answer to creating a repository whose name is taken.
pub fn name_exists() -> Value {
    serde_json::json!({
        "message": "Repository creation failed.",
        "errors": [{"resource": "Repository", "code": "custom", "field": "name", "message": "name already exists on this account"}]
    })
}

/// One expected API request and its answer.
pub struct Expect {
    method: String,
    /// Path below the API base, with its query if any.
    path: String,
    /// The exact JSON body; `None`: no body.
    body: Option<Value>,
    status: StatusCode,
    answer: Value,
    /// `owner/repo` to create as an empty bare repository before answering.
    creates: Option<String>,
}

impl Expect {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            body: None,
            status: StatusCode::OK,
            answer: Value::Null,
            creates: None,
        }
    }

    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn answer(mut self, status: u16, answer: Value) -> Self {
        self.status = StatusCode::from_u16(status).expect("status");
        self.answer = answer;
        self
    }

    pub fn creates_repo(mut self, full_name: &str) -> Self {
        self.creates = Some(full_name.to_owned());
        self
    }
}

struct State {
    token: String,
    repos: PathBuf,
    script: VecDeque<Expect>,
    /// Every request, as `METHOD /path -> status` (git requests prefixed `git`).
    seen: Vec<String>,
    problems: Vec<String>,
}

pub struct GithubFake {
    pub address: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl GithubFake {
    /// Serves on 127.0.0.1 (a port picked by the system) until the test's runtime ends.
    pub async fn start(repos: &Path, token: &str, script: Vec<Expect>) -> Self {
        let state = Arc::new(Mutex::new(State {
            token: token.to_owned(),
            repos: repos.to_path_buf(),
            script: script.into(),
            seen: Vec::new(),
            problems: Vec::new(),
        }));
        let shared = state.clone();
        let handler = move |request: Request<Body>| {
            let state = shared.clone();
            async move { handle(state, request).await }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let router = axum::Router::new().fallback(handler);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { address, state }
    }

    /// The `github_api_url` of this fake.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/v3", self.address)
    }

    /// The `remote` pattern of this fake's git host.
    pub fn remote_pattern(&self) -> String {
        format!("http://{}/git/{{owner}}/{{repo}}.git", self.address)
    }

    /// Fails the test on any unexpected request or one the script still waits for; returns every
    /// request seen, in order.
    pub fn finish(&self) -> Vec<String> {
        let state = self.state.lock().expect("state");
        assert!(
            state.problems.is_empty(),
            "the fake GitHub saw wrong requests: {:#?}\nall requests: {:#?}",
            state.problems,
            state.seen
        );
        let left: Vec<String> = state
            .script
            .iter()
            .map(|e| format!("{} {}", e.method, e.path))
            .collect();
        assert!(
            left.is_empty(),
            "requests the fake GitHub still expected: {left:?}\nall requests: {:#?}",
            state.seen
        );
        state.seen.clone()
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body).expect("json")
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(bytes))
        .expect("response")
}

async fn handle(state: Arc<Mutex<State>>, request: Request<Body>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    if let Some(api_path) = path_and_query.strip_prefix("/api/v3") {
        return handle_api(&state, api_path.to_owned(), request).await;
    }
    if path.starts_with("/git/") {
        return handle_git(&state, request).await;
    }
    let mut state = state.lock().expect("state");
    let line = format!("{} {path_and_query}", request.method());
    state
        .problems
        .push(format!("not an API or git path: {line}"));
    state.seen.push(format!("{line} -> 404"));
    json_response(StatusCode::NOT_FOUND, &Value::Null)
}

async fn handle_api(
    state: &Arc<Mutex<State>>,
    api_path: String,
    request: Request<Body>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 1024 * 1024).await.expect("body");
    let line = format!("{} {api_path}", parts.method);
    let mut state = state.lock().expect("state");
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut problems = Vec::new();
    let Some(expected) = state.script.pop_front() else {
        state
            .problems
            .push(format!("{line}: no request was expected"));
        state.seen.push(format!("{line} -> 500"));
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"message": "unexpected request"}),
        );
    };
    if expected.method != parts.method.as_str() || expected.path != api_path {
        problems.push(format!(
            "{line}: expected {} {}",
            expected.method, expected.path
        ));
    }
    if header("authorization") != format!("Bearer {}", state.token) {
        problems.push(format!(
            "{line}: authorization is {:?}",
            header("authorization")
        ));
    }
    if header("accept") != "application/vnd.github+json" {
        problems.push(format!("{line}: accept is {:?}", header("accept")));
    }
    if header("x-github-api-version") != "2022-11-28" {
        problems.push(format!("{line}: no X-GitHub-Api-Version"));
    }
    match (&expected.body, body.is_empty()) {
        (None, true) => {}
        (None, false) => problems.push(format!(
            "{line}: unexpected body {}",
            String::from_utf8_lossy(&body)
        )),
        (Some(want), _) => match serde_json::from_slice::<Value>(&body) {
            Ok(got) if &got == want => {
                if header("content-type") != "application/json" {
                    problems.push(format!("{line}: content-type {:?}", header("content-type")));
                }
            }
            Ok(got) => problems.push(format!("{line}: body {got}, expected {want}")),
            Err(e) => problems.push(format!("{line}: body is not JSON: {e}")),
        },
    }
    if !problems.is_empty() {
        state.problems.extend(problems);
        state.seen.push(format!("{line} -> 500"));
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"message": "unexpected request"}),
        );
    }
    if let Some(full_name) = &expected.creates {
        let path = state.repos.join(format!("{full_name}.git"));
        git2::Repository::init_bare(&path).expect("create the bare repository");
    }
    state
        .seen
        .push(format!("{line} -> {}", expected.status.as_u16()));
    json_response(expected.status, &expected.answer)
}

/// `git http-backend` (the CGI program behind git's own smart-HTTP servers) for one request.
async fn handle_git(state: &Arc<Mutex<State>>, request: Request<Body>) -> Response<Body> {
    let (token, repos) = {
        let state = state.lock().expect("state");
        (state.token.clone(), state.repos.clone())
    };
    let line = format!(
        "git {} {}",
        request.method(),
        request
            .uri()
            .path_and_query()
            .map(axum::http::uri::PathAndQuery::as_str)
            .unwrap_or_default()
    );
    let record = |status: u16| {
        state
            .lock()
            .expect("state")
            .seen
            .push(format!("{line} -> {status}"));
    };
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .is_some_and(|pair| pair == format!("x-access-token:{token}"));
    if !authorized {
        record(401);
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, "Basic realm=\"git\"")
            .body(Body::empty())
            .expect("response");
    }
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 64 * 1024 * 1024).await.expect("body");
    let header_value = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let path_info = parts.uri.path().strip_prefix("/git").unwrap_or_default();
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", &repos)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", path_info)
        .env("QUERY_STRING", parts.uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", header_value(header::CONTENT_TYPE))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env(
            "HTTP_CONTENT_ENCODING",
            header_value(header::CONTENT_ENCODING),
        )
        .env(
            "GIT_PROTOCOL",
            header_value(header::HeaderName::from_static("git-protocol")),
        )
        .env("REMOTE_USER", "x-access-token")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git http-backend starts");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&body).await.expect("request body to CGI");
    }
    let output = child.wait_with_output().await.expect("CGI output");
    let split = output
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("CGI headers end");
    let head = String::from_utf8_lossy(&output.stdout[..split]).into_owned();
    let mut response = Response::builder();
    let mut status = 200;
    for line in head.lines() {
        let Some((name, value)) = line.split_once(": ") else {
            continue;
        };
        if name.eq_ignore_ascii_case("status") {
            status = value[..3].parse().expect("status code");
            response = response.status(status);
        } else {
            response = response.header(name, value);
        }
    }
    record(status);
    response
        .body(Body::from(output.stdout[split + 4..].to_vec()))
        .expect("response")
}
