//! Backstage's placeholders: an object with a single `$text`, `$json` or `$yaml` key whose value is a
//! path or URL, replaced by that file's content. Shared by ingestion (which reads through the location
//! rules) and `atrium validate` (which reads local files).

use serde_json::Value;

use super::yaml::{YamlLimits, parse_documents};
use crate::http::find_nul;

/// `(operator, argument)` when `value` is a placeholder object such as `{"$text": "./api.yaml"}`.
pub fn as_placeholder(value: &Value) -> Option<(&str, &Value)> {
    match value {
        Value::Object(map) if map.len() == 1 => map
            .iter()
            .next()
            .filter(|(k, _)| k.starts_with('$'))
            .map(|(k, v)| (k.as_str(), v)),
        _ => None,
    }
}

/// Checks the operator before anything is read.
pub fn check_operator(op: &str) -> Result<(), String> {
    match op {
        "$text" | "$json" | "$yaml" => Ok(()),
        other => Err(format!(
            "unknown placeholder {other} (supported: $text, $json, $yaml)"
        )),
    }
}

/// The value a placeholder stands for, given the text it points at (`what` names the file in errors).
pub fn content_value(
    op: &str,
    text: String,
    what: &str,
    max_bytes: usize,
) -> Result<Value, String> {
    // Postgres cannot store a NUL in text or jsonb; `$yaml` content is checked by the YAML reader.
    let nul = || format!("{what} contains a NUL character, which the catalog cannot store");
    match op {
        "$text" if text.contains('\0') => Err(nul()),
        "$text" => Ok(Value::String(text)),
        "$json" => {
            let value = serde_json::from_str(&text)
                .map_err(|e| format!("{what} is not valid JSON: {e}"))?;
            match find_nul(&value) {
                Some(_) => Err(nul()),
                None => Ok(value),
            }
        }
        "$yaml" => {
            let limits = YamlLimits {
                max_bytes,
                ..YamlLimits::default()
            };
            let mut docs = parse_documents(&text, &limits)
                .map_err(|e| format!("{what} is not valid YAML: {}", e.message))?;
            if docs.len() != 1 {
                return Err(format!(
                    "{what} must hold exactly one YAML document, found {}",
                    docs.len()
                ));
            }
            Ok(docs.remove(0).value)
        }
        other => Err(format!(
            "unknown placeholder {other} (supported: $text, $json, $yaml)"
        )),
    }
}
