//! Pod Security Standards, as enforced by Kubernetes pod-security-admission at version
//! "latest": the baseline controls always, the restricted ones on top when configured.
//!
//! Values are judged by what is allowed, not by what is forbidden: a field of an unexpected
//! type (say `privileged: "yes"`) is reported rather than ignored.

use serde_json::Value;

use super::Sink;
use super::config::PodSecurityLevel;
use super::ids;
use super::path::FieldPath;
use super::workload::{ContainerRef, Object, PodTemplate, obj, present, show, string};

/// Capabilities a baseline container may add (the container runtime's default set).
const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The one capability a restricted container may add.
const RESTRICTED_ADDABLE_CAPABILITY: &str = "NET_BIND_SERVICE";

/// Namespaced sysctls isolated from other pods (pod-security-admission's latest list).
const SAFE_SYSCTLS: [&str; 14] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
];

/// SELinux types a container may run as.
const SELINUX_TYPES: [&str; 4] = [
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// Inline volume sources the restricted profile accepts (besides `hostPath`, which has its
/// own rule).
const RESTRICTED_VOLUME_SOURCES: [&str; 9] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
const PROFILE_TYPES: &str = "`RuntimeDefault` or `Localhost`";

/// One pod spec plus what several checks need to know about it.
struct Pod<'t, 'a> {
    t: &'t PodTemplate<'a>,
    /// The pod-level `securityContext` and its path.
    sc: Option<&'a Object>,
    sc_path: FieldPath,
    /// `spec.os.name: windows`: the restricted Linux-only controls do not apply.
    windows: bool,
    /// `spec.hostUsers: false`: the pod runs in a user namespace, which relaxes the
    /// run-as-root controls and (baseline only) procMount.
    user_namespace: bool,
}

/// Missing, `null` or `false`: the only values a "must not be true" field may have.
fn unset_or_false(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null | Value::Bool(false)))
}

fn is_profile_type(v: Option<&Value>) -> bool {
    matches!(
        v.and_then(Value::as_str),
        Some("RuntimeDefault" | "Localhost")
    )
}

/// A non-empty value (string or otherwise) in a field that must stay empty.
fn non_empty(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !matches!(v, Value::Null) && v.as_str() != Some(""))
}

fn is_zero(v: &Value) -> bool {
    v.as_f64() == Some(0.0)
        || v.as_str()
            .is_some_and(|s| s.trim().parse::<f64>() == Ok(0.0))
}

fn describe(v: Option<&Value>) -> String {
    v.map_or_else(|| "unset".to_owned(), show)
}

/// Runs the Pod Security Standards checks of `level` on one pod spec.
pub(super) fn check_pod(level: PodSecurityLevel, t: &PodTemplate<'_>, sink: &mut Sink<'_>) {
    let pod = Pod {
        t,
        sc: obj(t.spec, "securityContext"),
        sc_path: t.path.field("securityContext"),
        windows: obj(t.spec, "os").and_then(|os| string(os, "name")) == Some("windows"),
        user_namespace: t.spec.get("hostUsers") == Some(&Value::Bool(false)),
    };
    windows_host_process(&pod, sink);
    host_namespaces(&pod, sink);
    privileged(&pod, sink);
    capabilities_baseline(&pod, sink);
    host_path(&pod, sink);
    host_ports(&pod, sink);
    apparmor(&pod, sink);
    selinux(&pod, sink);
    proc_mount(&pod, level, sink);
    seccomp(&pod, level, sink);
    sysctls(&pod, sink);
    probe_host(&pod, sink);
    if level == PodSecurityLevel::Restricted {
        volume_types(&pod, sink);
        allow_privilege_escalation(&pod, sink);
        run_as_non_root(&pod, sink);
        run_as_user(&pod, sink);
        capabilities_restricted(&pod, sink);
    }
}

/// The pod-level and every container's security context, with paths.
fn security_contexts<'a>(pod: &Pod<'_, 'a>) -> Vec<(Option<&'a Object>, FieldPath)> {
    let mut all = vec![(pod.sc, pod.sc_path.clone())];
    all.extend(pod.t.containers.iter().map(ContainerRef::security_context));
    all
}

