//! Entity reads and deletes: list, by uid, by name, by refs, ancestry; refresh requests.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::fields::{parse_fields, project_all};
use super::{check_query, key_of};
use crate::auth::Caller;
use crate::catalog::access;
use crate::catalog::db::{self, EntityQuery, OrderField};
use crate::catalog::filter::{self, parse_filter_params};
use crate::catalog::list_answers::ListKey;
use crate::catalog::model::refs::{EntityRef, RefDefaults};
use crate::error::{AppError, Result};
use crate::http::{ApiJson, Path, QueryParams, RawJson, json_array};
use crate::state::AppState;

/// `GET /entities`: filter, fields, order (`asc:metadata.name`), and the page parameters limit,
/// offset and after.
///
/// Backstage answers this in two ways, and so does Atrium. Paginated (any of limit, offset, after), it
/// orders by every order field, entities lacking one after those that have it, and by entity ref when
/// no order is given; a `Link: </entities?...&after=...>; rel="next"` header (relative to the catalog
/// router, as Backstage writes it) leads to the next page. Unpaginated, only the first order field
/// counts, entities lacking it are left out, and without order the entities come in uid order.
pub async fn list_entities(
    State(state): State<AppState>,
    caller: Caller,
    params: QueryParams,
) -> Result<Response> {
    check_query(
        &params,
        &["fields", "limit", "filter", "offset", "after", "order"],
    )?;
    let filter = access::restrict(
        parse_filter_params(&params.all("filter"))?.as_ref(),
        access::visible(&state.config.permissions, &caller).as_ref(),
    );
    let fields = parse_fields(params.all("fields").iter().map(String::as_str))?;
    let order = params
        .all("order")
        .iter()
        .map(|raw| parse_order(raw))
        .collect::<Result<Vec<_>>>()?;
    let Some(page) = Pagination::from_params(&params)? else {
        let order = &order[..order.len().min(1)];
        // Read before the list, so a kept answer holds every change a request reading the same
        // generation could have seen (see `list_answers`).
        let generation = state.catalog.generation.current().await?;
        let key = ListKey {
            filter: filter.clone(),
            order: order.to_vec(),
            fields: params.all("fields"),
        };
        if let Some(body) = state.catalog.lists.get(generation, &key) {
            return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
        }
        let rows = db::query_entities(
            &state.db,
            &EntityQuery {
                filter: filter.as_ref(),
                order,
                require_order_value: true,
                ..EntityQuery::default()
            },
        )
        .await?;
        let bodies = project_all(rows.into_iter().map(|row| row.body).collect(), &fields)?;
        let body = json_array(&bodies);
        state.catalog.lists.keep(generation, key, body.as_bytes());
        return Ok(RawJson(body).into_response());
    };
    // Ask for one more than the limit to know whether there is a next page.
    let rows = db::query_entities(
        &state.db,
        &EntityQuery {
            filter: filter.as_ref(),
            order: &order,
            offset: page.offset,
            limit: page.limit.map(|l| l + 1),
            listing: true,
            ..EntityQuery::default()
        },
    )
    .await?;
    let mut bodies: Vec<String> = rows.into_iter().map(|row| row.body).collect();
    let mut headers = HeaderMap::new();
    if let Some(limit) = page.limit
        && bodies.len() as i64 > limit
    {
        bodies.truncate(limit as usize);
        let next = Pagination {
            limit: Some(limit),
            offset: Some(page.offset.unwrap_or(0) + limit),
        };
        if let Ok(value) = HeaderValue::from_str(&next_link(&params, &next.encode())) {
            headers.insert(header::LINK, value);
        }
    }
    let bodies = project_all(bodies, &fields)?;
    Ok((headers, RawJson(json_array(&bodies))).into_response())
}

/// The `Link` to the next page: the same parameters without `offset`, `after` set to the next cursor
/// (in place of the old one, else last), as Backstage builds it from the URL the catalog router saw.
fn next_link(params: &QueryParams, after: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let mut placed = false;
    for (key, value) in params.pairs() {
        match key.as_str() {
            "offset" => {}
            "after" if placed => {}
            "after" => {
                query.append_pair(key, after);
                placed = true;
            }
            _ => {
                query.append_pair(key, value);
            }
        }
    }
    if !placed {
        query.append_pair("after", after);
    }
    format!("</entities?{}>; rel=\"next\"", query.finish())
}

