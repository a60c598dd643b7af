//! The built-in actions and what every action gets to work with.
//!
//! An action is a named, schema-described step (`fetch:template`, `publish:git`, ...). The runner renders
//! a step's `input` with the task's expressions, checks it against the action's input schema, and calls
//! [`Action::run`] with an [`ActionContext`]; what `run` returns is the step's `output`.

pub mod catalog;
pub mod debug;
pub mod fetch;
pub mod fs;
pub mod notification;
pub mod publish;
pub mod registry;
pub mod repo_url;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::expr::Expressions;
use super::source::TemplateSource;
use super::workspace::{PathError, Workspace};
use crate::auth::Caller;
use crate::catalog::CatalogService;
use crate::config::Config;

/// What an action needs beyond its input: shared for the whole server.
#[derive(Clone)]
pub struct ActionServices {
    pub db: sqlx::PgPool,
    pub catalog: CatalogService,
    pub config: Arc<Config>,
}

/// One log line from an action. The runner stores it as an event row (redacted).
pub type LogSink = tokio::sync::mpsc::UnboundedSender<String>;

/// Everything one step's action may use. Nothing here reaches outside the task's workspace except
/// through `services`, whose own rules (allowlists, permissions) apply.
pub struct ActionContext<'a> {
    /// The rendered input, already checked against [`Action::input_schema`].
    pub input: Map<String, Value>,
    pub workspace: &'a Workspace,
    /// Where the template's own files are (`fetch:*` with a relative `url`).
    pub source: &'a TemplateSource,
    /// Renders file contents and paths for `fetch:template`.
    pub expressions: &'a Expressions,
    /// The task's secrets (tokens given at run time); never logged or returned.
    pub secrets: &'a Map<String, Value>,
    /// The entity ref of the user the task runs as (`user:default/guest`).
    pub user_ref: &'a str,
    /// Who created the task, with the scopes recorded in its spec when it was created: what the
    /// steps may do on their behalf (`deploy:<environment>`), checked when the step runs.
    pub caller: &'a Caller,
    /// The task's id (`dry-run-<uuid>` in a dry run), for records that point back at it.
    pub task_id: &'a str,
    /// The template the task runs (`template:default/x`); empty when the spec was given inline.
    pub template_ref: &'a str,
    /// The task's parameters (the form's values).
    pub parameters: &'a Value,
    /// A dry run: no side effects outside the workspace.
    pub dry_run: bool,
    pub log: LogSink,
    pub services: &'a ActionServices,
}

impl ActionContext<'_> {
    /// Writes one line to the step's log.
    pub fn log(&self, line: impl Into<String>) {
        // The receiver lives as long as the step; a closed channel only means the task is gone.
        let _ = self.log.send(line.into());
    }

    /// A string input, `None` when absent.
    pub fn str_input(&self, key: &str) -> Option<&str> {
        self.input.get(key).and_then(Value::as_str)
    }
}

/// Why an action failed; the message is shown in the task log and the API, so it says what and where.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The input is wrong (a missing field, a URL off the allowlist, ...).
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Path(#[from] PathError),
    /// A path that leads out of the task's workspace, said with where it was met. Besides failing the
    /// step it is audited as a denial: a template's parameters were used to try to escape.
    #[error("{0}")]
    Outside(String),
    /// The action ran and failed (a push was refused, a repository exists, ...).
    #[error("{0}")]
    Failed(String),
}

impl ActionError {
    pub fn input(message: impl Into<String>) -> Self {
        Self::Input(message.into())
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// Whether the action was refused a path outside the workspace.
    pub fn is_escape(&self) -> bool {
        matches!(
            self,
            Self::Outside(_) | Self::Path(PathError::Outside { .. })
        )
    }
}

/// A built-in action.
pub trait Action: Send + Sync {
    /// `fetch:template`, `publish:git`, ...
    fn id(&self) -> &'static str;
    fn description(&self) -> &'static str;
    /// JSON Schema of the input (checked before `run`).
    fn input_schema(&self) -> Value;
    /// JSON Schema of the output.
    fn output_schema(&self) -> Value;
    /// Whether a dry run runs the action (it touches only the workspace), or only reports it.
    fn supports_dry_run(&self) -> bool;
    /// Whether the action deploys to the environment its `environment` input names, so that creating
    /// a task with it needs `deploy:<environment>` (checked then where the input is known, and by the
    /// action itself when it runs).
    fn deploys_to_environment(&self) -> bool {
        false
    }
    /// Runs the action; the returned map is the step's `output`.
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Map<String, Value>, ActionError>>;
}
