//! Writing one location's processing outcome, in one transaction.
//!
//! Only what changed is written: an entity whose body hash and errors are unchanged costs no write, so a
//! refresh of an unchanged catalog writes one row per location (its schedule). Everything whose visible
//! result may have changed — the entity itself, both ends of relations that appeared or disappeared, the
//! Location entity showing this location's errors — is put on `stitch_queue`.

use std::collections::{BTreeSet, HashMap, HashSet};

use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::process::{
    ANNOTATION_ORPHAN, EmittedEntity, LocationJob, ProcessOutput, ProcessingError,
};
use crate::catalog::git::cache::Snapshot;
use crate::catalog::git::{GitFile, GitRepo};
use crate::config::OrphanPolicy;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    pub entities_written: usize,
    pub entities_orphaned: usize,
    pub conflicts: usize,
}

#[derive(sqlx::FromRow)]
struct ExistingEntity {
    id: Uuid,
    entity_key: String,
    content_hash: String,
    errors: Json<Vec<ProcessingError>>,
}

pub async fn store_output(
    pool: &PgPool,
    job: &LocationJob,
    mut output: ProcessOutput,
    orphan_policy: OrphanPolicy,
    refresh_interval_seconds: f64,
) -> Result<StoreStats, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut stats = StoreStats::default();
    // The location may have been deleted while we read it, or our lease may have run out and another
    // worker claimed it since (the token changed): then this result is stale and nothing is stored.
    let previous: Option<(Json<Vec<ProcessingError>>, Option<String>)> = sqlx::query_as(
        "select errors, source_version from location
         where id = $1 and claim_token is not distinct from $2 for update",
    )
    .bind(job.id)
    .bind(job.claim_token)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((Json(previous_errors), previous_version)) = previous else {
        return Ok(stats);
    };

    let existing: Vec<ExistingEntity> = sqlx::query_as(
        "select id, entity_key, content_hash, errors from entity where location_id = $1 order by entity_key",
    )
    .bind(job.id)
    .fetch_all(&mut *tx)
    .await?;
    let existing_by_key: HashMap<&str, &ExistingEntity> = existing
        .iter()
        .map(|e| (e.entity_key.as_str(), e))
        .collect();

    let mut stitch: BTreeSet<String> = BTreeSet::new();

    // Entities new to this location must not take over a ref another live location provides.
    let new_keys: Vec<String> = output
        .entities
        .iter()
        .filter(|e| !existing_by_key.contains_key(e.key.as_str()))
        .map(|e| e.key.clone())
        .collect();
    let owners: Vec<(String, String, String)> = sqlx::query_as(
        "select e.entity_key, l.type, l.target from entity e join location l on l.id = e.location_id
         where e.entity_key = any($1) and e.location_id <> $2",
    )
    .bind(&new_keys)
    .bind(job.id)
    .fetch_all(&mut *tx)
    .await?;
    let taken: HashMap<String, String> = owners
        .into_iter()
        .map(|(key, t, target)| (key, format!("{t}:{target}")))
        .collect();
    output
        .entities
        .retain(|entity| match taken.get(&entity.key) {
            Some(owner) => {
                stats.conflicts += 1;
                output
                    .location_errors
                    .push(conflict_error(&entity.key, owner, job));
                false
            }
            None => true,
        });

    let changed: Vec<&EmittedEntity> = output
        .entities
        .iter()
        .filter(|e| match existing_by_key.get(e.key.as_str()) {
            Some(old) => old.content_hash != e.content_hash || old.errors.0 != e.errors,
            None => true,
        })
        .collect();
    if !changed.is_empty() {
        let written = upsert_entities(&mut tx, job, &changed).await?;
        let written_keys: HashSet<&str> = written.iter().map(|(_, k)| k.as_str()).collect();
        for entity in &changed {
            if !written_keys.contains(entity.key.as_str()) {
                // Another location inserted the same ref between our check and our write.
                stats.conflicts += 1;
                output
                    .location_errors
                    .push(conflict_error(&entity.key, "another location", job));
            }
        }
        stats.entities_written = written.len();
        let by_key: HashMap<&str, &&EmittedEntity> =
            changed.iter().map(|e| (e.key.as_str(), e)).collect();
        let ids: Vec<Uuid> = written.iter().map(|(id, _)| *id).collect();
        stitch.extend(replace_relations(&mut tx, &written, &by_key, &ids).await?);
        stitch.extend(written.into_iter().map(|(_, key)| key));
    }

    // Rejected documents: the entity stored from here keeps its last good body and shows the errors.
    let mut still_present: HashSet<String> =
        output.entities.iter().map(|e| e.key.clone()).collect();
    for (key, errors) in &output.rejected {
        match existing_by_key.get(key.as_str()) {
            Some(old) => {
                still_present.insert(key.clone());
                if old.errors.0 != *errors {
                    sqlx::query("update entity set errors = $2, updated_at = now() where id = $1")
                        .bind(old.id)
                        .bind(Json(errors))
                        .execute(&mut *tx)
                        .await?;
                    stitch.insert(key.clone());
                }
            }
            None => output.location_errors.extend(errors.iter().cloned()),
        }
    }

    if !output.read_failed {
        let gone: Vec<Uuid> = existing
            .iter()
            .filter(|e| !still_present.contains(&e.entity_key))
            .map(|e| e.id)
            .collect();
        stats.entities_orphaned += gone.len();
        stitch.extend(orphan_entities(&mut tx, &gone, orphan_policy).await?);
        let removed_children = sync_child_locations(&mut tx, job, &output.entities).await?;
        if removed_children > 0 {
            stitch.extend(sweep_orphans(&mut tx, orphan_policy).await?);
        }
        if let Some(snapshot) = &output.git_snapshot {
            schedule_changed_files(&mut tx, job, snapshot, previous_version.as_deref()).await?;
        }
    }

    if output.location_errors != previous_errors {
        stitch.insert(job.declared_by.clone());
    }
    // A file in a repository is read again when its repository says it changed, not on a timer; after
    // a failed read it is retried on the timer like any location.
    let driven_by_repository = job.location_type == "git-file" && !output.read_failed;
    sqlx::query(
        "update location set errors = $2, last_refreshed_at = now(), claim_token = null,
         next_refresh_at = case when $4 then 'infinity' else now() + make_interval(secs => $3) end
         where id = $1",
    )
    .bind(job.id)
    .bind(Json(&output.location_errors))
    .bind(refresh_interval_seconds)
    .bind(driven_by_repository)
    .execute(&mut *tx)
    .await?;
    queue_stitch(&mut tx, stitch.into_iter().collect()).await?;
    tx.commit().await?;
    Ok(stats)
}

