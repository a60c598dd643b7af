//! Entity validation: everything wrong with an entity, each problem with the dotted path of the
//! field it concerns, in Backstage's wording where Backstage has one.
//!
//! Two layers, as in Backstage: the envelope and metadata rules that hold for every entity
//! (Backstage's FieldFormatEntityPolicy and NoForeignRootFieldsEntityPolicy), then the spec rules
//! of its kind (Backstage's kind JSON schemas, in `kinds.rs`). Unlike Backstage, which stops at the
//! first problem, all problems are collected, so a catalog file is fixed in one round.

mod kinds;
mod models;
mod rules;
mod shape;
mod specs;

use serde_json::{Map, Value};

use rules::{
    EXPECT_DNS_LABEL, EXPECT_KIND, EXPECT_LINK_URL, EXPECT_NON_EMPTY, EXPECT_OBJECT_NAME,
    EXPECT_PREFIX_SUFFIX, EXPECT_STRING, EXPECT_TAG, invalid, join, missing, wrong_type,
};

pub use kinds::{accepted_api_versions, kind_schemas};

/// One problem with an entity.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldError {
    /// Dotted path of the field, array indexes as numbers: `metadata.links.2.url`. Empty for
    /// the entity as a whole.
    pub field: String,
    /// What is wrong; names the field itself, so it can be shown alone.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Annotations that only the server writes: where an entity came from and whether it has been
/// orphaned. A file that set them could claim another location's entities or dodge orphan
/// cleanup, so [`validate_entity_from_file`] refuses them; stored entities carry them, so
/// [`validate_entity`] accepts them.
pub const SERVER_OWNED_ANNOTATIONS: &[&str] = &[
    "backstage.io/managed-by-location",
    "backstage.io/managed-by-origin-location",
    "backstage.io/orphan",
    "atrium.dev/orphan",
];

/// Root fields an entity may have. `relations` and `status` are computed by the server, but they
/// are part of every stored entity, which this also validates.
const ROOT_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "spec",
    "relations",
    "status",
];

/// All problems with an entity, empty when it is valid: root fields first, then metadata, the
/// spec rules of its kind, and the server-written `relations` and `status`.
pub fn validate_entity(entity: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(root) = entity.as_object() else {
        errs.push(FieldError::new("", "entity must be object"));
        return errs;
    };

    for key in root.keys() {
        if !ROOT_FIELDS.contains(&key.as_str()) {
            // Backstage's NoForeignRootFieldsEntityPolicy wording.
            errs.push(FieldError::new(
                key.as_str(),
                format!("Unknown field {key}"),
            ));
        }
    }

    let api_version = check_envelope_field(
        root,
        "apiVersion",
        rules::is_valid_api_version,
        EXPECT_PREFIX_SUFFIX,
        &mut errs,
    );
    let kind = check_envelope_field(root, "kind", rules::is_valid_kind, EXPECT_KIND, &mut errs);

    let namespace = match root.get("metadata") {
        None => {
            errs.push(missing_root("metadata"));
            None
        }
        Some(md) => match md.as_object() {
            None => {
                errs.push(wrong_type("metadata", "object"));
                None
            }
            Some(md) => Some(check_metadata(md, &mut errs)),
        },
    };

    let spec = match root.get("spec") {
        None => None,
        Some(spec) => match spec.as_object() {
            None => {
                errs.push(wrong_type("spec", "object"));
                // Reported once here; the kind rules must not add "spec is required" on top.
                Some(None)
            }
            Some(s) => Some(Some(s)),
        },
    };

    if let (Some(api_version), Some(kind)) = (api_version, kind) {
        let namespace = namespace
            .flatten()
            .unwrap_or(super::refs::DEFAULT_NAMESPACE);
        kinds::check_kind(api_version, kind, spec, namespace, &mut errs);
    }

    if let Some(relations) = root.get("relations") {
        check_relations(relations, &mut errs);
    }
    if let Some(status) = root.get("status")
        && !status.is_object()
    {
        errs.push(wrong_type("status", "object"));
    }
    errs
}

/// [`validate_entity`] plus the rules for entities read from catalog files: they may not set the
/// [`SERVER_OWNED_ANNOTATIONS`]. The ingestion pipeline calls this first and adds those
/// annotations itself afterwards.
pub fn validate_entity_from_file(entity: &Value) -> Vec<FieldError> {
    let mut errs = validate_entity(entity);
    let annotations = entity
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object);
    for key in annotations.into_iter().flat_map(Map::keys) {
        if SERVER_OWNED_ANNOTATIONS.contains(&key.as_str()) {
            let field = format!("metadata.annotations.{key}");
            errs.push(FieldError::new(
                field.as_str(),
                format!("\"{field}\" is set by the server and may not be set in a catalog file"),
            ));
        }
    }
    errs
}

fn missing_root(key: &str) -> FieldError {
    FieldError::new(key, format!("entity must have required property '{key}'"))
}

/// `apiVersion` and `kind`: present, and in the format Backstage requires. Returns the value
/// only when it is valid, since the kind rules are chosen by it.
fn check_envelope_field<'v>(
    root: &'v Map<String, Value>,
    key: &str,
    valid: fn(&str) -> bool,
    expectation: &str,
    errs: &mut Vec<FieldError>,
) -> Option<&'v str> {
    let Some(v) = root.get(key) else {
        errs.push(missing_root(key));
        return None;
    };
    match v.as_str() {
        Some(s) if valid(s) => Some(s),
        _ => {
            errs.push(invalid(key, expectation, v));
            None
        }
    }
}

