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
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value};

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

/// The `fields` of a request (repeated, comma-separated, or a JSON list): trimmed, without empties or
/// repeats. Array indexing (`spec.ports[0]`) is refused, as in Backstage.
fn parse_fields<'a>(raw: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, AppError> {
    let mut fields: Vec<String> = Vec::new();
    for field in raw.into_iter().flat_map(|v| v.split(',')).map(str::trim) {
        if field.contains('[') {
            return Err(AppError::input(format!(
                "Invalid field \"{field}\", array type fields are not supported"
            )));
        }
        if !field.is_empty() && !fields.iter().any(|f| f == field) {
            fields.push(field.to_owned());
        }
    }
    Ok(fields)
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

/// Keeps only `fields` (dotted paths) of an entity, Backstage's `fields` parameter. Keys may contain
/// dots themselves: a part that is not a key is joined with the next one, so
/// `metadata.annotations.backstage.io/managed-by-location` finds that annotation.
fn project_fields(entity: &Value, fields: &[String]) -> Value {
    let mut out = Value::Object(Map::new());
    for field in fields {
        if let Some((path, value)) = find_path(entity, field) {
            set_path(&mut out, &path, value.clone());
        }
    }
    out
}

/// The keys leading to `field` in `entity`, and the value there.
fn find_path<'a>(entity: &'a Value, field: &str) -> Option<(Vec<String>, &'a Value)> {
    let parts: Vec<&str> = field.split('.').collect();
    let mut path = Vec::new();
    let mut current = entity;
    // A part that was not a key, waiting to be joined with the next part.
    let mut pending: Option<String> = None;
    for (i, part) in parts.iter().enumerate() {
        let key = match pending.take() {
            Some(before) => format!("{before}.{part}"),
            None => (*part).to_owned(),
        };
        match child(current, &key) {
            Some(next) => {
                current = next;
                path.push(key);
            }
            None if i + 1 < parts.len() => pending = Some(key),
            None => return None,
        }
    }
    Some((path, current))
}

fn child<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(key),
        Value::Array(items) => array_index(key).and_then(|i| items.get(i)),
        _ => None,
    }
}

/// `0`, `1`, ... written canonically (no sign, no leading zero), as JavaScript reads array keys.
fn array_index(key: &str) -> Option<usize> {
    let canonical =
        key == "0" || (!key.starts_with('0') && key.bytes().all(|b| b.is_ascii_digit()));
    canonical.then(|| key.parse().ok()).flatten()
}

/// Puts `value` at `path` in `out`, making the objects (or, before an index, arrays) on the way.
fn set_path(out: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut target = out;
    for (i, key) in parents.iter().enumerate() {
        let next_is_index = array_index(&path[i + 1]).is_some();
        let slot = slot(target, key);
        if !slot.is_object() && !slot.is_array() {
            *slot = if next_is_index {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            };
        }
        target = slot;
    }
    *slot(target, last) = value;
}

/// The place for `key` in an object or array (arrays grow with nulls, as JavaScript's holes print).
fn slot<'a>(container: &'a mut Value, key: &str) -> &'a mut Value {
    let index = array_index(key);
    let fits = container.is_object() || (container.is_array() && index.is_some());
    if !fits {
        *container = Value::Object(Map::new());
    }
    match (container, index) {
        (Value::Array(items), Some(index)) => {
            if items.len() <= index {
                items.resize(index + 1, Value::Null);
            }
            &mut items[index]
        }
        (Value::Object(map), _) => map.entry(key.to_owned()).or_insert(Value::Null),
        // Made an array or object above.
        (other, _) => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn project(entity: &Value, fields: &[&str]) -> Value {
        let fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        project_fields(entity, &fields)
    }

    #[test]
    fn projection_keeps_subtrees_and_leaves_out_missing_paths() {
        let entity = json!({"kind": "User", "metadata": {"name": "alice", "tags": ["a", "b"]},
            "spec": {"profile": {"email": "a@x.org"}}});
        assert_eq!(
            project(
                &entity,
                &["metadata.name", "spec", "metadata.nope", "status"]
            ),
            json!({"metadata": {"name": "alice"}, "spec": {"profile": {"email": "a@x.org"}}})
        );
        assert_eq!(
            project(&entity, &["metadata.tags.1"]),
            json!({"metadata": {"tags": [null, "b"]}})
        );
    }

    #[test]
    fn projection_finds_keys_with_dots_and_slashes() {
        let entity = json!({"metadata": {"annotations": {
            "backstage.io/managed-by-location": "file:/x.yaml",
            "backstage.io/orphan": "true"}}});
        assert_eq!(
            project(
                &entity,
                &["metadata.annotations.backstage.io/managed-by-location"]
            ),
            json!({"metadata": {"annotations": {"backstage.io/managed-by-location": "file:/x.yaml"}}})
        );
        assert_eq!(
            project(&entity, &["metadata.annotations.backstage.io/nope"]),
            json!({})
        );
    }

    #[test]
    fn fields_are_split_trimmed_and_deduplicated() {
        assert_eq!(
            parse_fields(["kind, metadata.name", "kind", ","]).expect("fields"),
            ["kind", "metadata.name"]
        );
        assert!(parse_fields(["spec.ports[0]"]).is_err());
    }
}
