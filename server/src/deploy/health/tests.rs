#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::HealthStatus::{Degraded, Healthy, Missing, Progressing, Suspended, Unknown};
use super::{Health, HealthStatus, health_of, workload_health, worst};

fn health(object: &Value) -> Health {
    health_of(object).unwrap()
}

fn expect(object: &Value, status: HealthStatus, message: &str) {
    assert_eq!(
        health(object),
        Health {
            status,
            message: message.to_owned()
        },
        "for {object:#}"
    );
}

// --- fixtures ---

fn deployment(generation: i64, replicas: i64, status: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "generation": generation,
            "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "ghcr.io/acme/web:1.4.2"}]}}
        },
        "status": status
    })
}

fn progressing_condition(reason: &str, message: &str) -> Value {
    json!({"type": "Progressing", "status": "True", "reason": reason, "message": message,
        "lastUpdateTime": "2025-03-01T10:00:00Z", "lastTransitionTime": "2025-03-01T09:58:00Z"})
}

/// A Deployment at generation 2, observed, rolling out ReplicaSet `web-5d4f8c7b9`.
fn rolling_deployment(replicas: i64, updated: i64, available: i64) -> Value {
    deployment(
        2,
        3,
        json!({
            "observedGeneration": 2,
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": available,
            "availableReplicas": available,
            "unavailableReplicas": replicas - available,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability."},
                progressing_condition("ReplicaSetUpdated", "ReplicaSet \"web-5d4f8c7b9\" is progressing.")
            ]
        }),
    )
}

fn pod(name: &str, status: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"restartPolicy": "Always",
            "containers": [{"name": "web", "image": "ghcr.io/acme/web:1.4.2"}]},
        "status": status
    })
}

/// A pod of the Deployment's ReplicaSet `web-<hash>`.
fn web_pod(hash: &str, suffix: &str, status: Value) -> Value {
    let name = format!("web-{hash}-{suffix}");
    let mut pod = pod(&name, status);
    pod["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": format!("web-{hash}"), "uid": "0b6c2c52-1f0e-4d3a-9d1b-9f7a3c1e2d4f",
        "controller": true, "blockOwnerDeletion": true}]);
    pod
}

fn running_ready() -> Value {
    json!({
        "phase": "Running",
        "conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "True"},
            {"type": "ContainersReady", "status": "True"},
            {"type": "PodScheduled", "status": "True"}
        ],
        "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0,
            "image": "ghcr.io/acme/web:1.4.2", "state": {"running": {"startedAt": "2025-03-01T10:00:00Z"}}}]
    })
}

fn waiting(phase: &str, reason: &str, message: &str) -> Value {
    json!({
        "phase": phase,
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                "message": "containers with unready status: [web]"},
            {"type": "PodScheduled", "status": "True"}
        ],
        "containerStatuses": [{"name": "web", "ready": false, "restartCount": 4,
            "image": "ghcr.io/acme/web:1.4.3",
            "state": {"waiting": {"reason": reason, "message": message}}}]
    })
}

const CRASH_MESSAGE: &str =
    "back-off 1m20s restarting failed container=web pod=web-5d4f8c7b9-x2x4k_shop(1d2e)";
const PULL_MESSAGE: &str = "Back-off pulling image \"ghcr.io/acme/web:1.4.3\"";

// --- HealthStatus, worst, serialization ---

#[test]
fn order_is_argo_worse_order() {
    let order = [Healthy, Suspended, Progressing, Missing, Degraded, Unknown];
    assert!(order.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(worst([]), Healthy);
    assert_eq!(worst([Healthy, Progressing, Suspended]), Progressing);
    assert_eq!(worst([Degraded, Missing, Healthy]), Degraded);
    assert_eq!(worst([Degraded, Unknown]), Unknown);
}

#[test]
fn serializes_like_argo() {
    let health = Health {
        status: Degraded,
        message: "boom".to_owned(),
    };
    assert_eq!(
        serde_json::to_value(&health).unwrap(),
        json!({"status": "Degraded", "message": "boom"})
    );
    let status: HealthStatus = serde_json::from_value(json!("Progressing")).unwrap();
    assert_eq!(status, Progressing);
}

#[test]
fn pending_deletion_is_progressing_for_any_kind() {
    let mut object = rolling_deployment(3, 3, 3);
    object["metadata"]["deletionTimestamp"] = json!("2025-03-01T11:00:00Z");
    expect(&object, Progressing, "Pending deletion");
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "deletionTimestamp": "2025-03-01T11:00:00Z"}});
    expect(&config_map, Progressing, "Pending deletion");
}

