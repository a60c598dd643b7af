//! Kinds Argo CD assesses with the Lua health scripts it ships in `resource_customizations/`
//! (which take precedence over built-in checks and apply to every version of the group and kind):
//! `serving.kserve.io/InferenceService`, `batch/CronJob` and `policy/PodDisruptionBudget`.
//!
//! Where the script itself would fail (concatenating a missing field), Argo CD reports `Unknown`
//! with the Lua error; here it is `Unknown` with a message of our own.

use serde_json::Value;

use super::{Health, HealthStatus, at, list_at, str_at};

pub(super) fn health(group: &str, kind: &str, object: &Value) -> Option<Health> {
    match (group, kind) {
        ("serving.kserve.io", "InferenceService") => Some(inference_service(object)),
        ("batch", "CronJob") => Some(cron_job(object)),
        ("policy", "PodDisruptionBudget") => Some(pod_disruption_budget(object)),
        _ => None,
    }
}

fn script_failure(what: &str) -> Health {
    Health::new(
        HealthStatus::Unknown,
        format!("health check failed: {what}"),
    )
}

fn string<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    at(value, &[key]).and_then(Value::as_str)
}

/// Argo CD's `InferenceService/health.lua`. A `Stopped` condition that is True → Suspended. A
/// `status.modelStatus.transitionStatus` other than `UpToDate` makes it Progressing when
/// `InProgress`, otherwise Degraded. With `status.conditions`: Healthy when no condition (other
/// than `Stopped`) is False or Unknown and the model is up to date; else Degraded if the model
/// status says so, else Progressing (a False condition alone is Progressing). The message lists
/// each condition that is not True as ` | <1-based index>: <type> | <status> | <reason> |
/// <message>`, after `0: transitionStatus | <status>`. No status or no conditions → Progressing.
fn inference_service(object: &Value) -> Health {
    const WAITING: &str = "Waiting for InferenceService to report status...";
    let Some(status) = at(object, &["status"]) else {
        return Health::new(HealthStatus::Progressing, WAITING);
    };
    let (mut progressing, mut degraded) = (false, false);
    let (mut false_count, mut unknown_count) = (0_usize, 0_usize);
    let mut message = String::new();

    if let Some(model) = at(status, &["modelStatus"]) {
        match string(model, "transitionStatus") {
            Some("UpToDate") => {}
            Some(transition) => {
                if transition == "InProgress" {
                    progressing = true;
                } else {
                    degraded = true;
                }
                message.push_str("0: transitionStatus | ");
                message.push_str(transition);
            }
            None => return script_failure("status.modelStatus has no transitionStatus"),
        }
    }

    let Some(conditions) = at(status, &["conditions"]).and_then(Value::as_array) else {
        return Health::new(HealthStatus::Progressing, WAITING);
    };
    for (index, condition) in conditions.iter().enumerate() {
        let kind = string(condition, "type");
        let state = string(condition, "status");
        if kind == Some("Stopped") && state == Some("True") {
            return Health::new(HealthStatus::Suspended, "InferenceService is Stopped");
        }
        if state == Some("Unknown") {
            unknown_count += 1;
        } else if state == Some("False") && kind != Some("Stopped") {
            false_count += 1;
        }
        if state != Some("True") && kind != Some("Stopped") {
            let (Some(kind), Some(state)) = (kind, state) else {
                return script_failure(&format!(
                    "status.conditions[{index}] has no type or no status"
                ));
            };
            message.push_str(&format!(" | {}: {kind} | {state}", index + 1));
            for extra in [string(condition, "reason"), string(condition, "message")]
                .into_iter()
                .flatten()
                .filter(|s| !s.is_empty())
            {
                message.push_str(" | ");
                message.push_str(extra);
            }
        }
    }

    if !progressing && !degraded && unknown_count == 0 && false_count == 0 {
        Health::new(HealthStatus::Healthy, "InferenceService is healthy.")
    } else if degraded {
        Health::new(HealthStatus::Degraded, message)
    } else {
        Health::new(HealthStatus::Progressing, message)
    }
}

/// Argo CD's `CronJob/health.lua`: suspended → Healthy (sic, Argo CD issue 24428); no status →
/// Progressing; never scheduled, never succeeded yet, or a job running → Healthy; last success
/// before last schedule → Degraded; otherwise Healthy.
fn cron_job(object: &Value) -> Health {
    if at(object, &["spec", "suspend"]).and_then(Value::as_bool) == Some(true) {
        return Health::new(HealthStatus::Healthy, "CronJob is Suspended");
    }
    let Some(status) = at(object, &["status"]) else {
        return Health::new(HealthStatus::Progressing, "Waiting for CronJob");
    };
    let Some(scheduled) = at(status, &["lastScheduleTime"]) else {
        return Health::new(HealthStatus::Healthy, "CronJob has not been scheduled yet");
    };
    let Some(succeeded) = at(status, &["lastSuccessfulTime"]) else {
        return Health::new(
            HealthStatus::Healthy,
            "The CronJob never completed successfully. It may not be healthy",
        );
    };
    if !list_at(status, &["active"]).is_empty() {
        return Health::new(
            HealthStatus::Healthy,
            "The job is running. Its last execution may not have been successful",
        );
    }
    // RFC 3339 timestamps in the same form compare as strings, as the script compares them.
    if succeeded.as_str().unwrap_or("") < scheduled.as_str().unwrap_or("") {
        return Health::new(
            HealthStatus::Degraded,
            "CronJob has not completed its last execution successfully",
        );
    }
    Health::new(
        HealthStatus::Healthy,
        "CronJob has completed its last execution successfully",
    )
}

/// Argo CD's `PodDisruptionBudget/health.lua`: a False condition whose reason is not
/// `InsufficientPods` → Degraded; otherwise Healthy once there is a condition, Progressing before.
/// The message is `PodDisruptionBudget has <reason>`.
fn pod_disruption_budget(object: &Value) -> Health {
    let mut health = Health::new(HealthStatus::Progressing, "Waiting for status");
    for condition in list_at(object, &["status", "conditions"]) {
        let reason = string(condition, "reason");
        let failed =
            str_at(condition, &["status"]) == "False" && reason != Some("InsufficientPods");
        let Some(reason) = reason else {
            return script_failure("a PodDisruptionBudget condition has no reason");
        };
        let message = format!("PodDisruptionBudget has {reason}");
        if failed {
            return Health::new(HealthStatus::Degraded, message);
        }
        health = Health::new(HealthStatus::Healthy, message);
    }
    health
}
