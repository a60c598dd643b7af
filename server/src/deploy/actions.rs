//! The scaffolder actions that deploy: `kube:apply`, `kube:wait` and `deploy:model`. They implement
//! the scaffolder's `Action` trait and hold a [`DeployService`], so every deploy a template makes goes
//! through the same guardrails as the API. (The scaffolder does not know them; `state` hands them to
//! it.)
//!
//! `kube:apply` and `deploy:model` act for the task's creator, within the scopes recorded when the
//! task was created: a step whose environment they may not deploy to fails, naming the missing
//! `deploy:<environment>`, before anything reaches the cluster (the scaffolder also refuses to create
//! such a task when the environment is known then).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::cluster::describe;
use super::model::{ModelDeployment, Runtime};
use super::policy;
use super::service::{ApplyOutcome, ApplyRequest, DeployError, DeployService, health_name};
use crate::catalog::model::refs::{EntityRef, RefDefaults};
use crate::scaffolder::actions::{Action, ActionContext, ActionError};

/// The deploy actions, sharing one service.
pub fn actions(service: DeployService) -> Vec<Box<dyn Action>> {
    vec![
        Box::new(KubeApply(service.clone())),
        Box::new(KubeCheck(service.clone())),
        Box::new(KubeWait(service.clone())),
        Box::new(DeployModel(service)),
    ]
}

/// The API path of a record; the step output and task links point at it.
pub fn deployment_url(id: Uuid) -> String {
    format!("/deployments/{id}")
}

fn deploy_error(error: DeployError) -> ActionError {
    match error {
        DeployError::Input(message) => ActionError::Input(message),
        other => ActionError::Failed(other.to_string()),
    }
}

/// `kubernetesId` given, else the name of `entityRef`.
fn kubernetes_id(ctx: &ActionContext<'_>, fallback: &str) -> Result<String, ActionError> {
    if let Some(id) = ctx.str_input("kubernetesId") {
        return Ok(id.to_owned());
    }
    match ctx.str_input("entityRef") {
        Some(reference) => Ok(entity_ref(reference)?.name.clone()),
        None => Ok(fallback.to_owned()),
    }
}

fn entity_ref(reference: &str) -> Result<EntityRef, ActionError> {
    EntityRef::parse(
        reference,
        RefDefaults {
            kind: Some("Component"),
            namespace: "default",
        },
    )
    .map_err(|e| ActionError::input(format!("entityRef {reference:?}: {e}")))
}

/// What a `kube:apply` or `kube:check` step deploys as: the deployment's name, the
/// `backstage.io/kubernetes-id`, and the entity.
struct Target {
    name: String,
    kubernetes_id: String,
    entity: Option<String>,
}

/// `name` (default: the kubernetes id), `kubernetesId` (default: the entity's name, else the first
/// object's name) and `entityRef` of a step.
fn target_of(ctx: &ActionContext<'_>, objects: &[Value]) -> Result<Target, ActionError> {
    let first_name = objects
        .first()
        .and_then(|o| o["metadata"]["name"].as_str())
        .unwrap_or_default();
    let kubernetes_id = kubernetes_id(ctx, first_name)?;
    let name = ctx.str_input("name").unwrap_or(&kubernetes_id).to_owned();
    let entity = match ctx.str_input("entityRef") {
        Some(reference) => Some(entity_ref(reference)?.key()),
        None => None,
    };
    Ok(Target {
        name,
        kubernetes_id,
        entity,
    })
}

/// The objects a step names: workspace files (multi-document YAML) and inline objects.
fn manifests(ctx: &ActionContext<'_>) -> Result<Vec<Value>, ActionError> {
    let mut objects = Vec::new();
    for (i, item) in ctx
        .input
        .get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        match item {
            Value::String(path) => {
                let file = ctx.workspace.resolve(path)?;
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    ActionError::input(format!("manifests[{i}]: cannot read {path}: {e}"))
                })?;
                objects.extend(
                    policy::parse_manifests(&text, path)
                        .map_err(|e| ActionError::input(format!("manifests[{i}]: {e}")))?,
                );
            }
            Value::Object(_) => objects.push(item.clone()),
            _ => {
                return Err(ActionError::input(format!(
                    "manifests[{i}]: expected a workspace path or an object"
                )));
            }
        }
    }
    Ok(objects)
}

