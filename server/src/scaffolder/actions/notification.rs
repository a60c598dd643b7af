//! `notification:send`: Backstage's notifications action, which the example template of every new
//! Backstage app ends with.
//!
//! Atrium has no notification inbox yet. So that templates which send one run unchanged, the
//! notification is delivered where Atrium can show it: the task's log (which the creator follows on
//! the task page) and the server's structured log (target `atrium::notifications`, for a forwarder to
//! pick up). The input is checked as Backstage checks it, so a template that would fail there fails
//! here too.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::{Action, ActionContext, ActionError};
use crate::catalog::model::refs::{EntityRef, RefDefaults};

pub fn actions() -> Vec<Box<dyn Action>> {
    vec![Box::new(Send)]
}

struct Send;

impl Send {
    /// Who receives it, as entity refs (`broadcast`: everyone).
    fn recipients(ctx: &ActionContext<'_>) -> Result<Vec<String>, ActionError> {
        match ctx.str_input("recipients") {
            Some("broadcast") => Ok(vec!["everyone".to_owned()]),
            Some("entity") => {
                let refs = ctx
                    .input
                    .get("entityRefs")
                    .and_then(Value::as_array)
                    .filter(|refs| !refs.is_empty())
                    .ok_or_else(|| {
                        ActionError::input(
                            "notification:send: recipients \"entity\" needs entityRefs, a non-empty list",
                        )
                    })?;
                refs.iter()
                    .enumerate()
                    .map(|(i, value)| {
                        let text = value.as_str().unwrap_or_default();
                        EntityRef::parse(
                            text,
                            RefDefaults {
                                kind: Some("user"),
                                ..RefDefaults::default()
                            },
                        )
                            .map(|r| r.key())
                            .map_err(|e| {
                                ActionError::input(format!(
                                    "notification:send: entityRefs[{i}] {text:?} is not an entity reference: {e}"
                                ))
                            })
                    })
                    .collect()
            }
            other => Err(ActionError::input(format!(
                "notification:send: recipients must be \"broadcast\" or \"entity\", not {other:?}"
            ))),
        }
    }
}

impl Action for Send {
    fn id(&self) -> &'static str {
        "notification:send"
    }
    fn description(&self) -> &'static str {
        "Sends a notification to entities or to everyone. Atrium writes it to the task log and the server log (it has no notification inbox yet)."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["recipients", "title"],
            "properties": {
                "recipients": {"enum": ["broadcast", "entity"], "description": "Everyone, or the entities in entityRefs"},
                "entityRefs": {"type": "array", "items": {"type": "string"}, "description": "Who receives it (users, or groups for their members)"},
                "title": {"type": "string"},
                "info": {"type": "string", "description": "The notification's text"},
                "link": {"type": "string"},
                "severity": {"enum": ["low", "normal", "high", "critical"]},
                "scope": {"type": "string"},
                "optional": {"type": "boolean", "description": "Do not fail the step when the notification cannot be sent"},
            },
        })
    }
    fn output_schema(&self) -> Value {
        json!({"type": "object", "properties": {}})
    }
    fn supports_dry_run(&self) -> bool {
        false
    }
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Map<String, Value>, ActionError>> {
        async move {
            let recipients = match Self::recipients(ctx) {
                Ok(recipients) => recipients,
                Err(error) if ctx.input.get("optional") == Some(&Value::Bool(true)) => {
                    ctx.log(format!("{error} (optional: continuing)"));
                    return Ok(Map::new());
                }
                Err(error) => return Err(error),
            };
            let title = ctx.str_input("title").unwrap_or_default();
            let severity = ctx.str_input("severity").unwrap_or("normal");
            let info = ctx.str_input("info").unwrap_or_default();
            let link = ctx.str_input("link").unwrap_or_default();
            tracing::info!(
                target: "atrium::notifications",
                task = ctx.task_id,
                sender = ctx.user_ref,
                recipients = %recipients.join(","),
                title,
                severity,
                info,
                link,
                "notification"
            );
            let mut line = format!(
                "Notification to {} ({severity}): {title}",
                recipients.join(", ")
            );
            for extra in [info, link] {
                if !extra.is_empty() {
                    line.push_str(" — ");
                    line.push_str(extra);
                }
            }
            ctx.log(line);
            Ok(Map::new())
        }
        .boxed()
    }
}