/// `asc:metadata.name` / `desc:kind`: Backstage wants the direction spelled out.
fn parse_order(raw: &str) -> Result<OrderField> {
    let invalid = || {
        AppError::input(format!(
            "Invalid order parameter \"{raw}\", expected \"<asc or desc>:<field name>\""
        ))
    };
    let (direction, field) = raw.split_once(':').ok_or_else(invalid)?;
    let descending = match direction {
        "asc" => false,
        "desc" => true,
        _ => return Err(invalid()),
    };
    if field.is_empty() {
        return Err(invalid());
    }
    Ok(OrderField {
        field: field.to_lowercase(),
        descending,
    })
}

/// The page of a paginated `GET /entities`. The `after` cursor is Backstage's: base64 of
/// `{"limit": n, "offset": m}`, whose values win over the request's.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Pagination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset: Option<i64>,
}

impl Pagination {
    /// `None` when the request has none of limit, offset and after.
    fn from_params(params: &QueryParams) -> Result<Option<Self>> {
        let limit = params.number("limit")?;
        let offset = params.number("offset")?;
        let after = params.one("after");
        if limit.is_none() && offset.is_none() && after.is_none() {
            return Ok(None);
        }
        if limit == Some(0) {
            return Err(AppError::input("Invalid limit, must be greater than zero"));
        }
        let mut page = Self { limit, offset };
        if let Some(after) = after {
            let cursor = Self::decode(&after)?;
            page.limit = cursor.limit.or(page.limit);
            page.offset = cursor.offset.or(page.offset);
        }
        Ok(Some(page))
    }

    fn encode(&self) -> String {
        use base64::Engine;
        let json = serde_json::to_string(self).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    fn decode(raw: &str) -> Result<Self> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Self>(&bytes).ok())
            .filter(|page| page.limit.is_none_or(|l| l > 0) && page.offset.is_none_or(|o| o >= 0))
            .ok_or_else(|| AppError::input("Malformed after cursor, could not be parsed"))
    }
}

pub async fn get_entity_by_uid(
    State(state): State<AppState>,
    caller: Caller,
    Path(uid): Path<String>,
) -> Result<RawJson> {
    let not_found = || AppError::not_found(format!("No entity with uid {uid}"));
    let parsed = Uuid::parse_str(&uid).map_err(|_| not_found())?;
    db::entities::get_final_by_uid(&state.db, parsed)
        .await?
        .filter(|body| access::may_read_body(&state.config.permissions, &caller, body))
        .map(RawJson)
        .ok_or_else(not_found)
}