#[test]
fn unsupported_version_of_a_known_kind_is_unknown() {
    let mut object = rolling_deployment(3, 3, 3);
    object["apiVersion"] = json!("apps/v1beta2");
    expect(
        &object,
        Unknown,
        "unsupported Deployment GVK: apps/v1beta2, Kind=Deployment",
    );
}

// --- Deployment ---

#[test]
fn deployment_healthy() {
    let object = deployment(
        2,
        3,
        json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
            "availableReplicas": 3, "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                progressing_condition("NewReplicaSetAvailable",
                    "ReplicaSet \"web-5d4f8c7b9\" has successfully progressed.")]}),
    );
    expect(&object, Healthy, "");
}

#[test]
fn deployment_progressing() {
    expect(
        &rolling_deployment(3, 3, 1),
        Progressing,
        "Waiting for rollout to finish: 1 of 3 updated replicas are available...",
    );
    expect(
        &rolling_deployment(4, 1, 3),
        Progressing,
        "Waiting for rollout to finish: 1 out of 3 new replicas have been updated...",
    );
    expect(
        &rolling_deployment(4, 3, 3),
        Progressing,
        "Waiting for rollout to finish: 1 old replicas are pending termination...",
    );
    let mut lagging = rolling_deployment(3, 3, 3);
    lagging["metadata"]["generation"] = json!(3);
    expect(
        &lagging,
        Progressing,
        "Waiting for rollout to finish: observed deployment generation less than desired generation",
    );
}

#[test]
fn deployment_degraded_after_progress_deadline() {
    let mut object = rolling_deployment(3, 1, 2);
    object["status"]["conditions"][1] = progressing_condition(
        "ProgressDeadlineExceeded",
        "ReplicaSet \"web-5d4f8c7b9\" has timed out progressing.",
    );
    object["status"]["conditions"][1]["status"] = json!("False");
    expect(
        &object,
        Degraded,
        "Deployment \"web\" exceeded its progress deadline",
    );
}

#[test]
fn deployment_paused_is_suspended() {
    let mut object = rolling_deployment(3, 1, 3);
    object["spec"]["paused"] = json!(true);
    expect(&object, Suspended, "Deployment is paused");
}

// --- StatefulSet ---

fn stateful_set(spec_extra: Value, status: Value) -> Value {
    let mut spec = json!({"replicas": 3, "serviceName": "db",
        "selector": {"matchLabels": {"app": "db"}},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}});
    for (k, v) in spec_extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "shop", "generation": 4},
        "spec": spec, "status": status})
}

#[test]
fn stateful_set_rules() {
    let done = json!({"observedGeneration": 4, "replicas": 3, "readyReplicas": 3,
        "currentReplicas": 3, "updatedReplicas": 3, "availableReplicas": 3,
        "currentRevision": "db-7b9f6c8d5", "updateRevision": "db-7b9f6c8d5"});
    expect(
        &stateful_set(json!({}), done.clone()),
        Healthy,
        "partitioned roll out complete: 3 new pods have been updated...",
    );

    let mut unready = done.clone();
    unready["readyReplicas"] = json!(1);
    expect(
        &stateful_set(json!({}), unready),
        Progressing,
        "Waiting for 2 pods to be ready...",
    );

    let mut partial = done.clone();
    partial["updatedReplicas"] = json!(1);
    partial["updateRevision"] = json!("db-6c5d4b3a2");
    let partitioned = json!({"updateStrategy": {"type": "RollingUpdate",
        "rollingUpdate": {"partition": 1}}});
    expect(
        &stateful_set(partitioned, partial.clone()),
        Progressing,
        "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...",
    );

    let on_delete = json!({"updateStrategy": {"type": "OnDelete"}});
    expect(
        &stateful_set(on_delete, partial.clone()),
        Healthy,
        "statefulset has 3 ready pods",
    );

    let plain = json!({"updateStrategy": {"type": "RollingUpdate"}});
    expect(
        &stateful_set(plain.clone(), partial),
        Progressing,
        "waiting for statefulset rolling update to complete 1 pods at revision db-6c5d4b3a2...",
    );
    expect(
        &stateful_set(plain, done),
        Healthy,
        "statefulset rolling update complete 3 pods at revision db-7b9f6c8d5...",
    );

    expect(
        &stateful_set(json!({}), json!({"replicas": 0})),
        Progressing,
        "Waiting for statefulset spec update to be observed...",
    );
}

// --- DaemonSet ---

