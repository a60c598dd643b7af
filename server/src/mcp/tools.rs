//! The MCP tools: each one's name, description, input schema and hints (`readOnlyHint`,
//! `destructiveHint`, `idempotentHint`, stated truthfully), and what it does — through the catalog,
//! scaffolder and deploy services with the caller's rights, exactly as the REST API would.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{Caller, Scope};
use crate::catalog::db::{EntityQuery, FullText, OrderField};
use crate::catalog::filter::{Filter, parse_filter_params};
use crate::catalog::model::kind_schemas;
use crate::catalog::model::refs::{EntityRef, RefDefaults};
use crate::catalog::service::parse_stored;
use crate::deploy::api::deployment_json;
use crate::deploy::db::DeploymentList;
use crate::error::AppError;
use crate::scaffolder::api::{event_json, task_json};
use crate::scaffolder::service::{CreateError, NewTaskRequest};
use crate::state::AppState;

/// At most this many entities per search.
const MAX_RESULTS: i64 = 100;

/// What a tool is allowed to change, as MCP's hints say it.
#[derive(Clone, Copy)]
enum Effect {
    /// Reads only: the same call gives the same answer while nothing else changes.
    Read,
    /// Starts something new each time (a task); destroys nothing.
    Creates,
}

struct Definition {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    effect: Effect,
    input: fn() -> Value,
}

const TOOLS: &[Definition] = &[
    Definition {
        name: "search_entities",
        title: "Search the catalog",
        description: "Find catalog entities (components, APIs, models, systems, groups, templates...) by a Backstage filter (`kind=component,spec.type=service`) and/or free text over names and titles. Returns refs, titles, owners and the total.",
        effect: Effect::Read,
        input: || {
            json!({"type": "object", "properties": {
                "filter": {"type": "string", "description": "Backstage filter: comma-separated key=value conditions, e.g. kind=model,spec.owner=group:default/ml"},
                "text": {"type": "string", "description": "Words to look for in names and titles"},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "default": 20}
            }, "additionalProperties": false})
        },
    },
    Definition {
        name: "get_entity",
        title: "Read one entity",
        description: "One catalog entity by ref (`component:default/web`), with its relations (owner, system, APIs, dependencies).",
        effect: Effect::Read,
        input: || {
            json!({"type": "object", "properties": {
                "ref": {"type": "string", "description": "kind:namespace/name"}
            }, "required": ["ref"], "additionalProperties": false})
        },
    },
    Definition {
        name: "describe_catalog",
        title: "Describe the catalog model",
        description: "The catalog model: every kind with its apiVersions, its spec fields (required or not, their shapes, the kind an entity reference defaults to) and how many entities of it you may see; the metadata fields; and the fields filters can use.",
        effect: Effect::Read,
        input: || json!({"type": "object", "properties": {}, "additionalProperties": false}),
    },
    Definition {
        name: "list_templates",
        title: "List golden paths",
        description: "The software templates you may see, with their parameter schemas (JSON Schema per form page).",
        effect: Effect::Read,
        input: || json!({"type": "object", "properties": {}, "additionalProperties": false}),
    },
    Definition {
        name: "dry_run_template",
        title: "Dry-run a template",
        description: "Runs a template without side effects: checks the values, runs the steps that only touch a scratch workspace and reports the others. Needs template:run for that template.",
        effect: Effect::Read,
        input: || {
            json!({"type": "object", "properties": {
                "templateRef": {"type": "string"},
                "values": {"type": "object"}
            }, "required": ["templateRef", "values"], "additionalProperties": false})
        },
    },
    Definition {
        name: "run_template",
        title: "Run a template",
        description: "Starts a task running a template with these values; returns the task id to follow with get_task. Needs template:run for that template, and deploy:<environment> for its deploy steps.",
        effect: Effect::Creates,
        input: || {
            json!({"type": "object", "properties": {
                "templateRef": {"type": "string"},
                "values": {"type": "object"}
            }, "required": ["templateRef", "values"], "additionalProperties": false})
        },
    },
    Definition {
        name: "get_task",
        title: "Follow a task",
        description: "A task you created: its status and its log so far.",
        effect: Effect::Read,
        input: || {
            json!({"type": "object", "properties": {
                "taskId": {"type": "string", "format": "uuid"}
            }, "required": ["taskId"], "additionalProperties": false})
        },
    },
    Definition {
        name: "list_deployments",
        title: "List deployments",
        description: "Deployment records (newest first) with their health, optionally for one entity or environment.",
        effect: Effect::Read,
        input: || {
            json!({"type": "object", "properties": {
                "entity": {"type": "string", "description": "kind:namespace/name"},
                "environment": {"type": "string"}
            }, "additionalProperties": false})
        },
    },
    Definition {
        name: "get_model",
        title: "Read a model",
        description: "An AI model of the catalog: its versions and aliases, and where each runs (deployments and their health).",
        effect: Effect::Read,
        input: || {
            json!({"type": "object", "properties": {
                "ref": {"type": "string", "description": "model:namespace/name, or its name"}
            }, "required": ["ref"], "additionalProperties": false})
        },
    },
];

