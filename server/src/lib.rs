//! Atrium: a self-service developer portal backend — a Backstage-compatible catalog on Postgres.
//!
//! `app(state)` builds the whole HTTP surface; `main.rs` only parses the command line. Feature modules
//! (`catalog`, later `scaffolder`, `deploy`, `auth`) own their routes, queries, pages and tests;
//! docs/ARCHITECTURE.md has the module tree and the layering rule.

pub mod auth;
pub mod catalog;
pub mod config;
pub mod db;
pub mod deploy;
pub mod error;
pub mod git;
pub mod health;
mod home;
pub mod http;
pub mod mcp;
pub mod net;
pub mod scaffolder;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod ui;

use axum::Router;
use axum::http::HeaderName;
use axum::middleware::{from_fn, from_fn_with_state};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use error::{AppError, Result};
pub use state::AppState;

pub use db::MIGRATOR;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The complete router with its middleware.
///
/// Two surfaces, each with its own error rendering: the API under `/api` (Backstage's JSON errors) and
/// the pages everywhere else (HTML errors). Which one renders an error is decided by the router the
/// request reached, including for paths nothing serves.
pub fn app(state: AppState) -> Router {
    let server = &state.config.server;
    // Each plugin router renders its own errors, so `request.url` is the URL as that router sees it
    // (`/entities?...`, as Backstage's per-plugin error handler writes it); the outer renderer takes
    // what no plugin answered (unknown paths, time-outs) with the full URL.
    let api = Router::new()
        .nest(
            "/catalog",
            catalog::api::router().layer(from_fn(error::render_json)),
        )
        .nest(
            "/scaffolder",
            scaffolder::api::router().layer(from_fn(error::render_json)),
        )
        .merge(deploy::api::router().layer(from_fn(error::render_json)))
        .merge(auth::api::router().layer(from_fn(error::render_json)))
        .nest(
            "/atrium",
            catalog::api::atrium_router().layer(from_fn(error::render_json)),
        )
        .nest_service("/mcp", mcp::service(state.clone()))
        .fallback(api_not_found);
    let authenticate = from_fn_with_state(state.auth.clone(), auth::middleware::authenticate);
    let api = http::with_limits(api, server).layer(from_fn(telemetry::record_http_metrics));
    // The long poll and the event stream wait on purpose: outside the request time limit, each bounds
    // its own wait.
    let streams = Router::new()
        .nest(
            "/api/scaffolder",
            scaffolder::api::streams().layer(from_fn(error::render_json)),
        )
        .layer(authenticate.clone())
        .layer(from_fn(error::render_json))
        .layer(from_fn(telemetry::record_http_metrics));
    let api = Router::new()
        .nest("/api", api)
        .layer(authenticate.clone())
        .layer(from_fn(error::render_json))
        .merge(streams);
    let pages = home::router()
        .merge(ui::router())
        .merge(catalog::pages::router())
        .merge(catalog::skills::router())
        .merge(scaffolder::pages::router())
        .merge(deploy::pages::router())
        .merge(auth::pages::router())
        .merge(auth::agents::router())
        .merge(auth::signin::router())
        .fallback(ui::not_found);
    let pages = http::with_limits(pages, server)
        .layer(authenticate)
        .layer(from_fn(ui::error::render_html))
        .layer(from_fn(ui::security_headers))
        .layer(from_fn(telemetry::record_http_metrics));
    let operations = health::router().layer(from_fn(telemetry::record_http_metrics));
    api.merge(operations)
        .merge(pages)
        .with_state(state)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let request_id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id)
        })
        // One line per request (status and latency) at DEBUG: at thousands of requests a second an
        // access log at the default level cost the server more CPU than answering (and 500 MB of
        // log in a 2-minute benchmark). A proxy in front usually keeps access logs; `RUST_LOG=
        // info,tower_http=debug` turns them on here. Server errors are logged at ERROR regardless
        // (TraceLayer's default on_failure).
        .on_response(DefaultOnResponse::new().level(Level::DEBUG)))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn api_not_found(axum::extract::OriginalUri(uri): axum::extract::OriginalUri) -> AppError {
    AppError::not_found(format!("No route for {}", uri.path()))
}
