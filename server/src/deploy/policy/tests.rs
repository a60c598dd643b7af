//! Rule-by-rule tests: for each rule a violating and a passing manifest, with the exact
//! rule id, object and field path.

use serde_json::{Value, json};

use super::{
    PodSecurityLevel, PolicyConfig, Scope, Violation, check, ids, is_cluster_scoped,
    parse_manifests,
};

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: team-a
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: app
          image: ghcr.io/acme/web:1.2.3
          ports: [{containerPort: 8080}]
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {cpu: "1", memory: 256Mi}
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
      volumes:
        - name: cfg
          configMap: {name: web}
"#;

const OBJ: &str = "Deployment/team-a/web";
const POD: &str = "spec.template.spec";
const C0: &str = "spec.template.spec.containers[0]";

fn policy(level: PodSecurityLevel) -> PolicyConfig {
    PolicyConfig {
        pod_security: level,
        allowed_registries: vec!["ghcr.io/acme".to_owned()],
        ..PolicyConfig::default()
    }
}

fn namespaces() -> Vec<String> {
    vec!["team-a".to_owned()]
}

fn run_with(policy: &PolicyConfig, objects: &[Value]) -> Vec<Violation> {
    let allowed = namespaces();
    let scope = Scope {
        allowed_namespaces: &allowed,
        default_namespace: "team-a",
    };
    check(policy, &scope, objects, 100)
}

fn run(level: PodSecurityLevel, object: &Value) -> Vec<Violation> {
    run_with(&policy(level), std::slice::from_ref(object))
}

fn yaml(text: &str) -> Value {
    let mut docs = parse_manifests(text, "test.yaml").expect("test manifest parses");
    assert_eq!(docs.len(), 1, "one document expected");
    docs.remove(0)
}

fn deployment() -> Value {
    yaml(DEPLOYMENT)
}

/// Sets `pointer` (a JSON pointer) to `new`, creating missing objects on the way.
fn set(mut v: Value, pointer: &str, new: Value) -> Value {
    let mut cur = &mut v;
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        cur = match cur {
            Value::Array(list) => {
                let i = part.parse::<usize>().expect("index");
                if i == list.len() {
                    list.push(Value::Null);
                }
                &mut list[i]
            }
            other => {
                if !other.is_object() {
                    *other = json!({});
                }
                other
                    .as_object_mut()
                    .expect("object")
                    .entry(part)
                    .or_insert(Value::Null)
            }
        };
    }
    *cur = new;
    v
}

/// Removes the field at `pointer`.
fn unset(mut v: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    if let Some(Value::Object(map)) = v.pointer_mut(parent) {
        map.remove(&key.replace("~1", "/").replace("~0", "~"));
    }
    v
}

const DEP_C0: &str = "/spec/template/spec/containers/0";
const DEP_C0_SC: &str = "/spec/template/spec/containers/0/securityContext";
const DEP_POD: &str = "/spec/template/spec";

fn paths(vs: &[Violation]) -> Vec<(&'static str, &str, &str)> {
    vs.iter()
        .map(|v| (v.rule, v.object.as_str(), v.path.as_str()))
        .collect()
}

#[track_caller]
fn assert_one(vs: &[Violation], rule: &str, object: &str, path: &str) {
    assert_eq!(
        paths(vs),
        vec![(rule_static(rule), object, path)],
        "{vs:#?}"
    );
}

fn rule_static(rule: &str) -> &'static str {
    ids::ALL
        .iter()
        .copied()
        .find(|r| *r == rule)
        .expect("known rule id")
}

#[track_caller]
fn assert_clean(vs: &[Violation]) {
    assert!(vs.is_empty(), "expected no violations, got {vs:#?}");
}

use PodSecurityLevel::{Baseline, Restricted};

#[test]
fn compliant_restricted_deployment_has_no_violations() {
    assert_clean(&run(Restricted, &deployment()));
    assert_clean(&run(Baseline, &deployment()));
}

#[test]
fn minimal_pod_passes_baseline_but_not_restricted() {
    let pod = yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: app\n    image: ghcr.io/acme/app:1\n    resources: {requests: {cpu: 1, memory: 1Gi}, limits: {cpu: 1, memory: 1Gi}}\n",
    );
    assert_clean(&run(Baseline, &pod));
    let rules: Vec<_> = run(Restricted, &pod)
        .iter()
        .map(|v| (v.rule, v.path.clone()))
        .collect();
    let sc = "spec.containers[0].securityContext";
    assert_eq!(
        rules,
        vec![
            (ids::PSS_SECCOMP, format!("{sc}.seccompProfile.type")),
            (
                ids::PSS_ALLOW_PRIVILEGE_ESCALATION,
                format!("{sc}.allowPrivilegeEscalation")
            ),
            (ids::PSS_RUN_AS_NON_ROOT, format!("{sc}.runAsNonRoot")),
            (
                ids::PSS_RESTRICTED_CAPABILITIES,
                format!("{sc}.capabilities.drop")
            ),
        ]
    );
}

