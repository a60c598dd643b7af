//! `GET`/`POST /entities/by-query`: filtered, ordered, cursor-paginated entity pages with a total count.
//!
//! Pages are keyset-paginated on (sort value, uid), so page 500 costs what page 1 costs. The cursor is
//! base64 JSON holding the whole query (filter, order, text search), the keyset position and the total
//! counted on the first page; cursors of predicate queries carry a `query` key, which is how
//! `@backstage/catalog-client` knows to send the next page with `POST`.

use axum::extract::State;
use axum::response::Response;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::check_query;
use super::fields::{parse_fields, project_all};
use crate::auth::Caller;
use crate::catalog::access;
use crate::catalog::db::{self, EntityQuery, FullText, Keyset, OrderField};
use crate::catalog::filter::{Filter, parse_filter_params, parse_predicate};
use crate::error::{AppError, Result};
use crate::http::{ApiJson, QueryParams, RawJson, find_nul, json_array};
use crate::state::AppState;

/// Backstage's page size when the request names none, also for a page reached through a cursor (the
/// page size is not part of the cursor).
const DEFAULT_LIMIT: i64 = 200;

/// Everything needed to fetch the next or previous page.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filter: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order_field: Option<OrderField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    full_text_filter: Option<FullText>,
    keyset: Keyset,
    total_items: i64,
}

impl Cursor {
    fn encode(&self) -> Result<String> {
        let json = serde_json::to_vec(self).map_err(|e| AppError::Internal(e.into()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(json))
    }

    fn decode(raw: &str) -> Result<Self> {
        let value: Value = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| AppError::input(format!("Malformed cursor '{raw}'")))?;
        // A cursor is client text like any other parameter: its strings reach SQL.
        if let Some(at) = find_nul(&value) {
            return Err(AppError::input(format!(
                "Malformed cursor: {at} contains a NUL character"
            )));
        }
        serde_json::from_value(value)
            .map_err(|_| AppError::input(format!("Malformed cursor '{raw}'")))
    }
}

/// A parsed by-query request, from either the query string or the JSON body.
struct PageRequest {
    /// Raw filter strings (GET) — kept to rebuild the cursor.
    filter_strings: Option<Vec<String>>,
    /// Predicate (POST) — kept to rebuild the cursor.
    predicate: Option<Value>,
    filter: Option<Filter>,
    order: Option<OrderField>,
    full_text: Option<FullText>,
    keyset: Option<Keyset>,
    offset: Option<i64>,
    limit: i64,
    fields: Vec<String>,
    known_total: Option<i64>,
    /// `totalItems: exclude`: the count is skipped and answered as 0.
    skip_total: bool,
}

pub async fn query_entities(
    State(state): State<AppState>,
    caller: Caller,
    params: QueryParams,
) -> Result<Response> {
    check_query(
        &params,
        &[
            "fields",
            "limit",
            "offset",
            "orderField",
            "cursor",
            "filter",
            "totalItems",
            "fullTextFilterTerm",
            "fullTextFilterFields",
        ],
    )?;
    let limit = params.number("limit")?.unwrap_or(DEFAULT_LIMIT);
    let fields = parse_fields(params.all("fields").iter().map(String::as_str))?;
    let request = match params.one("cursor") {
        // A cursor carries the query; other query parameters are ignored, as in Backstage.
        Some(raw) => from_cursor(Cursor::decode(&raw)?, limit, fields)?,
        None => {
            let filter_strings = params.all("filter");
            let order_fields = params.all("orderField");
            let order = parse_order_field(&order_fields)?;
            let full_text = params
                .one("fullTextFilterTerm")
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .map(|term| FullText {
                    term,
                    fields: params.list("fullTextFilterFields"),
                });
            PageRequest {
                filter: parse_filter_params(&filter_strings)?,
                filter_strings: Some(filter_strings),
                predicate: None,
                order,
                full_text,
                keyset: None,
                offset: params.number("offset")?,
                limit,
                fields,
                known_total: None,
                skip_total: skip_total(params.one("totalItems").as_deref())?,
            }
        }
    };
    run_page(&state, &caller, request).await
}