fn conflict_error(key: &str, owner: &str, job: &LocationJob) -> ProcessingError {
    ProcessingError::new(
        "ConflictError",
        format!(
            "entity {key} from {}:{} conflicts with the same entity already provided by {owner}; the existing one is kept",
            job.location_type, job.target
        ),
    )
}

/// Inserts or updates entities; returns (id, key) of each row written. A row owned by another location
/// is left alone (the `where` of the upsert), which is how a racing conflict shows up.
async fn upsert_entities(
    tx: &mut PgConnection,
    job: &LocationJob,
    entities: &[&EmittedEntity],
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let mut ids = Vec::with_capacity(entities.len());
    let mut keys = Vec::with_capacity(entities.len());
    let mut kinds = Vec::with_capacity(entities.len());
    let mut namespaces = Vec::with_capacity(entities.len());
    let mut names = Vec::with_capacity(entities.len());
    let mut spec_types: Vec<Option<String>> = Vec::with_capacity(entities.len());
    let mut lifecycles: Vec<Option<String>> = Vec::with_capacity(entities.len());
    let mut owners: Vec<Option<String>> = Vec::with_capacity(entities.len());
    let mut parents: Vec<Option<String>> = Vec::with_capacity(entities.len());
    let mut bodies = Vec::with_capacity(entities.len());
    let mut hashes = Vec::with_capacity(entities.len());
    let mut errors = Vec::with_capacity(entities.len());
    for entity in entities {
        ids.push(Uuid::new_v4());
        keys.push(entity.key.clone());
        kinds.push(entity.entity_ref.kind.to_lowercase());
        namespaces.push(entity.entity_ref.namespace.to_lowercase());
        names.push(entity.entity_ref.name.to_lowercase());
        let spec_field = |field: &str| {
            entity.processed["spec"][field]
                .as_str()
                .map(str::to_lowercase)
        };
        spec_types.push(spec_field("type"));
        lifecycles.push(spec_field("lifecycle"));
        owners.push(spec_field("owner"));
        // The generated Location entity of a registered location is the root of its tree.
        parents.push((entity.key != job.declared_by).then(|| job.declared_by.clone()));
        bodies.push(Json(entity.processed.clone()));
        hashes.push(entity.content_hash.clone());
        errors.push(Json(entity.errors.clone()));
    }
    sqlx::query_as(
        "insert into entity (id, entity_key, kind, namespace, name, location_id, parent_key, processed, content_hash,
                             errors, spec_type, lifecycle, owner)
         select u.id, u.key, u.kind, u.namespace, u.name, $10, u.parent, u.body, u.hash, u.errors,
                u.spec_type, u.lifecycle, u.owner
         from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::text[],
                     $9::jsonb[], $11::text[], $12::text[], $13::text[])
           as u(id, key, kind, namespace, name, parent, body, hash, errors, spec_type, lifecycle, owner)
         order by u.key
         on conflict (entity_key) do update set
           location_id = excluded.location_id, parent_key = excluded.parent_key, processed = excluded.processed,
           content_hash = excluded.content_hash, errors = excluded.errors, spec_type = excluded.spec_type,
           lifecycle = excluded.lifecycle, owner = excluded.owner, updated_at = now()
         where entity.location_id = excluded.location_id or entity.location_id is null
         returning id, entity_key",
    )
    .bind(ids)
    .bind(keys)
    .bind(kinds)
    .bind(namespaces)
    .bind(names)
    .bind(parents)
    .bind(bodies)
    .bind(hashes)
    .bind(errors)
    .bind(job.id)
    .bind(spec_types)
    .bind(lifecycles)
    .bind(owners)
    .fetch_all(tx)
    .await
}

