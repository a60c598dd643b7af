//! A worker: claims tasks (up to `scaffolder.concurrency` at once per replica), keeps each lease alive
//! with heartbeats, runs the steps, and ends the task. A task whose worker died (its lease ran out) is
//! claimed again by any worker and resumes from its checkpoints.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::db::{self, Claim};
use super::redact::Redactor;
use super::runner::{Journal, LeaseLost, Outcome, Run};
use crate::catalog::source::Reader;
use crate::scaffolder::actions::ActionServices;
use crate::scaffolder::actions::registry::ActionRegistry;
use crate::scaffolder::expr::Expressions;
use crate::scaffolder::source::{GitTemplate, TemplateSource};
use crate::scaffolder::template::Step;
use crate::scaffolder::workspace::Workspace;

/// What every run on this replica shares.
pub struct Engine {
    pub db: PgPool,
    pub actions: ActionRegistry,
    pub expressions: Expressions,
    pub services: ActionServices,
    /// Names this replica's claims (`lease_owner`), for operators reading the table.
    pub worker_id: String,
    pub lease: Duration,
    pub workspace_dir: PathBuf,
}

/// A real run's journal: the task's rows, fenced by the lease token.
struct DbJournal {
    db: PgPool,
    id: Uuid,
    token: i64,
    lease: Duration,
    cancel: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
}

impl Journal for DbJournal {
    async fn log(&self, body: Value) -> Result<(), LeaseLost> {
        match db::append_event(&self.db, self.id, Some(self.token), "log", &body).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.lost.store(true, Ordering::SeqCst);
                Err(LeaseLost)
            }
            Err(error) => {
                // A database that is briefly away must not fail the task; the line is lost, the
                // heartbeat decides whether the run goes on.
                tracing::warn!(task = %self.id, %error, "could not store a task event");
                Ok(())
            }
        }
    }

    async fn checkpoint(&self, state: &Value) -> Result<(), LeaseLost> {
        match db::save_state(&self.db, self.id, self.token, state).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.lost.store(true, Ordering::SeqCst);
                Err(LeaseLost)
            }
            Err(error) => {
                tracing::warn!(task = %self.id, %error, "could not store a task checkpoint");
                Ok(())
            }
        }
    }

    async fn cancel_requested(&self) -> Result<bool, LeaseLost> {
        if self.cancel.load(Ordering::SeqCst) {
            return Ok(true);
        }
        match db::heartbeat(&self.db, self.id, self.token, self.lease.as_secs_f64()).await {
            Ok(Some(cancel)) => Ok(cancel),
            Ok(None) => {
                self.lost.store(true, Ordering::SeqCst);
                Err(LeaseLost)
            }
            // The periodic heartbeat decides about the lease when the database is briefly away.
            Err(_) => Ok(false),
        }
    }

    fn lease_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Engine {
    /// Claims one task and runs it to its end. `Ok(false)`: nothing to claim.
    pub async fn run_one(self: &Arc<Self>) -> anyhow::Result<bool> {
        let Some(claim) = db::claim(&self.db, &self.worker_id, self.lease.as_secs_f64()).await?
        else {
            return Ok(false);
        };
        self.run_claimed(claim).await?;
        Ok(true)
    }

    pub async fn run_claimed(self: &Arc<Self>, claim: Claim) -> anyhow::Result<()> {
        let cancel = Arc::new(AtomicBool::new(claim.cancel_requested));
        let lost = Arc::new(AtomicBool::new(false));
        let journal = DbJournal {
            db: self.db.clone(),
            id: claim.id,
            token: claim.token,
            lease: self.lease,
            cancel: cancel.clone(),
            lost: lost.clone(),
        };
        let heartbeat = tokio::spawn(heartbeat(
            self.db.clone(),
            claim.id,
            claim.token,
            self.lease,
            cancel,
            lost.clone(),
        ));
        let result = self.run_with(&claim, &journal).await;
        heartbeat.abort();
        result
    }

    async fn run_with(&self, claim: &Claim, journal: &DbJournal) -> anyhow::Result<()> {
        let redactor = Redactor::new(claim.secrets.as_ref());
        if claim.recovered {
            let _ = journal
                .log(json!({"message": "The worker running this task stopped; another worker resumes it from its checkpoints"}))
                .await;
            db::append_event(
                &self.db,
                claim.id,
                Some(claim.token),
                "recovered",
                &json!({"message": "Task recovered"}),
            )
            .await?;
        }
        let spec = &claim.spec;
        let steps: Vec<Step> = match serde_json::from_value(spec["steps"].clone()) {
            Ok(steps) => steps,
            Err(error) => {
                return self
                    .end(
                        claim,
                        &claim.state,
                        Outcome::Failed {
                            message: format!("the task's steps cannot be read: {error}"),
                        },
                    )
                    .await;
            }
        };
        let source = match source_of(spec, &self.services.catalog.reader).await {
            Ok(source) => source,
            Err(message) => {
                return self
                    .end(claim, &claim.state, Outcome::Failed { message })
                    .await;
            }
        };
        let workspace_root = self
            .workspace_dir
            .join(format!("{}-{}", claim.id, claim.token));
        let workspace = match Workspace::create(workspace_root.clone()) {
            Ok(workspace) => workspace,
            Err(error) => {
                tracing::error!(task = %claim.id, %error, "cannot create a task workspace");
                let message =
                    "the task's workspace could not be created (see the server log)".to_owned();
                return self
                    .end(claim, &claim.state, Outcome::Failed { message })
                    .await;
            }
        };
        let run = Run {
            task_id: claim.id.to_string(),
            steps: &steps,
            output: &spec["output"],
            parameters: &spec["parameters"],
            template_ref: spec["templateInfo"]["entityRef"]
                .as_str()
                .unwrap_or_default(),
            user: &spec["user"],
            secrets: claim.secrets.as_ref(),
            redactor: &redactor,
            workspace: &workspace,
            source: &source,
            expressions: &self.expressions,
            actions: &self.actions,
            services: &self.services,
            dry_run: false,
            state: if claim.state.is_object() {
                claim.state.clone()
            } else {
                json!({})
            },
        };
        let (outcome, state) = run.execute(journal).await;
        remove_workspace(&workspace_root).await;
        self.end(claim, &state, outcome).await
    }

    /// Writes the end of a run: the task's final status, then its `completion` event.
    async fn end(&self, claim: &Claim, state: &Value, outcome: Outcome) -> anyhow::Result<()> {
        let (status, body) = match &outcome {
            Outcome::Completed { output } => (
                "completed",
                json!({"message": "Run completed with status: completed", "status": "completed", "output": output}),
            ),
            Outcome::Failed { message } => (
                "failed",
                json!({"message": format!("Run failed with Error: {message}"), "status": "failed",
                       "error": {"name": "Error", "message": message}}),
            ),
            Outcome::Cancelled => (
                "cancelled",
                json!({"message": "Run cancelled", "status": "cancelled"}),
            ),
            Outcome::Abandoned => {
                tracing::info!(task = %claim.id, "lease lost: another worker owns the task now");
                return Ok(());
            }
        };
        let Some(final_status) = db::finish(&self.db, claim.id, claim.token, status, state).await?
        else {
            tracing::info!(task = %claim.id, "lease lost before the end was written");
            return Ok(());
        };
        let body = if final_status == status {
            body
        } else {
            // A cancel arrived while the last step ran: the task stays cancelled.
            json!({"message": "Run cancelled", "status": final_status})
        };
        db::append_event(&self.db, claim.id, None, "completion", &body).await?;
        Ok(())
    }
}