/// A step's output after an apply.
fn apply_output(outcome: &ApplyOutcome, dry_run: bool) -> Map<String, Value> {
    let mut output = Map::new();
    output.insert("cluster".to_owned(), json!(outcome.cluster));
    output.insert("environment".to_owned(), json!(outcome.environment));
    output.insert(
        "objects".to_owned(),
        json!(
            outcome
                .objects
                .iter()
                .map(|(name, _)| name)
                .collect::<Vec<_>>()
        ),
    );
    output.insert(
        "unchanged".to_owned(),
        json!(!dry_run && outcome.unchanged()),
    );
    if let Some(record) = &outcome.deployment {
        output.insert("deploymentId".to_owned(), json!(record.id));
        output.insert("deploymentUrl".to_owned(), json!(deployment_url(record.id)));
        output.insert("revision".to_owned(), json!(record.revision));
    }
    if dry_run {
        output.insert("planned".to_owned(), json!(outcome.planned));
    }
    output
}

/// Logs what an apply did, object by object.
fn log_outcome(ctx: &ActionContext<'_>, outcome: &ApplyOutcome) {
    if ctx.dry_run {
        ctx.log(format!(
            "Dry run: the guardrails of `{}` passed and cluster `{}` accepted {} object(s) with dryRun=All; nothing was persisted:",
            outcome.environment,
            outcome.cluster,
            outcome.planned.len()
        ));
        for object in &outcome.planned {
            ctx.log(format!("--- {}\n{}", describe(object), to_yaml(object)));
        }
        return;
    }
    for (name, changed) in &outcome.objects {
        ctx.log(format!(
            "{name} {}",
            if *changed { "applied" } else { "unchanged" }
        ));
    }
    if let Some(record) = &outcome.deployment {
        ctx.log(format!(
            "Deployment {} revision {} on {} ({}): {}",
            record.name,
            record.revision,
            record.cluster,
            record.environment,
            deployment_url(record.id)
        ));
    }
}

fn to_yaml(object: &Value) -> String {
    serde_saphyr::to_string(object).unwrap_or_else(|_| object.to_string())
}

/// Applies (or, in a dry run, checks and plans) the request on behalf of the task.
async fn run_apply(
    service: &DeployService,
    ctx: &ActionContext<'_>,
    objects: Vec<Value>,
    name: &str,
    kubernetes_id: &str,
    entity: Option<&str>,
) -> Result<ApplyOutcome, ActionError> {
    let approver_group = owner_of(service, ctx, entity).await;
    let request = ApplyRequest {
        cluster: ctx.str_input("cluster"),
        environment: ctx.str_input("environment"),
        namespace: ctx.str_input("namespace").unwrap_or("default"),
        name,
        kubernetes_id,
        entity_ref: entity,
        objects,
        template_ref: Some(ctx.template_ref).filter(|t| !t.is_empty()),
        task_id: Uuid::parse_str(ctx.task_id).ok(),
        parameters: ctx.parameters,
        caller: ctx.caller,
        dry_run: ctx.dry_run,
        rollback_of: None,
        approver_group: approver_group.as_deref(),
        log: Some(&ctx.log),
    };
    // Never skipped: a step the creator may not run fails here, dry run or not.
    service.authorize(&request).await.map_err(deploy_error)?;
    if ctx.dry_run {
        // The guardrails always run; the cluster's own dry run only when it can be reached.
        let (cluster, labelled) = service.prepare(&request).map_err(deploy_error)?;
        return match service.apply(request).await {
            Ok(outcome) => Ok(outcome),
            Err(DeployError::Kube(e)) => {
                ctx.log(format!(
                    "Dry run: the guardrails of `{}` passed; the cluster's own dry run could not run ({e}). These objects would be applied:",
                    cluster.environment
                ));
                for object in &labelled {
                    ctx.log(format!("--- {}\n{}", describe(object), to_yaml(object)));
                }
                Ok(ApplyOutcome {
                    deployment: None,
                    objects: labelled.iter().map(|o| (describe(o), false)).collect(),
                    planned: labelled,
                    cluster: cluster.name.clone(),
                    environment: cluster.environment.clone(),
                })
            }
            Err(e) => Err(deploy_error(e)),
        };
    }
    service.apply(request).await.map_err(deploy_error)
}

