//! `GET`/`POST /entity-facets`: value counts of one or more fields over the (filtered) catalog.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::catalog::access;
use crate::catalog::filter::{Filter, parse_filter_params, parse_predicate};
use crate::error::{AppError, Result};
use crate::http::{ApiJson, QueryParams};
use crate::state::AppState;

pub async fn get_entity_facets(
    State(state): State<AppState>,
    caller: Caller,
    params: QueryParams,
) -> Result<Response> {
    super::check_query(&params, &["facet", "filter"])?;
    let facets = params.all("facet");
    let filter = parse_filter_params(&params.all("filter"))?;
    facet_response(&state, &caller, &facets, filter.as_ref()).await
}

#[derive(Deserialize)]
pub struct FacetsRequest {
    facets: Vec<String>,
    #[serde(default)]
    query: Option<Value>,
}

pub async fn query_entity_facets(
    State(state): State<AppState>,
    caller: Caller,
    params: QueryParams,
    ApiJson(body): ApiJson<FacetsRequest>,
) -> Result<Response> {
    super::check_query(&params, &[])?;
    let filter = body
        .query
        .as_ref()
        .map(|q| parse_predicate(q, "query"))
        .transpose()?;
    facet_response(&state, &caller, &body.facets, filter.as_ref()).await
}

async fn facet_response(
    state: &AppState,
    caller: &Caller,
    facets: &[String],
    filter: Option<&Filter>,
) -> Result<Response> {
    let filter = access::restrict(
        filter,
        access::visible(&state.config.permissions, caller).as_ref(),
    );
    let filter = filter.as_ref();
    if facets.is_empty() {
        return Err(AppError::input(
            "Missing facet parameter; name at least one field, e.g. facet=kind",
        ));
    }
    if facets.len() > 20 {
        return Err(AppError::input(
            "At most 20 facets may be asked for at once",
        ));
    }
    let mut out = Map::new();
    for facet in facets {
        let counts = state.catalog.facet_counts(facet, filter, None).await?;
        let values: Vec<Value> = counts
            .iter()
            .map(|row| json!({ "value": row.value, "count": row.count }))
            .collect();
        out.insert(facet.clone(), Value::Array(values));
    }
    Ok(axum::Json(json!({ "facets": out })).into_response())
}
