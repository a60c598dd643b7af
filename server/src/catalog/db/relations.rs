//! Relation rows: derived from the spec of the entity that originates them, both directions.

use sqlx::PgConnection;
use uuid::Uuid;

/// Relations to insert, one entry per relation.
#[derive(Debug, Default)]
pub struct NewRelations {
    pub origins: Vec<Uuid>,
    pub source_keys: Vec<String>,
    pub types: Vec<String>,
    pub target_keys: Vec<String>,
    pub target_refs: Vec<String>,
}

impl NewRelations {
    pub fn push(
        &mut self,
        origin: Uuid,
        source_key: String,
        relation_type: &str,
        target_key: String,
        target_ref: String,
    ) {
        self.origins.push(origin);
        self.source_keys.push(source_key);
        self.types.push(relation_type.to_owned());
        self.target_keys.push(target_key);
        self.target_refs.push(target_ref);
    }
}

/// The distinct source keys of the relations these entities originated.
pub async fn relation_sources_of(
    tx: &mut PgConnection,
    origins: &[Uuid],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "select distinct source_key from relation where originating_entity_id = any($1)",
        origins
    )
    .fetch_all(tx)
    .await
}

/// Replaces every relation `origins` originated with `relations`. Returns the source keys of every
/// relation removed or added: those entities' final forms change.
pub async fn replace_relations(
    tx: &mut PgConnection,
    origins: &[Uuid],
    relations: NewRelations,
) -> Result<Vec<String>, sqlx::Error> {
    let mut touched = sqlx::query_scalar!(
        "delete from relation where originating_entity_id = any($1) returning source_key",
        origins
    )
    .fetch_all(&mut *tx)
    .await?;
    touched.extend(relations.source_keys.iter().cloned());
    if !relations.origins.is_empty() {
        sqlx::query!(
            "insert into relation (originating_entity_id, source_key, type, target_key, target_ref)
             select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])",
            &relations.origins,
            &relations.source_keys,
            &relations.types,
            &relations.target_keys,
            &relations.target_refs,
        )
        .execute(tx)
        .await?;
    }
    Ok(touched)
}
