//! The non-PSS rules: object shape, scope (cluster-scoped kinds, namespaces), images,
//! resources, replicas, GPUs and the size of the rendered set.

use serde_json::Value;

use super::config::PolicyConfig;
use super::image::{parse_image, registry_allowed};
use super::path::FieldPath;
use super::pss;
use super::workload::{
    ContainerKind, ContainerRef, Object, PodTemplate, Scale, obj, pod_templates, present, show,
    string,
};
use super::{Scope, Sink, Violation, ids};

/// Kinds Kubernetes (and common add-ons) define without a namespace.
const CLUSTER_SCOPED_KINDS: &[&str] = &[
    // core/v1
    "Namespace",
    "Node",
    "PersistentVolume",
    "ComponentStatus",
    // rbac, apiextensions, apiregistration
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "APIService",
    // storage
    "StorageClass",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "VolumeAttributesClass",
    "StorageVersionMigration",
    // scheduling, node, networking
    "PriorityClass",
    "RuntimeClass",
    "IngressClass",
    "IPAddress",
    "ServiceCIDR",
    // admission
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    // certificates, auth, flow control
    "CertificateSigningRequest",
    "ClusterTrustBundle",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "TokenReview",
    "SelfSubjectReview",
    "SelfSubjectAccessReview",
    "SelfSubjectRulesReview",
    "SubjectAccessReview",
    "PodSecurityPolicy",
    "StorageVersion",
    // dynamic resource allocation
    "DeviceClass",
    "ResourceSlice",
    "DeviceTaintRule",
    // add-ons: cert-manager, Gateway API, KServe, external-secrets, Kyverno
    "ClusterIssuer",
    "GatewayClass",
    "ClusterServingRuntime",
    "ClusterStorageContainer",
    "ClusterLocalModel",
    "ClusterSecretStore",
    "ClusterExternalSecret",
    "ClusterPolicy",
    "ClusterCleanupPolicy",
];

/// Whether objects of `kind` are cluster-scoped (by a built-in list of well-known kinds;
/// unknown kinds are taken to be namespaced).
pub fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED_KINDS.contains(&kind)
}

/// Resource names counted as GPUs.
fn is_gpu_resource(name: &str) -> bool {
    name == "amd.com/gpu"
        || name.starts_with("nvidia.com/gpu")
        || name.starts_with("nvidia.com/mig-")
}

/// `manifest-size`: the whole rendered set.
pub(super) fn check_size(policy: &PolicyConfig, total_bytes: usize, out: &mut Vec<Violation>) {
    if total_bytes > policy.max_manifest_bytes {
        out.push(Violation {
            rule: ids::MANIFEST_SIZE,
            object: "(manifests)".to_owned(),
            path: String::new(),
            message: format!(
                "the rendered manifests are {total_bytes} bytes, more than the {} allowed (`max_manifest_bytes`)",
                policy.max_manifest_bytes
            ),
        });
    }
}

fn non_empty_str<'a>(map: &'a Object, key: &str) -> Option<&'a str> {
    string(map, key).filter(|s| !s.trim().is_empty())
}

/// `Kind/namespace/name`, or `Kind/name` for cluster-scoped kinds.
fn object_id(kind: Option<&str>, root: &Object, scope: &Scope<'_>) -> String {
    let meta = obj(root, "metadata");
    let name = meta
        .and_then(|m| non_empty_str(m, "name"))
        .unwrap_or("<unnamed>");
    let kind_name = kind.unwrap_or("<no kind>");
    if kind.is_some_and(is_cluster_scoped) {
        format!("{kind_name}/{name}")
    } else {
        let ns = meta
            .and_then(|m| non_empty_str(m, "namespace"))
            .unwrap_or(scope.default_namespace);
        format!("{kind_name}/{ns}/{name}")
    }
}

