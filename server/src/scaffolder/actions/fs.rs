//! `fs:delete` and `fs:rename`: files moved and removed inside the task's workspace, with Backstage's
//! inputs (scaffolder-backend `builtin/filesystem/delete.ts`, `rename.ts`).
//!
//! Every path is checked by [`Workspace`] (relative, never above the root, never through a link that
//! leads out), and all of a step's paths are checked before the first change, so a refused path fails
//! the step with the workspace as it was.

use futures::FutureExt;
use futures::future::BoxFuture;
use globset::GlobBuilder;
use serde_json::{Map, Value, json};

use super::{Action, ActionContext, ActionError};
use crate::scaffolder::workspace::{EntryKind, PathError, Workspace, lexical_parts};

/// The `fs:*` actions, for the registry.
pub fn actions() -> Vec<Box<dyn Action>> {
    vec![Box::new(FsDelete), Box::new(FsRename)]
}

/// `fs:delete`: deletes files and directories (paths or globs) from the workspace.
pub struct FsDelete;

/// `fs:rename`: moves files and directories within the workspace.
pub struct FsRename;

impl Action for FsDelete {
    fn id(&self) -> &'static str {
        "fs:delete"
    }

    fn description(&self) -> &'static str {
        "Deletes files and directories from the workspace"
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["files"],
            "properties": {
                "files": {
                    "title": "Files",
                    "description": "Files and directories to delete, relative to the workspace. A path without wildcards is deleted whole (a directory with everything in it); a glob (`*.txt`, `src/**/*.test.js`, `.`-files included) deletes the files it matches.",
                    "type": "array",
                    "items": {"type": "string"}
                }
            }
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
            let id = self.id();
            let files = match ctx.input.get("files") {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<Vec<String>>>(),
                _ => None,
            }
            .ok_or_else(|| {
                ActionError::input(format!("{id}: files must be an array of strings"))
            })?;
            let workspace = ctx.workspace.clone();
            let log = ctx.log.clone();
            run_blocking(move || {
                // Backstage turns `\` into `/` before globbing (Windows-style `.\file`).
                let patterns: Vec<String> = files.iter().map(|f| f.replace('\\', "/")).collect();
                for (file, pattern) in files.iter().zip(&patterns) {
                    workspace
                        .resolve(pattern)
                        .map_err(|e| refused(id, &format!("file {file}"), e))?;
                }
                for (file, pattern) in files.iter().zip(&patterns) {
                    let deleted = delete(&workspace, pattern)
                        .map_err(|e| refused(id, &format!("file {file}"), e))?;
                    let _ = log.send(format!("{file}: {deleted} deleted"));
                }
                Ok(Map::new())
            })
            .await
        }
        .boxed()
    }
}

/// Deletes one path, or the files a glob matches; returns how many entries went.
fn delete(workspace: &Workspace, pattern: &str) -> Result<usize, PathError> {
    if !is_glob(pattern) {
        return Ok(usize::from(workspace.delete(pattern)?));
    }
    let normalized = lexical_parts(pattern)?.join("/");
    let glob = glob(&normalized)
        .map_err(|e| PathError::Io {
            path: pattern.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("is not a valid glob: {e}"),
            ),
        })?
        .compile_matcher();
    // Files and links only, as globby's default `onlyFiles` lists them; links are never followed.
    let matched: Vec<String> = workspace
        .entries("")?
        .into_iter()
        .filter(|entry| entry.kind != EntryKind::Dir && glob.is_match(&entry.path))
        .map(|entry| entry.path)
        .collect();
    let mut deleted = 0;
    for path in &matched {
        if workspace.delete(path)? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

impl Action for FsRename {
    fn id(&self) -> &'static str {
        "fs:rename"
    }

    fn description(&self) -> &'static str {
        "Renames files and directories within the workspace"
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["files"],
            "properties": {
                "files": {
                    "title": "Files",
                    "description": "Files and directories to rename, each from one workspace path to another.",
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["from", "to"],
                        "properties": {
                            "from": {
                                "type": "string",
                                "title": "The source location of the file to be renamed",
                                "description": "Path of the file or directory to move, relative to the workspace."
                            },
                            "to": {
                                "type": "string",
                                "title": "The destination of the new file",
                                "description": "Where it goes, relative to the workspace; missing directories are created."
                            },
                            "overwrite": {
                                "type": "boolean",
                                "title": "Overwrite existing file or directory, default is false",
                                "description": "Replace what is already at `to`; without it an existing destination is an error."
                            }
                        }
                    }
                }
            }
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
            let id = self.id();
            let Some(Value::Array(items)) = ctx.input.get("files") else {
                return Err(ActionError::input(format!("{id}: files must be an array")));
            };
            let mut moves = Vec::with_capacity(items.len());
            for item in items {
                let from = item.get("from").and_then(Value::as_str).unwrap_or("");
                let to = item.get("to").and_then(Value::as_str).unwrap_or("");
                if from.is_empty() || to.is_empty() {
                    return Err(ActionError::input(format!(
                        "{id}: each entry of files needs a from and a to path"
                    )));
                }
                let overwrite = match item.get("overwrite") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => {
                        return Err(ActionError::input(format!(
                            "{id}: overwrite of {from} must be a boolean"
                        )));
                    }
                };
                moves.push((from.to_owned(), to.to_owned(), overwrite));
            }
            let workspace = ctx.workspace.clone();
            let log = ctx.log.clone();
            run_blocking(move || {
                for (from, to, _) in &moves {
                    workspace
                        .resolve(from)
                        .map_err(|e| refused(id, &format!("from {from}"), e))?;
                    workspace
                        .resolve(to)
                        .map_err(|e| refused(id, &format!("to {to}"), e))?;
                }
                for (from, to, overwrite) in &moves {
                    workspace.rename(from, to, *overwrite).map_err(|e| {
                        let hint = match &e {
                            PathError::Io { source, .. }
                                if source.kind() == std::io::ErrorKind::AlreadyExists =>
                            {
                                " (overwrite: true replaces it)"
                            }
                            _ => "",
                        };
                        refused(id, &format!("cannot rename {from} to {to}"), e).with_hint(hint)
                    })?;
                    let _ = log.send(format!("{from} renamed to {to}"));
                }
                Ok(Map::new())
            })
            .await
        }
        .boxed()
    }
}

