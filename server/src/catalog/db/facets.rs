//! Facet counts: how many entities have each value of a field, values as written.
//!
//! Three sources, by key: relation facets from `search` (targets are lower-case refs already),
//! `metadata.namespace` from its column (validation makes namespaces lower-case, so the column holds
//! them as written), the keys `entity_facet` keeps rows for from that table, and any other key by
//! reading the matching entities' bodies (see `search::facet_stored`).

use std::collections::HashMap;

use futures::TryStreamExt;
use sqlx::{PgExecutor, Postgres, QueryBuilder};

use super::filter::{escape_like, push_sql};
use crate::catalog::filter::Filter;
use crate::catalog::search;

/// One value of a facet and how many entities have it.
#[derive(Debug, sqlx::FromRow)]
pub struct FacetCountRow {
    pub value: String,
    pub count: i64,
}

/// Counts of `key`'s values over the entities matching `filter` and, when given, containing `text` in
/// their default text fields; most frequent first, then by value (byte order, whatever the
/// database's collation).
pub async fn facet_counts(
    db: impl PgExecutor<'_>,
    key: &str,
    filter: Option<&Filter>,
    text: Option<&str>,
) -> Result<Vec<FacetCountRow>, sqlx::Error> {
    let key = key.to_lowercase();
    if key.starts_with("relations.") {
        let mut q = QueryBuilder::<Postgres>::new(
            "select v as value, count(*) as count from entity e, jsonb_array_elements_text(e.search -> ",
        );
        q.push_bind(key).push(") v where e.final is not null");
        push_conditions(&mut q, filter, text);
        q.push(" group by v order by count(*) desc, v collate \"C\"");
        return q.build_query_as().fetch_all(db).await;
    }
    if key == "metadata.namespace" {
        let mut q = QueryBuilder::<Postgres>::new(
            "select e.namespace as value, count(*) as count from entity e where e.final is not null",
        );
        push_conditions(&mut q, filter, text);
        q.push(" group by e.namespace order by count(*) desc, e.namespace collate \"C\"");
        return q.build_query_as().fetch_all(db).await;
    }
    if !search::facet_stored(&key) {
        return counted_from_bodies(db, &key, filter, text).await;
    }
    let mut q = QueryBuilder::<Postgres>::new(
        "select f.value as value, count(*) as count from entity_facet f",
    );
    match (filter, text) {
        (None, None) => {
            q.push(" where f.key = ").push_bind(key);
        }
        // The usual filter, one or more kinds: answered from (key, kind, value) without a join.
        (Some(Filter::In(filter_key, kinds)), None) if filter_key == "kind" => {
            q.push(" where f.key = ")
                .push_bind(key)
                .push(" and f.kind = any(")
                .push_bind(kinds.clone())
                .push(")");
        }
        _ => {
            q.push(" join entity e on e.id = f.entity_id where f.key = ")
                .push_bind(key)
                .push(" and e.final is not null");
            push_conditions(&mut q, filter, text);
        }
    }
    q.push(" group by f.value order by count(*) desc, f.value collate \"C\"");
    q.build_query_as().fetch_all(db).await
}

/// Appends ` and <filter>` and ` and <text condition>` on the entity row `e`.
fn push_conditions(q: &mut QueryBuilder<Postgres>, filter: Option<&Filter>, text: Option<&str>) {
    if let Some(filter) = filter {
        q.push(" and ");
        push_sql(filter, q);
    }
    if let Some(text) = text {
        q.push(" and e.search_text like ")
            .push_bind(format!("%{}%", escape_like(&text.to_lowercase())))
            .push(" escape '\\'");
    }
}

/// Counts a key `entity_facet` keeps no rows for by flattening each matching entity's body the way
/// the stitcher flattens it for the rows it does keep, so both give the same counts. It reads every
/// matching body (about 2 s for all of 100k entities): these keys are rarely asked for, and the answer
/// is kept for the catalog generation like any other facet.
async fn counted_from_bodies(
    db: impl PgExecutor<'_>,
    key: &str,
    filter: Option<&Filter>,
    text: Option<&str>,
) -> Result<Vec<FacetCountRow>, sqlx::Error> {
    let mut q =
        QueryBuilder::<Postgres>::new("select e.final from entity e where e.final is not null");
    push_conditions(&mut q, filter, text);
    let mut counts: HashMap<String, i64> = HashMap::new();
    let mut bodies = q.build_query_scalar::<String>().fetch(db);
    while let Some(body) = bodies.try_next().await? {
        let entity: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| sqlx::Error::Decode(e.into()))?;
        let (index, _) = search::build(&entity);
        for (facet_key, value) in index.facets {
            if facet_key == key {
                *counts.entry(value).or_default() += 1;
            }
        }
    }
    let mut rows: Vec<FacetCountRow> = counts
        .into_iter()
        .map(|(value, count)| FacetCountRow { value, count })
        .collect();
    // The order `order by count(*) desc, value` gives under the "C" collation.
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    Ok(rows)
}
