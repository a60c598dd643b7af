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
    pub parameters: Vec<TemplateStep>,
    pub steps: Vec<TemplateAction>,
}

pub fn template_view(spec: &Value) -> TemplateView {
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
    TemplateView { parameters, steps }
}
