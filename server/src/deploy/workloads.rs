//! The live workloads of a catalog entity in every configured cluster, for its Kubernetes page: the
//! objects that carry the entity's labels (as Backstage's Kubernetes plugin finds them, by the
//! `backstage.io/kubernetes-id` or `backstage.io/kubernetes-label-selector` annotation), their pods
//! and recent events, each with its health as Argo CD computes it.
//!
//! Read-only, and only within each cluster's allowed namespaces: the allowlist is what Atrium may
//! touch, so it is also all it looks at. Clusters are read concurrently, each bounded by the
//! configured request timeout; one that cannot be read is reported and does not hold up the others.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::join_all;
use serde_json::Value;

use super::cluster::{ClusterClient, KubeError};
use super::config::ClusterConfig;
use super::health::{self, Health};
use super::service::{DEPLOYMENT_LABEL, DeployService, KUBERNETES_ID_LABEL};

/// Annotation naming the value of the entity's `backstage.io/kubernetes-id` label.
pub const KUBERNETES_ID_ANNOTATION: &str = "backstage.io/kubernetes-id";
/// Annotation holding a whole label selector (`app=api,tier=backend`), used as is.
pub const LABEL_SELECTOR_ANNOTATION: &str = "backstage.io/kubernetes-label-selector";

/// The kinds listed besides pods, in the order the page shows them. A cluster that does not serve
/// one (KServe not installed) is simply not asked again for it.
const WORKLOAD_KINDS: [(&str, &str); 6] = [
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("v1", "Service"),
    ("networking.k8s.io/v1", "Ingress"),
    ("serving.kserve.io/v1beta1", "InferenceService"),
];

/// How many events a cluster shows.
const EVENTS_SHOWN: usize = 10;

/// How an entity's workloads are found, from its annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntitySelector {
    /// A label selector to list with.
    Labels(String),
    /// Neither annotation is set.
    Missing,
    /// An annotation is set but cannot be used; the message says why.
    Invalid(String),
}

/// The label selector of an entity (its catalog JSON). As in Backstage's Kubernetes plugin, the
/// label selector annotation wins over the id.
pub fn entity_selector(entity: &Value) -> EntitySelector {
    let annotation = |name: &str| {
        entity["metadata"]["annotations"][name]
            .as_str()
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(selector) = annotation(LABEL_SELECTOR_ANNOTATION) {
        return EntitySelector::Labels(selector.to_owned());
    }
    match annotation(KUBERNETES_ID_ANNOTATION) {
        Some(id) if is_label_value(id) => {
            EntitySelector::Labels(format!("{KUBERNETES_ID_LABEL}={id}"))
        }
        // Pasted into a selector, `a,b` would quietly become two requirements.
        Some(id) => EntitySelector::Invalid(format!(
            "the {KUBERNETES_ID_ANNOTATION} annotation `{id}` is not a valid label value (at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit)"
        )),
        None => EntitySelector::Missing,
    }
}

/// A Kubernetes label value (not empty).
pub fn is_label_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// What one cluster holds of the entity.
#[derive(Debug, Clone)]
pub struct ClusterWorkloads {
    pub cluster: String,
    pub environment: String,
    /// The namespaces looked in: the cluster's allowlist.
    pub namespaces: Vec<String>,
    /// Why the cluster could not be read (unreachable, misconfigured, too slow); nothing else is
    /// known of it then.
    pub error: Option<String>,
    /// Lists the cluster refused (RBAC, a bad selector) while others succeeded.
    pub warnings: Vec<String>,
    pub workloads: Vec<Workload>,
    pub pods: Vec<PodState>,
    /// The latest events about the workloads and pods, newest first.
    pub events: Vec<EventLine>,
}

/// A Deployment, StatefulSet, DaemonSet, Service, Ingress or InferenceService.
#[derive(Debug, Clone)]
pub struct Workload {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Its `atrium.dev/deployment` label: the deployment target that applied it, if Atrium did.
    pub deployment: Option<String>,
    /// A short state: `2/3 ready`, `ClusterIP 10.0.0.7 80/TCP`, hosts, a URL.
    pub detail: String,
    /// For a workload with pods, its own health made `Degraded` by a stuck pod
    /// ([`health::workload_health`]); else [`health::health_of`]. `None` when no rule applies.
    pub health: Option<Health>,
}

#[derive(Debug, Clone)]
pub struct PodState {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub ready_containers: usize,
    pub containers: usize,
    /// Sum of the containers' `restartCount` (init containers not counted, as `kubectl get pods`).
    pub restarts: u64,
    /// The reason a container waits (`CrashLoopBackOff`, `ImagePullBackOff`), init containers first.
    pub waiting: Option<String>,
    pub health: Option<Health>,
}

#[derive(Debug, Clone)]
pub struct EventLine {
    /// `lastTimestamp`, else `eventTime`, `firstTimestamp` or the creation time.
    pub time: String,
    /// `Normal` or `Warning`.
    pub event_type: String,
    /// `Pod/web-5d4f8c7b9-q8m2z`.
    pub object: String,
    pub namespace: String,
    pub reason: String,
    pub message: String,
    pub count: u64,
}

/// The entity's workloads in every configured cluster, in configuration order.
pub async fn entity_workloads(service: &DeployService, selector: &str) -> Vec<ClusterWorkloads> {
    let config = service.config();
    let limit = Duration::from_secs(config.request_timeout_seconds.max(1));
    join_all(
        config
            .clusters
            .iter()
            .map(|cluster| cluster_workloads(service, cluster, selector, limit)),
    )
    .await
}

async fn cluster_workloads(
    service: &DeployService,
    cluster: &ClusterConfig,
    selector: &str,
    limit: Duration,
) -> ClusterWorkloads {
    let mut found = ClusterWorkloads {
        cluster: cluster.name.clone(),
        environment: cluster.environment.clone(),
        namespaces: cluster.namespaces.clone(),
        error: None,
        warnings: Vec::new(),
        workloads: Vec::new(),
        pods: Vec::new(),
        events: Vec::new(),
    };
    // kube bounds each request; this bounds the whole walk, so a page never waits on a cluster
    // longer than one request may take.
    match tokio::time::timeout(limit, read_cluster(service, cluster, selector, &mut found)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => found.error = Some(e.to_string()),
        Err(_) => {
            found.error = Some(format!(
                "cluster `{}` did not answer within {} s",
                cluster.name,
                limit.as_secs()
            ));
        }
    }
    if found.error.is_some() {
        found.warnings.clear();
        found.workloads.clear();
        found.pods.clear();
        found.events.clear();
    }
    found
}

/// One list to make: a kind in a namespace.
struct ListCall<'a> {
    namespace: &'a str,
    api_version: &'a str,
    kind: &'a str,
    /// Events are listed whole and filtered here: one request per namespace instead of one per object.
    selector: &'a str,
}

