//! Writing one location's processing outcome, in one transaction.
//!
//! Only what changed is written: an entity whose body hash and errors are unchanged costs no write, so a
//! refresh of an unchanged catalog writes one row per location (its schedule). Everything whose visible
//! result may have changed — the entity itself, both ends of relations that appeared or disappeared, the
//! Location entity showing this location's errors — is put on `stitch_queue`.

use std::collections::{BTreeSet, HashMap, HashSet};

use sqlx::{PgConnection, PgPool};

use super::process::{EmittedEntity, ProcessOutput};
use crate::catalog::db::entities::{self, NewEntity, StoredEntityRow};
use crate::catalog::db::relations::{NewRelations, replace_relations};
use crate::catalog::db::stitch::queue_stitch;
use crate::catalog::db::{LocationJob, claims, locations};
use crate::catalog::model::ProcessingError;
use crate::config::OrphanPolicy;
use crate::git::cache::Snapshot;
use crate::git::{GitFile, GitRepo};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    pub entities_written: usize,
    pub entities_orphaned: usize,
    pub conflicts: usize,
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
    let Some(previous) = claims::lock_claimed_location(&mut tx, job.id, job.claim_token).await?
    else {
        return Ok(stats);
    };

    let existing = entities::list_entities_of_location(&mut tx, job.id).await?;
    let existing_by_key: HashMap<&str, &StoredEntityRow> = existing
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
    let taken: HashMap<String, String> =
        entities::list_owners_elsewhere(&mut tx, &new_keys, job.id)
            .await?
            .into_iter()
            .map(|owner| {
                (
                    owner.entity_key,
                    format!("{}:{}", owner.location_type, owner.target),
                )
            })
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
        let rows: Vec<NewEntity<'_>> = changed.iter().map(|e| new_entity(job, e)).collect();
        let written = entities::upsert_entities(&mut tx, job.id, &rows).await?;
        let written_keys: HashSet<&str> = written.iter().map(|w| w.entity_key.as_str()).collect();
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
        let mut relations = NewRelations::default();
        for row in &written {
            let Some(entity) = by_key.get(row.entity_key.as_str()) else {
                continue;
            };
            for relation in &entity.relations {
                relations.push(
                    row.id,
                    relation.source.key(),
                    relation.relation_type,
                    relation.target.key(),
                    relation.target.to_string(),
                );
            }
        }
        let ids: Vec<_> = written.iter().map(|w| w.id).collect();
        stitch.extend(replace_relations(&mut tx, &ids, relations).await?);
        stitch.extend(written.into_iter().map(|w| w.entity_key));
    }

    // Rejected documents: the entity stored from here keeps its last good body and shows the errors.
    let mut still_present: HashSet<String> =
        output.entities.iter().map(|e| e.key.clone()).collect();
    for (key, errors) in &output.rejected {
        match existing_by_key.get(key.as_str()) {
            Some(old) => {
                still_present.insert(key.clone());
                if old.errors.0 != *errors {
                    entities::update_entity_errors(&mut tx, old.id, errors).await?;
                    stitch.insert(key.clone());
                }
            }
            None => output.location_errors.extend(errors.iter().cloned()),
        }
    }

    if !output.read_failed {
        let gone: Vec<_> = existing
            .iter()
            .filter(|e| !still_present.contains(&e.entity_key))
            .map(|e| e.id)
            .collect();
        stats.entities_orphaned += gone.len();
        stitch.extend(entities::orphan_entities(&mut tx, &gone, orphan_policy).await?);
        let removed_children = sync_child_locations(&mut tx, job, &output.entities).await?;
        if removed_children > 0 {
            stitch.extend(entities::sweep_orphans(&mut tx, orphan_policy).await?);
        }
        if let Some(snapshot) = &output.git_snapshot {
            schedule_changed_files(&mut tx, job, snapshot, previous.source_version.as_deref())
                .await?;
        }
    }

    if output.location_errors != previous.errors.0 {
        stitch.insert(job.declared_by.clone());
    }
    // A file in a repository is read again when its repository says it changed, not on a timer; after
    // a failed read it is retried on the timer like any location.
    let driven_by_repository = job.location_type == "git-file" && !output.read_failed;
    claims::finish_location(
        &mut tx,
        job.id,
        &output.location_errors,
        refresh_interval_seconds,
        driven_by_repository,
    )
    .await?;
    queue_stitch(&mut tx, stitch.into_iter().collect()).await?;
    tx.commit().await?;
    Ok(stats)
}

/// The row of an entity read at `job`'s location.
fn new_entity<'a>(job: &LocationJob, entity: &'a EmittedEntity) -> NewEntity<'a> {
    let spec_field = |field: &str| {
        entity.processed["spec"][field]
            .as_str()
            .map(str::to_lowercase)
    };
    NewEntity {
        key: &entity.key,
        kind: entity.entity_ref.kind.to_lowercase(),
        namespace: entity.entity_ref.namespace.to_lowercase(),
        name: entity.entity_ref.name.to_lowercase(),
        spec_type: spec_field("type"),
        lifecycle: spec_field("lifecycle"),
        owner: spec_field("owner"),
        // The generated Location entity of a registered location is the root of its tree.
        parent_key: (entity.key != job.declared_by).then(|| job.declared_by.clone()),
        processed: &entity.processed,
        content_hash: &entity.content_hash,
        errors: &entity.errors,
    }
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
    let current = locations::list_children(&mut *tx, job.id).await?;
    let is_current = |(t, target, by): &(String, String, String)| {
        current
            .iter()
            .any(|c| c.location_type == *t && c.target == *target && c.declared_by == *by)
    };
    let stale: Vec<_> = current
        .iter()
        .filter(|c| {
            !wanted.contains(&(
                c.location_type.clone(),
                c.target.clone(),
                c.declared_by.clone(),
            ))
        })
        .map(|c| c.id)
        .collect();
    let mut removed = 0;
    if !stale.is_empty() {
        removed = locations::delete_locations(&mut *tx, &stale).await?;
    }
    let missing: Vec<locations::NewChild<'_>> = wanted
        .iter()
        .filter(|item| !is_current(item))
        .map(|(location_type, target, declared_by)| locations::NewChild {
            location_type,
            target,
            declared_by,
        })
        .collect();
    locations::insert_children(tx, job.id, job.root_id, &missing).await?;
    Ok(removed)
}

/// After a repository was fetched: makes due every catalog file whose directory changed since it was
/// last read (new files have no version yet, so they are due too), and, when the commit moved, the files
/// declared by Location entities inside the repository.
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
    let versions: Vec<String> = snapshot.files.iter().map(|(_, v)| v.clone()).collect();
    locations::make_changed_files_due(&mut *tx, job.id, &targets, &versions).await?;
    if previous_commit != Some(snapshot.commit.as_str()) {
        locations::record_repository_commit(tx, job.id, &snapshot.commit).await?;
    }
    Ok(())
}
