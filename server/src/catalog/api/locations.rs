//! Locations: register (with `dryRun`), list, get, delete, find by entity, analyze.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::key_of;
use crate::catalog::db::{self, LocationRow, locations};
use crate::catalog::model::location::is_generated_location;
use crate::catalog::model::refs::EntityRef;
use crate::catalog::source::generated_location_key;
use crate::error::{AppError, Result};
use crate::http::{ApiJson, Path, QueryParams, created};
use crate::state::AppState;

pub async fn list_locations(State(state): State<AppState>) -> Result<Response> {
    let rows = locations::list_locations(&state.db).await?;
    let items: Vec<Value> = rows.into_iter().map(|row| json!({ "data": row })).collect();
    Ok(axum::Json(items).into_response())
}

fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| AppError::not_found(format!("Found no location with ID {id}")))
}

pub async fn get_location(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response> {
    let row = locations::get_location(&state.db, parse_id(&id)?)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Found no location with ID {id}")))?;
    Ok(axum::Json(row).into_response())
}

pub async fn delete_location(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    state.catalog.delete_location(parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_location_by_entity(
    State(state): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Response> {
    let key = key_of(&kind, &namespace, &name);
    let row = locations::get_location_by_entity(&state.db, &key)
        .await?
        .ok_or_else(|| AppError::not_found(format!("No location found for entity '{key}'")))?;
    Ok(axum::Json(row).into_response())
}

#[derive(Deserialize)]
pub struct LocationInput {
    #[serde(rename = "type")]
    location_type: String,
    target: String,
}

/// `POST /locations[?dryRun=true]`. A dry run reads and processes the target (and the files it points at)
/// and answers with the entities that would be added, storing nothing.
pub async fn create_location(
    State(state): State<AppState>,
    params: QueryParams,
    ApiJson(input): ApiJson<LocationInput>,
) -> Result<Response> {
    let dry_run = params
        .one("dryRun")
        .is_some_and(|v| v == "true" || v == "1");
    if !dry_run {
        let row = state
            .catalog
            .add_location(&input.location_type, &input.target)
            .await?;
        return Ok(created(json!({ "location": row, "entities": [] })));
    }
    let target = state
        .catalog
        .resolve_for_api(&input.location_type, &input.target)?;
    let existing =
        locations::find_location_id(&state.db, target.location_type(), &target.target_string())
            .await?;
    let (entities, errors) = state.catalog.dry_run(&target).await;
    if let Some(first) = errors.first() {
        return Err(AppError::input(first.clone()));
    }
    let location = LocationRow {
        id: existing.unwrap_or_else(Uuid::new_v4),
        location_type: target.location_type().to_owned(),
        target: target.target_string(),
        entity_ref: generated_location_key(&target),
    };
    Ok(created(
        json!({ "location": location, "entities": entities, "exists": existing.is_some() }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalyzeRequest {
    location: LocationInput,
    #[serde(default)]
    catalog_filename: Option<String>,
}

/// `POST /analyze-location`: what registering a target would bring in. Atrium reads catalog files only
/// (it does not generate entities from repository contents), so `generateEntities` is empty and
/// `existingEntityFiles` lists each entity found with whether it is already in the catalog.
pub async fn analyze_location(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<AnalyzeRequest>,
) -> Result<Response> {
    let _ = &request.catalog_filename;
    let target = state
        .catalog
        .resolve_for_api(&request.location.location_type, &request.location.target)?;
    let (entities, errors) = state.catalog.dry_run(&target).await;
    if let Some(first) = errors.first() {
        return Err(AppError::input(first.clone()));
    }
    let mut existing = Vec::new();
    for entity in entities {
        // The generated Location entity is an artefact of registering, not a file's content.
        if is_generated_location(&entity) {
            continue;
        }
        let key = EntityRef::of_entity(&entity).map(|r| r.key());
        let is_registered = match &key {
            Some(key) => db::entities::get_final_by_key(&state.db, key)
                .await?
                .is_some(),
            None => false,
        };
        let location = entity["metadata"]["annotations"]["backstage.io/managed-by-location"]
            .as_str()
            .and_then(|l| l.split_once(':'))
            .map(|(t, target)| json!({ "type": t, "target": target }))
            .unwrap_or_else(
                || json!({ "type": target.location_type(), "target": target.target_string() }),
            );
        existing
            .push(json!({ "entity": entity, "isRegistered": is_registered, "location": location }));
    }
    Ok(
        axum::Json(json!({ "existingEntityFiles": existing, "generateEntities": [] }))
            .into_response(),
    )
}
