//! `/api/catalog`: the Backstage catalog REST API, wire-compatible with `@backstage/catalog-client`.
//!
//! Entities are stored already serialized (`entity.final`), so full-entity answers are assembled from
//! those strings without parsing them again; only `fields` projections parse.

mod entities;
mod facets;
mod locations;
mod query;
mod validate;
mod webhooks;

use axum::Router;
use axum::routing::{get, post};
use serde_json::Value;

use crate::catalog::model::refs::EntityRef;
use crate::error::AppError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/entities", get(entities::list_entities))
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
        .route("/entities/by-refs", post(entities::get_entities_by_refs))
        .route(
            "/entities/by-query",
            get(query::query_entities).post(query::query_entities_by_predicate),
        )
        .route(
            "/entity-facets",
            get(facets::get_entity_facets).post(facets::query_entity_facets),
        )
        .route("/refresh", post(entities::refresh_entity))
        .route("/webhooks/git", post(webhooks::git_push))
        .route("/validate-entity", post(validate::validate_entity))
        .route("/analyze-location", post(locations::analyze_location))
        .route(
            "/locations",
            get(locations::list_locations).post(locations::create_location),
        )
        .route(
            "/locations/{id}",
            get(locations::get_location).delete(locations::delete_location),
        )
        .route(
            "/locations/by-entity/{kind}/{namespace}/{name}",
            get(locations::get_location_by_entity),
        )
}

/// Atrium's own operational endpoints under `/api/atrium`.
pub fn atrium_router() -> Router<AppState> {
    Router::new().route("/processing", get(entities::processing_status))
}

/// The entity key of `{kind}/{namespace}/{name}` path parts (case-insensitive).
fn key_of(kind: &str, namespace: &str, name: &str) -> String {
    EntityRef::new(kind, namespace, name).key()
}

/// Applies a `fields` projection to serialized entities.
fn project_all(bodies: Vec<String>, fields: &[String]) -> Result<Vec<String>, AppError> {
    if fields.is_empty() {
        return Ok(bodies);
    }
    bodies
        .into_iter()
        .map(|body| {
            let value: Value = serde_json::from_str(&body).map_err(|e| {
                AppError::Internal(anyhow::anyhow!("stored entity is not JSON: {e}"))
            })?;
            Ok(project_fields(&value, fields).to_string())
        })
        .collect()
}

/// Keeps only `fields` (dotted paths) of an entity, Backstage's `fields` parameter.
fn project_fields(entity: &Value, fields: &[String]) -> Value {
    let mut out = Value::Object(serde_json::Map::new());
    for field in fields {
        let parts: Vec<&str> = field.split('.').collect();
        let mut source = entity;
        let mut found = true;
        for part in &parts {
            match source.get(part) {
                Some(next) => source = next,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let mut target = &mut out;
        for (i, part) in parts.iter().enumerate() {
            let Value::Object(map) = target else { break };
            if i + 1 == parts.len() {
                map.insert((*part).to_owned(), source.clone());
                break;
            }
            target = map
                .entry((*part).to_owned())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
        }
    }
    out
}
