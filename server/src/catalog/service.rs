//! The catalog's operations, for the API, the pages, start-up and the tests: registering and
//! unregistering locations, refresh requests, dry runs, the background workers.
//!
//! Changes a caller asks for (registering or removing a location, deleting an entity) write their
//! audit event in the transaction of the change: a change that fails or rolls back leaves none, and no
//! change is stored without its event. Locations from the config are not audited: the config file,
//! reviewed and deployed, is their record, and every replica applies it at every start.

use std::sync::Arc;

use serde_json::json;
use sqlx::PgPool;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use super::access;
use super::answers::Answers;
use super::db::{self, LocationJob, LocationRow, locations};
use super::filter::Filter;
use super::generation_watch::GenerationWatch;
use super::ingest;
use super::kept_bodies::KeptBodies;
use super::list_answers::ListAnswers;
use super::model::processing::ProcessingError;
use super::source::{ReadError, Reader, Target, generated_location_key};
use crate::auth::Caller;
use crate::auth::policy::Target as PolicyTarget;
use crate::auth::service::{audit, audit_refusal};
use crate::config::{Config, redact_url};
use crate::error::{AppError, ResultExt};
use crate::git::webhook::PushEvent;
use crate::git::{GitRepo, remote_key};

/// A budget given in megabytes (`catalog.*_cache_megabytes`), in bytes.
fn bytes_of_megabytes(megabytes: usize) -> usize {
    megabytes.saturating_mul(1024 * 1024)
}

/// Catalog operations shared by the API, the pages, the start-up code and the tests.
#[derive(Clone)]
pub struct CatalogService {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub reader: Reader,
    /// Counts and facet counts of the current catalog generation.
    pub answers: Arc<Answers>,
    /// Bodies of unpaginated lists of the current catalog generation.
    pub lists: Arc<ListAnswers>,
    /// Entities by key (`by-name`) of the current catalog generation.
    pub entities: Arc<KeptBodies<String>>,
    /// The current catalog generation, which every kept answer is checked against.
    pub generation: Arc<GenerationWatch>,
    wake: Arc<Notify>,
}

impl CatalogService {
    pub fn new(db: PgPool, config: Arc<Config>) -> anyhow::Result<Self> {
        let reader = Reader::new(&config.catalog)?;
        let generation = Arc::new(GenerationWatch::new(db.clone()));
        Ok(Self {
            answers: Arc::new(Answers::new(
                config.catalog.answer_cache_entries,
                generation.clone(),
            )),
            entities: Arc::new(KeptBodies::new(bytes_of_megabytes(
                config.catalog.entity_cache_megabytes,
            ))),
            generation,
            lists: Arc::new(ListAnswers::new(bytes_of_megabytes(
                config.catalog.list_cache_megabytes,
            ))),
            db,
            config,
            reader,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Wakes this replica's workers (new location, refresh request).
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// Makes the config's locations registered (origin `config`), and unregisters config locations that
    /// were removed from the config. Safe to run on every replica at every start.
    pub async fn sync_configured_locations(&self) -> anyhow::Result<()> {
        let mut wanted = Vec::new();
        for location in &self.config.catalog.locations {
            let target = self
                .reader
                .resolve(&location.location_type, &location.target)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "catalog.locations entry {}:{}: {e}",
                        location.location_type,
                        location.target
                    )
                })?;
            wanted.push(target);
        }
        let repositories = self
            .config
            .catalog
            .git
            .configured_repositories()
            .map_err(|e| anyhow::anyhow!(e))?;
        for repo in repositories {
            let target = self
                .reader
                .resolve("git", &repo.target_string())
                .map_err(|e| anyhow::anyhow!("catalog.git.repositories: {e}"))?;
            wanted.push(target);
        }
        let mut tx = self.db.begin().await?;
        // Serialise concurrent start-ups of several replicas.
        locations::lock_config_sync(&mut tx).await?;
        for row in locations::list_locations_of_origin(&mut *tx, "config").await? {
            if !wanted
                .iter()
                .any(|t| t.location_type() == row.location_type && t.target_string() == row.target)
            {
                tracing::info!(target = %row.target, "unregistering location removed from the config");
                self.delete_location_in(&mut tx, row.id).await?;
            }
        }
        for target in wanted {
            let target_string = target.target_string();
            let declared_by = generated_location_key(&target);
            locations::ensure_location(
                &mut *tx,
                &locations::NewLocation {
                    location_type: target.location_type(),
                    target: &target_string,
                    declared_by: &declared_by,
                    origin: "config",
                },
            )
            .await?;
        }
        tx.commit().await?;
        self.wake();
        Ok(())
    }

