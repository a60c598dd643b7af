//! Rendering for the `deploy:model` action: a `Model` catalog entity (`atrium.dev/v1alpha1`) and
//! one of its versions become the Kubernetes objects of a serving runtime.
//!
//! Two runtimes are supported:
//! - [`Runtime::Vllm`]: an `apps/v1` Deployment running `vllm serve` plus a ClusterIP Service.
//! - [`Runtime::Kserve`]: one `serving.kserve.io/v1beta1` InferenceService; KServe's controller
//!   picks the serving runtime from the model format and downloads the weights itself.
//!
//! Everything here is pure: the caller supplies the entity as the catalog returns it and applies
//! the objects. Inputs that would only fail later, at apply time or when the pod starts (a bad
//! name, a label the API server rejects, an unknown version, an image without a pinned tag), are
//! reported as a [`ModelError`] that names the offending field.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use thiserror::Error;

/// The port vLLM listens on, exposed as the named port `http`.
const HTTP_PORT: u16 = 8000;
/// The unprivileged user (and group) the model server runs as.
const RUN_AS_ID: u32 = 1000;
/// A writable emptyDir used as `$HOME`: the Hugging Face hub cache and vLLM's compile caches
/// live below it, since the image's own home (`/root`) is not writable by a non-root user.
const CACHE_DIR: &str = "/cache";
const HF_HOME: &str = "/cache/huggingface";
const GPU_RESOURCE: &str = "nvidia.com/gpu";
/// KServe names the predictor's Service `<name>-predictor`, which must still fit in 63 characters.
const KSERVE_PREDICTOR_SUFFIX: &str = "-predictor";
const DNS_LABEL_MAX: usize = 63;

/// Loading a model takes minutes (download, weight load, CUDA graph capture). The startup probe
/// allows 30 s + 180 × 10 s = about half an hour before the kubelet restarts the container;
/// readiness and liveness take over once it has passed.
const STARTUP_INITIAL_DELAY_S: u32 = 30;
const STARTUP_PERIOD_S: u32 = 10;
const STARTUP_FAILURE_THRESHOLD: u32 = 180;
/// Longer than the startup budget, so that a slow first load is not reported as a failed rollout.
const PROGRESS_DEADLINE_S: u32 = 2400;

/// The serving runtime a Model is deployed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// vLLM's OpenAI-compatible server as a plain Deployment and Service.
    Vllm,
    /// A KServe InferenceService.
    Kserve,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vllm => "vllm",
            Self::Kserve => "kserve",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Runtime {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "vllm" => Ok(Self::Vllm),
            "kserve" => Ok(Self::Kserve),
            other => Err(ModelError::UnknownRuntime(other.to_owned())),
        }
    }
}

/// One `deploy:model` request.
#[derive(Clone, Copy, Debug)]
pub struct ModelDeployment<'a> {
    /// The `Model` entity as JSON, as the catalog returns it.
    pub entity: &'a Value,
    /// A version name from `spec.versions[].name`, or an alias from `spec.versions[].aliases`
    /// (e.g. `champion`). A version name wins over an alias of the same spelling.
    pub version: &'a str,
    /// The Deployment/Service or InferenceService name: a DNS-1035 label.
    pub name: &'a str,
    /// The target namespace: a DNS-1123 label.
    pub namespace: &'a str,
    pub runtime: Runtime,
    /// The vLLM image with a pinned tag or digest (vLLM only; KServe's runtime brings its own).
    pub image: &'a str,
    /// GPUs per replica; above 1 they are used for tensor parallelism.
    pub gpus: u32,
    /// vLLM: Deployment replicas. KServe: `minReplicas` (0 lets a serverless predictor scale to zero).
    pub replicas: u32,
    /// KServe: `maxReplicas`. Must be at least `replicas` and at least 1 for both runtimes.
    pub max_replicas: u32,
    /// The context length to serve with (`--max-model-len`); `None` keeps the model's own.
    pub max_model_len: Option<u32>,
    /// CPU per replica, a Kubernetes quantity such as `"4"` or `"500m"` (requests = limits).
    pub cpu: &'a str,
    /// Memory per replica, a Kubernetes quantity such as `"32Gi"` (requests = limits).
    pub memory: &'a str,
    /// Extra labels for every object and pod template, e.g. `backstage.io/kubernetes-id`.
    pub labels: &'a BTreeMap<String, String>,
}

/// The rendered objects and the version they serve.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedModel {
    /// The resolved version name (an alias such as `champion` resolved to e.g. `v2`).
    pub version: String,
    /// The artifact URI of that version.
    pub uri: String,
    /// The Kubernetes objects to apply, in apply order.
    pub objects: Vec<Value>,
}

/// Why a deployment could not be rendered. Each message names the field or entity part at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    #[error("unknown runtime `{0}`; expected `vllm` or `kserve`")]
    UnknownRuntime(String),
    #[error("{field} `{value}` is not valid: {reason}")]
    InvalidInput {
        field: String,
        value: String,
        reason: String,
    },
    #[error("the entity is a `{0}`, not a `Model`")]
    NotAModel(String),
    #[error("the Model entity has no `metadata.name`")]
    MissingModelName,
    #[error("model `{model}` has no `spec.versions` to deploy")]
    NoVersions { model: String },
    #[error("model `{model}` has no version or alias `{requested}`; versions: {available}")]
    UnknownVersion {
        model: String,
        requested: String,
        available: String,
    },
    #[error("model `{model}` version `{version}` has no `uri`")]
    MissingUri { model: String, version: String },
    #[error("model `{model}` version `{version}` has uri `{uri}`, which {reason}")]
    UnsupportedUri {
        model: String,
        version: String,
        uri: String,
        reason: String,
    },
    #[error("model `{model}` has no `spec.format`; the {runtime} runtime needs it to {purpose}")]
    MissingFormat {
        model: String,
        runtime: Runtime,
        purpose: &'static str,
    },
    #[error(
        "model `{model}` has format `{format}`, which the {runtime} runtime cannot serve; {hint}"
    )]
    UnsupportedFormat {
        model: String,
        format: String,
        runtime: Runtime,
        hint: String,
    },
}