/// Runs every per-object rule on `objects[index]`.
pub(super) fn check_object(
    policy: &PolicyConfig,
    scope: &Scope<'_>,
    index: usize,
    value: &Value,
    out: &mut Vec<Violation>,
) {
    let Some(root) = value.as_object() else {
        out.push(Violation {
            rule: ids::MANIFEST_SHAPE,
            object: format!("document[{index}]"),
            path: String::new(),
            message: format!(
                "a manifest document must be a Kubernetes object (a mapping), not {}",
                value_kind(value)
            ),
        });
        return;
    };
    let kind = non_empty_str(root, "kind");
    let mut sink = Sink {
        object: object_id(kind, root, scope),
        out,
    };
    shape(root, &mut sink);
    let cluster_scoped = kind.is_some_and(is_cluster_scoped);
    if cluster_scoped {
        if policy.forbid_cluster_scoped {
            sink.push(
                ids::CLUSTER_SCOPED,
                &FieldPath::root().field("kind"),
                format!(
                    "{} is cluster-scoped; cluster-scoped objects are not allowed (`forbid_cluster_scoped`)",
                    kind.unwrap_or_default()
                ),
            );
        }
    } else {
        namespace(root, scope, &mut sink);
    }
    let Some(kind) = kind else { return };
    let templates = pod_templates(kind, root);
    for t in &templates {
        pss::check_pod(policy.pod_security, t, &mut sink);
        for c in &t.containers {
            if policy.require_resources {
                resources(c, &mut sink);
            }
            images(policy, c, &mut sink);
        }
    }
    for t in &templates {
        replicas(policy, &t.scale, &mut sink);
    }
    if kind == "HorizontalPodAutoscaler" {
        hpa(policy, root, &mut sink);
    }
    gpus(policy, &templates, &mut sink);
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn shape(root: &Object, sink: &mut Sink<'_>) {
    for key in ["apiVersion", "kind"] {
        if non_empty_str(root, key).is_none() {
            sink.push(
                ids::MANIFEST_SHAPE,
                &FieldPath::root().field(key),
                format!("every object needs a non-empty string `{key}`"),
            );
        }
    }
    let meta_path = FieldPath::root().field("metadata");
    match obj(root, "metadata") {
        None => sink.push(
            ids::MANIFEST_SHAPE,
            &meta_path,
            "every object needs `metadata` with a `name`",
        ),
        Some(meta) if non_empty_str(meta, "name").is_none() => sink.push(
            ids::MANIFEST_SHAPE,
            &meta_path.field("name"),
            "every object needs a non-empty string `metadata.name`",
        ),
        Some(_) => {}
    }
}

fn namespace(root: &Object, scope: &Scope<'_>, sink: &mut Sink<'_>) {
    let path = FieldPath::parse_plain("metadata.namespace");
    let meta = obj(root, "metadata");
    let explicit = meta.and_then(|m| present(m, "namespace"));
    let ns = match explicit {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        None | Some(Value::String(_)) => scope.default_namespace,
        Some(other) => {
            sink.push(
                ids::NAMESPACE,
                &path,
                format!("metadata.namespace must be a string (is {})", show(other)),
            );
            return;
        }
    };
    if scope.allowed_namespaces.is_empty() {
        sink.push(
            ids::NAMESPACE,
            &path,
            format!(
                "namespace `{ns}` is not allowed: no namespaces are allowed for this deploy (configure `namespaces`)"
            ),
        );
    } else if !scope.allowed_namespaces.iter().any(|a| a == ns) {
        let origin = if explicit.is_some() {
            ""
        } else {
            " (the default namespace)"
        };
        sink.push(
            ids::NAMESPACE,
            &path,
            format!(
                "namespace `{ns}`{origin} is not allowed; allowed: {} (`namespaces`)",
                scope.allowed_namespaces.join(", ")
            ),
        );
    }
}

fn resources(c: &ContainerRef<'_>, sink: &mut Sink<'_>) {
    // Ephemeral containers may not set resources at all.
    if c.kind == ContainerKind::Ephemeral {
        return;
    }
    let res = obj(c.value, "resources");
    let res_path = c.path.field("resources");
    for section in ["requests", "limits"] {
        let values = res.and_then(|r| obj(r, section));
        for resource in ["cpu", "memory"] {
            let v = values.and_then(|v| present(v, resource));
            let set = v.is_some_and(|v| v.as_str() != Some("") && (v.is_string() || v.is_number()));
            if !set {
                sink.push(
                    ids::RESOURCES_REQUIRED,
                    &res_path.field(section).field(resource),
                    format!("every container must set resources.{section}.{resource}"),
                );
            }
        }
    }
}

fn images(policy: &PolicyConfig, c: &ContainerRef<'_>, sink: &mut Sink<'_>) {
    let path = c.path.field("image");
    let image = match c.value.get("image") {
        None | Some(Value::Null) if c.kind == ContainerKind::Model => return,
        Some(Value::String(s)) => s.as_str(),
        other => {
            sink.push(
                ids::IMAGE_REGISTRY,
                &path,
                format!(
                    "a container needs a string image (is {})",
                    other.map_or_else(|| "unset".to_owned(), show)
                ),
            );
            return;
        }
    };
    let parsed = match parse_image(image) {
        Ok(parsed) => parsed,
        Err(why) => {
            sink.push(
                ids::IMAGE_REGISTRY,
                &path,
                format!("`{image}` is not a valid image reference: {why}"),
            );
            return;
        }
    };
    if policy.allowed_registries.is_empty() {
        sink.push(
            ids::IMAGE_REGISTRY,
            &path,
            format!(
                "image `{}` is not allowed: no registries are allowed yet (configure `allowed_registries`)",
                parsed.normalized()
            ),
        );
    } else if !registry_allowed(&parsed, &policy.allowed_registries) {
        sink.push(
            ids::IMAGE_REGISTRY,
            &path,
            format!(
                "image `{}` is not from an allowed registry ({}; `allowed_registries`)",
                parsed.normalized(),
                policy.allowed_registries.join(", ")
            ),
        );
    }
    if policy.forbid_latest_tag && parsed.digest.is_none() {
        match parsed.tag.as_deref() {
            None => sink.push(
                ids::IMAGE_TAG,
                &path,
                format!("image `{image}` has no tag (which means `latest`); pin a version tag or a digest"),
            ),
            Some("latest") => sink.push(
                ids::IMAGE_TAG,
                &path,
                format!("image `{image}` uses the `latest` tag; pin a version tag or a digest"),
            ),
            Some(_) => {}
        }
    }
}

/// A replica count: a non-negative integer (`3` or `3.0`).
fn count_value(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f <= u64::MAX as f64)
            .map(|f| f as u64)
    })
}

