//! Reading loosely typed spec values for display.

use serde_json::Value;

/// The items of an array; nothing when the value is not an array.
pub fn items(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// The items of an array as text (non-strings as JSON).
pub fn strings(value: &Value) -> Vec<String> {
    items(value)
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// A value as text: a string as it is, null as nothing, anything else as JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