fn invalid(
    field: impl Into<String>,
    value: impl fmt::Display,
    reason: impl Into<String>,
) -> ModelError {
    ModelError::InvalidInput {
        field: field.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Renders the objects for `d`, or says which input is wrong.
pub fn render(d: &ModelDeployment<'_>) -> Result<RenderedModel, ModelError> {
    check_request(d)?;
    let model = model_name(d.entity)?;
    let version = resolve_version(d.entity, model, d.version)?;
    let uri = parse_uri(model, &version)?;
    let labels = object_labels(d, model, version.name)?;
    let objects = match d.runtime {
        Runtime::Vllm => {
            check_vllm_format(d.entity, model)?;
            let selector = selector_labels(d.name);
            vec![
                vllm_deployment(d, &uri, &labels, &selector),
                vllm_service(d, &labels, &selector),
            ]
        }
        Runtime::Kserve => vec![kserve_inference_service(d, model, &uri, &labels)?],
    };
    Ok(RenderedModel {
        version: version.name.to_owned(),
        uri: uri.uri().to_owned(),
        objects,
    })
}

// ---------------------------------------------------------------------------------------------
// Request checks

fn check_request(d: &ModelDeployment<'_>) -> Result<(), ModelError> {
    let max_name = match d.runtime {
        Runtime::Vllm => DNS_LABEL_MAX,
        Runtime::Kserve => DNS_LABEL_MAX - KSERVE_PREDICTOR_SUFFIX.len(),
    };
    if let Err(reason) = dns1035_label(d.name, max_name) {
        let reason = if d.runtime == Runtime::Kserve && d.name.len() > max_name {
            format!("{reason} (KServe derives `<name>{KSERVE_PREDICTOR_SUFFIX}` from it)")
        } else {
            reason
        };
        return Err(invalid("name", d.name, reason));
    }
    dns1123_label(d.namespace).map_err(|reason| invalid("namespace", d.namespace, reason))?;
    if d.runtime == Runtime::Vllm {
        check_image(d.image).map_err(|reason| invalid("image", d.image, reason))?;
    }
    check_quantity(d.cpu).map_err(|reason| invalid("cpu", d.cpu, reason))?;
    check_quantity(d.memory).map_err(|reason| invalid("memory", d.memory, reason))?;
    if d.max_replicas == 0 || d.max_replicas < d.replicas {
        return Err(invalid(
            "max_replicas",
            d.max_replicas,
            format!("must be at least 1 and at least replicas ({})", d.replicas),
        ));
    }
    if d.max_model_len == Some(0) {
        return Err(invalid("max_model_len", 0, "must be positive"));
    }
    Ok(())
}

/// A DNS-1035 label (`[a-z]([-a-z0-9]*[a-z0-9])?`) of at most `max` characters: the rule for
/// Service names, which both runtimes derive from the deployment name.
fn dns1035_label(s: &str, max: usize) -> Result<(), String> {
    dns_label(s, max)?;
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lower-case letter (DNS-1035 label)".to_owned());
    }
    Ok(())
}

/// A DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters): namespace names.
fn dns1123_label(s: &str) -> Result<(), String> {
    dns_label(s, DNS_LABEL_MAX)
}

fn dns_label(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if s.len() > max {
        return Err(format!("must be at most {max} characters, not {}", s.len()));
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        return Err("must consist of lower-case letters, digits and '-'".to_owned());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must start and end with a letter or digit".to_owned());
    }
    Ok(())
}

/// A pinned image reference: a tag other than `latest`, or a digest.
fn check_image(image: &str) -> Result<(), String> {
    if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be a non-empty image reference without whitespace".to_owned());
    }
    if image.contains('@') {
        return Ok(());
    }
    // The tag follows the last ':' of the last path segment; a ':' before it is a registry port.
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, "latest")) => Err("must pin a version, not `:latest`".to_owned()),
        Some((repo, tag)) if !repo.is_empty() && !tag.is_empty() => Ok(()),
        _ => Err("must pin a tag or digest (an untagged image means `:latest`)".to_owned()),
    }
}

/// A Kubernetes resource quantity without sign: digits with an optional fraction, then an
/// optional binary (`Ki`..`Ei`) or decimal (`n`, `u`, `m`, `k`, `M`..`E`) suffix or exponent.
fn check_quantity(s: &str) -> Result<(), String> {
    const EXPECT: &str = "must be a Kubernetes quantity such as \"4\", \"500m\" or \"32Gi\"";
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    let number_ok = |n: &str| {
        n.bytes().filter(|&c| c == b'.').count() <= 1 && n.bytes().any(|c| c.is_ascii_digit())
    };
    let suffix_ok = match suffix {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T"
        | "P" | "E" => true,
        exp => exp
            .strip_prefix(['e', 'E'])
            .map(|e| e.strip_prefix(['+', '-']).unwrap_or(e))
            .is_some_and(number_ok),
    };
    if number_ok(number) && suffix_ok {
        Ok(())
    } else {
        Err(EXPECT.to_owned())
    }
}

// ---------------------------------------------------------------------------------------------
// The Model entity

fn model_name(entity: &Value) -> Result<&str, ModelError> {
    if let Some(kind) = entity.get("kind").and_then(Value::as_str)
        && kind != "Model"
    {
        return Err(ModelError::NotAModel(kind.to_owned()));
    }
    entity
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or(ModelError::MissingModelName)
}

struct Version<'e> {
    name: &'e str,
    uri: Option<&'e str>,
}

