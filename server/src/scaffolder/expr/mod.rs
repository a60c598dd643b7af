//! `${{ ... }}` expressions with Backstage's semantics, sandboxed and bounded.
//!
//! TEMP stand-in until the expressions work lands: values pass through unrendered.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(String);

/// The expression engine, shared by every task (cheap to clone).
#[derive(Clone, Default)]
pub struct Expressions {}

impl Expressions {
    pub fn render_value(&self, value: &Value, _context: &Value) -> Result<Value, ExprError> {
        Ok(value.clone())
    }

    pub fn condition(&self, value: &Value, _context: &Value) -> Result<bool, ExprError> {
        Ok(!matches!(value, Value::Bool(false) | Value::Null))
    }
}