fn over_max(
    policy: &PolicyConfig,
    path: &FieldPath,
    v: &Value,
    sink: &mut Sink<'_>,
) -> Option<u64> {
    let Some(n) = count_value(v) else {
        sink.push(
            ids::MAX_REPLICAS,
            path,
            format!("must be a non-negative integer (is {})", show(v)),
        );
        return None;
    };
    if n > u64::from(policy.max_replicas) {
        sink.push(
            ids::MAX_REPLICAS,
            path,
            format!(
                "{n} replicas asked for; at most {} allowed (`max_replicas`)",
                policy.max_replicas
            ),
        );
    }
    Some(n)
}

fn replicas(policy: &PolicyConfig, scale: &Scale<'_>, sink: &mut Sink<'_>) {
    match scale {
        Scale::Single => {}
        Scale::Count { path, value } => match value {
            Some(v) => {
                over_max(policy, path, v, sink);
            }
            None if policy.max_replicas < 1 => sink.push(
                ids::MAX_REPLICAS,
                path,
                format!(
                    "unset means 1 replica; at most {} allowed (`max_replicas`)",
                    policy.max_replicas
                ),
            ),
            None => {}
        },
        Scale::Autoscale {
            component,
            min,
            max,
        } => {
            if let Some(min) = min {
                over_max(policy, &component.field("minReplicas"), min, sink);
            }
            let max_path = component.field("maxReplicas");
            match max {
                Some(v) if count_value(v) == Some(0) => sink.push(
                    ids::MAX_REPLICAS,
                    &max_path,
                    format!(
                        "maxReplicas 0 means unbounded autoscaling; set it to at most {} (`max_replicas`)",
                        policy.max_replicas
                    ),
                ),
                Some(v) => {
                    over_max(policy, &max_path, v, sink);
                }
                None => sink.push(
                    ids::MAX_REPLICAS,
                    &max_path,
                    format!(
                        "unset maxReplicas means unbounded autoscaling; set it to at most {} (`max_replicas`)",
                        policy.max_replicas
                    ),
                ),
            }
        }
    }
}

