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
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::AppError;

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

/// A JSON body already serialized.
pub(crate) struct RawJson(pub String);

impl IntoResponse for RawJson {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

pub(crate) fn created(body: impl serde::Serialize) -> Response {
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// Query parameters as a list, since Backstage repeats keys (`filter=a&filter=b`) and also accepts
/// comma-separated lists for some (`fields=a,b`).
#[derive(Debug, Default)]
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// All values, each split at commas (`fields=a,b&fields=c`).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.all(key)
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn one(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// A non-negative integer parameter.
    pub fn number(&self, key: &str) -> Result<Option<i64>, AppError> {
        match self.one(key) {
            None => Ok(None),
            Some(raw) => raw
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(Some)
                .ok_or_else(|| {
                    AppError::input(format!(
                        "Invalid {key} '{raw}', expected a non-negative integer"
                    ))
                }),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(Self(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

/// `Json<T>` whose rejections are `InputError`s saying what is wrong with the body.
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(AppError::TooLarge(
                    "Request body is larger than the limit (server.body_limit_bytes)".to_owned(),
                ))
            }
            Err(rejection) => Err(AppError::input(format!(
                "Malformed request body: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// `kind:namespace/name` key from path parts, case-insensitive.
pub(crate) fn key_of(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}:{namespace}/{name}").to_lowercase()
}

/// Applies a `fields` projection to serialized entities.
pub(crate) fn project_all(bodies: Vec<String>, fields: &[String]) -> Result<Vec<String>, AppError> {
    if fields.is_empty() {
        return Ok(bodies);
    }
    bodies
        .into_iter()
        .map(|body| {
            let value: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
                AppError::Internal(anyhow::anyhow!("stored entity is not JSON: {e}"))
            })?;
            Ok(super::db::project_fields(&value, fields).to_string())
        })
        .collect()
}
