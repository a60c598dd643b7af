//! The stitch queue and what stitching reads and writes.
//!
//! `stitch_queue` is insert-only: writers never update a shared row, so two workers touching a popular
//! entity (a group with thousands of members) never wait on each other. Stitchers take batches with
//! SKIP LOCKED and de-duplicate.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::catalog::model::ProcessingError;

/// Puts entity keys on the stitch queue.
pub async fn queue_stitch(tx: &mut PgConnection, keys: Vec<String>) -> Result<(), sqlx::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "insert into stitch_queue (entity_key) select unnest($1::text[])",
        &keys
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Takes (deletes) up to `limit` queue entries, oldest first, skipping those another stitcher holds.
pub async fn take_stitch_batch(
    tx: &mut PgConnection,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"delete from stitch_queue where ctid = any(array(
             select ctid from stitch_queue order by queued_at limit $1 for update skip locked))
           returning entity_key"#,
        limit
    )
    .fetch_all(tx)
    .await
}

/// Deletes the queue entries for `keys` that no other stitcher holds; returns how many.
pub async fn drop_queued(tx: &mut PgConnection, keys: &[String]) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        "delete from stitch_queue where ctid = any(array(
           select ctid from stitch_queue where entity_key = any($1) for update skip locked))",
        keys
    )
    .execute(tx)
    .await?
    .rows_affected())
}

/// An entity as stitching needs it.
pub struct StitchRow {
    pub id: Uuid,
    pub entity_key: String,
    pub kind: String,
    pub processed: Value,
    pub errors: Json<Vec<ProcessingError>>,
    pub etag: Option<String>,
    pub facet_hash: Option<String>,
}

/// Locks the entity rows of `keys` that no other transaction holds, in key order. A popular entity
/// is queued by many changes, so two stitchers' batches often share it; the one that finds it locked
/// leaves it (see `busy_keys`) instead of waiting for the other's whole batch.
pub async fn lock_entities(
    tx: &mut PgConnection,
    keys: &[String],
) -> Result<Vec<StitchRow>, sqlx::Error> {
    sqlx::query_as!(
        StitchRow,
        r#"select id, entity_key, kind, processed, errors as "errors: Json<Vec<ProcessingError>>",
                  etag, facet_hash
           from entity where entity_key = any($1) order by entity_key for update skip locked"#,
        keys
    )
    .fetch_all(tx)
    .await
}

/// The keys among `keys` that have an entity row but are not in `locked`: rows another transaction
/// held when `lock_entities` ran. (Keys without a row are refs to entities that do not exist.)
pub async fn busy_keys(
    tx: &mut PgConnection,
    keys: &[String],
    locked: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "select entity_key from entity where entity_key = any($1) and entity_key <> all($2)",
        keys,
        locked
    )
    .fetch_all(tx)
    .await
}

/// A relation as served on its source entity.
pub struct RelationRow {
    pub source_key: String,
    pub relation_type: String,
    pub target_ref: String,
}

/// Every relation whose source is one of `keys`, whichever entity originated it.
pub async fn relations_from(
    tx: &mut PgConnection,
    keys: &[String],
) -> Result<Vec<RelationRow>, sqlx::Error> {
    sqlx::query_as!(
        RelationRow,
        r#"select distinct source_key, type as relation_type, target_ref
           from relation where source_key = any($1)"#,
        keys
    )
    .fetch_all(tx)
    .await
}

/// The errors of the locations that Location entities among `keys` point at.
pub struct PointedErrorsRow {
    pub declared_by: String,
    pub errors: Json<Vec<ProcessingError>>,
}

pub async fn location_errors_of(
    tx: &mut PgConnection,
    keys: &[String],
) -> Result<Vec<PointedErrorsRow>, sqlx::Error> {
    sqlx::query_as!(
        PointedErrorsRow,
        r#"select declared_by, errors as "errors: Json<Vec<ProcessingError>>"
           from location where declared_by = any($1) and errors <> '[]'::jsonb"#,
        keys
    )
    .fetch_all(tx)
    .await
}

/// Stitched entities to write, one entry per entity.
#[derive(Debug, Default)]
pub struct Stitched {
    pub ids: Vec<Uuid>,
    pub finals: Vec<String>,
    pub etags: Vec<Option<String>>,
    pub searches: Vec<Value>,
    pub texts: Vec<String>,
    pub facet_hashes: Vec<String>,
}

pub async fn write_stitched(tx: &mut PgConnection, stitched: &Stitched) -> Result<(), sqlx::Error> {
    if stitched.ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "update entity set final = u.final, etag = u.etag, search = u.search, search_text = u.text,
           facet_hash = u.facet_hash
         from unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[])
           as u(id, final, etag, search, text, facet_hash)
         where entity.id = u.id",
        &stitched.ids,
        &stitched.finals,
        &stitched.etags as &[Option<String>],
        &stitched.searches,
        &stitched.texts,
        &stitched.facet_hashes,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Facet rows to write, one entry per (entity, key, value).
#[derive(Debug, Default)]
pub struct Facets {
    /// Entities whose facet rows are replaced.
    pub entities: Vec<Uuid>,
    pub ids: Vec<Uuid>,
    pub kinds: Vec<String>,
    pub keys: Vec<String>,
    pub values: Vec<String>,
}

/// Replaces the facet rows of `facets.entities`.
pub async fn replace_facets(tx: &mut PgConnection, facets: &Facets) -> Result<(), sqlx::Error> {
    if facets.entities.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "delete from entity_facet where entity_id = any($1)",
        &facets.entities
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "insert into entity_facet (entity_id, kind, key, value)
         select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[])",
        &facets.ids,
        &facets.kinds,
        &facets.keys,
        &facets.values,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// `stitch_queue` is a queue table: every row is inserted once and deleted once, so its key index
/// fills with entries for dead rows, and each batch's look-up of a popular key walks all of them (over
/// a second per batch in the 100k benchmark over git repositories, on this Postgres without
/// autovacuum). Vacuuming it ourselves keeps it small whether or not autovacuum is on; `skip_locked`
/// makes a replica skip it while another one is vacuuming. `entity_kind_count` lives the same way
/// (rows added, then folded away: `db::counts`), and every count reads all of it.
/// VACUUM is a utility statement that cannot be prepared, hence `raw_sql`.
pub async fn vacuum_queue(db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("vacuum (skip_locked, analyze) stitch_queue, entity_kind_count")
        .execute(db)
        .await?;
    Ok(())
}
