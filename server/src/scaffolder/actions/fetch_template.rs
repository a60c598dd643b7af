//! `fetch:template` and `fetch:template:file`: a skeleton rendered into the workspace.
//!
//! The semantics follow Backstage's `fetch:template` (scaffolder-backend `builtin/fetch/template.ts`):
//!
//! - every entry of the skeleton, directories included, has its path rendered (directories with a
//!   trailing `/`); an entry whose rendered path is empty or has an empty segment (`${{ values.x }}/a`
//!   with `x` empty) is skipped, with everything under it;
//! - the context is `{"values": <values>}`; with `cookiecutterCompat` the values are `cookiecutter`
//!   and the delimiters `{{ }}`;
//! - `copyWithoutTemplating` globs (matched, `.`-files included, against the path relative to the
//!   skeleton; a pattern naming a directory as it is stands for everything under it; `!` excludes):
//!   contents copied as they are, paths still rendered. The deprecated `copyWithoutRender` leaves
//!   the matched paths unrendered too. Both at once is an error;
//! - `templateFileExtension` (`true` means `.njk`): only files with that extension are rendered, and
//!   lose it; their paths and all others are rendered. It cannot go with the copy globs or
//!   `cookiecutterCompat`;
//! - an existing destination is left alone (silently, as Backstage does) unless `replace`;
//! - binary files (Backstage uses `isbinaryfile`: a NUL or too many control bytes in the first 512
//!   bytes) and symbolic links are copied untouched; so is anything that is not UTF-8, which could not
//!   be rendered faithfully. The executable bit is kept.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::entries::{CopyOnly, extension_of, is_binary, is_skipped};
use super::{
    Job, TOKEN, URL_FILE, URL_TREE, blocking, no_output, optional_bool, optional_str, path_error,
    read_file, required_str,
};
use crate::scaffolder::actions::{Action, ActionContext, ActionError};
use crate::scaffolder::expr::Expressions;
use crate::scaffolder::source::{SourceEntry, SourceTree, join_shown};
use crate::scaffolder::workspace::lexical_parts;

/// `fetch:template`: renders a skeleton directory into the workspace.
pub struct FetchTemplate;

/// `fetch:template:file`: renders one file into the workspace.
pub struct FetchTemplateFile;

const VALUES: &str = "Values to pass on to the templating engine";
const COOKIECUTTER: &str =
    "Enable features to maximise compatibility with templates built for fetch:cookiecutter";

impl Action for FetchTemplate {
    fn id(&self) -> &'static str {
        "fetch:template"
    }

    fn description(&self) -> &'static str {
        "Downloads a skeleton, templates variables into file and directory names and content, and places the result in the workspace, or optionally in a subdirectory specified by the `targetPath` input option."
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
                "values": {"title": "Template Values", "description": VALUES, "type": "object"},
                "copyWithoutRender": {
                    "title": "[Deprecated] Copy Without Render",
                    "description": "Deprecated: use copyWithoutTemplating. Glob patterns; matched files and directories are copied without rendering their contents or their paths.",
                    "type": "array",
                    "items": {"type": "string"}
                },
                "copyWithoutTemplating": {
                    "title": "Copy Without Templating",
                    "description": "Glob patterns, relative to the skeleton; the contents of matched files are copied as they are, while their paths are still rendered.",
                    "type": "array",
                    "items": {"type": "string"}
                },
                "cookiecutterCompat": {
                    "title": "Cookiecutter compatibility mode",
                    "description": COOKIECUTTER,
                    "type": "boolean"
                },
                "templateFileExtension": {
                    "title": "Template File Extension",
                    "description": "If set, only files with this extension are rendered (and lose it); `true` means `.njk`.",
                    "type": ["string", "boolean"]
                },
                "replace": {
                    "title": "Replace files",
                    "description": "Replace files already in targetPath instead of skipping them.",
                    "type": "boolean"
                },
                "trimBlocks": {
                    "title": "Trim blocks",
                    "description": "Not supported yet: true is refused.",
                    "type": "boolean"
                },
                "lstripBlocks": {
                    "title": "Strip leading whitespace of blocks",
                    "description": "Not supported yet: true is refused.",
                    "type": "boolean"
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
            let settings = Settings::read(ctx, id)?;
            ctx.log(format!("Fetching template content from {url}"));
            let job = Job::new(ctx);
            blocking(move || {
                job.workspace
                    .resolve(&settings.target)
                    .map_err(|e| path_error(id, "targetPath", e))?;
                let tree = job.read_tree(id, &url)?;
                job.log(format!(
                    "Processing {} template files and directories",
                    tree.entries.len()
                ));
                let written = render_tree(&job, &settings, &url, &tree)?;
                job.log(format!(
                    "Template result written to {} ({written} files and directories)",
                    settings.target
                ));
                Ok(Map::new())
            })
            .await
        }
        .boxed()
    }
}

