//! `${{ ... }}` expressions with Backstage's semantics, sandboxed and bounded.
//!
//! TEMPORARY stand-in with the agreed interface, so that `fetch:template` can be built and tested
//! before the real engine lands: a bare minijinja environment with Backstage's delimiters, no filters.
//! Drop this file's changes at merge in favour of the real `expr` module.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior};

/// Bounds on one rendering.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Instructions one rendering may run (minijinja fuel).
    pub fuel: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { fuel: 1_000_000 }
    }
}

/// A template failed to parse or render.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(String);

/// The expression engine, shared by every task (cheap to clone).
#[derive(Clone, Default)]
pub struct Expressions {
    limits: Limits,
}

impl Expressions {
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }

    /// Renders `${{ }}`, `{% %}` and `{# #}` against `context`.
    pub fn render_text(
        &self,
        template: &str,
        context: &serde_json::Value,
    ) -> Result<String, ExprError> {
        self.render(template, context, ("${{", "}}"))
    }

    /// Renders cookiecutter-style `{{ cookiecutter.x }}` against `context`, with `cookiecutter` bound
    /// to `context.values` (as the real engine does).
    pub fn render_text_cookiecutter(
        &self,
        template: &str,
        context: &serde_json::Value,
    ) -> Result<String, ExprError> {
        let mut context = context.as_object().cloned().unwrap_or_default();
        let values = context
            .get("values")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        context.insert("cookiecutter".to_owned(), values);
        self.render(template, &serde_json::Value::Object(context), ("{{", "}}"))
    }

    fn render(
        &self,
        template: &str,
        context: &serde_json::Value,
        variables: (&'static str, &'static str),
    ) -> Result<String, ExprError> {
        let syntax = SyntaxConfig::builder()
            .variable_delimiters(variables.0, variables.1)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| ExprError(e.to_string()))?;
        let mut env = Environment::new();
        env.set_syntax(syntax);
        env.set_fuel(Some(self.limits.fuel));
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.render_str(template, Serde(context))
            .map_err(|e| ExprError(e.to_string()))
    }
}
