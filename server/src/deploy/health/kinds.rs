//! The other kinds with built-in checks in gitops-engine: `health_job.go`, `health_service.go`,
//! `health_ingress.go`, `health_pvc.go`, `health_hpa.go` and `health_apiservice.go`.

use serde_json::Value;

use super::{Health, HealthStatus, at, condition, group_version, list_at, str_at};

/// By the last `Failed`, `Complete` or `Suspended` condition seen (Argo CD only looks at their
/// presence, and at the status of `Suspended`): none → Progressing; `Failed` → Degraded with its
/// message; `Suspended` True → Suspended; otherwise Healthy.
pub(super) fn job(object: &Value) -> Health {
    let (mut failed, mut complete, mut suspended) = (false, false, false);
    let (mut failure, mut message) = ("", "");
    for condition in list_at(object, &["status", "conditions"]) {
        let text = str_at(condition, &["message"]);
        match str_at(condition, &["type"]) {
            "Failed" => {
                (failed, complete, failure) = (true, true, text);
            }
            "Complete" => {
                (complete, message) = (true, text);
            }
            "Suspended" => {
                (complete, message) = (true, text);
                suspended |= str_at(condition, &["status"]) == "True";
            }
            _ => {}
        }
    }
    if !complete {
        Health::new(HealthStatus::Progressing, message)
    } else if failed {
        Health::new(HealthStatus::Degraded, failure)
    } else if suspended {
        Health::new(HealthStatus::Suspended, message)
    } else {
        Health::new(HealthStatus::Healthy, message)
    }
}

/// Healthy, except a `LoadBalancer` service without `status.loadBalancer.ingress` → Progressing.
pub(super) fn service(object: &Value) -> Health {
    let waiting = str_at(object, &["spec", "type"]) == "LoadBalancer"
        && list_at(object, &["status", "loadBalancer", "ingress"]).is_empty();
    Health::new(
        if waiting {
            HealthStatus::Progressing
        } else {
            HealthStatus::Healthy
        },
        "",
    )
}

/// Healthy once `status.loadBalancer.ingress` lists something, else Progressing.
pub(super) fn ingress(object: &Value) -> Health {
    let status = if list_at(object, &["status", "loadBalancer", "ingress"]).is_empty() {
        HealthStatus::Progressing
    } else {
        HealthStatus::Healthy
    };
    Health::new(status, "")
}

/// By phase: Bound → Healthy, Pending → Progressing, Lost → Degraded, anything else → Unknown.
pub(super) fn persistent_volume_claim(object: &Value) -> Health {
    let status = match str_at(object, &["status", "phase"]) {
        "Bound" => HealthStatus::Healthy,
        "Pending" => HealthStatus::Progressing,
        "Lost" => HealthStatus::Degraded,
        _ => HealthStatus::Unknown,
    };
    Health::new(status, "")
}

/// The first `Available` condition: True → Healthy, otherwise Progressing, with
/// `reason: message`; none → Progressing.
pub(super) fn api_service(object: &Value) -> Health {
    let Some(available) = condition(object, "Available") else {
        return Health::new(HealthStatus::Progressing, "Waiting to be processed");
    };
    let status = if str_at(available, &["status"]) == "True" {
        HealthStatus::Healthy
    } else {
        HealthStatus::Progressing
    };
    Health::new(
        status,
        format!(
            "{}: {}",
            str_at(available, &["reason"]),
            str_at(available, &["message"])
        ),
    )
}

/// (type, reason) pairs that make an autoscaler Degraded.
const HPA_FAILURES: [(&str, &str); 8] = [
    ("AbleToScale", "FailedGetScale"),
    ("AbleToScale", "FailedUpdateScale"),
    ("ScalingActive", "FailedGetResourceMetric"),
    ("ScalingActive", "FailedGetObjectMetric"),
    ("ScalingActive", "FailedGetPodsMetric"),
    ("ScalingActive", "FailedGetExternalMetric"),
    ("ScalingActive", "FailedComputeMetricsReplicas"),
    ("ScalingActive", "InvalidSelector"),
];

/// A condition field, its key matched case-insensitively as Go's JSON decoding does.
fn field<'a>(condition: &'a Value, key: &str) -> &'a str {
    condition
        .as_object()
        .and_then(|fields| {
            fields
                .get(key)
                .or_else(|| {
                    fields
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(key))
                        .map(|(_, v)| v)
                })
                .and_then(Value::as_str)
        })
        .unwrap_or("")
}

/// Conditions from `status.conditions` (v2) or, for `autoscaling/v1`, from the
/// `autoscaling.alpha.kubernetes.io/conditions` annotation. Any condition in [`HPA_FAILURES`] →
/// Degraded with its message; else an `AbleToScale` or `ScalingLimited` condition that is True →
/// Healthy with its message; else (or with no conditions) Progressing `Waiting to Autoscale`.
pub(super) fn horizontal_pod_autoscaler(object: &Value) -> Health {
    let parsed: Vec<Value>;
    let conditions: &[Value] = if group_version(object).1 == "v1" {
        let annotation = at(
            object,
            &[
                "metadata",
                "annotations",
                "autoscaling.alpha.kubernetes.io/conditions",
            ],
        )
        .and_then(Value::as_str);
        parsed = match annotation.map(serde_json::from_str::<Option<Vec<Value>>>) {
            None => Vec::new(),
            Some(Ok(conditions)) => conditions.unwrap_or_default(),
            Some(Err(error)) => {
                return Health::new(
                    HealthStatus::Unknown,
                    format!("failed to convert conditions annotation to typed: {error}"),
                );
            }
        };
        &parsed
    } else {
        list_at(object, &["status", "conditions"])
    };
    if let Some(failure) = conditions
        .iter()
        .find(|c| HPA_FAILURES.contains(&(field(c, "type"), field(c, "reason"))))
    {
        return Health::new(HealthStatus::Degraded, field(failure, "message"));
    }
    if let Some(healthy) = conditions.iter().find(|c| {
        matches!(field(c, "type"), "AbleToScale" | "ScalingLimited") && field(c, "status") == "True"
    }) {
        return Health::new(HealthStatus::Healthy, field(healthy, "message"));
    }
    Health::new(HealthStatus::Progressing, "Waiting to Autoscale")
}
