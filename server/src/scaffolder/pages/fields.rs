//! A template's parameter pages (JSON Schema objects with Backstage's `ui:*` hints) as HTML form fields,
//! and the posted form back into the values object a task is created with.
//!
//! One source of truth for what the form shows: the values object. The first view shows the schema
//! defaults; after a refused submission it shows what was entered (coerced where the schema's type
//! allowed, else as typed), so nothing the person entered is lost.

use serde_json::{Map, Value};

use super::conditions::{self, When};
use super::shown::display;

/// One `<fieldset>`: a parameter page.
pub struct PageView {
    pub title: String,
    pub description: String,
    pub fields: Vec<FieldView>,
}

pub struct OptionView {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The three inputs of a `RepoUrlPicker`, combined into `host?owner=o&repo=r` on the server.
pub struct RepoView {
    pub hosts: Vec<OptionView>,
    pub owner: String,
    pub repo: String,
}

/// How a field is drawn; the template matches on `widget`.
pub struct FieldView {
    /// The property name, which is also the form field's name.
    pub name: String,
    /// HTML id, made of safe characters only.
    pub id: String,
    pub label: String,
    pub description: String,
    pub required: bool,
    /// `text`, `textarea`, `select`, `number`, `checkbox`, `checkboxes`, `repo`, `json`, `password`
    /// or `secret`.
    pub widget: &'static str,
    pub value: String,
    pub checked: bool,
    pub options: Vec<OptionView>,
    pub pattern: Option<String>,
    pub max_length: Option<u64>,
    pub min_length: Option<u64>,
    pub min: Option<String>,
    pub max: Option<String>,
    /// `1` for integers, `any` for numbers.
    pub step: &'static str,
    pub autofocus: bool,
    pub error: String,
    pub repo: Option<RepoView>,
    /// What a picker lists, read from the catalog by the handler (`ui:field`).
    pub picker: Option<Picker>,
    /// Shown only under this condition on another field (`dependencies`, `if`/`then`).
    pub when: Option<When>,
    /// The label of the field the condition reads.
    pub when_label: String,
    /// A conditional field that is required when it applies (the browser is not told, since it
    /// would also insist while the field is hidden; the server checks).
    pub required_when_shown: bool,
}

/// A field filled from the catalog: which entities it offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Picker {
    /// Conditions of `ui:options.catalogFilter` (one map per alternative), keys and values as written.
    pub filters: Vec<Vec<(String, Vec<String>)>>,
}

impl FieldView {
    /// When the field applies, in words; empty for a field that always does.
    pub fn when_note(&self) -> String {
        let Some(when) = &self.when else {
            return String::new();
        };
        let mut note = when.describe(&self.when_label);
        if self.required_when_shown {
            note.push_str(" Required then.");
        }
        note
    }

    pub fn has_error(&self) -> bool {
        !self.error.is_empty()
    }

    /// The ids the input's `aria-describedby` names.
    pub fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if !self.description.is_empty() {
            ids.push(format!("{}-help", self.id));
        }
        if self.has_error() {
            ids.push(format!("{}-error", self.id));
        }
        ids.join(" ")
    }
}

/// Safe HTML id for a property name.
fn field_id(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("field-{safe}")
}

fn schema_type(schema: &Value) -> &str {
    match &schema["type"] {
        Value::String(t) => t,
        // `["string", "null"]`: the first non-null type.
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string"),
        _ => "string",
    }
}

fn ui_field(schema: &Value) -> &str {
    schema["ui:field"].as_str().unwrap_or_default()
}

