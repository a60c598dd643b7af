//! The store: committing objects with server metadata, server-side apply, and `Status` bodies.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::discovery::{RESOURCES, Res};
use super::ssa::{self, Entry};
use super::{Change, Key, State, Stored, skeleton};

pub(super) fn remove(object: &mut Value, field: &str) {
    if let Some(map) = object.as_object_mut() {
        map.remove(field);
    }
}

pub(super) const SERVER_METADATA: [&str; 8] = [
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// An object without what is not a field anyone manages: apiVersion, kind, name, namespace and
/// server-set metadata (and `status` where a status subresource owns it).
pub(super) fn strip(object: &Value, status_subresource: bool) -> Value {
    let mut out = object.clone();
    for field in ["apiVersion", "kind"] {
        remove(&mut out, field);
    }
    if status_subresource {
        remove(&mut out, "status");
    }
    if let Some(metadata) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in SERVER_METADATA.iter().chain(&["name", "namespace"]) {
            metadata.remove(*field);
        }
        if metadata.is_empty() {
            remove(&mut out, "metadata");
        }
    }
    out
}

/// The part of an object whose changes bump `generation`: all but metadata and status.
pub(super) fn spec_part(object: &Value) -> Value {
    let mut out = object.clone();
    for field in ["metadata", "status"] {
        remove(&mut out, field);
    }
    out
}

pub(super) fn without_server_metadata(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(metadata) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in SERVER_METADATA {
            metadata.remove(field);
        }
    }
    out
}

/// The object with its fields in the real server's order (`apiVersion`, `kind`, `metadata` first;
/// in metadata, name to creationTimestamp first).
pub(super) fn canonical(object: Value) -> Value {
    fn reorder(mut map: Map<String, Value>, first: &[&str]) -> Map<String, Value> {
        let mut out = Map::new();
        for key in first {
            if let Some(value) = map.remove(*key) {
                out.insert((*key).to_owned(), value);
            }
        }
        out.extend(map);
        out
    }
    let Value::Object(mut map) = object else {
        return object;
    };
    if let Some(Value::Object(metadata)) = map.remove("metadata") {
        let order = [
            "name",
            "generateName",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
        ];
        let metadata = reorder(metadata, &order);
        map.insert("metadata".to_owned(), Value::Object(metadata));
    }
    Value::Object(reorder(map, &["apiVersion", "kind", "metadata"]))
}