fn windows_host_process(pod: &Pod<'_, '_>, sink: &mut Sink<'_>) {
    for (sc, path) in security_contexts(pod) {
        let opts = sc.and_then(|sc| obj(sc, "windowsOptions"));
        let v = opts.and_then(|o| o.get("hostProcess"));
        if !unset_or_false(v) {
            sink.push(
                ids::PSS_WINDOWS_HOST_PROCESS,
                &path.field("windowsOptions").field("hostProcess"),
                format!(
                    "Windows HostProcess containers have privileged access to the host; hostProcess must be unset or false (is {})",
                    describe(v)
                ),
            );
        }
    }
}

fn host_namespaces(pod: &Pod<'_, '_>, sink: &mut Sink<'_>) {
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        let v = pod.t.spec.get(key);
        if !unset_or_false(v) {
            sink.push(
                ids::PSS_HOST_NAMESPACES,
                &pod.t.path.field(key),
                format!(
                    "sharing the host's namespaces is forbidden; {key} must be unset or false (is {})",
                    describe(v)
                ),
            );
        }
    }
}

fn privileged(pod: &Pod<'_, '_>, sink: &mut Sink<'_>) {
    for c in &pod.t.containers {
        let (sc, path) = c.security_context();
        let v = sc.and_then(|sc| sc.get("privileged"));
        if !unset_or_false(v) {
            sink.push(
                ids::PSS_PRIVILEGED,
                &path.field("privileged"),
                format!(
                    "privileged containers are forbidden; privileged must be unset or false (is {})",
                    describe(v)
                ),
            );
        }
    }
}

/// The `capabilities.add` list of a container, with its path; a non-list is reported.
fn added_capabilities<'a>(c: &ContainerRef<'a>) -> (Option<&'a Value>, FieldPath) {
    let (sc, path) = c.security_context();
    let add = sc
        .and_then(|sc| obj(sc, "capabilities"))
        .and_then(|caps| present(caps, "add"));
    (add, path.field("capabilities").field("add"))
}

fn capabilities_baseline(pod: &Pod<'_, '_>, sink: &mut Sink<'_>) {
    for c in &pod.t.containers {
        let (add, path) = added_capabilities(c);
        let Some(add) = add else { continue };
        let Some(list) = add.as_array() else {
            sink.push(
                ids::PSS_CAPABILITIES,
                &path,
                format!(
                    "capabilities.add must be a list of capability names (is {})",
                    show(add)
                ),
            );
            continue;
        };
        for (i, cap) in list.iter().enumerate() {
            let allowed = cap
                .as_str()
                .is_some_and(|s| BASELINE_CAPABILITIES.contains(&s));
            if !allowed {
                sink.push(
                    ids::PSS_CAPABILITIES,
                    &path.index(i),
                    format!(
                        "adding capability {} is forbidden; only the default set may be added ({})",
                        show(cap),
                        BASELINE_CAPABILITIES.join(", ")
                    ),
                );
            }
        }
    }
}

/// The pod's volumes, each with its path.
fn volumes<'a>(pod: &Pod<'_, 'a>) -> Vec<(&'a Object, FieldPath)> {
    let path = pod.t.path.field("volumes");
    pod.t
        .spec
        .get("volumes")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .enumerate()
                .filter_map(|(i, v)| v.as_object().map(|v| (v, path.index(i))))
                .collect()
        })
        .unwrap_or_default()
}

fn host_path(pod: &Pod<'_, '_>, sink: &mut Sink<'_>) {
    for (volume, path) in volumes(pod) {
        if present(volume, "hostPath").is_some() {
            sink.push(
                ids::PSS_HOST_PATH,
                &path.field("hostPath"),
                "hostPath volumes give access to the node's filesystem and are forbidden",
            );
        }
    }
}

