//! `/catalog/{kind}/{namespace}/{name}`: one entity — overview, processing errors, relations (as a graph
//! and a table), kind-specific sections and the raw entity. Two queries: the entity, then every entity it
//! is related to in one `any($1)` lookup.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use serde_json::Value;

use super::graph::{self, Graph};
use super::kinds::{self, ApiDefinition, ModelView, Operation, TemplateView};
use super::view::{EntityLink, EntitySummary, RefParts, safe_url, str_at};
use super::{PageError, PageResult, parse_entity, yaml_out};
use crate::AppState;
use crate::catalog::api::{QueryParams, key_of};
use crate::catalog::db;

/// A link from catalog data; `href` is empty when the URL is not one we make clickable.
pub struct LinkView {
    pub href: String,
    pub title: String,
    pub url: String,
}

pub struct RelationGroup {
    pub label: String,
    pub relation: String,
    pub links: Vec<EntityLink>,
}

#[derive(Template, WebTemplate)]
#[template(path = "catalog/entity.html")]
pub struct EntityPage {
    kind: String,
    namespace: String,
    name: String,
    title: String,
    description: String,
    entity_type: String,
    lifecycle: String,
    tags: Vec<String>,
    owner: Option<EntityLink>,
    system: Option<EntityLink>,
    domain: Option<EntityLink>,
    links: Vec<LinkView>,
    annotations: Vec<(String, String)>,
    errors: Vec<String>,
    sources: Vec<LinkView>,
    relations: Vec<RelationGroup>,
    graph: Graph,
    raw_yaml: String,
    // API
    is_api: bool,
    api_definition: String,
    api_is_openapi: bool,
    api_title: String,
    api_version: String,
    api_problem: String,
    api_operations: Vec<Operation>,
    // Group, User, System, Domain
    members: Vec<EntityLink>,
    groups: Vec<EntityLink>,
    owned: Vec<EntityLink>,
    parts: Vec<EntityLink>,
    show_members: bool,
    show_groups: bool,
    show_owned: bool,
    show_parts: bool,
    // Model
    model: Option<ModelView>,
    dependents: Vec<EntityLink>,
    page_href: String,
    chart_label_width: f64,
    chart_bar_max: f64,
    // Template
    template: Option<TemplateView>,
}

fn relation_label(relation: &str) -> &str {
    match relation {
        "ownedBy" => "Owned by",
        "ownerOf" => "Owner of",
        "partOf" => "Part of",
        "hasPart" => "Has part",
        "dependsOn" => "Depends on",
        "dependencyOf" => "Dependency of",
        "providesApi" => "Provides API",
        "apiProvidedBy" => "API provided by",
        "consumesApi" => "Consumes API",
        "apiConsumedBy" => "API consumed by",
        "memberOf" => "Member of",
        "hasMember" => "Has member",
        "childOf" => "Child of",
        "parentOf" => "Parent of",
        other => other,
    }
}

