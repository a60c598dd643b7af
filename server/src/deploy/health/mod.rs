//! Health of Kubernetes objects, assessed the way Argo CD assesses it, so that a deploy step can
//! wait until what it applied is `Healthy`, `Degraded`, or a timeout passes.
//!
//! The rules follow Argo CD's built-in checks (gitops-engine `pkg/health`, now vendored in the
//! argo-cd repository under `gitops-engine/`) and, for a few kinds, the Lua health scripts Argo CD
//! ships in `resource_customizations/`:
//!
//! - `apps/v1` Deployment, StatefulSet, DaemonSet, ReplicaSet (`apps.rs`)
//! - `v1` Pod (`pod.rs`)
//! - `batch/v1` Job, `v1` Service and PersistentVolumeClaim, Ingress (`networking.k8s.io` and
//!   `extensions`), `autoscaling` v1/v2 HorizontalPodAutoscaler, `apiregistration.k8s.io` APIService
//!   (`kinds.rs`)
//! - KServe InferenceService, `batch` CronJob, `policy` PodDisruptionBudget: ports of Argo CD's Lua
//!   scripts (`scripted.rs`)
//!
//! Like Argo CD, an object being deleted (`metadata.deletionTimestamp` set) is `Progressing` with
//! the message `Pending deletion`, whatever its kind, and a known kind served at a version Argo CD
//! does not support is `Unknown` (`unsupported Deployment GVK: apps/v1beta2, Kind=Deployment`).
//!
//! Two parts are Atrium's own, not Argo CD's:
//!
//! - the fallback for any other kind: its `Ready` condition, or failing that its `Available`
//!   condition, in `status.conditions` (`True` → Healthy, `False` → Degraded, anything else →
//!   Progressing). Argo CD has no health for such objects (or a kind-specific Lua script that is
//!   not ported here);
//! - [`workload_health`], which also looks at a workload's pods.
//!
//! Fields are read leniently: a missing, `null` or wrongly typed field reads as absent (zero,
//! empty), where Argo CD would report a conversion error as `Unknown`.

mod apps;
mod kinds;
mod pod;
mod scripted;
#[cfg(test)]
mod tests;

use serde_json::Value;

/// The health of an object, declared from best to worst.
///
/// The order is Argo CD's "worse" order (gitops-engine `IsWorse`): Healthy < Suspended <
/// Progressing < Missing < Degraded < Unknown, so `max` is the worst (see [`worst`]). `Missing` is
/// never produced here; it is for objects the caller expected but did not find.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "PascalCase")]
pub enum HealthStatus {
    /// 100% healthy.
    Healthy,
    /// Suspended or paused (a paused Deployment, a suspended Job).
    Suspended,
    /// Not healthy yet, but may still become healthy.
    Progressing,
    /// The object does not exist.
    Missing,
    /// Failed, or could not become healthy within its deadline.
    Degraded,
    /// The health could not be assessed.
    Unknown,
}

/// A health status and a human-readable message (often empty when healthy, as in Argo CD).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Health {
    pub status: HealthStatus,
    pub message: String,
}

