//! Serving: the checks every request goes through, routing, and the listener that can play dead.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::Query;
use axum::http::{HeaderMap, Method, Request, Response, header};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::discovery::{self, RESOURCES};
use super::store::{bad_request, not_found, remove, status_value};
use super::watches::{Filter, watch_response};
use super::{Key, SeenRequest, Shared, State};

pub(super) fn respond(code: u16, content_type: &str, body: Body) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .expect("kube fake response")
}

pub(super) fn json_response(code: u16, value: &Value) -> Response<Body> {
    respond(code, "application/json", Body::from(value.to_string()))
}

/// A `Status` value as a response with its own code.
pub(super) fn status_response(status: &Value) -> Response<Body> {
    let code = status["code"]
        .as_u64()
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(500);
    json_response(code, status)
}

pub(super) struct Incoming {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
}

impl Incoming {
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub(super) fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub(super) fn check_params(&self, allowed: &[&str], problems: &mut Vec<String>) {
        for (key, _) in &self.query {
            if !allowed.contains(&key.as_str()) {
                problems.push(format!("unexpected query parameter {key:?}"));
            }
        }
    }
}

pub(super) async fn handle(shared: Arc<Shared>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 64 << 20).await.unwrap_or_default();
    let query = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
        .map_or_else(|_| Vec::new(), |q| q.0);
    let incoming = Incoming {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query,
        headers: parts.headers,
        body,
    };
    let mut problems = Vec::new();
    let response = route(&shared, &incoming, &mut problems);
    let raw_query = parts.uri.query().unwrap_or_default().to_owned();
    let seen = SeenRequest {
        method: incoming.method.to_string(),
        path: incoming.path.clone(),
        content_type: incoming.header(header::CONTENT_TYPE).map(str::to_owned),
        accept: incoming.header(header::ACCEPT).map(str::to_owned),
        status: response.status().as_u16(),
        query: raw_query,
    };
    let mut state = shared.lock();
    let separator = if seen.query.is_empty() { "" } else { "?" };
    let request = format!("{} {}{separator}{}", seen.method, seen.path, seen.query);
    state.violations.extend(
        problems
            .into_iter()
            .map(|problem| format!("{request}: {problem}")),
    );
    state.requests.push(seen);
    response
}

pub(super) const LIST_PARAMS: [&str; 8] = [
    "labelSelector",
    "fieldSelector",
    "limit",
    "continue",
    "resourceVersion",
    "resourceVersionMatch",
    "timeoutSeconds",
    "pretty",
];