    /// Registers a location for `caller` (the API, the register page), audited as `location.add` (a
    /// password in a URL target is masked in the event). A second registration of the same target is
    /// a conflict.
    pub async fn register_location(
        &self,
        caller: &Caller,
        location_type: &str,
        target: &str,
    ) -> Result<LocationRow, AppError> {
        let target = match self.resolve_for_api(location_type, target) {
            Ok(resolved) => resolved,
            // Outside the file roots or the URL allowlist: a refusal, recorded as one.
            Err(refused @ AppError::NotAllowed(_)) => {
                let shown = if location_type == "url" {
                    redact_url(target)
                } else {
                    target.to_owned()
                };
                let detail = json!({"type": location_type, "target": shown, "reason": refused.public_message()});
                if let Err(error) = audit(
                    &self.db,
                    caller,
                    "location.add",
                    "location",
                    "denied",
                    detail,
                )
                .await
                {
                    tracing::error!(%error, "could not write an audit event");
                }
                return Err(refused);
            }
            Err(other) => return Err(other),
        };
        self.permit(caller, "catalog.location.create", &PolicyTarget::default())
            .await?;
        let target_string = target.target_string();
        let declared_by = generated_location_key(&target);
        let mut tx = self.db.begin().await?;
        let row = locations::insert_location(
            &mut *tx,
            &locations::NewLocation {
                location_type: target.location_type(),
                target: &target_string,
                declared_by: &declared_by,
                origin: "api",
            },
        )
        .await
        .on_unique_violation(locations::UNIQUE_REGISTERED_LOCATION, "target", || {
            format!("Location {} already exists", target.location_ref())
        })?;
        audit(
            &mut *tx,
            caller,
            "location.add",
            &format!("location:{}", row.id),
            "success",
            json!({"type": row.location_type, "target": audited_target(&row)}),
        )
        .await?;
        tx.commit().await?;
        self.wake();
        Ok(row)
    }

    /// Registers a location as Atrium itself (audited with the actor `system`): for tests and tools
    /// that act for nobody in particular.
    pub async fn add_location(
        &self,
        location_type: &str,
        target: &str,
    ) -> Result<LocationRow, AppError> {
        self.register_location(&Caller::system(), location_type, target)
            .await
    }

    /// Checks a location the API was asked to register (or dry-run, or analyze).
    pub fn resolve_for_api(&self, location_type: &str, target: &str) -> Result<Target, AppError> {
        // The types a registration may have. As in Backstage, another type is bad input (400), not a
        // refusal.
        const REGISTRABLE: [&str; 3] = ["file", "url", "git"];
        if !REGISTRABLE.contains(&location_type) {
            return Err(AppError::input(format!(
                "Registered locations must be of an allowed type {}",
                serde_json::json!(REGISTRABLE)
            )));
        }
        self.reader
            .resolve(location_type, target)
            .map_err(|e| match e {
                ReadError::NotAllowed(m) => AppError::NotAllowed(m),
                other => AppError::input(other.to_string()),
            })
    }

    /// Unregisters a location for `caller`, audited as `location.remove`.
    pub async fn delete_location(&self, caller: &Caller, id: Uuid) -> Result<(), AppError> {
        let not_found = || AppError::not_found(format!("Found no location with ID {id}"));
        self.permit(caller, "catalog.location.delete", &PolicyTarget::default())
            .await?;
        let mut tx = self.db.begin().await?;
        let row = locations::get_location(&mut *tx, id)
            .await?
            .ok_or_else(not_found)?;
        if !self.delete_location_in(&mut tx, id).await? {
            return Err(not_found());
        }
        audit(
            &mut *tx,
            caller,
            "location.remove",
            &format!("location:{id}"),
            "success",
            json!({"type": row.location_type, "target": audited_target(&row)}),
        )
        .await?;
        tx.commit().await?;
        self.generation.catch_up().await;
        self.wake();
        Ok(())
    }