/// The group that approves a deployment: the owner of the deployed entity, else of the template.
async fn owner_of(
    service: &DeployService,
    ctx: &ActionContext<'_>,
    entity: Option<&str>,
) -> Option<String> {
    for key in [entity, Some(ctx.template_ref).filter(|t| !t.is_empty())]
        .into_iter()
        .flatten()
    {
        if let Ok(Some(found)) = service.catalog().entity(&key.to_ascii_lowercase()).await
            && let Some(owner) = found["relations"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["type"] == "ownedBy")
                .and_then(|r| r["targetRef"].as_str())
        {
            return Some(owner.to_owned());
        }
    }
    None
}

const TARGET_PROPERTIES: &str = r#"{
    "environment": {"type": "string", "description": "Environment to deploy to; its only cluster is used unless `cluster` names one."},
    "cluster": {"type": "string", "description": "Cluster name from deploy.clusters."},
    "namespace": {"type": "string", "description": "Namespace of objects that name none.", "default": "default"},
    "entityRef": {"type": "string", "description": "The catalog entity the objects belong to."},
    "kubernetesId": {"type": "string", "description": "Value of the backstage.io/kubernetes-id label; default: the entity's name."}
}"#;

fn schema_with(required: &[&str], extra: Value) -> Value {
    let mut properties: Map<String, Value> =
        serde_json::from_str(TARGET_PROPERTIES).unwrap_or_default();
    if let Value::Object(extra) = extra {
        properties.extend(extra);
    }
    json!({
        "type": "object",
        "required": required,
        "properties": properties,
        "anyOf": [{"required": ["environment"]}, {"required": ["cluster"]}],
    })
}

const DEPLOYMENT_OUTPUT: &str = r#"{
    "type": "object",
    "properties": {
        "deploymentId": {"type": "string"},
        "deploymentUrl": {"type": "string"},
        "revision": {"type": "integer"},
        "cluster": {"type": "string"},
        "environment": {"type": "string"},
        "objects": {"type": "array", "items": {"type": "string"}},
        "unchanged": {"type": "boolean"}
    }
}"#;

struct KubeApply(DeployService);

impl Action for KubeApply {
    fn id(&self) -> &'static str {
        "kube:apply"
    }

    fn description(&self) -> &'static str {
        "Applies Kubernetes manifests (workspace files or inline objects) to a configured cluster: guardrail policy, then a server-side dry run, then server-side apply as field manager `atrium`, never forced. Records a deployment revision."
    }

    fn input_schema(&self) -> Value {
        schema_with(
            &["manifests"],
            json!({
                "manifests": {
                    "type": "array", "minItems": 1,
                    "items": {"oneOf": [{"type": "string"}, {"type": "object"}]},
                    "description": "Workspace paths of YAML files (several documents each) or objects."
                },
                "name": {"type": "string", "description": "Deployment name (the atrium.dev/deployment label); default: the kubernetes id."}
            }),
        )
    }

    fn output_schema(&self) -> Value {
        serde_json::from_str(DEPLOYMENT_OUTPUT).unwrap_or_default()
    }

    fn supports_dry_run(&self) -> bool {
        true
    }

    fn deploys_to_environment(&self) -> bool {
        true
    }

    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Map<String, Value>, ActionError>> {
        Box::pin(async move {
            let objects = manifests(ctx)?;
            let Target {
                name,
                kubernetes_id,
                entity,
            } = target_of(ctx, &objects)?;
            let outcome = run_apply(
                &self.0,
                ctx,
                objects,
                &name,
                &kubernetes_id,
                entity.as_deref(),
            )
            .await?;
            log_outcome(ctx, &outcome);
            Ok(apply_output(&outcome, ctx.dry_run))
        })
    }
}