fn daemon_set(strategy: &str, status: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "ops", "generation": 5,
            "annotations": {"deprecated.daemonset.template.generation": "5"}},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "updateStrategy": {"type": strategy}},
        "status": status})
}

#[test]
fn daemon_set_rules() {
    let status = |updated: i64, available: i64| {
        json!({"observedGeneration": 5, "desiredNumberScheduled": 4, "currentNumberScheduled": 4,
            "numberReady": available, "numberAvailable": available,
            "updatedNumberScheduled": updated, "numberMisscheduled": 0})
    };
    expect(&daemon_set("RollingUpdate", status(4, 4)), Healthy, "");
    expect(
        &daemon_set("RollingUpdate", status(2, 4)),
        Progressing,
        "Waiting for daemon set \"agent\" rollout to finish: 2 out of 4 new pods have been updated...",
    );
    expect(
        &daemon_set("RollingUpdate", status(4, 3)),
        Progressing,
        "Waiting for daemon set \"agent\" rollout to finish: 3 of 4 updated pods are available...",
    );
    expect(
        &daemon_set("OnDelete", status(2, 4)),
        Healthy,
        "daemon set 2 out of 4 new pods have been updated",
    );
    let mut lagging = daemon_set("RollingUpdate", status(4, 4));
    lagging["status"]["observedGeneration"] = json!(4);
    expect(
        &lagging,
        Progressing,
        "Waiting for rollout to finish: observed daemon set generation less than desired generation",
    );
}

// --- ReplicaSet ---

#[test]
fn replica_set_rules() {
    let replica_set = |available: i64, conditions: Value| {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-5d4f8c7b9", "generation": 1},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"observedGeneration": 1, "replicas": 2, "availableReplicas": available,
                "readyReplicas": available, "conditions": conditions}})
    };
    expect(&replica_set(2, json!([])), Healthy, "");
    expect(
        &replica_set(1, json!([])),
        Progressing,
        "Waiting for rollout to finish: 1 out of 2 new replicas are available...",
    );
    let quota =
        "pods \"web-5d4f8c7b9-abcde\" is forbidden: exceeded quota: compute, requested: cpu=500m";
    expect(
        &replica_set(
            0,
            json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": quota}]),
        ),
        Degraded,
        quota,
    );
}

// --- Job ---

fn job(conditions: Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "shop"},
        "spec": {"backoffLimit": 2, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "migrate", "image": "ghcr.io/acme/migrate:7"}]}}},
        "status": {"startTime": "2025-03-01T10:00:00Z", "conditions": conditions}})
}

#[test]
fn job_rules() {
    expect(&job(json!([])), Progressing, "");
    expect(
        &job(json!([
            {"type": "SuccessCriteriaMet", "status": "True"},
            {"type": "Complete", "status": "True"}
        ])),
        Healthy,
        "",
    );
    expect(
        &job(
            json!([{"type": "Suspended", "status": "True", "reason": "JobSuspended",
            "message": "Job suspended"}]),
        ),
        Suspended,
        "Job suspended",
    );
}

#[test]
fn job_failed_is_degraded() {
    expect(
        &job(json!([
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit"},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit"}
        ])),
        Degraded,
        "Job has reached the specified backoff limit",
    );
}

// --- Pod ---

#[test]
fn pod_phases() {
    expect(&pod("web-1", running_ready()), Healthy, "");
    expect(
        &pod(
            "web-1",
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled",
            "status": "False", "reason": "Unschedulable"}]}),
        ),
        Progressing,
        "",
    );
    expect(
        &pod(
            "web-1",
            json!({"phase": "Running", "containerStatuses": [{"name": "web",
            "ready": false, "state": {"running": {}}}]}),
        ),
        Progressing,
        "",
    );
    expect(&pod("web-1", json!({"phase": "Succeeded"})), Healthy, "");
    expect(
        &pod("web-1", json!({"phase": "Unknown", "message": "node lost"})),
        Unknown,
        "node lost",
    );
}

#[test]
fn pod_waiting_errors_are_degraded() {
    expect(
        &pod(
            "web-1",
            waiting("Running", "CrashLoopBackOff", CRASH_MESSAGE),
        ),
        Degraded,
        CRASH_MESSAGE,
    );
    expect(
        &pod(
            "web-1",
            waiting("Pending", "ImagePullBackOff", PULL_MESSAGE),
        ),
        Degraded,
        PULL_MESSAGE,
    );
    expect(
        &pod("web-1", waiting("Pending", "ErrImagePull", "rpc error")),
        Degraded,
        "rpc error",
    );
    expect(
        &pod(
            "web-1",
            waiting(
                "Pending",
                "CreateContainerConfigError",
                "configmap \"web-env\" not found",
            ),
        ),
        Degraded,
        "configmap \"web-env\" not found",
    );
    // Argo's test does not cover InvalidImageName, nor a benign reason.
    expect(
        &pod("web-1", waiting("Pending", "InvalidImageName", "bad")),
        Progressing,
        "",
    );
    expect(
        &pod("web-1", waiting("Pending", "ContainerCreating", "")),
        Progressing,
        "",
    );
}

