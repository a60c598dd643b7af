//! Locations: register (with `dryRun`), list, get, delete, find by entity, analyze.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{check_query, key_of};
use crate::auth::Caller;
use crate::catalog::db::{self, locations};
use crate::catalog::filter::{Filter, parse_predicate};
use crate::catalog::model::location::is_generated_location;
use crate::catalog::model::refs::EntityRef;
use crate::catalog::source::{Target, generated_location_key};
use crate::error::{AppError, Result};
use crate::http::{ApiJson, Path, QueryParams, created};
use crate::state::AppState;

pub async fn list_locations(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Response> {
    check_query(&params, &[])?;
    let rows = locations::list_locations(&state.db).await?;
    let items: Vec<Value> = rows.into_iter().map(|row| json!({ "data": row })).collect();
    Ok(axum::Json(items).into_response())
}

/// `POST /locations/by-query`: body `{query?, limit?, cursor?}`.
#[derive(Deserialize)]
pub struct LocationQueryRequest {
    #[serde(default)]
    query: Option<Value>,
    #[serde(default)]
    limit: Option<Value>,
    #[serde(default)]
    cursor: Option<String>,
}

/// What a page of `POST /locations/by-query` continues from: Backstage's cursor, base64 JSON of the
/// page size, the last id and the query. A cursor's page size wins over the request's.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LocationCursor {
    limit: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<Value>,
}

/// Backstage's page size for locations when the request names none.
const DEFAULT_LOCATION_LIMIT: i64 = 1000;

/// Registered locations matching a predicate on `id`, `type`, `target` and `entityRef`
/// (case-insensitive), in id order, with the total and a cursor to the next page.
pub async fn query_locations(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<LocationQueryRequest>,
) -> Result<Response> {
    let page = match request.cursor {
        Some(raw) => decode_location_cursor(&raw)?,
        None => LocationCursor {
            limit: match &request.limit {
                None => DEFAULT_LOCATION_LIMIT,
                Some(limit) => limit
                    .as_i64()
                    .filter(|l| *l >= 1)
                    .ok_or_else(|| AppError::input("Limit must be a positive integer >= 1"))?,
            },
            after_id: None,
            query: request.query,
        },
    };
    let filter = match &page.query {
        Some(query) => Some(location_filter(query)?),
        None => None,
    };
    let mut items =
        locations::query_locations(&state.db, filter.as_ref(), page.after_id, page.limit + 1)
            .await?;
    let total = locations::count_locations(&state.db, filter.as_ref()).await?;
    let mut page_info = serde_json::Map::new();
    if items.len() as i64 > page.limit {
        items.truncate(page.limit as usize);
        let next = LocationCursor {
            after_id: items.last().map(|l| l.id),
            ..page
        };
        let json = serde_json::to_vec(&next).map_err(|e| AppError::Internal(e.into()))?;
        page_info.insert(
            "nextCursor".into(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(json)),
        );
    }
    Ok(
        axum::Json(json!({ "items": items, "totalItems": total, "pageInfo": page_info }))
            .into_response(),
    )
}

fn decode_location_cursor(raw: &str) -> Result<LocationCursor> {
    if raw.is_empty() {
        return Err(AppError::input("Cursor cannot be empty"));
    }
    base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .ok()
        .and_then(|bytes| serde_json::from_slice::<LocationCursor>(&bytes).ok())
        .filter(|cursor| cursor.limit >= 1)
        .ok_or_else(|| AppError::input(format!("Malformed cursor '{raw}'")))
}

/// A location predicate: the entity predicate language over the four location fields.
fn location_filter(query: &Value) -> Result<Filter> {
    let filter = parse_predicate(query, "query")?;
    if let Some(key) = unknown_key(&filter) {
        return Err(AppError::input(format!(
            "Invalid filter predicate, expected key to be 'id', 'type', 'target', or 'entityRef', got '{key}'"
        )));
    }
    Ok(filter)
}

fn unknown_key(filter: &Filter) -> Option<&str> {
    match filter {
        Filter::All(items) | Filter::Any(items) => items.iter().find_map(unknown_key),
        Filter::Not(inner) => unknown_key(inner),
        Filter::Exists(key) | Filter::In(key, _) | Filter::HasPrefix(key, _) => {
            (!locations::LOCATION_FILTER_KEYS.contains(&key.as_str())).then_some(key.as_str())
        }
    }
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
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    state
        .catalog
        .delete_location(&caller, parse_id(&id)?)
        .await?;
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

/// A location in a request body. As Backstage's schema says: `type`, `target`, optionally
/// `presence`, and nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationInput {
    #[serde(rename = "type")]
    location_type: String,
    target: String,
    /// Accepted for compatibility; a registered location is required to exist either way.
    #[serde(default, rename = "presence")]
    _presence: Option<Presence>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Presence {
    Required,
    Optional,
}

/// `POST /locations[?dryRun=true]`. A dry run reads and processes the target (and the files it points at)
/// and answers with the entities that would be added, storing nothing (and auditing nothing).
pub async fn create_location(
    State(state): State<AppState>,
    caller: Caller,
    params: QueryParams,
    ApiJson(input): ApiJson<LocationInput>,
) -> Result<Response> {
    check_query(&params, &["dryRun", "onConflict"])?;
    // Read as Backstage reads it (the `yn` package): yes/y/true/1/on, in any case.
    let dry_run = params.one("dryRun").is_some_and(|v| {
        matches!(
            v.trim().to_lowercase().as_str(),
            "y" | "yes" | "true" | "1" | "on"
        )
    });
    if !dry_run {
        let row = state
            .catalog
            .register_location(&caller, &input.location_type, &input.target)
            .await?;
        return Ok(created(json!({ "location": row, "entities": [] })));
    }
    let target = state
        .catalog
        .resolve_for_api(&input.location_type, &input.target)?;
    let existing =
        locations::find_location_id(&state.db, target.location_type(), &target.target_string())
            .await?;
    let entities = would_add(&state, &target).await?;
    // Nothing is stored, so the location has no id of its own: Backstage answers its ref instead.
    let location = json!({
        "id": target.location_ref(),
        "type": target.location_type(),
        "target": target.target_string(),
        "entityRef": generated_location_key(&target),
    });
    Ok(created(
        json!({ "location": location, "entities": entities, "exists": existing.is_some() }),
    ))
}

/// The entities a target would bring in; a tree in which anything fails is a 400 naming every problem.
async fn would_add(state: &AppState, target: &Target) -> Result<Vec<Value>> {
    let (entities, errors) = state.catalog.dry_run(target).await;
    if errors.is_empty() {
        Ok(entities)
    } else {
        Err(AppError::input(errors.join(", ")))
    }
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
    let mut existing = Vec::new();
    for entity in would_add(&state, &target).await? {
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
