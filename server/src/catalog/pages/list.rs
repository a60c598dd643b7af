//! `/catalog`: the entity list with facet filters, text search, sortable columns and cursor pages.
//!
//! The URL holds the whole view (`?kind=Component&type=service&q=pay&sort=owner&dir=desc&after=...`), so a
//! view can be bookmarked and shared. Facet counts of each filter are computed with the *other* filters
//! applied, so every option shows how many entities choosing it would list.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use base64::Engine;

use super::view::{EntitySummary, catalog_href};
use crate::auth::Caller;
use crate::catalog::CatalogService;
use crate::catalog::db::{self, EntityQuery, FullText, Keyset, OrderField};
use crate::catalog::filter::Filter;
use crate::catalog::service::parse_stored;
use crate::error::AppError;
use crate::http::QueryParams;

const PAGE_SIZE: i64 = 25;

/// (query parameter, label, indexed key) of each facet filter.
const FACETS: &[(&str, &str, &str)] = &[
    ("kind", "Kind", "kind"),
    ("type", "Type", "spec.type"),
    ("owner", "Owner", "spec.owner"),
    ("lifecycle", "Lifecycle", "spec.lifecycle"),
    ("tag", "Tag", "metadata.tags"),
    ("namespace", "Namespace", "metadata.namespace"),
];

/// (query parameter, column label, order field) of each sortable column.
const COLUMNS: &[(&str, &str, &str)] = &[
    ("name", "Name", "metadata.name"),
    ("kind", "Kind", "kind"),
    ("type", "Type", "spec.type"),
    ("owner", "Owner", "spec.owner"),
    ("lifecycle", "Lifecycle", "spec.lifecycle"),
];

pub struct FacetOption {
    pub value: String,
    pub count: i64,
    pub selected: bool,
}

pub struct FacetView {
    pub param: &'static str,
    pub label: &'static str,
    pub options: Vec<FacetOption>,
}

pub struct ColumnView {
    pub label: &'static str,
    pub href: String,
    /// `ascending`, `descending` or `none`, for `aria-sort`.
    pub aria_sort: &'static str,
    pub arrow: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "catalog/list.html")]
pub struct ListPage {
    q: String,
    sort: String,
    dir: String,
    facets: Vec<FacetView>,
    columns: Vec<ColumnView>,
    rows: Vec<EntitySummary>,
    total: i64,
    next_href: Option<String>,
    prev_href: Option<String>,
    clear_href: String,
    any_filter: bool,
}

/// The view state read from the query string.
struct ListState {
    q: String,
    /// Selected values per facet, in `FACETS` order.
    selected: Vec<Vec<String>>,
    sort: String,
    descending: bool,
}

impl ListState {
    fn from_params(params: &QueryParams) -> Self {
        let selected = FACETS
            .iter()
            .map(|(param, _, _)| {
                params
                    .all(param)
                    .into_iter()
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .collect()
            })
            .collect();
        let sort = params
            .one("sort")
            .filter(|s| COLUMNS.iter().any(|(p, _, _)| p == s))
            .unwrap_or_else(|| "name".to_owned());
        Self {
            q: params.one("q").unwrap_or_default().trim().to_owned(),
            selected,
            sort,
            descending: params.one("dir").as_deref() == Some("desc"),
        }
    }

    /// The facet conditions, leaving out facet `skip` (for that facet's own counts).
    fn filter(&self, skip: Option<usize>) -> Option<Filter> {
        let mut all: Vec<Filter> = FACETS
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .filter(|(i, _)| !self.selected[*i].is_empty())
            .map(|(i, (_, _, key))| {
                Filter::In(
                    (*key).to_owned(),
                    self.selected[i].iter().map(|v| v.to_lowercase()).collect(),
                )
            })
            .collect();
        match all.len() {
            0 => None,
            1 => all.pop(),
            _ => Some(Filter::All(all)),
        }
    }

    /// The URL of this view with `sort`/`dir` replaced and a cursor added.
    fn href(&self, sort: &str, descending: bool, cursor: Option<(&str, &str)>) -> String {
        let mut params: Vec<(&str, &str)> = Vec::new();
        if !self.q.is_empty() {
            params.push(("q", &self.q));
        }
        for (i, (param, _, _)) in FACETS.iter().enumerate() {
            for value in &self.selected[i] {
                params.push((param, value));
            }
        }
        if sort != "name" || descending {
            params.push(("sort", sort));
        }
        if descending {
            params.push(("dir", "desc"));
        }
        params.extend(cursor);
        catalog_href(&params)
    }
}

fn encode_cursor(keyset: &Keyset) -> Result<String, AppError> {
    let json = serde_json::to_vec(keyset).map_err(|e| AppError::Internal(e.into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
}

fn decode_cursor(raw: &str) -> Result<Keyset, AppError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw.trim())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            AppError::input("The page link is damaged; go back to the first page of the list.")
                .suggest("/catalog", "Start again from the catalog")
        })
}