/// Deletes an entity (it comes back at its location's next refresh if still there). Deleting a uid that
/// does not exist succeeds, as in Backstage: the outcome the caller wanted holds.
pub async fn delete_entity_by_uid(
    State(state): State<AppState>,
    caller: Caller,
    Path(uid): Path<String>,
) -> Result<StatusCode> {
    let Ok(parsed) = Uuid::parse_str(&uid) else {
        return Ok(StatusCode::NO_CONTENT);
    };
    state.catalog.delete_entity(&caller, parsed).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_entity_by_name(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Response> {
    let key = key_of(&kind, &namespace, &name);
    // Read before the entity, so a kept body holds every change a request reading the same
    // generation could have seen (see `kept_bodies`).
    let generation = state.catalog.generation.current().await?;
    let body = match state.catalog.entities.get(generation, &key) {
        Some(body) => Some(body),
        None => {
            let body = db::entities::get_final_by_key(&state.db, &key)
                .await?
                .map(Bytes::from);
            if let Some(body) = &body {
                state
                    .catalog
                    .entities
                    .keep(generation, key.clone(), body.clone());
            }
            body
        }
    };
    body.filter(|body| {
        std::str::from_utf8(body)
            .is_ok_and(|body| access::may_read_body(&state.config.permissions, &caller, body))
    })
    .map(|body| ([(header::CONTENT_TYPE, "application/json")], body).into_response())
    .ok_or_else(|| AppError::not_found(format!("No entity named '{key}' found")))
}

/// `GET .../ancestry`: the chain of Location entities that led to this entity, root last.
pub async fn get_entity_ancestry(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Response> {
    let start = key_of(&kind, &namespace, &name);
    let mut items = Vec::new();
    let mut current = start.clone();
    // Trees are shallow; the bound only protects against a cycle in corrupt data.
    for _ in 0..64 {
        let Some(db::entities::AncestryRow {
            parent_key: parent,
            body,
        }) = db::entities::get_ancestry_step(&state.db, &current).await?
        else {
            break;
        };
        let entity: Value =
            serde_json::from_str(&body).map_err(|e| AppError::Internal(e.into()))?;
        // An entity the caller may not see ends the chain; the one asked about is then not found.
        if !access::may_read(&state.config.permissions, &caller, &entity) {
            break;
        }
        // Keys are lower-cased refs, which is also how Backstage prints parent refs.
        let parent_refs: Vec<String> = parent.iter().cloned().collect();
        items.push(serde_json::json!({ "entity": entity, "parentEntityRefs": parent_refs }));
        match parent {
            Some(parent) => current = parent,
            None => break,
        }
    }
    if items.is_empty() {
        return Err(AppError::not_found(format!(
            "No entity named '{start}' found"
        )));
    }
    // Backstage names the entity asked about as the root of its ancestry answer.
    let root = items
        .first()
        .and_then(|item| EntityRef::of_entity(&item["entity"]))
        .map(|r| r.to_string())
        .unwrap_or(start);
    Ok(axum::Json(serde_json::json!({ "rootEntityRef": root, "items": items })).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ByRefsRequest {
    entity_refs: Vec<String>,
    #[serde(default)]
    fields: Option<Vec<String>>,
    #[serde(default)]
    query: Option<Value>,
}

/// `POST /entities/by-refs`: the entities in request order, `null` where a ref matches nothing (or the
/// optional filter rejects it).
pub async fn get_entities_by_refs(
    State(state): State<AppState>,
    caller: Caller,
    params: QueryParams,
    ApiJson(request): ApiJson<ByRefsRequest>,
) -> Result<Response> {
    check_query(&params, &["filter"])?;
    if request.entity_refs.len() > 10_000 {
        return Err(AppError::input("entityRefs may hold at most 10000 refs"));
    }
    let mut keys = Vec::with_capacity(request.entity_refs.len());
    for raw in &request.entity_refs {
        let parsed = EntityRef::parse(
            raw,
            RefDefaults {
                kind: None,
                namespace: "default",
            },
        )
        .map_err(|e| AppError::input(format!("Invalid entity ref '{raw}': {e}")))?;
        keys.push(parsed.key());
    }
    let filter = match &request.query {
        Some(query) => Some(filter::parse_predicate(query, "query")?),
        None => parse_filter_params(&params.all("filter"))?,
    };
    let filter = access::restrict(
        filter.as_ref(),
        access::visible(&state.config.permissions, &caller).as_ref(),
    );
    let found: HashMap<String, String> =
        db::entities::get_finals_by_keys(&state.db, &keys, filter.as_ref())
            .await?
            .into_iter()
            .map(|row| (row.entity_key, row.body))
            .collect();
    let fields = parse_fields(request.fields.iter().flatten().map(String::as_str))?;
    let mut items = Vec::with_capacity(keys.len());
    for key in &keys {
        match found.get(key) {
            Some(body) => items.push(project_all(vec![body.clone()], &fields)?.remove(0)),
            None => items.push("null".to_owned()),
        }
    }
    Ok(RawJson(format!("{{\"items\":{}}}", json_array(&items))).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    entity_ref: String,
}

/// `POST /refresh`: re-reads the location that provides the entity, as soon as a worker is free.
pub async fn refresh_entity(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<StatusCode> {
    let parsed = EntityRef::parse(
        &request.entity_ref,
        RefDefaults {
            kind: None,
            namespace: "default",
        },
    )
    .map_err(|e| AppError::input(format!("Invalid entity ref '{}': {e}", request.entity_ref)))?;
    state.catalog.refresh_entity(&caller, &parsed.key()).await?;
    Ok(StatusCode::OK)
}

/// `GET /api/atrium/processing`: how far ingestion has got (for operators and the benchmark).
pub async fn processing_status(State(state): State<AppState>) -> Result<Response> {
    Ok(axum::Json(db::processing_status(&state.db).await?).into_response())
}
