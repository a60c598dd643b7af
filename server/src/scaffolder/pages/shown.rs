//! How a JSON value reads in a form control: what the form shows, what a posted choice is compared
//! with, and what a field's condition compares (`conditions`).

use serde_json::Value;

/// A value as a form control shows it.
pub fn display(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(_) | Value::Bool(_) => value.to_string(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}