    /// Deletes a registered location and its tree; its entities become orphans and the policy applies.
    async fn delete_location_in(
        &self,
        tx: &mut sqlx::PgConnection,
        id: Uuid,
    ) -> Result<bool, sqlx::Error> {
        if !locations::delete_location(&mut *tx, id).await? {
            return Ok(false);
        }
        let touched =
            db::entities::sweep_orphans(&mut *tx, self.config.catalog.orphan_policy).await?;
        db::stitch::queue_stitch(tx, touched).await?;
        Ok(true)
    }

    /// Deletes an entity by uid for `caller` (it comes back at its location's next refresh if still
    /// there), audited as `entity.delete` with the entity's ref. Deleting a uid that does not exist
    /// succeeds, and records nothing: the outcome the caller wanted holds and nothing changed.
    pub async fn delete_entity(&self, caller: &Caller, uid: Uuid) -> Result<(), AppError> {
        if let Some(body) = db::entities::get_final_by_uid(&self.db, uid).await? {
            let entity = parse_stored(&body)?;
            // One the caller may not see is, to them, one that does not exist.
            if !self.may_read(caller, &entity) {
                return Ok(());
            }
            self.permit(
                caller,
                "catalog.entity.delete",
                &PolicyTarget::entity(&entity),
            )
            .await?;
        }
        let mut tx = self.db.begin().await?;
        if let Some(entity_ref) = db::entities::delete_entity(&mut tx, uid).await? {
            audit(
                &mut *tx,
                caller,
                "entity.delete",
                &entity_ref,
                "success",
                json!({"uid": uid}),
            )
            .await?;
        }
        tx.commit().await?;
        self.generation.catch_up().await;
        self.wake();
        Ok(())
    }

    /// Makes the location that provides `entity_key` due now. A Location entity also refreshes the
    /// locations it points at; a file in a git repository also fetches its repository.
    pub async fn refresh_entity(&self, caller: &Caller, entity_key: &str) -> Result<(), AppError> {
        let not_found = || AppError::not_found(format!("No entity named '{entity_key}' found"));
        if let Some(entity) = self.entity(entity_key).await? {
            if !self.may_read(caller, &entity) {
                return Err(not_found());
            }
            self.permit(
                caller,
                "catalog.entity.refresh",
                &PolicyTarget::entity(&entity),
            )
            .await?;
        }
        let Some(location_id) = db::entities::get_entity_location(&self.db, entity_key).await?
        else {
            return Err(AppError::not_found(format!(
                "No entity named '{entity_key}' found"
            )));
        };
        // An orphan has no location of its own; the locations it declared may still exist.
        locations::make_due_for_entity(&self.db, location_id, entity_key).await?;
        self.wake();
        Ok(())
    }

    /// Makes every registered repository a push concerns due now, revoking claims in progress (a fetch
    /// that started before the push must not be the last word). Returns the targets refreshed.
    pub async fn refresh_pushed(&self, push: &PushEvent) -> Result<Vec<String>, AppError> {
        let pushed_branch = match push.git_ref.as_deref() {
            Some(git_ref) => match git_ref.strip_prefix("refs/heads/") {
                Some(branch) => Some(branch),
                None => return Ok(Vec::new()), // a tag or another ref: no branch we follow moved
            },
            None => None,
        };
        let keys = push.repository_keys();
        let mut ids = Vec::new();
        let mut targets = Vec::new();
        for location in locations::list_git_locations(&self.db).await? {
            let Ok(repo) = GitRepo::parse(&location.target) else {
                continue;
            };
            if !keys.contains(&remote_key(&repo.remote)) {
                continue;
            }
            // When the event leaves the branch out, refresh rather than miss a push.
            let concerned = match (&repo.branch, pushed_branch) {
                (Some(followed), Some(pushed)) => followed == pushed,
                (None, Some(_)) if push.default_branch.is_some() => push.is_default_branch(),
                _ => true,
            };
            if concerned {
                ids.push(location.id);
                targets.push(location.target);
            }
        }
        if !ids.is_empty() {
            locations::make_due(&self.db, &ids).await?;
            self.wake();
        }
        Ok(targets)
    }

