//! `${{ ... }}` expressions with Backstage's semantics, sandboxed and bounded.
//!
//! Backstage's scaffolder renders step inputs, `if`, `each`, the template output and fetched files
//! with nunjitsu, a sandboxed subset of Nunjucks. Atrium renders them with minijinja, set up to
//! give the same answers for what templates write (`tests/scaffolder-expressions` runs nunjitsu
//! itself as the reference, `server/tests/scaffolder_expressions.rs` compares):
//!
//! - `${{ }}` variables, `{% %}` blocks, `{# #}` comments (`{{ }}` in cookiecutter mode); no
//!   template loading (`include`, `import` and `extends` fail), no auto-escaping;
//! - undefined values are lenient as in Nunjucks: `${{ parameters.missing.deep }}` prints nothing;
//! - values print as JavaScript prints them (`true`, `a,b`, `[object Object]`, `1` for `1.0`);
//! - JavaScript spellings (`===`, `null`, `.length`, `name.toUpperCase()`) are rewritten or served
//!   by [`js`]; Backstage's filters and the Nunjucks built-ins live in [`filters`];
//! - a string that is one sole `${{ }}` keeps its value's JSON type in [`Expressions::render_value`].
//!
//! Every render is bounded: minijinja's fuel caps the work and the memory a template can use (an
//! endless loop fails with "ran out of fuel" instead of hanging), output is capped at
//! [`Limits::max_output_bytes`] while it is written, and recursion is limited. Renders share no
//! state, so one engine serves every task, and each call is short synchronous CPU work.

mod filters;
mod js;
mod scan;

pub use filters::templating_extensions;

use std::io;
use std::sync::Arc;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};
use serde_json::Value as Json;

use scan::{COOKIECUTTER, Delimiters, STANDARD};

/// Bounds on one render.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// minijinja fuel per render: about one unit per instruction and per 64 bytes of data
    /// created, so it bounds both time and memory.
    pub fuel: u64,
    /// Largest output of one render (a file, a path, one string of an input).
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 500_000,
            max_output_bytes: 1 << 20,
        }
    }
}

/// Why an expression could not be rendered. Every message says where (`at`: the input key's path
/// such as `input.values.name`, and the start of the template text) and what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ExprError {
    #[error("{at}: syntax error on line {line}: {message}")]
    Syntax {
        at: String,
        line: usize,
        message: String,
    },
    #[error("{at}: expression ran out of fuel (possible endless loop)")]
    OutOfFuel { at: String },
    #[error("{at}: output larger than {limit} bytes")]
    OutputTooLarge { at: String, limit: usize },
    #[error("{at}: {message}")]
    Render { at: String, message: String },
}

/// The expression engine, shared by every task (cheap to clone).
#[derive(Clone)]
pub struct Expressions {
    inner: Arc<Inner>,
}

struct Inner {
    limits: Limits,
    standard: Environment<'static>,
    cookiecutter: Environment<'static>,
}

impl Default for Expressions {
    fn default() -> Self {
        Expressions::new(Limits::default())
    }
}

impl std::fmt::Debug for Expressions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Expressions")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// Deepest nesting of template calls (macros, loops, blocks).
const RECURSION_LIMIT: usize = 200;

fn environment(
    delimiters: &Delimiters,
    limits: Limits,
    cookiecutter: bool,
) -> Environment<'static> {
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .variable_delimiters(delimiters.variable_start, delimiters.variable_end)
        .block_delimiters(delimiters.block_start, delimiters.block_end)
        .comment_delimiters(delimiters.comment_start, delimiters.comment_end)
        .keep_trailing_newline(true)
        .build();
    match syntax {
        Ok(syntax) => env.set_syntax(syntax),
        // The delimiters are constants that minijinja accepts; keep its default if that changes.
        Err(err) => tracing::error!(%err, "scaffolder expressions: delimiters rejected"),
    }
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(limits.fuel));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.set_formatter(|out, _state, value| {
        let text = js::to_js_string(value)?;
        out.write_str(&text)
            .map_err(|_| Error::new(ErrorKind::WriteFailure, "could not write output"))
    });
    env.set_unknown_method_callback(move |state, value, method, args| {
        js::call_method(state, value, method, args, cookiecutter)
    });
    filters::register(&mut env, cookiecutter);
    env
}