fn host_ports(pod: &Pod<'_, '_>, sink: &mut Sink<'_>) {
    for c in &pod.t.containers {
        let Some(ports) = c.value.get("ports").and_then(Value::as_array) else {
            continue;
        };
        let ports_path = c.path.field("ports");
        for (i, port) in ports.iter().enumerate() {
            let v = port.as_object().and_then(|p| present(p, "hostPort"));
            if let Some(v) = v.filter(|v| !is_zero(v)) {
                sink.push(
                    ids::PSS_HOST_PORTS,
                    &ports_path.index(i).field("hostPort"),
                    format!(
                        "host ports are forbidden; hostPort must be unset or 0 (is {})",
                        show(v)
                    ),
                );
            }
        }
    }
}

fn apparmor(pod: &Pod<'_, '_>, sink: &mut Sink<'_>) {
    for (sc, path) in security_contexts(pod) {
        let Some(profile) = sc.and_then(|sc| present(sc, "appArmorProfile")) else {
            continue;
        };
        let kind = profile.as_object().and_then(|p| p.get("type"));
        if !is_profile_type(kind) {
            sink.push(
                ids::PSS_APPARMOR,
                &path.field("appArmorProfile").field("type"),
                format!(
                    "AppArmor profile type must be {PROFILE_TYPES} (is {})",
                    describe(kind)
                ),
            );
        }
    }
    for (annotations, path) in &pod.t.annotations {
        for (key, value) in annotations.iter() {
            if !key.starts_with(APPARMOR_ANNOTATION_PREFIX) {
                continue;
            }
            let allowed = value.as_str().is_some_and(|v| {
                v.is_empty() || v == "runtime/default" || v.starts_with("localhost/")
            });
            if !allowed {
                sink.push(
                    ids::PSS_APPARMOR,
                    &path.key(key),
                    format!(
                        "AppArmor annotation must be `runtime/default` or `localhost/<profile>` (is {})",
                        show(value)
                    ),
                );
            }
        }
    }
}

fn selinux(pod: &Pod<'_, '_>, sink: &mut Sink<'_>) {
    for (sc, path) in security_contexts(pod) {
        let Some(opts) = sc.and_then(|sc| present(sc, "seLinuxOptions")) else {
            continue;
        };
        let path = path.field("seLinuxOptions");
        let Some(opts) = opts.as_object() else {
            sink.push(ids::PSS_SELINUX, &path, "seLinuxOptions must be an object");
            continue;
        };
        if let Some(t) = non_empty(opts.get("type"))
            && !t.as_str().is_some_and(|t| SELINUX_TYPES.contains(&t))
        {
            sink.push(
                ids::PSS_SELINUX,
                &path.field("type"),
                format!(
                    "SELinux type must be unset or one of {} (is {})",
                    SELINUX_TYPES.join(", "),
                    show(t)
                ),
            );
        }
        for key in ["user", "role"] {
            if let Some(v) = non_empty(opts.get(key)) {
                sink.push(
                    ids::PSS_SELINUX,
                    &path.field(key),
                    format!(
                        "a custom SELinux {key} is forbidden; leave it unset (is {})",
                        show(v)
                    ),
                );
            }
        }
    }
}

fn proc_mount(pod: &Pod<'_, '_>, level: PodSecurityLevel, sink: &mut Sink<'_>) {
    // Baseline lets user-namespaced pods unmask /proc; restricted never does.
    if level == PodSecurityLevel::Baseline && pod.user_namespace {
        return;
    }
    for c in &pod.t.containers {
        let (sc, path) = c.security_context();
        let Some(v) = sc.and_then(|sc| present(sc, "procMount")) else {
            continue;
        };
        if v.as_str() != Some("Default") {
            sink.push(
                ids::PSS_PROC_MOUNT,
                &path.field("procMount"),
                format!("procMount must be unset or `Default` (is {})", show(v)),
            );
        }
    }
}

/// `Some(type)` when a seccomp profile is set (the type itself may be missing).
fn seccomp_type(sc: Option<&Object>) -> Option<Option<&Value>> {
    sc.and_then(|sc| present(sc, "seccompProfile"))
        .map(|p| p.as_object().and_then(|p| p.get("type")))
}

