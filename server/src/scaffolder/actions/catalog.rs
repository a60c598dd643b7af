//! `catalog:register` and `catalog:fetch`: the catalog seen from a template.
//!
//! `catalog:register` goes through the same rules as `POST /api/catalog/locations` (location types, file
//! roots, host allowlists): a template cannot register what a user could not.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::{Action, ActionContext, ActionError};
use crate::catalog::model::refs::{EntityRef, RefDefaults};

pub fn actions() -> Vec<Box<dyn Action>> {
    vec![Box::new(Register), Box::new(Fetch)]
}

struct Register;

impl Register {
    /// The location to register: Backstage's `catalogInfoUrl`, or `repoContentsUrl` + `catalogInfoPath`.
    /// An http(s) URL is a `url` location; `file:/abs/path` a file location (under the catalog's file
    /// roots); anything else a git location target (`<remote>#<branch>`, what `publish:git` outputs
    /// for remotes without a web view), whose catalog files are found as for any git location.
    fn location(ctx: &ActionContext<'_>) -> Result<(&'static str, String), ActionError> {
        let is_http = |s: &str| s.starts_with("https://") || s.starts_with("http://");
        if let Some(url) = ctx.str_input("catalogInfoUrl") {
            if is_http(url) {
                return Ok(("url", url.to_owned()));
            }
            // `file:/abs/path` (a file under the catalog's file roots), as location refs are written.
            if let Some(path) = url.strip_prefix("file:").filter(|p| !p.starts_with("//")) {
                return Ok(("file", path.to_owned()));
            }
            return Ok(("git", url.to_owned()));
        }
        let Some(contents) = ctx.str_input("repoContentsUrl") else {
            return Err(ActionError::input(
                "catalog:register needs catalogInfoUrl, or repoContentsUrl and catalogInfoPath",
            ));
        };
        let path = ctx
            .str_input("catalogInfoPath")
            .unwrap_or("/catalog-info.yaml");
        // A repository a publish action made (`<remote>#<branch>`, or a GitHub `.../blob/<branch>` on
        // a configured host): registered as a git location, whose catalog files are read at the
        // branch.
        if let Some(location) =
            super::repo_url::contents_location(contents, path, &ctx.services.config.scaffolder)
        {
            return Ok(("git", location.repository));
        }
        if is_http(contents) {
            let joined = format!(
                "{}/{}",
                contents.trim_end_matches('/'),
                path.trim_start_matches('/')
            );
            Ok(("url", joined))
        } else {
            Err(ActionError::input(format!(
                "catalog:register: repoContentsUrl {contents:?} is neither a URL nor a repository a publish action made"
            )))
        }
    }
}

