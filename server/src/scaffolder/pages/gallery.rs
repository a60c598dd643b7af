//! `/create`: every Template entity as a card, filtered by owner, tag and type through a plain GET
//! form (`/create?owner=group:platform-team&tag=python&type=service`), so a filtered gallery can be
//! bookmarked and works without JavaScript.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::form_href;
use crate::auth::Caller;
use crate::catalog::CatalogService;
use crate::catalog::db::{EntityQuery, OrderField};
use crate::catalog::filter::Filter;
use crate::catalog::pages::view::{EntitySummary, TagLink};
use crate::catalog::service::parse_stored;
use crate::error::AppError;
use crate::http::QueryParams;

/// More templates than any portal has; the gallery is one page.
const MAX_TEMPLATES: i64 = 500;

/// (query parameter, label, indexed key) of each filter.
const FILTERS: &[(&str, &str, &str)] = &[
    ("owner", "Owner", "spec.owner"),
    ("tag", "Tag", "metadata.tags"),
    ("type", "Type", "spec.type"),
];

pub struct FilterOption {
    pub value: String,
    pub count: i64,
    pub selected: bool,
}

pub struct FilterView {
    pub param: &'static str,
    pub label: &'static str,
    pub options: Vec<FilterOption>,
}

pub struct TemplateCard {
    pub summary: EntitySummary,
    pub form_href: String,
    /// Each tag with the gallery filtered by it.
    pub tags: Vec<TagLink>,
}

#[derive(Template, WebTemplate)]
#[template(path = "scaffolder/gallery.html")]
pub struct GalleryPage {
    filters: Vec<FilterView>,
    cards: Vec<TemplateCard>,
    any_filter: bool,
}

fn templates_only() -> Filter {
    Filter::In("kind".to_owned(), vec!["template".to_owned()])
}

pub async fn list_templates(
    State(catalog): State<CatalogService>,
    caller: Caller,
    params: QueryParams,
) -> Result<GalleryPage, AppError> {
    let selected: Vec<Option<String>> = FILTERS
        .iter()
        .map(|(param, _, _)| {
            params
                .one(param)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        })
        .collect();
    let mut conditions = vec![templates_only()];
    for ((_, _, key), value) in FILTERS.iter().zip(&selected) {
        if let Some(value) = value {
            conditions.push(Filter::In((*key).to_owned(), vec![value.to_lowercase()]));
        }
    }
    // Only the templates the caller may see (the permission policy's `catalog.entity.read`).
    let filter = catalog
        .restrict(&caller, Some(&Filter::All(conditions)))
        .unwrap_or_else(templates_only);
    let order = [OrderField {
        field: "metadata.name".to_owned(),
        descending: false,
    }];
    let query = EntityQuery {
        filter: Some(&filter),
        order: &order,
        limit: Some(MAX_TEMPLATES),
        ..EntityQuery::default()
    };
    let mut cards = Vec::new();
    for row in catalog.query_page(&query).await? {
        let summary = EntitySummary::from_entity(&parse_stored(&row.body)?);
        cards.push(TemplateCard {
            form_href: form_href(&summary.namespace, &summary.name),
            tags: summary
                .tags
                .iter()
                .map(|tag| TagLink {
                    href: gallery_href(&[("tag", tag)]),
                    name: tag.clone(),
                })
                .collect(),
            summary,
        });
    }

    // Options come from all templates, so choosing one filter never hides the others' choices.
    let all_templates = catalog
        .restrict(&caller, Some(&templates_only()))
        .unwrap_or_else(templates_only);
    let mut filters = Vec::with_capacity(FILTERS.len());
    for ((param, label, key), chosen) in FILTERS.iter().zip(&selected) {
        let counts = catalog
            .facet_counts(key, Some(&all_templates), None)
            .await?;
        let is_chosen = |value: &str| {
            chosen
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case(value))
        };
        let mut options: Vec<FilterOption> = counts
            .iter()
            .map(|row| FilterOption {
                selected: is_chosen(&row.value),
                value: row.value.clone(),
                count: row.count,
            })
            .collect();
        if let Some(chosen) = chosen
            && !options.iter().any(|o| o.selected)
        {
            options.push(FilterOption {
                value: chosen.clone(),
                count: 0,
                selected: true,
            });
        }
        options.sort_by_key(|o| o.value.to_lowercase());
        filters.push(FilterView {
            param,
            label,
            options,
        });
    }
    Ok(GalleryPage {
        filters,
        cards,
        any_filter: selected.iter().any(Option::is_some),
    })
}

/// The gallery with these filters (`[("tag", "c++")]` → `/create?tag=c%2B%2B`).
fn gallery_href(params: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/create?{query}")
}
