//! Pods, after gitops-engine's `health_pod.go`, and the pod side of
//! [`workload_health`](super::workload_health).

use serde_json::Value;

use super::{Health, HealthStatus, at, condition, group_version, int_at, list_at, str_at};

/// Whether Argo CD's pod rule counts a container waiting for this reason as an error.
fn is_error_reason(reason: &str) -> bool {
    reason.starts_with("Err") || reason.ends_with("Error") || reason.ends_with("BackOff")
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    at(object, &["metadata", "annotations", key]).and_then(Value::as_str)
}

fn label<'a>(object: &'a Value, key: &str) -> &'a str {
    str_at(object, &["metadata", "labels", key])
}

/// Argo CD's hook test: an `argocd.argoproj.io/hook` annotation whose known hook types are not
/// just `Skip`, or else a `helm.sh/hook` annotation other than `crd-install`.
fn is_hook(object: &Value) -> bool {
    const HOOK_TYPES: [&str; 5] = ["PreSync", "Sync", "PostSync", "SyncFail", "Skip"];
    match annotation(object, "argocd.argoproj.io/hook") {
        Some(value) => {
            let mut types = value
                .split(',')
                .map(str::trim)
                .filter(|t| HOOK_TYPES.contains(t))
                .peekable();
            // Only `Skip` (once or more) means "not a hook".
            types.peek().is_none() || !types.all(|t| t == "Skip")
        }
        None => annotation(object, "helm.sh/hook").is_some_and(|v| v != "crd-install"),
    }
}

/// The message Argo CD reports for a terminated container of a failed pod, if any.
fn failure_message(container: &Value) -> Option<String> {
    let terminated = at(container, &["state", "terminated"])?;
    let message = str_at(terminated, &["message"]);
    if !message.is_empty() {
        return Some(message.to_owned());
    }
    if str_at(terminated, &["reason"]) == "OOMKilled" {
        return Some("OOMKilled".to_owned());
    }
    let code = int_at(terminated, &["exitCode"]);
    (code != 0).then(|| {
        format!(
            "container {:?} failed with exit code {code}",
            str_at(container, &["name"])
        )
    })
}

/// Argo CD's pod rule. Long-running pods (restart policy `Always`, or the
/// `argocd.argoproj.io/ignore-restart-policy: "true"` annotation on a pod that is not a hook):
/// any container waiting with an error reason → Degraded with the waiting messages. Then by
/// phase: Pending → Progressing; Succeeded → Healthy; Failed → Degraded (the pod's message, else
/// the first terminated container's message, `OOMKilled` or exit code); Running → Healthy when
/// the `Ready` condition is True, Degraded when a container has a last termination state,
/// otherwise Progressing (always Progressing for `Never`/`OnFailure` pods, which Argo treats as
/// hooks); anything else → Unknown.
pub(super) fn pod(object: &Value) -> Health {
    let policy = str_at(object, &["spec", "restartPolicy"]);
    let ignores_policy = annotation(object, "argocd.argoproj.io/ignore-restart-policy")
        == Some("true")
        && !is_hook(object);
    let long_running = policy == "Always" || ignores_policy;
    let message = str_at(object, &["status", "message"]);
    let containers = list_at(object, &["status", "containerStatuses"]);

    if long_running {
        let errors: Vec<&str> = containers
            .iter()
            .filter_map(|c| at(c, &["state", "waiting"]))
            .filter(|w| is_error_reason(str_at(w, &["reason"])))
            .map(|w| str_at(w, &["message"]))
            .collect();
        if !errors.is_empty() {
            return Health::new(HealthStatus::Degraded, errors.join(", "));
        }
    }

    match str_at(object, &["status", "phase"]) {
        "Pending" => Health::new(HealthStatus::Progressing, message),
        "Succeeded" => Health::new(HealthStatus::Healthy, message),
        "Failed" => {
            if !message.is_empty() {
                return Health::new(HealthStatus::Degraded, message);
            }
            let failure = list_at(object, &["status", "initContainerStatuses"])
                .iter()
                .chain(containers)
                .find_map(failure_message)
                .unwrap_or_default();
            Health::new(HealthStatus::Degraded, failure)
        }
        "Running" if long_running => {
            if condition(object, "Ready").is_some_and(|c| str_at(c, &["status"]) == "True") {
                Health::new(HealthStatus::Healthy, message)
            } else if containers
                .iter()
                .any(|c| at(c, &["lastState", "terminated"]).is_some())
            {
                Health::new(HealthStatus::Degraded, message)
            } else {
                Health::new(HealthStatus::Progressing, message)
            }
        }
        "Running" if policy == "OnFailure" || policy == "Never" => {
            Health::new(HealthStatus::Progressing, message)
        }
        _ => Health::new(HealthStatus::Unknown, message),
    }
}

