//! Finding the pod specs inside an object: a Pod's `spec`, workload templates, CronJob job
//! templates, KServe InferenceService components and ServingRuntimes, plus any other kind
//! that carries a `spec.template.spec.containers` list (Argo Rollouts, Knative Services, ...).

use serde_json::{Map, Value};

use super::path::FieldPath;

pub(super) type Object = Map<String, Value>;

/// `map[key]` as an object, if it is one.
pub(super) fn obj<'a>(map: &'a Object, key: &str) -> Option<&'a Object> {
    map.get(key).and_then(Value::as_object)
}

/// `map[key]` unless missing or `null`.
pub(super) fn present<'a>(map: &'a Object, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

/// `map[key]` as a string, if it is one.
pub(super) fn string<'a>(map: &'a Object, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

/// Follows plain object keys, e.g. `["spec", "template", "spec"]`.
pub(super) fn dig<'a>(map: &'a Object, keys: &[&str]) -> Option<&'a Object> {
    keys.iter().try_fold(map, |m, k| obj(m, k))
}

/// A value as it would appear in YAML/JSON, for messages (`true`, `"Unconfined"`, `0`).
pub(super) fn show(v: &Value) -> String {
    v.to_string()
}

/// Which list of the pod spec a container came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ContainerKind {
    Regular,
    Init,
    Ephemeral,
    /// A KServe model/framework spec (`spec.predictor.model`, `spec.predictor.sklearn`, ...):
    /// a container whose `image` is optional (the serving runtime supplies one).
    Model,
}

/// One container (or container-like object) with its field path.
#[derive(Debug, Clone)]
pub(super) struct ContainerRef<'a> {
    pub value: &'a Object,
    pub path: FieldPath,
    pub kind: ContainerKind,
}

impl<'a> ContainerRef<'a> {
    /// The container's `securityContext` and its path.
    pub(super) fn security_context(&self) -> (Option<&'a Object>, FieldPath) {
        (
            obj(self.value, "securityContext"),
            self.path.field("securityContext"),
        )
    }
}

/// How many pods one pod template stands for.
#[derive(Debug, Clone)]
pub(super) enum Scale<'a> {
    /// One pod (a Pod, a DaemonSet's pod per node, a template).
    Single,
    /// A count field where a missing value means 1 (`spec.replicas`, Job `parallelism`).
    Count {
        path: FieldPath,
        value: Option<&'a Value>,
    },
    /// KServe component autoscaling bounds; a missing `maxReplicas` means unbounded.
    Autoscale {
        component: FieldPath,
        min: Option<&'a Value>,
        max: Option<&'a Value>,
    },
}

/// A pod spec found inside an object.
#[derive(Debug, Clone)]
pub(super) struct PodTemplate<'a> {
    /// The map holding pod-level fields (`hostNetwork`, `securityContext`, `volumes`, ...).
    pub spec: &'a Object,
    pub path: FieldPath,
    /// Maps whose keys become the pod's annotations (for the AppArmor annotations).
    pub annotations: Vec<(&'a Object, FieldPath)>,
    pub containers: Vec<ContainerRef<'a>>,
    pub scale: Scale<'a>,
}

/// KServe component keys of an InferenceService spec.
const KSERVE_COMPONENTS: [&str; 3] = ["predictor", "transformer", "explainer"];

/// Keys under a KServe component that hold a single container-like model spec.
const KSERVE_MODEL_KEYS: [&str; 13] = [
    "model",
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "pmml",
    "lightgbm",
    "paddle",
    "huggingface",
    "art",
    "alibi",
];

fn containers_of<'a>(
    spec: &'a Object,
    path: &FieldPath,
    out: &mut Vec<ContainerRef<'a>>,
    lists: &[(&str, ContainerKind)],
) {
    for (key, kind) in lists {
        let Some(list) = spec.get(*key).and_then(Value::as_array) else {
            continue;
        };
        let list_path = path.field(key);
        for (i, c) in list.iter().enumerate() {
            if let Some(value) = c.as_object() {
                out.push(ContainerRef {
                    value,
                    path: list_path.index(i),
                    kind: *kind,
                });
            }
        }
    }
}

const POD_CONTAINER_LISTS: [(&str, ContainerKind); 3] = [
    ("containers", ContainerKind::Regular),
    ("initContainers", ContainerKind::Init),
    ("ephemeralContainers", ContainerKind::Ephemeral),
];

