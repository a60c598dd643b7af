//! Entity rows: reading final bodies, deleting, and the writes of ingestion (upserts, errors, orphans).

use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use super::filter::push_sql;
use super::relations::relation_sources_of;
use super::stitch::queue_stitch;
use crate::catalog::filter::Filter;
use crate::catalog::model::ProcessingError;
use crate::catalog::model::location::ANNOTATION_ORPHAN;
use crate::config::OrphanPolicy;

pub async fn get_final_by_key(
    db: impl PgExecutor<'_>,
    key: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select final as "final!" from entity where entity_key = $1 and final is not null"#,
        key
    )
    .fetch_optional(db)
    .await
}

pub async fn get_final_by_uid(
    db: impl PgExecutor<'_>,
    uid: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select final as "final!" from entity where id = $1 and final is not null"#,
        uid
    )
    .fetch_optional(db)
    .await
}

/// An entity's final body with its key.
#[derive(Debug, sqlx::FromRow)]
pub struct KeyedFinalRow {
    pub entity_key: String,
    pub body: String,
}

/// Those of `keys` that exist and match `filter`, in no particular order.
pub async fn get_finals_by_keys(
    db: impl PgExecutor<'_>,
    keys: &[String],
    filter: Option<&Filter>,
) -> Result<Vec<KeyedFinalRow>, sqlx::Error> {
    let mut q = QueryBuilder::<Postgres>::new(
        "select e.entity_key, e.final as body from entity e where e.entity_key = any(",
    );
    q.push_bind(keys.to_vec()).push(") and e.final is not null");
    if let Some(filter) = filter {
        q.push(" and ");
        push_sql(filter, &mut q);
    }
    q.build_query_as().fetch_all(db).await
}

/// One step of an ancestry walk: the entity's final body and the key of the Location entity that
/// emitted it.
pub struct AncestryRow {
    pub parent_key: Option<String>,
    pub body: String,
}

pub async fn get_ancestry_step(
    db: impl PgExecutor<'_>,
    key: &str,
) -> Result<Option<AncestryRow>, sqlx::Error> {
    sqlx::query_as!(
        AncestryRow,
        r#"select parent_key, final as "body!" from entity where entity_key = $1 and final is not null"#,
        key
    )
    .fetch_optional(db)
    .await
}

/// The most recently changed entities' final bodies, newest first.
pub async fn recent_finals(
    db: impl PgExecutor<'_>,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select final as "final!" from entity where final is not null
           order by updated_at desc, entity_key limit $1"#,
        limit
    )
    .fetch_all(db)
    .await
}

/// The location an entity was read from: `None` when there is no such entity, `Some(None)` for an
/// orphan.
pub async fn get_entity_location(
    db: impl PgExecutor<'_>,
    key: &str,
) -> Result<Option<Option<Uuid>>, sqlx::Error> {
    sqlx::query_scalar!("select location_id from entity where entity_key = $1", key)
        .fetch_optional(db)
        .await
}

/// Deletes one entity by uid; its relations go with it and their other ends re-stitch. Returns the
/// deleted entity's key (for the audit log), `None` when there was no such entity.
pub async fn delete_entity(
    tx: &mut PgConnection,
    uid: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    let touched = relation_sources_of(&mut *tx, &[uid]).await?;
    let deleted = sqlx::query_scalar!("delete from entity where id = $1 returning entity_key", uid)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(deleted) = deleted else {
        return Ok(None);
    };
    let touched = touched.into_iter().filter(|k| *k != deleted).collect();
    queue_stitch(tx, touched).await?;
    Ok(Some(deleted))
}

/// An entity a location stored: what a new read of the location is compared with.
pub struct StoredEntityRow {
    pub id: Uuid,
    pub entity_key: String,
    pub content_hash: String,
    pub errors: Json<Vec<ProcessingError>>,
}

