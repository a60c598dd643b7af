//! Fields a parameter page shows only under a condition on another field, as Backstage's form
//! (react-jsonschema-form) draws them:
//! - `dependencies: {kind: {oneOf: [{properties: {kind: {enum: [a]}, extra: {...}}, required: [extra]}]}}`:
//!   `extra` while `kind` is `a`;
//! - `dependencies: {kind: {properties: {extra: ...}}}`: `extra` once `kind` has a value;
//! - `if: {properties: {kind: {const: a}}}, then: {...}, else: {...}`, on the page or in its `allOf`:
//!   the `then` fields while `kind` is `a`, the `else` fields otherwise.
//!
//! The page draws every such field with its condition; `web/static/form.js` shows only those whose
//! condition holds and disables the others, so they are neither checked by the browser nor posted.
//! Without the script every field shows, each saying when it applies. Either way the server keeps a
//! posted conditional value only when its condition holds (Backstage's form drops hidden values), and
//! the schema itself is checked on the server as for the API.

use serde_json::{Map, Value};

use super::shown::display;

/// When a conditional field applies.
#[derive(Debug, Clone, PartialEq)]
pub struct When {
    /// The property the condition reads.
    pub field: String,
    /// The values (as the form shows them) for which it holds; empty: any value.
    pub values: Vec<String>,
    /// The `else` branch: holds when the value is not among `values`.
    pub negate: bool,
}

impl When {
    /// Whether the condition holds for the values of the form's unconditional fields.
    pub fn holds(&self, values: &Value) -> bool {
        let value = &values[self.field.as_str()];
        let shown = display(value);
        let matched = if self.values.is_empty() {
            !value.is_null() && !shown.is_empty()
        } else {
            self.values.contains(&shown)
        };
        matched != self.negate
    }

    /// The condition in words, for the page without its script.
    pub fn describe(&self, label: &str) -> String {
        match (self.values.as_slice(), self.negate) {
            ([], _) => format!("Only when {label} is filled in."),
            ([one], false) => format!("Only when {label} is {one}."),
            ([one], true) => format!("Only when {label} is not {one}."),
            (many, false) => format!("Only when {label} is one of {}.", many.join(", ")),
            (many, true) => format!("Only when {label} is none of {}.", many.join(", ")),
        }
    }

    /// The values as the page's `data-when-values` attribute: a JSON list.
    pub fn values_json(&self) -> String {
        serde_json::to_string(&self.values).unwrap_or_else(|_| "[]".to_owned())
    }
}

/// One conditional property of a page.
#[derive(Debug, Clone)]
pub struct Conditional {
    pub name: String,
    pub schema: Value,
    pub required: bool,
    pub when: When,
}

/// The page's conditional properties, in the order the schema gives them. A property the page's
/// own `properties` already has is not repeated (alternatives restate their controlling field);
/// one that several alternatives name applies for any of their values.
pub fn conditional_properties(page: &Value) -> Vec<Conditional> {
    let own = page["properties"].as_object();
    let mut out: Vec<Conditional> = Vec::new();
    let mut add = |branch: &Value, when: When| {
        let required = names(&branch["required"]);
        for (name, schema) in branch["properties"].as_object().into_iter().flatten() {
            if name == &when.field || own.is_some_and(|o| o.contains_key(name)) {
                continue;
            }
            if let Some(existing) = out.iter_mut().find(|c| &c.name == name) {
                if existing.when.field == when.field && existing.when.negate == when.negate {
                    for value in &when.values {
                        if !existing.when.values.contains(value) {
                            existing.when.values.push(value.clone());
                        }
                    }
                }
                continue;
            }
            out.push(Conditional {
                name: name.clone(),
                schema: schema.clone(),
                required: required.contains(name),
                when: when.clone(),
            });
        }
    };

    for (field, dependency) in page["dependencies"].as_object().into_iter().flatten() {
        match dependency["oneOf"].as_array() {
            Some(alternatives) => {
                for alternative in alternatives {
                    if let Some(values) = allowed_values(&alternative["properties"][field]) {
                        add(
                            alternative,
                            When {
                                field: field.clone(),
                                values,
                                negate: false,
                            },
                        );
                    }
                }
            }
            // A schema dependency: its fields apply once the field has a value. (A list of names
            // is a property dependency, which adds no field.)
            None if dependency.is_object() => add(
                dependency,
                When {
                    field: field.clone(),
                    values: Vec::new(),
                    negate: false,
                },
            ),
            None => {}
        }
    }

    let mut conditionals = vec![page];
    conditionals.extend(page["allOf"].as_array().into_iter().flatten());
    for schema in conditionals {
        let Some((field, values)) = single_condition(&schema["if"]) else {
            continue;
        };
        for (branch, negate) in [(&schema["then"], false), (&schema["else"], true)] {
            add(
                branch,
                When {
                    field: field.clone(),
                    values: values.clone(),
                    negate,
                },
            );
        }
    }
    out
}

/// `{properties: {kind: {const: a}}}`: the one field an `if` reads and its values. Conditions on
/// several fields are not drawn conditionally (their fields always show).
fn single_condition(condition: &Value) -> Option<(String, Vec<String>)> {
    let properties: &Map<String, Value> = condition["properties"].as_object()?;
    if properties.len() != 1 {
        return None;
    }
    let (field, schema) = properties.iter().next()?;
    Some((field.clone(), allowed_values(schema)?))
}

/// The values a `{enum: [...]}` or `{const: x}` schema allows, as the form shows them.
fn allowed_values(schema: &Value) -> Option<Vec<String>> {
    if let Some(value) = schema.get("const") {
        return Some(vec![display(value)]);
    }
    schema["enum"]
        .as_array()
        .map(|values| values.iter().map(display).collect())
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dependencies_and_if_then_give_conditional_fields() {
        let page = json!({
            "properties": {
                "kind": {"type": "string", "enum": ["library", "service"]},
                "public": {"type": "boolean"},
                "team": {"type": "string"}
            },
            "dependencies": {
                "kind": {"oneOf": [
                    {"properties": {"kind": {"enum": ["library"]}, "registry": {"type": "string"}}},
                    {"properties": {"kind": {"const": "service"}, "port": {"type": "integer"}}, "required": ["port"]}
                ]},
                "team": {"properties": {"channel": {"type": "string"}}},
                "public": ["team"]
            },
            "allOf": [{
                "if": {"properties": {"public": {"const": true}}},
                "then": {"properties": {"domain": {"type": "string"}}, "required": ["domain"]},
                "else": {"properties": {"vpn": {"type": "boolean"}}}
            }]
        });
        let fields = conditional_properties(&page);
        let by = |n: &str| fields.iter().find(|c| c.name == n).expect(n);
        assert_eq!(fields.len(), 5, "{fields:#?}");
        assert_eq!(by("registry").when.values, ["library"]);
        assert!(by("port").required && !by("registry").required);
        assert!(by("channel").when.values.is_empty());
        assert!(by("domain").required);
        assert!(by("vpn").when.negate);

        let values = json!({"kind": "service", "public": false, "team": ""});
        assert!(by("port").when.holds(&values));
        assert!(!by("registry").when.holds(&values));
        assert!(!by("channel").when.holds(&values), "empty is no value");
        assert!(!by("domain").when.holds(&values));
        assert!(by("vpn").when.holds(&values));
        assert!(by("domain").when.holds(&json!({"public": true})));
        assert_eq!(
            by("vpn").when.describe("Public"),
            "Only when Public is not true."
        );
    }
}
