//! `fetch:plain`, `fetch:plain:file`, `fetch:template`, `fetch:template:file`: a template's files
//! copied (or rendered) into the task's workspace, with Backstage's inputs and semantics.
//!
//! Files are read through [`TemplateSource`] (which bounds what a template may read) and written
//! through [`Workspace`] (which keeps every write inside the workspace, links included). Both are
//! blocking file I/O, so each action does its work on a blocking thread.
//!
//! Where Atrium is stricter than Backstage: `targetPath` must be relative (Backstage also accepts an
//! absolute path that happens to be inside the workspace); nothing is written through a symbolic
//! link; absolute `url`s are read only for single files, through the catalog's checked reader.

use std::path::PathBuf;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::{Action, ActionContext, ActionError, LogSink};
use crate::scaffolder::source::{
    SourceEntry, SourceError, SourceFile, SourceLimits, SourceTree, is_absolute_url,
};
use crate::scaffolder::workspace::{PathError, Workspace};

#[path = "fetch_entries.rs"]
mod entries;
#[path = "fetch_template.rs"]
mod template;

pub use template::{FetchTemplate, FetchTemplateFile};

/// The four `fetch:*` actions, for the registry.
pub fn actions() -> Vec<Box<dyn Action>> {
    vec![
        Box::new(FetchPlain),
        Box::new(FetchPlainFile),
        Box::new(FetchTemplate),
        Box::new(FetchTemplateFile),
    ]
}

/// `fetch:plain`: copies a directory of the template into the workspace, untouched.
pub struct FetchPlain;

/// `fetch:plain:file`: copies one file of the template into the workspace, untouched.
pub struct FetchPlainFile;

const URL_TREE: &str = "Relative path or absolute URL pointing to the directory tree to fetch";
const URL_FILE: &str = "Relative path or absolute URL pointing to the single file to fetch.";
const TOKEN: &str = "An optional token to use for authentication when reading the resources.";

impl Action for FetchPlain {
    fn id(&self) -> &'static str {
        "fetch:plain"
    }

    fn description(&self) -> &'static str {
        "Downloads content and places it in the workspace, or optionally in a subdirectory specified by the `targetPath` input option."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": {"title": "Fetch URL", "description": URL_TREE, "type": "string"},
                "targetPath": {
                    "title": "Target Path",
                    "description": "Target path within the working directory to download the contents to. Defaults to the working directory root.",
                    "type": "string"
                },
                "token": {"title": "Token", "description": TOKEN, "type": "string"}
            }
        })
    }

    fn output_schema(&self) -> Value {
        no_output()
    }

    fn supports_dry_run(&self) -> bool {
        true
    }

    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Map<String, Value>, ActionError>> {
        async move {
            let id = self.id();
            let url = required_str(ctx, id, "url")?.to_owned();
            let target = optional_str(ctx, id, "targetPath")?
                .unwrap_or("./")
                .to_owned();
            ctx.log(format!("Fetching plain content from {url}"));
            let job = Job::new(ctx);
            blocking(move || {
                job.workspace
                    .resolve(&target)
                    .map_err(|e| path_error(id, "targetPath", e))?;
                let tree = job.read_tree(id, &url)?;
                let count = write_tree(&job.workspace, id, &target, &tree)?;
                job.log(format!("Wrote {count} files and directories to {target}"));
                Ok(Map::new())
            })
            .await
        }
        .boxed()
    }
}

impl Action for FetchPlainFile {
    fn id(&self) -> &'static str {
        "fetch:plain:file"
    }

    fn description(&self) -> &'static str {
        "Downloads single file and places it in the workspace."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["url", "targetPath"],
            "properties": {
                "url": {"title": "Fetch URL", "description": URL_FILE, "type": "string"},
                "targetPath": {
                    "title": "Target Path",
                    "description": "Target path within the working directory to download the file as.",
                    "type": "string"
                },
                "token": {"title": "Token", "description": TOKEN, "type": "string"}
            }
        })
    }

    fn output_schema(&self) -> Value {
        no_output()
    }

    fn supports_dry_run(&self) -> bool {
        true
    }

    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Map<String, Value>, ActionError>> {
        async move {
            let id = self.id();
            let url = required_str(ctx, id, "url")?.to_owned();
            let target = required_str(ctx, id, "targetPath")?.to_owned();
            ctx.workspace
                .resolve(&target)
                .map_err(|e| path_error(id, "targetPath", e))?;
            ctx.log(format!("Fetching plain content from {url}"));
            let file = read_file(ctx, id, &url).await?;
            let job = Job::new(ctx);
            blocking(move || {
                job.workspace
                    .write_file(&target, &file.contents, file.executable)
                    .map_err(|e| path_error(id, "targetPath", e))?;
                job.log(format!("Wrote {target}"));
                Ok(Map::new())
            })
            .await
        }
        .boxed()
    }
}