/// Replaces the relations originating from the written entities. Returns the source keys of every
/// relation removed or added: those entities' final forms change.
async fn replace_relations(
    tx: &mut PgConnection,
    written: &[(Uuid, String)],
    by_key: &HashMap<&str, &&EmittedEntity>,
    ids: &[Uuid],
) -> Result<Vec<String>, sqlx::Error> {
    let mut touched: Vec<String> = sqlx::query_scalar(
        "delete from relation where originating_entity_id = any($1) returning source_key",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut origins = Vec::new();
    let mut sources = Vec::new();
    let mut types = Vec::new();
    let mut target_keys = Vec::new();
    let mut target_refs = Vec::new();
    for (id, key) in written {
        let Some(entity) = by_key.get(key.as_str()) else {
            continue;
        };
        for relation in &entity.relations {
            origins.push(*id);
            sources.push(relation.source.key());
            types.push(relation.relation_type.to_owned());
            target_keys.push(relation.target.key());
            target_refs.push(relation.target.to_string());
        }
    }
    touched.extend(sources.iter().cloned());
    if !origins.is_empty() {
        sqlx::query(
            "insert into relation (originating_entity_id, source_key, type, target_key, target_ref)
             select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])",
        )
        .bind(origins)
        .bind(sources)
        .bind(types)
        .bind(target_keys)
        .bind(target_refs)
        .execute(&mut *tx)
        .await?;
    }
    Ok(touched)
}

/// Applies the orphan policy to every entity whose location is gone (deleted location trees set
/// `location_id` to null). Returns keys to re-stitch.
pub async fn sweep_orphans(
    tx: &mut PgConnection,
    policy: OrphanPolicy,
) -> Result<Vec<String>, sqlx::Error> {
    let orphans: Vec<Uuid> = sqlx::query_scalar(
        "select id from entity where location_id is null
         and processed -> 'metadata' -> 'annotations' ->> 'backstage.io/orphan' is null",
    )
    .fetch_all(&mut *tx)
    .await?;
    orphan_entities(tx, &orphans, policy).await
}

/// Applies the orphan policy to entities no location emits any more. Returns keys to re-stitch.
async fn orphan_entities(
    tx: &mut PgConnection,
    ids: &[Uuid],
    policy: OrphanPolicy,
) -> Result<Vec<String>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    match policy {
        OrphanPolicy::Delete => {
            // Relations these entities originated vanish with them (cascade); their other ends re-stitch.
            let mut touched: Vec<String> = sqlx::query_scalar(
                "select distinct source_key from relation where originating_entity_id = any($1)",
            )
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
            let deleted: Vec<String> =
                sqlx::query_scalar("delete from entity where id = any($1) returning entity_key")
                    .bind(ids)
                    .fetch_all(&mut *tx)
                    .await?;
            let deleted: HashSet<String> = deleted.into_iter().collect();
            touched.retain(|k| !deleted.contains(k));
            Ok(touched)
        }
        OrphanPolicy::Keep => sqlx::query_scalar(
            "update entity set location_id = null,
               processed = jsonb_set(processed, '{metadata,annotations}',
                 coalesce(processed -> 'metadata' -> 'annotations', '{}') || jsonb_build_object($2::text, 'true')),
               content_hash = 'orphan', updated_at = now()
             where id = any($1) returning entity_key",
        )
        .bind(ids)
        .bind(ANNOTATION_ORPHAN)
        .fetch_all(&mut *tx)
        .await,
    }
}