async fn read_cluster(
    service: &DeployService,
    cluster: &ClusterConfig,
    selector: &str,
    found: &mut ClusterWorkloads,
) -> Result<(), KubeError> {
    if cluster.namespaces.is_empty() {
        return Ok(());
    }
    let client = service.connect(cluster).await?;
    let mut calls = Vec::new();
    for namespace in &cluster.namespaces {
        for (api_version, kind) in WORKLOAD_KINDS.iter().copied().chain([("v1", "Pod")]) {
            calls.push(ListCall {
                namespace,
                api_version,
                kind,
                selector,
            });
        }
        calls.push(ListCall {
            namespace,
            api_version: "v1",
            kind: "Event",
            selector: "",
        });
    }
    let answers = join_all(calls.iter().map(|call| list(&client, call))).await;

    let mut objects: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for (call, answer) in calls.iter().zip(answers) {
        match answer {
            Ok(items) => objects.entry(call.kind).or_default().extend(items),
            Err(KubeError::UnknownKind { .. }) => {}
            Err(e @ (KubeError::Unreachable { .. } | KubeError::Config { .. })) => return Err(e),
            Err(KubeError::Refused { code, message, .. }) => found.warnings.push(format!(
                "{}s in namespace {} could not be listed ({code}): {message}",
                call.kind, call.namespace
            )),
            Err(e) => found.warnings.push(e.to_string()),
        }
    }
    let mut take = |kind: &str| objects.remove(kind).unwrap_or_default();
    let pods = take("Pod");
    let events = take("Event");
    for (_, kind) in WORKLOAD_KINDS {
        for object in take(kind) {
            found.workloads.push(workload(&object, &pods));
        }
    }
    found.pods = pods.iter().map(pod_state).collect();
    found
        .pods
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));

    let involved: BTreeSet<(&str, &str, &str)> = found
        .workloads
        .iter()
        .map(|w| (w.namespace.as_str(), w.kind.as_str(), w.name.as_str()))
        .chain(
            found
                .pods
                .iter()
                .map(|p| (p.namespace.as_str(), "Pod", p.name.as_str())),
        )
        .collect();
    let mut lines: Vec<EventLine> = events
        .iter()
        .filter(|e| {
            let about = &e["involvedObject"];
            involved.contains(&(
                text(e, &["metadata", "namespace"]),
                text(about, &["kind"]),
                text(about, &["name"]),
            ))
        })
        .map(event_line)
        .collect();
    lines.sort_by(|a, b| time_key(&b.time).cmp(&time_key(&a.time)));
    lines.truncate(EVENTS_SHOWN);
    found.events = lines;
    Ok(())
}