/// `totalItems`: `include` (the default) or `exclude`.
fn skip_total(raw: Option<&str>) -> Result<bool> {
    match raw {
        None | Some("include") => Ok(false),
        Some("exclude") => Ok(true),
        Some(other) => Err(AppError::input(format!(
            "Invalid totalItems \"{other}\", expected one of: include, exclude"
        ))),
    }
}

/// The body of `POST /entities/by-query`. Unknown fields are ignored, as Backstage's schema allows
/// them: a newer client's additions do not break the request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PredicateRequest {
    #[serde(default)]
    query: Option<Value>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    order_by: Option<Vec<OrderBy>>,
    #[serde(default)]
    full_text_filter: Option<FullTextRequest>,
    #[serde(default)]
    fields: Option<Vec<String>>,
    #[serde(default)]
    total_items: Option<String>,
}

#[derive(Deserialize)]
pub struct OrderBy {
    field: String,
    order: String,
}

#[derive(Deserialize)]
pub struct FullTextRequest {
    #[serde(default)]
    term: String,
    #[serde(default)]
    fields: Option<Vec<String>>,
}

pub async fn query_entities_by_predicate(
    State(state): State<AppState>,
    caller: Caller,
    params: QueryParams,
    ApiJson(body): ApiJson<PredicateRequest>,
) -> Result<Response> {
    check_query(&params, &[])?;
    let limit = match body.limit {
        Some(l) if l < 0 => return Err(AppError::input("limit must be a non-negative integer")),
        Some(l) => l,
        None => DEFAULT_LIMIT,
    };
    let fields = parse_fields(body.fields.iter().flatten().map(String::as_str))?;
    let request = match body.cursor {
        Some(raw) => from_cursor(Cursor::decode(&raw)?, limit, fields)?,
        None => {
            let predicate = body
                .query
                .unwrap_or_else(|| serde_json::json!({"$all": []}));
            let filter = parse_predicate(&predicate, "query")?;
            let order_strings: Vec<String> = body
                .order_by
                .unwrap_or_default()
                .into_iter()
                .map(|o| format!("{},{}", o.field, o.order))
                .collect();
            let full_text = body
                .full_text_filter
                .filter(|f| !f.term.trim().is_empty())
                .map(|f| FullText {
                    term: f.term.trim().to_owned(),
                    fields: f.fields.unwrap_or_default(),
                });
            PageRequest {
                filter_strings: None,
                predicate: Some(predicate),
                filter: Some(filter),
                order: parse_order_field(&order_strings)?,
                full_text,
                keyset: None,
                offset: match body.offset {
                    Some(o) if o < 0 => {
                        return Err(AppError::input("offset must be a non-negative integer"));
                    }
                    other => other,
                },
                limit,
                fields,
                known_total: None,
                skip_total: skip_total(body.total_items.as_deref())?,
            }
        }
    };
    run_page(&state, &caller, request).await
}

fn from_cursor(cursor: Cursor, limit: i64, fields: Vec<String>) -> Result<PageRequest> {
    let filter = match (&cursor.query, &cursor.filter) {
        (Some(query), _) => Some(parse_predicate(query, "cursor.query")?),
        (None, Some(strings)) => parse_filter_params(strings)?,
        (None, None) => None,
    };
    Ok(PageRequest {
        filter_strings: cursor.filter,
        predicate: cursor.query,
        filter,
        order: cursor.order_field,
        full_text: cursor.full_text_filter,
        keyset: Some(cursor.keyset),
        offset: None,
        limit,
        fields,
        known_total: Some(cursor.total_items),
        skip_total: false,
    })
}