pub(super) fn route(
    shared: &Arc<Shared>,
    request: &Incoming,
    problems: &mut Vec<String>,
) -> Response<Body> {
    let mut state = shared.lock();
    if let Some(code) = state.fail_with {
        let reason = match code {
            401 => "Unauthorized",
            403 => "Forbidden",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "InternalError",
        };
        let message = "failure injected by the test";
        return status_response(&status_value(code, reason, message, Value::Null));
    }
    if let Some(token) = &state.token
        && request.header(header::AUTHORIZATION) != Some(format!("Bearer {token}").as_str())
    {
        problems.push("no or wrong bearer token".to_owned());
        return status_response(&status_value(
            401,
            "Unauthorized",
            "Unauthorized",
            Value::Null,
        ));
    }
    match request.header(header::ACCEPT) {
        Some(accept) if !accept.contains("application/json") && !accept.contains("*/*") => {
            problems.push(format!("Accept {accept:?} does not take JSON"));
        }
        None if request.method == Method::PATCH => problems.push("no Accept header".to_owned()),
        _ => {}
    }
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    if let Some(response) = discovery_route(&state, request, &segments, problems) {
        return response;
    }
    let (group, version, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] if !rest.is_empty() => ("", "v1", rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return unserved(problems),
    };
    let (namespace, rest) = match rest {
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() && rest != ["status"] => {
            (Some(*namespace), rest)
        }
        _ => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, subresource] => (*plural, Some(*name), Some(*subresource)),
        _ => return unserved(problems),
    };
    if state.hidden.iter().any(|hidden| hidden == group) {
        let message = "the server could not find the requested resource";
        return status_response(&status_value(404, "NotFound", message, json!({})));
    }
    let Some(index) = discovery::find(group, version, plural) else {
        return unserved(problems);
    };
    let res = &RESOURCES[index];
    if res.namespaced != namespace.is_some() && (name.is_some() || !res.namespaced) {
        return unserved(problems);
    }
    let Some(name) = name else {
        if request.method != Method::GET {
            return unexpected_method(request, problems);
        }
        let watching = matches!(request.param("watch"), Some("true" | "1"));
        let mut allowed = LIST_PARAMS.to_vec();
        if watching {
            allowed.extend(["watch", "allowWatchBookmarks", "sendInitialEvents"]);
        }
        request.check_params(&allowed, problems);
        let filter = match Filter::new(index, namespace, request) {
            Ok(filter) => filter,
            Err(message) => {
                problems.push(message.clone());
                return status_response(&bad_request(message));
            }
        };
        return if watching {
            watch_response(shared, &state, filter, request)
        } else {
            list(&state, &filter)
        };
    };
    let key = (
        index,
        namespace.unwrap_or_default().to_owned(),
        name.to_owned(),
    );
    if subresource.is_some_and(|sub| sub != "status" || !res.status) {
        return unserved(problems);
    }
    match request.method {
        Method::GET => {
            request.check_params(&["resourceVersion", "pretty"], problems);
            match state.objects.get(&key) {
                Some(stored) => json_response(200, &stored.render()),
                None => status_response(&not_found(res, name)),
            }
        }
        Method::PATCH if subresource.is_none() => {
            request.check_params(
                &[
                    "fieldManager",
                    "force",
                    "dryRun",
                    "fieldValidation",
                    "pretty",
                ],
                problems,
            );
            patch(&mut state, &key, request, problems)
        }
        Method::DELETE if subresource.is_none() => {
            request.check_params(
                &[
                    "dryRun",
                    "propagationPolicy",
                    "gracePeriodSeconds",
                    "pretty",
                ],
                problems,
            );
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let in_body = body["dryRun"]
                .as_array()
                .is_some_and(|d| d.contains(&json!("All")));
            let dry_run = in_body || request.param("dryRun") == Some("All");
            match state.delete(&key, dry_run) {
                None => status_response(&not_found(res, name)),
                Some(object) if res.kind == "Pod" => json_response(200, &object),
                Some(object) => {
                    let uid = &object["metadata"]["uid"];
                    let details =
                        json!({"name": name, "group": res.group, "kind": res.plural, "uid": uid});
                    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details});
                    json_response(200, &status)
                }
            }
        }
        _ => unexpected_method(request, problems),
    }
}

pub(super) fn unserved(problems: &mut Vec<String>) -> Response<Body> {
    problems.push("a path the fake does not serve".to_owned());
    let message = "the server could not find the requested resource";
    status_response(&status_value(404, "NotFound", message, json!({})))
}

pub(super) fn unexpected_method(request: &Incoming, problems: &mut Vec<String>) -> Response<Body> {
    problems.push(format!("unexpected method {}", request.method));
    let message = format!("{} is not supported by the fake here", request.method);
    status_response(&status_value(
        405,
        "MethodNotAllowed",
        &message,
        Value::Null,
    ))
}

pub(super) fn discovery_route(
    state: &State,
    request: &Incoming,
    segments: &[&str],
    problems: &mut Vec<String>,
) -> Option<Response<Body>> {
    let hidden = &state.hidden;
    // A group the test took away (a CRD not installed) is simply not served: a 404, not a violation.
    if let ["apis", group, _] = segments
        && hidden.iter().any(|h| h == group)
    {
        let message = "the server could not find the requested resource";
        return Some(status_response(&status_value(
            404,
            "NotFound",
            message,
            json!({}),
        )));
    }
    let aggregated = request
        .header(header::ACCEPT)
        .is_some_and(discovery::wants_aggregated);
    let document = match segments {
        ["version"] => discovery::version_info(),
        ["api"] if aggregated => discovery::aggregated(true, hidden),
        ["api"] => discovery::core_versions(request.header(header::HOST).unwrap_or("127.0.0.1")),
        ["apis"] if aggregated => discovery::aggregated(false, hidden),
        ["apis"] => discovery::group_list(hidden),
        ["api", version] => discovery::resource_list("", version, hidden)?,
        ["apis", group, version] => discovery::resource_list(group, version, hidden)?,
        _ => return None,
    };
    if request.method != Method::GET {
        return Some(unexpected_method(request, problems));
    }
    request.check_params(&[], problems);
    let content_type = if aggregated && matches!(segments, ["api" | "apis"]) {
        discovery::AGGREGATED
    } else {
        "application/json"
    };
    Some(respond(200, content_type, Body::from(document.to_string())))
}