pub async fn list_entities_of_location(
    tx: &mut PgConnection,
    location: Uuid,
) -> Result<Vec<StoredEntityRow>, sqlx::Error> {
    sqlx::query_as!(
        StoredEntityRow,
        r#"select id, entity_key, content_hash, errors as "errors: Json<Vec<ProcessingError>>"
           from entity where location_id = $1 order by entity_key"#,
        location
    )
    .fetch_all(tx)
    .await
}

/// Which other location already provides an entity key.
pub struct EntityOwnerRow {
    pub entity_key: String,
    pub location_type: String,
    pub target: String,
}

/// Those of `keys` that a location other than `location` provides, with that location.
pub async fn list_owners_elsewhere(
    tx: &mut PgConnection,
    keys: &[String],
    location: Uuid,
) -> Result<Vec<EntityOwnerRow>, sqlx::Error> {
    sqlx::query_as!(
        EntityOwnerRow,
        r#"select e.entity_key, l.type as location_type, l.target
           from entity e join location l on l.id = e.location_id
           where e.entity_key = any($1) and e.location_id <> $2"#,
        keys,
        location
    )
    .fetch_all(tx)
    .await
}

/// An entity as a location's read produced it.
pub struct NewEntity<'a> {
    pub key: &'a str,
    /// Lower-cased kind, namespace, name.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Lower-cased `spec.type`, `spec.lifecycle`, `spec.owner` when they are strings.
    pub spec_type: Option<String>,
    pub lifecycle: Option<String>,
    pub owner: Option<String>,
    /// Key of the Location entity that emitted it; `None` for the root of a tree.
    pub parent_key: Option<String>,
    pub processed: &'a Value,
    pub content_hash: &'a str,
    pub errors: &'a [ProcessingError],
}

/// An entity row written by [`upsert_entities`].
pub struct WrittenEntityRow {
    pub id: Uuid,
    pub entity_key: String,
}

/// Inserts or updates entities read at `location`, in key order (so that concurrent writers lock rows
/// in the same order). A row owned by another live location is left alone — the `where` of the upsert —
/// which is how a racing conflict shows up: its key is missing from the answer.
pub async fn upsert_entities(
    tx: &mut PgConnection,
    location: Uuid,
    entities: &[NewEntity<'_>],
) -> Result<Vec<WrittenEntityRow>, sqlx::Error> {
    let ids: Vec<Uuid> = entities.iter().map(|_| Uuid::new_v4()).collect();
    let keys: Vec<String> = entities.iter().map(|e| e.key.to_owned()).collect();
    let kinds: Vec<String> = entities.iter().map(|e| e.kind.clone()).collect();
    let namespaces: Vec<String> = entities.iter().map(|e| e.namespace.clone()).collect();
    let names: Vec<String> = entities.iter().map(|e| e.name.clone()).collect();
    let parents: Vec<Option<String>> = entities.iter().map(|e| e.parent_key.clone()).collect();
    let bodies: Vec<Json<&Value>> = entities.iter().map(|e| Json(e.processed)).collect();
    let hashes: Vec<String> = entities.iter().map(|e| e.content_hash.to_owned()).collect();
    let errors: Vec<Json<&[ProcessingError]>> = entities.iter().map(|e| Json(e.errors)).collect();
    let spec_types: Vec<Option<String>> = entities.iter().map(|e| e.spec_type.clone()).collect();
    let lifecycles: Vec<Option<String>> = entities.iter().map(|e| e.lifecycle.clone()).collect();
    let owners: Vec<Option<String>> = entities.iter().map(|e| e.owner.clone()).collect();
    sqlx::query_as!(
        WrittenEntityRow,
        r#"insert into entity (id, entity_key, kind, namespace, name, location_id, parent_key, processed,
                               content_hash, errors, spec_type, lifecycle, owner)
           select u.id, u.key, u.kind, u.namespace, u.name, $10, u.parent, u.body, u.hash, u.errors,
                  u.spec_type, u.lifecycle, u.owner
           from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::jsonb[], $8::text[], $9::jsonb[], $11::text[], $12::text[], $13::text[])
             as u(id, key, kind, namespace, name, parent, body, hash, errors, spec_type, lifecycle, owner)
           order by u.key
           on conflict (entity_key) do update set
             location_id = excluded.location_id, parent_key = excluded.parent_key,
             processed = excluded.processed, content_hash = excluded.content_hash,
             errors = excluded.errors, spec_type = excluded.spec_type, lifecycle = excluded.lifecycle,
             owner = excluded.owner, updated_at = now()
           where entity.location_id = excluded.location_id or entity.location_id is null
           returning id, entity_key"#,
        &ids,
        &keys,
        &kinds,
        &namespaces,
        &names,
        &parents as &[Option<String>],
        &bodies as _,
        &hashes,
        &errors as _,
        location,
        &spec_types as &[Option<String>],
        &lifecycles as &[Option<String>],
        &owners as &[Option<String>],
    )
    .fetch_all(tx)
    .await
}