/// Every tool as MCP lists it.
pub fn definitions() -> Vec<Tool> {
    TOOLS
        .iter()
        .map(|d| {
            let schema: JsonObject = match (d.input)() {
                Value::Object(map) => map,
                _ => JsonObject::new(),
            };
            let hints = match d.effect {
                Effect::Read => ToolAnnotations::new()
                    .read_only(true)
                    .destructive(false)
                    .idempotent(true),
                Effect::Creates => ToolAnnotations::new()
                    .read_only(false)
                    .destructive(false)
                    .idempotent(false),
            };
            Tool::new(d.name, d.description, Arc::new(schema))
                .with_title(d.title)
                .with_annotations(hints.open_world(false))
        })
        .collect()
}

/// How the audit log names what a call was about.
pub fn audit_target(name: &str, arguments: &Value) -> String {
    for key in ["ref", "templateRef", "taskId", "entity"] {
        if let Some(value) = arguments[key].as_str() {
            return value.to_owned();
        }
    }
    name.to_owned()
}

/// Runs a tool for the caller.
pub async fn call(
    state: &AppState,
    caller: &Caller,
    name: &str,
    arguments: &Value,
) -> Result<Value, AppError> {
    match name {
        "search_entities" => search_entities(state, caller, arguments).await,
        "get_entity" => get_entity(state, caller, arguments).await,
        "describe_catalog" => describe_catalog(state, caller).await,
        "list_templates" => list_templates(state, caller).await,
        "dry_run_template" => dry_run_template(state, caller, arguments).await,
        "run_template" => run_template(state, caller, arguments).await,
        "get_task" => get_task(state, caller, arguments).await,
        "list_deployments" => list_deployments(state, caller, arguments).await,
        "get_model" => get_model(state, caller, arguments).await,
        other => Err(AppError::input(format!("unknown tool `{other}`"))),
    }
}

fn string<'a>(arguments: &'a Value, key: &str) -> Result<&'a str, AppError> {
    arguments[key]
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| AppError::input(format!("`{key}` is required (a string)")))
}

fn entity_key(raw: &str, default_kind: Option<&str>) -> Result<String, AppError> {
    EntityRef::parse(
        raw,
        RefDefaults {
            kind: default_kind,
            namespace: "default",
        },
    )
    .map(|r| r.key())
    .map_err(|e| AppError::input(format!("`{raw}` is not an entity ref: {e}")))
}