impl State {
    /// Stores `object` with `entries` (their times set here) unless that changes nothing; returns
    /// whether it was created, and the object as the API returns it.
    pub(super) fn commit(
        &mut self,
        key: &Key,
        object: Value,
        mut entries: Vec<Entry>,
        dry_run: bool,
    ) -> (bool, Value) {
        let res = &RESOURCES[key.0];
        let now = now_rfc3339();
        let mut object = object;
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("managedFields");
        }
        let old = self.objects.get(key);
        for entry in &mut entries {
            let same = old.and_then(|old| {
                old.entries.iter().find(|e| {
                    e.manager == entry.manager
                        && e.operation == entry.operation
                        && e.subresource == entry.subresource
                        && e.api_version == entry.api_version
                        && e.set == entry.set
                })
            });
            entry.time = same.map_or_else(|| now.clone(), |e| e.time.clone());
        }
        if let Some(old) = old
            && old.entries == entries
            && without_server_metadata(&old.object) == without_server_metadata(&object)
        {
            return (false, old.render());
        }
        let created = old.is_none();
        let old_meta = old.map(|old| (old.object["metadata"].clone(), spec_part(&old.object)));
        let (uid, created_at, generation, old_rv) = match &old_meta {
            Some((meta, old_spec)) => {
                let bump = u64::from(*old_spec != spec_part(&object));
                let generation = meta["generation"].as_u64().unwrap_or(1) + bump;
                (
                    meta["uid"].clone(),
                    meta["creationTimestamp"].clone(),
                    generation,
                    meta["resourceVersion"].clone(),
                )
            }
            None => {
                self.serial += 1;
                (
                    json!(format!("00000000-0000-4000-8000-{:012x}", self.serial)),
                    json!(now),
                    1,
                    Value::Null,
                )
            }
        };
        let rv = if dry_run {
            old_rv
        } else {
            self.rv += 1;
            json!(self.rv.to_string())
        };
        if !object["metadata"].is_object() {
            object["metadata"] = json!({});
        }
        let metadata = object["metadata"]
            .as_object_mut()
            .expect("metadata is an object");
        metadata.insert("uid".to_owned(), uid);
        metadata.insert("creationTimestamp".to_owned(), created_at);
        if !rv.is_null() {
            metadata.insert("resourceVersion".to_owned(), rv);
        }
        if res.status {
            metadata.insert("generation".to_owned(), json!(generation));
        }
        let stored = Stored {
            object: canonical(object),
            entries,
        };
        let rendered = stored.render();
        if !dry_run {
            self.objects.insert(key.clone(), stored);
            self.record(
                if created { "ADDED" } else { "MODIFIED" },
                key,
                rendered.clone(),
            );
        }
        (created, rendered)
    }

    pub(super) fn record(&mut self, kind: &'static str, key: &Key, object: Value) {
        let change = Change {
            rv: self.rv,
            res: key.0,
            namespace: key.1.clone(),
            kind,
            object,
        };
        self.changes.push(change);
        self.notify.send_replace(self.rv);
    }

    pub(super) fn delete(&mut self, key: &Key, dry_run: bool) -> Option<Value> {
        if dry_run {
            return self.objects.get(key).map(Stored::render);
        }
        let mut object = self.objects.remove(key)?.render();
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record("DELETED", key, object.clone());
        Some(object)
    }

    /// Server-side apply of `body` to the object at `key`: (HTTP status, object) or a `Status`.
    pub(super) fn apply(
        &mut self,
        key: &Key,
        mut body: Value,
        manager: &str,
        force: bool,
        dry_run: bool,
    ) -> Result<(u16, Value), Value> {
        let res = &RESOURCES[key.0];
        let (namespace, name) = (&key.1, &key.2);
        let Some(map) = body.as_object_mut() else {
            return Err(bad_request("the apply patch is not an object".to_owned()));
        };
        let text = |field: &str| {
            map.get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (api_version, kind) = (text("apiVersion"), text("kind"));
        if api_version.is_empty() || kind.is_empty() {
            let missing = if kind.is_empty() {
                "Kind"
            } else {
                "apiVersion"
            };
            return Err(bad_request(format!(
                "Object '{missing}' is missing in '{body}'"
            )));
        }
        if api_version != res.api_version() || kind != res.kind {
            let expected = format!("{}, Kind={}", res.api_version(), res.kind);
            let got = format!("{api_version}, Kind={kind}");
            return Err(bad_request(format!(
                "the object provided is {got}, the URL expects {expected}"
            )));
        }
        let metadata = map.entry("metadata").or_insert_with(|| json!({}));
        let Some(metadata) = metadata.as_object_mut() else {
            return Err(bad_request("metadata is not an object".to_owned()));
        };
        match metadata.get("name").and_then(Value::as_str) {
            Some(given) if given != name => {
                let message = format!(
                    "the name of the object ({given}) does not match the name on the URL ({name})"
                );
                return Err(bad_request(message));
            }
            _ => metadata.insert("name".to_owned(), json!(name)),
        };
        if !res.namespaced {
            metadata.remove("namespace");
        } else if metadata
            .get("namespace")
            .and_then(Value::as_str)
            .is_some_and(|n| n != namespace)
        {
            let message = "the namespace of the provided object does not match the namespace sent on the request";
            return Err(bad_request(message.to_owned()));
        }
        let stored = self.objects.get(key).cloned();
        if let Some(wanted) = metadata.get("resourceVersion").and_then(Value::as_str) {
            let current = stored
                .as_ref()
                .and_then(|s| s.object.pointer("/metadata/resourceVersion"));
            if current.and_then(Value::as_str) != Some(wanted) {
                let message = format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    res.qualified()
                );
                let details = json!({"name": name, "group": res.group, "kind": res.plural});
                return Err(status_value(409, "Conflict", &message, details));
            }
        }
        let config = strip(&body, res.status);
        let (live, entries) = match stored {
            Some(stored) => (stored.object, stored.entries),
            None => (skeleton(res, key), Vec::new()),
        };
        let (object, entries) =
            ssa::apply(&live, &entries, manager, &res.api_version(), &config, force)
                .map_err(|c| conflict_status(&c))?;
        let (created, object) = self.commit(key, object, entries, dry_run);
        Ok((if created { 201 } else { 200 }, object))
    }
}

pub(super) fn status_value(code: u16, reason: &str, message: &str, details: Value) -> Value {
    let mut status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason
    });
    if !details.is_null() {
        status["details"] = details;
    }
    status["code"] = json!(code);
    status
}

pub(super) fn bad_request(message: String) -> Value {
    status_value(400, "BadRequest", &message, Value::Null)
}

pub(super) fn not_found(res: &Res, name: &str) -> Value {
    let message = format!("{} \"{name}\" not found", res.qualified());
    status_value(
        404,
        "NotFound",
        &message,
        json!({"name": name, "group": res.group, "kind": res.plural}),
    )
}

pub(super) fn conflict_status(conflicts: &[ssa::Conflict]) -> Value {
    let message = match conflicts {
        [(manager, path)] => {
            format!("Apply failed with 1 conflict: conflict with {manager}: {path}")
        }
        _ => {
            let mut lines: Vec<String> = Vec::new();
            for (index, (manager, path)) in conflicts.iter().enumerate() {
                if index == 0 || conflicts[index - 1].0 != *manager {
                    lines.push(format!("conflicts with {manager}:"));
                }
                lines.push(format!("- {path}"));
            }
            format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                lines.join("\n")
            )
        }
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(manager, path)| {
            json!({"reason": "FieldManagerConflict", "message": format!("conflict with {manager}"), "field": path})
        })
        .collect();
    status_value(409, "Conflict", &message, json!({"causes": causes}))
}

/// The time as RFC 3339 in UTC, to the second, as Kubernetes writes timestamps.
pub(super) fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}
