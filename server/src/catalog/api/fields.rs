//! `fields`: Backstage's projection of entities onto a few dotted paths. Its parsing of the
//! parameter and its path walk (a part that is not a key is joined with the next, so keys holding dots
//! are found) are reproduced here.

use serde_json::{Map, Value};

use crate::error::AppError;

/// The `fields` of a request (repeated, comma-separated, or a JSON list): trimmed, without empties or
/// repeats. Array indexing (`spec.ports[0]`) is refused, as in Backstage.
pub(super) fn parse_fields<'a>(
    raw: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, AppError> {
    let mut fields: Vec<String> = Vec::new();
    for field in raw.into_iter().flat_map(|v| v.split(',')).map(str::trim) {
        if field.contains('[') {
            return Err(AppError::input(format!(
                "Invalid field \"{field}\", array type fields are not supported"
            )));
        }
        if !field.is_empty() && !fields.iter().any(|f| f == field) {
            fields.push(field.to_owned());
        }
    }
    Ok(fields)
}

/// Applies a `fields` projection to serialized entities.
pub(super) fn project_all(bodies: Vec<String>, fields: &[String]) -> Result<Vec<String>, AppError> {
    if fields.is_empty() {
        return Ok(bodies);
    }
    bodies
        .into_iter()
        .map(|body| {
            let value: Value = serde_json::from_str(&body).map_err(|e| {
                AppError::Internal(anyhow::anyhow!("stored entity is not JSON: {e}"))
            })?;
            Ok(project_fields(&value, fields).to_string())
        })
        .collect()
}

/// Keeps only `fields` (dotted paths) of an entity, Backstage's `fields` parameter. Keys may contain
/// dots themselves: a part that is not a key is joined with the next one, so
/// `metadata.annotations.backstage.io/managed-by-location` finds that annotation.
fn project_fields(entity: &Value, fields: &[String]) -> Value {
    let mut out = Value::Object(Map::new());
    for field in fields {
        if let Some((path, value)) = find_path(entity, field) {
            set_path(&mut out, &path, value.clone());
        }
    }
    out
}

/// The keys leading to `field` in `entity`, and the value there.
fn find_path<'a>(entity: &'a Value, field: &str) -> Option<(Vec<String>, &'a Value)> {
    let parts: Vec<&str> = field.split('.').collect();
    let mut path = Vec::new();
    let mut current = entity;
    // A part that was not a key, waiting to be joined with the next part.
    let mut pending: Option<String> = None;
    for (i, part) in parts.iter().enumerate() {
        let key = match pending.take() {
            Some(before) => format!("{before}.{part}"),
            None => (*part).to_owned(),
        };
        match child(current, &key) {
            Some(next) => {
                current = next;
                path.push(key);
            }
            None if i + 1 < parts.len() => pending = Some(key),
            None => return None,
        }
    }
    Some((path, current))
}

fn child<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(key),
        Value::Array(items) => array_index(key).and_then(|i| items.get(i)),
        _ => None,
    }
}

/// `0`, `1`, ... written canonically (no sign, no leading zero), as JavaScript reads array keys.
fn array_index(key: &str) -> Option<usize> {
    let canonical =
        key == "0" || (!key.starts_with('0') && key.bytes().all(|b| b.is_ascii_digit()));
    canonical.then(|| key.parse().ok()).flatten()
}

/// Puts `value` at `path` in `out`, making the objects (or, before an index, arrays) on the way.
fn set_path(out: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut target = out;
    for (i, key) in parents.iter().enumerate() {
        let next_is_index = array_index(&path[i + 1]).is_some();
        let slot = slot(target, key);
        if !slot.is_object() && !slot.is_array() {
            *slot = if next_is_index {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            };
        }
        target = slot;
    }
    *slot(target, last) = value;
}

/// The place for `key` in an object or array (arrays grow with nulls, as JavaScript's holes print).
fn slot<'a>(container: &'a mut Value, key: &str) -> &'a mut Value {
    let index = array_index(key);
    let fits = container.is_object() || (container.is_array() && index.is_some());
    if !fits {
        *container = Value::Object(Map::new());
    }
    match (container, index) {
        (Value::Array(items), Some(index)) => {
            if items.len() <= index {
                items.resize(index + 1, Value::Null);
            }
            &mut items[index]
        }
        (Value::Object(map), _) => map.entry(key.to_owned()).or_insert(Value::Null),
        // Made an array or object above.
        (other, _) => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn project(entity: &Value, fields: &[&str]) -> Value {
        let fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        project_fields(entity, &fields)
    }

    #[test]
    fn projection_keeps_subtrees_and_leaves_out_missing_paths() {
        let entity = json!({"kind": "User", "metadata": {"name": "alice", "tags": ["a", "b"]},
            "spec": {"profile": {"email": "a@x.org"}}});
        assert_eq!(
            project(
                &entity,
                &["metadata.name", "spec", "metadata.nope", "status"]
            ),
            json!({"metadata": {"name": "alice"}, "spec": {"profile": {"email": "a@x.org"}}})
        );
        assert_eq!(
            project(&entity, &["metadata.tags.1"]),
            json!({"metadata": {"tags": [null, "b"]}})
        );
    }

    #[test]
    fn projection_finds_keys_with_dots_and_slashes() {
        let entity = json!({"metadata": {"annotations": {
            "backstage.io/managed-by-location": "file:/x.yaml",
            "backstage.io/orphan": "true"}}});
        assert_eq!(
            project(
                &entity,
                &["metadata.annotations.backstage.io/managed-by-location"]
            ),
            json!({"metadata": {"annotations": {"backstage.io/managed-by-location": "file:/x.yaml"}}})
        );
        assert_eq!(
            project(&entity, &["metadata.annotations.backstage.io/nope"]),
            json!({})
        );
    }

    #[test]
    fn fields_are_split_trimmed_and_deduplicated() {
        assert_eq!(
            parse_fields(["kind, metadata.name", "kind", ","]).expect("fields"),
            ["kind", "metadata.name"]
        );
        assert!(parse_fields(["spec.ports[0]"]).is_err());
    }
}