    /// Processes and stitches until nothing is due, without background workers: deterministic, for
    /// tests. With several replicas it returns when this one finds nothing more to claim.
    pub async fn process_until_idle(&self) -> anyhow::Result<()> {
        loop {
            let round =
                ingest::process_due_locations(&self.db, &self.reader, &self.config.catalog).await?;
            let stitched = ingest::stitch_pending(&self.db, || true).await?;
            if round.locations == 0 && stitched == 0 {
                // What this process stored shows in its next request (see `generation_watch`).
                self.generation.catch_up().await;
                return Ok(());
            }
        }
    }

    /// Starts the background workers; they stop when `shutdown` turns true.
    pub fn spawn_workers(&self, shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(ingest::run_workers(
            self.db.clone(),
            self.reader.clone(),
            self.config.clone(),
            self.wake.clone(),
            shutdown,
        ))
    }

    /// Processes a target and everything its Location entities point at, in memory. Returns the entities
    /// as processing leaves them (not stitched: no relations, uid or etag, as in Backstage's dry run)
    /// and every problem found, each as `<ErrorName>: <message>`.
    pub async fn dry_run(&self, target: &Target) -> (Vec<serde_json::Value>, Vec<String>) {
        const MAX_LOCATIONS: usize = 200;
        let root_id = Uuid::new_v4();
        let mut pending = vec![LocationJob {
            id: root_id,
            location_type: target.location_type().to_owned(),
            target: target.target_string(),
            parent_id: None,
            root_id,
            declared_by: generated_location_key(target),
            root_type: target.location_type().to_owned(),
            root_target: target.target_string(),
            claim_token: None,
            root_version: None,
        }];
        let mut entities = Vec::new();
        let mut errors = Vec::new();
        let mut seen = 0;
        while let Some(job) = pending.pop() {
            seen += 1;
            if seen > MAX_LOCATIONS {
                errors.push(format!(
                    "more than {MAX_LOCATIONS} locations below {}",
                    target.target_string()
                ));
                break;
            }
            let output = ingest::process::process_location(&self.reader, &job).await;
            let described = |e: &ProcessingError| format!("{}: {}", e.name, e.message);
            errors.extend(output.location_errors.iter().map(described));
            for (_, rejected) in &output.rejected {
                errors.extend(rejected.iter().map(described));
            }
            // Files of a repository are read at the commit its dry run fetched.
            let root_version = match &output.git_snapshot {
                Some(snapshot) => Some(snapshot.commit.clone()),
                None => job.root_version.clone(),
            };
            for entity in output.entities {
                for child in &entity.child_locations {
                    pending.push(LocationJob {
                        id: Uuid::new_v4(),
                        location_type: child.location_type().to_owned(),
                        target: child.target_string(),
                        parent_id: Some(job.id),
                        root_id,
                        declared_by: entity.key.clone(),
                        root_type: job.root_type.clone(),
                        root_target: job.root_target.clone(),
                        claim_token: None,
                        root_version: root_version.clone(),
                    });
                }
                // An entity that would be stored with problems fails the dry run, as in Backstage.
                errors.extend(entity.errors.iter().map(described));
                entities.push(entity.processed);
            }
        }
        (entities, errors)
    }

    /// An entity in its final form, by key.
    pub async fn entity(&self, key: &str) -> Result<Option<serde_json::Value>, AppError> {
        match db::entities::get_final_by_key(&self.db, key).await? {
            Some(body) => Ok(Some(parse_stored(&body)?)),
            None => Ok(None),
        }
    }

    /// An entity by key, when it exists and the caller may see it (see `access`).
    pub async fn entity_for(
        &self,
        caller: &Caller,
        key: &str,
    ) -> Result<Option<serde_json::Value>, AppError> {
        Ok(self
            .entity(key)
            .await?
            .filter(|entity| self.may_read(caller, entity)))
    }