pub(super) fn patch(
    state: &mut State,
    key: &Key,
    request: &Incoming,
    problems: &mut Vec<String>,
) -> Response<Body> {
    let content_type = request.header(header::CONTENT_TYPE).unwrap_or_default();
    if content_type.split(';').next().map(str::trim) != Some("application/apply-patch+yaml") {
        problems.push(format!(
            "PATCH as {content_type:?}: only server-side apply is expected"
        ));
        let message = format!("the fake takes only server-side apply, not {content_type:?}");
        return status_response(&status_value(
            415,
            "UnsupportedMediaType",
            &message,
            Value::Null,
        ));
    }
    let manager = request.param("fieldManager").unwrap_or_default();
    if manager != state.manager {
        let expected = &state.manager;
        problems.push(format!("fieldManager {manager:?}, expected {expected:?}"));
        let message = if manager.is_empty() {
            "PATCH requests with apply content type must have a field manager".to_owned()
        } else {
            format!("the fake expects field manager {expected:?}, not {manager:?}")
        };
        return status_response(&bad_request(message));
    }
    let force = match request.param("force") {
        None | Some("false") => false,
        Some("true") => {
            problems
                .push("force=true: Atrium must never take fields from other managers".to_owned());
            true
        }
        Some(other) => {
            return status_response(&bad_request(format!("invalid force value {other:?}")));
        }
    };
    let dry_run = match request.param("dryRun") {
        None => false,
        Some("All") => true,
        Some(other) => {
            problems.push(format!("dryRun={other:?}, only All is valid"));
            let message = format!("Unsupported value: \"{other}\": supported values: \"All\"");
            return status_response(&status_value(400, "BadRequest", &message, Value::Null));
        }
    };
    if let Some(validation) = request.param("fieldValidation")
        && !matches!(validation, "Strict" | "Warn" | "Ignore")
    {
        return status_response(&bad_request(format!(
            "invalid fieldValidation {validation:?}"
        )));
    }
    let body = serde_json::from_slice::<Value>(&request.body)
        .or_else(|_| serde_saphyr::from_slice::<Value>(&request.body));
    let Ok(body) = body else {
        return status_response(&bad_request(
            "error decoding YAML: the apply patch does not parse".to_owned(),
        ));
    };
    let manager = manager.to_owned();
    match state.apply(key, body, &manager, force, dry_run) {
        Ok((code, object)) => json_response(code, &object),
        Err(status) => status_response(&status),
    }
}

pub(super) fn list(state: &State, filter: &Filter) -> Response<Body> {
    let res = &RESOURCES[filter.res];
    let items: Vec<Value> = state
        .objects
        .iter()
        .filter(|(key, stored)| filter.matches(key.0, &key.1, &stored.object))
        .map(|(_, stored)| {
            let mut item = stored.render();
            if res.builtin() {
                remove(&mut item, "apiVersion");
                remove(&mut item, "kind");
            }
            item
        })
        .collect();
    let list = json!({
        "kind": format!("{}List", res.kind), "apiVersion": res.api_version(),
        "metadata": {"resourceVersion": state.rv.to_string()}, "items": items
    });
    json_response(200, &list)
}

/// A listener whose connections all fail while `down` is set.
pub(super) struct FakeListener {
    pub(super) inner: TcpListener,
    pub(super) down: Arc<AtomicBool>,
}

impl axum::serve::Listener for FakeListener {
    type Io = FakeIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, address)) => {
                    return (
                        FakeIo {
                            inner: stream,
                            down: self.down.clone(),
                        },
                        address,
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

pub(super) struct FakeIo {
    inner: TcpStream,
    down: Arc<AtomicBool>,
}

impl FakeIo {
    pub(super) fn check(&self) -> io::Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(io::ErrorKind::ConnectionReset.into())
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for FakeIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(error) = this.check() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FakeIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(error) = this.check() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
