//! Planner statistics, kept fresh by the catalog itself.
//!
//! The plans of entity lists, facets and relation filters depend on row counts and value frequencies.
//! Right after a bulk load those statistics are empty or describe a far smaller table, and a database
//! with autovacuum off or lagging (common on busy and managed servers) leaves them so: Postgres then
//! picks nested loops over 100k rows. The stitcher therefore analyzes the catalog's tables itself
//! after large changes, and merges the GIN indexes' pending lists, which only VACUUM would otherwise
//! merge (see `ingest::refresh_statistics`).

use sqlx::{PgExecutor, PgPool};

/// The statements that analyze the tables the catalog's read queries plan over. `skip_locked`: a
/// table another replica is analyzing is left to it. ANALYZE cannot be prepared, hence whole
/// statements for `raw_sql`.
const ANALYZE: &[&str] = &[
    "analyze (skip_locked) entity",
    "analyze (skip_locked) entity_facet",
    "analyze (skip_locked) relation",
    "analyze (skip_locked) location",
];

/// The planner's idea of how many entities there are (0 before the first analyze).
pub async fn estimated_entities(db: impl PgExecutor<'_>) -> Result<f64, sqlx::Error> {
    let estimate = sqlx::query_scalar!(
        r#"select reltuples::float8 as "estimate!" from pg_class where oid = 'entity'::regclass"#
    )
    .fetch_one(db)
    .await?;
    Ok(estimate.max(0.0))
}

/// Moves the entries waiting in the GIN indexes' pending lists into the indexes proper. GIN indexes
/// take new entries into an unsorted pending list (up to `gin_pending_list_limit`, 4 MB) that only
/// VACUUM merges, and every search reads the whole list: after a bulk load without vacuum a filter on
/// `search` read 400 pages per query instead of one. Returns how many pending pages were merged.
pub async fn flush_gin_pending_lists(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    let merged = sqlx::query_scalar!(
        r#"select gin_clean_pending_list('entity_search_idx'::regclass)
                + gin_clean_pending_list('entity_search_text_idx'::regclass) as "merged!""#
    )
    .fetch_one(db)
    .await?;
    Ok(merged)
}

pub async fn analyze_catalog_tables(pool: &PgPool) -> Result<(), sqlx::Error> {
    for statement in ANALYZE {
        sqlx::raw_sql(*statement).execute(pool).await?;
    }
    Ok(())
}