/// The pages as field views, showing `values`.
pub fn pages(pages: &[Value], values: &Value, allowed_hosts: &[String]) -> Vec<PageView> {
    pages
        .iter()
        .enumerate()
        .map(|(index, page)| {
            let required: Vec<&str> = page["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let mut fields: Vec<FieldView> = ordered_properties(page)
                .into_iter()
                .filter(|(_, schema)| schema["ui:widget"] != "hidden")
                .map(|(name, schema)| {
                    let mut field = field(
                        name,
                        schema,
                        &values[name.as_str()],
                        required.contains(&name.as_str()),
                        allowed_hosts,
                    );
                    field.autofocus = schema["ui:autofocus"] == true;
                    field
                })
                .chain(
                    conditions::conditional_properties(page)
                        .into_iter()
                        .filter(|c| c.schema["ui:widget"] != "hidden")
                        .map(|c| {
                            let mut field = field(
                                &c.name,
                                &c.schema,
                                &values[c.name.as_str()],
                                false,
                                allowed_hosts,
                            );
                            field.required_when_shown = c.required;
                            field.when = Some(c.when);
                            field
                        }),
                )
                .collect();
            let labels: Vec<(String, String)> = fields
                .iter()
                .map(|f| (f.name.clone(), f.label.clone()))
                .collect();
            for field in &mut fields {
                if let Some(when) = &field.when {
                    field.when_label = labels
                        .iter()
                        .find(|(name, _)| name == &when.field)
                        .map_or_else(|| when.field.clone(), |(_, label)| label.clone());
                }
            }
            PageView {
                title: page["title"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("Step {}", index + 1)),
                description: page["description"].as_str().unwrap_or_default().to_owned(),
                fields,
            }
        })
        .collect()
}

/// A page's properties in form order: `ui:order` when the page has one (`*` standing for the rest),
/// else the `required` ones in the order listed, then the others. The catalog keeps entities as
/// Postgres `jsonb`, which does not keep the order keys were written in.
fn ordered_properties(page: &Value) -> Vec<(&String, &Value)> {
    let Some(properties) = page["properties"].as_object() else {
        return Vec::new();
    };
    let listed = |key: &str| -> Vec<&str> {
        page[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    };
    let mut order = listed("ui:order");
    if order.is_empty() {
        order = listed("required");
        order.push("*");
    } else if !order.contains(&"*") {
        order.push("*");
    }
    let named: Vec<&str> = order.iter().copied().filter(|n| *n != "*").collect();
    let mut out = Vec::with_capacity(properties.len());
    for name in order {
        if name == "*" {
            out.extend(
                properties
                    .iter()
                    .filter(|(key, _)| !named.contains(&key.as_str())),
            );
        } else if let Some((key, schema)) = properties.get_key_value(name) {
            out.push((key, schema));
        }
    }
    out
}

fn field(
    name: &str,
    schema: &Value,
    value: &Value,
    required: bool,
    allowed_hosts: &[String],
) -> FieldView {
    let kind = schema_type(schema);
    let mut view = FieldView {
        name: name.to_owned(),
        id: field_id(name),
        label: schema["title"].as_str().unwrap_or(name).to_owned(),
        description: schema["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        required,
        widget: "text",
        value: display(value),
        checked: value == &Value::Bool(true),
        options: Vec::new(),
        pattern: None,
        max_length: schema["maxLength"].as_u64(),
        min_length: schema["minLength"].as_u64(),
        min: schema.get("minimum").map(display),
        max: schema.get("maximum").map(display),
        step: if kind == "integer" { "1" } else { "any" },
        autofocus: false,
        error: String::new(),
        repo: None,
        picker: None,
        when: None,
        when_label: String::new(),
        required_when_shown: false,
    };
    if let Some(pattern) = schema["pattern"].as_str() {
        view.pattern = html_pattern(pattern);
    }
    match ui_field(schema) {
        // Backstage's Secret field: what is typed goes to the task's `secrets`, never shown again.
        "Secret" => {
            view.widget = "secret";
            view.value = String::new();
            return view;
        }
        "OwnerPicker" | "EntityPicker" | "OwnedEntityPicker" => {
            view.widget = "select";
            view.picker = Some(picker(schema));
            return view;
        }
        "RepoUrlPicker" => {
            view.widget = "repo";
            let (host, owner, repo) = split_repo_url(&view.value);
            let configured: Vec<String> = schema["ui:options"]["allowedHosts"]
                .as_array()
                .map(|hosts| {
                    hosts
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_else(|| allowed_hosts.to_vec());
            let mut hosts: Vec<OptionView> = configured
                .iter()
                .map(|h| OptionView {
                    value: h.clone(),
                    label: h.clone(),
                    selected: *h == host,
                })
                .collect();
            if !host.is_empty() && !hosts.iter().any(|h| h.selected) {
                hosts.push(OptionView {
                    value: host.clone(),
                    label: host,
                    selected: true,
                });
            }
            view.repo = Some(RepoView { hosts, owner, repo });
            return view;
        }
        _ => {}
    }
    if let Some(choices) = schema["enum"].as_array() {
        view.widget = "select";
        let labels = schema["enumNames"].as_array();
        view.options = choices
            .iter()
            .enumerate()
            .map(|(i, choice)| OptionView {
                value: display(choice),
                label: labels
                    .and_then(|l| l.get(i))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| display(choice)),
                selected: choice == value,
            })
            .collect();
        return view;
    }
    match kind {
        "integer" | "number" => view.widget = "number",
        "boolean" => view.widget = "checkbox",
        "array" => {
            if let Some(choices) = schema["items"]["enum"].as_array() {
                let chosen = value.as_array();
                view.widget = "checkboxes";
                view.options = choices
                    .iter()
                    .map(|choice| OptionView {
                        value: display(choice),
                        label: display(choice),
                        selected: chosen.is_some_and(|c| c.contains(choice)),
                    })
                    .collect();
            } else if schema_type(&schema["items"]) == "string" {
                // One item per line.
                view.widget = "textarea";
                if let Some(items) = value.as_array() {
                    view.value = items.iter().map(display).collect::<Vec<_>>().join("\n");
                }
            } else {
                view.widget = "json";
            }
        }
        "object" => view.widget = "json",
        _ if schema["ui:widget"] == "textarea" => view.widget = "textarea",
        // Masked while typed; unlike a Secret field the value is an ordinary parameter.
        _ if schema["ui:widget"] == "password" => view.widget = "password",
        _ => {}
    }
    view
}

fn picker(schema: &Value) -> Picker {
    let options = &schema["ui:options"];
    let as_conditions = |filter: &Value| -> Vec<(String, Vec<String>)> {
        filter
            .as_object()
            .into_iter()
            .flatten()
            .map(|(key, value)| {
                let values = match value {
                    Value::Array(items) => items.iter().map(display).collect(),
                    other => vec![display(other)],
                };
                (key.clone(), values)
            })
            .collect()
    };
    let mut filters: Vec<Vec<(String, Vec<String>)>> = match &options["catalogFilter"] {
        Value::Array(alternatives) => alternatives.iter().map(as_conditions).collect(),
        filter @ Value::Object(_) => vec![as_conditions(filter)],
        _ => Vec::new(),
    };
    if filters.is_empty() {
        let kinds: Vec<String> = match options["allowedKinds"].as_array() {
            Some(kinds) => kinds.iter().map(display).collect(),
            None if ui_field(schema) == "OwnerPicker" => vec!["Group".into(), "User".into()],
            None => Vec::new(),
        };
        filters.push(if kinds.is_empty() {
            Vec::new()
        } else {
            vec![("kind".to_owned(), kinds)]
        });
    }
    Picker { filters }
}

/// `host?owner=o&repo=r` → (host, owner, repo); anything else is shown as the host.
pub fn split_repo_url(value: &str) -> (String, String, String) {
    let Some((host, query)) = value.split_once('?') else {
        return (value.to_owned(), String::new(), String::new());
    };
    let mut owner = String::new();
    let mut repo = String::new();
    for (key, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "owner" | "organization" if owner.is_empty() => owner = v.into_owned(),
            "repo" => repo = v.into_owned(),
            _ => {}
        }
    }
    (host.to_owned(), owner, repo)
}

/// A JSON Schema pattern as an HTML `pattern` attribute, which browsers compile with the `v` flag:
/// inside a character class `(){}/|` and a leading or trailing `-` must be escaped there. A class
/// using `v`-only syntax (nested classes, `&&`, `--`) is left to the server: `None`.
pub fn html_pattern(pattern: &str) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let mut class_start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            out.push(c);
            if let Some(next) = chars.get(i + 1) {
                out.push(*next);
            }
            i += 2;
            continue;
        }
        if !in_class {
            if c == '[' {
                in_class = true;
                out.push(c);
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                class_start = i + 1;
            } else {
                out.push(c);
            }
            i += 1;
            continue;
        }
        match c {
            ']' if i > class_start => {
                in_class = false;
                out.push(c);
            }
            '[' => return None,
            '-' if i == class_start || chars.get(i + 1) == Some(&']') => out.push_str("\\-"),
            '-' if chars.get(i + 1) == Some(&'-') => return None,
            '(' | ')' | '{' | '}' | '/' | '|' | ']' => {
                out.push('\\');
                out.push(c);
            }
            _ if chars.get(i + 1) == Some(&c) && "&!#$%*+,.:;<=>?@^`~".contains(c) => {
                return None;
            }
            _ => out.push(c),
        }
        i += 1;
    }
    (!in_class).then_some(out)
}