async fn list(client: &ClusterClient, call: &ListCall<'_>) -> Result<Vec<Value>, KubeError> {
    let mut items = client
        .list(
            call.api_version,
            call.kind,
            Some(call.namespace),
            call.selector,
        )
        .await?;
    // Lists of built-in kinds leave `apiVersion` and `kind` out of each item; health needs them.
    for item in &mut items {
        if let Some(map) = item.as_object_mut() {
            map.entry("apiVersion")
                .or_insert_with(|| Value::from(call.api_version));
            map.entry("kind").or_insert_with(|| Value::from(call.kind));
        }
    }
    Ok(items)
}

fn workload(object: &Value, pods: &[Value]) -> Workload {
    let kind = text(object, &["kind"]);
    let namespace = text(object, &["metadata", "namespace"]);
    let health = if matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet") {
        let own: Vec<Value> = pods
            .iter()
            .filter(|p| text(p, &["metadata", "namespace"]) == namespace && selects(object, p))
            .cloned()
            .collect();
        health::workload_health(object, &own)
    } else {
        health::health_of(object)
    };
    Workload {
        kind: kind.to_owned(),
        namespace: namespace.to_owned(),
        name: text(object, &["metadata", "name"]).to_owned(),
        deployment: object["metadata"]["labels"][DEPLOYMENT_LABEL]
            .as_str()
            .map(str::to_owned),
        detail: detail(object),
        health,
    }
}

