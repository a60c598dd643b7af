//! The template section of a Template entity's page: its parameter pages and steps.

use serde_json::Value;

use super::values::{items, strings, text};

pub struct TemplateField {
    pub name: String,
    pub title: String,
    pub field_type: String,
    pub description: String,
    pub required: bool,
}

pub struct TemplateStep {
    pub title: String,
    pub fields: Vec<TemplateField>,
}

pub struct TemplateAction {
    pub id: String,
    pub name: String,
    pub action: String,
}

pub struct TemplateView {
    /// The scaffolder's form for this template (`/create/templates/{namespace}/{name}`).
    pub run_href: String,
    pub parameters: Vec<TemplateStep>,
    pub steps: Vec<TemplateAction>,
}

pub fn template_view(entity: &Value) -> TemplateView {
    let spec = &entity["spec"];
    let metadata = &entity["metadata"];
    let run_href = format!(
        "/create/templates/{}/{}",
        urlencoding_segment(metadata["namespace"].as_str().unwrap_or("default")),
        urlencoding_segment(metadata["name"].as_str().unwrap_or_default())
    );
    // `parameters` is one JSON Schema object or a list of pages.
    let pages: Vec<&Value> = match &spec["parameters"] {
        Value::Array(pages) => pages.iter().collect(),
        Value::Object(_) => vec![&spec["parameters"]],
        _ => Vec::new(),
    };
    let parameters = pages
        .into_iter()
        .enumerate()
        .map(|(i, page)| {
            let required = strings(&page["required"]);
            TemplateStep {
                title: match text(&page["title"]) {
                    t if t.is_empty() => format!("Step {}", i + 1),
                    t => t,
                },
                fields: page["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, field)| TemplateField {
                        title: match text(&field["title"]) {
                            t if t.is_empty() => name.clone(),
                            t => t,
                        },
                        field_type: text(&field["type"]),
                        description: text(&field["description"]),
                        required: required.contains(name),
                        name: name.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    let steps = items(&spec["steps"])
        .map(|step| TemplateAction {
            id: text(&step["id"]),
            name: text(&step["name"]),
            action: text(&step["action"]),
        })
        .collect();
    TemplateView {
        run_href,
        parameters,
        steps,
    }
}

/// A path segment: names are `[a-zA-Z0-9._-]` by validation, but keep the link well-formed whatever
/// the entity holds.
fn urlencoding_segment(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