#[test]
fn pod_restart_policy_never_is_not_judged_on_waiting() {
    let mut object = pod(
        "job-1",
        waiting("Pending", "ImagePullBackOff", PULL_MESSAGE),
    );
    object["spec"]["restartPolicy"] = json!("Never");
    expect(&object, Progressing, "");
    let mut running = pod("job-1", running_ready());
    running["spec"]["restartPolicy"] = json!("OnFailure");
    expect(&running, Progressing, "");
    running["metadata"]["annotations"] =
        json!({"argocd.argoproj.io/ignore-restart-policy": "true"});
    expect(&running, Healthy, "");
    running["metadata"]["annotations"]["argocd.argoproj.io/hook"] = json!("PreSync");
    expect(&running, Progressing, "");
    running["metadata"]["annotations"]["argocd.argoproj.io/hook"] = json!("Skip");
    expect(&running, Healthy, "");
}

#[test]
fn pod_failures() {
    expect(
        &pod(
            "web-1",
            json!({"phase": "Failed", "reason": "Evicted",
            "message": "The node was low on resource: memory."}),
        ),
        Degraded,
        "The node was low on resource: memory.",
    );
    expect(
        &pod(
            "migrate-1",
            json!({"phase": "Failed", "containerStatuses": [{"name": "migrate",
            "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}]}),
        ),
        Degraded,
        "container \"migrate\" failed with exit code 3",
    );
    expect(
        &pod(
            "migrate-1",
            json!({"phase": "Failed",
            "initContainerStatuses": [{"name": "init", "state": {"terminated":
                {"exitCode": 137, "reason": "OOMKilled"}}}],
            "containerStatuses": [{"name": "migrate", "state": {"terminated":
                {"exitCode": 1, "reason": "Error"}}}]}),
        ),
        Degraded,
        "OOMKilled",
    );
    let mut restarted = waiting("Running", "ContainerCreating", "");
    restarted["containerStatuses"][0]["state"] = json!({"running": {}});
    restarted["containerStatuses"][0]["lastState"] =
        json!({"terminated": {"exitCode": 1, "reason": "Error"}});
    expect(&pod("web-1", restarted), Degraded, "");
}

// --- Service, Ingress, PVC ---

#[test]
fn service_rules() {
    let service = |kind: &str, status: Value| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"type": kind, "ports": [{"port": 80, "targetPort": 8080}]}, "status": status})
    };
    expect(
        &service("ClusterIP", json!({"loadBalancer": {}})),
        Healthy,
        "",
    );
    expect(
        &service("LoadBalancer", json!({"loadBalancer": {}})),
        Progressing,
        "",
    );
    expect(
        &service(
            "LoadBalancer",
            json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.7", "ipMode": "VIP"}]}}),
        ),
        Healthy,
        "",
    );
}

#[test]
fn ingress_rules() {
    let ingress = |api_version: &str, status: Value| {
        json!({"apiVersion": api_version, "kind": "Ingress", "metadata": {"name": "web"},
            "spec": {"rules": [{"host": "shop.example.com"}]}, "status": status})
    };
    expect(
        &ingress("networking.k8s.io/v1", json!({"loadBalancer": {}})),
        Progressing,
        "",
    );
    expect(
        &ingress(
            "networking.k8s.io/v1",
            json!({"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}),
        ),
        Healthy,
        "",
    );
    expect(
        &ingress(
            "extensions/v1beta1",
            json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}}),
        ),
        Healthy,
        "",
    );
}

#[test]
fn persistent_volume_claim_rules() {
    let claim = |phase: &str| {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": phase}})
    };
    expect(&claim("Bound"), Healthy, "");
    expect(&claim("Pending"), Progressing, "");
    expect(&claim("Lost"), Degraded, "");
    expect(&claim(""), Unknown, "");
}

// --- HorizontalPodAutoscaler, APIService ---