impl Health {
    fn new(status: HealthStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// Health of one live object (the JSON the API server returns), as Argo CD computes it.
///
/// `None` when Argo CD has no rule for the kind and the object has no usable `Ready`/`Available`
/// condition in `status.conditions` (Argo CD then gives it no health at all). The conditions
/// fallback is Atrium's, not Argo CD's; see the module documentation.
pub fn health_of(object: &Value) -> Option<Health> {
    if pending_deletion(object) {
        return Some(Health::new(HealthStatus::Progressing, "Pending deletion"));
    }
    let (group, version) = group_version(object);
    let kind = str_at(object, &["kind"]);
    scripted::health(group, kind, object)
        .or_else(|| builtin(group, version, kind, object))
        .or_else(|| conditions_fallback(object))
}

/// Health of a workload together with its pods (the pods its selector matches).
///
/// This is the workload's own [`health_of`], made `Degraded` when one of its current pods is
/// stuck: a container or init container waiting with a reason Argo CD's pod rule counts as an
/// error (one starting with `Err` or ending in `Error` or `BackOff`: `CrashLoopBackOff`,
/// `ImagePullBackOff`, `ErrImagePull`, `CreateContainerConfigError`, ...) or `InvalidImageName`.
/// So a Deployment stuck on a bad image ends `Degraded` at once instead of `Progressing` until its
/// progress deadline. The message names each stuck pod, container and reason.
///
/// Atrium's rule, not Argo CD's (which shows the pods separately, and counts init containers and
/// pods with restart policy `Never`/`OnFailure` as never stuck). To avoid failing a rollout that
/// replaces broken pods, pods are only looked at once the workload's controller has observed its
/// current generation; pods being deleted are ignored; and only pods of the current revision
/// count where it can be told: for a Deployment, those of the ReplicaSet its `Progressing`
/// condition names; for a StatefulSet, those labelled with its `status.updateRevision`; for a
/// DaemonSet, those of its current template generation. A workload that is already `Degraded`
/// or `Unknown` keeps its own health. `None` only when [`health_of`] is `None` and no pod is stuck.
pub fn workload_health(object: &Value, pods: &[Value]) -> Option<Health> {
    let own = health_of(object);
    if own
        .as_ref()
        .is_some_and(|h| h.status >= HealthStatus::Degraded)
        || !caught_up(object)
    {
        return own;
    }
    let stuck: Vec<String> = pods
        .iter()
        .filter(|p| at(p, &["metadata", "deletionTimestamp"]).is_none())
        .filter(|p| pod::of_current_revision(object, p))
        .flat_map(pod::stuck_containers)
        .collect();
    if stuck.is_empty() {
        return own;
    }
    const SHOWN: usize = 3;
    let mut message = stuck[..stuck.len().min(SHOWN)].join("; ");
    if stuck.len() > SHOWN {
        message.push_str(&format!("; and {} more", stuck.len() - SHOWN));
    }
    Some(Health::new(HealthStatus::Degraded, message))
}

/// The worst of several statuses, in [`HealthStatus`]'s order; `Healthy` when there are none
/// (Argo CD's application health starts from Healthy too).
pub fn worst(healths: impl IntoIterator<Item = HealthStatus>) -> HealthStatus {
    healths.into_iter().max().unwrap_or(HealthStatus::Healthy)
}

/// Argo CD's sync hooks carry this finalizer; they are not "pending deletion" while they have it.
const HOOK_FINALIZER: &str = "argocd.argoproj.io/hook-finalizer";

fn pending_deletion(object: &Value) -> bool {
    at(object, &["metadata", "deletionTimestamp"]).is_some()
        && !list_at(object, &["metadata", "finalizers"])
            .iter()
            .any(|f| f.as_str() == Some(HOOK_FINALIZER))
}

/// `("apps", "v1")` for `apps/v1`, `("", "v1")` for the core group.
fn group_version(object: &Value) -> (&str, &str) {
    let api_version = str_at(object, &["apiVersion"]);
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// One of Argo CD's built-in (Go) checks.
struct Rule {
    group: &'static str,
    kind: &'static str,
    /// The name in Argo CD's "unsupported ... GVK" error.
    label: &'static str,
    /// Versions the check accepts; empty means any.
    versions: &'static [&'static str],
    check: fn(&Value) -> Health,
}

const RULES: &[Rule] = &[
    Rule {
        group: "apps",
        kind: "Deployment",
        label: "Deployment",
        versions: &["v1"],
        check: apps::deployment,
    },
    Rule {
        group: "apps",
        kind: "StatefulSet",
        label: "StatefulSet",
        versions: &["v1"],
        check: apps::stateful_set,
    },
    Rule {
        group: "apps",
        kind: "ReplicaSet",
        label: "ReplicaSet",
        versions: &["v1"],
        check: apps::replica_set,
    },
    Rule {
        group: "apps",
        kind: "DaemonSet",
        label: "DaemonSet",
        versions: &["v1"],
        check: apps::daemon_set,
    },
    Rule {
        group: "extensions",
        kind: "Ingress",
        label: "Ingress",
        versions: &[],
        check: kinds::ingress,
    },
    Rule {
        group: "networking.k8s.io",
        kind: "Ingress",
        label: "Ingress",
        versions: &[],
        check: kinds::ingress,
    },
    Rule {
        group: "apiregistration.k8s.io",
        kind: "APIService",
        label: "APIService",
        versions: &["v1", "v1beta1"],
        check: kinds::api_service,
    },
    Rule {
        group: "",
        kind: "Service",
        label: "Service",
        versions: &["v1"],
        check: kinds::service,
    },
    Rule {
        group: "",
        kind: "PersistentVolumeClaim",
        label: "PersistentVolumeClaim",
        versions: &["v1"],
        check: kinds::persistent_volume_claim,
    },
    Rule {
        group: "",
        kind: "Pod",
        label: "Pod",
        versions: &["v1"],
        check: pod::pod,
    },
    Rule {
        group: "batch",
        kind: "Job",
        label: "Job",
        versions: &["v1"],
        check: kinds::job,
    },
    Rule {
        group: "autoscaling",
        kind: "HorizontalPodAutoscaler",
        label: "HPA",
        versions: &["v1", "v2"],
        check: kinds::horizontal_pod_autoscaler,
    },
];

fn builtin(group: &str, version: &str, kind: &str, object: &Value) -> Option<Health> {
    let rule = RULES.iter().find(|r| r.group == group && r.kind == kind)?;
    if !rule.versions.is_empty() && !rule.versions.contains(&version) {
        return Some(Health::new(
            HealthStatus::Unknown,
            format!(
                "unsupported {} GVK: {group}/{version}, Kind={kind}",
                rule.label
            ),
        ));
    }
    Some((rule.check)(object))
}

/// Atrium's fallback for kinds Argo CD has no rule for: the `Ready` condition, else `Available`.
fn conditions_fallback(object: &Value) -> Option<Health> {
    let condition = condition(object, "Ready").or_else(|| condition(object, "Available"))?;
    let status = match str_at(condition, &["status"]) {
        "True" => HealthStatus::Healthy,
        "False" => HealthStatus::Degraded,
        _ => HealthStatus::Progressing,
    };
    let message = match str_at(condition, &["message"]) {
        "" => str_at(condition, &["reason"]),
        message => message,
    };
    Some(Health::new(status, message))
}

/// Whether the object's controller has seen its current spec: false only when both
/// `metadata.generation` and `status.observedGeneration` are present and the latter lags.
fn caught_up(object: &Value) -> bool {
    match (
        opt_int_at(object, &["metadata", "generation"]),
        opt_int_at(object, &["status", "observedGeneration"]),
    ) {
        (Some(generation), Some(observed)) => observed >= generation,
        _ => true,
    }
}

// --- reading JSON leniently ---

/// The value at `path` below `value`; JSON `null` counts as absent.
fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut current = value;
    for key in path {
        current = current.get(key)?;
    }
    (!current.is_null()).then_some(current)
}

/// The string at `path`, or `""`.
fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    at(value, path).and_then(Value::as_str).unwrap_or("")
}

/// The integer at `path`, if there is one.
fn opt_int_at(value: &Value, path: &[&str]) -> Option<i64> {
    at(value, path).and_then(Value::as_i64)
}

/// The integer at `path`, or 0.
fn int_at(value: &Value, path: &[&str]) -> i64 {
    opt_int_at(value, path).unwrap_or(0)
}

/// The boolean at `path`, or false.
fn bool_at(value: &Value, path: &[&str]) -> bool {
    at(value, path).and_then(Value::as_bool).unwrap_or(false)
}

/// The array at `path`, or an empty one.
fn list_at<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

/// The first entry of `status.conditions` with the given type.
fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    list_at(object, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == kind)
}
