//! `POST /validate-entity`: checks an entity the way ingestion would, without storing anything.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::catalog::model::validate::validate_entity_from_file;
use crate::error::{AppError, OwnErrorBody, Result};
use crate::http::ApiJson;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ValidateRequest {
    entity: Option<Value>,
    location: Option<String>,
}

/// 200 with an empty body when valid; 400 `{errors: [{name, message}]}` listing every problem.
pub async fn validate_entity(
    State(_state): State<AppState>,
    ApiJson(body): ApiJson<ValidateRequest>,
) -> Result<Response> {
    let Some(entity) = body.entity else {
        return Err(AppError::input(
            "Malformed request body: missing field `entity`",
        ));
    };
    if body.location.as_deref().is_none_or(str::is_empty) {
        return Err(AppError::input(
            "Malformed request body: missing field `location`",
        ));
    }
    let problems = validate_entity_from_file(&entity);
    if problems.is_empty() {
        return Ok(StatusCode::OK.into_response());
    }
    let errors: Vec<Value> = problems
        .iter()
        .map(|p| json!({ "name": "InputError", "message": format!("{}: {}", p.field, p.message), "field": p.field }))
        .collect();
    // Backstage's own shape for this endpoint, which its clients read; the error renderer leaves it.
    let mut response = (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "errors": errors })),
    )
        .into_response();
    response.extensions_mut().insert(OwnErrorBody);
    Ok(response)
}
