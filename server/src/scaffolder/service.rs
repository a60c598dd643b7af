//! The scaffolder's operations, for the API, the pages and (later) the MCP endpoint: look up templates,
//! create, list, follow, cancel and retry tasks, dry runs, and the workers that run tasks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::sync::{Semaphore, broadcast, watch};
use uuid::Uuid;

use super::actions::registry::ActionRegistry;
use super::actions::{self, ActionServices};
use super::expr::Expressions;
use super::params::{self, ParameterError};
use super::source::TemplateSource;
use super::tasks::db::{self, TaskList, TaskRow};
use super::tasks::redact::Redactor;
use super::tasks::runner::{Journal, LeaseLost, Outcome, Run};
use super::tasks::worker::Engine;
use super::template::Template;
use super::workspace::Workspace;
use crate::catalog::CatalogService;
use crate::catalog::model::refs::{EntityRef, RefDefaults};
use crate::config::Config;
use crate::error::AppError;

/// Until sign-in exists every task runs as Backstage's guest user.
pub const GUEST_USER_REF: &str = "user:default/guest";

#[derive(Clone)]
pub struct ScaffolderService {
    engine: Arc<Engine>,
    catalog: CatalogService,
    config: Arc<Config>,
    /// Task ids with new events, from Postgres notifications (see `listen`).
    events: broadcast::Sender<Uuid>,
}

/// Why a task could not be created.
#[derive(Debug)]
pub enum CreateError {
    /// The values fail the template's parameter schemas (400 `{errors}`).
    Invalid(Vec<ParameterError>),
    Other(AppError),
}

impl From<AppError> for CreateError {
    fn from(error: AppError) -> Self {
        Self::Other(error)
    }
}

impl From<sqlx::Error> for CreateError {
    fn from(error: sqlx::Error) -> Self {
        Self::Other(error.into())
    }
}

/// `POST /v2/tasks`.
pub struct NewTaskRequest<'a> {
    pub template_ref: &'a str,
    pub values: &'a Value,
    pub secrets: Option<&'a Value>,
    pub idempotency_key: Option<&'a str>,
    pub user_ref: &'a str,
}

/// A dry run's answer (Backstage's `DryRunResult`).
pub struct DryRunResult {
    pub log: Vec<Value>,
    pub directory_contents: Vec<Value>,
    pub output: Value,
    pub steps: Vec<Value>,
}

