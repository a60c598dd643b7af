//! A small YAML emitter for showing stored entities. Scalars are written as JSON (a JSON string is a
//! valid double-quoted YAML scalar), so nothing needs YAML-specific quoting rules; plain strings that
//! could not be mistaken for another type are written bare for readability.

use serde_json::Value;

pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(map, 0, &mut out),
        Value::Array(items) if !items.is_empty() => write_seq(items, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn indent(level: usize, out: &mut String) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn write_map(map: &serde_json::Map<String, Value>, level: usize, out: &mut String) {
    for (key, value) in map {
        indent(level, out);
        out.push_str(&key_text(key));
        out.push(':');
        write_child(value, level, out);
    }
}

fn write_seq(items: &[Value], level: usize, out: &mut String) {
    for item in items {
        indent(level, out);
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                // The first key goes on the dash's line.
                let mut inner = String::new();
                write_map(map, level + 1, &mut inner);
                out.push(' ');
                out.push_str(inner.trim_start());
            }
            other => write_child(other, level, out),
        }
    }
}

fn write_child(value: &Value, level: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(map, level + 1, out);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(items, level + 1, out);
        }
        Value::String(text) if text.contains('\n') && !text.starts_with(' ') => {
            out.push_str(" |-\n");
            for line in text.trim_end_matches('\n').lines() {
                indent(level + 1, out);
                out.push_str(line);
                out.push('\n');
            }
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn is_plain(text: &str) -> bool {
    let reserved = [
        "", "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n",
    ];
    !reserved.contains(&text.to_ascii_lowercase().as_str())
        && text.parse::<f64>().is_err()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " ._/-@()".contains(c))
        && !text.starts_with([' ', '-', '.', '@'])
        && !text.ends_with(' ')
}

fn key_text(key: &str) -> String {
    if is_plain(key) && !key.contains(' ') {
        key.to_owned()
    } else {
        Value::String(key.to_owned()).to_string()
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) if is_plain(text) => text.clone(),
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
        other => other.to_string(),
    }
}
