//! Field ownership as the API server's server-side apply keeps it: a set of field paths per manager
//! entry, leaf by leaf; list items are keyed by their merge keys, other lists are atomic.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// One step of a field path: a map field, or a list item by its merge key (the key fields as a JSON
/// object, sorted by name, as in `k:{"name":"web"}`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pe {
    Field(String),
    Key(String),
}

pub type Path = Vec<Pe>;
/// Leaf paths, and paths ending in a [`Pe::Key`] for the list items themselves (`.` in `fieldsV1`).
pub type FieldSet = BTreeSet<Path>;

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: &'static str,
    pub api_version: String,
    pub subresource: Option<String>,
    pub time: String,
    pub set: FieldSet,
}

impl Entry {
    fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    /// How conflict messages name the manager (`printManager` in the API server).
    pub fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            out.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    pub fn render(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager, "operation": self.operation, "apiVersion": self.api_version,
            "time": self.time, "fieldsType": "FieldsV1", "fieldsV1": fields_v1(&self.set)
        });
        if let Some(sub) = &self.subresource {
            entry["subresource"] = json!(sub);
        }
        entry
    }
}

/// Maps that are owned as a whole (`LabelSelector` is an atomic struct, `Service.spec.selector` an
/// atomic map).
fn atomic_map(field: &str) -> bool {
    matches!(field, "selector" | "podSelector" | "namespaceSelector")
}

type Keys = &'static [(&'static str, Option<&'static str>)];

/// The merge keys of list `field` (with the defaults of key fields), or `None` for an atomic list.
fn list_keys(field: &str, items: &[Value]) -> Option<Keys> {
    let all = |key: &str| !items.is_empty() && items.iter().all(|item| item.get(key).is_some());
    let keys: Keys = match field {
        "ports" if all("containerPort") => &[("containerPort", None), ("protocol", Some("TCP"))],
        "ports" if all("port") => &[("port", None), ("protocol", Some("TCP"))],
        "volumeMounts" => &[("mountPath", None)],
        "conditions" => &[("type", None)],
        "hostAliases" => &[("ip", None)],
        "tolerations" | "args" | "command" | "envFrom" | "finalizers" | "subjects" => {
            return None;
        }
        _ => &[("name", None)],
    };
    let keyed = items.iter().all(Value::is_object)
        && keys
            .iter()
            .all(|(key, default)| default.is_some() || all(key));
    keyed.then_some(keys)
}

fn key_of(keys: Keys, item: &Value) -> String {
    let mut key = Map::new();
    for (name, default) in keys {
        let value = item
            .get(*name)
            .cloned()
            .or_else(|| default.map(|d| json!(d)));
        key.insert((*name).to_owned(), value.unwrap_or(Value::Null));
    }
    Value::Object(key).to_string()
}

/// The set of fields a (stripped) configuration sets.
pub fn field_set(config: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    collect(config, &mut Vec::new(), "", &mut out);
    out.remove(&Vec::new());
    out
}

fn collect(value: &Value, path: &mut Path, field: &str, out: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() && !atomic_map(field) => {
            collect_fields(map, path, out);
        }
        Value::Array(items) => match list_keys(field, items) {
            Some(keys) => {
                for item in items {
                    path.push(Pe::Key(key_of(keys, item)));
                    out.insert(path.clone());
                    if let Value::Object(map) = item {
                        collect_fields(map, path, out);
                    }
                    path.pop();
                }
            }
            None => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

fn collect_fields(map: &Map<String, Value>, path: &mut Path, out: &mut FieldSet) {
    for (name, child) in map {
        path.push(Pe::Field(name.clone()));
        collect(child, path, name, out);
        path.pop();
    }
}

/// The list field a key step indexes into: the last field before position `at`.
fn list_field(path: &[Pe], at: usize) -> &str {
    path[..at]
        .iter()
        .rev()
        .find_map(|pe| match pe {
            Pe::Field(name) => Some(name.as_str()),
            Pe::Key(_) => None,
        })
        .unwrap_or("")
}

pub fn value_at<'a>(object: &'a Value, path: &[Pe]) -> Option<&'a Value> {
    let mut current = object;
    for (at, pe) in path.iter().enumerate() {
        current = match pe {
            Pe::Field(name) => current.get(name)?,
            Pe::Key(key) => {
                let items = current.as_array()?;
                let keys = list_keys(list_field(path, at), items)?;
                items.iter().find(|item| key_of(keys, item) == *key)?
            }
        };
    }
    Some(current)
}

