//! Flattening a stitched entity into what filters, facets and full-text search read.
//!
//! Backstage keeps ~23 rows per entity in a key/value `search` table and joins it once per filter
//! condition, which is where its catalog slows down. Atrium keeps the same key/value semantics but stores
//! them as one `jsonb` object per entity (`{"spec.type": ["service"], ...}`, keys and values lower-cased)
//! with a GIN index, so a condition is an indexed containment test on the entity row itself. Facet counts
//! need the values as written, so those go to the narrow `entity_facet` table.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Keys the generic walk skips: either not worth indexing or added explicitly below.
const SPECIAL_KEYS: &[&str] = &[
    "attachments",
    "relations",
    "status",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.etag",
];

/// Longer keys and values are not indexed (a value that is too long still marks its key as present).
const MAX_KEY_LENGTH: usize = 200;
const MAX_VALUE_LENGTH: usize = 200;

/// Fields whose text full-text search looks at when the request names none.
pub const DEFAULT_TEXT_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.title",
    "metadata.description",
    "metadata.tags",
    "kind",
    "spec.type",
    "spec.lifecycle",
    "spec.owner",
];

#[derive(Debug, Default, PartialEq)]
pub struct SearchIndex {
    /// Lower-cased key -> distinct lower-cased values (empty when the key exists with a null or too-long value).
    pub search: Map<String, Value>,
    /// (lower-cased key, value as written) pairs for facet counts, de-duplicated: every facet key,
    /// stored or not (see [`facet_stored`]).
    pub facets: Vec<(String, String)>,
    /// Lower-cased text for the trigram index.
    pub text: String,
}

/// Builds the search data of a stitched entity (with `relations`). Also returns an error text when two
/// keys differ only in case, which makes case-insensitive filters ambiguous (Backstage rejects those);
/// the index is still built, merging the clashing keys, so the entity stays findable.
pub fn build(entity: &Value) -> (SearchIndex, Option<String>) {
    let mut pairs: Vec<(String, Option<String>)> = Vec::new();
    let mut seen_item_keys = BTreeSet::new();
    visit("", entity, &mut pairs, &mut seen_item_keys);

    let metadata = entity.get("metadata");
    let field = |name: &str| metadata.and_then(|m| m.get(name)).and_then(scalar_string);
    pairs.push(("metadata.name".into(), field("name")));
    pairs.push(("metadata.uid".into(), field("uid")));
    pairs.push((
        "metadata.namespace".into(),
        Some(field("namespace").unwrap_or_else(|| "default".to_owned())),
    ));
    for relation in entity
        .get("relations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(kind), Some(target)) = (
            relation.get("type").and_then(Value::as_str),
            relation.get("targetRef").and_then(Value::as_str),
        ) {
            pairs.push((format!("relations.{kind}"), Some(target.to_owned())));
        }
    }

    let clash = check_case_clashes(&pairs).err();

    let mut index = SearchIndex::default();
    let mut facet_seen = BTreeSet::new();
    for (key, value) in pairs {
        let key_lower = key.to_lowercase();
        if key_lower.len() > MAX_KEY_LENGTH {
            continue;
        }
        let slot = index
            .search
            .entry(key_lower.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        let Some(value) = value.filter(|v| v.len() <= MAX_VALUE_LENGTH) else {
            continue;
        };
        let lower = Value::String(value.to_lowercase());
        if let Value::Array(values) = slot
            && !values.contains(&lower)
        {
            values.push(lower);
        }
        if facet_worthy(&key_lower) && facet_seen.insert((key_lower.clone(), value.clone())) {
            index.facets.push((key_lower, value));
        }
    }
    index.text = full_text(&index.search, DEFAULT_TEXT_FIELDS);
    (index, clash)
}

/// Keys that are facets at all: uid and etag are unique per entity, and relation facets are counted
/// from `search` (see `db::facet_counts`).
fn facet_worthy(key: &str) -> bool {
    !key.starts_with("relations.") && key != "metadata.uid" && key != "metadata.etag"
}

/// Facet keys `entity_facet` keeps no rows for: text that is nearly unique per entity (names, titles,
/// descriptions, links) or the same for nearly all (`apiVersion`). No facet picker offers them, yet
/// at 100k entities they were 765k of the table's 2.34M rows. `metadata.namespace` is counted from
/// its own column; the others are counted from the entities' bodies when asked (see `db::facets`),
/// exactly as the rows would have counted them. Migration `0011` deleted their rows.
const UNSTORED_FACET_KEYS: &[&str] = &[
    "apiversion",
    "metadata.name",
    "metadata.namespace",
    "metadata.title",
    "metadata.description",
];

/// Families of keys kept out of `entity_facet` the same way (migration `0016` deleted their rows):
/// - `metadata.annotations.*`: where an entity was read, ids in other systems (a Kubernetes id, a
///   repository slug, a PagerDuty service): mostly one value per entity, and no facet picker asks for
///   them; 182k of 1.37M rows at 100k entities.
/// - `metadata.tags.*`: the `metadata.tags.java = true` key each tag adds so that a filter can require
///   several tags; validation makes tags an array of strings, so every such key is one of these.
///   The `metadata.tags` facet itself is stored; these were 215k rows.
/// - `metadata.links.*`: URLs and titles, per entity.
const UNSTORED_FACET_PREFIXES: &[&str] =
    &["metadata.annotations.", "metadata.tags.", "metadata.links."];