/// Whether a workload's `spec.selector` (match labels and match expressions) selects the pod. A
/// workload without a selector selects nothing.
fn selects(workload: &Value, pod: &Value) -> bool {
    let selector = &workload["spec"]["selector"];
    let labels = &pod["metadata"]["labels"];
    let label = |key: &str| labels[key].as_str();
    let match_labels = selector["matchLabels"].as_object();
    let expressions = selector["matchExpressions"].as_array();
    if match_labels.is_none_or(serde_json::Map::is_empty) && expressions.is_none_or(Vec::is_empty) {
        return false;
    }
    let labels_match = match_labels
        .into_iter()
        .flatten()
        .all(|(key, value)| label(key) == value.as_str());
    let expressions_match = expressions.into_iter().flatten().all(|e| {
        let key = text(e, &["key"]);
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match text(e, &["operator"]) {
            "In" => label(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => !label(key).is_some_and(|v| values.contains(&v)),
            "Exists" => label(key).is_some(),
            "DoesNotExist" => label(key).is_none(),
            _ => false,
        }
    });
    labels_match && expressions_match
}

fn detail(object: &Value) -> String {
    let int = |path: &[&str]| at(object, path).and_then(Value::as_u64);
    match text(object, &["kind"]) {
        "Deployment" | "StatefulSet" => format!(
            "{}/{} ready",
            int(&["status", "readyReplicas"]).unwrap_or(0),
            int(&["spec", "replicas"]).unwrap_or(1)
        ),
        "DaemonSet" => format!(
            "{}/{} ready",
            int(&["status", "numberReady"]).unwrap_or(0),
            int(&["status", "desiredNumberScheduled"]).unwrap_or(0)
        ),
        "Service" => {
            let ports = object["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let protocol = p["protocol"].as_str().unwrap_or("TCP");
                    format!("{}/{protocol}", p["port"])
                });
            let kind = object["spec"]["type"].as_str().unwrap_or("ClusterIP");
            let ip = text(object, &["spec", "clusterIP"]);
            [kind.to_owned(), ip.to_owned()]
                .into_iter()
                .chain(ports)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        }
        "Ingress" => object["spec"]["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["host"].as_str())
            .collect::<Vec<_>>()
            .join(", "),
        "InferenceService" => text(object, &["status", "url"]).to_owned(),
        _ => String::new(),
    }
}

fn pod_state(pod: &Value) -> PodState {
    let statuses = |field: &str| {
        pod["status"][field]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    let init = statuses("initContainerStatuses");
    let containers = statuses("containerStatuses");
    let waiting = init
        .iter()
        .chain(containers)
        .find_map(|c| c["state"]["waiting"]["reason"].as_str())
        .map(str::to_owned);
    PodState {
        namespace: text(pod, &["metadata", "namespace"]).to_owned(),
        name: text(pod, &["metadata", "name"]).to_owned(),
        phase: match text(pod, &["status", "phase"]) {
            "" => "Unknown".to_owned(),
            phase => phase.to_owned(),
        },
        ready_containers: containers
            .iter()
            .filter(|c| c["ready"].as_bool() == Some(true))
            .count(),
        containers: pod["spec"]["containers"]
            .as_array()
            .map_or(containers.len(), Vec::len),
        restarts: containers
            .iter()
            .filter_map(|c| c["restartCount"].as_u64())
            .sum(),
        waiting,
        health: health::health_of(pod),
    }
}

fn event_line(event: &Value) -> EventLine {
    let about = &event["involvedObject"];
    let time = [
        &["lastTimestamp"][..],
        &["eventTime"],
        &["firstTimestamp"],
        &["metadata", "creationTimestamp"],
    ]
    .iter()
    .map(|path| text(event, path))
    .find(|t| !t.is_empty())
    .unwrap_or_default();
    EventLine {
        time: time.to_owned(),
        event_type: text(event, &["type"]).to_owned(),
        object: format!("{}/{}", text(about, &["kind"]), text(about, &["name"])),
        namespace: text(event, &["metadata", "namespace"]).to_owned(),
        reason: text(event, &["reason"]).to_owned(),
        message: text(event, &["message"]).to_owned(),
        count: event["count"].as_u64().unwrap_or(1),
    }
}

/// Sorts RFC 3339 UTC times with or without fractions (`…:05Z` before `…:05.2Z`), which plain
/// string order gets wrong.
fn time_key(time: &str) -> (&str, &str) {
    let time = time.trim_end_matches('Z');
    time.split_at(time.len().min(19))
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |at, key| at.get(key))
        .filter(|v| !v.is_null())
}

fn text<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    at(value, path).and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_label_selector_annotation_wins_over_the_id() {
        let both = json!({"metadata": {"annotations": {
            "backstage.io/kubernetes-id": "web",
            "backstage.io/kubernetes-label-selector": "app=api,tier=backend"}}});
        assert_eq!(
            entity_selector(&both),
            EntitySelector::Labels("app=api,tier=backend".to_owned())
        );
        let id = json!({"metadata": {"annotations": {"backstage.io/kubernetes-id": "web"}}});
        assert_eq!(
            entity_selector(&id),
            EntitySelector::Labels("backstage.io/kubernetes-id=web".to_owned())
        );
        assert_eq!(
            entity_selector(&json!({"metadata": {}})),
            EntitySelector::Missing
        );
        let bad = json!({"metadata": {"annotations": {"backstage.io/kubernetes-id": "web,db"}}});
        assert!(matches!(entity_selector(&bad), EntitySelector::Invalid(_)));
    }

    #[test]
    fn a_selector_matches_labels_and_expressions() {
        let deployment = json!({"spec": {"selector": {
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["api", "web"]}]}}});
        let pod = |labels: Value| json!({"metadata": {"labels": labels}});
        assert!(selects(
            &deployment,
            &pod(json!({"app": "web", "tier": "api"}))
        ));
        assert!(!selects(
            &deployment,
            &pod(json!({"app": "web", "tier": "db"}))
        ));
        assert!(!selects(&deployment, &pod(json!({"tier": "api"}))));
        assert!(!selects(&json!({"spec": {}}), &pod(json!({"app": "web"}))));
    }

    #[test]
    fn pods_show_readiness_restarts_and_why_they_wait() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "apps"},
            "spec": {"containers": [{"name": "app"}, {"name": "proxy"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "ready": false, "restartCount": 4,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
                {"name": "proxy", "ready": true, "restartCount": 1, "state": {"running": {}}}]}});
        let state = pod_state(&pod);
        assert_eq!(state.phase, "Running");
        assert_eq!((state.ready_containers, state.containers), (1, 2));
        assert_eq!(state.restarts, 5);
        assert_eq!(state.waiting.as_deref(), Some("CrashLoopBackOff"));
    }

    #[test]
    fn event_times_sort_with_and_without_fractions() {
        let mut times = vec![
            "2025-01-01T10:00:05Z",
            "2025-01-01T10:00:05.500000Z",
            "2025-01-01T09:59:59Z",
        ];
        times.sort_by(|a, b| time_key(b).cmp(&time_key(a)));
        assert_eq!(
            times,
            vec![
                "2025-01-01T10:00:05.500000Z",
                "2025-01-01T10:00:05Z",
                "2025-01-01T09:59:59Z"
            ]
        );
    }
}
