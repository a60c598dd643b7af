//! The browser portal: server-rendered HTML pages over the catalog.
//!
//! Pages are askama templates (`web/templates`) filled from view structs built here; every page is a
//! fixed number of queries (never one per row). The pages work without JavaScript, carry a strict
//! Content-Security-Policy (no inline scripts or styles anywhere), and render their errors as HTML pages
//! rather than the API's JSON error shape. CSP violations that browsers report land in `/csp-report` and
//! are counted, so the browser tests can assert that none happened.

mod assets;
mod entity;
mod graph;
mod home;
mod kinds;
mod list;
mod register;
mod view;
mod yaml_out;

use std::sync::atomic::{AtomicU64, Ordering};

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::AppState;
use crate::error::AppError;

/// The policy every page is served with. `report-uri` makes browsers tell us about violations.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'; \
report-uri /csp-report";

static CSP_REPORTS: AtomicU64 = AtomicU64::new(0);

/// How many CSP violation reports this process has received (the browser tests assert on it).
pub fn csp_report_count() -> u64 {
    CSP_REPORTS.load(Ordering::Relaxed)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home::show_home))
        .route("/catalog", get(list::list_entities))
        .route(
            "/catalog/register",
            get(register::show_register).post(register::submit_register),
        )
        .route(
            "/catalog/{kind}/{namespace}/{name}",
            get(entity::show_entity),
        )
        .route("/static/{file}", get(assets::serve_static))
        .route("/csp-report", post(receive_csp_report))
        .layer(axum::middleware::from_fn(page_layer))
}

async fn receive_csp_report(body: axum::body::Bytes) -> StatusCode {
    CSP_REPORTS.fetch_add(1, Ordering::Relaxed);
    // Reports are small JSON documents; log a bounded, lossy prefix for whoever investigates.
    let text = String::from_utf8_lossy(&body[..body.len().min(2048)]).into_owned();
    tracing::warn!(report = %text, "content security policy violation reported");
    StatusCode::NO_CONTENT
}

/// A page that could not be shown. Handlers return it; `page_layer` renders it as an HTML page with the
/// request id (the API's JSON error rendering never sees an `AppError` from a page).
#[derive(Debug, Clone)]
pub(crate) struct PageError {
    status: StatusCode,
    title: String,
    message: String,
    /// (href, label) of a way on, e.g. a search for the name that was not found.
    suggestion: Option<(String, String)>,
}

impl PageError {
    pub fn new(status: StatusCode, title: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            title: title.to_owned(),
            message: message.into(),
            suggestion: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found", message)
    }

    pub fn with_suggestion(mut self, href: String, label: String) -> Self {
        self.suggestion = Some((href, label));
        self
    }
}

impl From<AppError> for PageError {
    fn from(error: AppError) -> Self {
        let status = error.status();
        if status.is_server_error() {
            // The request id is on the surrounding tracing span.
            tracing::error!(error = ?error, "page failed");
            return Self::new(
                status,
                "Something went wrong",
                "The page could not be shown because of an error on our side.",
            );
        }
        let title = status.canonical_reason().unwrap_or("Error");
        Self::new(status, title, error.public_message())
    }
}

impl From<sqlx::Error> for PageError {
    fn from(error: sqlx::Error) -> Self {
        AppError::from(error).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

pub(crate) type PageResult<T> = Result<T, PageError>;

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    title: String,
    message: String,
    status: u16,
    suggestion: Option<(String, String)>,
    request_id: String,
}

/// Security headers on everything the pages router answers, and `PageError`s rendered as HTML.
async fn page_layer(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let mut response = next.run(request).await;
    if let Some(error) = response.extensions_mut().remove::<PageError>() {
        let page = ErrorPage {
            title: error.title,
            message: error.message,
            status: error.status.as_u16(),
            suggestion: error.suggestion,
            request_id,
        };
        let headers = std::mem::take(response.headers_mut());
        response = (error.status, page).into_response();
        for (name, value) in &headers {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
    }
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Cross-site request forgery check for form posts, the scheme of Go 1.25's `CrossOriginProtection`:
/// a browser's `Sec-Fetch-Site` must say same-origin, or else its `Origin` must name this host.
/// Requests with neither header come from non-browser clients, which carry no ambient credentials.
pub(crate) fn check_same_origin(headers: &HeaderMap) -> PageResult<()> {
    let forbidden = || {
        PageError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "This form was sent from another site, so it was refused. Open the page on this site and send it again.",
        )
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Ok(()),
            _ => Err(forbidden()),
        };
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).map(HeaderValue::as_bytes);
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, authority)| authority.as_bytes());
    match (origin_host, host) {
        (Some(origin_host), Some(host)) if origin_host == host => Ok(()),
        _ => Err(forbidden()),
    }
}

/// A stored entity body (always JSON written by the stitcher).
pub(crate) fn parse_entity(body: &str) -> PageResult<serde_json::Value> {
    serde_json::from_str(body).map_err(|e| {
        PageError::from(AppError::Internal(anyhow::anyhow!(
            "stored entity is not JSON: {e}"
        )))
    })
}