#[test]
fn horizontal_pod_autoscaler_rules() {
    let hpa = |conditions: Value| {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"minReplicas": 2, "maxReplicas": 10,
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}},
            "status": {"currentReplicas": 2, "desiredReplicas": 2, "conditions": conditions}})
    };
    expect(
        &hpa(json!([
            {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale",
                "message": "recommended size matches current size"},
            {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound",
                "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"}
        ])),
        Healthy,
        "recommended size matches current size",
    );
    expect(
        &hpa(json!([
            {"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale",
                "message": "the HPA controller was able to get the target's current scale"},
            {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric",
                "message": "the HPA was unable to compute the replica count: failed to get cpu utilization"}
        ])),
        Degraded,
        "the HPA was unable to compute the replica count: failed to get cpu utilization",
    );
    expect(&hpa(json!([])), Progressing, "Waiting to Autoscale");

    let mut v1 = hpa(json!(null));
    v1["apiVersion"] = json!("autoscaling/v1");
    expect(&v1, Progressing, "Waiting to Autoscale");
    v1["metadata"]["annotations"] = json!({"autoscaling.alpha.kubernetes.io/conditions":
        "[{\"type\":\"AbleToScale\",\"status\":\"True\",\"lastTransitionTime\":\"2025-03-01T10:00:00Z\",\"reason\":\"SucceededRescale\",\"message\":\"the HPA controller was able to update the target scale to 4\"}]"});
    expect(
        &v1,
        Healthy,
        "the HPA controller was able to update the target scale to 4",
    );
    v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/conditions"] = json!("[{");
    assert_eq!(health(&v1).status, Unknown);

    let mut old = hpa(json!([]));
    old["apiVersion"] = json!("autoscaling/v2beta2");
    expect(
        &old,
        Unknown,
        "unsupported HPA GVK: autoscaling/v2beta2, Kind=HorizontalPodAutoscaler",
    );
}

#[test]
fn api_service_rules() {
    let api_service = |conditions: Value| {
        json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "status": {"conditions": conditions}})
    };
    expect(
        &api_service(
            json!([{"type": "Available", "status": "True", "reason": "Passed",
            "message": "all checks passed"}]),
        ),
        Healthy,
        "Passed: all checks passed",
    );
    expect(
        &api_service(json!([{"type": "Available", "status": "False",
            "reason": "MissingEndpoints", "message": "endpoints for service/metrics-server in \"kube-system\" have no addresses"}])),
        Progressing,
        "MissingEndpoints: endpoints for service/metrics-server in \"kube-system\" have no addresses",
    );
    expect(
        &api_service(json!([])),
        Progressing,
        "Waiting to be processed",
    );
}

// --- KServe InferenceService ---

fn inference_service(status: Value) -> Value {
    json!({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "sklearn-iris", "namespace": "models"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
            "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model"}}},
        "status": status})
}

#[test]
fn inference_service_ready() {
    let ready = inference_service(json!({
        "url": "http://sklearn-iris.models.example.com",
        "conditions": [
            {"type": "IngressReady", "status": "True", "lastTransitionTime": "2025-03-01T10:00:00Z"},
            {"type": "PredictorReady", "status": "True", "lastTransitionTime": "2025-03-01T10:00:00Z"},
            {"type": "Ready", "status": "True", "lastTransitionTime": "2025-03-01T10:00:00Z"},
            {"type": "Stopped", "status": "False", "severity": "Info"}
        ],
        "modelStatus": {"states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
            "transitionStatus": "UpToDate"}
    }));
    expect(&ready, Healthy, "InferenceService is healthy.");
}