#[test]
fn windows_host_process() {
    let bad = set(
        deployment(),
        &format!("{DEP_C0_SC}/windowsOptions/hostProcess"),
        json!(true),
    );
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_WINDOWS_HOST_PROCESS,
        OBJ,
        &format!("{C0}.securityContext.windowsOptions.hostProcess"),
    );
    let bad = set(
        deployment(),
        &format!("{DEP_POD}/securityContext/windowsOptions/hostProcess"),
        json!(true),
    );
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_WINDOWS_HOST_PROCESS,
        OBJ,
        &format!("{POD}.securityContext.windowsOptions.hostProcess"),
    );
    let ok = set(
        deployment(),
        &format!("{DEP_C0_SC}/windowsOptions/hostProcess"),
        json!(false),
    );
    assert_clean(&run(Restricted, &ok));
}

#[test]
fn host_namespaces() {
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        let bad = set(deployment(), &format!("{DEP_POD}/{key}"), json!(true));
        assert_one(
            &run(Baseline, &bad),
            ids::PSS_HOST_NAMESPACES,
            OBJ,
            &format!("{POD}.{key}"),
        );
        let ok = set(deployment(), &format!("{DEP_POD}/{key}"), json!(false));
        assert_clean(&run(Restricted, &ok));
    }
}

#[test]
fn privileged() {
    let bad = set(
        deployment(),
        &format!("{DEP_C0_SC}/privileged"),
        json!(true),
    );
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_PRIVILEGED,
        OBJ,
        &format!("{C0}.securityContext.privileged"),
    );
    // A value of the wrong type is not taken as "false".
    let odd = set(
        deployment(),
        &format!("{DEP_C0_SC}/privileged"),
        json!("yes"),
    );
    assert_one(
        &run(Baseline, &odd),
        ids::PSS_PRIVILEGED,
        OBJ,
        &format!("{C0}.securityContext.privileged"),
    );
    let ok = set(
        deployment(),
        &format!("{DEP_C0_SC}/privileged"),
        json!(false),
    );
    assert_clean(&run(Restricted, &ok));
}

#[test]
fn baseline_capabilities() {
    let bad = set(
        deployment(),
        &format!("{DEP_C0_SC}/capabilities/add"),
        json!(["NET_BIND_SERVICE", "SYS_ADMIN"]),
    );
    let path = format!("{C0}.securityContext.capabilities.add[1]");
    assert_one(&run(Baseline, &bad), ids::PSS_CAPABILITIES, OBJ, &path);
    // Reported once, under the baseline rule, at the restricted level too.
    assert_one(&run(Restricted, &bad), ids::PSS_CAPABILITIES, OBJ, &path);
    let ok = set(
        deployment(),
        &format!("{DEP_C0_SC}/capabilities/add"),
        json!(["CHOWN", "KILL"]),
    );
    assert_clean(&run(Baseline, &ok));
}

#[test]
fn restricted_capabilities() {
    let no_drop = unset(deployment(), &format!("{DEP_C0_SC}/capabilities"));
    assert_clean(&run(Baseline, &no_drop));
    assert_one(
        &run(Restricted, &no_drop),
        ids::PSS_RESTRICTED_CAPABILITIES,
        OBJ,
        &format!("{C0}.securityContext.capabilities.drop"),
    );
    let adds = set(
        deployment(),
        &format!("{DEP_C0_SC}/capabilities/add"),
        json!(["CHOWN"]),
    );
    assert_clean(&run(Baseline, &adds));
    assert_one(
        &run(Restricted, &adds),
        ids::PSS_RESTRICTED_CAPABILITIES,
        OBJ,
        &format!("{C0}.securityContext.capabilities.add[0]"),
    );
    let ok = set(
        deployment(),
        &format!("{DEP_C0_SC}/capabilities/add"),
        json!(["NET_BIND_SERVICE"]),
    );
    assert_clean(&run(Restricted, &ok));
}

#[test]
fn host_path_volumes() {
    let bad = set(
        deployment(),
        &format!("{DEP_POD}/volumes/0"),
        json!({"name": "h", "hostPath": {"path": "/"}}),
    );
    for level in [Baseline, Restricted] {
        assert_one(
            &run(level, &bad),
            ids::PSS_HOST_PATH,
            OBJ,
            &format!("{POD}.volumes[0].hostPath"),
        );
    }
    let ok = set(
        deployment(),
        &format!("{DEP_POD}/volumes/0"),
        json!({"name": "e", "emptyDir": {}}),
    );
    assert_clean(&run(Restricted, &ok));
}

#[test]
fn host_ports() {
    let bad = set(
        deployment(),
        &format!("{DEP_C0}/ports/0/hostPort"),
        json!(8080),
    );
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_HOST_PORTS,
        OBJ,
        &format!("{C0}.ports[0].hostPort"),
    );
    let ok = set(
        deployment(),
        &format!("{DEP_C0}/ports/0/hostPort"),
        json!(0),
    );
    assert_clean(&run(Restricted, &ok));
}

