//! Running a task's steps: conditions, `each`, rendering inputs, checking them against the action's
//! schema, running the action, checkpointing, and the final output.
//!
//! The same loop serves a real run (a [`Journal`] on the task's rows, fenced by the lease token) and a
//! dry run (a journal in memory). What a run writes goes through the journal only, redacted.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::redact::Redactor;
use crate::auth::Caller;
use crate::auth::policy::Target;
use crate::auth::service::{audit, audit_refusal};
use crate::scaffolder::actions::registry::ActionRegistry;
use crate::scaffolder::actions::{Action, ActionContext, ActionServices};
use crate::scaffolder::expr::Expressions;
use crate::scaffolder::source::TemplateSource;
use crate::scaffolder::template::{Step, task_caller};
use crate::scaffolder::workspace::Workspace;

/// The run can no longer write: its lease went to another worker (or the task row is gone).
#[derive(Debug, Clone, Copy)]
pub struct LeaseLost;

/// Where a run's events and checkpoints go.
pub trait Journal: Send + Sync {
    /// Appends a `log` event with this body.
    fn log(&self, body: Value) -> impl Future<Output = Result<(), LeaseLost>> + Send;
    /// Stores the checkpoints (`state`).
    fn checkpoint(&self, state: &Value) -> impl Future<Output = Result<(), LeaseLost>> + Send;
    /// Whether a cancel was asked for; asked at every step boundary, so it looks at the task row
    /// (and renews the lease while at it).
    fn cancel_requested(&self) -> impl Future<Output = Result<bool, LeaseLost>> + Send;
    /// Whether the lease is known lost (the heartbeat found out): stop at once.
    fn lease_lost(&self) -> bool;
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    Completed {
        output: Value,
    },
    Failed {
        message: String,
    },
    Cancelled,
    /// The lease was lost: nothing more may be written; another worker owns the task.
    Abandoned,
}

/// What a run needs besides its journal.
pub struct Run<'a> {
    pub task_id: String,
    pub steps: &'a [Step],
    pub output: &'a Value,
    pub parameters: &'a Value,
    /// `template:default/x`, empty for a spec given inline.
    pub template_ref: &'a str,
    pub user: &'a Value,
    pub secrets: Option<&'a Value>,
    pub redactor: &'a Redactor,
    pub workspace: &'a Workspace,
    pub source: &'a TemplateSource,
    pub expressions: &'a Expressions,
    pub actions: &'a ActionRegistry,
    pub services: &'a ActionServices,
    pub dry_run: bool,
    /// Checkpoints from an earlier attempt or worker: `{"steps": {id: {status, output}}}`.
    pub state: Value,
}