/// The values and the secrets a posted form stands for. A `ui:field: Secret` property's text goes to
/// the secrets under the property's name, and its value becomes as many `*` (what Backstage's form
/// sends), so the template sees that it was given while only `${{ secrets.<name> }}` reads it.
pub fn values_and_secrets_from_form(pages: &[Value], form: &[(String, String)]) -> (Value, Value) {
    let mut values = values_from_form(pages, form);
    let mut secrets = Map::new();
    for page in pages {
        for (name, schema, _) in form_properties(page) {
            if ui_field(&schema) != "Secret" {
                continue;
            }
            if let Some(Value::String(secret)) = values.get(name.as_str()).cloned() {
                values[name.as_str()] = Value::String("*".repeat(secret.chars().count()));
                secrets.insert(name.clone(), Value::String(secret));
            }
        }
    }
    (values, Value::Object(secrets))
}

/// The posted form as the values object, each value coerced to its schema's type. A value that does
/// not parse is kept as text, so the schema check names it and the form shows it again. Empty
/// optional inputs are left out, as Backstage's form leaves them undefined.
pub fn values_from_form(pages: &[Value], form: &[(String, String)]) -> Value {
    let mut values = Map::new();
    for page in pages {
        let properties = form_properties(page);
        // Unconditional fields first: the conditions read them.
        for (name, schema, _) in properties.iter().filter(|(_, _, when)| when.is_none()) {
            if let Some(value) = posted_value(name, schema, form) {
                values.insert(name.clone(), value);
            }
        }
        let decided = Value::Object(values.clone());
        for (name, schema, when) in &properties {
            // A value posted for a field whose condition does not hold is dropped, as Backstage's
            // form drops the values of fields it hides.
            if when.as_ref().is_some_and(|w| w.holds(&decided))
                && let Some(value) = posted_value(name, schema, form)
            {
                values.insert(name.clone(), value);
            }
        }
    }
    Value::Object(values)
}