/// The GitOps path: the same labels and guardrails as `kube:apply`, on workspace files, which are
/// rewritten with the labels added, so a following `publish:git` commits exactly what passed. Nothing
/// is sent to a cluster.
struct KubeCheck(DeployService);

impl Action for KubeCheck {
    fn id(&self) -> &'static str {
        "kube:check"
    }

    fn description(&self) -> &'static str {
        "Checks Kubernetes manifests in the workspace against an environment's guardrails (the same as kube:apply) and rewrites them with Atrium's labels, for a GitOps repository that Argo CD or Flux syncs. Talks to no cluster."
    }

    fn input_schema(&self) -> Value {
        schema_with(
            &["manifests"],
            json!({
                "manifests": {
                    "type": "array", "minItems": 1, "items": {"type": "string"},
                    "description": "Workspace paths of YAML files (several documents each)."
                },
                "name": {"type": "string", "description": "Deployment name (the atrium.dev/deployment label); default: the kubernetes id."}
            }),
        )
    }

    fn output_schema(&self) -> Value {
        json!({"type": "object", "properties": {
            "environment": {"type": "string"},
            "objects": {"type": "array", "items": {"type": "string"}}
        }})
    }

    fn supports_dry_run(&self) -> bool {
        true
    }

    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Map<String, Value>, ActionError>> {
        Box::pin(async move {
            let mut files = Vec::new();
            let mut objects = Vec::new();
            for path in ctx
                .input
                .get("manifests")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let file = ctx.workspace.resolve(path)?;
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| ActionError::input(format!("cannot read {path}: {e}")))?;
                let parsed = policy::parse_manifests(&text, path)
                    .map_err(|e| ActionError::input(e.to_string()))?;
                files.push((path.to_owned(), parsed.len()));
                objects.extend(parsed);
            }
            let Target {
                name,
                kubernetes_id,
                entity,
            } = target_of(ctx, &objects)?;
            let request = ApplyRequest {
                cluster: ctx.str_input("cluster"),
                environment: ctx.str_input("environment"),
                namespace: ctx.str_input("namespace").unwrap_or("default"),
                name: &name,
                kubernetes_id: &kubernetes_id,
                entity_ref: entity.as_deref(),
                objects,
                template_ref: None,
                task_id: None,
                parameters: ctx.parameters,
                caller: ctx.caller,
                dry_run: true,
                rollback_of: None,
                approver_group: None,
                log: None,
            };
            let (cluster, labelled) = self.0.prepare(&request).map_err(deploy_error)?;
            let mut rest = labelled.iter();
            for (path, count) in &files {
                let documents: Vec<String> = rest.by_ref().take(*count).map(to_yaml).collect();
                ctx.workspace
                    .write_file(path, documents.join("---\n").as_bytes(), false)?;
            }
            ctx.log(format!(
                "{} object(s) pass the guardrails of `{}`; labelled for the repository",
                labelled.len(),
                cluster.environment
            ));
            let mut output = Map::new();
            output.insert("environment".to_owned(), json!(cluster.environment));
            output.insert(
                "objects".to_owned(),
                json!(labelled.iter().map(describe).collect::<Vec<_>>()),
            );
            Ok(output)
        })
    }
}

struct KubeWait(DeployService);