fn hpa(policy: &PolicyConfig, root: &Object, sink: &mut Sink<'_>) {
    if let Some(v) = obj(root, "spec").and_then(|s| present(s, "maxReplicas")) {
        over_max(policy, &FieldPath::parse_plain("spec.maxReplicas"), v, sink);
    }
}

/// How many pods a template stands for when counting GPUs.
fn multiplier(scale: &Scale<'_>) -> u64 {
    match scale {
        Scale::Single => 1,
        Scale::Count { value, .. } => value.and_then(count_value).unwrap_or(1),
        Scale::Autoscale { min, max, .. } => match max.and_then(count_value) {
            Some(max) if max > 0 => max,
            _ => min.and_then(count_value).unwrap_or(1).max(1),
        },
    }
}

/// Parses a Kubernetes quantity (`2`, `"2"`, `"1500m"`, `"1k"`, `"1Ki"`) into a number.
fn quantity(v: &Value) -> Option<f64> {
    if let Some(n) = v.as_f64() {
        return (n >= 0.0 && n.is_finite()).then_some(n);
    }
    let s = v.as_str()?.trim();
    if let Ok(n) = s.parse::<f64>() {
        return (n >= 0.0 && n.is_finite()).then_some(n);
    }
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("m", 0.001),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    SUFFIXES.iter().find_map(|(suffix, factor)| {
        let n = s.strip_suffix(suffix)?.parse::<f64>().ok()?;
        (n >= 0.0 && n.is_finite()).then_some(n * factor)
    })
}

/// GPUs one container asks for: per GPU resource, max(request, limit), summed.
fn container_gpus(c: &ContainerRef<'_>, sink: &mut Sink<'_>) -> u64 {
    let res = obj(c.value, "resources");
    let res_path = c.path.field("resources");
    let mut per_resource: Vec<(String, f64)> = Vec::new();
    for section in ["requests", "limits"] {
        let Some(values) = res.and_then(|r| obj(r, section)) else {
            continue;
        };
        for (name, v) in values.iter().filter(|(name, _)| is_gpu_resource(name)) {
            let Some(n) = quantity(v) else {
                sink.push(
                    ids::MAX_GPUS,
                    &res_path.field(section).key(name),
                    format!("cannot read GPU quantity {}", show(v)),
                );
                continue;
            };
            match per_resource.iter_mut().find(|(r, _)| r == name) {
                Some((_, max)) => *max = max.max(n),
                None => per_resource.push((name.clone(), n)),
            }
        }
    }
    per_resource
        .iter()
        .map(|(_, n)| n.ceil() as u64)
        .fold(0, u64::saturating_add)
}

fn gpus(policy: &PolicyConfig, templates: &[PodTemplate<'_>], sink: &mut Sink<'_>) {
    let mut total: u64 = 0;
    let mut breakdown = Vec::new();
    for t in templates {
        let per_pod = t
            .containers
            .iter()
            .map(|c| container_gpus(c, sink))
            .fold(0, u64::saturating_add);
        if per_pod == 0 {
            continue;
        }
        let pods = multiplier(&t.scale);
        total = total.saturating_add(per_pod.saturating_mul(pods));
        breakdown.push(format!("{}: {per_pod} per pod x {pods}", t.path));
    }
    if total > u64::from(policy.max_gpus) {
        let path = match templates {
            [only] => only.path.clone(),
            _ => FieldPath::root().field("spec"),
        };
        sink.push(
            ids::MAX_GPUS,
            &path,
            format!(
                "{total} GPUs asked for ({}); at most {} allowed (`max_gpus`)",
                breakdown.join(", "),
                policy.max_gpus
            ),
        );
    }
}