impl ScaffolderService {
    /// `more_actions`: actions other features offer templates (`kube:apply`, `deploy:model`, ...).
    pub fn new(
        db: PgPool,
        config: Arc<Config>,
        catalog: CatalogService,
        more_actions: Vec<Box<dyn actions::Action>>,
    ) -> Self {
        let mut all = Vec::new();
        all.extend(actions::debug::actions());
        all.extend(actions::fetch::actions());
        all.extend(actions::fs::actions());
        all.extend(actions::publish::actions());
        all.extend(actions::catalog::actions());
        all.extend(more_actions);
        let services = ActionServices {
            catalog: catalog.clone(),
            config: config.clone(),
        };
        let engine = Engine {
            db,
            actions: ActionRegistry::new(all),
            expressions: Expressions::default(),
            services,
            worker_id: format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "atrium".to_owned()),
                Uuid::new_v4().simple()
            ),
            lease: Duration::from_secs(config.scaffolder.lease_seconds.max(3)),
            workspace_dir: absolute(&config.scaffolder.workspace_dir),
        };
        let (events, _) = broadcast::channel(1024);
        Self {
            engine: Arc::new(engine),
            catalog,
            config,
            events,
        }
    }

    /// The catalog the scaffolder reads templates and pickers from.
    pub fn catalog(&self) -> &CatalogService {
        &self.catalog
    }

    /// Hosts repository URLs may name (`scaffolder.allowed_hosts`): the form's host choices.
    pub fn allowed_hosts(&self) -> &[String] {
        &self.config.scaffolder.allowed_hosts
    }

    pub fn actions(&self) -> &ActionRegistry {
        &self.engine.actions
    }

    /// A template by reference (`template:default/x`, `default/x` or `x`).
    pub async fn template(&self, reference: &str) -> Result<Template, AppError> {
        let parsed = EntityRef::parse(
            reference,
            RefDefaults {
                kind: Some("template"),
                namespace: "default",
            },
        )
        .map_err(|e| AppError::input(e.to_string()))?;
        if !parsed.kind.eq_ignore_ascii_case("template") {
            return Err(AppError::input(format!(
                "{reference} is not a template reference"
            )));
        }
        let Some(entity) = self.catalog.entity(&parsed.key()).await? else {
            return Err(AppError::not_found(format!(
                "No template found for {reference}"
            )));
        };
        Template::from_entity(entity)
    }

    pub async fn create_task(&self, request: NewTaskRequest<'_>) -> Result<Uuid, CreateError> {
        let template = self.template(request.template_ref).await?;
        if !request.values.is_object() {
            return Err(AppError::input("values must be an object").into());
        }
        let mut values = request.values.clone();
        params::apply_defaults(&template.pages, &mut values);
        let values = &values;
        let errors = params::validate(&template.pages, values);
        if !errors.is_empty() {
            return Err(CreateError::Invalid(errors));
        }
        if let Some(secrets) = request.secrets
            && !secrets.is_object()
        {
            return Err(AppError::input("secrets must be an object of strings").into());
        }
        let user_entity = self.catalog.entity(request.user_ref).await?;
        let spec = template.task_spec(values, request.user_ref, user_entity.as_ref());
        let digest = request.idempotency_key.map(|_| {
            let mut hash = Sha256::new();
            hash.update(request.template_ref.as_bytes());
            hash.update(values.to_string().as_bytes());
            hash.update(
                request
                    .secrets
                    .map(Value::to_string)
                    .unwrap_or_default()
                    .as_bytes(),
            );
            format!("{:x}", hash.finalize())
        });
        let inserted = db::insert_task(
            &self.engine.db,
            &db::NewTask {
                id: Uuid::new_v4(),
                spec: &spec,
                created_by: request.user_ref,
                secrets: request.secrets,
                state: &json!({}),
                attempt: 1,
                retry_of: None,
                idempotency_key: request.idempotency_key,
                request_digest: digest.as_deref(),
            },
        )
        .await?;
        match inserted {
            Ok(id) => Ok(id),
            Err((id, earlier)) if earlier == digest => Ok(id),
            Err((id, _)) => Err(AppError::conflict(format!(
                "The Idempotency-Key was used for a different request (task {id})"
            ))
            .into()),
        }
    }

    pub async fn task(&self, id: Uuid) -> Result<TaskRow, AppError> {
        db::task(&self.engine.db, id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("Task with id {id} does not exist")))
    }

    pub async fn list_tasks(&self, list: &TaskList) -> Result<(Vec<TaskRow>, i64), AppError> {
        Ok(db::list_tasks(&self.engine.db, list).await?)
    }

    /// Events after `after`; when there are none yet, waits up to `wait` for some.
    pub async fn events(
        &self,
        id: Uuid,
        after: i64,
        wait: Duration,
    ) -> Result<Vec<db::EventRow>, AppError> {
        let mut notified = self.events.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let events = db::events(&self.engine.db, id, after, 1000).await?;
            if !events.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(events);
            }
            // A notification for this task, or a look every two seconds in case the listener is not
            // running (a replica started without workers) or missed one.
            let wake = tokio::time::Instant::now() + Duration::from_secs(2);
            let until = wake.min(deadline);
            loop {
                match tokio::time::timeout_at(until, notified.recv()).await {
                    Ok(Ok(task)) if task != id => continue,
                    _ => break,
                }
            }
        }
    }

    pub async fn cancel(&self, id: Uuid) -> Result<String, AppError> {
        let Some(cancelled) = db::request_cancel(&self.engine.db, id).await? else {
            return Err(AppError::not_found(format!(
                "Task with id {id} does not exist"
            )));
        };
        Ok(match cancelled {
            db::Cancelled::Now => {
                let body = json!({"message": "Run cancelled", "status": "cancelled"});
                db::append_event(&self.engine.db, id, None, "cancelled", &body).await?;
                db::append_event(&self.engine.db, id, None, "completion", &body).await?;
                "cancelled".to_owned()
            }
            db::Cancelled::Requested => {
                let body = json!({"message": "Cancel requested: the run stops at the end of the current step"});
                db::append_event(&self.engine.db, id, None, "cancelled", &body).await?;
                "cancelled".to_owned()
            }
            db::Cancelled::AlreadyEnded(status) => status,
        })
    }

    /// A new attempt of an ended task: same spec, the checkpoints of its steps with side effects (not
    /// run again), and the secrets given now (the first attempt's are gone once it ended).
    pub async fn retry(&self, id: Uuid, secrets: Option<&Value>) -> Result<Uuid, AppError> {
        let task = self.task(id).await?;
        if matches!(task.status.as_str(), "open" | "processing") {
            return Err(AppError::conflict(format!(
                "Task {id} is still {}; cancel it or wait for it to end before retrying",
                task.status
            )));
        }
        let mut state = json!({"steps": {}});
        if let Some(steps) = task.state["steps"].as_object() {
            for (step, checkpoint) in steps {
                if checkpoint["status"] == "completed" {
                    state["steps"][step] = checkpoint.clone();
                }
            }
        }
        let new_id = Uuid::new_v4();
        let inserted = db::insert_task(
            &self.engine.db,
            &db::NewTask {
                id: new_id,
                spec: &task.spec,
                created_by: &task.created_by,
                secrets,
                state: &state,
                attempt: task.attempt + 1,
                retry_of: Some(id),
                idempotency_key: None,
                request_digest: None,
            },
        )
        .await?;
        Ok(inserted.unwrap_or(new_id))
    }

    /// Runs a template without side effects: actions that only touch the workspace run, the others
    /// are reported with example outputs.
    pub async fn dry_run(
        &self,
        template: Value,
        values: &Value,
        secrets: Option<&Value>,
        directory_contents: BTreeMap<String, Vec<u8>>,
        user_ref: &str,
    ) -> Result<Result<DryRunResult, Vec<ParameterError>>, AppError> {
        let template = Template::from_entity(template)?;
        let mut values = values.clone();
        params::apply_defaults(&template.pages, &mut values);
        let values = &values;
        let errors = params::validate(&template.pages, values);
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        let user_entity = self.catalog.entity(user_ref).await?;
        let spec = template.task_spec(values, user_ref, user_entity.as_ref());
        let steps = template.steps.clone();
        let redactor = Redactor::new(secrets);
        let id = Uuid::new_v4();
        let root = self.engine.workspace_dir.join(format!("dry-run-{id}"));
        let workspace = Workspace::create(root.clone())
            .map_err(|e| anyhow::anyhow!("creating a dry-run workspace: {e}"))?;
        let source = TemplateSource::Inline(directory_contents);
        let journal = MemoryJournal::default();
        let run = Run {
            task_id: format!("dry-run-{id}"),
            steps: &steps,
            output: &spec["output"],
            parameters: &spec["parameters"],
            template_ref: spec["templateInfo"]["entityRef"]
                .as_str()
                .unwrap_or_default(),
            user: &spec["user"],
            secrets,
            redactor: &redactor,
            workspace: &workspace,
            source: &source,
            expressions: &self.engine.expressions,
            actions: &self.engine.actions,
            services: &self.engine.services,
            dry_run: true,
            state: json!({}),
        };
        let (outcome, _) = run.execute(&journal).await;
        let contents = {
            let root = workspace.root().to_path_buf();
            tokio::task::spawn_blocking(move || serialize_dir(&root))
                .await
                .map_err(|e| anyhow::anyhow!("reading the dry-run workspace: {e}"))?
        };
        let _ = tokio::fs::remove_dir_all(&root).await;
        let mut log = journal.take();
        let output = match outcome {
            Outcome::Completed { output } => output,
            Outcome::Failed { message } => {
                log.push(json!({"body": {"message": format!("Run failed with Error: {message}"), "status": "failed"}}));
                json!({})
            }
            Outcome::Cancelled | Outcome::Abandoned => json!({}),
        };
        Ok(Ok(DryRunResult {
            log,
            directory_contents: contents.map_err(|e| anyhow::anyhow!(e))?,
            output,
            steps: steps
                .iter()
                .map(|s| serde_json::to_value(s).unwrap_or_default())
                .collect(),
        }))
    }

    /// Runs queued tasks until none is left (tests and one-shot tools; servers use `spawn_workers`).
    pub async fn run_until_idle(&self) -> anyhow::Result<()> {
        while self.engine.run_one().await? {}
        Ok(())
    }

    /// Claims and runs one task, if there is one. Returns whether there was.
    pub async fn run_one(&self) -> anyhow::Result<bool> {
        self.engine.run_one().await
    }

    /// Deletes tasks that ended longer ago than the retention. Returns how many.
    pub async fn prune(&self) -> anyhow::Result<u64> {
        let days = self.config.scaffolder.retention_days as f64;
        Ok(db::prune(&self.engine.db, days).await?)
    }

    /// The workers and the event listener, until `shutdown` turns true.
    pub fn spawn_workers(
        &self,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let concurrency = service.config.scaffolder.concurrency.max(1);
            let slots = Arc::new(Semaphore::new(concurrency));
            let opened = Arc::new(tokio::sync::Notify::new());
            let listener = tokio::spawn(service.clone().listen(opened.clone()));
            let mut prune_every = tokio::time::interval(Duration::from_secs(3600));
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let claimed = tokio::select! {
                    _ = shutdown.changed() => break,
                    claimed = db::claim(&service.engine.db, &service.engine.worker_id, service.engine.lease.as_secs_f64()) => claimed,
                };
                match claimed {
                    Ok(Some(claim)) => {
                        let engine = service.engine.clone();
                        tokio::spawn(async move {
                            let id = claim.id;
                            if let Err(error) = engine.run_claimed(claim).await {
                                tracing::error!(task = %id, error = %format!("{error:#}"), "task run failed");
                            }
                            drop(slot);
                        });
                    }
                    Ok(None) => {
                        drop(slot);
                        // New tasks notify; leases that run out do not, hence the bounded wait.
                        tokio::select! {
                            _ = shutdown.changed() => break,
                            () = opened.notified() => {}
                            _ = tokio::time::sleep(service.engine.lease / 2) => {}
                            _ = prune_every.tick() => {
                                if let Err(error) = service.prune().await {
                                    tracing::warn!(error = %format!("{error:#}"), "pruning old tasks failed");
                                }
                            }
                        }
                    }
                    Err(error) => {
                        drop(slot);
                        tracing::warn!(%error, "claiming a task failed");
                        tokio::select! {
                            _ = shutdown.changed() => break,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
            listener.abort();
        })
    }

    /// Follows the Postgres notifications for new events and newly open tasks.
    async fn listen(self, opened: Arc<tokio::sync::Notify>) {
        loop {
            let mut listener = match sqlx::postgres::PgListener::connect_with(&self.engine.db).await
            {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for task notifications; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            if let Err(error) = listener
                .listen_all(["scaffolder_task_event", "scaffolder_task_open"])
                .await
            {
                tracing::warn!(%error, "cannot listen for task notifications; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            while let Ok(notification) = listener.recv().await {
                match notification.channel() {
                    "scaffolder_task_open" => opened.notify_one(),
                    _ => {
                        if let Ok(id) = notification.payload().parse::<Uuid>() {
                            let _ = self.events.send(id);
                        }
                    }
                }
            }
        }
    }

    /// Starts only the event listener (a replica that serves the API without running tasks).
    pub fn spawn_listener(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.clone().listen(Arc::new(tokio::sync::Notify::new())))
    }
}

/// A dry run's journal: events in memory, never lost, never cancelled.
#[derive(Default)]
struct MemoryJournal {
    log: std::sync::Mutex<Vec<Value>>,
}

impl MemoryJournal {
    fn take(&self) -> Vec<Value> {
        std::mem::take(
            &mut self
                .log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl Journal for MemoryJournal {
    async fn log(&self, body: Value) -> Result<(), LeaseLost> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(json!({"body": body}));
        Ok(())
    }
    async fn checkpoint(&self, _state: &Value) -> Result<(), LeaseLost> {
        Ok(())
    }
    async fn cancel_requested(&self) -> Result<bool, LeaseLost> {
        Ok(false)
    }
    fn lease_lost(&self) -> bool {
        false
    }
}

/// A workspace as Backstage's `SerializedFile`s (`path`, `base64Content`, `executable`), symlinks left
/// out; bounded in count and size.
fn serialize_dir(root: &Path) -> Result<Vec<Value>, String> {
    const MAX_FILES: usize = 10_000;
    const MAX_BYTES: u64 = 50 * 1024 * 1024;
    let mut files = Vec::new();
    let mut total = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| e.to_string())?;
            let kind = entry.file_type().map_err(|e| e.to_string())?;
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let meta = entry.metadata().map_err(|e| e.to_string())?;
                total += meta.len();
                if files.len() >= MAX_FILES || total > MAX_BYTES {
                    return Err(format!(
                        "the dry run produced more than {MAX_FILES} files or {MAX_BYTES} bytes"
                    ));
                }
                let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let relative = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                files.push((relative, bytes, is_executable(&meta)));
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files
        .into_iter()
        .map(|(path, bytes, executable)| {
            json!({
                "path": path,
                "executable": executable,
                "base64Content": base64::engine::general_purpose::STANDARD.encode(bytes),
            })
        })
        .collect())
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Reads `directoryContents` of a dry-run request: `[{path, base64Content}]` into path → bytes.
pub fn directory_contents(value: &Value) -> Result<BTreeMap<String, Vec<u8>>, AppError> {
    let mut files = BTreeMap::new();
    let Some(list) = value.as_array() else {
        return Ok(files);
    };
    for (index, file) in list.iter().enumerate() {
        let path = file["path"].as_str().ok_or_else(|| {
            AppError::input(format!("directoryContents[{index}].path must be a string"))
        })?;
        let content = file["base64Content"].as_str().unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(content)
            .map_err(|e| {
                AppError::input(format!(
                    "directoryContents[{index}].base64Content is not base64: {e}"
                ))
            })?;
        files.insert(path.to_owned(), bytes);
    }
    Ok(files)
}