#[test]
fn inference_service_not_ready() {
    let failed = inference_service(json!({
        "conditions": [
            {"type": "IngressReady", "status": "False", "reason": "Predictor ingress not created"},
            {"type": "PredictorConfigurationReady", "status": "False", "reason": "RevisionFailed",
                "message": "Revision \"helloworld-00002\" failed with message: Container failed with: container exited with no error."},
            {"type": "PredictorReady", "status": "False", "reason": "RevisionFailed",
                "message": "Revision \"helloworld-00002\" failed with message: Container failed with: container exited with no error."},
            {"type": "PredictorRouteReady", "status": "True", "severity": "Info"},
            {"type": "Ready", "status": "False", "reason": "Predictor ingress not created"}
        ],
        "modelStatus": {"transitionStatus": "BlockedByFailedLoad"}
    }));
    expect(
        &failed,
        Degraded,
        "0: transitionStatus | BlockedByFailedLoad | 1: IngressReady | False | Predictor ingress not created | 2: PredictorConfigurationReady | False | RevisionFailed | Revision \"helloworld-00002\" failed with message: Container failed with: container exited with no error. | 3: PredictorReady | False | RevisionFailed | Revision \"helloworld-00002\" failed with message: Container failed with: container exited with no error. | 5: Ready | False | Predictor ingress not created",
    );

    let loading = inference_service(json!({
        "conditions": [
            {"type": "IngressReady", "status": "True"},
            {"type": "PredictorReady", "status": "Unknown", "reason": "RevisionMissing",
                "message": "Configuration \"sklearn-iris-predictor\" is waiting for a Revision to become ready."},
            {"type": "Ready", "status": "False"}
        ],
        "modelStatus": {"transitionStatus": "InProgress"}
    }));
    expect(
        &loading,
        Progressing,
        "0: transitionStatus | InProgress | 2: PredictorReady | Unknown | RevisionMissing | Configuration \"sklearn-iris-predictor\" is waiting for a Revision to become ready. | 3: Ready | False",
    );

    // Without a model status, a False condition alone is Progressing (as in the Lua script).
    let unready = inference_service(json!({"conditions": [{"type": "Ready", "status": "False"}]}));
    expect(&unready, Progressing, " | 1: Ready | False");

    expect(
        &inference_service(json!(null)),
        Progressing,
        "Waiting for InferenceService to report status...",
    );
    let stopped = inference_service(json!({"conditions": [
        {"type": "PredictorReady", "status": "False"},
        {"type": "Stopped", "status": "True"}
    ]}));
    expect(&stopped, Suspended, "InferenceService is Stopped");
}

// --- CronJob, PodDisruptionBudget (Lua ports) ---

#[test]
fn cron_job_rules() {
    let cron_job = |suspend: bool, status: Value| {
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report"},
            "spec": {"schedule": "0 * * * *", "suspend": suspend}, "status": status})
    };
    expect(&cron_job(true, json!({})), Healthy, "CronJob is Suspended");
    expect(
        &cron_job(false, json!({})),
        Healthy,
        "CronJob has not been scheduled yet",
    );
    expect(
        &cron_job(
            false,
            json!({"lastScheduleTime": "2025-03-01T10:00:00Z", "lastSuccessfulTime": "2025-03-01T09:00:12Z"}),
        ),
        Degraded,
        "CronJob has not completed its last execution successfully",
    );
    expect(
        &cron_job(
            false,
            json!({"lastScheduleTime": "2025-03-01T10:00:00Z", "lastSuccessfulTime": "2025-03-01T10:00:09Z"}),
        ),
        Healthy,
        "CronJob has completed its last execution successfully",
    );
}

#[test]
fn pod_disruption_budget_rules() {
    let pdb = |reason: &str, status: &str| {
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
            "spec": {"minAvailable": 2},
            "status": {"conditions": [{"type": "DisruptionAllowed", "status": status, "reason": reason}]}})
    };
    expect(
        &pdb("SufficientPods", "True"),
        Healthy,
        "PodDisruptionBudget has SufficientPods",
    );
    expect(
        &pdb("InsufficientPods", "False"),
        Healthy,
        "PodDisruptionBudget has InsufficientPods",
    );
    expect(
        &pdb("SyncFailed", "False"),
        Degraded,
        "PodDisruptionBudget has SyncFailed",
    );
}

// --- Atrium's conditions fallback, and no health ---

fn custom(conditions: Value) -> Value {
    json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "shop-tls", "generation": 1},
        "spec": {"secretName": "shop-tls", "dnsNames": ["shop.example.com"]},
        "status": {"conditions": conditions}})
}

#[test]
fn conditions_fallback() {
    expect(
        &custom(
            json!([{"type": "Ready", "status": "True", "reason": "Ready",
            "message": "Certificate is up to date and has not expired", "observedGeneration": 1}]),
        ),
        Healthy,
        "Certificate is up to date and has not expired",
    );
    expect(
        &custom(json!([
            {"type": "Issuing", "status": "True", "reason": "Failed"},
            {"type": "Ready", "status": "False", "reason": "DoesNotExist",
                "message": "Issuing certificate as Secret does not exist"}
        ])),
        Degraded,
        "Issuing certificate as Secret does not exist",
    );
    expect(
        &custom(json!([{"type": "Ready", "status": "Unknown", "reason": "Pending"}])),
        Progressing,
        "Pending",
    );
    expect(
        &custom(
            json!([{"type": "Available", "status": "True", "reason": "AsExpected",
            "message": "All is well"}]),
        ),
        Healthy,
        "All is well",
    );
    expect(
        &custom(json!([
            {"type": "Available", "status": "True", "message": "serving"},
            {"type": "Ready", "status": "False", "message": "reconcile failed"}
        ])),
        Degraded,
        "reconcile failed",
    );
}

