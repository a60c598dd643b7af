//! `apps/v1` workloads, after gitops-engine's `health_deployment.go`, `health_statefulset.go`,
//! `health_daemonset.go` and `health_replicaset.go` (themselves after `kubectl rollout status`).

use serde_json::Value;

use super::{Health, HealthStatus, at, bool_at, condition, int_at, opt_int_at, str_at};

fn generation(object: &Value) -> i64 {
    int_at(object, &["metadata", "generation"])
}

fn observed_generation(object: &Value) -> i64 {
    int_at(object, &["status", "observedGeneration"])
}

fn name(object: &Value) -> &str {
    str_at(object, &["metadata", "name"])
}

/// Paused → Suspended; generation not yet observed → Progressing; a `Progressing` condition with
/// reason `ProgressDeadlineExceeded` → Degraded; replicas not all updated, old ones not yet gone,
/// or updated ones not all available → Progressing; otherwise Healthy.
pub(super) fn deployment(object: &Value) -> Health {
    if bool_at(object, &["spec", "paused"]) {
        return Health::new(HealthStatus::Suspended, "Deployment is paused");
    }
    if generation(object) > observed_generation(object) {
        return Health::new(
            HealthStatus::Progressing,
            "Waiting for rollout to finish: observed deployment generation less than desired generation",
        );
    }
    if condition(object, "Progressing")
        .is_some_and(|c| str_at(c, &["reason"]) == "ProgressDeadlineExceeded")
    {
        return Health::new(
            HealthStatus::Degraded,
            format!(
                "Deployment {:?} exceeded its progress deadline",
                name(object)
            ),
        );
    }
    let replicas = int_at(object, &["status", "replicas"]);
    let updated = int_at(object, &["status", "updatedReplicas"]);
    let available = int_at(object, &["status", "availableReplicas"]);
    if let Some(wanted) = opt_int_at(object, &["spec", "replicas"])
        && updated < wanted
    {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for rollout to finish: {updated} out of {wanted} new replicas have been updated..."
            ),
        );
    }
    if replicas > updated {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for rollout to finish: {} old replicas are pending termination...",
                replicas - updated
            ),
        );
    }
    if available < updated {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for rollout to finish: {available} of {updated} updated replicas are available..."
            ),
        );
    }
    Health::new(HealthStatus::Healthy, "")
}

/// Generation not observed (or `observedGeneration` 0) → Progressing; fewer ready pods than
/// `spec.replicas` → Progressing; `RollingUpdate` with a `rollingUpdate` block: fewer updated pods
/// than replicas minus partition → Progressing, else Healthy; `OnDelete` → Healthy; otherwise
/// Progressing until `updateRevision` equals `currentRevision`.
pub(super) fn stateful_set(object: &Value) -> Health {
    let observed = observed_generation(object);
    if observed == 0 || generation(object) > observed {
        return Health::new(
            HealthStatus::Progressing,
            "Waiting for statefulset spec update to be observed...",
        );
    }
    let wanted = opt_int_at(object, &["spec", "replicas"]);
    let ready = int_at(object, &["status", "readyReplicas"]);
    let updated = int_at(object, &["status", "updatedReplicas"]);
    if let Some(wanted) = wanted
        && ready < wanted
    {
        return Health::new(
            HealthStatus::Progressing,
            format!("Waiting for {} pods to be ready...", wanted - ready),
        );
    }
    let strategy = str_at(object, &["spec", "updateStrategy", "type"]);
    if strategy == "RollingUpdate"
        && let Some(rolling) = at(object, &["spec", "updateStrategy", "rollingUpdate"])
    {
        if let Some(wanted) = wanted
            && let Some(partition) = opt_int_at(rolling, &["partition"])
            && updated < wanted - partition
        {
            return Health::new(
                HealthStatus::Progressing,
                format!(
                    "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...",
                    wanted - partition
                ),
            );
        }
        return Health::new(
            HealthStatus::Healthy,
            format!("partitioned roll out complete: {updated} new pods have been updated..."),
        );
    }
    if strategy == "OnDelete" {
        return Health::new(
            HealthStatus::Healthy,
            format!("statefulset has {ready} ready pods"),
        );
    }
    let update_revision = str_at(object, &["status", "updateRevision"]);
    if update_revision != str_at(object, &["status", "currentRevision"]) {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}..."
            ),
        );
    }
    Health::new(
        HealthStatus::Healthy,
        format!(
            "statefulset rolling update complete {} pods at revision {}...",
            int_at(object, &["status", "currentReplicas"]),
            str_at(object, &["status", "currentRevision"]),
        ),
    )
}

/// Generation not observed → Progressing; `OnDelete` → Healthy; fewer updated or available pods
/// than desired → Progressing; otherwise Healthy.
pub(super) fn daemon_set(object: &Value) -> Health {
    if generation(object) > observed_generation(object) {
        return Health::new(
            HealthStatus::Progressing,
            "Waiting for rollout to finish: observed daemon set generation less than desired generation",
        );
    }
    let desired = int_at(object, &["status", "desiredNumberScheduled"]);
    let updated = int_at(object, &["status", "updatedNumberScheduled"]);
    let available = int_at(object, &["status", "numberAvailable"]);
    if str_at(object, &["spec", "updateStrategy", "type"]) == "OnDelete" {
        return Health::new(
            HealthStatus::Healthy,
            format!("daemon set {updated} out of {desired} new pods have been updated"),
        );
    }
    if updated < desired {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for daemon set {:?} rollout to finish: {updated} out of {desired} new pods have been updated...",
                name(object)
            ),
        );
    }
    if available < desired {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for daemon set {:?} rollout to finish: {available} of {desired} updated pods are available...",
                name(object)
            ),
        );
    }
    Health::new(HealthStatus::Healthy, "")
}

/// Generation not observed → Progressing; a `ReplicaFailure` condition that is True → Degraded
/// with its message; fewer available replicas than `spec.replicas` → Progressing; else Healthy.
pub(super) fn replica_set(object: &Value) -> Health {
    if generation(object) > observed_generation(object) {
        return Health::new(
            HealthStatus::Progressing,
            "Waiting for rollout to finish: observed replica set generation less than desired generation",
        );
    }
    if let Some(failure) = condition(object, "ReplicaFailure")
        && str_at(failure, &["status"]) == "True"
    {
        return Health::new(HealthStatus::Degraded, str_at(failure, &["message"]));
    }
    let available = int_at(object, &["status", "availableReplicas"]);
    if let Some(wanted) = opt_int_at(object, &["spec", "replicas"])
        && available < wanted
    {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for rollout to finish: {available} out of {wanted} new replicas are available..."
            ),
        );
    }
    Health::new(HealthStatus::Healthy, "")
}