#[test]
fn apparmor_annotations_and_fields() {
    let key = "container.apparmor.security.beta.kubernetes.io/app";
    let bad = set(
        deployment(),
        "/spec/template/metadata/annotations",
        json!({ key: "unconfined" }),
    );
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_APPARMOR,
        OBJ,
        &format!("spec.template.metadata.annotations[\"{key}\"]"),
    );
    for good in ["runtime/default", "localhost/my-profile", ""] {
        let ok = set(
            deployment(),
            "/spec/template/metadata/annotations",
            json!({ key: good }),
        );
        assert_clean(&run(Restricted, &ok));
    }
    // Pod annotations of a Pod live in the object's own metadata.
    let pod = yaml(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    {key}: unconfined\nspec:\n  containers: []\n"
    ));
    assert_one(
        &run(Baseline, &pod),
        ids::PSS_APPARMOR,
        "Pod/team-a/p",
        &format!("metadata.annotations[\"{key}\"]"),
    );

    let bad = set(
        deployment(),
        &format!("{DEP_C0_SC}/appArmorProfile"),
        json!({"type": "Unconfined"}),
    );
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_APPARMOR,
        OBJ,
        &format!("{C0}.securityContext.appArmorProfile.type"),
    );
    let bad = set(
        deployment(),
        &format!("{DEP_POD}/securityContext/appArmorProfile"),
        json!({}),
    );
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_APPARMOR,
        OBJ,
        &format!("{POD}.securityContext.appArmorProfile.type"),
    );
    let ok = set(
        deployment(),
        &format!("{DEP_C0_SC}/appArmorProfile"),
        json!({"type": "Localhost", "localhostProfile": "p"}),
    );
    assert_clean(&run(Restricted, &ok));
}

#[test]
fn selinux() {
    let p = format!("{C0}.securityContext.seLinuxOptions");
    let bad = set(
        deployment(),
        &format!("{DEP_C0_SC}/seLinuxOptions"),
        json!({"type": "spc_t"}),
    );
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_SELINUX,
        OBJ,
        &format!("{p}.type"),
    );
    let bad = set(
        deployment(),
        &format!("{DEP_C0_SC}/seLinuxOptions"),
        json!({"user": "system_u"}),
    );
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_SELINUX,
        OBJ,
        &format!("{p}.user"),
    );
    let bad = set(
        deployment(),
        &format!("{DEP_POD}/securityContext/seLinuxOptions"),
        json!({"role": "sysadm_r"}),
    );
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_SELINUX,
        OBJ,
        &format!("{POD}.securityContext.seLinuxOptions.role"),
    );
    for t in [
        "container_t",
        "container_init_t",
        "container_kvm_t",
        "container_engine_t",
        "",
    ] {
        let ok = set(
            deployment(),
            &format!("{DEP_C0_SC}/seLinuxOptions"),
            json!({"type": t, "level": "s0:c123,c456", "user": ""}),
        );
        assert_clean(&run(Restricted, &ok));
    }
}

#[test]
fn proc_mount() {
    let bad = set(
        deployment(),
        &format!("{DEP_C0_SC}/procMount"),
        json!("Unmasked"),
    );
    let path = format!("{C0}.securityContext.procMount");
    assert_one(&run(Baseline, &bad), ids::PSS_PROC_MOUNT, OBJ, &path);
    // In a user namespace baseline allows it, restricted does not.
    let userns = set(bad, &format!("{DEP_POD}/hostUsers"), json!(false));
    assert_clean(&run(Baseline, &userns));
    assert_one(&run(Restricted, &userns), ids::PSS_PROC_MOUNT, OBJ, &path);
    let ok = set(
        deployment(),
        &format!("{DEP_C0_SC}/procMount"),
        json!("Default"),
    );
    assert_clean(&run(Restricted, &ok));
}

#[test]
fn seccomp() {
    let bad = set(
        deployment(),
        &format!("{DEP_POD}/securityContext/seccompProfile/type"),
        json!("Unconfined"),
    );
    let pod_path = format!("{POD}.securityContext.seccompProfile.type");
    assert_one(&run(Baseline, &bad), ids::PSS_SECCOMP, OBJ, &pod_path);
    assert_one(&run(Restricted, &bad), ids::PSS_SECCOMP, OBJ, &pod_path);
    // Missing everywhere: fine for baseline, not for restricted.
    let missing = unset(
        deployment(),
        &format!("{DEP_POD}/securityContext/seccompProfile"),
    );
    assert_clean(&run(Baseline, &missing));
    assert_one(
        &run(Restricted, &missing),
        ids::PSS_SECCOMP,
        OBJ,
        &format!("{C0}.securityContext.seccompProfile.type"),
    );
    // A container-level profile is enough.
    let ok = set(
        missing.clone(),
        &format!("{DEP_C0_SC}/seccompProfile"),
        json!({"type": "Localhost", "localhostProfile": "x.json"}),
    );
    assert_clean(&run(Restricted, &ok));
    let bad = set(
        missing,
        &format!("{DEP_C0_SC}/seccompProfile"),
        json!({"type": "Unconfined"}),
    );
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_SECCOMP,
        OBJ,
        &format!("{C0}.securityContext.seccompProfile.type"),
    );
}