/// Checks `metadata`; returns the entity's namespace when it is a string (valid or not: refs
/// still resolve against what was written, and the namespace error is reported here).
fn check_metadata<'v>(md: &'v Map<String, Value>, errs: &mut Vec<FieldError>) -> Option<&'v str> {
    match md.get("name") {
        None | Some(Value::Null) => errs.push(missing("metadata", "name")),
        Some(v) => {
            if !v.as_str().is_some_and(rules::is_valid_object_name) {
                errs.push(invalid("metadata.name", EXPECT_OBJECT_NAME, v));
            }
        }
    }

    let namespace = match md.get("namespace") {
        None | Some(Value::Null) => None,
        Some(v) => {
            if !v.as_str().is_some_and(rules::is_valid_dns_label) {
                errs.push(invalid("metadata.namespace", EXPECT_DNS_LABEL, v));
            }
            v.as_str().filter(|s| !s.is_empty())
        }
    };

    if let Some(v) = md.get("title") {
        rules::check_string("metadata.title", v, errs);
    }
    if let Some(v) = md.get("description")
        && !v.is_string()
    {
        errs.push(wrong_type("metadata.description", "string"));
    }
    // Set by the server on stored entities; only their types are checked.
    for key in ["uid", "etag"] {
        if let Some(v) = md.get(key) {
            rules::check_string(&join("metadata", key), v, errs);
        }
    }
    if let Some(v) = md.get("generation")
        && v.as_u64().is_none_or(|g| g < 1)
    {
        errs.push(FieldError::new(
            "metadata.generation",
            "\"metadata.generation\" must be an integer >= 1",
        ));
    }

    check_key_values(
        md,
        "labels",
        rules::is_valid_label_value,
        EXPECT_OBJECT_NAME,
        errs,
    );
    check_key_values(md, "annotations", |_| true, EXPECT_STRING, errs);

    if let Some(tags) = md.get("tags") {
        rules::check_array("metadata.tags", tags, errs, |path, tag, errs| {
            if !tag.as_str().is_some_and(rules::is_valid_tag) {
                errs.push(invalid(path, EXPECT_TAG, tag));
            }
        });
    }

    if let Some(links) = md.get("links") {
        rules::check_array("metadata.links", links, errs, check_link);
    }
    namespace
}

/// Labels and annotations: an object whose keys are `[prefix/]name` and whose values are strings
/// that pass `value_ok`.
fn check_key_values(
    md: &Map<String, Value>,
    key: &str,
    value_ok: fn(&str) -> bool,
    expectation: &str,
    errs: &mut Vec<FieldError>,
) {
    let Some(v) = md.get(key) else { return };
    let Some(map) = rules::check_object(&join("metadata", key), v, errs) else {
        return;
    };
    for (k, val) in map {
        let field = format!("metadata.{key}.{k}");
        if !rules::is_valid_key(k) {
            errs.push(invalid(
                &field,
                EXPECT_PREFIX_SUFFIX,
                &Value::from(k.as_str()),
            ));
        }
        match val {
            Value::Null => errs.push(FieldError::new(
                field.as_str(),
                format!("\"{field}\" must have a value"),
            )),
            Value::String(s) if value_ok(s) => {}
            other => errs.push(invalid(&field, expectation, other)),
        }
    }
}

/// One entry of `metadata.links`.
fn check_link(path: &str, link: &Value, errs: &mut Vec<FieldError>) {
    let Some(link) = rules::check_object(path, link, errs) else {
        return;
    };
    match link.get("url") {
        None | Some(Value::Null) => errs.push(missing(path, "url")),
        Some(url) => {
            if !url.as_str().is_some_and(rules::is_valid_link_url) {
                errs.push(invalid(&join(path, "url"), EXPECT_LINK_URL, url));
            }
        }
    }
    if let Some(title) = link.get("title")
        && title.as_str().is_none_or(|t| t.trim().is_empty())
    {
        errs.push(invalid(&join(path, "title"), EXPECT_NON_EMPTY, title));
    }
    if let Some(icon) = link.get("icon")
        && !icon.as_str().is_some_and(rules::is_valid_object_name)
    {
        errs.push(invalid(&join(path, "icon"), EXPECT_OBJECT_NAME, icon));
    }
    if let Some(kind) = link.get("type") {
        rules::check_string(&join(path, "type"), kind, errs);
    }
}

/// Stored relations, in the shape the catalog API returns: `{type, targetRef, target}`. Only the
/// parts other code relies on are checked; they are written by the server, not by users.
fn check_relations(relations: &Value, errs: &mut Vec<FieldError>) {
    rules::check_array("relations", relations, errs, |path, rel, errs| {
        if let Some(rel) = rules::check_object(path, rel, errs) {
            match rel.get("type") {
                None => errs.push(missing(path, "type")),
                Some(t) => {
                    rules::check_string(&join(path, "type"), t, errs);
                }
            }
            if let Some(t) = rel.get("targetRef") {
                rules::check_string(&join(path, "targetRef"), t, errs);
            }
            if let Some(t) = rel.get("target") {
                rules::check_object(&join(path, "target"), t, errs);
            }
        }
    });
}

#[cfg(test)]
mod kind_tests;
#[cfg(test)]
mod tests;