/// Finds `wanted` among `spec.versions[].name`, then among `spec.versions[].aliases[]`.
fn resolve_version<'e>(
    entity: &'e Value,
    model: &str,
    wanted: &str,
) -> Result<Version<'e>, ModelError> {
    let no_versions = || ModelError::NoVersions {
        model: model.to_owned(),
    };
    let entries = entity
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .ok_or_else(no_versions)?;
    let mut versions: Vec<(Version<'e>, Vec<&'e str>)> = entries
        .iter()
        .filter_map(|v| {
            let name = v.get("name")?.as_str()?;
            let uri = v.get("uri").and_then(Value::as_str);
            let aliases = v
                .get("aliases")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            Some((Version { name, uri }, aliases))
        })
        .collect();
    if versions.is_empty() {
        return Err(no_versions());
    }
    let by_name = versions.iter().position(|(v, _)| v.name == wanted);
    let found = by_name.or_else(|| versions.iter().position(|(_, a)| a.contains(&wanted)));
    if let Some(i) = found {
        let (version, _) = versions.swap_remove(i);
        return Ok(version);
    }
    let available = versions
        .iter()
        .map(|(v, aliases)| {
            if aliases.is_empty() {
                v.name.to_owned()
            } else {
                format!("{} ({})", v.name, aliases.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(ModelError::UnknownVersion {
        model: model.to_owned(),
        requested: wanted.to_owned(),
        available,
    })
}

/// Where a version's weights live, as the runtimes need it.
#[derive(Debug, PartialEq, Eq)]
enum Weights<'e> {
    /// `hf://org/repo[:revision]`: a Hugging Face hub repository.
    Hub {
        uri: &'e str,
        repo: &'e str,
        revision: Option<&'e str>,
    },
    /// `s3://`, `oci://` or `https://`: passed on unchanged.
    Other { uri: &'e str },
}

impl Weights<'_> {
    fn uri(&self) -> &str {
        match self {
            Self::Hub { uri, .. } | Self::Other { uri, .. } => uri,
        }
    }
}

/// The schemes the catalog accepts for a version's `uri` (see the Model validation rules).
const SCHEMES: &[&str] = &["hf", "s3", "oci", "https"];

fn parse_uri<'e>(model: &str, version: &Version<'e>) -> Result<Weights<'e>, ModelError> {
    let uri = version
        .uri
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ModelError::MissingUri {
            model: model.to_owned(),
            version: version.name.to_owned(),
        })?;
    let unsupported = |reason: &str| ModelError::UnsupportedUri {
        model: model.to_owned(),
        version: version.name.to_owned(),
        uri: uri.to_owned(),
        reason: reason.to_owned(),
    };
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(unsupported("contains whitespace"));
    }
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(unsupported(
            "is not a URI (expected hf://, s3://, oci:// or https://)",
        ));
    };
    let Some(&scheme) = SCHEMES.iter().find(|s| s.eq_ignore_ascii_case(scheme)) else {
        return Err(unsupported(
            "has an unsupported scheme (expected hf://, s3://, oci:// or https://)",
        ));
    };
    if rest.is_empty() {
        return Err(unsupported("names no location after the scheme"));
    }
    if scheme != "hf" {
        return Ok(Weights::Other { uri });
    }
    // Hub repository ids are `org/name`; a revision (branch, tag or commit) may follow a ':'.
    let (repo, revision) = match rest.split_once(':') {
        Some((repo, rev)) => (repo, Some(rev)),
        None => (rest, None),
    };
    let hub_part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    };
    let repo_ok = repo
        .split_once('/')
        .is_some_and(|(org, name)| hub_part(org) && hub_part(name));
    if !repo_ok || revision.is_some_and(str::is_empty) {
        return Err(unsupported(
            "is not a Hugging Face repository (expected hf://org/name or hf://org/name:revision)",
        ));
    }
    Ok(Weights::Hub {
        uri,
        repo,
        revision,
    })
}

fn spec_format(entity: &Value) -> Option<&str> {
    entity.pointer("/spec/format").and_then(Value::as_str)
}

/// Weight formats vLLM loads. A model without `spec.format` is let through (vLLM detects it).
const VLLM_FORMATS: &[&str] = &["safetensors", "hf", "huggingface", "pytorch", "pt", "gguf"];

fn check_vllm_format(entity: &Value, model: &str) -> Result<(), ModelError> {
    match spec_format(entity) {
        Some(format) if !VLLM_FORMATS.contains(&format.to_ascii_lowercase().as_str()) => {
            Err(ModelError::UnsupportedFormat {
                model: model.to_owned(),
                format: format.to_owned(),
                runtime: Runtime::Vllm,
                hint: format!(
                    "vLLM serves {}; deploy it with the kserve runtime instead",
                    VLLM_FORMATS.join(", ")
                ),
            })
        }
        _ => Ok(()),
    }
}

/// KServe's `modelFormat.name` for a Model's `spec.format`: its Hugging Face runtime serves
/// safetensors checkpoints, Triton serves `onnx`; anything else is passed through for a cluster
/// runtime that declares it.
fn kserve_model_format(format: &str) -> String {
    let lower = format.to_ascii_lowercase();
    match lower.as_str() {
        "safetensors" | "hf" | "huggingface" => "huggingface".to_owned(),
        "onnx" => "onnx".to_owned(),
        _ => format.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Labels

const LABEL_NAME: &str = "app.kubernetes.io/name";
const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
const LABEL_MODEL: &str = "atrium.dev/model";
const LABEL_MODEL_VERSION: &str = "atrium.dev/model-version";
const COMPONENT: &str = "model-server";
const MANAGED_BY: &str = "atrium";

/// The labels of every object and pod template: the caller's plus the standard ones. A caller
/// label may repeat a standard one only with the same value.
fn object_labels(
    d: &ModelDeployment<'_>,
    model: &str,
    version: &str,
) -> Result<Map<String, Value>, ModelError> {
    let standard = [
        (LABEL_NAME, d.name),
        (LABEL_COMPONENT, COMPONENT),
        (LABEL_MANAGED_BY, MANAGED_BY),
        (LABEL_MODEL, model),
        (LABEL_MODEL_VERSION, version),
    ];
    let mut labels = Map::new();
    for (key, value) in d.labels {
        label_key(key).map_err(|reason| invalid("label key", key, reason))?;
        label_value(value).map_err(|reason| invalid(format!("label `{key}`"), value, reason))?;
        if let Some((_, ours)) = standard.iter().find(|(k, _)| k == key)
            && ours != value
        {
            return Err(invalid(
                format!("label `{key}`"),
                value,
                format!("deploy:model sets this label to `{ours}`"),
            ));
        }
        labels.insert(key.clone(), Value::from(value.as_str()));
    }
    for (key, value) in standard {
        label_value(value).map_err(|reason| invalid(format!("label `{key}`"), value, reason))?;
        labels.insert(key.to_owned(), Value::from(value));
    }
    Ok(labels)
}

/// The Deployment selector: only labels that never change for a given name, because a
/// Deployment's selector is immutable (the version label changes on every promotion).
fn selector_labels(name: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(LABEL_NAME.to_owned(), Value::from(name));
    m.insert(LABEL_COMPONENT.to_owned(), Value::from(COMPONENT));
    m
}

/// A label value: empty, or at most 63 alphanumerics, '-', '_' and '.', alphanumeric at both ends.
fn label_value(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    qualified_name_part(s)
}

fn qualified_name_part(s: &str) -> Result<(), String> {
    if s.len() > DNS_LABEL_MAX {
        return Err(format!(
            "must be at most {DNS_LABEL_MAX} characters, not {}",
            s.len()
        ));
    }
    let inner_ok = s
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    let ends_ok = s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    if inner_ok && ends_ok {
        Ok(())
    } else {
        Err("must be alphanumerics, '-', '_' or '.', starting and ending alphanumeric".to_owned())
    }
}

/// A label key: `[prefix/]name`, the prefix a DNS-1123 subdomain of at most 253 characters.
fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if name.is_empty() {
        return Err("must have a name part".to_owned());
    }
    qualified_name_part(name)?;
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix
                .split('.')
                .all(|part| dns_label(part, DNS_LABEL_MAX).is_ok());
        if !ok {
            return Err("must have a DNS subdomain as prefix (e.g. `example.com/name`)".to_owned());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Shared pod parts

fn metadata(d: &ModelDeployment<'_>, labels: &Map<String, Value>) -> Value {
    json!({
        "name": d.name,
        "namespace": d.namespace,
        "labels": labels,
    })
}

/// requests = limits, so the pod is Guaranteed QoS; a GPU count goes in both (Kubernetes needs
/// extended resources to be equal in requests and limits anyway).
fn resources(d: &ModelDeployment<'_>) -> Value {
    let mut amounts = Map::new();
    amounts.insert("cpu".to_owned(), Value::from(d.cpu));
    amounts.insert("memory".to_owned(), Value::from(d.memory));
    if d.gpus > 0 {
        amounts.insert(GPU_RESOURCE.to_owned(), Value::from(d.gpus.to_string()));
    }
    json!({ "requests": amounts, "limits": amounts })
}

/// Pod-level settings of the `restricted` Pod Security Standard.
fn pod_security_context() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": RUN_AS_ID,
        "runAsGroup": RUN_AS_ID,
        "fsGroup": RUN_AS_ID,
        "seccompProfile": { "type": "RuntimeDefault" },
    })
}

