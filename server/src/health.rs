//! Operator endpoints: `/healthz` (the process is up), `/readyz` (database reachable, migrations applied),
//! `/metrics` (Prometheus text format).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::db::{MIGRATOR, latest_applied_migration};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied = latest_applied_migration(&state.db).await;
    match applied {
        Ok(Some(version)) if version >= latest => (StatusCode::OK, "ready".to_owned()),
        Ok(version) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("migrations pending: database at {version:?}, binary expects {latest}"),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unreachable".to_owned(),
            )
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.catalog.record_gauges().await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
