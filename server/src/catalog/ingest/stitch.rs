//! Stitching: turning a processed entity into the final JSON the API serves.
//!
//! final = processed body + `metadata.uid` + `metadata.etag` + every relation whose source is this entity
//! (whichever entity's spec produced it) + `status.items` for its processing errors and, for a Location
//! entity, the errors of the location it points at. Alongside, the flattened `search` data.
//!
//! Work comes from `stitch_queue` (see `db::stitch`). A batch is taken with SKIP LOCKED, and the entity
//! rows are locked in key order, skipping rows another transaction holds (they go back on the queue), so
//! two stitchers never write the same entity from different snapshots and never wait on each other.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::catalog::db::stitch::{self as db, Facets, Stitched};
use crate::catalog::model::ProcessingError;
use crate::catalog::model::digest::{hex, sha256_hex};
use crate::catalog::search;

/// Stitches up to `limit` queued entities. Returns how many queue entries were consumed (0 = idle).
pub async fn stitch_batch(pool: &PgPool, limit: i64) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let taken = db::take_stitch_batch(&mut tx, limit).await?;
    if taken.is_empty() {
        return Ok(0);
    }
    let keys: Vec<String> = taken
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rows = db::lock_entities(&mut tx, &keys).await?;
    let row_keys: Vec<String> = rows.iter().map(|r| r.entity_key.clone()).collect();
    // Entities another stitcher (or a store) is writing go back on the queue: stitched again once it
    // committed, so that whatever our queue entries announced is read then.
    let busy = db::busy_keys(&mut tx, &keys, &row_keys).await?;
    // Entries put back are not consumed: a queue holding only busy keys reads as idle, so the
    // stitcher pauses instead of spinning until the other transaction ends.
    let requeued = busy.len();
    db::queue_stitch(&mut tx, busy).await?;
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(taken.len().saturating_sub(requeued));
    }
    // A popular entity (a group with thousands of members) is queued once per change that touches it.
    // With its row locked, every other queued entry for it is redundant: what they announce is committed
    // and will be read below. Only keys whose rows we hold: an entry for a key that had no row when we
    // looked may announce the row's creation since, and must stay. Entries another stitcher holds are
    // skipped, never waited for.
    let duplicates = db::drop_queued(&mut tx, &row_keys).await?;

    let mut relations: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for row in db::relations_from(&mut tx, &row_keys).await? {
        relations
            .entry(row.source_key)
            .or_default()
            .push((row.relation_type, row.target_ref));
    }
    let mut pointed_errors: HashMap<String, Vec<ProcessingError>> = HashMap::new();
    for row in db::location_errors_of(&mut tx, &row_keys).await? {
        pointed_errors
            .entry(row.declared_by)
            .or_default()
            .extend(row.errors.0);
    }

    let mut stitched = Stitched::default();
    let mut facets = Facets::default();
    for row in rows {
        let mut errors = row.errors.0;
        errors.extend(pointed_errors.remove(&row.entity_key).unwrap_or_default());
        let mut entity_relations = relations.remove(&row.entity_key).unwrap_or_default();
        entity_relations.sort();
        let (body, index) = stitch_entity(row.id, row.processed, &entity_relations, errors);
        let etag = body
            .get("metadata")
            .and_then(|m| m.get("etag"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if etag.is_some() && etag == row.etag {
            continue; // nothing visible changed: no write
        }
        // Relations change most while a catalog is ingested, and they are not facets: most re-stitches
        // leave the facet rows as they are.
        let stored_facets: Vec<(String, String)> = index
            .facets
            .into_iter()
            .filter(|(key, _)| search::facet_stored(key))
            .collect();
        let facet_hash = facet_hash(&stored_facets);
        if row.facet_hash.as_deref() != Some(facet_hash.as_str()) {
            facets.entities.push(row.id);
            for (key, value) in stored_facets {
                facets.ids.push(row.id);
                facets.kinds.push(row.kind.clone());
                facets.keys.push(key);
                facets.values.push(value);
            }
        }
        stitched.facet_hashes.push(facet_hash);
        stitched.ids.push(row.id);
        stitched.finals.push(body.to_string());
        stitched.etags.push(etag);
        stitched.searches.push(Value::Object(index.search));
        stitched.texts.push(index.text);
    }
    db::write_stitched(&mut tx, &stitched).await?;
    db::replace_facets(&mut tx, &facets).await?;
    tx.commit().await?;
    Ok((taken.len() + duplicates as usize).saturating_sub(requeued))
}

/// Identifies a set of facet rows (their order is deterministic: `search::build` walks the body in order).
fn facet_hash(facets: &[(String, String)]) -> String {
    let mut digest = Sha256::new();
    for (key, value) in facets {
        digest.update(key.as_bytes());
        digest.update([0]);
        digest.update(value.as_bytes());
        digest.update([0]);
    }
    hex(&digest.finalize()[..16])
}

/// Builds the final body and its search index. Pure, so it is unit-tested without a database.
pub fn stitch_entity(
    id: Uuid,
    processed: Value,
    relations: &[(String, String)],
    mut errors: Vec<ProcessingError>,
) -> (Value, search::SearchIndex) {
    let mut body = ordered_entity(processed);
    if let Some(Value::Object(metadata)) = body.get_mut("metadata") {
        metadata.insert("uid".to_owned(), Value::String(id.to_string()));
        metadata.remove("etag");
    }
    body.insert(
        "relations".to_owned(),
        Value::Array(
            relations
                .iter()
                .map(|(kind, target)| json!({"type": kind, "targetRef": target}))
                .collect(),
        ),
    );
    let mut value = Value::Object(body);
    let (index, clash) = search::build(&value);
    if let Some(clash) = clash {
        errors.push(ProcessingError::new("InputError", clash));
    }
    if let Value::Object(body) = &mut value {
        if !errors.is_empty() {
            let items: Vec<Value> = errors
                .iter()
                .map(|e| {
                    json!({
                        "type": "backstage.io/catalog-processing",
                        "level": "error",
                        "message": format!("{}: {}", e.name, e.message),
                        "error": {"name": e.name, "message": e.message},
                    })
                })
                .collect();
            body.insert("status".to_owned(), json!({ "items": items }));
        }
        let etag = sha256_hex(Value::Object(body.clone()).to_string().as_bytes());
        if let Some(Value::Object(metadata)) = body.get_mut("metadata") {
            metadata.insert("etag".to_owned(), Value::String(etag[..32].to_owned()));
        }
    }
    (value, index)
}

/// jsonb stores keys sorted by length; put them back in the order people write them.
fn ordered_entity(processed: Value) -> Map<String, Value> {
    const TOP: &[&str] = &["apiVersion", "kind", "metadata", "spec"];
    const METADATA: &[&str] = &[
        "namespace",
        "name",
        "title",
        "description",
        "labels",
        "annotations",
        "tags",
        "links",
    ];
    let Value::Object(mut map) = processed else {
        return Map::new();
    };
    if let Some(Value::Object(metadata)) = map.remove("metadata") {
        map.insert(
            "metadata".to_owned(),
            Value::Object(reorder(metadata, METADATA)),
        );
    }
    reorder(map, TOP)
}

fn reorder(mut map: Map<String, Value>, first: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for key in first {
        if let Some(value) = map.remove(*key) {
            out.insert((*key).to_owned(), value);
        }
    }
    let mut rest: Vec<(String, Value)> = map.into_iter().collect();
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_form_has_uid_etag_relations_and_status() {
        let id = Uuid::new_v4();
        let processed = json!({"spec": {"type": "service"}, "kind": "Component",
            "metadata": {"name": "a", "namespace": "default"}, "apiVersion": "backstage.io/v1alpha1"});
        let relations = vec![("ownedBy".to_owned(), "group:default/team".to_owned())];
        let (body, index) = stitch_entity(id, processed.clone(), &relations, vec![]);
        let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
        assert_eq!(
            keys,
            ["apiVersion", "kind", "metadata", "spec", "relations"]
        );
        assert_eq!(body["metadata"]["uid"], id.to_string());
        assert_eq!(body["relations"][0]["targetRef"], "group:default/team");
        assert!(body.get("status").is_none());
        assert_eq!(
            index.search["relations.ownedby"],
            json!(["group:default/team"])
        );

        let (again, _) = stitch_entity(id, processed.clone(), &relations, vec![]);
        assert_eq!(
            again["metadata"]["etag"], body["metadata"]["etag"],
            "etag is stable"
        );
        let errors = vec![ProcessingError::new("InputError", "bad")];
        let (failed, _) = stitch_entity(id, processed, &relations, errors);
        assert_ne!(failed["metadata"]["etag"], body["metadata"]["etag"]);
        assert_eq!(failed["status"]["items"][0]["error"]["name"], "InputError");
        assert_eq!(failed["status"]["items"][0]["level"], "error");
    }
}