#[test]
fn sysctls() {
    let bad = set(
        deployment(),
        &format!("{DEP_POD}/securityContext/sysctls"),
        json!([{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}, {"name": "kernel.msgmax", "value": "1"}]),
    );
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_SYSCTLS,
        OBJ,
        &format!("{POD}.securityContext.sysctls[1].name"),
    );
    let ok = set(
        deployment(),
        &format!("{DEP_POD}/securityContext/sysctls"),
        json!([{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}, {"name": "kernel.shm_rmid_forced", "value": "1"}]),
    );
    assert_clean(&run(Restricted, &ok));
}

#[test]
fn probe_and_lifecycle_hosts() {
    let bad = set(
        deployment(),
        &format!("{DEP_C0}/livenessProbe"),
        json!({"httpGet": {"host": "10.0.0.1", "port": 80}}),
    );
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_PROBE_HOST,
        OBJ,
        &format!("{C0}.livenessProbe.httpGet.host"),
    );
    let bad = set(
        deployment(),
        &format!("{DEP_C0}/lifecycle/preStop"),
        json!({"tcpSocket": {"host": "db", "port": 5432}}),
    );
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_PROBE_HOST,
        OBJ,
        &format!("{C0}.lifecycle.preStop.tcpSocket.host"),
    );
    let ok = set(
        deployment(),
        &format!("{DEP_C0}/readinessProbe"),
        json!({"httpGet": {"host": "", "path": "/", "port": 80}}),
    );
    assert_clean(&run(Restricted, &ok));
}

#[test]
fn restricted_volume_types() {
    let nfs = set(
        deployment(),
        &format!("{DEP_POD}/volumes/0"),
        json!({"name": "n", "nfs": {"server": "s", "path": "/"}}),
    );
    assert_clean(&run(Baseline, &nfs));
    assert_one(
        &run(Restricted, &nfs),
        ids::PSS_VOLUME_TYPES,
        OBJ,
        &format!("{POD}.volumes[0].nfs"),
    );
    for source in [
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ] {
        let ok = set(
            deployment(),
            &format!("{DEP_POD}/volumes/0"),
            json!({"name": "v", source: {}}),
        );
        assert_clean(&run(Restricted, &ok));
    }
}

#[test]
fn allow_privilege_escalation() {
    let missing = unset(
        deployment(),
        &format!("{DEP_C0_SC}/allowPrivilegeEscalation"),
    );
    let path = format!("{C0}.securityContext.allowPrivilegeEscalation");
    assert_clean(&run(Baseline, &missing));
    assert_one(
        &run(Restricted, &missing),
        ids::PSS_ALLOW_PRIVILEGE_ESCALATION,
        OBJ,
        &path,
    );
    let yes = set(
        deployment(),
        &format!("{DEP_C0_SC}/allowPrivilegeEscalation"),
        json!(true),
    );
    assert_clean(&run(Baseline, &yes));
    assert_one(
        &run(Restricted, &yes),
        ids::PSS_ALLOW_PRIVILEGE_ESCALATION,
        OBJ,
        &path,
    );
    // Windows pods cannot set it.
    let windows = set(
        missing,
        &format!("{DEP_POD}/os"),
        json!({"name": "windows"}),
    );
    assert_clean(&run(Restricted, &windows));
}

#[test]
fn run_as_non_root() {
    let missing = unset(
        deployment(),
        &format!("{DEP_POD}/securityContext/runAsNonRoot"),
    );
    assert_clean(&run(Baseline, &missing));
    let c_path = format!("{C0}.securityContext.runAsNonRoot");
    assert_one(
        &run(Restricted, &missing),
        ids::PSS_RUN_AS_NON_ROOT,
        OBJ,
        &c_path,
    );
    let per_container = set(
        missing.clone(),
        &format!("{DEP_C0_SC}/runAsNonRoot"),
        json!(true),
    );
    assert_clean(&run(Restricted, &per_container));
    let pod_false = set(
        deployment(),
        &format!("{DEP_POD}/securityContext/runAsNonRoot"),
        json!(false),
    );
    assert_one(
        &run(Restricted, &pod_false),
        ids::PSS_RUN_AS_NON_ROOT,
        OBJ,
        &format!("{POD}.securityContext.runAsNonRoot"),
    );
    let container_false = set(
        deployment(),
        &format!("{DEP_C0_SC}/runAsNonRoot"),
        json!(false),
    );
    assert_one(
        &run(Restricted, &container_false),
        ids::PSS_RUN_AS_NON_ROOT,
        OBJ,
        &c_path,
    );
    let userns = set(missing, &format!("{DEP_POD}/hostUsers"), json!(false));
    assert_clean(&run(Restricted, &userns));
}

