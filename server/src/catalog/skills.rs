//! Agent skills from the catalog: `AiResource` entities of type `skill`, served where skill clients
//! look for them — `/.well-known/skills/index.json` (`{"skills": [{name, description, files}]}`) and
//! `/.well-known/skills/{name}/SKILL.md`.
//!
//! A skill's `SKILL.md` is read from the directory its `backstage.io/source-location` annotation
//! names (`url:https://…/skill/` or `file:/…/skill/`), by the catalog's own reader: the same file
//! roots, URL allowlist, size and time limits as catalog files. Like every route but sign-in, these
//! need a caller (the demo's guest mode serves them), and list only skills the caller may see.
//! Skills are named by `metadata.name`; when two namespaces hold the same name, the first in
//! namespace order is served.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::CatalogService;
use super::db::{EntityQuery, OrderField};
use super::filter::Filter;
use super::service::parse_stored;
use crate::auth::Caller;
use crate::error::AppError;
use crate::http::Path;
use crate::state::AppState;

const MAX_SKILLS: i64 = 1000;
const SOURCE_LOCATION: &str = "backstage.io/source-location";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/skills/index.json", get(index))
        .route("/.well-known/skills/{name}/SKILL.md", get(skill_file))
}

/// The skills the caller may see, one per name, in name then namespace order.
pub async fn skills(catalog: &CatalogService, caller: &Caller) -> Result<Vec<Value>, AppError> {
    let skills = Filter::All(vec![
        Filter::In("kind".to_owned(), vec!["airesource".to_owned()]),
        Filter::In("spec.type".to_owned(), vec!["skill".to_owned()]),
    ]);
    let filter = catalog.restrict(caller, Some(&skills));
    let order = [OrderField {
        field: "metadata.name".to_owned(),
        descending: false,
    }];
    let query = EntityQuery {
        filter: filter.as_ref(),
        order: &order,
        limit: Some(MAX_SKILLS),
        ..EntityQuery::default()
    };
    let mut found: Vec<Value> = Vec::new();
    for row in catalog.query_page(&query).await? {
        let entity = parse_stored(&row.body)?;
        let name = &entity["metadata"]["name"];
        if !found.iter().any(|e| e["metadata"]["name"] == *name) {
            found.push(entity);
        }
    }
    Ok(found)
}

async fn index(
    State(catalog): State<CatalogService>,
    caller: Caller,
) -> Result<Json<Value>, AppError> {
    let listed: Vec<Value> = skills(&catalog, &caller)
        .await?
        .iter()
        .map(|entity| {
            let metadata = &entity["metadata"];
            json!({
                "name": metadata["name"],
                "description": metadata["description"].as_str().or(metadata["title"].as_str()).unwrap_or_default(),
                "files": ["SKILL.md"],
            })
        })
        .collect();
    Ok(Json(json!({ "skills": listed })))
}

async fn skill_file(
    State(catalog): State<CatalogService>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let text = read_skill(&catalog, &caller, &name).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        text,
    )
        .into_response())
}

/// The `SKILL.md` of the skill `name`, when the caller may see it.
pub async fn read_skill(
    catalog: &CatalogService,
    caller: &Caller,
    name: &str,
) -> Result<String, AppError> {
    let not_found = || AppError::not_found(format!("There is no skill named {name}"));
    let skill = skills(catalog, caller)
        .await?
        .into_iter()
        .find(|e| e["metadata"]["name"].as_str() == Some(name))
        .ok_or_else(not_found)?;
    let source = skill["metadata"]["annotations"][SOURCE_LOCATION]
        .as_str()
        .ok_or_else(|| {
            AppError::not_found(format!(
                "The skill {name} has no {SOURCE_LOCATION} annotation saying where its SKILL.md is"
            ))
        })?;
    let (location_type, directory) = source.split_once(':').ok_or_else(|| {
        AppError::not_found(format!(
            "The skill {name}'s {SOURCE_LOCATION} `{source}` is not `url:...` or `file:...`"
        ))
    })?;
    let file = format!("{}/SKILL.md", directory.trim_end_matches('/'));
    let unreadable = |e: &dyn std::fmt::Display| {
        AppError::not_found(format!("The SKILL.md of {name} could not be read: {e}"))
    };
    let target = catalog
        .reader
        .resolve(location_type, &file)
        .map_err(|e| unreadable(&e))?;
    catalog
        .reader
        .read(&target)
        .await
        .map_err(|e| unreadable(&e))
}
