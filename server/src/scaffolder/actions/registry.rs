//! The actions this server offers, by id, with their input schemas compiled once.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::Action;

pub struct ActionRegistry {
    actions: BTreeMap<&'static str, (Arc<dyn Action>, jsonschema::Validator)>,
}

impl ActionRegistry {
    /// Panics if an action's input schema is not a valid JSON Schema: a programming error that every
    /// test run would show.
    pub fn new(actions: Vec<Box<dyn Action>>) -> Self {
        let actions = actions
            .into_iter()
            .map(|action| {
                let action: Arc<dyn Action> = Arc::from(action);
                let validator = jsonschema::validator_for(&action.input_schema())
                    .expect("built-in action input schemas are valid");
                (action.id(), (action, validator))
            })
            .collect();
        Self { actions }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn Action>> {
        self.actions.get(id).map(|(action, _)| action)
    }

    /// Checks an action's rendered input against its schema: every problem, with where it is.
    pub fn check_input(&self, action: &dyn Action, input: &Value) -> Result<(), String> {
        let Some((_, validator)) = self.actions.get(action.id()) else {
            return Ok(());
        };
        let problems: Vec<String> = validator
            .iter_errors(input)
            .map(|error| {
                let at = error.instance_path().as_str().to_owned();
                if at.is_empty() {
                    error.to_string()
                } else {
                    format!("{at}: {error}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// `GET /v2/actions`: Backstage's `ListActionsResponse`.
    pub fn describe(&self) -> Value {
        Value::Array(
            self.actions
                .values()
                .map(|(action, _)| {
                    json!({
                        "id": action.id(),
                        "description": action.description(),
                        "examples": [],
                        "schema": {"input": action.input_schema(), "output": action.output_schema()},
                    })
                })
                .collect(),
        )
    }
}