#[test]
fn run_as_user() {
    let bad = set(deployment(), &format!("{DEP_C0_SC}/runAsUser"), json!(0));
    assert_clean(&run(Baseline, &bad));
    assert_one(
        &run(Restricted, &bad),
        ids::PSS_RUN_AS_USER,
        OBJ,
        &format!("{C0}.securityContext.runAsUser"),
    );
    let pod = set(
        deployment(),
        &format!("{DEP_POD}/securityContext/runAsUser"),
        json!(0),
    );
    assert_one(
        &run(Restricted, &pod),
        ids::PSS_RUN_AS_USER,
        OBJ,
        &format!("{POD}.securityContext.runAsUser"),
    );
    let ok = set(deployment(), &format!("{DEP_C0_SC}/runAsUser"), json!(1000));
    assert_clean(&run(Restricted, &ok));
    let userns = set(bad, &format!("{DEP_POD}/hostUsers"), json!(false));
    assert_clean(&run(Restricted, &userns));
}

#[test]
fn pss_covers_init_and_ephemeral_containers() {
    let mut d = deployment();
    let c = d.pointer(DEP_C0).cloned().expect("container");
    d = set(d, &format!("{DEP_POD}/initContainers"), json!([c.clone()]));
    d = set(
        d,
        &format!("{DEP_POD}/initContainers/0/securityContext/privileged"),
        json!(true),
    );
    assert_one(
        &run(Restricted, &d),
        ids::PSS_PRIVILEGED,
        OBJ,
        "spec.template.spec.initContainers[0].securityContext.privileged",
    );
    let mut e = c;
    e = unset(e, "/resources");
    e = set(
        e,
        "/securityContext/capabilities/add",
        json!(["SYS_PTRACE"]),
    );
    let d = set(
        deployment(),
        &format!("{DEP_POD}/ephemeralContainers"),
        json!([e]),
    );
    assert_one(
        &run(Restricted, &d),
        ids::PSS_CAPABILITIES,
        OBJ,
        "spec.template.spec.ephemeralContainers[0].securityContext.capabilities.add[0]",
    );
}

#[test]
fn cronjob_and_generic_templates_are_checked() {
    let cron = yaml(
        r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: team-a}
spec:
  schedule: "0 1 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          hostPID: true
          containers: []
"#,
    );
    assert_one(
        &run(Baseline, &cron),
        ids::PSS_HOST_NAMESPACES,
        "CronJob/team-a/nightly",
        "spec.jobTemplate.spec.template.spec.hostPID",
    );
    let rollout = yaml(
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec:\n  replicas: 9\n  template:\n    spec:\n      hostIPC: true\n      containers: []\n",
    );
    let vs = run(Baseline, &rollout);
    assert_eq!(
        paths(&vs),
        vec![
            (
                ids::PSS_HOST_NAMESPACES,
                "Rollout/team-a/r",
                "spec.template.spec.hostIPC"
            ),
            (ids::MAX_REPLICAS, "Rollout/team-a/r", "spec.replicas"),
        ]
    );
}

const ISVC: &str = r#"
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: llm, namespace: team-a}
spec:
  predictor:
    minReplicas: 1
    maxReplicas: 2
    securityContext:
      runAsNonRoot: true
      seccompProfile: {type: RuntimeDefault}
    model:
      modelFormat: {name: huggingface}
      storageUri: hf://acme/model
      resources:
        requests: {cpu: "2", memory: 8Gi}
        limits: {cpu: "4", memory: 16Gi}
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
"#;

const ISVC_OBJ: &str = "InferenceService/team-a/llm";

#[test]
fn inference_service_compliant_and_violations() {
    let isvc = yaml(ISVC);
    assert_clean(&run(Restricted, &isvc));
    let bad = set(
        isvc.clone(),
        "/spec/predictor/model/securityContext/privileged",
        json!(true),
    );
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_PRIVILEGED,
        ISVC_OBJ,
        "spec.predictor.model.securityContext.privileged",
    );
    let bad = set(isvc.clone(), "/spec/predictor/hostNetwork", json!(true));
    assert_one(
        &run(Baseline, &bad),
        ids::PSS_HOST_NAMESPACES,
        ISVC_OBJ,
        "spec.predictor.hostNetwork",
    );
    let bad = unset(isvc.clone(), "/spec/predictor/model/resources/limits");
    let vs = run(Restricted, &bad);
    assert_eq!(
        paths(&vs),
        vec![
            (
                ids::RESOURCES_REQUIRED,
                ISVC_OBJ,
                "spec.predictor.model.resources.limits.cpu"
            ),
            (
                ids::RESOURCES_REQUIRED,
                ISVC_OBJ,
                "spec.predictor.model.resources.limits.memory"
            ),
        ]
    );
    let bad = set(
        isvc.clone(),
        "/spec/predictor/model/image",
        json!("evil.io/x:1"),
    );
    assert_one(
        &run(Restricted, &bad),
        ids::IMAGE_REGISTRY,
        ISVC_OBJ,
        "spec.predictor.model.image",
    );
    let custom = set(
        isvc,
        "/spec/predictor/containers",
        json!([{"name": "kserve-container", "image": "ghcr.io/acme/srv:2",
            "resources": {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"cpu": 1, "memory": "1Gi"}},
            "securityContext": {"allowPrivilegeEscalation": true, "capabilities": {"drop": ["ALL"]}}}]),
    );
    assert_one(
        &run(Restricted, &custom),
        ids::PSS_ALLOW_PRIVILEGE_ESCALATION,
        ISVC_OBJ,
        "spec.predictor.containers[0].securityContext.allowPrivilegeEscalation",
    );
}

