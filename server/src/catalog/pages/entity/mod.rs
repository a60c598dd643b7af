//! `/catalog/{namespace}/{kind}/{name}`: one entity — overview, processing errors, the section of its
//! kind, relations (as a graph and a table) and the raw entity. Two queries: the entity, then every
//! entity it is related to in one `any($1)` lookup.
//!
//! The page is the parts every kind has plus one [`KindSection`]; each section is built in its own
//! module here and rendered by its own partial in `web/templates/catalog/entity/`.

mod api;
mod graph;
mod model;
mod template;
mod values;
mod yaml;

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{OriginalUri, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use self::api::ApiSection;
use self::graph::Graph;
use self::model::ModelSection;
use self::template::TemplateView;
use self::values::items;
use super::view::{
    EntityLink, EntitySummary, TagLink, catalog_href, ref_href, safe_url, short_ref, str_at,
};
use crate::auth::Caller;
use crate::catalog::CatalogService;
use crate::catalog::model::refs::{EntityRef, RefDefaults};
use crate::error::AppError;
use crate::http::{Path, QueryParams};

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
    /// The catalog list of this kind.
    kind_href: String,
    tags: Vec<TagLink>,
    owner: Option<EntityLink>,
    system: Option<EntityLink>,
    domain: Option<EntityLink>,
    links: Vec<LinkView>,
    annotations: Vec<(String, String)>,
    errors: Vec<String>,
    sources: Vec<LinkView>,
    section: Option<KindSection>,
    relations: Vec<RelationGroup>,
    graph: Graph,
    raw_yaml: String,
}

/// What only entities of one kind show, each rendered by its partial.
pub enum KindSection {
    Api(ApiSection),
    Model(ModelSection),
    Template(TemplateView),
    Group(GroupSection),
    User(UserSection),
    /// A System's or a Domain's parts.
    Parts(Vec<EntityLink>),
}

pub struct GroupSection {
    pub members: Vec<EntityLink>,
    pub owned: Vec<EntityLink>,
}

pub struct UserSection {
    pub groups: Vec<EntityLink>,
    pub owned: Vec<EntityLink>,
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

/// An entity's relations, each with what is known of its target.
struct Related {
    /// (relation type, target) in stored order.
    relations: Vec<(String, EntityRef)>,
    known: HashMap<String, EntitySummary>,
}

impl Related {
    fn link(&self, target: &EntityRef) -> EntityLink {
        match self.known.get(&target.key()) {
            Some(summary) => EntityLink {
                href: summary.href.clone(),
                label: summary.title.clone(),
                kind: summary.kind.clone(),
                reference: short_ref(target),
                description: summary.description.clone(),
            },
            None => EntityLink {
                href: ref_href(target),
                label: target.name.clone(),
                kind: target.kind.clone(),
                reference: short_ref(target),
                description: "Not in the catalog".to_owned(),
            },
        }
    }

    fn links_of(&self, relation: &str) -> Vec<EntityLink> {
        self.relations
            .iter()
            .filter(|(r, _)| r == relation)
            .map(|(_, target)| self.link(target))
            .collect()
    }

    fn first_of_kind(&self, relation: &str, kind: &str) -> Option<EntityLink> {
        self.relations
            .iter()
            .find(|(r, t)| r == relation && t.kind.eq_ignore_ascii_case(kind))
            .map(|(_, target)| self.link(target))
    }

    /// Relations grouped by type, in the order they first appear.
    fn groups(&self) -> Vec<RelationGroup> {
        let mut groups: Vec<RelationGroup> = Vec::new();
        for (relation, target) in &self.relations {
            let link = self.link(target);
            match groups.iter_mut().find(|g| g.relation == *relation) {
                Some(group) => group.links.push(link),
                None => groups.push(RelationGroup {
                    label: relation_label(relation).to_owned(),
                    relation: relation.clone(),
                    links: vec![link],
                }),
            }
        }
        groups
    }

