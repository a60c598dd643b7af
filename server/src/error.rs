//! One error type for the whole server, rendered two ways.
//!
//! Handlers and pages return `Result<T, AppError>`. An `AppError` becomes a response that carries an
//! [`ErrorPayload`] (status, Backstage error name, public message, field, suggestion); the router a route
//! belongs to decides how that payload is written:
//!
//! - under `/api`, [`render_json`] writes Backstage's JSON error body
//!   (`{error: {name, message}, request: {method, url}, response: {statusCode}}`), so Backstage clients map
//!   it to their own error classes (`NotFoundError`, `ConflictError`, ...);
//! - everywhere else, `ui::error::render_html` writes an HTML error page.
//!
//! Error responses made without an `AppError` — the router's 405, the body limit's 413, the timeout's
//! 408, a caught panic, an extractor's rejection — get a payload from their status, so they are rendered
//! the same way. Internal errors are logged with the request id and answered with a generic message: SQL,
//! paths and stack traces never reach a client.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input from the client: a malformed filter, body or parameter (400, `InputError`).
    #[error("{0}")]
    Input(String),
    /// One field of the input is wrong (400, `InputError`); a form shows the message next to it.
    #[error("{message}")]
    InvalidField { field: String, message: String },
    /// The request body is larger than `server.body_limit_bytes` (413, `InputError`).
    #[error("{0}")]
    TooLarge(String),
    /// The thing asked for does not exist (404, `NotFoundError`).
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with what is stored (409, `ConflictError`).
    #[error("{0}")]
    Conflict(String),
    /// One field of the input clashes with what is stored, such as a name already taken (409,
    /// `ConflictError`); made by [`ResultExt::on_unique_violation`].
    #[error("{message}")]
    FieldConflict { field: String, message: String },
    /// The request is understood but refused by configuration (403, `NotAllowedError`).
    #[error("{0}")]
    NotAllowed(String),
    /// The caller could not prove who it is: no session or token, or a wrong signature (401,
    /// `AuthenticationError`).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but lacks the permission the action needs (403, `NotAllowedError`).
    #[error("You are not allowed to do this: it needs the permission {permission}")]
    Forbidden { permission: String },
    /// The caller made more requests than its rate limit allows (429 with `Retry-After`).
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    /// Another error with a way on for a reader of the HTML page (a search for what was not found, the
    /// first page of a list); the JSON body leaves the suggestion out.
    #[error("{error}")]
    Suggested {
        error: Box<AppError>,
        suggestion: Suggestion,
    },
}

/// A link offered with an error: where to go and what the link says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub href: String,
    pub label: String,
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

    pub fn not_allowed(message: impl Into<String>) -> Self {
        Self::NotAllowed(message.into())
    }

    /// Offers a link with the error (shown on the HTML error page).
    pub fn suggest(self, href: impl Into<String>, label: impl Into<String>) -> Self {
        Self::Suggested {
            error: Box::new(self),
            suggestion: Suggestion {
                href: href.into(),
                label: label.into(),
            },
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Input(_) | Self::InvalidField { .. } => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::FieldConflict { .. } => StatusCode::CONFLICT,
            Self::NotAllowed(_) | Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Suggested { error, .. } => error.status(),
        }
    }

    /// The error class name Backstage clients expect in `error.name`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Input(_) | Self::InvalidField { .. } | Self::TooLarge(_) => "InputError",
            Self::NotFound(_) => "NotFoundError",
            Self::Conflict(_) | Self::FieldConflict { .. } => "ConflictError",
            Self::NotAllowed(_) | Self::Forbidden { .. } => "NotAllowedError",
            Self::Unauthenticated(_) => "AuthenticationError",
            Self::TooManyRequests { .. } => "TooManyRequestsError",
            Self::Database(_) | Self::Internal(_) => "Error",
            Self::Suggested { error, .. } => error.name(),
        }
    }

    /// The input field the error is about, for forms.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidField { field, .. } | Self::FieldConflict { field, .. } => Some(field),
            Self::Suggested { error, .. } => error.field(),
            _ => None,
        }
    }

    /// What the client may see. Internal causes stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            Self::Database(_) | Self::Internal(_) => INTERNAL_MESSAGE.to_owned(),
            Self::Suggested { error, .. } => error.public_message(),
            other => other.to_string(),
        }
    }

    fn payload(&self) -> ErrorPayload {
        ErrorPayload {
            status: self.status(),
            name: self.name(),
            message: self.public_message(),
            field: self.field().map(str::to_owned),
            suggestion: match self {
                Self::Suggested { suggestion, .. } => Some(suggestion.clone()),
                _ => None,
            },
        }
    }
}

const INTERNAL_MESSAGE: &str =
    "Internal server error; the server log has the details under this request's id";

/// Maps database errors that mean something to the user onto `AppError`s that say so.
pub trait ResultExt<T> {
    /// A violation of the unique constraint or unique index `constraint` becomes a
    /// [`AppError::FieldConflict`] on `field` with `message`; other errors pass through.
    fn on_unique_violation(
        self,
        constraint: &str,
        field: &str,
        message: impl FnOnce() -> String,
    ) -> Result<T, AppError>;
}