impl Action for FetchTemplateFile {
    fn id(&self) -> &'static str {
        "fetch:template:file"
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
                "values": {"title": "Template Values", "description": VALUES, "type": "object"},
                "cookiecutterCompat": {
                    "title": "Cookiecutter compatibility mode",
                    "description": COOKIECUTTER,
                    "type": "boolean"
                },
                "replace": {
                    "title": "Replace file",
                    "description": "Replace the file at targetPath when it exists, instead of leaving it.",
                    "type": "boolean"
                },
                "trimBlocks": {
                    "title": "Trim blocks",
                    "description": "Not supported yet: true is refused.",
                    "type": "boolean"
                },
                "lstripBlocks": {
                    "title": "Strip leading whitespace of blocks",
                    "description": "Not supported yet: true is refused.",
                    "type": "boolean"
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
            let cookiecutter = optional_bool(ctx, id, "cookiecutterCompat")?;
            let replace = optional_bool(ctx, id, "replace")?;
            refuse_unsupported(ctx, id)?;
            let renderer = Renderer::new(ctx.expressions.clone(), cookiecutter, values(ctx, id)?);
            if ctx
                .workspace
                .kind(&target)
                .map_err(|e| path_error(id, "targetPath", e))?
                .is_some()
                && !replace
            {
                ctx.log(format!(
                    "File {target} already exists in the workspace; not replacing it (replace: true would)"
                ));
                return Ok(Map::new());
            }
            ctx.log(format!("Fetching template file from {url}"));
            let file = read_file(ctx, id, &url).await?;
            let job = Job::new(ctx);
            blocking(move || {
                let text = std::str::from_utf8(&file.contents).map_err(|_| {
                    ActionError::input(format!(
                        "{id}: {url} is not UTF-8 text and cannot be rendered; fetch:plain:file copies it as it is"
                    ))
                })?;
                let rendered = renderer.render(text).map_err(|e| {
                    ActionError::failed(format!("{id}: file {url}: rendering failed: {e}"))
                })?;
                job.workspace
                    .write_file(&target, rendered.as_bytes(), false)
                    .map_err(|e| path_error(id, "targetPath", e))?;
                job.log(format!("Template file written to {target}"));
                Ok(Map::new())
            })
            .await
        }
        .boxed()
    }
}

/// `fetch:template`'s inputs, checked in the order Backstage checks them.
struct Settings {
    target: String,
    copy_only: Option<Vec<String>>,
    /// Whether paths matched by `copy_only` are still rendered (`copyWithoutTemplating`), or not
    /// (`copyWithoutRender`).
    render_copied_paths: bool,
    /// `.njk` and the like, with its dot.
    extension: Option<String>,
    replace: bool,
    renderer: Renderer,
}

impl Settings {
    fn read(ctx: &ActionContext<'_>, id: &str) -> Result<Self, ActionError> {
        let target = optional_str(ctx, id, "targetPath")?
            .unwrap_or("./")
            .to_owned();
        let without_render = string_list(ctx, id, "copyWithoutRender")?;
        let without_templating = string_list(ctx, id, "copyWithoutTemplating")?;
        let (copy_only, render_copied_paths) = match (without_render, without_templating) {
            (Some(_), Some(_)) => {
                return Err(ActionError::input(format!(
                    "{id}: copyWithoutRender and copyWithoutTemplating cannot be given together; copyWithoutRender is deprecated, keep copyWithoutTemplating"
                )));
            }
            (Some(patterns), None) => {
                ctx.log(
                    "[Deprecated] copyWithoutRender is deprecated; use copyWithoutTemplating instead",
                );
                (Some(patterns), false)
            }
            (None, patterns) => (patterns, true),
        };
        let cookiecutter = optional_bool(ctx, id, "cookiecutterCompat")?;
        let extension = match ctx.input.get("templateFileExtension") {
            None | Some(Value::Null | Value::Bool(false)) => None,
            Some(Value::Bool(true)) => Some(".njk".to_owned()),
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) if s.starts_with('.') => Some(s.clone()),
            Some(Value::String(s)) => Some(format!(".{s}")),
            Some(_) => {
                return Err(ActionError::input(format!(
                    "{id}: input templateFileExtension must be a string or a boolean"
                )));
            }
        };
        if extension.is_some() && (copy_only.is_some() || cookiecutter) {
            return Err(ActionError::input(format!(
                "{id}: templateFileExtension cannot be combined with copyWithoutRender, copyWithoutTemplating or cookiecutterCompat"
            )));
        }
        refuse_unsupported(ctx, id)?;
        Ok(Self {
            target,
            copy_only,
            render_copied_paths,
            extension,
            replace: optional_bool(ctx, id, "replace")?,
            renderer: Renderer::new(ctx.expressions.clone(), cookiecutter, values(ctx, id)?),
        })
    }
}

/// Nunjucks options Backstage passes through and our engine does not have yet: refused rather than
/// rendered differently.
fn refuse_unsupported(ctx: &ActionContext<'_>, id: &str) -> Result<(), ActionError> {
    for key in ["trimBlocks", "lstripBlocks"] {
        if optional_bool(ctx, id, key)? {
            return Err(ActionError::input(format!(
                "{id}: {key} is not supported yet; remove it (whitespace around blocks is kept)"
            )));
        }
    }
    Ok(())
}

