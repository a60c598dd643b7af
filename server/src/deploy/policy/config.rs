//! The `policy` section of the server configuration: which guardrails apply to rendered
//! manifests. Every default is the safe choice; operators loosen rules explicitly.

use serde::{Deserialize, Serialize};

/// One MiB, the default for [`PolicyConfig::max_manifest_bytes`].
pub const DEFAULT_MAX_MANIFEST_BYTES: usize = 1024 * 1024;

/// Which Pod Security Standards profile pod specs must meet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PodSecurityLevel {
    /// The "restricted" profile: everything in baseline plus current hardening practice
    /// (non-root, no privilege escalation, seccomp required, drop ALL capabilities,
    /// restricted volume types). The default.
    #[default]
    Restricted,
    /// The "baseline" profile: prevents known privilege escalations (host namespaces,
    /// privileged containers, host paths and ports, extra capabilities, ...) but accepts
    /// a minimally specified pod.
    Baseline,
}

impl PodSecurityLevel {
    /// The profile name as written in configuration (`restricted` / `baseline`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restricted => "restricted",
            Self::Baseline => "baseline",
        }
    }
}

/// Guardrail policy checked against every manifest before it is sent to a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct PolicyConfig {
    /// Pod Security Standards profile that every pod spec (Pods, workload templates, KServe
    /// components) must satisfy: `restricted` or `baseline`. Default: `restricted`.
    pub pod_security: PodSecurityLevel,
    /// Require every container (including init containers and KServe model containers) to
    /// set cpu and memory in both `resources.requests` and `resources.limits`.
    /// Default: `true`.
    pub require_resources: bool,
    /// Registries images may come from: a registry host, optionally followed by a path
    /// prefix, e.g. `ghcr.io/acme`, `registry.example.com`, `docker.io/library`. Images are
    /// normalised first (`nginx:1.25` is `docker.io/library/nginx:1.25`) and prefixes match
    /// whole path segments only. Default: empty, which allows no image at all.
    pub allowed_registries: Vec<String>,
    /// Refuse images tagged `:latest` and images without any tag; an image pinned by digest
    /// (`@sha256:...`) is accepted whatever its tag. Default: `true`.
    pub forbid_latest_tag: bool,
    /// Refuse cluster-scoped objects (Namespace, ClusterRole, CustomResourceDefinition, ...).
    /// Default: `true`.
    pub forbid_cluster_scoped: bool,
    /// Largest replica count one object may ask for: `spec.replicas` of Deployments,
    /// StatefulSets, ReplicaSets and ReplicationControllers (missing counts as 1), Job
    /// `parallelism`, HorizontalPodAutoscaler `maxReplicas`, and KServe InferenceService
    /// component `minReplicas`/`maxReplicas` (a missing `maxReplicas` means unbounded
    /// autoscaling and is refused). Default: `3`.
    pub max_replicas: u32,
    /// Most GPUs one object may use: the sum over its containers of max(request, limit) of
    /// `nvidia.com/gpu*`, `nvidia.com/mig-*` and `amd.com/gpu`, times its replica count
    /// (`maxReplicas` for InferenceService components). Default: `0` (no GPUs).
    pub max_gpus: u32,
    /// Largest size in bytes of the whole rendered manifest set. Default: 1 MiB (1048576).
    pub max_manifest_bytes: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            pod_security: PodSecurityLevel::Restricted,
            require_resources: true,
            allowed_registries: Vec::new(),
            forbid_latest_tag: true,
            forbid_cluster_scoped: true,
            max_replicas: 3,
            max_gpus: 0,
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PodSecurityLevel, PolicyConfig};

    #[test]
    fn defaults_are_safe() {
        let c = PolicyConfig::default();
        assert_eq!(c.pod_security, PodSecurityLevel::Restricted);
        assert!(c.require_resources && c.forbid_latest_tag && c.forbid_cluster_scoped);
        assert!(c.allowed_registries.is_empty());
        assert_eq!(
            (c.max_replicas, c.max_gpus, c.max_manifest_bytes),
            (3, 0, 1 << 20)
        );
    }

    #[test]
    fn deserializes_partial_yaml_and_rejects_unknown_fields() {
        let c: PolicyConfig = serde_saphyr::from_str(
            "pod_security: baseline\nallowed_registries: [ghcr.io/acme]\nmax_gpus: 2\n",
        )
        .expect("valid policy");
        assert_eq!(c.pod_security, PodSecurityLevel::Baseline);
        assert_eq!(c.allowed_registries, vec!["ghcr.io/acme".to_owned()]);
        assert_eq!(c.max_gpus, 2);
        assert_eq!(c.max_replicas, 3);
        assert!(serde_saphyr::from_str::<PolicyConfig>("max_replica: 2\n").is_err());
        assert!(serde_saphyr::from_str::<PolicyConfig>("pod_security: privileged\n").is_err());
        let json = serde_json::to_value(PolicyConfig::default()).expect("serializes");
        assert_eq!(json["pod_security"], "restricted");
    }
}