    /// The permission policy's word on a write; a refusal is audited (naming the rule) and answered
    /// with a plain 403 that does not.
    async fn permit(
        &self,
        caller: &Caller,
        action: &str,
        target: &PolicyTarget,
    ) -> Result<(), AppError> {
        let decision = self.config.permissions.decide_for(caller, action, target);
        if decision.allowed {
            return Ok(());
        }
        audit_refusal(&self.db, caller, action, target, &decision).await;
        Err(AppError::NotAllowed(
            "You are not allowed to do this".to_owned(),
        ))
    }

    /// Whether the permission policy lets the caller see this entity.
    pub fn may_read(&self, caller: &Caller, entity: &serde_json::Value) -> bool {
        access::may_read(&self.config.permissions, caller, entity)
    }

    /// What the caller may see, as a filter to add to theirs; `None` when they may see everything.
    pub fn visible_to(&self, caller: &Caller) -> Option<Filter> {
        access::visible(&self.config.permissions, caller)
    }

    /// `filter` narrowed to what the caller may see.
    pub fn restrict(&self, caller: &Caller, filter: Option<&Filter>) -> Option<Filter> {
        access::restrict(filter, self.visible_to(caller).as_ref())
    }

    /// Those of `keys` that exist, with their keys, in no particular order.
    pub async fn entities_by_keys(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, serde_json::Value)>, AppError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        db::entities::get_finals_by_keys(&self.db, keys, None)
            .await?
            .into_iter()
            .map(|row| Ok((row.entity_key, parse_stored(&row.body)?)))
            .collect()
    }

    /// How many entities of each kind the caller may see (kinds as written).
    pub async fn kind_counts(
        &self,
        caller: &Caller,
    ) -> Result<Arc<Vec<db::FacetCountRow>>, AppError> {
        let visible = self.visible_to(caller);
        self.facet_counts("kind", visible.as_ref(), None).await
    }

    /// How many entities `query` selects: `totalItems` (see `answers`).
    pub async fn count_entities(&self, query: &db::EntityQuery<'_>) -> Result<i64, AppError> {
        Ok(self.answers.count_entities(&self.db, query).await?)
    }

    /// The rows of `query`'s page (see `answers`).
    pub async fn query_page(
        &self,
        query: &db::EntityQuery<'_>,
    ) -> Result<Vec<db::PageRow>, AppError> {
        Ok(self.answers.query_page(&self.db, query).await?)
    }

    /// Facet counts over the entities matching `filter` and, when given, containing `text`.
    pub async fn facet_counts(
        &self,
        facet: &str,
        filter: Option<&Filter>,
        text: Option<&str>,
    ) -> Result<Arc<Vec<db::FacetCountRow>>, AppError> {
        Ok(self
            .answers
            .facet_counts(&self.db, facet, filter, text)
            .await?)
    }

    /// The most recently changed entities the caller may see, newest first (at most `limit`; fewer
    /// when some of the latest are hidden from them).
    pub async fn recent_entities(
        &self,
        caller: &Caller,
        limit: i64,
    ) -> Result<Vec<serde_json::Value>, AppError> {
        let mut entities = Vec::new();
        for body in db::entities::recent_finals(&self.db, limit).await? {
            let entity = parse_stored(&body)?;
            if self.may_read(caller, &entity) {
                entities.push(entity);
            }
        }
        Ok(entities)
    }

    /// Gauges read at scrape time.
    pub async fn record_gauges(&self) {
        if let Ok(status) = db::processing_status(&self.db).await {
            metrics::gauge!("atrium_catalog_entities").set(status.entities as f64);
            metrics::gauge!("atrium_catalog_locations_due").set(status.locations_due as f64);
            metrics::gauge!("atrium_catalog_stitch_queue").set(status.stitch_queue as f64);
        }
    }
}

/// A location's target as the audit log records it: a password in a URL masked (a file path or a
/// git remote, which refuses passwords, as it is).
fn audited_target(row: &LocationRow) -> String {
    if row.location_type == "url" {
        redact_url(&row.target)
    } else {
        row.target.clone()
    }
}

/// A stored entity body (always JSON written by the stitcher).
pub fn parse_stored(body: &str) -> Result<serde_json::Value, AppError> {
    serde_json::from_str(body)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored entity is not JSON: {e}")))
}