/// Whether a pattern has wildcards, as fast-glob decides ("dynamic" patterns): `*` or `?`, a leading
/// `!`, a `[...]` class, an extglob `@(...)`, or a `{...}` holding `,` or `..`. Braces without those
/// (`${{ values.name }}`) are plain characters.
pub(crate) fn is_glob(pattern: &str) -> bool {
    if pattern.contains(['*', '?']) || pattern.starts_with('!') {
        return true;
    }
    if let Some(open) = pattern.find('[')
        && pattern[open + 1..].contains(']')
    {
        return true;
    }
    if ["!(", "+(", "@("].iter().any(|e| pattern.contains(e)) {
        return true;
    }
    match pattern.find('{') {
        Some(open) => match pattern[open + 1..].find('}') {
            Some(close) => {
                let inside = &pattern[open + 1..open + 1 + close];
                inside.contains(',') || inside.contains("..")
            }
            None => false,
        },
        None => false,
    }
}

/// Compiles a glob the way Backstage's globby reads it: `*` does not cross `/`, `.`-files match,
/// and braces are alternatives only when they hold a `,` — `${{ values.name }}` in a pattern is
/// plain text, as skeleton paths are written before rendering.
pub(crate) fn glob(pattern: &str) -> Result<globset::Glob, globset::Error> {
    GlobBuilder::new(&literal_braces(pattern))
        .literal_separator(true)
        .build()
}

/// Rewrites `{` and `}` that do not delimit a `{a,b}` alternative as the classes `[{]` and `[}]`.
fn literal_braces(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    // For each `{`, the index of its matching `}` and whether a `,` sits directly inside.
    let mut alternatives = vec![false; chars.len()];
    let mut open: Vec<(usize, bool)> = Vec::new();
    for (i, c) in chars.iter().enumerate() {
        match c {
            '{' => open.push((i, false)),
            ',' => {
                if let Some(last) = open.last_mut() {
                    last.1 = true;
                }
            }
            '}' => {
                if let Some((start, comma)) = open.pop()
                    && comma
                {
                    alternatives[start] = true;
                    alternatives[i] = true;
                }
            }
            _ => {}
        }
    }
    let mut out = String::with_capacity(pattern.len());
    for (i, c) in chars.iter().enumerate() {
        match c {
            '{' | '}' if !alternatives[i] => {
                out.push('[');
                out.push(*c);
                out.push(']');
            }
            other => out.push(*other),
        }
    }
    out
}

/// A refused path is the input's fault; an I/O failure is the action's.
fn refused(id: &str, what: &str, error: PathError) -> ActionError {
    match error {
        PathError::Outside { .. } => ActionError::Outside(format!("{id}: {what}: {error}")),
        PathError::Io { .. } => ActionError::failed(format!("{id}: {what}: {error}")),
    }
}

trait WithHint {
    fn with_hint(self, hint: &str) -> Self;
}

impl WithHint for ActionError {
    fn with_hint(self, hint: &str) -> Self {
        match self {
            Self::Input(m) => Self::Input(m + hint),
            Self::Failed(m) => Self::Failed(m + hint),
            Self::Outside(m) => Self::Outside(m + hint),
            other @ Self::Path(_) => other,
        }
    }
}

async fn run_blocking(
    work: impl FnOnce() -> Result<Map<String, Value>, ActionError> + Send + 'static,
) -> Result<Map<String, Value>, ActionError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ActionError::failed(format!("file work failed: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_told_from_plain_names() {
        for pattern in [
            "*.txt",
            "a/**/b",
            "file?.js",
            "!keep",
            "[ab].txt",
            "{a,b}.txt",
            "{1..3}",
        ] {
            assert!(is_glob(pattern), "{pattern}");
        }
        for pattern in ["a.txt", "dir/sub", "${{ values.name }}.txt", "[oops", "{x}"] {
            assert!(!is_glob(pattern), "{pattern}");
        }
    }

    #[test]
    fn braces_without_a_comma_are_plain_text() {
        let templated = glob("*/content-${{ values.name }}.txt")
            .expect("glob")
            .compile_matcher();
        assert!(templated.is_match("dir/content-${{ values.name }}.txt"));
        assert!(!templated.is_match("dir/content-x.txt"));
        let alternatives = glob("{a,b}.txt").expect("glob").compile_matcher();
        assert!(alternatives.is_match("a.txt") && alternatives.is_match("b.txt"));
        let star = glob("*").expect("glob").compile_matcher();
        assert!(star.is_match(".env") && !star.is_match("a/b"));
    }
}