/// Waits for a record to be healthy; a Degraded or timed-out deployment fails the step.
async fn wait_healthy(
    service: &DeployService,
    ctx: &ActionContext<'_>,
    id: Uuid,
    timeout: Duration,
) -> Result<Map<String, Value>, ActionError> {
    let record = service
        .deployment(id)
        .await
        .map_err(|e| ActionError::failed(format!("reading deployment {id}: {e}")))?
        .ok_or_else(|| ActionError::input(format!("no deployment {id}")))?;
    let observed = service
        .wait(&record, timeout, |observed| {
            ctx.log(format!(
                "{}: {}{}",
                record.name,
                health_name(observed.health),
                if observed.message.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", observed.message)
                }
            ));
        })
        .await
        .map_err(deploy_error)?;
    let health = health_name(observed.health);
    match observed.health {
        super::health::HealthStatus::Healthy => {
            let mut output = Map::new();
            output.insert("health".to_owned(), json!(health));
            output.insert("deploymentId".to_owned(), json!(id));
            output.insert("deploymentUrl".to_owned(), json!(deployment_url(id)));
            Ok(output)
        }
        super::health::HealthStatus::Degraded => Err(ActionError::failed(format!(
            "deployment {} is Degraded: {}",
            record.name, observed.message
        ))),
        _ => Err(ActionError::failed(format!(
            "deployment {} was not healthy after {} s: {health}{}",
            record.name,
            timeout.as_secs(),
            if observed.message.is_empty() {
                String::new()
            } else {
                format!(" ({})", observed.message)
            }
        ))),
    }
}

fn timeout_input(ctx: &ActionContext<'_>, default: u64) -> Duration {
    Duration::from_secs(
        ctx.input
            .get("timeoutSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(default),
    )
}

impl Action for KubeWait {
    fn id(&self) -> &'static str {
        "kube:wait"
    }

    fn description(&self) -> &'static str {
        "Waits until a deployment's objects are Healthy (health as Argo CD computes it; a pod in CrashLoopBackOff or ImagePullBackOff makes its workload Degraded). Degraded or a timeout fails the step."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["deploymentId"],
            "properties": {
                "deploymentId": {"type": "string", "description": "From a kube:apply step's output."},
                "timeoutSeconds": {"type": "integer", "minimum": 1, "maximum": 3600, "default": 300}
            }
        })
    }

    fn output_schema(&self) -> Value {
        json!({"type": "object", "properties": {"health": {"type": "string"}, "deploymentId": {"type": "string"}, "deploymentUrl": {"type": "string"}}})
    }

    fn supports_dry_run(&self) -> bool {
        false
    }

    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Map<String, Value>, ActionError>> {
        Box::pin(async move {
            let raw = ctx.str_input("deploymentId").unwrap_or_default();
            let id = Uuid::parse_str(raw)
                .map_err(|_| ActionError::input(format!("deploymentId {raw:?} is not an id")))?;
            wait_healthy(&self.0, ctx, id, timeout_input(ctx, 300)).await
        })
    }
}

struct DeployModel(DeployService);