/// Container-level settings of the `restricted` Pod Security Standard. The root filesystem
/// stays writable: Python servers write temporary files outside the mounted cache.
fn container_security_context() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "runAsNonRoot": true,
        "capabilities": { "drop": ["ALL"] },
        "seccompProfile": { "type": "RuntimeDefault" },
    })
}

/// GPU nodes are usually tainted `nvidia.com/gpu:NoSchedule`; only GPU pods tolerate it.
fn gpu_tolerations(gpus: u32) -> Option<Value> {
    (gpus > 0).then(|| {
        json!([{
            "key": GPU_RESOURCE,
            "operator": "Exists",
            "effect": "NoSchedule",
        }])
    })
}

// ---------------------------------------------------------------------------------------------
// vLLM

/// `vllm serve` arguments. The model argument depends on where the weights live:
/// - `hf://org/name[:rev]` becomes the hub id `org/name` (plus `--revision`); vLLM downloads it
///   into `$HF_HOME` (an `HF_TOKEN` secret is needed for gated repositories).
/// - `s3://` is passed as is: vLLM recognises object-store URIs and streams the safetensors
///   with the Run:ai Model Streamer (load format `runai_streamer`, chosen automatically when
///   the load format is `auto`); credentials come from the usual AWS environment variables.
/// - `oci://` and `https://` are passed as is too, but upstream vLLM does not fetch them itself:
///   it treats the argument as a local path or hub id, so the image (or a model-loader plugin)
///   has to resolve such URIs. KServe's runtime does fetch both (model cars and its storage
///   initializer), which makes it the safer choice for those versions.
fn vllm_args(d: &ModelDeployment<'_>, weights: &Weights<'_>) -> Vec<String> {
    let mut args = Vec::new();
    match weights {
        Weights::Hub { repo, revision, .. } => {
            args.push((*repo).to_owned());
            if let Some(rev) = revision {
                args.extend(["--revision".to_owned(), (*rev).to_owned()]);
            }
        }
        Weights::Other { uri, .. } => args.push((*uri).to_owned()),
    }
    args.extend(
        [
            "--host",
            "0.0.0.0",
            "--port",
            &HTTP_PORT.to_string(),
            "--served-model-name",
            d.name,
        ]
        .map(str::to_owned),
    );
    if d.gpus > 1 {
        args.extend(["--tensor-parallel-size".to_owned(), d.gpus.to_string()]);
    }
    if let Some(len) = d.max_model_len {
        args.extend(["--max-model-len".to_owned(), len.to_string()]);
    }
    args
}

fn health_probe(initial_delay: u32, period: u32, failure_threshold: u32) -> Value {
    json!({
        "httpGet": { "path": "/health", "port": "http" },
        "initialDelaySeconds": initial_delay,
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failure_threshold,
    })
}

/// Shared memory for PyTorch and NCCL; tensor parallelism exchanges activations through it.
/// A memory-backed emptyDir counts against the container's memory limit.
fn shm_size(gpus: u32) -> &'static str {
    if gpus > 1 { "8Gi" } else { "2Gi" }
}

fn vllm_deployment(
    d: &ModelDeployment<'_>,
    weights: &Weights<'_>,
    labels: &Map<String, Value>,
    selector: &Map<String, Value>,
) -> Value {
    let container = json!({
        "name": "vllm",
        "image": d.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["vllm", "serve"],
        "args": vllm_args(d, weights),
        "env": [
            { "name": "HOME", "value": CACHE_DIR },
            { "name": "HF_HOME", "value": HF_HOME },
        ],
        "ports": [{ "name": "http", "containerPort": HTTP_PORT, "protocol": "TCP" }],
        "resources": resources(d),
        "startupProbe": health_probe(STARTUP_INITIAL_DELAY_S, STARTUP_PERIOD_S, STARTUP_FAILURE_THRESHOLD),
        "readinessProbe": health_probe(0, 10, 3),
        "livenessProbe": health_probe(0, 20, 3),
        "securityContext": container_security_context(),
        "volumeMounts": [
            { "name": "dshm", "mountPath": "/dev/shm" },
            { "name": "cache", "mountPath": CACHE_DIR },
        ],
    });
    let mut pod_spec = json!({
        "automountServiceAccountToken": false,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": [
            { "name": "dshm", "emptyDir": { "medium": "Memory", "sizeLimit": shm_size(d.gpus) } },
            { "name": "cache", "emptyDir": {} },
        ],
    });
    if let (Some(tolerations), Some(spec)) = (gpu_tolerations(d.gpus), pod_spec.as_object_mut()) {
        spec.insert("tolerations".to_owned(), tolerations);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(d, labels),
        "spec": {
            "replicas": d.replicas,
            "progressDeadlineSeconds": PROGRESS_DEADLINE_S,
            "selector": { "matchLabels": selector },
            "template": {
                "metadata": { "labels": labels },
                "spec": pod_spec,
            },
        },
    })
}

fn vllm_service(
    d: &ModelDeployment<'_>,
    labels: &Map<String, Value>,
    selector: &Map<String, Value>,
) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(d, labels),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{ "name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP" }],
        },
    })
}

// ---------------------------------------------------------------------------------------------
// KServe

