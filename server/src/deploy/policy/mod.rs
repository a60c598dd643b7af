//! Deploy guardrails: checks rendered Kubernetes manifests against a [`PolicyConfig`] before
//! anything is sent to a cluster.
//!
//! [`check`] runs every rule over every object and returns all violations (it never stops at
//! the first). The rules:
//!
//! - Pod Security Standards ([`PolicyConfig::pod_security`], `pss-*`), following the
//!   Kubernetes pod-security-admission checks at version "latest", on every pod spec: Pods,
//!   Deployment/ReplicaSet/StatefulSet/DaemonSet/Job/ReplicationController templates, CronJob
//!   job templates, core PodTemplates, KServe InferenceService components (predictor,
//!   transformer, explainer, with their model specs) and ServingRuntimes, and any other kind
//!   carrying `spec.template.spec.containers`. Each problem is reported once under its most
//!   specific rule: a hostPath volume is `pss-host-path` at both levels (not also
//!   `pss-volume-types`); a bad pod-level seccomp profile or `runAsNonRoot` is reported at
//!   the pod, and containers that merely inherit it are not reported again; and
//!   `pss-restricted-capabilities` reports an added capability only when `pss-capabilities`
//!   did not already. The user-namespace (`hostUsers: false`) and Windows (`os.name:
//!   windows`) relaxations of pod-security-admission apply.
//! - `resources-required`, `image-registry`, `image-tag`, `cluster-scoped`, `namespace`,
//!   `max-replicas`, `max-gpus`, `manifest-size` and `manifest-shape`.
//!
//! The checks read the parsed values ([`parse_manifests`]); send those same values to the
//! cluster rather than the original text, so that what was checked is what is applied.

mod config;
mod image;
mod manifests;
mod path;
mod pss;
mod report;
mod rules;
mod workload;

#[cfg(test)]
mod tests;

use std::fmt;

use serde::Serialize;
use serde_json::Value;

pub use config::{DEFAULT_MAX_MANIFEST_BYTES, PodSecurityLevel, PolicyConfig};
pub use manifests::{ManifestError, parse_manifests};
pub use report::{FileReport, Report, test_files};
pub use rules::is_cluster_scoped;

use path::FieldPath;

/// Stable rule identifiers, as found in [`Violation::rule`].
pub mod ids {
    /// A pod or container sets `securityContext.windowsOptions.hostProcess: true`.
    pub const PSS_WINDOWS_HOST_PROCESS: &str = "pss-windows-host-process";
    /// `hostNetwork`, `hostPID` or `hostIPC` is true.
    pub const PSS_HOST_NAMESPACES: &str = "pss-host-namespaces";
    /// A container sets `securityContext.privileged: true`.
    pub const PSS_PRIVILEGED: &str = "pss-privileged";
    /// A container adds a capability outside the baseline default set.
    pub const PSS_CAPABILITIES: &str = "pss-capabilities";
    /// A `hostPath` volume.
    pub const PSS_HOST_PATH: &str = "pss-host-path";
    /// A container port sets a non-zero `hostPort`.
    pub const PSS_HOST_PORTS: &str = "pss-host-ports";
    /// An AppArmor profile other than RuntimeDefault/Localhost (field or annotation).
    pub const PSS_APPARMOR: &str = "pss-apparmor";
    /// An SELinux type outside the allowed set, or a custom SELinux user or role.
    pub const PSS_SELINUX: &str = "pss-selinux";
    /// A `procMount` other than `Default`.
    pub const PSS_PROC_MOUNT: &str = "pss-proc-mount";
    /// A seccomp profile other than RuntimeDefault/Localhost, or (restricted) none at all.
    pub const PSS_SECCOMP: &str = "pss-seccomp";
    /// A sysctl outside the safe set.
    pub const PSS_SYSCTLS: &str = "pss-sysctls";
    /// A probe or lifecycle handler that sets `host` (baseline since Kubernetes 1.34).
    pub const PSS_PROBE_HOST: &str = "pss-probe-host";
    /// (restricted) A volume type outside the allowed list.
    pub const PSS_VOLUME_TYPES: &str = "pss-volume-types";
    /// (restricted) `allowPrivilegeEscalation` is not `false`.
    pub const PSS_ALLOW_PRIVILEGE_ESCALATION: &str = "pss-allow-privilege-escalation";
    /// (restricted) `runAsNonRoot` is not `true` for every container.
    pub const PSS_RUN_AS_NON_ROOT: &str = "pss-run-as-non-root";
    /// (restricted) `runAsUser: 0`.
    pub const PSS_RUN_AS_USER: &str = "pss-run-as-user";
    /// (restricted) Capabilities do not drop `ALL`, or add more than `NET_BIND_SERVICE`.
    pub const PSS_RESTRICTED_CAPABILITIES: &str = "pss-restricted-capabilities";
    /// A container lacks cpu/memory requests or limits.
    pub const RESOURCES_REQUIRED: &str = "resources-required";
    /// An image from a registry not in `allowed_registries`, or an invalid reference.
    pub const IMAGE_REGISTRY: &str = "image-registry";
    /// An image tagged `latest` or not tagged, and not pinned by digest.
    pub const IMAGE_TAG: &str = "image-tag";
    /// A cluster-scoped object.
    pub const CLUSTER_SCOPED: &str = "cluster-scoped";
    /// A namespaced object outside the allowed namespaces.
    pub const NAMESPACE: &str = "namespace";
    /// More replicas than `max_replicas`.
    pub const MAX_REPLICAS: &str = "max-replicas";
    /// More GPUs than `max_gpus`.
    pub const MAX_GPUS: &str = "max-gpus";
    /// The rendered set is larger than `max_manifest_bytes`.
    pub const MANIFEST_SIZE: &str = "manifest-size";
    /// A document that is not a Kubernetes object (no apiVersion, kind or metadata.name).
    pub const MANIFEST_SHAPE: &str = "manifest-shape";