/// `metadata.name,asc`. Only the first counts (Backstage ignores the others): the keyset cursor orders
/// by it and then by uid.
fn parse_order_field(raw: &[String]) -> Result<Option<OrderField>> {
    match raw {
        [] => Ok(None),
        [one, ..] => {
            let (field, direction) = one.split_once(',').unwrap_or((one.as_str(), "asc"));
            let descending = match direction.trim().to_lowercase().as_str() {
                "asc" => false,
                "desc" => true,
                _ => {
                    return Err(AppError::input(format!(
                        "Invalid orderField '{one}', expected <field>,asc or <field>,desc"
                    )));
                }
            };
            if field.trim().is_empty() {
                return Err(AppError::input(format!(
                    "Invalid orderField '{one}', the field is missing"
                )));
            }
            Ok(Some(OrderField {
                field: field.trim().to_lowercase(),
                descending,
            }))
        }
    }
}

async fn run_page(state: &AppState, caller: &Caller, mut request: PageRequest) -> Result<Response> {
    // Without fields, text search looks at the field the page is ordered by (Backstage's behaviour),
    // and at Atrium's default text fields when there is no order either.
    if let (Some(text), Some(order)) = (request.full_text.as_mut(), request.order.as_ref())
        && text.fields.is_empty()
    {
        text.fields = vec![order.field.clone()];
    }
    let order: Vec<OrderField> = request.order.iter().cloned().collect();
    // What the caller may see narrows every page and the total; the cursor keeps the asked filter.
    let filter = access::restrict(
        request.filter.as_ref(),
        access::visible(&state.config.permissions, caller).as_ref(),
    );
    let query = EntityQuery {
        filter: filter.as_ref(),
        full_text: request.full_text.as_ref(),
        order: &order,
        keyset: request.keyset.as_ref(),
        offset: request.offset,
        limit: Some(request.limit + 1),
        // Backstage walks the search rows of the order field: entities without it are not in the
        // pages, nor in the count.
        require_order_value: true,
        listing: false,
    };
    let total = match request.known_total {
        Some(total) => total,
        None if request.skip_total => 0,
        None => state.catalog.count_entities(&query).await?,
    };
    let mut rows = state.catalog.query_page(&query).await?;
    let more = rows.len() as i64 > request.limit;
    rows.truncate(request.limit as usize);
    let backwards = request.keyset.as_ref().is_some_and(|k| k.backwards);
    if backwards {
        rows.reverse();
    }
    let make_cursor = |row: &db::PageRow, backwards: bool| {
        Cursor {
            filter: request.filter_strings.clone(),
            query: request.predicate.clone(),
            order_field: request.order.clone(),
            full_text_filter: request.full_text.clone(),
            keyset: Keyset {
                sort_value: row.sort_value.clone(),
                uid: row.id,
                backwards,
            },
            total_items: total,
        }
        .encode()
    };
    // Going forward, "more" means a next page; going backwards it means a previous one.
    let has_next = if backwards { true } else { more };
    let has_prev = if backwards {
        more
    } else {
        request.keyset.is_some() || request.offset.unwrap_or(0) > 0
    };
    let mut page_info = serde_json::Map::new();
    if let (true, Some(last)) = (has_next, rows.last()) {
        page_info.insert(
            "nextCursor".into(),
            Value::String(make_cursor(last, false)?),
        );
    }
    if let (true, Some(first)) = (has_prev, rows.first()) {
        page_info.insert(
            "prevCursor".into(),
            Value::String(make_cursor(first, true)?),
        );
    }
    let bodies = project_all(
        rows.into_iter().map(|row| row.body).collect(),
        &request.fields,
    )?;
    let body = format!(
        "{{\"items\":{},\"totalItems\":{},\"pageInfo\":{}}}",
        json_array(&bodies),
        total,
        Value::Object(page_info)
    );
    Ok(axum::response::IntoResponse::into_response(RawJson(body)))
}