impl Expressions {
    pub fn new(limits: Limits) -> Self {
        Expressions {
            inner: Arc::new(Inner {
                limits,
                standard: environment(&STANDARD, limits, false),
                cookiecutter: environment(&COOKIECUTTER, limits, true),
            }),
        }
    }

    /// The bounds every render runs under.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Renders a template string (file contents, file paths) with `${{ }}` / `{% %}` / `{# #}`
    /// syntax; always a String.
    pub fn render_text(&self, template: &str, context: &Json) -> Result<String, ExprError> {
        let context = js::from_json(context);
        self.render_string(&self.inner.standard, &STANDARD, template, &context, None)
    }

    /// Same, for fetch:template's `cookiecutterCompat: true`: `{{ cookiecutter.x }}` syntax with
    /// `cookiecutter` bound to `values` (the other keys of the context stay visible too).
    pub fn render_text_cookiecutter(
        &self,
        template: &str,
        context: &Json,
    ) -> Result<String, ExprError> {
        let mut context = match context {
            Json::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        let values = context.get("values").cloned().unwrap_or(Json::Null);
        context.insert("cookiecutter".to_owned(), values);
        let context = js::from_json(&Json::Object(context));
        self.render_string(
            &self.inner.cookiecutter,
            &COOKIECUTTER,
            template,
            &context,
            None,
        )
    }

    /// Renders a step's `input` (or the template `output`, or `each`) recursively: every string
    /// in the JSON tree is rendered. A string that is exactly one `${{ ... }}` expression keeps
    /// the JSON type of its value (number, bool, list, object); other strings are rendered as
    /// text. An object key whose value is undefined (`${{ parameters.missing }}`) is dropped, an
    /// undefined list item becomes `null`, and an undefined whole value is `null` here (see
    /// [`Expressions::render_value_at`] to tell it apart). Errors name the key as `input.a.b`.
    pub fn render_value(&self, value: &Json, context: &Json) -> Result<Json, ExprError> {
        Ok(self
            .render_value_at("input", value, context)?
            .unwrap_or(Json::Null))
    }

    /// [`Expressions::render_value`] for a value named `root` in error messages (`output`,
    /// `each`, `input`), answering `None` when the whole value is undefined (Backstage fails a
    /// step whose `each` is undefined).
    pub fn render_value_at(
        &self,
        root: &str,
        value: &Json,
        context: &Json,
    ) -> Result<Option<Json>, ExprError> {
        let context = js::from_json(context);
        let mut path = root.to_owned();
        self.walk(value, &context, &mut path)
    }

    /// A step's `if`: a bool stays a bool; a string is rendered like an input value and judged
    /// the way Backstage's runner judges it (`isTruthy`: `""`, `0`, `null`, `[]`, `false` and an
    /// undefined value are false; the string `"false"` is true). Any other value runs the step,
    /// as in Backstage.
    pub fn condition(&self, value: &Json, context: &Json) -> Result<bool, ExprError> {
        match value {
            Json::Bool(b) => Ok(*b),
            Json::String(_) => Ok(js::json_is_truthy(
                self.render_value_at("if", value, context)?.as_ref(),
            )),
            _ => Ok(true),
        }
    }

    fn walk(
        &self,
        value: &Json,
        context: &Value,
        path: &mut String,
    ) -> Result<Option<Json>, ExprError> {
        match value {
            Json::String(s) => self.render_string_value(s, context, path),
            Json::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    out.push(self.walk(item, context, path)?.unwrap_or(Json::Null));
                    path.truncate(len);
                }
                Ok(Some(Json::Array(out)))
            }
            Json::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (key, item) in map {
                    let len = path.len();
                    push_key(path, key);
                    if let Some(rendered) = self.walk(item, context, path)? {
                        out.insert(key.clone(), rendered);
                    }
                    path.truncate(len);
                }
                Ok(Some(Json::Object(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    fn render_string_value(
        &self,
        template: &str,
        context: &Value,
        path: &str,
    ) -> Result<Option<Json>, ExprError> {
        if !has_tags(template, &STANDARD) {
            return Ok(Some(Json::String(template.to_owned())));
        }
        let env = &self.inner.standard;
        let scanned = scan::scan(template, &STANDARD);
        let Some(expression) = scanned.sole_expression else {
            return self
                .render_scanned(env, &scanned.source, template, context, Some(path))
                .map(|s| Some(Json::String(s)));
        };
        let at = || location(Some(path), template);
        let compiled = env
            .compile_expression(&expression)
            .map_err(|e| convert_error(e, at(), self.inner.limits))?;
        let value = compiled
            .eval(context.clone())
            .map_err(|e| convert_error(e, at(), self.inner.limits))?;
        let limit = self.inner.limits.max_output_bytes;
        // One value per 8 bytes of output is more than any JSON answer within the limit needs.
        let mut budget = limit / 8 + 16;
        let json = js::to_json(&value, &mut budget)
            .map_err(|_| ExprError::OutputTooLarge { at: at(), limit })?;
        if let Some(json) = &json
            && !matches!(json, Json::Bool(_) | Json::Number(_) | Json::Null)
            && serde_json::to_string(json).map_or(usize::MAX, |s| s.len()) > limit
        {
            return Err(ExprError::OutputTooLarge { at: at(), limit });
        }
        Ok(json)
    }

    fn render_string(
        &self,
        env: &Environment<'static>,
        delimiters: &Delimiters,
        template: &str,
        context: &Value,
        path: Option<&str>,
    ) -> Result<String, ExprError> {
        if !has_tags(template, delimiters) {
            return Ok(template.to_owned());
        }
        let scanned = scan::scan(template, delimiters);
        self.render_scanned(env, &scanned.source, template, context, path)
    }

    fn render_scanned(
        &self,
        env: &Environment<'static>,
        source: &str,
        template: &str,
        context: &Value,
        path: Option<&str>,
    ) -> Result<String, ExprError> {
        let limits = self.inner.limits;
        let at = || location(path, template);
        let compiled = env
            .template_from_str(source)
            .map_err(|e| convert_error(e, at(), limits))?;
        let mut writer = CappedWriter {
            buf: Vec::new(),
            limit: limits.max_output_bytes,
            exceeded: false,
        };
        let result = compiled.render_captured_to(context.clone(), &mut writer);
        if writer.exceeded {
            return Err(ExprError::OutputTooLarge {
                at: at(),
                limit: limits.max_output_bytes,
            });
        }
        result.map_err(|e| convert_error(e, at(), limits))?;
        Ok(String::from_utf8(writer.buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}

/// Whether a string has anything to render (most input strings are plain text).
fn has_tags(template: &str, delimiters: &Delimiters) -> bool {
    template.contains(delimiters.variable_start)
        || template.contains(delimiters.block_start)
        || template.contains(delimiters.comment_start)
}

fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        path.push('.');
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&Json::from(key).to_string());
        path.push(']');
    }
}

/// `input.values.name (template "${{ parameters.nme | upper }}")`: where, with the start of the
/// template text (JSON-quoted, so control characters stay out of logs).
fn location(path: Option<&str>, template: &str) -> String {
    const SNIPPET_CHARS: usize = 80;
    let mut snippet: String = template.chars().take(SNIPPET_CHARS).collect();
    if template.chars().nth(SNIPPET_CHARS).is_some() {
        snippet.push('…');
    }
    let quoted = Json::from(snippet).to_string();
    match path {
        Some(path) => format!("{path} (template {quoted})"),
        None => format!("template {quoted}"),
    }
}

fn convert_error(err: Error, at: String, limits: Limits) -> ExprError {
    match err.kind() {
        ErrorKind::SyntaxError => ExprError::Syntax {
            at,
            line: err.line().unwrap_or(1),
            message: err.detail().unwrap_or("invalid syntax").to_owned(),
        },
        ErrorKind::OutOfFuel => ExprError::OutOfFuel { at },
        ErrorKind::WriteFailure => ExprError::OutputTooLarge {
            at,
            limit: limits.max_output_bytes,
        },
        kind => {
            let mut message = match err.detail() {
                Some(detail) => format!("{kind}: {detail}"),
                None => kind.to_string(),
            };
            if let Some(line) = err.line() {
                message.push_str(&format!(" (line {line})"));
            }
            ExprError::Render { at, message }
        }
    }
}

/// Collects output and refuses to grow past the limit, so a huge output fails while it is written
/// instead of after it has been built.
struct CappedWriter {
    buf: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