pub async fn show_entity(
    State(state): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    params: QueryParams,
) -> PageResult<EntityPage> {
    let key = key_of(&kind, &namespace, &name);
    let Some(body) = db::get_final_by_key(&state.db, &key).await? else {
        let search = format!(
            "/catalog?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("q", &name)
                .finish()
        );
        return Err(PageError::not_found(format!(
            "There is no {kind} named {namespace}/{name} in the catalog."
        ))
        .with_suggestion(search, format!("Search the catalog for “{name}”")));
    };
    let entity = parse_entity(&body)?;

    // (relation type, target ref) in stored order.
    let relations: Vec<(String, String)> = entity["relations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some((
                r.get("type")?.as_str()?.to_owned(),
                r.get("targetRef")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut keys: Vec<String> = relations
        .iter()
        .filter_map(|(_, target)| RefParts::parse(target, "component").map(|r| r.key()))
        .collect();
    keys.sort();
    keys.dedup();
    let related: HashMap<String, EntitySummary> = if keys.is_empty() {
        HashMap::new()
    } else {
        let mut map = HashMap::new();
        for (key, body) in db::get_finals_by_keys(&state.db, &keys, None).await? {
            map.insert(key, EntitySummary::from_entity(&parse_entity(&body)?));
        }
        map
    };
    let link_to = |target: &str| -> Option<EntityLink> {
        let parts = RefParts::parse(target, "component")?;
        Some(match related.get(&parts.key()) {
            Some(summary) => EntityLink {
                href: summary.href.clone(),
                label: summary.title.clone(),
                kind: summary.kind.clone(),
                reference: parts.short(),
                description: summary.description.clone(),
            },
            None => EntityLink {
                href: parts.href(),
                label: parts.name.clone(),
                kind: parts.kind.clone(),
                reference: parts.short(),
                description: "Not in the catalog".to_owned(),
            },
        })
    };
    let links_of = |relation: &str| -> Vec<EntityLink> {
        relations
            .iter()
            .filter(|(r, _)| r == relation)
            .filter_map(|(_, target)| link_to(target))
            .collect()
    };
    let first_of_kind = |relation: &str, kind: &str| -> Option<EntityLink> {
        relations
            .iter()
            .filter(|(r, _)| r == relation)
            .filter(|(_, t)| t.to_lowercase().starts_with(&format!("{kind}:")))
            .find_map(|(_, target)| link_to(target))
    };

    // Relations grouped by type, in the order they first appear.
    let mut groups: Vec<RelationGroup> = Vec::new();
    for (relation, target) in &relations {
        let Some(link) = link_to(target) else {
            continue;
        };
        match groups.iter_mut().find(|g| g.relation == *relation) {
            Some(group) => group.links.push(link),
            None => groups.push(RelationGroup {
                label: relation_label(relation).to_owned(),
                relation: relation.clone(),
                links: vec![link],
            }),
        }
    }
    // One node per neighbour, labelled with every relation that joins it to this entity.
    let mut neighbours: Vec<(EntityLink, String)> = Vec::new();
    for (relation, target) in &relations {
        let Some(link) = link_to(target) else {
            continue;
        };
        match neighbours.iter_mut().find(|(l, _)| l.href == link.href) {
            Some((_, label)) => {
                label.push_str(", ");
                label.push_str(relation);
            }
            None => neighbours.push((link, relation.clone())),
        }
    }

    let summary = EntitySummary::from_entity(&entity);
    let graph = graph::layout(&summary.title, &summary.kind, neighbours);
    let metadata = &entity["metadata"];
    let spec = &entity["spec"];
    let annotations: Vec<(String, String)> = metadata["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect();
    let annotation = |name: &str| {
        annotations
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut sources = Vec::new();
    for (name, title) in [
        ("backstage.io/source-location", "View source"),
        ("backstage.io/edit-url", "Edit this entity"),
        ("backstage.io/managed-by-location", "Catalog file"),
    ] {
        if let Some(value) = annotation(name) {
            // Location annotations are `type:target`; edit-url is a plain URL.
            let url = match value.split_once(':') {
                Some(("url", rest)) => rest.to_owned(),
                Some(("file", rest)) => rest.to_owned(),
                _ => value.clone(),
            };
            sources.push(LinkView {
                href: safe_url(&url).unwrap_or_default(),
                title: title.to_owned(),
                url,
            });
        }
    }
    let links = metadata["links"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|link| {
            let url = str_at(link, &["url"]).to_owned();
            let title = match str_at(link, &["title"]) {
                "" => url.clone(),
                t => t.to_owned(),
            };
            LinkView {
                href: safe_url(&url).unwrap_or_default(),
                title,
                url,
            }
        })
        .collect();
    let errors = entity["status"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| match item["message"].as_str() {
            Some(message) => message.to_owned(),
            None => item.to_string(),
        })
        .collect();

    let kind_lower = summary.kind.to_lowercase();
    let is_api = kind_lower == "api";
    let api_definition = if is_api {
        match &spec["definition"] {
            Value::String(text) => text.clone(),
            Value::Null => String::new(),
            other => serde_json::to_string_pretty(other).unwrap_or_default(),
        }
    } else {
        String::new()
    };
    let (api_is_openapi, api_title, api_version, api_problem, api_operations) = if is_api {
        match kinds::api_definition(&summary.entity_type, &api_definition) {
            ApiDefinition::OpenApi {
                operations,
                title,
                version,
            } => (true, title, version, String::new(), operations),
            ApiDefinition::Unparsed { problem } => {
                (false, String::new(), String::new(), problem, Vec::new())
            }
            ApiDefinition::Other => (
                false,
                String::new(),
                String::new(),
                String::new(),
                Vec::new(),
            ),
        }
    } else {
        (
            false,
            String::new(),
            String::new(),
            String::new(),
            Vec::new(),
        )
    };
    let is_model = kind_lower == "model";
    let metric = params.one("metric");
    let page_href = summary.href.clone();

    Ok(EntityPage {
        owner: first_of_kind("ownedBy", "group")
            .or_else(|| first_of_kind("ownedBy", "user"))
            .or_else(|| links_of("ownedBy").into_iter().next()),
        system: first_of_kind("partOf", "system"),
        domain: first_of_kind("partOf", "domain"),
        members: links_of("hasMember"),
        groups: links_of("memberOf"),
        owned: links_of("ownerOf"),
        parts: links_of("hasPart"),
        show_members: kind_lower == "group",
        show_groups: kind_lower == "user",
        show_owned: kind_lower == "group" || kind_lower == "user",
        show_parts: kind_lower == "system" || kind_lower == "domain",
        dependents: if is_model {
            links_of("dependencyOf")
        } else {
            Vec::new()
        },
        model: is_model.then(|| kinds::model_view(spec, metric.as_deref())),
        template: (kind_lower == "template").then(|| kinds::template_view(spec)),
        page_href,
        chart_label_width: kinds::CHART_LABEL_WIDTH,
        chart_bar_max: kinds::CHART_BAR_MAX,
        is_api,
        api_definition,
        api_is_openapi,
        api_title,
        api_version,
        api_problem,
        api_operations,
        kind: summary.kind,
        namespace: summary.namespace,
        name: summary.name,
        title: summary.title,
        description: summary.description,
        entity_type: summary.entity_type,
        lifecycle: summary.lifecycle,
        tags: summary.tags,
        links,
        annotations,
        errors,
        sources,
        relations: groups,
        graph,
        raw_yaml: yaml_out::to_yaml(&entity),
    })
}