fn seccomp(pod: &Pod<'_, '_>, level: PodSecurityLevel, sink: &mut Sink<'_>) {
    // Explicitly set profiles must be RuntimeDefault or Localhost at both levels.
    for (sc, path) in security_contexts(pod) {
        if let Some(t) = seccomp_type(sc)
            && !is_profile_type(t)
        {
            sink.push(
                ids::PSS_SECCOMP,
                &path.field("seccompProfile").field("type"),
                format!(
                    "seccomp profile type must be {PROFILE_TYPES} (is {})",
                    describe(t)
                ),
            );
        }
    }
    // Restricted: every container needs a profile, its own or a valid pod-level one.
    if level != PodSecurityLevel::Restricted || pod.windows {
        return;
    }
    // A pod-level profile, valid or not, covers containers without their own (an invalid
    // one was reported above).
    if seccomp_type(pod.sc).is_some() {
        return;
    }
    for c in &pod.t.containers {
        let (sc, path) = c.security_context();
        if seccomp_type(sc).is_none() {
            sink.push(
                ids::PSS_SECCOMP,
                &path.field("seccompProfile").field("type"),
                format!(
                    "restricted pods need a seccomp profile: set seccompProfile.type to {PROFILE_TYPES} here or in {}",
                    pod.sc_path
                ),
            );
        }
    }
}

fn sysctls(pod: &Pod<'_, '_>, sink: &mut Sink<'_>) {
    let Some(list) = pod.sc.and_then(|sc| present(sc, "sysctls")) else {
        return;
    };
    let path = pod.sc_path.field("sysctls");
    let Some(list) = list.as_array() else {
        sink.push(ids::PSS_SYSCTLS, &path, "sysctls must be a list");
        return;
    };
    for (i, entry) in list.iter().enumerate() {
        let name = entry.as_object().and_then(|e| e.get("name"));
        if !name
            .and_then(Value::as_str)
            .is_some_and(|n| SAFE_SYSCTLS.contains(&n))
        {
            sink.push(
                ids::PSS_SYSCTLS,
                &path.index(i).field("name"),
                format!(
                    "sysctl {} is not in the safe set ({})",
                    describe(name),
                    SAFE_SYSCTLS.join(", ")
                ),
            );
        }
    }
}

fn probe_host(pod: &Pod<'_, '_>, sink: &mut Sink<'_>) {
    for c in &pod.t.containers {
        let mut handlers: Vec<(Option<&Object>, FieldPath)> =
            ["livenessProbe", "readinessProbe", "startupProbe"]
                .into_iter()
                .map(|p| (obj(c.value, p), c.path.field(p)))
                .collect();
        let lifecycle = obj(c.value, "lifecycle");
        let lifecycle_path = c.path.field("lifecycle");
        for hook in ["postStart", "preStop"] {
            handlers.push((
                lifecycle.and_then(|l| obj(l, hook)),
                lifecycle_path.field(hook),
            ));
        }
        for (handler, path) in handlers {
            let Some(handler) = handler else { continue };
            for action in ["httpGet", "tcpSocket"] {
                let host = obj(handler, action).and_then(|a| non_empty(a.get("host")));
                if let Some(host) = host {
                    sink.push(
                        ids::PSS_PROBE_HOST,
                        &path.field(action).field("host"),
                        format!(
                            "probes and lifecycle hooks must not target another host; leave host unset (is {})",
                            show(host)
                        ),
                    );
                }
            }
        }
    }
}

fn volume_types(pod: &Pod<'_, '_>, sink: &mut Sink<'_>) {
    for (volume, path) in volumes(pod) {
        for (key, value) in volume {
            // `hostPath` is reported by pss-host-path.
            if key == "name" || key == "hostPath" || value.is_null() {
                continue;
            }
            if !RESTRICTED_VOLUME_SOURCES.contains(&key.as_str()) {
                sink.push(
                    ids::PSS_VOLUME_TYPES,
                    &path.key(key),
                    format!(
                        "volume type `{key}` is not allowed by the restricted profile; use one of {}",
                        RESTRICTED_VOLUME_SOURCES.join(", ")
                    ),
                );
            }
        }
    }
}