impl Action for Register {
    fn id(&self) -> &'static str {
        "catalog:register"
    }
    fn description(&self) -> &'static str {
        "Registers a catalog file (or a repository's catalog files) as a location in the catalog."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "catalogInfoUrl": {"type": "string", "description": "URL of the catalog file, or a git location target"},
                "repoContentsUrl": {"type": "string", "description": "Where the repository's files are (publish:* output repoContentsUrl)"},
                "catalogInfoPath": {"type": "string", "description": "Path of the catalog file in the repository; default /catalog-info.yaml"},
                "optional": {"type": "boolean", "description": "Do not fail the step when the location cannot be registered"},
            },
        })
    }
    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "entityRef": {"type": "string"},
                "catalogInfoUrl": {"type": "string"},
            },
        })
    }
    fn supports_dry_run(&self) -> bool {
        false
    }
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Map<String, Value>, ActionError>> {
        async move {
            let (location_type, target) = Self::location(ctx)?;
            let optional = ctx.input.get("optional").and_then(Value::as_bool) == Some(true);
            let catalog = &ctx.services.catalog;
            ctx.log(format!(
                "Registering {location_type}:{target} in the catalog"
            ));
            let mut output = Map::new();
            output.insert("catalogInfoUrl".to_owned(), json!(target));
            let registered = catalog
                .register_location(ctx.caller, location_type, &target)
                .await;
            if let Err(error) = registered {
                let message = format!(
                    "registering {location_type}:{target}: {}",
                    error.public_message()
                );
                if optional {
                    ctx.log(format!("{message} (optional: continuing)"));
                    return Ok(output);
                }
                return Err(ActionError::failed(message));
            }
            // What the location holds, read now: the entity to link to (the first that is not a
            // Location), as Backstage's action answers.
            let resolved = catalog
                .resolve_for_api(location_type, &target)
                .map_err(|e| ActionError::failed(e.public_message()))?;
            let (entities, _) = catalog.dry_run(&resolved).await;
            let entity = entities
                .iter()
                .find(|e| {
                    !e["kind"]
                        .as_str()
                        .is_some_and(|k| k.eq_ignore_ascii_case("location"))
                })
                .or_else(|| entities.first());
            if let Some(entity) = entity {
                let entity_ref = format!(
                    "{}:{}/{}",
                    entity["kind"].as_str().unwrap_or_default().to_lowercase(),
                    entity["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("default"),
                    entity["metadata"]["name"].as_str().unwrap_or_default()
                );
                ctx.log(format!("Registered {entity_ref}"));
                output.insert("entityRef".to_owned(), json!(entity_ref));
            }
            Ok(output)
        }
        .boxed()
    }
}

struct Fetch;

impl Action for Fetch {
    fn id(&self) -> &'static str {
        "catalog:fetch"
    }
    fn description(&self) -> &'static str {
        "Returns entities from the catalog by entity reference(s)."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "entityRef": {"type": "string"},
                "entityRefs": {"type": "array", "items": {"type": "string"}},
                "optional": {"type": "boolean", "description": "Answer nothing instead of failing when an entity is missing"},
                "defaultKind": {"type": "string"},
                "defaultNamespace": {"type": "string"},
            },
        })
    }
    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "entity": {"type": "object"},
                "entities": {"type": "array", "items": {"type": "object"}},
            },
        })
    }
    fn supports_dry_run(&self) -> bool {
        true
    }
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Map<String, Value>, ActionError>> {
        async move {
            let optional = ctx.input.get("optional").and_then(Value::as_bool) == Some(true);
            let default_kind = ctx.str_input("defaultKind");
            let default_namespace = ctx.str_input("defaultNamespace").unwrap_or("default");
            let key_of = |reference: &str| -> Result<String, ActionError> {
                EntityRef::parse(
                    reference,
                    RefDefaults {
                        kind: default_kind,
                        namespace: default_namespace,
                    },
                )
                .map(|r| r.key())
                .map_err(|e| ActionError::input(format!("catalog:fetch: {reference:?}: {e}")))
            };
            let mut output = Map::new();
            if let Some(reference) = ctx.str_input("entityRef") {
                let key = key_of(reference)?;
                match ctx.services.catalog.entity(&key).await {
                    Ok(Some(entity)) => {
                        output.insert("entity".to_owned(), entity);
                    }
                    Ok(None) if optional => {}
                    Ok(None) => {
                        return Err(ActionError::failed(format!("Entity {reference} not found")));
                    }
                    Err(e) => return Err(ActionError::failed(e.public_message())),
                }
            }
            if let Some(references) = ctx.input.get("entityRefs").and_then(Value::as_array) {
                let mut entities = Vec::new();
                for reference in references.iter().filter_map(Value::as_str) {
                    let key = key_of(reference)?;
                    match ctx.services.catalog.entity(&key).await {
                        Ok(Some(entity)) => entities.push(entity),
                        Ok(None) if optional => entities.push(Value::Null),
                        Ok(None) => {
                            return Err(ActionError::failed(format!(
                                "Entity {reference} not found"
                            )));
                        }
                        Err(e) => return Err(ActionError::failed(e.public_message())),
                    }
                }
                output.insert("entities".to_owned(), Value::Array(entities));
            }
            Ok(output)
        }
        .boxed()
    }
}