/// One InferenceService. KServe's controller picks the ClusterServingRuntime that declares the
/// `modelFormat` (so `runtime` is left out), and its storage initializer fetches `storageUri`
/// (`hf://`, `s3://` and `https://`; `oci://` is mounted as a model car). The Hugging Face
/// runtime sizes tensor parallelism from the GPUs it sees, so only `--max-model-len` is passed.
fn kserve_inference_service(
    d: &ModelDeployment<'_>,
    model: &str,
    weights: &Weights<'_>,
    labels: &Map<String, Value>,
) -> Result<Value, ModelError> {
    let format = spec_format(d.entity).ok_or_else(|| ModelError::MissingFormat {
        model: model.to_owned(),
        runtime: Runtime::Kserve,
        purpose: "choose a serving runtime (modelFormat)",
    })?;
    let model_format = kserve_model_format(format);
    let mut predictor_model = json!({
        "modelFormat": { "name": model_format },
        "storageUri": weights.uri(),
    });
    let mut args = Vec::new();
    if let Some(len) = d.max_model_len {
        if model_format != "huggingface" {
            return Err(ModelError::UnsupportedFormat {
                model: model.to_owned(),
                format: format.to_owned(),
                runtime: Runtime::Kserve,
                hint: format!(
                    "max_model_len applies to the huggingface (vLLM) runtime only, not `{model_format}`"
                ),
            });
        }
        args.push(format!("--max-model-len={len}"));
    }
    if let Some(m) = predictor_model.as_object_mut() {
        if !args.is_empty() {
            m.insert("args".to_owned(), json!(args));
        }
        m.insert("resources".to_owned(), resources(d));
        m.insert("securityContext".to_owned(), container_security_context());
    }
    let mut predictor = json!({
        "minReplicas": d.replicas,
        "maxReplicas": d.max_replicas,
        "labels": labels,
        "securityContext": pod_security_context(),
    });
    if let Some(p) = predictor.as_object_mut() {
        if let Some(tolerations) = gpu_tolerations(d.gpus) {
            p.insert("tolerations".to_owned(), tolerations);
        }
        p.insert("model".to_owned(), predictor_model);
    }
    Ok(json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata(d, labels),
        "spec": { "predictor": predictor },
    }))
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    const MODELS_YAML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog/models/models.yaml");
    const SCHEMA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/k8s-schemas");

    fn catalog() -> &'static Vec<Value> {
        static MODELS: OnceLock<Vec<Value>> = OnceLock::new();
        MODELS.get_or_init(|| {
            let text = std::fs::read_to_string(MODELS_YAML).unwrap();
            serde_saphyr::from_multiple::<Value>(&text).unwrap()
        })
    }

    fn entity(name: &str) -> &'static Value {
        catalog()
            .iter()
            .find(|e| e["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no model {name} in {MODELS_YAML}"))
    }

    fn validator(file: &str) -> jsonschema::Validator {
        let path = format!("{SCHEMA_DIR}/{file}");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn schema_for(kind: &str) -> &'static jsonschema::Validator {
        static DEPLOYMENT: OnceLock<jsonschema::Validator> = OnceLock::new();
        static SERVICE: OnceLock<jsonschema::Validator> = OnceLock::new();
        static ISVC: OnceLock<jsonschema::Validator> = OnceLock::new();
        match kind {
            "Deployment" => DEPLOYMENT.get_or_init(|| validator("deployment-apps-v1.json")),
            "Service" => SERVICE.get_or_init(|| validator("service-v1.json")),
            "InferenceService" => {
                ISVC.get_or_init(|| validator("inferenceservice-serving-v1beta1.json"))
            }
            other => panic!("no schema for kind {other}"),
        }
    }

    /// The schema errors of `object`, as "path: message" lines.
    fn schema_errors(object: &Value) -> Vec<String> {
        let kind = object["kind"].as_str().unwrap();
        schema_for(kind)
            .iter_errors(object)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }

    fn assert_schema_valid(rendered: &RenderedModel) {
        for object in &rendered.objects {
            let errors = schema_errors(object);
            assert!(
                errors.is_empty(),
                "{} does not match its schema:\n{}\n{object:#}",
                object["kind"],
                errors.join("\n")
            );
        }
    }

    fn labels() -> &'static BTreeMap<String, String> {
        static LABELS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
        LABELS.get_or_init(|| {
            BTreeMap::from([(
                "backstage.io/kubernetes-id".to_owned(),
                "support-assistant".to_owned(),
            )])
        })
    }

    fn request<'a>(entity: &'a Value, version: &'a str, runtime: Runtime) -> ModelDeployment<'a> {
        ModelDeployment {
            entity,
            version,
            name: "support-assistant",
            namespace: "ml-serving",
            runtime,
            image: "vllm/vllm-openai:v0.11.0",
            gpus: 1,
            replicas: 1,
            max_replicas: 3,
            max_model_len: None,
            cpu: "4",
            memory: "32Gi",
            labels: labels(),
        }
    }

    fn args(deployment: &Value) -> Vec<&str> {
        deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect()
    }

    fn err_message(d: &ModelDeployment<'_>) -> String {
        render(d).unwrap_err().to_string()
    }

    #[test]
    fn vllm_renders_hub_model() {
        let e = entity("llama-3.1-8b-instruct");
        let mut d = request(e, "bf16", Runtime::Vllm);
        d.name = "llama-base";
        let r = render(&d).unwrap();
        assert_eq!(r.version, "bf16");
        assert_eq!(r.uri, "hf://meta-llama/Llama-3.1-8B-Instruct");
        assert_eq!(r.objects.len(), 2);
        assert_schema_valid(&r);
        let (deploy, svc) = (&r.objects[0], &r.objects[1]);
        assert_eq!(deploy["kind"], "Deployment");
        assert_eq!(svc["kind"], "Service");
        let c = &deploy["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["name"], "vllm");
        assert_eq!(c["image"], "vllm/vllm-openai:v0.11.0");
        assert_eq!(c["command"], json!(["vllm", "serve"]));
        assert_eq!(
            args(deploy),
            [
                "meta-llama/Llama-3.1-8B-Instruct",
                "--host",
                "0.0.0.0",
                "--port",
                "8000",
                "--served-model-name",
                "llama-base"
            ]
        );
        assert_eq!(
            c["ports"][0],
            json!({"name": "http", "containerPort": 8000, "protocol": "TCP"})
        );
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            assert_eq!(
                c[probe]["httpGet"],
                json!({"path": "/health", "port": "http"}),
                "{probe}"
            );
        }
        assert!(c["startupProbe"]["failureThreshold"].as_u64().unwrap() >= 60);
        assert_eq!(
            c["env"],
            json!([{"name": "HOME", "value": "/cache"}, {"name": "HF_HOME", "value": "/cache/huggingface"}])
        );
        let pod = &deploy["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], 1000);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(pod["volumes"][0]["emptyDir"]["medium"], "Memory");
        assert_eq!(
            c["volumeMounts"][0],
            json!({"name": "dshm", "mountPath": "/dev/shm"})
        );
        assert_eq!(
            svc["spec"]["ports"],
            json!([{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}])
        );
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(
            svc["spec"]["selector"],
            deploy["spec"]["selector"]["matchLabels"]
        );
    }

    #[test]
    fn vllm_renders_support_assistant_champion() {
        let e = entity("support-assistant");
        let r = render(&request(e, "champion", Runtime::Vllm)).unwrap();
        assert_eq!(r.version, "v2");
        assert_eq!(
            r.uri,
            "oci://registry.example.com/models/support-assistant:v2"
        );
        assert_schema_valid(&r);
        assert_eq!(args(&r.objects[0])[0], r.uri);
        let labels = &r.objects[0]["metadata"]["labels"];
        assert_eq!(labels["atrium.dev/model"], "support-assistant");
        assert_eq!(labels["atrium.dev/model-version"], "v2");
    }

    #[test]
    fn kserve_renders_catalog_models() {
        let e = entity("support-assistant");
        let r = render(&request(e, "champion", Runtime::Kserve)).unwrap();
        assert_schema_valid(&r);
        assert_eq!(r.objects.len(), 1);
        let isvc = &r.objects[0];
        assert_eq!(isvc["apiVersion"], "serving.kserve.io/v1beta1");
        assert_eq!(isvc["kind"], "InferenceService");
        let p = &isvc["spec"]["predictor"];
        assert_eq!(p["minReplicas"], 1);
        assert_eq!(p["maxReplicas"], 3);
        assert_eq!(p["model"]["modelFormat"], json!({"name": "huggingface"}));
        assert_eq!(
            p["model"]["storageUri"],
            "oci://registry.example.com/models/support-assistant:v2"
        );
        assert!(p["model"].get("runtime").is_none());
        assert!(p["model"].get("args").is_none());
        assert_eq!(p["model"]["resources"]["limits"]["nvidia.com/gpu"], "1");
        assert_eq!(p["securityContext"]["runAsNonRoot"], true);
        assert_eq!(p["labels"], isvc["metadata"]["labels"]);

        let e = entity("llama-3.1-8b-instruct");
        let mut d = request(e, "bf16", Runtime::Kserve);
        d.max_model_len = Some(8192);
        d.replicas = 0;
        let r = render(&d).unwrap();
        assert_schema_valid(&r);
        let p = &r.objects[0]["spec"]["predictor"];
        assert_eq!(
            p["model"]["storageUri"],
            "hf://meta-llama/Llama-3.1-8B-Instruct"
        );
        assert_eq!(p["model"]["args"], json!(["--max-model-len=8192"]));
        assert_eq!(p["minReplicas"], 0);
    }

    /// Every version of every catalog model, on every runtime that can serve its format, renders
    /// manifests that match the Kubernetes and KServe schemas.
    #[test]
    fn every_catalog_version_matches_the_schemas() {
        let mut rendered = 0;
        for e in catalog() {
            let onnx = e["spec"]["format"] == "onnx";
            for v in e["spec"]["versions"].as_array().unwrap() {
                let version = v["name"].as_str().unwrap();
                for runtime in [Runtime::Vllm, Runtime::Kserve] {
                    for gpus in [0, 2] {
                        let mut d = request(e, version, runtime);
                        d.gpus = gpus;
                        if runtime == Runtime::Vllm && onnx {
                            assert!(matches!(
                                render(&d),
                                Err(ModelError::UnsupportedFormat { .. })
                            ));
                            continue;
                        }
                        assert_schema_valid(&render(&d).unwrap());
                        rendered += 1;
                    }
                }
            }
        }
        assert!(rendered >= 20, "rendered only {rendered}");
    }

    #[test]
    fn aliases_resolve_and_names_win() {
        let e = entity("support-assistant");
        for (asked, got) in [
            ("champion", "v2"),
            ("challenger", "v3"),
            ("v1", "v1"),
            ("v3", "v3"),
        ] {
            assert_eq!(
                render(&request(e, asked, Runtime::Vllm)).unwrap().version,
                got
            );
        }
        // A version literally named like another version's alias is chosen by its name.
        let e = json!({
            "kind": "Model",
            "metadata": {"name": "m"},
            "spec": {"versions": [
                {"name": "a", "uri": "s3://b/a", "aliases": ["b"]},
                {"name": "b", "uri": "s3://b/b"},
            ]},
        });
        let r = render(&request(&e, "b", Runtime::Vllm)).unwrap();
        assert_eq!((r.version.as_str(), r.uri.as_str()), ("b", "s3://b/b"));
    }

    #[test]
    fn unknown_version_lists_versions() {
        let e = entity("llama-3.1-8b-instruct");
        assert_eq!(
            err_message(&request(e, "v9", Runtime::Vllm)),
            "model `llama-3.1-8b-instruct` has no version or alias `v9`; versions: bf16, awq-int4"
        );
        let e = entity("support-assistant");
        assert_eq!(
            err_message(&request(e, "prod", Runtime::Kserve)),
            "model `support-assistant` has no version or alias `prod`; versions: v1, v2 (champion), v3 (challenger)"
        );
    }

    #[test]
    fn bad_names_are_rejected() {
        let e = entity("support-assistant");
        let long = "a".repeat(64);
        for bad in [
            "Support",
            "1model",
            "model_x",
            "-m",
            "m-",
            "",
            "m.x",
            long.as_str(),
        ] {
            let mut d = request(e, "v1", Runtime::Vllm);
            d.name = bad;
            let msg = err_message(&d);
            assert!(
                msg.starts_with(&format!("name `{bad}` is not valid: ")),
                "{msg}"
            );
        }
        let mut d = request(e, "v1", Runtime::Vllm);
        d.name = &long[..63];
        assert!(render(&d).is_ok());
        d.runtime = Runtime::Kserve;
        assert!(
            err_message(&d).contains("at most 53 characters"),
            "{}",
            err_message(&d)
        );

        let mut d = request(e, "v1", Runtime::Vllm);
        d.namespace = "ML_Serving";
        assert_eq!(
            err_message(&d),
            "namespace `ML_Serving` is not valid: must consist of lower-case letters, digits and '-'"
        );
        d.namespace = "1-team";
        assert!(
            render(&d).is_ok(),
            "a DNS-1123 label may start with a digit"
        );
    }

    #[test]
    fn gpus_zero_and_two() {
        let e = entity("support-assistant");
        let mut d = request(e, "v1", Runtime::Vllm);
        d.gpus = 0;
        let r = render(&d).unwrap();
        let pod = &r.objects[0]["spec"]["template"]["spec"];
        let res = &pod["containers"][0]["resources"];
        assert_eq!(res["limits"], json!({"cpu": "4", "memory": "32Gi"}));
        assert_eq!(res["requests"], res["limits"]);
        assert!(pod.get("tolerations").is_none());
        assert!(!args(&r.objects[0]).contains(&"--tensor-parallel-size"));
        assert_eq!(pod["volumes"][0]["emptyDir"]["sizeLimit"], "2Gi");

        d.gpus = 2;
        let r = render(&d).unwrap();
        assert_schema_valid(&r);
        let pod = &r.objects[0]["spec"]["template"]["spec"];
        let res = &pod["containers"][0]["resources"];
        assert_eq!(
            res["limits"],
            json!({"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": "2"})
        );
        assert_eq!(res["requests"], res["limits"]);
        assert_eq!(
            pod["tolerations"],
            json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
        );
        let a = args(&r.objects[0]);
        let tp = a
            .iter()
            .position(|x| *x == "--tensor-parallel-size")
            .unwrap();
        assert_eq!(a[tp + 1], "2");
        assert_eq!(pod["volumes"][0]["emptyDir"]["sizeLimit"], "8Gi");

        d.gpus = 1;
        let r = render(&d).unwrap();
        assert!(!args(&r.objects[0]).contains(&"--tensor-parallel-size"));

        let mut d = request(e, "v1", Runtime::Kserve);
        d.gpus = 0;
        let r = render(&d).unwrap();
        let p = &r.objects[0]["spec"]["predictor"];
        assert!(
            p["model"]["resources"]["limits"]
                .get("nvidia.com/gpu")
                .is_none()
        );
        assert!(p.get("tolerations").is_none());
        d.gpus = 2;
        let r = render(&d).unwrap();
        let p = &r.objects[0]["spec"]["predictor"];
        assert_eq!(p["model"]["resources"]["requests"]["nvidia.com/gpu"], "2");
        assert_eq!(p["tolerations"][0]["key"], "nvidia.com/gpu");
    }

    #[test]
    fn max_model_len_and_revision() {
        let e = json!({
            "apiVersion": "atrium.dev/v1alpha1",
            "kind": "Model",
            "metadata": {"name": "m"},
            "spec": {"format": "safetensors", "versions": [{"name": "r", "uri": "hf://org/name:abc123"}]},
        });
        let mut d = request(&e, "r", Runtime::Vllm);
        d.max_model_len = Some(16384);
        let r = render(&d).unwrap();
        assert_schema_valid(&r);
        let a = args(&r.objects[0]);
        assert_eq!(&a[..3], ["org/name", "--revision", "abc123"]);
        assert_eq!(&a[a.len() - 2..], ["--max-model-len", "16384"]);
        d.max_model_len = Some(0);
        assert_eq!(
            err_message(&d),
            "max_model_len `0` is not valid: must be positive"
        );
    }

    #[test]
    fn labels_on_every_object() {
        let e = entity("support-assistant");
        for runtime in [Runtime::Vllm, Runtime::Kserve] {
            let r = render(&request(e, "challenger", runtime)).unwrap();
            let want = json!({
                "backstage.io/kubernetes-id": "support-assistant",
                "app.kubernetes.io/name": "support-assistant",
                "app.kubernetes.io/component": "model-server",
                "app.kubernetes.io/managed-by": "atrium",
                "atrium.dev/model": "support-assistant",
                "atrium.dev/model-version": "v3",
            });
            for o in &r.objects {
                assert_eq!(o["metadata"]["labels"], want, "{runtime} {}", o["kind"]);
                assert_eq!(o["metadata"]["namespace"], "ml-serving");
            }
            match runtime {
                Runtime::Vllm => {
                    let spec = &r.objects[0]["spec"];
                    assert_eq!(spec["template"]["metadata"]["labels"], want);
                    assert_eq!(
                        spec["selector"]["matchLabels"],
                        json!({"app.kubernetes.io/name": "support-assistant", "app.kubernetes.io/component": "model-server"})
                    );
                }
                Runtime::Kserve => assert_eq!(r.objects[0]["spec"]["predictor"]["labels"], want),
            }
        }
    }

    #[test]
    fn bad_labels_are_rejected() {
        let e = entity("support-assistant");
        let cases = [
            ("team", "a b", "label `team` `a b` is not valid"),
            ("Bad Key", "x", "label key `Bad Key` is not valid"),
            ("-x.io/k", "x", "label key `-x.io/k` is not valid"),
            (
                "app.kubernetes.io/name",
                "other",
                "label `app.kubernetes.io/name` `other` is not valid: deploy:model sets this label to `support-assistant`",
            ),
        ];
        for (k, v, want) in cases {
            let labels = BTreeMap::from([(k.to_owned(), v.to_owned())]);
            let mut d = request(e, "v1", Runtime::Vllm);
            d.labels = &labels;
            let msg = err_message(&d);
            assert!(msg.starts_with(want), "{msg}");
        }
        // Repeating a standard label with the same value is fine.
        let labels = BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_owned(),
            "atrium".to_owned(),
        )]);
        let mut d = request(e, "v1", Runtime::Vllm);
        d.labels = &labels;
        assert!(render(&d).is_ok());
    }

    #[test]
    fn entity_and_uri_errors() {
        let missing_uri = json!({"kind": "Model", "metadata": {"name": "m"}, "spec": {"versions": [{"name": "v1"}]}});
        assert_eq!(
            err_message(&request(&missing_uri, "v1", Runtime::Vllm)),
            "model `m` version `v1` has no `uri`"
        );
        let http = json!({"kind": "Model", "metadata": {"name": "m"}, "spec": {"versions": [{"name": "v1", "uri": "http://x/m"}]}});
        assert!(
            err_message(&request(&http, "v1", Runtime::Vllm)).starts_with(
                "model `m` version `v1` has uri `http://x/m`, which has an unsupported scheme"
            )
        );
        let bad_hf = json!({"kind": "Model", "metadata": {"name": "m"}, "spec": {"versions": [{"name": "v1", "uri": "hf://just-a-name"}]}});
        assert!(
            err_message(&request(&bad_hf, "v1", Runtime::Vllm))
                .contains("is not a Hugging Face repository")
        );
        let no_versions = json!({"kind": "Model", "metadata": {"name": "m"}, "spec": {}});
        assert_eq!(
            err_message(&request(&no_versions, "v1", Runtime::Vllm)),
            "model `m` has no `spec.versions` to deploy"
        );
        let component = json!({"kind": "Component", "metadata": {"name": "m"}});
        assert_eq!(
            err_message(&request(&component, "v1", Runtime::Vllm)),
            "the entity is a `Component`, not a `Model`"
        );
        let no_format = json!({"kind": "Model", "metadata": {"name": "m"}, "spec": {"versions": [{"name": "v1", "uri": "s3://b/m"}]}});
        assert!(render(&request(&no_format, "v1", Runtime::Vllm)).is_ok());
        assert_eq!(
            err_message(&request(&no_format, "v1", Runtime::Kserve)),
            "model `m` has no `spec.format`; the kserve runtime needs it to choose a serving runtime (modelFormat)"
        );
    }

    #[test]
    fn formats_per_runtime() {
        let e = entity("ticket-classifier");
        assert!(
            err_message(&request(e, "champion", Runtime::Vllm)).starts_with(
                "model `ticket-classifier` has format `onnx`, which the vllm runtime cannot serve"
            )
        );
        let r = render(&request(e, "champion", Runtime::Kserve)).unwrap();
        assert_eq!(
            r.objects[0]["spec"]["predictor"]["model"]["modelFormat"]["name"],
            "onnx"
        );
        let mut d = request(e, "champion", Runtime::Kserve);
        d.max_model_len = Some(512);
        assert!(
            err_message(&d)
                .contains("max_model_len applies to the huggingface (vLLM) runtime only")
        );
        assert_eq!(kserve_model_format("hf"), "huggingface");
        assert_eq!(kserve_model_format("xgboost"), "xgboost");
    }

    #[test]
    fn request_values_are_checked() {
        let e = entity("support-assistant");
        for (image, ok) in [
            ("vllm/vllm-openai:v0.11.0", true),
            ("registry:5000/vllm/vllm-openai:v0.11.0", true),
            ("vllm/vllm-openai@sha256:0123abcd", true),
            ("vllm/vllm-openai:latest", false),
            ("vllm/vllm-openai", false),
            ("registry:5000/vllm", false),
            ("", false),
        ] {
            let mut d = request(e, "v1", Runtime::Vllm);
            d.image = image;
            assert_eq!(render(&d).is_ok(), ok, "{image}");
        }
        for (q, ok) in [
            ("4", true),
            ("500m", true),
            ("32Gi", true),
            ("1.5", true),
            ("1e3", true),
            ("", false),
            ("32GB", false),
            ("-1", false),
            ("four", false),
            ("1..5", false),
        ] {
            assert_eq!(check_quantity(q).is_ok(), ok, "{q}");
        }
        let mut d = request(e, "v1", Runtime::Vllm);
        d.memory = "32GB";
        assert!(err_message(&d).starts_with("memory `32GB` is not valid"));
        let mut d = request(e, "v1", Runtime::Kserve);
        d.replicas = 4;
        assert_eq!(
            err_message(&d),
            "max_replicas `3` is not valid: must be at least 1 and at least replicas (4)"
        );
    }

    #[test]
    fn runtime_parses_and_serializes() {
        assert_eq!("vllm".parse::<Runtime>().unwrap(), Runtime::Vllm);
        assert_eq!("kserve".parse::<Runtime>().unwrap(), Runtime::Kserve);
        assert_eq!(
            "triton".parse::<Runtime>().unwrap_err().to_string(),
            "unknown runtime `triton`; expected `vllm` or `kserve`"
        );
        assert_eq!(
            serde_json::to_value(Runtime::Kserve).unwrap(),
            json!("kserve")
        );
        assert_eq!(
            serde_json::from_value::<Runtime>(json!("vllm")).unwrap(),
            Runtime::Vllm
        );
        assert!(serde_json::from_value::<Runtime>(json!("VLLM")).is_err());
        assert_eq!(Runtime::Vllm.to_string(), "vllm");
    }

    /// The schemas are strict: a misspelt field anywhere fails, so the checks above cannot pass
    /// trivially.
    #[test]
    fn schemas_reject_typos() {
        let e = entity("support-assistant");
        let r = render(&request(e, "champion", Runtime::Vllm)).unwrap();
        let mut deploy = r.objects[0].clone();
        let replicas = deploy["spec"]["replicas"].take();
        deploy["spec"]["replica"] = replicas;
        deploy["spec"].as_object_mut().unwrap().remove("replicas");
        assert!(
            schema_errors(&deploy).iter().any(|e| e.contains("replica")),
            "{:?}",
            schema_errors(&deploy)
        );

        let mut deploy = r.objects[0].clone();
        deploy["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = json!({});
        assert!(!schema_errors(&deploy).is_empty());
        let mut deploy = r.objects[0].clone();
        deploy["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] =
            json!("8000");
        assert!(!schema_errors(&deploy).is_empty());
        let mut deploy = r.objects[0].clone();
        deploy["metadata"]["lables"] = json!({});
        assert!(!schema_errors(&deploy).is_empty());

        let mut svc = r.objects[1].clone();
        svc["spec"]["port"] = json!([]);
        assert!(!schema_errors(&svc).is_empty());

        let r = render(&request(e, "champion", Runtime::Kserve)).unwrap();
        let mut isvc = r.objects[0].clone();
        isvc["spec"]["predictor"]["minReplica"] = json!(1);
        assert!(!schema_errors(&isvc).is_empty());
        let mut isvc = r.objects[0].clone();
        isvc["spec"]["predictor"]["model"]["modelFormat"] = json!({"nam": "huggingface"});
        assert!(!schema_errors(&isvc).is_empty());
        let mut isvc = r.objects[0].clone();
        isvc["spec"]["predictor"]["model"]["resources"]["limits"]["memory"] = json!("32 GB");
        assert!(!schema_errors(&isvc).is_empty());
        let mut isvc = r.objects[0].clone();
        isvc["apiVersion"] = json!("serving.kserve.io/v1alpha1");
        assert!(!schema_errors(&isvc).is_empty());
    }

    #[test]
    fn objects_round_trip_through_yaml() {
        let e = entity("llama-3.1-8b-instruct");
        let r = render(&request(e, "awq-int4", Runtime::Vllm)).unwrap();
        let yaml = serde_saphyr::to_string_multiple(&r.objects).unwrap();
        let back: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap();
        assert_eq!(back, r.objects);
    }
}