fn allow_privilege_escalation(pod: &Pod<'_, '_>, sink: &mut Sink<'_>) {
    if pod.windows {
        return;
    }
    for c in &pod.t.containers {
        let (sc, path) = c.security_context();
        let v = sc.and_then(|sc| sc.get("allowPrivilegeEscalation"));
        if v != Some(&Value::Bool(false)) {
            sink.push(
                ids::PSS_ALLOW_PRIVILEGE_ESCALATION,
                &path.field("allowPrivilegeEscalation"),
                format!(
                    "allowPrivilegeEscalation must be set to false (is {}; unset means true)",
                    describe(v)
                ),
            );
        }
    }
}

fn run_as_non_root(pod: &Pod<'_, '_>, sink: &mut Sink<'_>) {
    if pod.user_namespace {
        return;
    }
    let pod_value = pod.sc.and_then(|sc| present(sc, "runAsNonRoot"));
    if let Some(v) = pod_value.filter(|v| **v != Value::Bool(true)) {
        sink.push(
            ids::PSS_RUN_AS_NON_ROOT,
            &pod.sc_path.field("runAsNonRoot"),
            format!("runAsNonRoot must be true (is {})", show(v)),
        );
    }
    for c in &pod.t.containers {
        let (sc, path) = c.security_context();
        let path = path.field("runAsNonRoot");
        match sc.and_then(|sc| present(sc, "runAsNonRoot")) {
            Some(Value::Bool(true)) => {}
            Some(v) => sink.push(
                ids::PSS_RUN_AS_NON_ROOT,
                &path,
                format!("runAsNonRoot must be true (is {})", show(v)),
            ),
            // A pod-level value that is not true was reported above.
            None if pod_value.is_none() => sink.push(
                ids::PSS_RUN_AS_NON_ROOT,
                &path,
                format!(
                    "containers must run as non-root: set runAsNonRoot: true here or in {}",
                    pod.sc_path
                ),
            ),
            None => {}
        }
    }
}

fn run_as_user(pod: &Pod<'_, '_>, sink: &mut Sink<'_>) {
    if pod.user_namespace {
        return;
    }
    for (sc, path) in security_contexts(pod) {
        if sc
            .and_then(|sc| present(sc, "runAsUser"))
            .is_some_and(is_zero)
        {
            sink.push(
                ids::PSS_RUN_AS_USER,
                &path.field("runAsUser"),
                "runAsUser must not be 0 (root); use a non-zero user id",
            );
        }
    }
}

fn capabilities_restricted(pod: &Pod<'_, '_>, sink: &mut Sink<'_>) {
    if pod.windows {
        return;
    }
    for c in &pod.t.containers {
        let (sc, path) = c.security_context();
        let caps_path = path.field("capabilities");
        let caps = sc.and_then(|sc| obj(sc, "capabilities"));
        let drops_all = caps
            .and_then(|caps| caps.get("drop"))
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|c| c.as_str() == Some("ALL")));
        if !drops_all {
            sink.push(
                ids::PSS_RESTRICTED_CAPABILITIES,
                &caps_path.field("drop"),
                r#"restricted containers must drop all capabilities: set capabilities.drop: ["ALL"]"#,
            );
        }
        let (add, add_path) = added_capabilities(c);
        let Some(list) = add.and_then(Value::as_array) else {
            continue;
        };
        for (i, cap) in list.iter().enumerate() {
            // Capabilities outside the baseline set were reported by pss-capabilities.
            let Some(name) = cap.as_str() else { continue };
            if name != RESTRICTED_ADDABLE_CAPABILITY && BASELINE_CAPABILITIES.contains(&name) {
                sink.push(
                    ids::PSS_RESTRICTED_CAPABILITIES,
                    &add_path.index(i),
                    format!(
                        "restricted containers may only add {RESTRICTED_ADDABLE_CAPABILITY} (adds {name})"
                    ),
                );
            }
        }
    }
}