/// Makes the child locations of `job` match the Location entities it emitted. Returns how many were
/// removed (their entities are now orphans).
async fn sync_child_locations(
    tx: &mut PgConnection,
    job: &LocationJob,
    entities: &[EmittedEntity],
) -> Result<u64, sqlx::Error> {
    let mut wanted: Vec<(String, String, String)> = Vec::new();
    for entity in entities {
        for target in &entity.child_locations {
            let item = (
                target.location_type().to_owned(),
                target.target_string(),
                entity.key.clone(),
            );
            if !wanted.contains(&item) {
                wanted.push(item);
            }
        }
    }
    let current: Vec<(Uuid, String, String, String)> =
        sqlx::query_as("select id, type, target, declared_by from location where parent_id = $1")
            .bind(job.id)
            .fetch_all(&mut *tx)
            .await?;
    let stale: Vec<Uuid> = current
        .iter()
        .filter(|(_, t, target, by)| !wanted.contains(&(t.clone(), target.clone(), by.clone())))
        .map(|(id, ..)| *id)
        .collect();
    let mut removed = 0;
    if !stale.is_empty() {
        removed = sqlx::query("delete from location where id = any($1)")
            .bind(&stale)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    let missing: Vec<&(String, String, String)> = wanted
        .iter()
        .filter(|(t, target, by)| {
            !current
                .iter()
                .any(|(_, ct, ctarget, cby)| ct == t && ctarget == target && cby == by)
        })
        .collect();
    if !missing.is_empty() {
        let ids: Vec<Uuid> = missing.iter().map(|_| Uuid::new_v4()).collect();
        let types: Vec<&str> = missing.iter().map(|m| m.0.as_str()).collect();
        let targets: Vec<&str> = missing.iter().map(|m| m.1.as_str()).collect();
        let declared: Vec<&str> = missing.iter().map(|m| m.2.as_str()).collect();
        sqlx::query(
            "insert into location (id, type, target, parent_id, root_id, declared_by, origin)
             select u.id, u.type, u.target, $5, $6, u.declared_by, 'entity'
             from unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) as u(id, type, target, declared_by)",
        )
        .bind(ids)
        .bind(types)
        .bind(targets)
        .bind(declared)
        .bind(job.id)
        .bind(job.root_id)
        .execute(&mut *tx)
        .await?;
    }
    Ok(removed)
}

/// After a repository was fetched: records the commit, and makes due every catalog file whose directory
/// changed since it was last read (new files have no version yet, so they are due too). Files declared
/// by Location entities inside the repository are re-read whenever the commit changed. Making a file due
/// also revokes any claim on it: a worker still reading the old commit must not store over the new one.
async fn schedule_changed_files(
    tx: &mut PgConnection,
    job: &LocationJob,
    snapshot: &Snapshot,
    previous_commit: Option<&str>,
) -> Result<(), sqlx::Error> {
    // The job's target parsed when it was processed; failing here would mean it changed meanwhile.
    let Ok(repo) = GitRepo::parse(&job.target) else {
        return Ok(());
    };
    let targets: Vec<String> = snapshot
        .files
        .iter()
        .map(|(path, _)| {
            GitFile {
                repo: repo.clone(),
                path: path.clone(),
                commit: None,
            }
            .target_string()
        })
        .collect();
    let versions: Vec<&str> = snapshot.files.iter().map(|(_, v)| v.as_str()).collect();
    sqlx::query(
        "update location l set source_version = u.version, next_refresh_at = now(), claim_token = null
         from unnest($2::text[], $3::text[]) as u(target, version)
         where l.parent_id = $1 and l.type = 'git-file' and l.target = u.target
           and l.source_version is distinct from u.version",
    )
    .bind(job.id)
    .bind(&targets)
    .bind(&versions)
    .execute(&mut *tx)
    .await?;
    if previous_commit != Some(snapshot.commit.as_str()) {
        sqlx::query(
            "update location set next_refresh_at = now(), claim_token = null
             where root_id = $1 and parent_id <> $1 and type = 'git-file'",
        )
        .bind(job.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("update location set source_version = $2 where id = $1")
            .bind(job.id)
            .bind(&snapshot.commit)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

pub async fn queue_stitch(tx: &mut PgConnection, keys: Vec<String>) -> Result<(), sqlx::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query("insert into stitch_queue (entity_key) select unnest($1::text[])")
        .bind(keys)
        .execute(tx)
        .await?;
    Ok(())
}