fn value_at_mut<'a>(object: &'a mut Value, path: &[Pe]) -> Option<&'a mut Value> {
    let mut current = object;
    for (at, pe) in path.iter().enumerate() {
        current = match pe {
            Pe::Field(name) => current.get_mut(name)?,
            Pe::Key(key) => {
                let items = current.as_array_mut()?;
                let keys = list_keys(list_field(path, at), items)?;
                items.iter_mut().find(|item| key_of(keys, item) == *key)?
            }
        };
    }
    Some(current)
}

/// Removes the field or list item at `path`, then maps that this left empty.
fn remove_path(object: &mut Value, path: &[Pe]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let Some(parent) = value_at_mut(object, parent_path) else {
        return;
    };
    match last {
        Pe::Field(name) => {
            let Some(map) = parent.as_object_mut() else {
                return;
            };
            map.remove(name);
            let emptied = map.is_empty();
            if emptied && matches!(parent_path.last(), Some(Pe::Field(_))) {
                remove_path(object, parent_path);
            }
        }
        Pe::Key(key) => {
            let field = list_field(path, path.len() - 1).to_owned();
            if let Some(items) = parent.as_array_mut()
                && let Some(keys) = list_keys(&field, items)
            {
                items.retain(|item| key_of(keys, item) != *key);
            }
        }
    }
}