    /// Every rule id, in the order the checks run.
    pub const ALL: &[&str] = &[
        MANIFEST_SIZE,
        MANIFEST_SHAPE,
        CLUSTER_SCOPED,
        NAMESPACE,
        PSS_WINDOWS_HOST_PROCESS,
        PSS_HOST_NAMESPACES,
        PSS_PRIVILEGED,
        PSS_CAPABILITIES,
        PSS_HOST_PATH,
        PSS_HOST_PORTS,
        PSS_APPARMOR,
        PSS_SELINUX,
        PSS_PROC_MOUNT,
        PSS_SECCOMP,
        PSS_SYSCTLS,
        PSS_PROBE_HOST,
        PSS_VOLUME_TYPES,
        PSS_ALLOW_PRIVILEGE_ESCALATION,
        PSS_RUN_AS_NON_ROOT,
        PSS_RUN_AS_USER,
        PSS_RESTRICTED_CAPABILITIES,
        RESOURCES_REQUIRED,
        IMAGE_REGISTRY,
        IMAGE_TAG,
        MAX_REPLICAS,
        MAX_GPUS,
    ];
}

/// Where the manifests are going: which namespaces the deploy may touch.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Namespaces namespaced objects may live in; empty refuses every namespace.
    pub allowed_namespaces: &'a [String],
    /// Namespace of objects that do not set `metadata.namespace`.
    pub default_namespace: &'a str,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Stable kebab-case rule id, one of [`ids::ALL`].
    pub rule: &'static str,
    /// `Kind/namespace/name`, or `Kind/name` for cluster-scoped kinds.
    pub object: String,
    /// Field path inside the object, e.g. `spec.template.spec.containers[0].image`; empty
    /// when the violation concerns the whole set or document.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}: {}", self.rule, self.object, self.message)
        } else {
            write!(
                f,
                "{}: {} {}: {}",
                self.rule, self.object, self.path, self.message
            )
        }
    }
}

/// Collects the violations of one object.
struct Sink<'v> {
    object: String,
    out: &'v mut Vec<Violation>,
}

impl Sink<'_> {
    fn push(&mut self, rule: &'static str, path: &FieldPath, message: impl Into<String>) {
        self.out.push(Violation {
            rule,
            object: self.object.clone(),
            path: path.to_string(),
            message: message.into(),
        });
    }
}

/// Checks `objects` (one rendered manifest set of `total_bytes` bytes) against `policy` for a
/// deploy into `scope`, and returns every violation found, in object order.
pub fn check(
    policy: &PolicyConfig,
    scope: &Scope<'_>,
    objects: &[Value],
    total_bytes: usize,
) -> Vec<Violation> {
    let mut out = Vec::new();
    rules::check_size(policy, total_bytes, &mut out);
    for (index, object) in objects.iter().enumerate() {
        rules::check_object(policy, scope, index, object, &mut out);
    }
    out
}