impl Action for DeployModel {
    fn id(&self) -> &'static str {
        "deploy:model"
    }

    fn description(&self) -> &'static str {
        "Serves one version of a catalog Model: renders a vLLM Deployment + Service or a KServe InferenceService, applies it like kube:apply (guardrails, dry run, server-side apply) and waits until it is healthy."
    }

    fn input_schema(&self) -> Value {
        schema_with(
            &["model", "version", "namespace"],
            json!({
                "model": {"type": "string", "description": "Entity ref of the Model (model:default/support-assistant)."},
                "version": {"type": "string", "description": "A version name or alias of the model."},
                "runtime": {"type": "string", "enum": ["vllm", "kserve"], "default": "vllm"},
                "name": {"type": "string", "description": "Name of the served model's objects; default: `<model>-<version>`."},
                "gpus": {"type": "integer", "minimum": 0, "maximum": 16, "default": 1},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 100, "default": 1},
                "maxReplicas": {"type": "integer", "minimum": 1, "maximum": 100},
                "maxModelLen": {"type": "integer", "minimum": 1},
                "cpu": {"type": "string", "default": "4"},
                "memory": {"type": "string", "default": "32Gi"},
                "waitForHealthy": {"type": "boolean", "default": true},
                "timeoutSeconds": {"type": "integer", "minimum": 1, "maximum": 7200, "default": 900}
            }),
        )
    }

    fn output_schema(&self) -> Value {
        let mut schema: Value = serde_json::from_str(DEPLOYMENT_OUTPUT).unwrap_or_default();
        if let Some(properties) = schema["properties"].as_object_mut() {
            properties.insert("health".to_owned(), json!({"type": "string"}));
            properties.insert("version".to_owned(), json!({"type": "string"}));
            properties.insert("uri".to_owned(), json!({"type": "string"}));
        }
        schema
    }

    fn supports_dry_run(&self) -> bool {
        true
    }

    fn deploys_to_environment(&self) -> bool {
        true
    }

    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Map<String, Value>, ActionError>> {
        Box::pin(async move {
            let reference = ctx.str_input("model").unwrap_or_default();
            let model_ref = EntityRef::parse(
                reference,
                RefDefaults {
                    kind: Some("Model"),
                    namespace: "default",
                },
            )
            .map_err(|e| ActionError::input(format!("model {reference:?}: {e}")))?;
            let entity = ctx
                .services
                .catalog
                .entity(&model_ref.key())
                .await
                .map_err(|e| ActionError::failed(e.public_message()))?
                .ok_or_else(|| {
                    ActionError::input(format!("model {reference} is not in the catalog"))
                })?;
            let runtime: Runtime = ctx
                .str_input("runtime")
                .unwrap_or("vllm")
                .parse()
                .map_err(|e| ActionError::input(format!("runtime: {e}")))?;
            let version = ctx.str_input("version").unwrap_or_default();
            let default_name = format!("{}-{}", model_ref.name, version)
                .to_ascii_lowercase()
                .replace(['.', '_'], "-");
            let name = ctx.str_input("name").map_or(default_name, str::to_owned);
            let number = |key: &str, default: u64| {
                ctx.input
                    .get(key)
                    .and_then(Value::as_u64)
                    .unwrap_or(default)
                    .try_into()
                    .unwrap_or(u32::MAX)
            };
            let replicas = number("replicas", 1);
            let kubernetes_id = kubernetes_id(ctx, &model_ref.name)?;
            let mut labels = BTreeMap::new();
            labels.insert(
                super::service::KUBERNETES_ID_LABEL.to_owned(),
                kubernetes_id.clone(),
            );
            let image = self.0.config().vllm_image.clone();
            let rendered = super::model::render(&ModelDeployment {
                entity: &entity,
                version,
                name: &name,
                namespace: ctx.str_input("namespace").unwrap_or("default"),
                runtime,
                image: &image,
                gpus: number("gpus", 1),
                replicas,
                max_replicas: number("maxReplicas", u64::from(replicas.max(1))),
                max_model_len: ctx
                    .input
                    .get("maxModelLen")
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok()),
                cpu: ctx.str_input("cpu").unwrap_or("4"),
                memory: ctx.str_input("memory").unwrap_or("32Gi"),
                labels: &labels,
            })
            .map_err(|e| ActionError::input(e.to_string()))?;
            ctx.log(format!(
                "Serving {} version {} ({}) with {}",
                model_ref,
                rendered.version,
                rendered.uri,
                match runtime {
                    Runtime::Vllm => "vLLM",
                    Runtime::Kserve => "KServe",
                }
            ));
            let model_key = model_ref.key();
            let outcome = run_apply(
                &self.0,
                ctx,
                rendered.objects,
                &name,
                &kubernetes_id,
                Some(&model_key),
            )
            .await?;
            log_outcome(ctx, &outcome);
            let mut output = apply_output(&outcome, ctx.dry_run);
            output.insert("version".to_owned(), json!(rendered.version));
            output.insert("uri".to_owned(), json!(rendered.uri));
            let wait = ctx
                .input
                .get("waitForHealthy")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            if let (false, true, Some(record)) = (ctx.dry_run, wait, &outcome.deployment) {
                let waited = wait_healthy(&self.0, ctx, record.id, timeout_input(ctx, 900)).await?;
                output.extend(waited);
            }
            Ok(output)
        })
    }
}
