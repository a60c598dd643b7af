//! Entity lists: filter, full-text search, order, keyset or offset pages, counts. Assembled with
//! `QueryBuilder` (the filter and the order are dynamic); every value is a bound parameter.

use sqlx::{PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::catalog::filter::{Filter, Kinds};
use crate::catalog::search::DEFAULT_TEXT_FIELDS;

/// The field an entity list is ordered by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct OrderField {
    pub field: String,
    pub descending: bool,
}

impl OrderField {
    /// SQL for the sort value: a real column for hot fields, else the first indexed value.
    fn sql(&self) -> String {
        match super::filter::column_of(&self.field) {
            Some(column) => column.to_owned(),
            None => format!("(e.search -> '{}' ->> 0)", self.field.replace('\'', "''")),
        }
    }

    fn nullable(&self) -> bool {
        !matches!(
            self.field.as_str(),
            "kind" | "metadata.name" | "metadata.namespace"
        )
    }
}

/// Text search: `term` must appear in one of `fields` (default: name, title, description, tags, kind,
/// type, lifecycle, owner).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FullText {
    pub term: String,
    pub fields: Vec<String>,
}

/// Where a keyset page starts: after (or before, going back) this sort value and uid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Keyset {
    pub sort_value: Option<String>,
    pub uid: Uuid,
    pub backwards: bool,
}

/// One query against the entity set.
#[derive(Debug, Default, Clone)]
pub struct EntityQuery<'a> {
    pub filter: Option<&'a Filter>,
    pub full_text: Option<&'a FullText>,
    pub order: &'a [OrderField],
    pub keyset: Option<&'a Keyset>,
    pub offset: Option<i64>,
    pub limit: Option<i64>,
    /// Leave out entities that lack the first order field. Backstage's `by-query` and unpaginated
    /// `GET /entities` page through the search rows of that field, so such entities are not there.
    pub require_order_value: bool,
    /// Order as Backstage's paginated `GET /entities` does: by every order field, entities lacking one
    /// after those that have it, ties by uid ascending whatever the direction; without order fields,
    /// by entity ref in byte order. Otherwise only the first order field counts and ties follow its
    /// direction (the keyset pages of `by-query`).
    pub listing: bool,
}

fn push_where(q: &mut QueryBuilder<Postgres>, query: &EntityQuery<'_>) {
    q.push(" where e.final is not null");
    if let Some(order) = query.order.first().filter(|_| query.require_order_value) {
        q.push(format!(" and ({}) is not null", order.sql()));
    }
    if let Some(filter) = query.filter {
        q.push(" and ");
        super::filter::push_sql(filter, q);
    }
    if let Some(text) = query.full_text {
        let pattern = format!(
            "%{}%",
            super::filter::escape_like(&text.term.to_lowercase())
        );
        // `search_text` holds the values of the default text fields, trigram-indexed: a term found in
        // one of those fields is found there. So it answers a search on them alone, and narrows one on
        // a subset of them (the usual `metadata.name,metadata.title`) to a few candidates, which the
        // per-field test below then checks: a term can also match across two fields' values.
        let in_text_column = text
            .fields
            .iter()
            .all(|f| DEFAULT_TEXT_FIELDS.contains(&f.to_lowercase().as_str()));
        if in_text_column {
            q.push(" and e.search_text like ")
                .push_bind(pattern.clone())
                .push(" escape '\\'");
        }
        if !text.fields.is_empty() {
            q.push(" and exists (select 1 from unnest(")
                .push_bind(
                    text.fields
                        .iter()
                        .map(|f| f.to_lowercase())
                        .collect::<Vec<_>>(),
                )
                .push("::text[]) f, jsonb_array_elements_text(e.search -> f) v where v like ")
                .push_bind(pattern)
                .push(" escape '\\')");
        }
    }
}

/// One entity of a page: its uid, the value it is sorted by (for the next cursor) and its final body.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PageRow {
    pub id: Uuid,
    pub sort_value: Option<String>,
    pub body: String,
}

