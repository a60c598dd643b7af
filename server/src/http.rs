//! What every router shares: the limits each request runs under, and the extractors and responses
//! handlers use (query parameters as Backstage sends them, JSON bodies whose errors say what is wrong,
//! bodies already serialized).

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
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
        Ok(Self(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

/// `Json<T>` whose rejections are `InputError`s saying what is wrong with the body.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(AppError::TooLarge(
                    "Request body is larger than the limit (server.body_limit_bytes)".to_owned(),
                ))
            }
            Err(rejection) => Err(AppError::input(format!(
                "Malformed request body: {}",
                rejection.body_text()
            ))),
        }
    }
}