/// Whether `entity_facet` holds the rows of the (lower-cased) facet key `key`.
pub fn facet_stored(key: &str) -> bool {
    facet_worthy(key)
        && !UNSTORED_FACET_KEYS.contains(&key)
        && !UNSTORED_FACET_PREFIXES
            .iter()
            .any(|prefix| key.starts_with(prefix))
}

fn visit(
    path: &str,
    value: &Value,
    out: &mut Vec<(String, Option<String>)>,
    seen_item_keys: &mut BTreeSet<String>,
) {
    if SPECIAL_KEYS.contains(&path) {
        return;
    }
    match value {
        Value::Null => out.push((path.to_owned(), None)),
        Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            out.push((path.to_owned(), scalar_string(value)));
        }
        Value::Array(items) => {
            for item in items {
                visit(path, item, out, seen_item_keys);
                // `metadata.tags.java = true` lets one filter require several array items at once.
                if let Value::String(item) = item {
                    let item_key = format!("{path}.{item}");
                    if seen_item_keys.insert(item_key.to_lowercase()) {
                        out.push((item_key, Some("true".to_owned())));
                    }
                }
            }
        }
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = crate::catalog::model::field_path(path, key);
                visit(&child_path, child, out, seen_item_keys);
            }
        }
    }
}

/// A scalar as JavaScript's `String(value)` would print it, so filters match what Backstage matches.
pub fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match n.as_f64() {
            // 3.0 prints as "3" in JavaScript.
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        }),
        _ => None,
    }
}

fn check_case_clashes(pairs: &[(String, Option<String>)]) -> Result<(), String> {
    let mut by_lower: std::collections::BTreeMap<String, &str> = std::collections::BTreeMap::new();
    let mut clashes = BTreeSet::new();
    for (key, _) in pairs {
        let lower = key.to_lowercase();
        match by_lower.get(&lower) {
            Some(existing) if *existing != key.as_str() => {
                clashes.insert(lower);
            }
            Some(_) => {}
            None => {
                by_lower.insert(lower, key);
            }
        }
    }
    if clashes.is_empty() {
        Ok(())
    } else {
        let list: Vec<_> = clashes.into_iter().map(|k| format!("'{k}'")).collect();
        Err(format!(
            "Entity has duplicate keys that vary only in casing, {}",
            list.join(", ")
        ))
    }
}

/// The lower-cased values of `fields`, space-separated.
pub fn full_text(search: &Map<String, Value>, fields: &[&str]) -> String {
    let mut text = String::new();
    for field in fields {
        for value in search
            .get(*field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(value) = value.as_str() {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(value);
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(index: &SearchIndex, key: &str) -> Vec<String> {
        index.search[key]
            .as_array()
            .expect("array")
            .iter()
            .map(|v| v.as_str().expect("string").to_owned())
            .collect()
    }

    #[test]
    fn flattens_like_backstage() {
        let entity = json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": "Payments", "tags": ["java", "Java", "pci"], "annotations": {"a/b": "X"}},
            "spec": {"type": "service", "owner": "team-a", "replicas": 3, "flag": true, "gone": null,
                     "ports": [{"port": 80}, {"port": 443}]},
            "relations": [{"type": "ownedBy", "targetRef": "group:default/team-a"}]
        });
        let (index, clash) = build(&entity);
        assert_eq!(clash, None);
        assert_eq!(values(&index, "kind"), ["component"]);
        assert_eq!(values(&index, "metadata.name"), ["payments"]);
        assert_eq!(values(&index, "metadata.namespace"), ["default"]);
        assert_eq!(values(&index, "metadata.tags"), ["java", "pci"]);
        assert_eq!(values(&index, "metadata.tags.java"), ["true"]);
        assert_eq!(values(&index, "metadata.annotations.a/b"), ["x"]);
        assert_eq!(values(&index, "spec.replicas"), ["3"]);
        assert_eq!(values(&index, "spec.flag"), ["true"]);
        assert!(
            values(&index, "spec.gone").is_empty(),
            "null keeps the key, with no value"
        );
        assert_eq!(values(&index, "spec.ports.port"), ["80", "443"]);
        assert_eq!(
            values(&index, "relations.ownedby"),
            ["group:default/team-a"]
        );
        assert!(
            index
                .facets
                .contains(&("metadata.tags".into(), "Java".into()))
        );
        assert!(
            index
                .facets
                .contains(&("metadata.name".into(), "Payments".into()))
        );
        assert!(index.text.contains("payments") && index.text.contains("service"));
    }

    #[test]
    fn long_values_keep_only_the_key() {
        let long = "x".repeat(300);
        let (index, _) =
            build(&json!({"kind": "API", "metadata": {"name": "a"}, "spec": {"definition": long}}));
        assert!(values(&index, "spec.definition").is_empty());
        assert!(!index.facets.iter().any(|(k, _)| k == "spec.definition"));
    }

    #[test]
    fn keys_differing_only_in_case_are_rejected() {
        let (index, clash) =
            build(&json!({"kind": "A", "metadata": {"name": "a"}, "spec": {"foo": 1, "Foo": 2}}));
        let err = clash.expect("clash reported");
        assert_eq!(values(&index, "spec.foo"), ["1", "2"]);
        assert!(err.contains("'spec.foo'"), "{err}");
    }

    #[test]
    fn whole_floats_print_like_javascript() {
        assert_eq!(scalar_string(&json!(3.0)).as_deref(), Some("3"));
        assert_eq!(scalar_string(&json!(0.25)).as_deref(), Some("0.25"));
    }
}