impl<T, E: Into<AppError>> ResultExt<T> for Result<T, E> {
    fn on_unique_violation(
        self,
        constraint: &str,
        field: &str,
        message: impl FnOnce() -> String,
    ) -> Result<T, AppError> {
        self.map_err(|error| match error.into() {
            AppError::Database(sqlx::Error::Database(db))
                if db.is_unique_violation() && db.constraint() == Some(constraint) =>
            {
                AppError::FieldConflict {
                    field: field.to_owned(),
                    message: message(),
                }
            }
            other => other,
        })
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            // The request id is on the surrounding tracing span (see the TraceLayer in lib.rs).
            tracing::error!(error = ?self, "request failed");
        }
        let payload = self.payload();
        let mut response = payload.status.into_response();
        if let Self::TooManyRequests { retry_after, .. } = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, (*retry_after).into());
        }
        response.extensions_mut().insert(payload);
        response
    }
}

/// What an error response carries for the renderer of its router.
#[derive(Clone, Debug)]
pub struct ErrorPayload {
    pub status: StatusCode,
    /// Backstage's error class name.
    pub name: &'static str,
    /// Safe to show: never SQL, paths of the server or a backtrace.
    pub message: String,
    pub field: Option<String>,
    pub suggestion: Option<Suggestion>,
}

impl ErrorPayload {
    /// The payload of an error response that no `AppError` made (405, 408, 413, a caught panic, an
    /// extractor's rejection): named after its status.
    fn from_status(status: StatusCode) -> Self {
        Self {
            status,
            name: match status.as_u16() {
                400 | 413 | 415 | 422 => "InputError",
                401 => "AuthenticationError",
                403 => "NotAllowedError",
                404 => "NotFoundError",
                409 => "ConflictError",
                408 | 503 => "ServiceUnavailableError",
                _ => "Error",
            },
            message: status.canonical_reason().unwrap_or("Error").to_owned(),
            field: None,
            suggestion: None,
        }
    }
}

/// Marks an error response whose body its handler wrote on purpose in a documented shape (such as
/// validate-entity's `{errors: [...]}`), or that a renderer already wrote: the renderers leave it as
/// it is.
#[derive(Clone, Copy, Debug)]
pub struct OwnErrorBody;

/// The payload to render for `response`, taken out of it; `None` when the response is not an error or
/// carries its own error body.
pub fn take_payload(response: &mut Response) -> Option<ErrorPayload> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<OwnErrorBody>().is_some()
    {
        return None;
    }
    Some(
        response
            .extensions_mut()
            .remove::<ErrorPayload>()
            .unwrap_or_else(|| ErrorPayload::from_status(status)),
    )
}

/// `rendered` with the headers of `original` that still apply (request id, `Allow`, `Retry-After`...);
/// the old body's length and type do not describe the new body.
pub fn keep_headers(original: &Response, mut rendered: Response) -> Response {
    for (name, value) in original.headers() {
        if name == header::CONTENT_LENGTH || name == header::CONTENT_TYPE {
            continue;
        }
        if !rendered.headers().contains_key(name) {
            rendered.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rendered
}

/// Backstage's serialized error body.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
    request: RequestInfo,
    response: ResponseInfo,
}

#[derive(Debug, Serialize)]
struct ErrorDetail<'a> {
    name: &'a str,
    message: &'a str,
}

#[derive(Debug, Serialize)]
struct RequestInfo {
    method: String,
    url: String,
}

#[derive(Debug, Serialize)]
struct ResponseInfo {
    #[serde(rename = "statusCode")]
    status_code: u16,
}

/// Middleware of the `/api` routers: error responses get Backstage's JSON error body, with the
/// request's method and URL as Backstage's error handler writes them. The URL is the one the router
/// this layer is on sees: inside a router nested at `/api/catalog` that is `/entities?...`, because
/// Backstage's handler sits in the plugin's own router and reports the URL relative to its mount.
pub async fn render_json(request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let url = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut response = next.run(request).await;
    let Some(payload) = take_payload(&mut response) else {
        return response;
    };
    let body = ErrorBody {
        error: ErrorDetail {
            name: payload.name,
            message: &payload.message,
        },
        request: RequestInfo { method, url },
        response: ResponseInfo {
            status_code: payload.status.as_u16(),
        },
    };
    let mut rendered = keep_headers(
        &response,
        (payload.status, axum::Json(body)).into_response(),
    );
    // Written: a renderer further out (the `/api` router's, around a plugin's) leaves it alone.
    rendered.extensions_mut().insert(OwnErrorBody);
    rendered
}

/// The request id of a request (set by the outermost layer), for error pages and logs.
pub fn request_id(request: &Request) -> String {
    request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_keep_the_wrapped_error() {
        let error = AppError::not_found("No such page").suggest("/catalog?q=x", "Search");
        assert_eq!(error.status(), StatusCode::NOT_FOUND);
        assert_eq!(error.name(), "NotFoundError");
        assert_eq!(error.public_message(), "No such page");
        let payload = error.payload();
        assert_eq!(
            payload.suggestion,
            Some(Suggestion {
                href: "/catalog?q=x".into(),
                label: "Search".into()
            })
        );
    }

    #[test]
    fn internal_errors_never_show_their_cause() {
        let error = AppError::Internal(anyhow::anyhow!("password=hunter2 at /srv/secret"));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!error.public_message().contains("hunter2"));
        let forbidden = AppError::Forbidden {
            permission: "catalog:write".into(),
        };
        assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
        assert!(forbidden.public_message().contains("catalog:write"));
    }

    #[test]
    fn responses_without_an_app_error_get_a_payload_from_their_status() {
        let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
        let payload = take_payload(&mut response).expect("an error");
        assert_eq!(payload.message, "Method Not Allowed");
        let mut own = StatusCode::BAD_REQUEST.into_response();
        own.extensions_mut().insert(OwnErrorBody);
        assert!(take_payload(&mut own).is_none());
        assert!(take_payload(&mut StatusCode::OK.into_response()).is_none());
    }
}
