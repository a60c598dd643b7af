//! `/api/catalog`: the Backstage catalog REST API, wire-compatible with `@backstage/catalog-client`.
//!
//! Entities are stored already serialized (`entity.final`), so full-entity answers are assembled from
//! those strings without parsing them again; only `fields` projections (`fields.rs`) parse.

mod entities;
mod facets;
mod fields;
mod locations;
mod query;
mod validate;
mod webhooks;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::catalog::model::refs::EntityRef;
use crate::error::AppError;
use crate::http::QueryParams;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    // Backstage documents no query parameters for these, and its validator refuses any.
    let without_parameters = Router::new()
        .route(
            "/entities/by-uid/{uid}",
            get(entities::get_entity_by_uid).delete(entities::delete_entity_by_uid),
        )
        .route(
            "/entities/by-name/{kind}/{namespace}/{name}",
            get(entities::get_entity_by_name),
        )
        .route(
            "/entities/by-name/{kind}/{namespace}/{name}/ancestry",
            get(entities::get_entity_ancestry),
        )
        .route("/refresh", post(entities::refresh_entity))
        .route("/analyze-location", post(locations::analyze_location))
        .route("/locations/by-query", post(locations::query_locations))
        .route(
            "/locations/{id}",
            get(locations::get_location).delete(locations::delete_location),
        )
        .route(
            "/locations/by-entity/{kind}/{namespace}/{name}",
            get(locations::get_location_by_entity),
        )
        .route_layer(from_fn(refuse_query));
    // These check their parameters themselves. (Backstage does not validate validate-entity's
    // request, and the webhook is Atrium's.)
    Router::new()
        .route("/entities", get(entities::list_entities))
        .route("/entities/by-refs", post(entities::get_entities_by_refs))
        .route(
            "/entities/by-query",
            get(query::query_entities).post(query::query_entities_by_predicate),
        )
        .route(
            "/entity-facets",
            get(facets::get_entity_facets).post(facets::query_entity_facets),
        )
        .route(
            "/locations",
            get(locations::list_locations).post(locations::create_location),
        )
        .route("/webhooks/git", post(webhooks::git_push))
        .route("/validate-entity", post(validate::validate_entity))
        .merge(without_parameters)
}

async fn refuse_query(params: QueryParams, request: Request, next: Next) -> Response {
    match check_query(&params, &[]) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Atrium's own operational endpoints under `/api/atrium`.
pub fn atrium_router() -> Router<AppState> {
    Router::new().route("/processing", get(entities::processing_status))
}

/// The entity key of `{kind}/{namespace}/{name}` path parts (case-insensitive).
fn key_of(kind: &str, namespace: &str, name: &str) -> String {
    EntityRef::new(kind, namespace, name).key()
}

/// Rejects what Backstage's OpenAPI request validator rejects before its handlers run: a query
/// parameter the endpoint does not document, and one given with an empty value (`?fields=`).
fn check_query(params: &QueryParams, documented: &[&str]) -> Result<(), AppError> {
    for (key, value) in params.pairs() {
        if !documented.contains(&key.as_str()) {
            return Err(AppError::input(format!("Unknown query parameter '{key}'")));
        }
        if value.is_empty() {
            return Err(AppError::input(format!(
                "Empty value found for query parameter '{key}'"
            )));
        }
    }
    Ok(())
}