/// Replaces a stored entity's processing errors (its body stays: the last good one).
pub async fn update_entity_errors(
    tx: &mut PgConnection,
    id: Uuid,
    errors: &[ProcessingError],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update entity set errors = $2, updated_at = now() where id = $1",
        id,
        Json(errors) as _,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Entities whose location is gone (deleted location trees set `location_id` to null) and that are
/// not yet marked as orphans.
async fn list_unmarked_orphans(tx: &mut PgConnection) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "select id from entity where location_id is null
         and processed -> 'metadata' -> 'annotations' ->> 'backstage.io/orphan' is null"
    )
    .fetch_all(tx)
    .await
}

/// Deletes entities; returns the keys of the other ends of the relations they originated (which must
/// re-stitch), leaving out the deleted entities themselves.
async fn delete_entities(tx: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<String>, sqlx::Error> {
    let mut touched = relation_sources_of(&mut *tx, ids).await?;
    // Relations these entities originated vanish with them (trigger `entity_delete_dependents`).
    let deleted = sqlx::query_scalar!(
        "delete from entity where id = any($1) returning entity_key",
        ids
    )
    .fetch_all(tx)
    .await?;
    let deleted: std::collections::HashSet<String> = deleted.into_iter().collect();
    touched.retain(|k| !deleted.contains(k));
    Ok(touched)
}

/// Keeps entities no location emits any more, detached from their location and annotated
/// `annotation: "true"`; returns their keys.
async fn mark_orphans(
    tx: &mut PgConnection,
    ids: &[Uuid],
    annotation: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "update entity set location_id = null,
           processed = jsonb_set(processed, '{metadata,annotations}',
             coalesce(processed -> 'metadata' -> 'annotations', '{}') || jsonb_build_object($2::text, 'true')),
           content_hash = 'orphan', updated_at = now()
         where id = any($1) returning entity_key",
        ids,
        annotation,
    )
    .fetch_all(tx)
    .await
}

/// Applies the orphan policy to entities no location emits any more. Returns keys to re-stitch.
pub async fn orphan_entities(
    tx: &mut PgConnection,
    ids: &[Uuid],
    policy: OrphanPolicy,
) -> Result<Vec<String>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    match policy {
        OrphanPolicy::Delete => delete_entities(tx, ids).await,
        OrphanPolicy::Keep => mark_orphans(tx, ids, ANNOTATION_ORPHAN).await,
    }
}

/// Applies the orphan policy to every entity whose location is gone. Returns keys to re-stitch.
pub async fn sweep_orphans(
    tx: &mut PgConnection,
    policy: OrphanPolicy,
) -> Result<Vec<String>, sqlx::Error> {
    let orphans = list_unmarked_orphans(&mut *tx).await?;
    orphan_entities(tx, &orphans, policy).await
}
