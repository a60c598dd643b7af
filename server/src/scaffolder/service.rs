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
use super::template::{Step, Template};
use super::workspace::Workspace;
use crate::auth::policy::Target;
use crate::auth::scope::canonical_template_ref;
use crate::auth::service::{audit, audit_refusal};
use crate::auth::{Caller, Scope};
use crate::catalog::CatalogService;
use crate::catalog::model::refs::{EntityRef, RefDefaults};
use crate::config::Config;
use crate::error::AppError;

/// Backstage's guest user: who acts in guest mode, and the creator of every task made before tasks
/// recorded their creator's scopes.
pub const GUEST_USER_REF: &str = crate::auth::caller::GUEST;

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
    /// Who asks: the task's creator (`caller.actor()`). Their scopes are checked now and recorded in
    /// the spec, for the steps that run later in a worker.
    pub caller: &'a Caller,
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
        all.extend(actions::notification::actions());
        all.extend(more_actions);
        let services = ActionServices {
            db: db.clone(),
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

    /// The scaffolder's configuration (publish hosts, allowlists, limits).
    pub fn config(&self) -> &crate::config::ScaffolderConfig {
        &self.config.scaffolder
    }

    /// Hosts repository URLs may name (`scaffolder.allowed_hosts`): the form's host choices.
    pub fn allowed_hosts(&self) -> &[String] {
        &self.config.scaffolder.allowed_hosts
    }

    pub fn actions(&self) -> &ActionRegistry {
        &self.engine.actions
    }

    /// A template by reference (`template:default/x`, `default/x` or `x`).
    /// The template `reference` names, when it exists and the caller may see it (otherwise both are
    /// the same 404).
    pub async fn template(&self, caller: &Caller, reference: &str) -> Result<Template, AppError> {
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
        let Some(entity) = self.catalog.entity_for(caller, &parsed.key()).await? else {
            return Err(AppError::not_found(format!(
                "No template found for {reference}"
            )));
        };
        Template::from_entity(entity)
    }

    /// Refuses (403, naming only the missing scope) unless the caller holds `scope`; the refusal is
    /// audited as `action` on `target`.
    async fn require(
        &self,
        caller: &Caller,
        action: &str,
        target: &str,
        scope: &Scope,
    ) -> Result<(), AppError> {
        if caller.allows(scope) {
            return Ok(());
        }
        self.audit_denied(caller, action, target, json!({"needs": scope.to_string()}))
            .await;
        Err(AppError::Forbidden {
            permission: scope.to_string(),
        })
    }

    /// The permission policy's word on `action`; a refusal is audited (naming the rule) and answered
    /// with a plain 403 that does not.
    async fn permit(&self, caller: &Caller, action: &str, target: &Target) -> Result<(), AppError> {
        let decision = self.config.permissions.decide_for(caller, action, target);
        if decision.allowed {
            return Ok(());
        }
        audit_refusal(&self.engine.db, caller, action, target, &decision).await;
        Err(AppError::NotAllowed(
            "You are not allowed to do this".to_owned(),
        ))
    }

    /// Records a refusal (nothing changed, so in no transaction); a failure to record it is logged.
    async fn audit_denied(&self, caller: &Caller, action: &str, target: &str, detail: Value) {
        if let Err(error) = audit(&self.engine.db, caller, action, target, "denied", detail).await {
            tracing::error!(%error, "could not write an audit event");
        }
    }

    /// What running `steps` with these values needs besides the template: `deploy:<environment>`
    /// for each step that deploys (see [`actions::Action::deploys_to_environment`]) to an environment
    /// known before it runs. A step whose environment comes from something known only then (an
    /// earlier step's output, `each`, a cluster name) is checked by its action when it runs.
    fn deploy_scopes(&self, steps: &[Step], parameters: &Value, user: &Value) -> Vec<Scope> {
        let context = json!({
            "parameters": parameters,
            "user": user,
            "steps": {},
            "secrets": {},
            "context": {"task": {}},
        });
        let mut scopes: Vec<Scope> = steps
            .iter()
            .filter(|step| {
                self.engine
                    .actions
                    .get(&step.action)
                    .is_some_and(|a| a.deploys_to_environment())
            })
            .filter(|step| match &step.condition {
                None => true,
                // A condition on earlier steps' outputs is only known when the step comes.
                Some(condition) if condition.to_string().contains("steps.") => false,
                // A step these values skip needs nothing; a condition that cannot render fails the run.
                Some(condition) => self
                    .engine
                    .expressions
                    .condition(condition, &context)
                    .unwrap_or(false),
            })
            .filter_map(|step| {
                let raw = step.input.as_ref()?.get("environment")?.as_str()?;
                known_before_run(raw, parameters)
            })
            .map(Scope::Deploy)
            .collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }

    pub async fn create_task(&self, request: NewTaskRequest<'_>) -> Result<Uuid, CreateError> {
        let caller = request.caller;
        let Some(template_ref) = canonical_template_ref(request.template_ref) else {
            return Err(AppError::input(format!(
                "{} is not a template reference",
                request.template_ref
            ))
            .into());
        };
        // Before the template is looked up: whether it exists is not told to who may not run it.
        self.require(
            caller,
            "task.create",
            &template_ref,
            &Scope::TemplateRun(template_ref.clone()),
        )
        .await?;
        let template = self.template(caller, &template_ref).await?;
        self.permit(
            caller,
            "scaffolder.task.create",
            &Target::entity(&template.entity).with_template(&template.entity_ref),
        )
        .await?;
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
        let user_entity = self.catalog.entity(&caller.user_ref).await?;
        let spec = template.task_spec(values, caller, user_entity.as_ref());
        for scope in self.deploy_scopes(&template.steps, values, &spec["user"]) {
            self.require(caller, "task.create", &template.entity_ref, &scope)
                .await?;
        }
        let actor = caller.actor();
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
        let mut tx = self.engine.db.begin().await?;
        let inserted = db::insert_task(
            &mut tx,
            &db::NewTask {
                id: Uuid::new_v4(),
                spec: &spec,
                created_by: &actor,
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
            Ok(id) => {
                audit(
                    &mut *tx,
                    caller,
                    "task.create",
                    &format!("task:{id}"),
                    "success",
                    json!({"template": template.entity_ref}),
                )
                .await?;
                tx.commit().await?;
                Ok(id)
            }
            // The same request again: the earlier task, and nothing new to record.
            Err((id, earlier)) if earlier == digest => Ok(id),
            Err((id, _)) => Err(AppError::conflict(format!(
                "The Idempotency-Key was used for a different request (task {id})"
            ))
            .into()),
        }
    }

    /// Any task, whoever made it (for the runner and tests; callers go through [`Self::task_for`]).
    pub async fn task(&self, id: Uuid) -> Result<TaskRow, AppError> {
        db::task(&self.engine.db, id)
            .await?
            .ok_or_else(|| task_not_found(id))
    }

    /// A task the caller may see: one they created, or any for an admin. Another's task is "not
    /// found", exactly as one that does not exist, so its existence is not told.
    pub async fn task_for(&self, caller: &Caller, id: Uuid) -> Result<TaskRow, AppError> {
        let task = self.task(id).await?;
        if may_see(caller, &task) {
            Ok(task)
        } else {
            Err(task_not_found(id))
        }
    }

    /// A task the caller may act on (cancel, retry); refusals are audited as `action`.
    async fn task_to_act_on(
        &self,
        caller: &Caller,
        id: Uuid,
        action: &str,
    ) -> Result<TaskRow, AppError> {
        let task = self.task(id).await?;
        if !may_see(caller, &task) {
            self.audit_denied(
                caller,
                action,
                &format!("task:{id}"),
                json!({"reason": "not the task's creator"}),
            )
            .await;
            return Err(task_not_found(id));
        }
        Ok(task)
    }

    /// A page of the tasks the caller may see: their own, or everyone's for an admin. `createdBy`
    /// filters within that.
    pub async fn list_tasks(
        &self,
        caller: &Caller,
        mut list: TaskList,
    ) -> Result<(Vec<TaskRow>, i64), AppError> {
        if !caller.is_admin() {
            let actor = caller.actor();
            if !list.created_by.is_empty() && !list.created_by.contains(&actor) {
                return Ok((Vec::new(), 0));
            }
            list.created_by = vec![actor];
        }
        Ok(db::list_tasks(&self.engine.db, &list).await?)
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

    /// Cancels a task the caller may act on. Audited as `task.cancel` when it changed something (a
    /// task that had already ended is left as it was).
    pub async fn cancel(&self, caller: &Caller, id: Uuid) -> Result<String, AppError> {
        self.task_to_act_on(caller, id, "task.cancel").await?;
        let mut tx = self.engine.db.begin().await?;
        let Some(cancelled) = db::request_cancel(&mut *tx, id).await? else {
            return Err(task_not_found(id));
        };
        let was = match cancelled {
            db::Cancelled::Now => {
                let body = json!({"message": "Run cancelled", "status": "cancelled"});
                db::append_event(&mut *tx, id, None, "cancelled", &body).await?;
                db::append_event(&mut *tx, id, None, "completion", &body).await?;
                "open"
            }
            db::Cancelled::Requested => {
                let body = json!({"message": "Cancel requested: the run stops at the end of the current step"});
                db::append_event(&mut *tx, id, None, "cancelled", &body).await?;
                "processing"
            }
            db::Cancelled::AlreadyEnded(status) => return Ok(status),
        };
        audit(
            &mut *tx,
            caller,
            "task.cancel",
            &format!("task:{id}"),
            "success",
            json!({"status": was}),
        )
        .await?;
        tx.commit().await?;
        Ok("cancelled".to_owned())
    }

    /// A new attempt of an ended task: same spec, the checkpoints of its steps with side effects (not
    /// run again), and the secrets given now (the first attempt's are gone once it ended).
    ///
    /// The new attempt stays its creator's and runs within the scopes recorded when the task was
    /// created, so a retry never widens them; whoever retries must hold the rights to run it now too.
    /// Audited as `task.retry`.
    pub async fn retry(
        &self,
        caller: &Caller,
        id: Uuid,
        secrets: Option<&Value>,
    ) -> Result<Uuid, AppError> {
        let task = self.task_to_act_on(caller, id, "task.retry").await?;
        let entity_ref = task.spec["templateInfo"]["entityRef"]
            .as_str()
            .unwrap_or_default();
        let template_ref =
            canonical_template_ref(entity_ref).unwrap_or_else(|| entity_ref.to_owned());
        let target = format!("task:{id}");
        self.require(
            caller,
            "task.retry",
            &target,
            &Scope::TemplateRun(template_ref.clone()),
        )
        .await?;
        let steps: Vec<Step> = serde_json::from_value(task.spec["steps"].clone())
            .map_err(|e| anyhow::anyhow!("the steps of task {id} do not read back: {e}"))?;
        for scope in self.deploy_scopes(&steps, &task.spec["parameters"], &task.spec["user"]) {
            self.require(caller, "task.retry", &target, &scope).await?;
        }
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
        let mut tx = self.engine.db.begin().await?;
        let inserted = db::insert_task(
            &mut tx,
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
        let new_id = inserted.unwrap_or(new_id);
        audit(
            &mut *tx,
            caller,
            "task.retry",
            &target,
            "success",
            json!({"template": template_ref, "newTask": new_id, "attempt": task.attempt + 1}),
        )
        .await?;
        tx.commit().await?;
        Ok(new_id)
    }

    /// Runs a template without side effects: actions that only touch the workspace run, the others
    /// are reported with example outputs.
    ///
    /// Needs `template:run:<the template>`; its deploy steps check `deploy:<environment>` when they
    /// run, as in a real run.
    pub async fn dry_run(
        &self,
        caller: &Caller,
        template: Value,
        values: &Value,
        secrets: Option<&Value>,
        directory_contents: BTreeMap<String, Vec<u8>>,
    ) -> Result<Result<DryRunResult, Vec<ParameterError>>, AppError> {
        let template = Template::from_entity(template)?;
        let template_ref = canonical_template_ref(&template.entity_ref)
            .unwrap_or_else(|| template.entity_ref.clone());
        self.require(
            caller,
            "task.dry-run",
            &template_ref,
            &Scope::TemplateRun(template_ref.clone()),
        )
        .await?;
        let mut values = values.clone();
        params::apply_defaults(&template.pages, &mut values);
        let values = &values;
        let errors = params::validate(&template.pages, values);
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        let user_entity = self.catalog.entity(&caller.user_ref).await?;
        let spec = template.task_spec(values, caller, user_entity.as_ref());
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

fn task_not_found(id: Uuid) -> AppError {
    AppError::not_found(format!("Task with id {id} does not exist"))
}

/// Whether the caller may see (and act on) a task: they created it, or they are an admin.
fn may_see(caller: &Caller, task: &TaskRow) -> bool {
    caller.is_admin() || task.created_by == caller.actor()
}

/// A step input known before the task runs: a literal, or exactly `${{ parameters.<name> }}` naming a
/// string value. Anything else is known only when the step renders it.
fn known_before_run(raw: &str, parameters: &Value) -> Option<String> {
    if !raw.contains("${{") {
        return Some(raw.to_owned());
    }
    let name = raw
        .trim()
        .strip_prefix("${{")?
        .strip_suffix("}}")?
        .trim()
        .strip_prefix("parameters.")?;
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plain {
        return None;
    }
    parameters.get(name)?.as_str().map(str::to_owned)
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