fn string_list(
    ctx: &ActionContext<'_>,
    id: &str,
    key: &str,
) -> Result<Option<Vec<String>>, ActionError> {
    let not_strings =
        || ActionError::input(format!("{id}: input {key} must be an array of strings"));
    match ctx.input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(not_strings))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(not_strings()),
    }
}

/// The `values` input; absent means an empty object, so `${{ values.x }}` renders empty as it does
/// in Backstage.
fn values(ctx: &ActionContext<'_>, id: &str) -> Result<Value, ActionError> {
    match ctx.input.get("values") {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(_) => Err(ActionError::input(format!(
            "{id}: input values must be an object"
        ))),
    }
}

/// Renders text with the task's expressions against `{"values": ...}`. With `cookiecutterCompat`
/// the engine's cookiecutter mode binds `cookiecutter` to those values (Backstage's context is then
/// `{"cookiecutter": values}`; `values` staying visible as well is harmless).
struct Renderer {
    expressions: Expressions,
    cookiecutter: bool,
    context: Value,
}

impl Renderer {
    fn new(expressions: Expressions, cookiecutter: bool, values: Value) -> Self {
        Self {
            expressions,
            cookiecutter,
            context: json!({ "values": values }),
        }
    }

    fn render(&self, text: &str) -> Result<String, String> {
        let rendered = if self.cookiecutter {
            self.expressions
                .render_text_cookiecutter(text, &self.context)
        } else {
            self.expressions.render_text(text, &self.context)
        };
        rendered.map_err(|e| e.to_string())
    }
}

/// Renders every entry of `tree` into the workspace under the target; returns how many were written.
fn render_tree(
    job: &Job,
    settings: &Settings,
    url: &str,
    tree: &SourceTree,
) -> Result<usize, ActionError> {
    const ID: &str = "fetch:template";
    let copy_only = match &settings.copy_only {
        Some(patterns) => Some(CopyOnly::new(patterns, tree)?),
        None => None,
    };
    let mut written = 0;
    for (relative, entry) in &tree.entries {
        let is_dir = matches!(entry, SourceEntry::Dir);
        // Backstage lists directories with a trailing `/`, and renders that form.
        let location = if is_dir {
            format!("{relative}/")
        } else {
            relative.clone()
        };
        let shown = join_shown(url, &location);
        let render_path = |path: &str| {
            settings.renderer.render(path).map_err(|e| {
                ActionError::failed(format!(
                    "{ID}: file {shown}: rendering its path failed: {e}"
                ))
            })
        };
        let (render_contents, output) = match &settings.extension {
            Some(extension) => {
                let templated = !is_dir && extension_of(&location) == extension;
                let path = if templated {
                    &location[..location.len() - extension.len()]
                } else {
                    location.as_str()
                };
                (templated, render_path(path)?)
            }
            None => {
                let copied = copy_only
                    .as_ref()
                    .is_some_and(|globs| globs.matches(relative, is_dir));
                let output = if copied && !settings.render_copied_paths {
                    location.clone()
                } else {
                    render_path(&location)?
                };
                if copied {
                    job.log(format!("Copying {shown} without processing"));
                }
                (!copied, output)
            }
        };
        if is_skipped(&output, is_dir) {
            job.log(format!(
                "Skipping {shown}: its path renders to {output:?}, which has an empty part"
            ));
            continue;
        }
        let inside_target = lexical_parts(&output).map_err(|_| {
            let why = if output.contains('\0') {
                "which contains a NUL character"
            } else {
                "which leaves targetPath"
            };
            ActionError::input(format!(
                "{ID}: file {shown}: its path renders to {output:?}, {why} {}",
                settings.target
            ))
        })?;
        let destination = super::join_relative(&settings.target, &inside_target.join("/"));
        let exists = job
            .workspace
            .kind(&destination)
            .map_err(|e| path_error(ID, &format!("file {shown}"), e))?
            .is_some();
        if exists && !settings.replace {
            if !is_dir {
                job.log(format!(
                    "Leaving {destination} as it is: it exists (replace: true would overwrite it)"
                ));
            }
            continue;
        }
        let result = match entry {
            SourceEntry::Dir => job.workspace.create_dir(&destination),
            SourceEntry::Symlink(link) => job.workspace.create_symlink(&destination, link),
            SourceEntry::File(file) => {
                let contents = if render_contents && !is_binary(&file.contents) {
                    // `is_binary` is false only for UTF-8.
                    let text = String::from_utf8_lossy(&file.contents);
                    let rendered = settings.renderer.render(&text).map_err(|e| {
                        ActionError::failed(format!("{ID}: file {shown}: rendering failed: {e}"))
                    })?;
                    rendered.into_bytes()
                } else {
                    file.contents.clone()
                };
                job.workspace
                    .write_file(&destination, &contents, file.executable)
            }
        };
        result.map_err(|e| path_error(ID, &format!("file {shown}"), e))?;
        written += 1;
    }
    Ok(written)
}
