//! What every router shares: the limits each request runs under, and the extractors and responses
//! handlers use (query parameters as Backstage sends them, JSON bodies whose errors say what is wrong,
//! path parameters, bodies already serialized).
//!
//! The extractors refuse request text holding a NUL character before any handler sees it: Postgres
//! cannot store or compare `\0` in text, so such a value would otherwise fail in SQL as a 500. A query
//! parameter or a body answers 400 naming the parameter or the field; a path answers 404 (no entity can
//! have such a name).

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::ServerConfig;
use crate::error::AppError;

/// The limits every request of `router` runs under: body size, time, and a caught panic. They sit inside
/// the router's error renderer, so what they answer is rendered like any other error.
pub fn with_limits<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    server: &ServerConfig,
) -> Router<S> {
    let timeout = Duration::from_secs(server.request_timeout_seconds);
    router
        // Both limits: the layer for streamed bodies, axum's own for the extractors (default 2 MB).
        .layer(DefaultBodyLimit::max(server.body_limit_bytes))
        .layer(RequestBodyLimitLayer::new(server.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::new())
}

/// A JSON body already serialized.
pub struct RawJson(pub String);

impl IntoResponse for RawJson {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

/// 201 with a JSON body.
pub fn created(body: impl serde::Serialize) -> Response {
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// Joins serialized JSON values into a JSON array without parsing them again.
pub fn json_array(items: &[String]) -> String {
    let mut out = String::with_capacity(items.iter().map(|b| b.len() + 1).sum::<usize>() + 2);
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push(']');
    out
}

/// Query parameters as a list, since Backstage repeats keys (`filter=a&filter=b`) and also accepts
/// comma-separated lists for some (`fields=a,b`).
#[derive(Debug, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// All values, each split at commas (`fields=a,b&fields=c`).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.all(key)
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn one(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// A non-negative integer parameter.
    pub fn number(&self, key: &str) -> Result<Option<i64>, AppError> {
        match self.one(key) {
            None => Ok(None),
            Some(raw) => raw
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(Some)
                .ok_or_else(|| {
                    AppError::input(format!(
                        "Invalid {key} '{raw}', expected a non-negative integer"
                    ))
                }),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        for (key, value) in &pairs {
            if key.contains('\0') {
                return Err(AppError::input(
                    "Invalid query string: a parameter name contains a NUL character",
                ));
            }
            if value.contains('\0') {
                return Err(AppError::input(format!(
                    "Invalid query parameter '{key}': the value contains a NUL character"
                )));
            }
        }
        Ok(Self(pairs))
    }
}

/// axum's `Path` extractor, which refuses a NUL character in any path parameter with a 404 naming the
/// parameter. Other rejections (a segment that is not UTF-8, a number that does not parse) are 400s.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let value = match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => value,
            Err(rejection) if rejection.status().is_server_error() => {
                return Err(AppError::Internal(anyhow::anyhow!(rejection.body_text())));
            }
            Err(rejection) => return Err(AppError::input(rejection.body_text())),
        };
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|rejection| AppError::input(rejection.body_text()))?;
        if let Some((name, _)) = raw.iter().find(|(_, value)| value.contains('\0')) {
            return Err(AppError::not_found(format!(
                "Nothing is found here: the path parameter '{name}' contains a NUL character"
            )));
        }
        Ok(Self(value))
    }
}

/// `Json<T>` whose rejections are `InputError`s saying what is wrong with the body.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Read as JSON values first, so that a NUL anywhere is found and named before the body takes
        // its type.
        let value = match axum::Json::<Value>::from_request(req, state).await {
            Ok(axum::Json(value)) => value,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(AppError::TooLarge(
                    "Request body is larger than the limit (server.body_limit_bytes)".to_owned(),
                ));
            }
            Err(rejection) => {
                return Err(AppError::input(format!(
                    "Malformed request body: {}",
                    rejection.body_text()
                )));
            }
        };
        if let Some(at) = find_nul(&value) {
            return Err(AppError::input(format!(
                "Invalid request body: {at} contains a NUL character"
            )));
        }
        serde_path_to_error::deserialize(value)
            .map(Self)
            .map_err(|e| {
                let at = e.path().to_string();
                let inner = e.into_inner();
                AppError::input(if at == "." {
                    format!("Malformed request body: {inner}")
                } else {
                    format!("Malformed request body: {at}: {inner}")
                })
            })
    }
}

/// Where in `value` the first string or object key holding a NUL character is (`entityRefs[1]`,
/// `query.kind`; a key is reported by the object it belongs to), or `None` when there is none.
pub fn find_nul(value: &Value) -> Option<String> {
    fn walk(value: &Value, at: &mut String) -> bool {
        match value {
            Value::String(text) => text.contains('\0'),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                let found = walk(item, at);
                if !found {
                    at.truncate(len);
                }
                found
            }),
            Value::Object(map) => map.iter().any(|(key, item)| {
                if key.contains('\0') {
                    return true;
                }
                let len = at.len();
                if !at.is_empty() {
                    at.push('.');
                }
                at.push_str(key);
                let found = walk(item, at);
                if !found {
                    at.truncate(len);
                }
                found
            }),
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
    let mut at = String::new();
    walk(value, &mut at).then(|| {
        if at.is_empty() {
            "a top-level key".to_owned()
        } else {
            at
        }
    })
}
