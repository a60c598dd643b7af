//! A `Template` entity (`scaffolder.backstage.io/v1beta3`) as the scaffolder reads it from the catalog,
//! and the task spec a run of it stores.
//!
//! The spec is kept as JSON: steps' inputs and outputs are free-form and rendered with expressions, so
//! only the parts the runner itself interprets (step ids, actions, `if`, `each`) are typed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::catalog::model::location::ANNOTATION_LOCATION;
use crate::error::AppError;

pub const TEMPLATE_API_VERSION: &str = "scaffolder.backstage.io/v1beta3";

/// A template read from the catalog.
#[derive(Debug, Clone)]
pub struct Template {
    /// `template:<namespace>/<name>`, lowercase as the catalog keys it.
    pub entity_ref: String,
    pub entity: Value,
    /// The form pages: `spec.parameters`, one JSON Schema object per page (a single object is one page).
    pub pages: Vec<Value>,
    pub steps: Vec<Step>,
    pub output: Value,
}

/// One step, as stored in a task spec (Backstage's `TaskStep`): `id` and `name` are always present.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub id: String,
    pub name: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub each: Option<Value>,
}

impl Template {
    /// Reads a template entity. Errors say which field is wrong.
    pub fn from_entity(entity: Value) -> Result<Self, AppError> {
        let kind = entity["kind"].as_str().unwrap_or_default();
        let namespace = entity["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default");
        let name = entity["metadata"]["name"].as_str().unwrap_or_default();
        if !kind.eq_ignore_ascii_case("template") {
            return Err(AppError::input(format!(
                "{kind}:{namespace}/{name} is not a Template"
            )));
        }
        let entity_ref = format!("template:{namespace}/{name}").to_lowercase();
        let api_version = entity["apiVersion"].as_str().unwrap_or_default();
        if api_version != TEMPLATE_API_VERSION {
            return Err(AppError::input(format!(
                "{entity_ref}: apiVersion {api_version:?} is not supported; templates must be {TEMPLATE_API_VERSION}"
            )));
        }
        let spec = &entity["spec"];
        let pages = match &spec["parameters"] {
            Value::Null => Vec::new(),
            Value::Array(pages) => pages.clone(),
            page @ Value::Object(_) => vec![page.clone()],
            _ => {
                return Err(AppError::input(format!(
                    "{entity_ref}: spec.parameters must be an object or a list of objects"
                )));
            }
        };
        if let Some(index) = pages.iter().position(|page| !page.is_object()) {
            return Err(AppError::input(format!(
                "{entity_ref}: spec.parameters[{index}] must be an object (a JSON Schema)"
            )));
        }
        let steps = steps_of(&entity_ref, &spec["steps"])?;
        Ok(Self {
            entity_ref,
            output: spec.get("output").cloned().unwrap_or_else(|| json!({})),
            entity,
            pages,
            steps,
        })
    }

    /// The location the template was read from (`file:/...`, `git-file:...`), whose directory holds its
    /// skeletons.
    pub fn location(&self) -> Option<&str> {
        self.entity["metadata"]["annotations"][ANNOTATION_LOCATION].as_str()
    }

    /// The task spec stored for a run (Backstage's `TaskSpecV1beta3`).
    pub fn task_spec(&self, values: &Value, user_ref: &str, user_entity: Option<&Value>) -> Value {
        let mut user = Map::new();
        if let Some(entity) = user_entity {
            user.insert("entity".to_owned(), entity.clone());
        }
        user.insert("ref".to_owned(), Value::String(user_ref.to_owned()));
        let mut template_info = json!({
            "entityRef": self.entity_ref,
            "entity": { "metadata": self.entity["metadata"] },
        });
        if let Some(location) = self.location() {
            template_info["baseUrl"] = Value::String(location.to_owned());
        }
        json!({
            "apiVersion": TEMPLATE_API_VERSION,
            "steps": self.steps,
            "output": self.output,
            "parameters": values,
            "user": user,
            "templateInfo": template_info,
        })
    }
}

/// The steps of `spec.steps`, with Backstage's defaults: a step without `id` is `step-<n>` (from 1),
/// without `name` it is named after its action.
fn steps_of(entity_ref: &str, steps: &Value) -> Result<Vec<Step>, AppError> {
    let Some(list) = steps.as_array() else {
        return Err(AppError::input(format!(
            "{entity_ref}: spec.steps must be a list"
        )));
    };
    let mut seen = std::collections::HashSet::new();
    list.iter()
        .enumerate()
        .map(|(index, step)| {
            let field = |name: &str| format!("{entity_ref}: spec.steps[{index}].{name}");
            let Some(action) = step["action"].as_str().filter(|a| !a.is_empty()) else {
                return Err(AppError::input(format!("{} is required", field("action"))));
            };
            let id = match &step["id"] {
                Value::Null => format!("step-{}", index + 1),
                Value::String(id) if !id.is_empty() => id.clone(),
                _ => {
                    return Err(AppError::input(format!(
                        "{} must be a non-empty string",
                        field("id")
                    )));
                }
            };
            if !seen.insert(id.clone()) {
                return Err(AppError::input(format!(
                    "{}: the id {id:?} is used by an earlier step",
                    field("id")
                )));
            }
            let input = match step.get("input") {
                None | Some(Value::Null) => None,
                Some(input @ Value::Object(_)) => Some(input.clone()),
                Some(_) => {
                    return Err(AppError::input(format!(
                        "{} must be an object",
                        field("input")
                    )));
                }
            };
            Ok(Step {
                name: step["name"].as_str().unwrap_or(action).to_owned(),
                id,
                action: action.to_owned(),
                input,
                condition: step.get("if").filter(|v| !v.is_null()).cloned(),
                each: step.get("each").filter(|v| !v.is_null()).cloned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(spec: Value) -> Value {
        json!({
            "apiVersion": TEMPLATE_API_VERSION,
            "kind": "Template",
            "metadata": {"name": "svc", "annotations": {ANNOTATION_LOCATION: "file:/t/template.yaml"}},
            "spec": spec,
        })
    }

    #[test]
    fn steps_get_backstage_default_ids_and_names() {
        let t = Template::from_entity(template(json!({
            "parameters": {"properties": {}},
            "steps": [{"action": "debug:log"}, {"id": "b", "name": "B", "action": "fetch:plain", "if": "${{ x }}"}],
        })))
        .expect("valid");
        assert_eq!(t.entity_ref, "template:default/svc");
        assert_eq!(t.pages.len(), 1, "a single parameters object is one page");
        assert_eq!(t.steps[0].id, "step-1");
        assert_eq!(t.steps[0].name, "debug:log");
        assert_eq!(t.steps[1].condition, Some(json!("${{ x }}")));
        assert_eq!(t.location(), Some("file:/t/template.yaml"));
    }

    #[test]
    fn bad_specs_name_the_field() {
        let err = Template::from_entity(template(json!({"steps": [{"id": "a"}]})))
            .expect_err("no action");
        assert_eq!(
            err.to_string(),
            "template:default/svc: spec.steps[0].action is required"
        );
        let err = Template::from_entity(template(json!({"steps": [
            {"id": "a", "action": "debug:log"}, {"id": "a", "action": "debug:log"}
        ]})))
        .expect_err("duplicate id");
        assert!(err.to_string().contains("spec.steps[1].id"), "{err}");
        let mut wrong = template(json!({"steps": []}));
        wrong["apiVersion"] = json!("backstage.io/v1beta2");
        assert!(Template::from_entity(wrong).is_err());
    }
}