#[test]
fn resources_required() {
    let bad = unset(deployment(), &format!("{DEP_C0}/resources/limits/memory"));
    assert_one(
        &run(Baseline, &bad),
        ids::RESOURCES_REQUIRED,
        OBJ,
        &format!("{C0}.resources.limits.memory"),
    );
    let c = deployment().pointer(DEP_C0).cloned().expect("container");
    let init = set(
        deployment(),
        &format!("{DEP_POD}/initContainers"),
        json!([unset(c, "/resources")]),
    );
    let vs = run(Baseline, &init);
    let got: Vec<_> = vs.iter().map(|v| v.path.as_str()).collect();
    let base = "spec.template.spec.initContainers[0].resources";
    assert_eq!(
        got,
        vec![
            format!("{base}.requests.cpu"),
            format!("{base}.requests.memory"),
            format!("{base}.limits.cpu"),
            format!("{base}.limits.memory"),
        ]
    );
    assert!(vs.iter().all(|v| v.rule == ids::RESOURCES_REQUIRED));
    let relaxed = PolicyConfig {
        require_resources: false,
        ..policy(Restricted)
    };
    assert_clean(&run_with(&relaxed, &[init]));
}

#[test]
fn image_registry() {
    let path = format!("{C0}.image");
    for image in ["docker.io/evil/x:1", "ghcr.io/acme-evil/x:1", "nginx:1.25"] {
        let bad = set(deployment(), &format!("{DEP_C0}/image"), json!(image));
        assert_one(&run(Baseline, &bad), ids::IMAGE_REGISTRY, OBJ, &path);
    }
    let nothing_allowed = PolicyConfig {
        allowed_registries: Vec::new(),
        ..policy(Restricted)
    };
    let vs = run_with(&nothing_allowed, &[deployment()]);
    assert_one(&vs, ids::IMAGE_REGISTRY, OBJ, &path);
    assert!(
        vs[0].message.contains("`allowed_registries`"),
        "{}",
        vs[0].message
    );
    let hub = PolicyConfig {
        allowed_registries: vec!["docker.io/library".to_owned()],
        ..policy(Restricted)
    };
    let ok = set(
        deployment(),
        &format!("{DEP_C0}/image"),
        json!("nginx:1.25"),
    );
    assert_clean(&run_with(&hub, &[ok]));
    let invalid = set(
        deployment(),
        &format!("{DEP_C0}/image"),
        json!("ghcr.io/acme/Web:1"),
    );
    assert_one(&run(Baseline, &invalid), ids::IMAGE_REGISTRY, OBJ, &path);
}

#[test]
fn image_tag() {
    let path = format!("{C0}.image");
    for image in ["ghcr.io/acme/web", "ghcr.io/acme/web:latest"] {
        let bad = set(deployment(), &format!("{DEP_C0}/image"), json!(image));
        assert_one(&run(Baseline, &bad), ids::IMAGE_TAG, OBJ, &path);
        let relaxed = PolicyConfig {
            forbid_latest_tag: false,
            ..policy(Restricted)
        };
        assert_clean(&run_with(&relaxed, &[bad]));
    }
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    for image in [
        format!("ghcr.io/acme/web@{digest}"),
        format!("ghcr.io/acme/web:latest@{digest}"),
    ] {
        let ok = set(deployment(), &format!("{DEP_C0}/image"), json!(image));
        assert_clean(&run(Restricted, &ok));
    }
}

#[test]
fn cluster_scoped() {
    let role = yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: admin}\nrules: []\n",
    );
    assert_one(
        &run(Restricted, &role),
        ids::CLUSTER_SCOPED,
        "ClusterRole/admin",
        "kind",
    );
    let allowed = PolicyConfig {
        forbid_cluster_scoped: false,
        ..policy(Restricted)
    };
    // Allowed, and not subject to the namespace rule.
    assert_clean(&run_with(&allowed, &[role]));
    assert!(is_cluster_scoped("Namespace") && is_cluster_scoped("CustomResourceDefinition"));
    assert!(
        is_cluster_scoped("ClusterIssuer") && is_cluster_scoped("ValidatingAdmissionPolicyBinding")
    );
    assert!(!is_cluster_scoped("Deployment") && !is_cluster_scoped("InferenceService"));
}

