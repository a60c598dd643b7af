//! `debug:log` and `debug:wait`: what template authors use to see values and to pace a run.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::{Action, ActionContext, ActionError};

pub fn actions() -> Vec<Box<dyn Action>> {
    vec![Box::new(Log), Box::new(Wait)]
}

struct Log;

impl Action for Log {
    fn id(&self) -> &'static str {
        "debug:log"
    }
    fn description(&self) -> &'static str {
        "Writes a message into the log, and optionally the files in the workspace."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "message": {"type": "string", "title": "Message to output"},
                "listWorkspace": {
                    "title": "List all files in the workspace, optionally with their contents",
                    "oneOf": [{"type": "boolean"}, {"enum": ["with-filenames", "with-contents"]}],
                },
            },
        })
    }
    fn output_schema(&self) -> Value {
        json!({"type": "object", "properties": {}})
    }
    fn supports_dry_run(&self) -> bool {
        true
    }
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Map<String, Value>, ActionError>> {
        async move {
            if let Some(message) = ctx.str_input("message") {
                ctx.log(message);
            }
            let list = &ctx.input.get("listWorkspace");
            let contents = list.and_then(Value::as_str) == Some("with-contents");
            if list.is_some_and(|v| v == true || v.is_string()) {
                let root = ctx.workspace.root().to_path_buf();
                let files = tokio::task::spawn_blocking(move || list_files(&root, contents))
                    .await
                    .map_err(|e| ActionError::failed(format!("listing the workspace: {e}")))?;
                ctx.log(format!("Workspace:\n{files}"));
            }
            Ok(Map::new())
        }
        .boxed()
    }
}

/// The workspace's files, one per line (symlinks listed, not followed), each with its contents when
/// asked; bounded so a large workspace cannot flood the log.
fn list_files(root: &std::path::Path, contents: bool) -> String {
    const MAX_BYTES: usize = 64 * 1024;
    let mut out = String::new();
    let mut stack = vec![root.to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) => files.push(path),
                Err(_) => {}
            }
        }
    }
    files.sort();
    for path in files {
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        out.push_str("- ");
        out.push_str(&relative);
        out.push('\n');
        if contents
            && path.is_file()
            && !path.is_symlink()
            && let Ok(text) = std::fs::read_to_string(&path)
        {
            out.push_str(&text);
            out.push('\n');
        }
        if out.len() > MAX_BYTES {
            out.truncate(MAX_BYTES);
            out.push_str("\n... (truncated)");
            break;
        }
    }
    out
}

struct Wait;

/// Backstage caps a wait at ten minutes.
const MAX_WAIT: Duration = Duration::from_secs(600);

impl Action for Wait {
    fn id(&self) -> &'static str {
        "debug:wait"
    }
    fn description(&self) -> &'static str {
        "Waits for the given time (at most 10 minutes) before the next step."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "minutes": {"type": "number", "minimum": 0},
                "seconds": {"type": "number", "minimum": 0},
                "milliseconds": {"type": "number", "minimum": 0},
            },
        })
    }
    fn output_schema(&self) -> Value {
        json!({"type": "object", "properties": {}})
    }
    fn supports_dry_run(&self) -> bool {
        true
    }
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Map<String, Value>, ActionError>> {
        async move {
            let number = |key: &str| ctx.input.get(key).and_then(Value::as_f64).unwrap_or(0.0);
            let millis =
                number("minutes") * 60_000.0 + number("seconds") * 1000.0 + number("milliseconds");
            let wait = Duration::from_secs_f64(millis / 1000.0);
            if wait > MAX_WAIT {
                return Err(ActionError::input(format!(
                    "debug:wait: {} s is longer than the maximum of {} s",
                    wait.as_secs(),
                    MAX_WAIT.as_secs()
                )));
            }
            ctx.log(format!("Waiting {} ms", wait.as_millis()));
            tokio::time::sleep(wait).await;
            Ok(Map::new())
        }
        .boxed()
    }
}