pub async fn list_entities(
    State(catalog): State<CatalogService>,
    caller: Caller,
    params: QueryParams,
) -> Result<ListPage, AppError> {
    let view = ListState::from_params(&params);
    let keyset = match (params.one("after"), params.one("before")) {
        (Some(after), _) => Some(decode_cursor(&after)?),
        (None, Some(before)) => {
            let mut keyset = decode_cursor(&before)?;
            keyset.backwards = true;
            Some(keyset)
        }
        (None, None) => None,
    };
    let order_field = COLUMNS
        .iter()
        .find(|(p, _, _)| *p == view.sort)
        .map(|(_, _, field)| *field)
        .unwrap_or("metadata.name");
    let order = [OrderField {
        field: order_field.to_owned(),
        descending: view.descending,
    }];
    let full_text = (!view.q.is_empty()).then(|| FullText {
        term: view.q.clone(),
        fields: Vec::new(),
    });
    let filter = catalog.restrict(&caller, view.filter(None).as_ref());
    let query = EntityQuery {
        filter: filter.as_ref(),
        full_text: full_text.as_ref(),
        order: &order,
        keyset: keyset.as_ref(),
        offset: None,
        limit: Some(PAGE_SIZE + 1),
        ..EntityQuery::default()
    };
    let total = catalog.count_entities(&query).await?;
    let mut rows = catalog.query_page(&query).await?;
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let backwards = keyset.as_ref().is_some_and(|k| k.backwards);
    if backwards {
        rows.reverse();
    }
    let has_next = if backwards { true } else { more };
    let has_prev = if backwards { more } else { keyset.is_some() };
    // The link to the page after the last row (`after`) or before the first (`before`).
    let page_href = |param: &str, row: Option<&db::PageRow>| -> Result<Option<String>, AppError> {
        let Some(row) = row else { return Ok(None) };
        let cursor = encode_cursor(&Keyset {
            sort_value: row.sort_value.clone(),
            uid: row.id,
            backwards: false,
        })?;
        Ok(Some(view.href(
            &view.sort,
            view.descending,
            Some((param, &cursor)),
        )))
    };
    let next_href = if has_next {
        page_href("after", rows.last())?
    } else {
        None
    };
    let prev_href = if has_prev {
        page_href("before", rows.first())?
    } else {
        None
    };

    let mut facets = Vec::with_capacity(FACETS.len());
    for (i, (param, label, key)) in FACETS.iter().enumerate() {
        let facet_filter = catalog.restrict(&caller, view.filter(Some(i)).as_ref());
        // Facet counts honour the text search too.
        let text = Some(view.q.as_str()).filter(|q| !q.is_empty());
        let counts = catalog
            .facet_counts(key, facet_filter.as_ref(), text)
            .await?;
        let mut options: Vec<FacetOption> = counts
            .iter()
            .map(|row| FacetOption {
                selected: view.selected[i]
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&row.value)),
                value: row.value.clone(),
                count: row.count,
            })
            .collect();
        for chosen in &view.selected[i] {
            if !options.iter().any(|o| o.value.eq_ignore_ascii_case(chosen)) {
                options.push(FacetOption {
                    value: chosen.clone(),
                    count: 0,
                    selected: true,
                });
            }
        }
        options.sort_by_key(|o| o.value.to_lowercase());
        facets.push(FacetView {
            param,
            label,
            options,
        });
    }

    let columns = COLUMNS
        .iter()
        .map(|(param, label, _)| {
            let active = *param == view.sort;
            // Clicking the active column flips its direction; another column starts ascending.
            let descending = active && !view.descending;
            ColumnView {
                label,
                href: view.href(param, descending, None),
                aria_sort: match (active, view.descending) {
                    (false, _) => "none",
                    (true, false) => "ascending",
                    (true, true) => "descending",
                },
                arrow: match (active, view.descending) {
                    (false, _) => "",
                    (true, false) => "▲",
                    (true, true) => "▼",
                },
            }
        })
        .collect();

    let mut summaries = Vec::with_capacity(rows.len());
    for row in &rows {
        summaries.push(EntitySummary::from_entity(&parse_stored(&row.body)?));
    }
    let any_filter = !view.q.is_empty() || view.selected.iter().any(|s| !s.is_empty());
    Ok(ListPage {
        q: view.q.clone(),
        sort: view.sort.clone(),
        dir: if view.descending { "desc" } else { "asc" }.to_owned(),
        facets,
        columns,
        rows: summaries,
        total,
        next_href,
        prev_href,
        clear_href: "/catalog".to_owned(),
        any_filter,
    })
}