#[test]
fn namespace_rule() {
    let other = set(deployment(), "/metadata/namespace", json!("kube-system"));
    assert_one(
        &run(Restricted, &other),
        ids::NAMESPACE,
        "Deployment/kube-system/web",
        "metadata.namespace",
    );
    let defaulted = unset(deployment(), "/metadata/namespace");
    assert_clean(&run(Restricted, &defaulted));
    let scope = Scope {
        allowed_namespaces: &[],
        default_namespace: "team-a",
    };
    let vs = check(&policy(Restricted), &scope, &[deployment()], 10);
    assert_one(&vs, ids::NAMESPACE, OBJ, "metadata.namespace");
    assert!(vs[0].message.contains("`namespaces`"), "{}", vs[0].message);
    let allowed = namespaces();
    let scope = Scope {
        allowed_namespaces: &allowed,
        default_namespace: "default",
    };
    let vs = check(&policy(Restricted), &scope, &[defaulted], 10);
    assert_one(
        &vs,
        ids::NAMESPACE,
        "Deployment/default/web",
        "metadata.namespace",
    );
}

#[test]
fn max_replicas() {
    let bad = set(deployment(), "/spec/replicas", json!(5));
    assert_one(
        &run(Restricted, &bad),
        ids::MAX_REPLICAS,
        OBJ,
        "spec.replicas",
    );
    let ok = set(deployment(), "/spec/replicas", json!(3));
    assert_clean(&run(Restricted, &ok));
    // Missing counts as 1.
    let missing = unset(deployment(), "/spec/replicas");
    assert_clean(&run(Restricted, &missing));
    let zero = PolicyConfig {
        max_replicas: 0,
        ..policy(Restricted)
    };
    assert_one(
        &run_with(&zero, &[missing]),
        ids::MAX_REPLICAS,
        OBJ,
        "spec.replicas",
    );

    let isvc = set(yaml(ISVC), "/spec/predictor/maxReplicas", json!(10));
    assert_one(
        &run(Restricted, &isvc),
        ids::MAX_REPLICAS,
        ISVC_OBJ,
        "spec.predictor.maxReplicas",
    );
    let isvc = set(yaml(ISVC), "/spec/predictor/minReplicas", json!(4));
    assert_one(
        &run(Restricted, &isvc),
        ids::MAX_REPLICAS,
        ISVC_OBJ,
        "spec.predictor.minReplicas",
    );
    let unbounded = unset(yaml(ISVC), "/spec/predictor/maxReplicas");
    assert_one(
        &run(Restricted, &unbounded),
        ids::MAX_REPLICAS,
        ISVC_OBJ,
        "spec.predictor.maxReplicas",
    );

    let hpa = yaml(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\nspec:\n  maxReplicas: 50\n  scaleTargetRef: {kind: Deployment, name: web}\n",
    );
    assert_one(
        &run(Restricted, &hpa),
        ids::MAX_REPLICAS,
        "HorizontalPodAutoscaler/team-a/web",
        "spec.maxReplicas",
    );
    let job = yaml(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  parallelism: 8\n  template:\n    spec:\n      containers: []\n",
    );
    assert_one(
        &run(Restricted, &job),
        ids::MAX_REPLICAS,
        "Job/team-a/j",
        "spec.parallelism",
    );
}

#[test]
fn max_gpus_arithmetic() {
    // Container 0: max(request 1, limit 2) = 2 nvidia; container 1: 1 amd. 3 per pod x 2 replicas.
    let mut d = set(
        deployment(),
        &format!("{DEP_C0}/resources/requests/nvidia.com~1gpu"),
        json!("1"),
    );
    d = set(
        d,
        &format!("{DEP_C0}/resources/limits/nvidia.com~1gpu"),
        json!(2),
    );
    let mut second = d.pointer(DEP_C0).cloned().expect("container");
    second = unset(second, "/resources/requests/nvidia.com~1gpu");
    second = unset(second, "/resources/limits/nvidia.com~1gpu");
    second = set(second, "/resources/limits/amd.com~1gpu", json!("1"));
    second = set(second, "/name", json!("sidecar"));
    let d = set(d, &format!("{DEP_POD}/containers/1"), second);
    let six = PolicyConfig {
        max_gpus: 6,
        ..policy(Restricted)
    };
    assert_clean(&run_with(&six, std::slice::from_ref(&d)));
    let five = PolicyConfig {
        max_gpus: 5,
        ..policy(Restricted)
    };
    let vs = run_with(&five, std::slice::from_ref(&d));
    assert_one(&vs, ids::MAX_GPUS, OBJ, POD);
    assert!(vs[0].message.starts_with("6 GPUs"), "{}", vs[0].message);
    // Default max_gpus is 0: any GPU is refused.
    assert_one(&run(Restricted, &d), ids::MAX_GPUS, OBJ, POD);

    // InferenceService: per-pod GPUs times maxReplicas.
    let isvc = set(
        yaml(ISVC),
        "/spec/predictor/model/resources/limits/nvidia.com~1gpu",
        json!("1"),
    );
    let isvc = set(isvc, "/spec/predictor/maxReplicas", json!(3));
    let two = PolicyConfig {
        max_gpus: 2,
        ..policy(Restricted)
    };
    let vs = run_with(&two, std::slice::from_ref(&isvc));
    assert_one(&vs, ids::MAX_GPUS, ISVC_OBJ, "spec.predictor");
    assert!(vs[0].message.starts_with("3 GPUs"), "{}", vs[0].message);
    let three = PolicyConfig {
        max_gpus: 3,
        ..policy(Restricted)
    };
    assert_clean(&run_with(&three, &[isvc]));

    let bad_quantity = set(
        deployment(),
        &format!("{DEP_C0}/resources/limits/nvidia.com~1gpu"),
        json!("lots"),
    );
    assert_one(
        &run(Restricted, &bad_quantity),
        ids::MAX_GPUS,
        OBJ,
        &format!("{C0}.resources.limits[\"nvidia.com/gpu\"]"),
    );
}

