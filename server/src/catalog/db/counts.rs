//! Counts of visible entities per kind, kept by triggers as entities change (migration 0014).
//!
//! `entity_kind_count` is insert-only: every statement that makes entities visible or removes visible
//! ones adds a row per kind with the change. A count sums a kind's rows; `fold_kind_counts` replaces
//! them with their sum now and then, so a count reads a handful of rows however long the catalog lives.

use sqlx::PgExecutor;

use crate::catalog::filter::Kinds;

/// How many visible entities have one of `kinds`.
pub async fn visible_entities(db: impl PgExecutor<'_>, kinds: &Kinds) -> Result<i64, sqlx::Error> {
    match kinds {
        Kinds::Every => {
            sqlx::query_scalar!(
                r#"select coalesce(sum(visible), 0)::bigint as "count!" from entity_kind_count"#
            )
            .fetch_one(db)
            .await
        }
        Kinds::Of(kinds) => {
            let kinds: Vec<String> = kinds.iter().cloned().collect();
            sqlx::query_scalar!(
                r#"select coalesce(sum(visible), 0)::bigint as "count!" from entity_kind_count
                   where kind = any($1)"#,
                &kinds
            )
            .fetch_one(db)
            .await
        }
    }
}

/// Replaces each kind's rows with one row holding their sum. One statement: a reader sees either the
/// rows or their sum, and rows that writers add meanwhile are not among those deleted, so they stay.
/// Two replicas folding at once are safe too: rows the first deleted are skipped by the second.
pub async fn fold_kind_counts(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        "with folded as (delete from entity_kind_count returning kind, visible)
         insert into entity_kind_count (kind, visible)
         select kind, sum(visible) from folded group by kind having sum(visible) <> 0"
    )
    .execute(db)
    .await?
    .rows_affected())
}