/// Merges an applied configuration into the live object: maps field by field, keyed lists item by
/// item, anything else replaced.
fn merge(live: &mut Value, applied: &Value, field: &str) {
    match (live, applied) {
        (Value::Object(live), Value::Object(applied)) if !atomic_map(field) => {
            for (name, value) in applied {
                match live.get_mut(name) {
                    Some(existing) => merge(existing, value, name),
                    None => {
                        live.insert(name.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(live), Value::Array(applied))
            if list_keys(field, applied).is_some()
                && (live.is_empty() || list_keys(field, live).is_some()) =>
        {
            let keys = list_keys(field, applied).unwrap_or(&[]);
            for item in applied {
                let key = key_of(keys, item);
                match live
                    .iter_mut()
                    .find(|existing| key_of(keys, existing) == key)
                {
                    Some(existing) => merge(existing, item, ""),
                    None => live.push(item.clone()),
                }
            }
        }
        (live, applied) => *live = applied.clone(),
    }
}

/// One conflict: the other manager as printed, and the field path as `.spec.replicas`.
pub type Conflict = (String, String);

/// Server-side apply of `config` (without apiVersion, kind, name, namespace and server-set metadata)
/// by `manager` onto `live`; returns the new object and managed-fields entries (times of changed
/// entries left to the caller), or the conflicts.
pub fn apply(
    live: &Value,
    entries: &[Entry],
    manager: &str,
    api_version: &str,
    config: &Value,
    force: bool,
) -> Result<(Value, Vec<Entry>), Vec<Conflict>> {
    let new_set = field_set(config);
    let mine = |entry: &Entry| entry.is(manager, "Apply", None);
    let mut taken: Vec<(usize, Path)> = Vec::new();
    for (index, entry) in entries.iter().enumerate().filter(|(_, e)| !mine(e)) {
        for path in entry.set.intersection(&new_set) {
            let leaf = !matches!(path.last(), Some(Pe::Key(_)));
            if leaf && value_at(live, path) != value_at(config, path) {
                taken.push((index, path.clone()));
            }
        }
    }
    if !taken.is_empty() && !force {
        let mut conflicts: Vec<Conflict> = taken
            .iter()
            .map(|(index, path)| (entries[*index].describe(), path_string(path)))
            .collect();
        conflicts.sort();
        return Err(conflicts);
    }
    let mut entries = entries.to_vec();
    for (index, path) in &taken {
        entries[*index].set.remove(path);
    }
    let old_set = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let others: Vec<&Path> = entries
        .iter()
        .filter(|e| !mine(e))
        .flat_map(|e| &e.set)
        .collect();
    let mut object = live.clone();
    let gone: Vec<&Path> = old_set.difference(&new_set).collect();
    for path in gone.into_iter().rev() {
        if !others.iter().any(|owned| owned.starts_with(path)) {
            remove_path(&mut object, path);
        }
    }
    merge(&mut object, config, "");
    match entries.iter_mut().find(|e| mine(e)) {
        Some(entry) => {
            entry.set = new_set;
            entry.api_version = api_version.to_owned();
        }
        None => entries.push(Entry {
            manager: manager.to_owned(),
            operation: "Apply",
            api_version: api_version.to_owned(),
            subresource: None,
            time: String::new(),
            set: new_set,
        }),
    }
    entries.retain(|e| !e.set.is_empty());
    Ok((object, entries))
}

/// Ownership after an update (a PUT, or a write to `/status`) by `manager` that turned the stripped
/// fields `before` into `after`: the updater takes every field it set or changed from the others.
pub fn update(
    before: &Value,
    after: &Value,
    entries: &[Entry],
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
) -> Vec<Entry> {
    let old_set = field_set(before);
    let new_set = field_set(after);
    let changed: FieldSet = new_set
        .iter()
        .filter(|path| {
            let leaf = !matches!(path.last(), Some(Pe::Key(_)));
            !old_set.contains(*path) || (leaf && value_at(before, path) != value_at(after, path))
        })
        .cloned()
        .collect();
    let removed: FieldSet = old_set.difference(&new_set).cloned().collect();
    let mine = |entry: &Entry| {
        entry.is(manager, "Update", subresource) && entry.api_version == api_version
    };
    let mut entries = entries.to_vec();
    for entry in entries.iter_mut().filter(|e| !mine(e)) {
        entry
            .set
            .retain(|path| !changed.contains(path) && !removed.contains(path));
    }
    match entries.iter_mut().find(|e| mine(e)) {
        Some(entry) => {
            entry.set.extend(changed);
            entry.set.retain(|path| !removed.contains(path));
        }
        None => entries.push(Entry {
            manager: manager.to_owned(),
            operation: "Update",
            api_version: api_version.to_owned(),
            subresource: subresource.map(str::to_owned),
            time: String::new(),
            set: changed,
        }),
    }
    entries.retain(|e| !e.set.is_empty());
    entries
}

/// The `fieldsV1` form of a set: `{"f:spec":{"f:replicas":{}}}`, list items as `k:{...}` with `.`.
pub fn fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for pe in path {
            let name = match pe {
                Pe::Field(field) => format!("f:{field}"),
                Pe::Key(key) => format!("k:{key}"),
            };
            node = match node.entry(name).or_insert_with(|| json!({})) {
                Value::Object(child) => child,
                _ => unreachable!("fieldsV1 nodes are objects"),
            };
        }
        if matches!(path.last(), Some(Pe::Key(_))) {
            node.insert(".".to_owned(), json!({}));
        }
    }
    Value::Object(root)
}

/// A path as the API server prints it: `.spec.template.spec.containers[name="web"].image`.
pub fn path_string(path: &[Pe]) -> String {
    let mut out = String::new();
    for pe in path {
        match pe {
            Pe::Field(field) => {
                out.push('.');
                out.push_str(field);
            }
            Pe::Key(key) => {
                let fields: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!("[{}]", parts.join(",")));
            }
        }
    }
    out
}