/// A line per entity: what an agent needs to pick one.
fn summary(entity: &Value) -> Value {
    let owner = entity["relations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["type"] == "ownedBy")
        .and_then(|r| r["targetRef"].as_str());
    json!({
        "ref": EntityRef::of_entity(entity).map(|r| r.to_string()),
        "title": entity["metadata"]["title"].as_str().or(entity["metadata"]["name"].as_str()),
        "description": entity["metadata"]["description"],
        "type": entity["spec"]["type"],
        "lifecycle": entity["spec"]["lifecycle"],
        "owner": owner,
    })
}

async fn search_entities(
    state: &AppState,
    caller: &Caller,
    arguments: &Value,
) -> Result<Value, AppError> {
    caller.require(&Scope::CatalogRead)?;
    let filter = match arguments["filter"].as_str() {
        Some(raw) => parse_filter_params(&[raw.to_owned()])?,
        None => None,
    };
    let filter = state.catalog.restrict(caller, filter.as_ref());
    let text = arguments["text"]
        .as_str()
        .filter(|t| !t.trim().is_empty())
        .map(|term| FullText {
            term: term.trim().to_owned(),
            fields: Vec::new(),
        });
    let limit = arguments["limit"]
        .as_i64()
        .unwrap_or(20)
        .clamp(1, MAX_RESULTS);
    let order = [OrderField {
        field: "metadata.name".to_owned(),
        descending: false,
    }];
    let query = EntityQuery {
        filter: filter.as_ref(),
        full_text: text.as_ref(),
        order: &order,
        limit: Some(limit),
        ..EntityQuery::default()
    };
    let total = state.catalog.count_entities(&query).await?;
    let mut items = Vec::new();
    for row in state.catalog.query_page(&query).await? {
        items.push(summary(&parse_stored(&row.body)?));
    }
    Ok(json!({"totalItems": total, "items": items}))
}

async fn get_entity(
    state: &AppState,
    caller: &Caller,
    arguments: &Value,
) -> Result<Value, AppError> {
    caller.require(&Scope::CatalogRead)?;
    let raw = string(arguments, "ref")?;
    let key = entity_key(raw, None)?;
    state
        .catalog
        .entity_for(caller, &key)
        .await?
        .ok_or_else(|| AppError::not_found(format!("No entity named '{key}' found")))
}

async fn describe_catalog(state: &AppState, caller: &Caller) -> Result<Value, AppError> {
    caller.require(&Scope::CatalogRead)?;
    let counts = state.catalog.kind_counts(caller).await?;
    // Every kind the catalog accepts, with what its spec holds and how many of it the caller sees.
    let kinds: Vec<Value> = kind_schemas()
        .into_iter()
        .map(|mut kind| {
            let name = kind["kind"].as_str().unwrap_or_default().to_owned();
            kind["count"] = json!(
                counts
                    .iter()
                    .find(|row| row.value.eq_ignore_ascii_case(&name))
                    .map_or(0, |row| row.count)
            );
            kind
        })
        .collect();
    Ok(json!({
        "kinds": kinds,
        "metadata": {
            "name": "string, required: [a-z0-9A-Z] with -_. inside, at most 63 characters",
            "namespace": "string, default `default`",
            "title": "string", "description": "string",
            "labels": "object of strings", "annotations": "object of strings",
            "tags": "string[]: [a-z0-9:+#] with - inside, at most 63 characters",
            "links": "list of {url, title, icon, type}"
        },
        "filterFields": [
            "kind", "metadata.name", "metadata.namespace", "metadata.tags", "metadata.annotations.<key>",
            "spec.type", "spec.lifecycle", "spec.owner", "spec.system", "relations.ownedby",
            "relations.partof", "relations.dependson"
        ],
        "filterSyntax": "key=value conditions separated by commas are ANDed (kind=component,spec.type=service); a bare key asks that the field exists; values compare case-insensitively",
    }))
}

async fn visible_templates(state: &AppState, caller: &Caller) -> Result<Vec<Value>, AppError> {
    let templates = Filter::In("kind".to_owned(), vec!["template".to_owned()]);
    let filter = state.catalog.restrict(caller, Some(&templates));
    let order = [OrderField {
        field: "metadata.name".to_owned(),
        descending: false,
    }];
    let query = EntityQuery {
        filter: filter.as_ref(),
        order: &order,
        limit: Some(500),
        ..EntityQuery::default()
    };
    state
        .catalog
        .query_page(&query)
        .await?
        .iter()
        .map(|row| parse_stored(&row.body))
        .collect()
}

async fn list_templates(state: &AppState, caller: &Caller) -> Result<Value, AppError> {
    caller.require(&Scope::CatalogRead)?;
    let items: Vec<Value> = visible_templates(state, caller)
        .await?
        .iter()
        .map(|entity| {
            let mut line = summary(entity);
            line["parameters"] = entity["spec"]["parameters"].clone();
            line
        })
        .collect();
    Ok(json!({"items": items}))
}

async fn dry_run_template(
    state: &AppState,
    caller: &Caller,
    arguments: &Value,
) -> Result<Value, AppError> {
    let reference = string(arguments, "templateRef")?;
    let template = state.scaffolder.template(caller, reference).await?;
    let values = arguments
        .get("values")
        .cloned()
        .unwrap_or_else(|| json!({}));
    match state
        .scaffolder
        .dry_run(caller, template.entity, &values, None, BTreeMap::new())
        .await?
    {
        Ok(result) => Ok(json!({
            "log": result.log.iter().filter_map(|e| e["body"]["message"].as_str()).collect::<Vec<_>>(),
            "output": result.output,
            "files": result.directory_contents.iter().filter_map(|f| f["path"].as_str()).collect::<Vec<_>>(),
        })),
        Err(errors) => Err(invalid_values(&errors)),
    }
}

fn invalid_values(errors: &[crate::scaffolder::params::ParameterError]) -> AppError {
    AppError::input(format!(
        "the values do not match the template's parameters: {}",
        errors
            .iter()
            .map(|e| format!("{}: {}", e.property, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

async fn run_template(
    state: &AppState,
    caller: &Caller,
    arguments: &Value,
) -> Result<Value, AppError> {
    let reference = string(arguments, "templateRef")?;
    let values = arguments
        .get("values")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let id = state
        .scaffolder
        .create_task(NewTaskRequest {
            template_ref: reference,
            values: &values,
            secrets: None,
            idempotency_key: None,
            caller,
        })
        .await
        .map_err(|e| match e {
            CreateError::Invalid(errors) => invalid_values(&errors),
            CreateError::Other(error) => error,
        })?;
    Ok(json!({"taskId": id, "status": "open"}))
}

async fn get_task(state: &AppState, caller: &Caller, arguments: &Value) -> Result<Value, AppError> {
    let raw = string(arguments, "taskId")?;
    let id = Uuid::parse_str(raw).map_err(|_| AppError::not_found(format!("No task {raw}")))?;
    let task = state.scaffolder.task_for(caller, id).await?;
    let events = state.scaffolder.events(id, 0, Duration::ZERO).await?;
    let mut body = task_json(&task);
    body["log"] = events
        .iter()
        .map(event_json)
        .filter_map(|e| e["body"]["message"].as_str().map(str::to_owned))
        .collect();
    Ok(body)
}

async fn list_deployments(
    state: &AppState,
    caller: &Caller,
    arguments: &Value,
) -> Result<Value, AppError> {
    caller.require(&Scope::CatalogRead)?;
    let entity = match arguments["entity"].as_str() {
        Some(raw) => vec![entity_key(raw, None)?],
        None => Vec::new(),
    };
    let list = DeploymentList {
        entity_ref: entity,
        environment: arguments["environment"]
            .as_str()
            .map(|e| vec![e.to_owned()])
            .unwrap_or_default(),
        limit: 50,
        // A deployment of an entity the caller may not see is not theirs to see either.
        visible: state.catalog.visible_to(caller),
        ..DeploymentList::default()
    };
    let (rows, total) = state.deploy.list(&list).await?;
    Ok(json!({
        "items": rows.iter().map(deployment_json).collect::<Vec<_>>(),
        "totalItems": total,
    }))
}

async fn get_model(
    state: &AppState,
    caller: &Caller,
    arguments: &Value,
) -> Result<Value, AppError> {
    caller.require(&Scope::CatalogRead)?;
    let key = entity_key(string(arguments, "ref")?, Some("model"))?;
    let model = state
        .catalog
        .entity_for(caller, &key)
        .await?
        .filter(|e| {
            e["kind"]
                .as_str()
                .is_some_and(|k| k.eq_ignore_ascii_case("model"))
        })
        .ok_or_else(|| AppError::not_found(format!("No model named '{key}' found")))?;
    let (rows, _) = state
        .deploy
        .list(&DeploymentList {
            entity_ref: vec![key.clone()],
            limit: 100,
            visible: state.catalog.visible_to(caller),
            ..DeploymentList::default()
        })
        .await?;
    let running: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "cluster": row.cluster,
                "environment": row.environment,
                "namespace": row.namespace,
                "name": row.name,
                "revision": row.revision,
                "status": row.status,
                "health": row.health,
                "version": row.parameters["version"],
            })
        })
        .collect();
    Ok(json!({
        "ref": key,
        "title": model["metadata"]["title"],
        "versions": model["spec"]["versions"],
        "aliases": model["spec"]["aliases"],
        "deployments": running,
    }))
}