impl Run<'_> {
    pub async fn execute(mut self, journal: &impl Journal) -> (Outcome, Value) {
        let outcome = self.steps_then_output(journal).await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(LeaseLost) => Outcome::Abandoned,
        };
        (outcome, self.state)
    }

    async fn steps_then_output(&mut self, journal: &impl Journal) -> Result<Outcome, LeaseLost> {
        let mut context = json!({
            "parameters": self.parameters,
            "steps": {},
            "user": self.user,
            "secrets": self.secrets.cloned().unwrap_or_else(|| json!({})),
            "context": {"task": {"id": self.task_id}},
        });
        for step in self.steps {
            if journal.lease_lost() {
                return Err(LeaseLost);
            }
            if journal.cancel_requested().await? {
                return Ok(Outcome::Cancelled);
            }
            if let Err(message) = self.step(step, &mut context, journal).await? {
                journal
                    .log(json!({"stepId": step.id, "status": "failed", "message": self.redactor.text(&message)}))
                    .await?;
                return Ok(Outcome::Failed {
                    message: self.redactor.text(&message),
                });
            }
        }
        if journal.cancel_requested().await? {
            return Ok(Outcome::Cancelled);
        }
        match self
            .expressions
            .render_value_at("output", self.output, &context)
            .map(Option::unwrap_or_default)
        {
            Ok(output) => {
                let output = self.redactor.value(&output);
                self.state["output"] = output.clone();
                Ok(Outcome::Completed { output })
            }
            Err(error) => Ok(Outcome::Failed {
                message: self
                    .redactor
                    .text(&format!("rendering the template output: {error}")),
            }),
        }
    }

    /// Runs one step. `Ok(Err(message))`: the step failed (the run fails); `Err(LeaseLost)`: stop.
    async fn step(
        &mut self,
        step: &Step,
        context: &mut Value,
        journal: &impl Journal,
    ) -> Result<Result<(), String>, LeaseLost> {
        let Some(action) = self.actions.get(&step.action) else {
            return Ok(Err(format!(
                "step {}: there is no action {:?}; GET /api/scaffolder/v2/actions lists them",
                step.id, step.action
            )));
        };
        // A step with effects outside the workspace that finished in an earlier attempt is not run
        // again; its output stands. Steps that only build the workspace run again, since the
        // workspace of the earlier attempt is gone.
        let earlier = &self.state["steps"][&step.id];
        if earlier["status"] == "completed" && !action.supports_dry_run() {
            let output = earlier["output"].clone();
            context["steps"][&step.id] = json!({"output": output});
            journal
                .log(json!({"stepId": step.id, "status": "completed",
                    "message": format!("Skipping step {}: it finished in an earlier attempt", step.name)}))
                .await?;
            return Ok(Ok(()));
        }
        if let Some(condition) = &step.condition {
            match self.expressions.condition(condition, context) {
                Ok(true) => {}
                Ok(false) => {
                    journal
                        .log(json!({"stepId": step.id, "status": "skipped",
                            "message": format!("Skipping step {} because its if condition was false", step.id)}))
                        .await?;
                    return Ok(Ok(()));
                }
                Err(error) => return Ok(Err(format!("step {}: if: {error}", step.id))),
            }
        }
        journal
            .log(json!({"stepId": step.id, "status": "processing",
                "message": format!("Beginning step {}", step.name)}))
            .await?;
        let started = Instant::now();
        self.state["steps"][&step.id] = json!({"status": "processing"});
        journal.checkpoint(&self.state).await?;

        let iterations = match &step.each {
            None => vec![None],
            Some(each) => match self.expressions.render_value_at("each", each, context) {
                Ok(None) => {
                    return Ok(Err(format!(
                        "step {}: each is undefined; it must render to a list or an object",
                        step.id
                    )));
                }
                Ok(Some(Value::Array(items))) => items
                    .into_iter()
                    .enumerate()
                    .map(|(i, value)| Some(json!({"key": i.to_string(), "value": value})))
                    .collect(),
                Ok(Some(Value::Object(map))) => map
                    .into_iter()
                    .map(|(key, value)| Some(json!({"key": key, "value": value})))
                    .collect(),
                Ok(Some(other)) => {
                    return Ok(Err(format!(
                        "step {}: each must be a list or an object, not {other}",
                        step.id
                    )));
                }
                Err(error) => return Ok(Err(format!("step {}: each: {error}", step.id))),
            },
        };
        let repeated = step.each.is_some();
        let mut output = Map::new();
        for each in iterations {
            if let Some(each) = &each {
                context["each"] = each.clone();
            }
            let result = self.one_iteration(step, action, context, journal).await?;
            if let Some(map) = context.as_object_mut() {
                map.remove("each");
            }
            match result {
                Ok(iteration_output) if repeated => {
                    // With `each`, every output key collects one value per iteration.
                    for (key, value) in iteration_output {
                        if let Value::Array(values) = output
                            .entry(key)
                            .or_insert_with(|| Value::Array(Vec::new()))
                        {
                            values.push(value);
                        }
                    }
                }
                Ok(iteration_output) => output = iteration_output,
                Err(message) => {
                    self.state["steps"][&step.id] = json!({"status": "failed"});
                    journal.checkpoint(&self.state).await?;
                    return Ok(Err(message));
                }
            }
        }
        let output = self.redactor.value(&Value::Object(output));
        context["steps"][&step.id] = json!({"output": output});
        self.state["steps"][&step.id] = json!({
            "status": "completed",
            "output": output,
            "durationMs": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        journal.checkpoint(&self.state).await?;
        journal
            .log(json!({"stepId": step.id, "status": "completed",
                "message": format!("Finished step {}", step.name)}))
            .await?;
        Ok(Ok(()))
    }

    async fn one_iteration(
        &self,
        step: &Step,
        action: &Arc<dyn Action>,
        context: &Value,
        journal: &impl Journal,
    ) -> Result<Result<Map<String, Value>, String>, LeaseLost> {
        let input = match &step.input {
            None => Value::Object(Map::new()),
            Some(input) => match self.expressions.render_value(input, context) {
                Ok(input) => input,
                Err(error) => return Ok(Err(format!("step {}: input: {error}", step.id))),
            },
        };
        let Value::Object(input) = input else {
            return Ok(Err(format!("step {}: input must be an object", step.id)));
        };
        if let Err(message) = self
            .actions
            .check_input(action.as_ref(), &Value::Object(input.clone()))
        {
            return Ok(Err(format!(
                "step {} ({}): invalid input: {message}",
                step.id, step.action
            )));
        }
        let caller = task_caller(self.user);
        if let Err(message) = self.permitted(step, &input, &caller).await {
            return Ok(Err(message));
        }
        if self.dry_run && !action.supports_dry_run() {
            journal
                .log(json!({"stepId": step.id, "status": "skipped",
                    "message": format!("Skipping because {} does not support dry-run", step.action)}))
                .await?;
            return Ok(Ok(example_output(&action.output_schema())));
        }
        let (log, mut lines) = tokio::sync::mpsc::unbounded_channel();
        let empty = Map::new();
        let secrets = self.secrets.and_then(Value::as_object).unwrap_or(&empty);
        let ctx = ActionContext {
            input,
            workspace: self.workspace,
            source: self.source,
            expressions: self.expressions,
            secrets,
            user_ref: self.user["ref"].as_str().unwrap_or_default(),
            caller: &caller,
            task_id: &self.task_id,
            template_ref: self.template_ref,
            parameters: self.parameters,
            dry_run: self.dry_run,
            log,
            services: self.services,
        };
        let result = {
            let run = action.run(&ctx);
            tokio::pin!(run);
            // Log lines are written as they come, while the action runs.
            loop {
                tokio::select! {
                    result = &mut run => break result,
                    Some(line) = lines.recv() => {
                        journal.log(json!({"stepId": step.id, "message": self.redactor.text(&line)})).await?;
                    }
                }
            }
        };
        drop(ctx);
        while let Ok(line) = lines.try_recv() {
            journal
                .log(json!({"stepId": step.id, "message": self.redactor.text(&line)}))
                .await?;
        }
        if let Err(error) = &result
            && error.is_escape()
        {
            self.audit_escape(step, &caller, &self.redactor.text(&error.to_string()))
                .await;
        }
        Ok(result.map_err(|error| format!("step {} ({}) failed: {error}", step.id, step.action)))
    }
}

impl Run<'_> {
    /// The permission policy's word on this step (`scaffolder.action.execute`: the action id, the
    /// template, and the environment when the input names one). A refusal fails the step naming the
    /// rule — a step is never skipped silently — and is audited.
    async fn permitted(
        &self,
        step: &Step,
        input: &Map<String, Value>,
        caller: &Caller,
    ) -> Result<(), String> {
        let mut target = Target::default().with_step(&step.action);
        if !self.template_ref.is_empty() {
            target = target.with_template(self.template_ref);
        }
        if let Some(environment) = input.get("environment").and_then(Value::as_str) {
            target = target.with_environment(environment);
        }
        let decision = self.services.config.permissions.decide_for(
            caller,
            "scaffolder.action.execute",
            &target,
        );
        if decision.allowed {
            return Ok(());
        }
        audit_refusal(
            &self.services.db,
            caller,
            "scaffolder.action.execute",
            &target,
            &decision,
        )
        .await;
        Err(format!(
            "step {} ({}) was not run: the permission policy denies it: {}",
            step.id,
            step.action,
            decision.explain()
        ))
    }

    /// Records a step refused a path out of the workspace as a denial of the task's creator
    /// (`scaffolder.workspace`), so an agent probing for an escape shows in the audit log and on
    /// `/agents`, not only in its task's log. A failure to record it is logged; the step fails anyway.
    async fn audit_escape(&self, step: &Step, caller: &Caller, reason: &str) {
        let detail = json!({"step": step.id, "action": step.action, "reason": reason});
        let target = format!("task:{}", self.task_id);
        if let Err(error) = audit(
            &self.services.db,
            caller,
            "scaffolder.workspace",
            &target,
            "denied",
            detail,
        )
        .await
        {
            tracing::error!(%error, "could not write an audit event");
        }
    }
}

/// What a dry run reports as the output of an action it does not run: the schema's first example or
/// default for each property, or a placeholder of the property's type (as Backstage's dry run does).
pub fn example_output(schema: &Value) -> Map<String, Value> {
    match example_value(schema) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn example_value(schema: &Value) -> Value {
    if let Some(example) = schema["examples"].as_array().and_then(|e| e.first()) {
        return example.clone();
    }
    if let Some(default) = schema.get("default") {
        return default.clone();
    }
    match schema["type"].as_str() {
        Some("object") => Value::Object(
            schema["properties"]
                .as_object()
                .map(|props| {
                    props
                        .iter()
                        .map(|(k, v)| (k.clone(), example_value(v)))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Some("array") => json!([example_value(&schema["items"])]),
        Some("string") => json!("<example>"),
        Some("number" | "integer") => json!(0),
        Some("boolean") => json!(false),
        _ => json!("<unknown>"),
    }
}