/// What an action's blocking part needs, owned so it can move to a blocking thread.
struct Job {
    workspace: Workspace,
    source: crate::scaffolder::source::TemplateSource,
    roots: Vec<PathBuf>,
    log: LogSink,
}

impl Job {
    fn new(ctx: &ActionContext<'_>) -> Self {
        Self {
            workspace: ctx.workspace.clone(),
            source: ctx.source.clone(),
            roots: ctx.services.config.catalog.file_roots.clone(),
            log: ctx.log.clone(),
        }
    }

    fn log(&self, line: String) {
        // A closed channel only means the task is gone.
        let _ = self.log.send(line);
    }

    fn read_tree(&self, id: &str, url: &str) -> Result<SourceTree, ActionError> {
        self.source
            .read_tree(url, &self.roots, &SourceLimits::default())
            .map_err(|e| source_error(id, e))
    }
}

/// Reads the single file `url`: an absolute URL through the catalog's checked reader (its allowlist,
/// address rules, size and time limits; text only), anything else from the template's source.
async fn read_file(
    ctx: &ActionContext<'_>,
    id: &'static str,
    url: &str,
) -> Result<SourceFile, ActionError> {
    if is_absolute_url(url) {
        let reader = &ctx.services.catalog.reader;
        let target = reader
            .resolve("url", url)
            .map_err(|e| ActionError::input(format!("{id}: url {url}: {e}")))?;
        let text = reader
            .read(&target)
            .await
            .map_err(|e| ActionError::failed(format!("{id}: url {url}: {e}")))?;
        return Ok(SourceFile {
            contents: text.into_bytes(),
            executable: false,
        });
    }
    let job = Job::new(ctx);
    let url = url.to_owned();
    blocking(move || {
        job.source
            .read_file(&url, &job.roots, &SourceLimits::default())
            .map_err(|e| source_error(id, e))
    })
    .await
}

/// Writes a fetched tree under `target`, replacing files already there (Backstage copies with
/// `overwrite`). Returns how many entries were written.
fn write_tree(
    workspace: &Workspace,
    id: &str,
    target: &str,
    tree: &SourceTree,
) -> Result<usize, ActionError> {
    for (relative, entry) in &tree.entries {
        let destination = join_relative(target, relative);
        let written = match entry {
            SourceEntry::Dir => workspace.create_dir(&destination),
            SourceEntry::File(file) => {
                workspace.write_file(&destination, &file.contents, file.executable)
            }
            SourceEntry::Symlink(link) => workspace.create_symlink(&destination, link),
        };
        written.map_err(|e| path_error(id, &format!("writing {relative}"), e))?;
    }
    Ok(tree.entries.len())
}

/// `target` and a path below it, as one workspace-relative path.
fn join_relative(target: &str, relative: &str) -> String {
    let base = target.trim_end_matches('/');
    match base {
        "" | "." => relative.to_owned(),
        base => format!("{base}/{relative}"),
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ActionError> + Send + 'static,
) -> Result<T, ActionError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ActionError::failed(format!("file work failed: {e}"))))
}

fn no_output() -> Value {
    json!({"type": "object", "properties": {}})
}

fn required_str<'a>(
    ctx: &'a ActionContext<'_>,
    id: &str,
    key: &str,
) -> Result<&'a str, ActionError> {
    optional_str(ctx, id, key)?
        .ok_or_else(|| ActionError::input(format!("{id}: input {key} is required")))
}

fn optional_str<'a>(
    ctx: &'a ActionContext<'_>,
    id: &str,
    key: &str,
) -> Result<Option<&'a str>, ActionError> {
    match ctx.input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ActionError::input(format!(
            "{id}: input {key} must be a string, got {}",
            json_type(other)
        ))),
    }
}

fn optional_bool(ctx: &ActionContext<'_>, id: &str, key: &str) -> Result<bool, ActionError> {
    match ctx.input.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(ActionError::input(format!(
            "{id}: input {key} must be a boolean, got {}",
            json_type(other)
        ))),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A workspace path refused or failed: `what` says which input or file.
fn path_error(id: &str, what: &str, error: PathError) -> ActionError {
    match error {
        PathError::Outside { .. } => ActionError::input(format!("{id}: {what}: {error}")),
        PathError::Io { .. } => ActionError::failed(format!("{id}: {what}: {error}")),
    }
}

fn source_error(id: &str, error: SourceError) -> ActionError {
    match error {
        SourceError::NotAllowed(_) | SourceError::NotFound(_) | SourceError::Unsupported(_) => {
            ActionError::input(format!("{id}: {error}"))
        }
        SourceError::TooLarge(_) | SourceError::Failed(_) => {
            ActionError::failed(format!("{id}: {error}"))
        }
    }
}