#[test]
fn unknown_kind_without_usable_conditions_has_no_health() {
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "web-env"}, "data": {"LOG_LEVEL": "info"}});
    assert_eq!(health_of(&config_map), None);
    assert_eq!(
        health_of(&custom(json!([{"type": "Issuing", "status": "True"}]))),
        None
    );
    // Argo CD's Workflow rule is not ported; a Workflow has no Ready condition.
    let workflow = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": "w"}, "status": {"phase": "Running"}});
    assert_eq!(health_of(&workflow), None);
    assert_eq!(workload_health(&config_map, &[]), None);
}

// --- workload_health ---

#[test]
fn deployment_with_crash_looping_pod_is_degraded() {
    let object = rolling_deployment(3, 3, 2);
    let pods = [
        web_pod("5d4f8c7b9", "7kq2p", running_ready()),
        web_pod("5d4f8c7b9", "9tt4w", running_ready()),
        web_pod(
            "5d4f8c7b9",
            "x2x4k",
            waiting("Running", "CrashLoopBackOff", CRASH_MESSAGE),
        ),
    ];
    assert_eq!(health(&object).status, Progressing);
    let health = workload_health(&object, &pods).unwrap();
    assert_eq!(health.status, Degraded);
    assert_eq!(
        health.message,
        format!(
            "pod \"web-5d4f8c7b9-x2x4k\" container \"web\" is waiting: CrashLoopBackOff: {CRASH_MESSAGE}"
        )
    );
}

#[test]
fn deployment_with_image_pull_back_off_is_degraded() {
    let object = rolling_deployment(4, 1, 3);
    let pods = [
        web_pod("6b8c9d7f4", "aaaaa", running_ready()),
        web_pod("6b8c9d7f4", "bbbbb", running_ready()),
        web_pod("6b8c9d7f4", "ccccc", running_ready()),
        web_pod(
            "5d4f8c7b9",
            "q8m2z",
            waiting("Pending", "ImagePullBackOff", PULL_MESSAGE),
        ),
    ];
    let health = workload_health(&object, &pods).unwrap();
    assert_eq!(health.status, Degraded);
    assert_eq!(
        health.message,
        "pod \"web-5d4f8c7b9-q8m2z\" container \"web\" is waiting: ImagePullBackOff: Back-off pulling image \"ghcr.io/acme/web:1.4.3\""
    );
}

#[test]
fn workload_health_ignores_old_revision_terminating_and_unobserved_pods() {
    // The old ReplicaSet's pods crash-loop while the fix rolls out: still Progressing.
    let object = rolling_deployment(4, 1, 1);
    let old = web_pod(
        "6b8c9d7f4",
        "aaaaa",
        waiting("Running", "CrashLoopBackOff", CRASH_MESSAGE),
    );
    let new = web_pod("5d4f8c7b9", "bbbbb", running_ready());
    assert_eq!(
        workload_health(&object, &[old.clone(), new.clone()]),
        health_of(&object)
    );

    let mut terminating = web_pod(
        "5d4f8c7b9",
        "ccccc",
        waiting("Running", "CrashLoopBackOff", CRASH_MESSAGE),
    );
    terminating["metadata"]["deletionTimestamp"] = json!("2025-03-01T10:05:00Z");
    assert_eq!(
        workload_health(&object, &[terminating, new]),
        health_of(&object)
    );

    // The controller has not seen the new spec yet: every pod is from before it.
    let mut lagging = rolling_deployment(3, 3, 2);
    lagging["metadata"]["generation"] = json!(3);
    assert_eq!(workload_health(&lagging, &[old]), health_of(&lagging));
}

#[test]
fn workload_health_keeps_healthy_and_degraded_workloads() {
    let healthy = rolling_deployment(3, 3, 3);
    let pods = [web_pod("5d4f8c7b9", "7kq2p", running_ready())];
    expect(&healthy, Healthy, "");
    assert_eq!(workload_health(&healthy, &pods), health_of(&healthy));

    let mut deadline = rolling_deployment(3, 3, 2);
    deadline["status"]["conditions"][1] = progressing_condition(
        "ProgressDeadlineExceeded",
        "ReplicaSet \"web-5d4f8c7b9\" has timed out progressing.",
    );
    let stuck = [web_pod(
        "5d4f8c7b9",
        "x2x4k",
        waiting("Running", "CrashLoopBackOff", CRASH_MESSAGE),
    )];
    assert_eq!(workload_health(&deadline, &stuck), health_of(&deadline));

    let mut paused = rolling_deployment(3, 3, 2);
    paused["spec"]["paused"] = json!(true);
    assert_eq!(workload_health(&paused, &stuck).unwrap().status, Degraded);
}