/// Renews the lease every third of its length, and learns of cancel requests. Marks the run lost when
/// the lease is gone, so the runner stops at once.
async fn heartbeat(
    db: PgPool,
    id: Uuid,
    token: i64,
    lease: Duration,
    cancel: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
) {
    let mut every = tokio::time::interval(lease / 3);
    every.tick().await;
    loop {
        every.tick().await;
        match db::heartbeat(&db, id, token, lease.as_secs_f64()).await {
            Ok(Some(cancel_requested)) => {
                if cancel_requested {
                    cancel.store(true, Ordering::SeqCst);
                }
            }
            Ok(None) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(error) => tracing::warn!(task = %id, %error, "heartbeat failed"),
        }
    }
}

/// Where the template's files are: the directory of the catalog file it was read from (on this
/// machine, or in a git repository read through the catalog's `reader`). A template read from a git
/// host's web or raw URL is read from that repository, fetched now: no git location keeps it fresh.
pub async fn source_of(spec: &Value, reader: &Reader) -> Result<TemplateSource, String> {
    let base = spec["templateInfo"]["baseUrl"].as_str().unwrap_or_default();
    let git_file_of_url = base
        .strip_prefix("url:")
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| crate::git::web::git_file_of_web_url(&u));
    if let Some(target) = git_file_of_url {
        let (file, cache, settings) = reader.git_file_access(&target).map_err(|e| {
            format!("the template's repository ({target}, from its URL) cannot be read: {e}")
        })?;
        reader.git_snapshot(&file.repo).await.map_err(|e| {
            format!("the template's repository ({target}, from its URL) cannot be fetched: {e}")
        })?;
        return Ok(TemplateSource::Git(Box::new(GitTemplate::new(
            file, cache, settings,
        ))));
    }
    match base.split_once(':') {
        Some(("git-file", target)) => {
            let (file, cache, settings) = reader
                .git_file_access(target)
                .map_err(|e| format!("the template's repository cannot be read: {e}"))?;
            Ok(TemplateSource::Git(Box::new(GitTemplate::new(
                file, cache, settings,
            ))))
        }
        Some(("file", path)) => {
            let dir = Path::new(path)
                .parent()
                .map(Path::to_path_buf)
                .ok_or_else(|| format!("template location {base:?} has no directory"))?;
            Ok(TemplateSource::Dir(dir))
        }
        Some(_) => Ok(TemplateSource::Remote(base.to_owned())),
        None => Ok(TemplateSource::Inline(Default::default())),
    }
}

async fn remove_workspace(root: &Path) {
    let root = root.to_path_buf();
    // remove_dir_all does not follow symlinks: it removes the links, never what they point at.
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(root)).await;
}