    /// One node per neighbour, labelled with every relation that joins it to the entity.
    fn neighbours(&self) -> Vec<(EntityLink, String)> {
        let mut neighbours: Vec<(EntityLink, String)> = Vec::new();
        for (relation, target) in &self.relations {
            let link = self.link(target);
            match neighbours.iter_mut().find(|(l, _)| l.href == link.href) {
                Some((_, label)) => {
                    label.push_str(", ");
                    label.push_str(relation);
                }
                None => neighbours.push((link, relation.clone())),
            }
        }
        neighbours
    }
}

/// `/catalog/{namespace}/{kind}/{name}`, Backstage's entity URL. Atrium's first URLs had kind and
/// namespace the other way round; such a link, shared before, is redirected to the entity's page.
pub async fn show_entity(
    State(catalog): State<CatalogService>,
    caller: Caller,
    Path((namespace, kind, name)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
    params: QueryParams,
) -> Result<Response, AppError> {
    let asked = EntityRef::new(&kind, &namespace, &name);
    let Some(entity) = catalog.entity_for(&caller, &asked.key()).await? else {
        let old_form = EntityRef::new(&namespace, &kind, &name);
        if catalog
            .entity_for(&caller, &old_form.key())
            .await?
            .is_some()
        {
            let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
            return Ok(
                Redirect::permanent(&format!("{}{query}", ref_href(&old_form))).into_response(),
            );
        }
        return Err(AppError::not_found(format!(
            "There is no {kind} named {namespace}/{name} in the catalog."
        ))
        .suggest(
            catalog_href(&[("q", &name)]),
            format!("Search the catalog for “{name}”"),
        ));
    };
    let related = related(&catalog, &caller, &entity).await?;
    let summary = EntitySummary::from_entity(&entity);
    let section = kind_section(&summary, &entity, &related, params.one("metric").as_deref());
    let graph = graph::layout(&summary.title, &summary.kind, related.neighbours());
    let metadata = &entity["metadata"];
    let annotations: Vec<(String, String)> = metadata["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), values::text(v)))
        .collect();
    Ok(EntityPage {
        owner: related
            .first_of_kind("ownedBy", "group")
            .or_else(|| related.first_of_kind("ownedBy", "user"))
            .or_else(|| related.links_of("ownedBy").into_iter().next()),
        system: related.first_of_kind("partOf", "system"),
        domain: related.first_of_kind("partOf", "domain"),
        relations: related.groups(),
        kind_href: catalog_href(&[("kind", &summary.kind)]),
        tags: summary.tag_links(),
        links: links(metadata),
        sources: sources(&annotations),
        annotations,
        errors: errors(&entity),
        section,
        graph,
        raw_yaml: yaml::to_yaml(&entity),
        kind: summary.kind,
        namespace: summary.namespace,
        name: summary.name,
        title: summary.title,
        description: summary.description,
        entity_type: summary.entity_type,
        lifecycle: summary.lifecycle,
    }
    .into_response())
}

/// The entity's relations and, in one lookup, what the catalog knows of their targets.
async fn related(
    catalog: &CatalogService,
    caller: &Caller,
    entity: &Value,
) -> Result<Related, AppError> {
    let relations: Vec<(String, EntityRef)> = items(&entity["relations"])
        .filter_map(|r| {
            let target = EntityRef::parse(r.get("targetRef")?.as_str()?, RefDefaults::default());
            Some((r.get("type")?.as_str()?.to_owned(), target.ok()?))
        })
        .collect();
    let mut keys: Vec<String> = relations.iter().map(|(_, target)| target.key()).collect();
    keys.sort();
    keys.dedup();
    let mut known = HashMap::new();
    for (key, related) in catalog.entities_by_keys(&keys).await? {
        // A related entity the caller may not see stays a bare ref, without its title or link.
        if !catalog.may_read(caller, &related) {
            continue;
        }
        known.insert(key, EntitySummary::from_entity(&related));
    }
    Ok(Related { relations, known })
}

fn kind_section(
    summary: &EntitySummary,
    entity: &Value,
    related: &Related,
    metric: Option<&str>,
) -> Option<KindSection> {
    let spec = &entity["spec"];
    Some(match summary.kind.to_lowercase().as_str() {
        "api" => KindSection::Api(api::api_section(&summary.entity_type, spec)),
        "model" => KindSection::Model(ModelSection {
            model: model::model_view(spec, metric),
            dependents: related.links_of("dependencyOf"),
            page_href: summary.href.clone(),
            chart_label_width: model::CHART_LABEL_WIDTH,
            chart_bar_max: model::CHART_BAR_MAX,
        }),
        "template" => KindSection::Template(template::template_view(entity)),
        "group" => KindSection::Group(GroupSection {
            members: related.links_of("hasMember"),
            owned: related.links_of("ownerOf"),
        }),
        "user" => KindSection::User(UserSection {
            groups: related.links_of("memberOf"),
            owned: related.links_of("ownerOf"),
        }),
        "system" | "domain" => KindSection::Parts(related.links_of("hasPart")),
        _ => return None,
    })
}

/// Where the entity's file is: source, edit and catalog-file links from its annotations.
fn sources(annotations: &[(String, String)]) -> Vec<LinkView> {
    let mut sources = Vec::new();
    for (name, title) in [
        ("backstage.io/source-location", "View source"),
        ("backstage.io/edit-url", "Edit this entity"),
        ("backstage.io/managed-by-location", "Catalog file"),
    ] {
        let Some((_, value)) = annotations.iter().find(|(k, _)| k == name) else {
            continue;
        };
        // Location annotations are `type:target`; edit-url is a plain URL.
        let url = match value.split_once(':') {
            Some(("url" | "file", rest)) => rest.to_owned(),
            _ => value.clone(),
        };
        sources.push(LinkView {
            href: safe_url(&url).unwrap_or_default(),
            title: title.to_owned(),
            url,
        });
    }
    sources
}

fn links(metadata: &Value) -> Vec<LinkView> {
    items(&metadata["links"])
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
        .collect()
}

/// The messages of the entity's processing errors.
fn errors(entity: &Value) -> Vec<String> {
    items(&entity["status"]["items"])
        .map(|item| match item["message"].as_str() {
            Some(message) => message.to_owned(),
            None => item.to_string(),
        })
        .collect()
}
