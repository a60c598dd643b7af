//! Atrium: a self-service developer portal backend — a Backstage-compatible catalog on Postgres.
//!
//! `app(state)` builds the whole HTTP surface; `main.rs` only parses the command line. Feature modules
//! (`catalog`, later `scaffolder`, `deploy`, `auth`) own their routes, queries and tests.

pub mod catalog;
pub mod config;
pub mod db;
pub mod error;
pub mod health;
pub mod pages;
pub mod state;
pub mod telemetry;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use error::{AppError, Result};
pub use state::AppState;

/// Migrations embedded in the binary; `#[sqlx::test(migrator = "atrium::MIGRATOR")]` uses the same set.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The complete router with its middleware.
pub fn app(state: AppState) -> Router {
    let server = &state.config.server;
    let timeout = Duration::from_secs(server.request_timeout_seconds);
    let body_limit = server.body_limit_bytes;
    Router::new()
        .nest("/api/catalog", catalog::api::router())
        .nest("/api/atrium", catalog::api::atrium_router())
        .merge(health::router())
        .merge(pages::router())
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(telemetry::record_http_metrics))
        // Both limits: the layer for streamed bodies, axum's own for the Json extractor (default 2 MB).
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(CatchPanicLayer::new())
        // Outside the limit, timeout and panic layers, so their answers get the JSON error body too.
        .layer(axum::middleware::from_fn(error::render_error_body))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let request_id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id)
        })
        // One log line per request (status and latency) at the default log level.
        .on_response(DefaultOnResponse::new().level(Level::INFO)))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn not_found(uri: axum::http::Uri) -> AppError {
    AppError::not_found(format!("No route for {}", uri.path()))
}
