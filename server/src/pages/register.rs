//! `/catalog/register`: register a catalog file by URL or path. "Analyze" is the API's dry run (the
//! target and every file its Location entities point at are read and processed in memory, nothing is
//! stored); "Import" registers the location like `POST /api/catalog/locations`.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::view::{EntitySummary, RefParts};
use super::{PageResult, check_same_origin};
use crate::AppState;
use crate::error::AppError;

#[derive(Template, WebTemplate)]
#[template(path = "catalog/register.html")]
pub struct RegisterPage {
    location_type: String,
    target: String,
    error: String,
    /// Entities the analysis found (or the import brought in).
    entities: Vec<EntitySummary>,
    analyzed: bool,
    imported: bool,
    location_href: String,
    roots: Vec<String>,
}

impl RegisterPage {
    fn new(state: &AppState, location_type: &str, target: &str) -> Self {
        Self {
            location_type: location_type.to_owned(),
            target: target.to_owned(),
            error: String::new(),
            entities: Vec::new(),
            analyzed: false,
            imported: false,
            location_href: String::new(),
            roots: state
                .config
                .catalog
                .file_roots
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        }
    }
}

pub async fn show_register(State(state): State<AppState>) -> RegisterPage {
    RegisterPage::new(&state, "url", "")
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(rename = "type", default)]
    location_type: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    action: String,
}

pub async fn submit_register(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<RegisterForm>,
) -> PageResult<Response> {
    check_same_origin(&headers)?;
    let location_type = match form.location_type.as_str() {
        "file" => "file",
        _ => "url",
    };
    let target = form.target.trim();
    let mut page = RegisterPage::new(&state, location_type, target);
    if target.is_empty() {
        page.error = "Enter the URL or path of a catalog-info.yaml file.".to_owned();
        return Ok(page.into_response());
    }
    let resolved = match state.catalog.resolve_for_api(location_type, target) {
        Ok(resolved) => resolved,
        Err(e) => return Ok(form_error(page, e)),
    };
    let (entities, errors) = state.catalog.dry_run(&resolved).await;
    if let Some(first) = errors.first() {
        page.error = first.clone();
        return Ok(page.into_response());
    }
    page.entities = entities
        .iter()
        .filter(|e| {
            // The generated Location entity is an artefact of registering, not a file's content.
            !e["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("generated-"))
        })
        .map(EntitySummary::from_entity)
        .collect();
    if form.action == "import" {
        match state.catalog.add_location(location_type, target).await {
            Ok(row) => {
                page.imported = true;
                page.location_href = RefParts::parse(&row.entity_ref, "location")
                    .map(|r| r.href())
                    .unwrap_or_default();
            }
            Err(e) => return Ok(form_error(page, e)),
        }
    } else {
        page.analyzed = true;
    }
    Ok(page.into_response())
}

/// Errors the person can fix are shown on the form; others become the error page. The form comes back
/// as 200: it is a page to correct and send again, and `error::render_error_body` would replace any
/// non-JSON 4xx body with the API's JSON error.
fn form_error(mut page: RegisterPage, error: AppError) -> Response {
    if error.status().is_server_error() {
        return super::PageError::from(error).into_response();
    }
    page.error = error.public_message();
    page.into_response()
}
