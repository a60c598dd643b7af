//! One error type for the whole server.
//!
//! Handlers return `Result<T, AppError>`. An error renders in Backstage's JSON error shape
//! (`{error: {name, message}, request: {method, url}, response: {statusCode}}`) so Backstage clients map it
//! to their own error classes (`NotFoundError`, `ConflictError`, ...). Internal errors are logged with the
//! request id and answered with a generic message: SQL, paths and stack traces never reach a client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input from the client: a malformed filter, body or parameter (400, `InputError`).
    #[error("{0}")]
    Input(String),
    /// The request body is larger than `server.body_limit_bytes` (413, `InputError`).
    #[error("{0}")]
    TooLarge(String),
    /// The thing asked for does not exist (404, `NotFoundError`).
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with what is stored (409, `ConflictError`).
    #[error("{0}")]
    Conflict(String),
    /// The request is understood but refused by configuration (403, `NotAllowedError`).
    #[error("{0}")]
    NotAllowed(String),
    /// The caller could not prove who it is: a missing or wrong signature (401, `AuthenticationError`).
    #[error("{0}")]
    Unauthorized(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn input(message: impl Into<String>) -> Self {
        Self::Input(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Input(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::NotAllowed(_) => StatusCode::FORBIDDEN,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error class name Backstage clients expect in `error.name`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Input(_) | Self::TooLarge(_) => "InputError",
            Self::NotFound(_) => "NotFoundError",
            Self::Conflict(_) => "ConflictError",
            Self::NotAllowed(_) => "NotAllowedError",
            Self::Unauthorized(_) => "AuthenticationError",
            Self::Database(_) | Self::Internal(_) => "Error",
        }
    }

    /// What the client may see. Internal causes stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            Self::Database(_) | Self::Internal(_) => {
                "Internal server error; the server log has the details under this request's id"
                    .to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// Backstage's serialized error body.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    pub request: RequestInfo,
    pub response: ResponseInfo,
}

#[derive(Debug, Serialize)]
pub struct ErrorDetail {
    pub name: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize, Clone, Default)]
pub struct RequestInfo {
    pub method: String,
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct ResponseInfo {
    #[serde(rename = "statusCode")]
    pub status_code: u16,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The request id is on the surrounding tracing span (see the TraceLayer in lib.rs).
            tracing::error!(error = ?self, "request failed");
        }
        let mut response = status.into_response();
        // The body is rendered by `render_error_body`, which knows the request's method and URL.
        response.extensions_mut().insert(ErrorPayload {
            name: self.name(),
            message: self.public_message(),
        });
        response
    }
}

/// Whether a handler already wrote a body meant for its reader — JSON such as validate-entity's
/// `{errors: [...]}`, or a page's HTML error page — which stays as it is.
fn has_own_body(response: &Response) -> bool {
    response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"))
}

/// What an `AppError` leaves on its response for `render_error_body`.
#[derive(Clone, Debug)]
pub struct ErrorPayload {
    pub name: &'static str,
    pub message: String,
}

/// Middleware: turns an error response's `ErrorPayload` into Backstage's JSON error body, adding the
/// request's method and URL the way Backstage's error handler does.
pub async fn render_error_body(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let request_info = RequestInfo {
        method: request.method().to_string(),
        url: request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
    };
    let mut response = next.run(request).await;
    let status = response.status();
    let payload = match response.extensions_mut().remove::<ErrorPayload>() {
        Some(payload) => payload,
        // Errors made by middleware (405, 408, 413, a caught panic) carry no payload; give them one.
        None if (status.is_client_error() || status.is_server_error())
            && !has_own_body(&response) =>
        {
            ErrorPayload {
                name: match status.as_u16() {
                    400 | 413 | 415 | 422 => "InputError",
                    404 => "NotFoundError",
                    408 | 503 => "ServiceUnavailableError",
                    _ => "Error",
                },
                message: status.canonical_reason().unwrap_or("Error").to_owned(),
            }
        }
        None => return response,
    };
    let body = ErrorBody {
        error: ErrorDetail {
            name: payload.name,
            message: payload.message,
        },
        request: request_info,
        response: ResponseInfo {
            status_code: status.as_u16(),
        },
    };
    let mut rendered = (status, axum::Json(body)).into_response();
    for (name, value) in response.headers() {
        // The old body's length and type do not describe the new body.
        if name == axum::http::header::CONTENT_LENGTH || name == axum::http::header::CONTENT_TYPE {
            continue;
        }
        if !rendered.headers().contains_key(name) {
            rendered.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rendered
}
