//! `POST /validate-entity`: checks an entity the way ingestion would, without storing anything.
//!
//! Every 400 of this endpoint, a malformed request included, is Backstage's own shape for it,
//! `{errors: [{name, message}]}`, which `CatalogClient.validateEntity` reads.

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
    location: Option<Value>,
}

/// 200 with an empty body when valid; 400 `{errors: [{name, message}]}` listing every problem.
pub async fn validate_entity(
    State(_state): State<AppState>,
    body: std::result::Result<ApiJson<ValidateRequest>, AppError>,
) -> Result<Response> {
    let body = match body {
        Ok(ApiJson(body)) => body,
        // A body over the limit is the HTTP layer's business, answered as everywhere else.
        Err(error @ AppError::TooLarge(_)) => return Err(error),
        Err(error) => return Ok(errors_response(&[input_error(&error.to_string())])),
    };
    let (Some(entity), Some(location)) = (body.entity, body.location) else {
        return Ok(errors_response(&[input_error(
            "Malformed request: both `entity` and `location` are required",
        )]));
    };
    let Value::String(location) = location else {
        return Ok(errors_response(&[input_error(
            "Malformed request: `location` must be a string",
        )]));
    };
    if let Err(message) = check_location_ref(&location) {
        return Ok(errors_response(&[
            json!({ "name": "TypeError", "message": message }),
        ]));
    }
    let problems = validate_entity_from_file(&entity);
    if problems.is_empty() {
        return Ok(StatusCode::OK.into_response());
    }
    let errors: Vec<Value> = problems
        .iter()
        .map(|p| json!({ "name": "InputError", "message": format!("{}: {}", p.field, p.message), "field": p.field }))
        .collect();
    Ok(errors_response(&errors))
}

fn input_error(message: &str) -> Value {
    json!({ "name": "InputError", "message": message })
}

/// 400 with Backstage's body for this endpoint, which the error renderer leaves alone.
fn errors_response(errors: &[Value]) -> Response {
    let mut response = (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "errors": errors })),
    )
        .into_response();
    response.extensions_mut().insert(OwnErrorBody);
    response
}

/// A location ref as Backstage parses it (`<type>:<target>`, no bare `http:`, no `javascript:`
/// target), of the only type validation accepts, `url`. The error is the message of Backstage's
/// `TypeError`.
fn check_location_ref(reference: &str) -> std::result::Result<(), String> {
    let malformed = || {
        format!(
            "Unable to parse location ref '{reference}', expected '<type>:<target>', e.g. 'url:https://host/path'"
        )
    };
    let (kind, target) = reference.split_once(':').ok_or_else(malformed)?;
    let (kind, target) = (kind.trim(), target.trim());
    if kind.is_empty() || target.is_empty() {
        return Err(malformed());
    }
    if kind == "http" || kind == "https" {
        return Err(format!(
            "Invalid location ref '{reference}', please prefix it with 'url:', e.g. 'url:{reference}'"
        ));
    }
    if is_javascript_url(target) {
        return Err(format!(
            "Invalid location ref '{reference}', target is a javascript: URL"
        ));
    }
    if kind != "url" {
        return Err(format!(
            "Invalid location ref {reference}, only 'url:<target>' is supported, e.g. url:https://host/path"
        ));
    }
    Ok(())
}

/// `javascript:` after leading control characters and spaces, with tabs and newlines allowed between
/// its letters, in any case: what browsers would still run.
fn is_javascript_url(target: &str) -> bool {
    let mut letters = target
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'));
    "javascript:".chars().all(|expected| {
        letters
            .next()
            .is_some_and(|c| c.eq_ignore_ascii_case(&expected))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_url_location_refs_pass() {
        assert!(check_location_ref("url:https://example.com/x.yaml").is_ok());
        let file = check_location_ref("file:/tmp/x.yaml").expect_err("file");
        assert!(file.contains("only 'url:<target>' is supported"), "{file}");
        for bad in ["nocolon", "url:", ":x", "https://example.com/x.yaml"] {
            assert!(check_location_ref(bad).is_err(), "{bad}");
        }
        let script = check_location_ref("url: java\tscript:alert(1)").expect_err("script");
        assert!(script.contains("javascript: URL"), "{script}");
    }
}
