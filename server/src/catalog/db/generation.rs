//! The catalog generation (see migration `0004_catalog_generation.sql`): a number that grows in every
//! transaction that changes what the API serves. Deferred triggers on `entity` bump it at commit, so
//! every writer is covered, including ones that do not know about it.

use sqlx::PgExecutor;

/// The current generation. Read it before computing an answer to cache: an answer computed after
/// reading G reflects at least every change of generations up to G.
pub async fn current(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!("select value from catalog_generation")
        .fetch_one(db)
        .await
}
