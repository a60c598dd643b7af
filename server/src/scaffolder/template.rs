//! A `Template` entity (`scaffolder.backstage.io/v1beta3`) as the scaffolder reads it from the catalog,
//! and the task spec a run of it stores.
//!
//! The spec is kept as JSON: steps' inputs and outputs are free-form and rendered with expressions, so
//! only the parts the runner itself interprets (step ids, actions, `if`, `each`) are typed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::auth::caller::GUEST;
use crate::auth::{ActorKind, Caller, Scope, Scopes};
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

    /// The task spec stored for a run (Backstage's `TaskSpecV1beta3`). Besides Backstage's `user.ref`
    /// (the entity whose rights apply) and `user.entity`, `user` records who created the task
    /// (`actor`, `actorKind`) and the scopes they held then: the steps run later, in a worker, and
    /// act within those (see [`task_caller`]).
    pub fn task_spec(&self, values: &Value, caller: &Caller, user_entity: Option<&Value>) -> Value {
        let mut user = Map::new();
        if let Some(entity) = user_entity {
            user.insert("entity".to_owned(), entity.clone());
        }
        user.insert("ref".to_owned(), Value::String(caller.user_ref.clone()));
        user.insert("actor".to_owned(), Value::String(caller.actor()));
        user.insert("actorKind".to_owned(), json!(caller.kind.as_str()));
        user.insert("scopes".to_owned(), json!(caller.scopes.strings()));
        user.insert("groups".to_owned(), json!(caller.groups));
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

/// Who a task's steps act for: the creator recorded in the spec's `user` by [`Template::task_spec`],
/// with the scopes they held when the task was created.
///
/// A spec without recorded scopes comes from before tasks recorded them, when every task was created
/// as the guest, who held a person's scopes: such a task keeps exactly the rights it was created
/// with. Any other spec without scopes (none is made that way) is given none, so a step that needs a
/// scope fails rather than running unchecked.
pub fn task_caller(user: &Value) -> Caller {
    let user_ref = user["ref"].as_str().unwrap_or_default().to_owned();
    let actor = user["actor"].as_str().unwrap_or(&user_ref);
    let agent = actor.strip_prefix("agent:").map(str::to_owned);
    let kind = match user["actorKind"].as_str() {
        Some("agent") => ActorKind::Agent,
        Some("token") => ActorKind::Token,
        Some("guest") => ActorKind::Guest,
        Some("user") => ActorKind::User,
        _ if agent.is_some() => ActorKind::Agent,
        _ if user_ref == GUEST => ActorKind::Guest,
        _ => ActorKind::User,
    };
    let scopes = match user["scopes"].as_array() {
        // A recorded scope that no longer parses grants nothing.
        Some(list) => Scopes(
            list.iter()
                .filter_map(Value::as_str)
                .filter_map(|s| Scope::parse(s).ok())
                .collect(),
        ),
        None if user_ref == GUEST => Scopes::person(false),
        None => Scopes::default(),
    };
    // The groups the policy saw when the task was made; its steps are decided with the same ones.
    let groups = user["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    Caller {
        user_ref,
        kind,
        token_id: None,
        agent,
        scopes,
        groups,
        request_id: None,
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

    #[test]
    fn the_spec_records_the_creator_and_the_steps_act_within_their_scopes() {
        let t = Template::from_entity(template(json!({"steps": []}))).expect("valid");
        let agent = Caller {
            user_ref: "user:default/alice".to_owned(),
            kind: ActorKind::Agent,
            token_id: None,
            agent: Some("bot".to_owned()),
            scopes: Scopes::parse_all(&["deploy:dev".to_owned()]).expect("scopes"),
            groups: Vec::new(),
            request_id: None,
        };
        let spec = t.task_spec(&json!({}), &agent, None);
        assert_eq!(spec["user"]["ref"], "user:default/alice");
        assert_eq!(spec["user"]["actor"], "agent:bot");
        let caller = task_caller(&spec["user"]);
        assert_eq!(caller.actor(), "agent:bot");
        assert_eq!(caller.kind, ActorKind::Agent);
        assert!(caller.allows(&Scope::Deploy("dev".to_owned())));
        assert!(!caller.allows(&Scope::Deploy("prod".to_owned())));

        // Specs from before scopes were recorded: the guest's keep a person's rights, others none.
        let legacy = task_caller(&json!({"ref": GUEST}));
        assert!(legacy.allows(&Scope::Deploy("prod".to_owned())));
        let unknown = task_caller(&json!({"ref": "user:default/bob"}));
        assert!(!unknown.allows(&Scope::Deploy("dev".to_owned())));
    }
}