pub async fn query_entities(
    db: impl PgExecutor<'_>,
    query: &EntityQuery<'_>,
) -> Result<Vec<PageRow>, sqlx::Error> {
    let order = query.order.first();
    let sort_sql = order
        .map(OrderField::sql)
        .unwrap_or_else(|| "null::text".to_owned());
    let mut q = QueryBuilder::<Postgres>::new(format!(
        "select e.id, {sort_sql} as sort_value, e.final as body from entity e"
    ));
    push_where(&mut q, query);
    let descending = order.is_some_and(|o| o.descending);
    if let Some(keyset) = query.keyset {
        // Going backwards flips the comparison; the caller reverses the rows again.
        let forward = descending == keyset.backwards;
        let cmp = if forward { ">" } else { "<" };
        match order {
            Some(order) if order.nullable() => {
                // Entities without the field come last in both directions, so the null flag is compared
                // on its own: past the last non-null row come the nulls (going forward), and before the
                // first null row come the non-nulls (going backwards).
                let null_side = if keyset.backwards { "(" } else { "not (" };
                q.push(format!(" and ((({sort_sql}) is null) = ("))
                    .push_bind(!keyset.backwards)
                    .push(format!(") and {null_side}"))
                    .push_bind(keyset.sort_value.is_none())
                    .push(format!(") or (({sort_sql}) is null) = "))
                    .push_bind(keyset.sort_value.is_none())
                    .push(format!(" and (coalesce({sort_sql}, ''), e.id) {cmp} ("))
                    .push_bind(keyset.sort_value.clone().unwrap_or_default())
                    .push(", ")
                    .push_bind(keyset.uid)
                    .push("))");
            }
            Some(_) => {
                q.push(format!(" and ({sort_sql}, e.id) {cmp} ("))
                    .push_bind(keyset.sort_value.clone().unwrap_or_default())
                    .push(", ")
                    .push_bind(keyset.uid)
                    .push(")");
            }
            None => {
                q.push(format!(" and e.id {cmp} ")).push_bind(keyset.uid);
            }
        }
    }
    q.push(" order by ");
    if query.listing {
        push_listing_order(&mut q, query.order);
    } else {
        push_keyset_order(&mut q, order, query.keyset.is_some_and(|k| k.backwards));
    }
    if let Some(limit) = query.limit {
        q.push(" limit ").push_bind(limit);
    }
    if let Some(offset) = query.offset {
        q.push(" offset ").push_bind(offset);
    }
    q.build_query_as().fetch_all(db).await
}

/// The order of a keyset page: the sort value (missing values last whatever the direction), then the
/// uid in the same direction; both reversed while walking backwards.
fn push_keyset_order(q: &mut QueryBuilder<Postgres>, order: Option<&OrderField>, backwards: bool) {
    let descending = order.is_some_and(|o| o.descending);
    let direction = if descending != backwards {
        "desc"
    } else {
        "asc"
    };
    if let Some(order) = order {
        if order.nullable() {
            let nulls = if backwards { "desc" } else { "asc" };
            q.push(format!("({}) is null {nulls}, ", order.sql()));
        }
        q.push(format!("{} {direction}, ", order.sql()));
    }
    q.push(format!("e.id {direction}"));
}

/// The order of Backstage's paginated entity listing (see [`EntityQuery::listing`]).
fn push_listing_order(q: &mut QueryBuilder<Postgres>, order: &[OrderField]) {
    if order.is_empty() {
        // `entity_key` is the lower-cased ref, collated "C": byte order, served by its unique index.
        q.push("e.entity_key asc");
        return;
    }
    for field in order {
        let direction = if field.descending { "desc" } else { "asc" };
        if field.nullable() {
            q.push(format!("({}) is null, ", field.sql()));
        }
        q.push(format!("{} {direction}, ", field.sql()));
    }
    q.push("e.id asc");
}

pub async fn count_entities(
    db: impl PgExecutor<'_>,
    query: &EntityQuery<'_>,
) -> Result<i64, sqlx::Error> {
    if let Some(kinds) = kinds_only(query) {
        return super::counts::visible_entities(db, &kinds).await;
    }
    let mut q = QueryBuilder::<Postgres>::new("select count(*) from entity e");
    push_where(&mut q, query);
    q.build_query_scalar().fetch_one(db).await
}

/// The kinds `query` selects when it selects by kind alone (no text, no other field, no order field
/// an entity may lack): then its count is a sum of per-kind counts.
fn kinds_only(query: &EntityQuery<'_>) -> Option<Kinds> {
    if query.full_text.is_some() {
        return None;
    }
    if let Some(order) = query.order.first().filter(|_| query.require_order_value)
        && order.nullable()
    {
        return None;
    }
    match query.filter {
        None => Some(Kinds::Every),
        Some(filter) => filter.kinds_only(),
    }
}