#[test]
fn manifest_size() {
    let p = PolicyConfig {
        max_manifest_bytes: 100,
        ..policy(Restricted)
    };
    let allowed = namespaces();
    let scope = Scope {
        allowed_namespaces: &allowed,
        default_namespace: "team-a",
    };
    let vs = check(&p, &scope, &[deployment()], 101);
    assert_one(&vs, ids::MANIFEST_SIZE, "(manifests)", "");
    assert_clean(&check(&p, &scope, &[deployment()], 100));
}

#[test]
fn manifest_shape() {
    let no_api = unset(deployment(), "/apiVersion");
    assert_one(
        &run(Restricted, &no_api),
        ids::MANIFEST_SHAPE,
        OBJ,
        "apiVersion",
    );
    let no_name = unset(deployment(), "/metadata/name");
    assert_one(
        &run(Restricted, &no_name),
        ids::MANIFEST_SHAPE,
        "Deployment/team-a/<unnamed>",
        "metadata.name",
    );
    let no_kind = unset(deployment(), "/kind");
    assert_one(
        &run(Restricted, &no_kind),
        ids::MANIFEST_SHAPE,
        "<no kind>/team-a/web",
        "kind",
    );
    let vs = run_with(&policy(Restricted), &[deployment(), json!("just a string")]);
    assert_one(&vs, ids::MANIFEST_SHAPE, "document[1]", "");
}

#[test]
fn collects_every_violation() {
    let mut d = set(
        deployment(),
        &format!("{DEP_C0_SC}/privileged"),
        json!(true),
    );
    d = set(d, &format!("{DEP_POD}/hostNetwork"), json!(true));
    d = set(d, &format!("{DEP_C0}/image"), json!("nginx"));
    d = set(d, "/spec/replicas", json!(10));
    d = set(d, "/metadata/namespace", json!("prod"));
    let rules: Vec<_> = run(Restricted, &d).iter().map(|v| v.rule).collect();
    assert_eq!(
        rules,
        vec![
            ids::NAMESPACE,
            ids::PSS_HOST_NAMESPACES,
            ids::PSS_PRIVILEGED,
            ids::IMAGE_REGISTRY,
            ids::IMAGE_TAG,
            ids::MAX_REPLICAS,
        ]
    );
}

#[test]
fn violation_display() {
    let v = Violation {
        rule: ids::PSS_PRIVILEGED,
        object: OBJ.to_owned(),
        path: format!("{C0}.securityContext.privileged"),
        message: "no".to_owned(),
    };
    assert_eq!(
        v.to_string(),
        "pss-privileged: Deployment/team-a/web spec.template.spec.containers[0].securityContext.privileged: no"
    );
}

#[test]
fn serving_runtime_containers_are_checked() {
    let rt = yaml(
        r#"
apiVersion: serving.kserve.io/v1alpha1
kind: ServingRuntime
metadata: {name: vllm}
spec:
  supportedModelFormats: [{name: huggingface}]
  containers:
    - name: kserve-container
      image: ghcr.io/acme/vllm:0.6
      resources: {requests: {cpu: 1, memory: 1Gi}, limits: {cpu: 1, memory: 1Gi}}
      securityContext: {privileged: true}
"#,
    );
    assert_one(
        &run(Baseline, &rt),
        ids::PSS_PRIVILEGED,
        "ServingRuntime/team-a/vllm",
        "spec.containers[0].securityContext.privileged",
    );
}

#[test]
fn rule_ids_are_unique_kebab_case() {
    let mut seen = std::collections::HashSet::new();
    for id in ids::ALL {
        assert!(seen.insert(id), "duplicate {id}");
        assert!(
            id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
            "{id} is not kebab-case"
        );
    }
    assert_eq!(ids::ALL.len(), 26);
}