/// Every property a page posts: its own (`None`), then its conditional ones with their condition.
/// Hidden (`ui:widget: hidden`) properties are not on the form.
fn form_properties(page: &Value) -> Vec<(String, Value, Option<When>)> {
    let own = page["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, schema)| (name.clone(), schema.clone(), None));
    let conditional = conditions::conditional_properties(page)
        .into_iter()
        .map(|c| (c.name, c.schema, Some(c.when)));
    own.chain(conditional)
        .filter(|(_, schema, _)| schema["ui:widget"] != "hidden")
        .collect()
}

/// One property's posted value, coerced to its schema's type; `None` when nothing was entered.
fn posted_value(name: &str, schema: &Value, form: &[(String, String)]) -> Option<Value> {
    let one = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let all = |name: &str| -> Vec<&str> {
        form.iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let kind = schema_type(schema);
    if ui_field(schema) == "RepoUrlPicker" {
        let part = |p: &str| one(&format!("{name}.{p}")).unwrap_or_default().trim();
        let (host, owner, repo) = (part("host"), part("owner"), part("repo"));
        if host.is_empty() && owner.is_empty() && repo.is_empty() {
            return None;
        }
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("owner", owner)
            .append_pair("repo", repo)
            .finish();
        return Some(Value::String(format!("{host}?{query}")));
    }
    if kind == "boolean" && schema.get("enum").is_none() {
        return Some(Value::Bool(one(name).is_some()));
    }
    if kind == "array" {
        if let Some(choices) = schema["items"]["enum"].as_array() {
            let chosen = all(name);
            let items: Vec<Value> = choices
                .iter()
                .filter(|c| chosen.contains(&display(c).as_str()))
                .cloned()
                .collect();
            return (!items.is_empty()).then_some(Value::Array(items));
        }
        if schema_type(&schema["items"]) == "string" {
            let items: Vec<Value> = one(name)
                .unwrap_or_default()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| Value::String(l.to_owned()))
                .collect();
            return (!items.is_empty()).then_some(Value::Array(items));
        }
    }
    let raw = one(name)?;
    if raw.trim().is_empty() {
        return None;
    }
    if let Some(choices) = schema["enum"].as_array()
        && let Some(choice) = choices.iter().find(|c| display(c) == raw)
    {
        return Some(choice.clone());
    }
    Some(match kind {
        "integer" => raw
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(raw.to_owned())),
        "number" => match raw.trim().parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => raw
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(raw.to_owned())),
        },
        "array" | "object" => {
            serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
        }
        _ => Value::String(raw.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn posted_values_take_their_schema_types() {
        let pages = [json!({"properties": {
            "name": {"type": "string"},
            "port": {"type": "integer"},
            "ratio": {"type": "number"},
            "public": {"type": "boolean"},
            "gpus": {"type": "integer", "enum": [1, 2, 4]},
            "note": {"type": "string"},
            "repoUrl": {"type": "string", "ui:field": "RepoUrlPicker"},
        }})];
        let values = values_from_form(
            &pages,
            &form(&[
                ("name", "orders"),
                ("port", "8080"),
                ("ratio", "0.5"),
                ("gpus", "2"),
                ("note", ""),
                ("repoUrl.host", "localhost"),
                ("repoUrl.owner", "north wind"),
                ("repoUrl.repo", "orders"),
            ]),
        );
        assert_eq!(
            values,
            json!({"name": "orders", "port": 8080, "ratio": 0.5, "public": false, "gpus": 2,
                   "repoUrl": "localhost?owner=north+wind&repo=orders"})
        );
        let kept = values_from_form(&pages, &form(&[("port", "eighty")]));
        assert_eq!(kept["port"], "eighty", "kept as typed for the error");
        assert_eq!(
            split_repo_url("localhost?owner=north+wind&repo=orders"),
            ("localhost".into(), "north wind".into(), "orders".into())
        );
    }

    #[test]
    fn a_conditional_value_is_kept_only_while_its_condition_holds() {
        let pages = [json!({
            "properties": {"kind": {"type": "string", "enum": ["library", "service"]}},
            "dependencies": {"kind": {"oneOf": [
                {"properties": {"kind": {"enum": ["library"]}, "registry": {"type": "string"}}},
                {"properties": {"kind": {"enum": ["service"]}, "port": {"type": "integer"}}, "required": ["port"]}
            ]}}
        })];
        let posted = [("kind", "service"), ("registry", "npm"), ("port", "8080")];
        assert_eq!(
            values_from_form(&pages, &form(&posted)),
            json!({"kind": "service", "port": 8080})
        );
        let views = super::pages(&pages, &json!({"kind": "library"}), &[]);
        let port = views[0]
            .fields
            .iter()
            .find(|f| f.name == "port")
            .expect("port");
        assert!(
            !port.required,
            "the browser must not insist on a hidden field"
        );
        assert_eq!(
            port.when_note(),
            "Only when kind is service. Required then."
        );
    }

    #[test]
    fn patterns_are_escaped_for_the_v_flag() {
        assert_eq!(
            html_pattern("^[a-z][a-z0-9-]{1,38}[a-z0-9]$").as_deref(),
            Some("^[a-z][a-z0-9\\-]{1,38}[a-z0-9]$")
        );
        assert_eq!(
            html_pattern("^(oci|s3)://[^\\s/]+$").as_deref(),
            Some("^(oci|s3)://[^\\s\\/]+$")
        );
        assert_eq!(html_pattern("[a&&b]"), None);
        assert_eq!(html_pattern("[a"), None);
    }

    #[test]
    fn fields_follow_the_schema_and_its_ui_hints() {
        let page = json!({"title": "About", "required": ["name"], "properties": {
            "name": {"type": "string", "title": "Name", "pattern": "^[a-z]+$", "ui:autofocus": true},
            "env": {"type": "string", "enum": ["dev", "prod"], "enumNames": ["Development", "Production"]},
            "owner": {"type": "string", "ui:field": "OwnerPicker", "ui:options": {"catalogFilter": {"kind": "Group"}}},
            "repoUrl": {"type": "string", "ui:field": "RepoUrlPicker", "ui:options": {"allowedHosts": ["localhost"]}},
        }});
        let views = pages(
            &[page],
            &json!({"env": "prod", "repoUrl": "localhost?owner=o&repo=r"}),
            &[],
        );
        let fields = &views[0].fields;
        let by_name = |n: &str| fields.iter().find(|f| f.name == n).expect(n);
        assert!(by_name("name").required && by_name("name").autofocus);
        let env = by_name("env");
        assert_eq!(env.widget, "select");
        assert_eq!(env.options[1].label, "Production");
        assert!(env.options[1].selected);
        assert_eq!(
            by_name("owner").picker,
            Some(Picker {
                filters: vec![vec![("kind".into(), vec!["Group".into()])]]
            })
        );
        let repo = by_name("repoUrl").repo.as_ref().expect("repo");
        assert!(repo.hosts[0].selected);
        assert_eq!((repo.owner.as_str(), repo.repo.as_str()), ("o", "r"));
    }
}