#[test]
fn workload_health_counts_init_containers_and_invalid_image_names() {
    let object = rolling_deployment(3, 3, 2);
    let mut status = waiting("Pending", "PodInitializing", "");
    status["initContainerStatuses"] = json!([{"name": "migrate", "ready": false,
        "state": {"waiting": {"reason": "InvalidImageName",
            "message": "Failed to apply default image tag \"ghcr.io/acme/Migrate\": couldn't parse image name"}}}]);
    let pods = [web_pod("5d4f8c7b9", "x2x4k", status)];
    let health = workload_health(&object, &pods).unwrap();
    assert_eq!(health.status, Degraded);
    assert!(
        health.message.starts_with(
            "pod \"web-5d4f8c7b9-x2x4k\" init container \"migrate\" is waiting: InvalidImageName: "
        ),
        "{}",
        health.message
    );
}

#[test]
fn workload_health_lists_at_most_three_pods() {
    let object = rolling_deployment(3, 3, 0);
    let pods: Vec<Value> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|s| {
            web_pod(
                "5d4f8c7b9",
                s,
                waiting("Running", "CrashLoopBackOff", "back-off"),
            )
        })
        .collect();
    let health = workload_health(&object, &pods).unwrap();
    assert_eq!(health.status, Degraded);
    assert!(
        health.message.ends_with("; and 2 more"),
        "{}",
        health.message
    );
    assert_eq!(health.message.matches("is waiting").count(), 3);
}

#[test]
fn workload_health_stateful_set_and_daemon_set_revisions() {
    let sts = stateful_set(
        json!({"updateStrategy": {"type": "RollingUpdate"}}),
        json!({"observedGeneration": 4, "replicas": 3, "readyReplicas": 2, "updatedReplicas": 1,
            "currentReplicas": 2, "currentRevision": "db-7b9f6c8d5", "updateRevision": "db-6c5d4b3a2"}),
    );
    let db_pod = |revision: &str| {
        let mut p = pod(
            "db-2",
            waiting("Pending", "ErrImagePull", "manifest unknown"),
        );
        p["metadata"]["labels"] = json!({"app": "db", "controller-revision-hash": revision});
        p
    };
    assert_eq!(
        workload_health(&sts, &[db_pod("db-7b9f6c8d5")]),
        health_of(&sts)
    );
    let health = workload_health(&sts, &[db_pod("db-6c5d4b3a2")]).unwrap();
    assert_eq!(health.status, Degraded);
    assert!(health.message.contains("ErrImagePull: manifest unknown"));

    let ds = daemon_set(
        "RollingUpdate",
        json!({"observedGeneration": 5, "desiredNumberScheduled": 2, "numberAvailable": 1,
            "updatedNumberScheduled": 2}),
    );
    let agent_pod = |generation: &str| {
        let mut p = pod(
            "agent-x",
            waiting("Running", "CrashLoopBackOff", "back-off"),
        );
        p["metadata"]["labels"] = json!({"app": "agent", "pod-template-generation": generation});
        p
    };
    assert_eq!(workload_health(&ds, &[agent_pod("4")]), health_of(&ds));
    assert_eq!(
        workload_health(&ds, &[agent_pod("5")]).unwrap().status,
        Degraded
    );
}

#[test]
fn workload_health_job_with_unpullable_image() {
    let object = job(json!([]));
    let mut p = pod(
        "migrate-8x2kd",
        waiting("Pending", "ImagePullBackOff", PULL_MESSAGE),
    );
    p["spec"]["restartPolicy"] = json!("Never");
    let health = workload_health(&object, &[p]).unwrap();
    assert_eq!(health.status, Degraded);
    assert!(
        health
            .message
            .starts_with("pod \"migrate-8x2kd\" container \"web\"")
    );
}

#[test]
fn workload_health_of_kind_without_health() {
    let unknown =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    assert_eq!(
        workload_health(&unknown, &[pod("w-1", running_ready())]),
        None
    );
    let stuck = pod("w-1", waiting("Running", "CrashLoopBackOff", "back-off"));
    assert_eq!(
        workload_health(&unknown, &[stuck]).unwrap().status,
        Degraded
    );
}