/// A pod template at `spec_keys` whose pod metadata is at `meta_keys`.
fn template<'a>(
    root: &'a Object,
    spec_keys: &[&str],
    meta_keys: &[&str],
    scale: Scale<'a>,
) -> Option<PodTemplate<'a>> {
    let spec = dig(root, spec_keys)?;
    let path = FieldPath::root();
    let path = spec_keys.iter().fold(path, |p, k| p.field(k));
    let mut containers = Vec::new();
    containers_of(spec, &path, &mut containers, &POD_CONTAINER_LISTS);
    let mut annotations = Vec::new();
    let meta_path = meta_keys.iter().fold(FieldPath::root(), |p, k| p.field(k));
    if let Some(a) = dig(root, meta_keys).and_then(|m| obj(m, "annotations")) {
        annotations.push((a, meta_path.field("annotations")));
    }
    Some(PodTemplate {
        spec,
        path,
        annotations,
        containers,
        scale,
    })
}

fn count<'a>(root: &'a Object, keys: &[&str]) -> Scale<'a> {
    let (last, parents) = keys.split_last().unwrap_or((&"replicas", &[]));
    Scale::Count {
        path: keys.iter().fold(FieldPath::root(), |p, k| p.field(k)),
        value: dig(root, parents).and_then(|m| present(m, last)),
    }
}

fn kserve_components(root: &Object) -> Vec<PodTemplate<'_>> {
    let Some(spec) = obj(root, "spec") else {
        return Vec::new();
    };
    let spec_path = FieldPath::root().field("spec");
    let object_annotations = obj(root, "metadata").and_then(|m| obj(m, "annotations"));
    let mut out = Vec::new();
    for component in KSERVE_COMPONENTS {
        let Some(c) = obj(spec, component) else {
            continue;
        };
        let path = spec_path.field(component);
        let mut containers = Vec::new();
        containers_of(
            c,
            &path,
            &mut containers,
            &[
                ("containers", ContainerKind::Regular),
                ("initContainers", ContainerKind::Init),
            ],
        );
        for key in KSERVE_MODEL_KEYS {
            if let Some(value) = obj(c, key) {
                containers.push(ContainerRef {
                    value,
                    path: path.field(key),
                    kind: ContainerKind::Model,
                });
            }
        }
        let mut annotations = Vec::new();
        if let Some(a) = object_annotations {
            annotations.push((a, FieldPath::parse_plain("metadata.annotations")));
        }
        if let Some(a) = obj(c, "annotations") {
            annotations.push((a, path.field("annotations")));
        }
        out.push(PodTemplate {
            spec: c,
            scale: Scale::Autoscale {
                component: path.clone(),
                min: present(c, "minReplicas"),
                max: present(c, "maxReplicas"),
            },
            path,
            annotations,
            containers,
        });
    }
    out
}

/// Every pod spec inside `root`, an object of kind `kind`.
pub(super) fn pod_templates<'a>(kind: &str, root: &'a Object) -> Vec<PodTemplate<'a>> {
    let tpl = ["spec", "template", "spec"];
    let tpl_meta = ["spec", "template", "metadata"];
    let found = match kind {
        "Pod" => template(root, &["spec"], &["metadata"], Scale::Single),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "ReplicationController" => {
            template(root, &tpl, &tpl_meta, count(root, &["spec", "replicas"]))
        }
        "DaemonSet" => template(root, &tpl, &tpl_meta, Scale::Single),
        "Job" => template(root, &tpl, &tpl_meta, count(root, &["spec", "parallelism"])),
        "CronJob" => template(
            root,
            &["spec", "jobTemplate", "spec", "template", "spec"],
            &["spec", "jobTemplate", "spec", "template", "metadata"],
            count(root, &["spec", "jobTemplate", "spec", "parallelism"]),
        ),
        "PodTemplate" => template(
            root,
            &["template", "spec"],
            &["template", "metadata"],
            Scale::Single,
        ),
        "InferenceService" => return kserve_components(root),
        "ServingRuntime" | "ClusterServingRuntime" => {
            template(root, &["spec"], &["spec"], Scale::Single)
        }
        _ => {
            // Unknown kinds that embed a pod template still get checked.
            let has_containers = dig(root, &tpl)
                .and_then(|s| s.get("containers"))
                .is_some_and(Value::is_array);
            if !has_containers {
                return Vec::new();
            }
            let scale = if dig(root, &["spec"])
                .and_then(|s| present(s, "replicas"))
                .is_some()
            {
                count(root, &["spec", "replicas"])
            } else {
                Scale::Single
            };
            template(root, &tpl, &tpl_meta, scale)
        }
    };
    found.into_iter().collect()
}
