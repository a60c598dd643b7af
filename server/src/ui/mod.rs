//! What every page of the portal shares: the layout (`web/templates/base.html`), the security headers
//! and Content-Security-Policy (with its report endpoint), static assets, HTML error pages, the check
//! against cross-site form posts.
//!
//! Features own their pages (`catalog::pages`, later `scaffolder::pages`, ...) and build on this
//! module; it knows nothing of them. The home page, which spans features, lives above them
//! (`crate::home`).
//!
//! Pages work without JavaScript, carry a strict CSP (no inline scripts or styles anywhere), and every
//! page is a fixed number of queries (never one per row).

mod assets;
pub mod csp;
pub mod csrf;
pub mod error;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};

use crate::error::AppError;

/// The routes this module serves itself: `/static/{file}`, `/csp-report`.
/// Generic over the router's state: these routes need none, so `ui` stays below `state` and the
/// features.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/static/{file}", get(assets::serve_static))
        .route("/csp-report", post(csp::receive_report))
}

/// The answer for a page path nothing serves.
pub async fn not_found(uri: axum::http::Uri) -> AppError {
    AppError::not_found(format!("There is no page at {}.", uri.path()))
        .suggest("/", "Go to the home page")
}

/// Middleware of the page routers: the security headers every page is served with.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp::CONTENT_SECURITY_POLICY),
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
