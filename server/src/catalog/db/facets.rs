//! Facet counts: how many entities have each value of a field, values as written.

use sqlx::{PgExecutor, Postgres, QueryBuilder};

use super::filter::{escape_like, push_sql};
use crate::catalog::filter::Filter;

/// One value of a facet and how many entities have it.
#[derive(Debug, sqlx::FromRow)]
pub struct FacetCountRow {
    pub value: String,
    pub count: i64,
}

/// Counts of `key`'s values over the entities matching `filter`, most frequent first.
pub async fn facet_counts(
    db: impl PgExecutor<'_>,
    key: &str,
    filter: Option<&Filter>,
) -> Result<Vec<FacetCountRow>, sqlx::Error> {
    let key = key.to_lowercase();
    if key.starts_with("relations.") {
        // Relation targets are stored lower-cased already, so `search` holds them as written.
        let mut q = QueryBuilder::<Postgres>::new(
            "select v as value, count(*) as count from entity e, jsonb_array_elements_text(e.search -> ",
        );
        q.push_bind(key).push(") v where e.final is not null");
        if let Some(filter) = filter {
            q.push(" and ");
            push_sql(filter, &mut q);
        }
        q.push(" group by v order by count(*) desc, v");
        return q.build_query_as().fetch_all(db).await;
    }
    let mut q = QueryBuilder::<Postgres>::new(
        "select f.value as value, count(*) as count from entity_facet f",
    );
    match filter {
        None => {
            q.push(" where f.key = ").push_bind(key);
        }
        // The usual filter, one or more kinds: answered from (key, kind, value) without a join.
        Some(Filter::In(filter_key, kinds)) if filter_key == "kind" => {
            q.push(" where f.key = ")
                .push_bind(key)
                .push(" and f.kind = any(")
                .push_bind(kinds.clone())
                .push(")");
        }
        Some(filter) => {
            q.push(" join entity e on e.id = f.entity_id where f.key = ")
                .push_bind(key)
                .push(" and e.final is not null and ");
            push_sql(filter, &mut q);
        }
    }
    q.push(" group by f.value order by count(*) desc, f.value");
    q.build_query_as().fetch_all(db).await
}

/// [`facet_counts`] restricted to the entities whose default text fields contain `term` as well.
pub async fn facet_counts_with_text(
    db: impl PgExecutor<'_>,
    key: &str,
    filter: Option<&Filter>,
    term: &str,
) -> Result<Vec<FacetCountRow>, sqlx::Error> {
    let mut q = QueryBuilder::<Postgres>::new(
        "select f.value as value, count(*) as count from entity_facet f join entity e on e.id = f.entity_id where f.key = ",
    );
    q.push_bind(key.to_lowercase())
        .push(" and e.final is not null and e.search_text like ")
        .push_bind(format!("%{}%", escape_like(&term.to_lowercase())))
        .push(" escape '\\'");
    if let Some(filter) = filter {
        q.push(" and ");
        push_sql(filter, &mut q);
    }
    q.push(" group by f.value order by count(*) desc, f.value");
    q.build_query_as().fetch_all(db).await
}