/// For [`workload_health`](super::workload_health): one line per container or init container of
/// the pod that waits with an error reason (Argo CD's test, plus `InvalidImageName`), whatever the
/// pod's restart policy.
pub(super) fn stuck_containers(pod: &Value) -> Vec<String> {
    let pod_name = str_at(pod, &["metadata", "name"]);
    [
        ("init container", "initContainerStatuses"),
        ("container", "containerStatuses"),
    ]
    .into_iter()
    .flat_map(|(what, field)| {
        list_at(pod, &["status", field])
            .iter()
            .map(move |c| (what, c))
    })
    .filter_map(|(what, container)| {
        let waiting = at(container, &["state", "waiting"])?;
        let reason = str_at(waiting, &["reason"]);
        if !is_error_reason(reason) && reason != "InvalidImageName" {
            return None;
        }
        let name = str_at(container, &["name"]);
        let mut line = format!("pod {pod_name:?} {what} {name:?} is waiting: {reason}");
        let detail = str_at(waiting, &["message"]);
        if !detail.is_empty() {
            line.push_str(": ");
            line.push_str(detail);
        }
        Some(line)
    })
    .collect()
}

/// Whether `pod` belongs to the workload's current revision, as far as the workload tells:
/// a Deployment names its newest ReplicaSet in its `Progressing` condition, a StatefulSet has
/// `status.updateRevision` (pods carry it as `controller-revision-hash`), a DaemonSet has its
/// template generation annotation (pods carry it as `pod-template-generation`). When it cannot
/// be told, every pod counts.
pub(super) fn of_current_revision(workload: &Value, pod: &Value) -> bool {
    let (group, _) = group_version(workload);
    match (group, str_at(workload, &["kind"])) {
        ("apps", "Deployment") => newest_replica_set(workload).is_none_or(|(rs, hash)| {
            label(pod, "pod-template-hash") == hash
                || list_at(pod, &["metadata", "ownerReferences"])
                    .iter()
                    .any(|o| str_at(o, &["kind"]) == "ReplicaSet" && str_at(o, &["name"]) == rs)
        }),
        ("apps", "StatefulSet") => match str_at(workload, &["status", "updateRevision"]) {
            "" => true,
            revision => label(pod, "controller-revision-hash") == revision,
        },
        ("apps", "DaemonSet") => annotation(workload, "deprecated.daemonset.template.generation")
            .is_none_or(|generation| label(pod, "pod-template-generation") == generation),
        _ => true,
    }
}

/// The name and pod-template hash of the ReplicaSet a Deployment's `Progressing` condition names
/// (the controller writes `ReplicaSet "web-5d4f8c7b9" is progressing.`, `... has successfully
/// progressed.`, `Created new replica set "..."` and so on, always about the newest one).
fn newest_replica_set(deployment: &Value) -> Option<(&str, &str)> {
    let message = str_at(condition(deployment, "Progressing")?, &["message"]);
    let (_, rest) = message.split_once('"')?;
    let (replica_set, _) = rest.split_once('"')?;
    let hash = replica_set
        .strip_prefix(str_at(deployment, &["metadata", "name"]))?
        .strip_prefix('-')?;
    (!hash.is_empty()).then_some((replica_set, hash))
}
