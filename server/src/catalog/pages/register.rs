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

use super::view::{EntitySummary, ref_href};
use crate::auth::Caller;
use crate::catalog::model::location::is_generated_location;
use crate::catalog::model::refs::{EntityRef, RefDefaults};
use crate::error::AppError;
use crate::state::AppState;
use crate::ui::csrf::check_same_origin;

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
    caller: Caller,
    headers: HeaderMap,
    Form(form): Form<RegisterForm>,
) -> Result<Response, AppError> {
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
        .filter(|e| !is_generated_location(e))
        .map(EntitySummary::from_entity)
        .collect();
    if form.action == "import" {
        match state
            .catalog
            .register_location(&caller, location_type, target)
            .await
        {
            Ok(row) => {
                page.imported = true;
                page.location_href = EntityRef::parse(&row.entity_ref, RefDefaults::default())
                    .map(|r| ref_href(&r))
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
/// as 200: it is the page to correct and send again.
fn form_error(mut page: RegisterPage, error: AppError) -> Response {
    if error.status().is_server_error() {
        return error.into_response();
    }
    page.error = error.public_message();
    page.into_response()
}
