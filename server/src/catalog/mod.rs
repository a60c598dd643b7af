//! The catalog: entities read from locations, validated, related and served through a
//! Backstage-compatible API.
//!
//! Flow: `locations` (registered through the API or the config) are claimed by the processing loop
//! (`ingest`), read (`ingest::read`), parsed (`yaml`), validated and related (`model`), written
//! (`ingest::store`) and stitched into their final form (`stitch`), with flattened `search` data that the
//! query side (`filter`, `db`, `api`) reads.

pub mod api;
pub mod db;
pub mod filter;
pub mod git;
pub mod ingest;
pub mod lint;
pub mod model;
pub mod placeholder;
pub mod search;
pub mod stitch;
pub mod webhook;
pub mod yaml;

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use self::ingest::process::generated_location_name;
use self::ingest::read::{Reader, Target};
use crate::config::Config;
use crate::error::AppError;

/// A registered location as the API shows it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct LocationRow {
    pub id: Uuid,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub location_type: String,
    pub target: String,
    /// The generated Location entity that represents this registration.
    #[serde(rename = "entityRef")]
    #[sqlx(rename = "declared_by")]
    pub entity_ref: String,
}

/// Catalog operations shared by the API, the start-up code and the tests.
#[derive(Clone)]
pub struct CatalogService {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub reader: Reader,
    wake: Arc<Notify>,
}

impl CatalogService {
    pub fn new(db: PgPool, config: Arc<Config>) -> anyhow::Result<Self> {
        let reader = Reader::new(&config.catalog)?;
        Ok(Self {
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
        sqlx::query("select pg_advisory_xact_lock(7007001)")
            .execute(&mut *tx)
            .await?;
        let current: Vec<LocationRow> =
            sqlx::query_as("select id, type, target, declared_by from location where parent_id is null and origin = 'config'")
                .fetch_all(&mut *tx)
                .await?;
        for row in &current {
            if !wanted
                .iter()
                .any(|t| t.location_type() == row.location_type && t.target_string() == row.target)
            {
                tracing::info!(target = %row.target, "unregistering location removed from the config");
                db::delete_location(&mut tx, row.id, self.config.catalog.orphan_policy).await?;
            }
        }
        for target in wanted {
            db::insert_root_location(&mut *tx, &target, "config").await?;
        }
        tx.commit().await?;
        self.wake();
        Ok(())
    }

    /// Registers a location from the API. A second registration of the same target is a conflict.
    pub async fn add_location(
        &self,
        location_type: &str,
        target: &str,
    ) -> Result<LocationRow, AppError> {
        let target = self.resolve_for_api(location_type, target)?;
        let row = db::insert_root_location(&self.db, &target, "api")
            .await?
            .ok_or_else(|| {
                AppError::conflict(format!("Location {} already exists", target.location_ref()))
            })?;
        self.wake();
        Ok(row)
    }

    pub fn resolve_for_api(&self, location_type: &str, target: &str) -> Result<Target, AppError> {
        self.reader
            .resolve(location_type, target)
            .map_err(|e| match e {
                ingest::read::ReadError::NotAllowed(m) => AppError::NotAllowed(m),
                other => AppError::input(other.to_string()),
            })
    }

    pub async fn delete_location(&self, id: Uuid) -> Result<(), AppError> {
        let mut tx = self.db.begin().await?;
        let deleted = db::delete_location(&mut tx, id, self.config.catalog.orphan_policy).await?;
        if !deleted {
            return Err(AppError::not_found(format!(
                "Found no location with ID {id}"
            )));
        }
        tx.commit().await?;
        self.wake();
        Ok(())
    }

    /// Makes the location that provides `entity_key` due now.
    pub async fn refresh_entity(&self, entity_key: &str) -> Result<(), AppError> {
        let found: Option<Option<Uuid>> =
            sqlx::query_scalar("select location_id from entity where entity_key = $1")
                .bind(entity_key)
                .fetch_optional(&self.db)
                .await?;
        let Some(location_id) = found else {
            return Err(AppError::not_found(format!(
                "No entity named '{entity_key}' found"
            )));
        };
        // A Location entity also refreshes the locations it points at; a file in a git repository also
        // fetches its repository. A refresh supersedes a claim in progress (its result may predate the
        // change the user is refreshing for), so the claim token is revoked too.
        sqlx::query(
            "update location set next_refresh_at = now(), claim_token = null
             where id = $1 or declared_by = $2
                or id = (select root_id from location where id = $1 and type = 'git-file')",
        )
        .bind(location_id)
        .bind(entity_key)
        .execute(&self.db)
        .await?;
        self.wake();
        Ok(())
    }

    /// Processes and stitches until nothing is due, without background workers: deterministic, for
    /// tests. With several replicas it returns when this one finds nothing more to claim.
    pub async fn process_until_idle(&self) -> anyhow::Result<()> {
        loop {
            let round =
                ingest::process_due_locations(&self.db, &self.reader, &self.config.catalog).await?;
            let stitched = ingest::stitch_pending(&self.db, || true).await?;
            if round.locations == 0 && stitched == 0 {
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

    /// Processes a target and everything its Location entities point at, in memory. Returns the entities in
    /// their final form (without relations to the rest of the catalog) and the problems found.
    pub async fn dry_run(&self, target: &Target) -> (Vec<serde_json::Value>, Vec<String>) {
        const MAX_LOCATIONS: usize = 200;
        let root_id = Uuid::new_v4();
        let mut pending = vec![ingest::process::LocationJob {
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
            errors.extend(output.location_errors.iter().map(|e| e.message.clone()));
            for (_, rejected) in &output.rejected {
                errors.extend(rejected.iter().map(|e| e.message.clone()));
            }
            // Files of a repository are read at the commit its dry run fetched.
            let root_version = match &output.git_snapshot {
                Some(snapshot) => Some(snapshot.commit.clone()),
                None => job.root_version.clone(),
            };
            for entity in output.entities {
                for child in &entity.child_locations {
                    pending.push(ingest::process::LocationJob {
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
                let relations: Vec<(String, String)> = entity
                    .relations
                    .iter()
                    .filter(|r| r.source.key() == entity.key)
                    .map(|r| (r.relation_type.to_owned(), r.target.to_string()))
                    .collect();
                let (body, _) = stitch::stitch_entity(
                    Uuid::new_v4(),
                    entity.processed,
                    &relations,
                    entity.errors,
                );
                entities.push(body);
            }
        }
        (entities, errors)
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

/// The ring provider for rustls (reqwest is built without one); idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Entity key of the Location entity generated for a registered location.
pub fn generated_location_key(target: &Target) -> String {
    format!(
        "location:default/{}",
        generated_location_name(target.location_type(), &target.target_string())
    )
}
