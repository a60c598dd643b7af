//! `DeployService`: applies objects to a cluster through the guardrails, keeps the deployment records,
//! and watches their health. The scaffolder's `kube:*` and `deploy:model` actions, the deployments API
//! and pages all go through it, so there is one way to reach a cluster and it always checks first.
//!
//! One apply, in order: label every object (`backstage.io/kubernetes-id`, `atrium.dev/deployment`) →
//! guardrail policy of the cluster's environment (a violation stops here; nothing is sent) → a
//! server-side apply of every object with `dryRun=All` (the cluster's own validation and admission; a
//! conflict with another field manager stops here) → the real apply, never forced → the record.
//!
//! Before all of it, whoever the apply is for (a task's creator, with the scopes recorded when the
//! task was created; the caller of a rollback) must hold `deploy:<environment>`. Each record is
//! audited (`deployment.apply`, `deployment.rollback`) in the transaction that writes it, as is each
//! decision on an approval (`approval.decide`); refusals are audited as `denied`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::cluster::{ClusterClient, KubeError, describe};
use super::config::{ClusterConfig, DeployConfig};
use super::db::{self, ApprovalRow, DeploymentRow, NewApproval, NewDeployment};
use super::health::{self, HealthStatus};
use super::policy::{self, Violation};
use crate::auth::policy::{self as permissions, Target};
use crate::auth::service::{audit, audit_refusal};
use crate::auth::{Caller, Scope};
use crate::catalog::CatalogService;
use crate::catalog::model::refs::{EntityRef, RefDefaults};

/// Label naming the catalog entity an object belongs to (Backstage's Kubernetes plugin finds
/// workloads by it).
pub const KUBERNETES_ID_LABEL: &str = "backstage.io/kubernetes-id";
/// Label naming the deployment target (stable across revisions).
pub const DEPLOYMENT_LABEL: &str = "atrium.dev/deployment";

#[derive(Clone)]
pub struct DeployService {
    db: PgPool,
    config: Arc<DeployConfig>,
    /// Group membership of approvers, and the owners of what is deployed.
    catalog: CatalogService,
    /// `permissions` in `atrium.yaml`: `deploy.apply`, `deploy.rollback`, `deploy.approve`.
    permissions: Arc<permissions::Policy>,
}

/// Why a deployment did not happen; shown in task logs and API errors, so it says what and where.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The request itself is wrong (no such cluster, no objects, a bad name).
    #[error("{0}")]
    Input(String),
    /// Guardrails refused the objects; nothing reached the cluster.
    #[error("{} guardrail violation{} (nothing was sent to the cluster):\n{}",
        .0.len(), if .0.len() == 1 { "" } else { "s" }, list_violations(.0))]
    Guardrails(Vec<Violation>),
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The environment requires an approval and it was denied or not given in time.
    #[error("{0}")]
    NotApproved(String),
    /// Whoever the apply is for does not hold `deploy:<environment>`; nothing reached the cluster.
    #[error("{permission} is not granted to {actor}; nothing was sent to the cluster")]
    NotPermitted { permission: String, actor: String },
    /// The permission policy refused it (the text names the rule); nothing reached the cluster.
    #[error("the permission policy denies it: {0}; nothing was sent to the cluster")]
    Refused(String),
    #[error("the deployment record could not be written: {0}")]
    Database(#[from] sqlx::Error),
}

fn list_violations(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("  - {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What to apply, where, and on whose behalf.
pub struct ApplyRequest<'a> {
    /// The cluster by name; else the only cluster of `environment`.
    pub cluster: Option<&'a str>,
    pub environment: Option<&'a str>,
    /// Namespace of objects that name none.
    pub namespace: &'a str,
    /// The deployment target's name (the `atrium.dev/deployment` label).
    pub name: &'a str,
    /// The `backstage.io/kubernetes-id` label value.
    pub kubernetes_id: &'a str,
    pub entity_ref: Option<&'a str>,
    pub objects: Vec<Value>,
    pub template_ref: Option<&'a str>,
    pub task_id: Option<Uuid>,
    pub parameters: &'a Value,
    /// Who the apply is for: recorded as the record's `created_by` (`caller.actor()`) and in the
    /// audit log; must hold `deploy:<environment>`.
    pub caller: &'a Caller,
    /// Stop after the cluster's dry run: nothing is persisted, no record is written.
    pub dry_run: bool,
    pub rollback_of: Option<Uuid>,
    /// Who may approve, where the environment requires it: the group owning what is deployed.
    pub approver_group: Option<&'a str>,
    /// Where to say what the apply is waiting for (a task's log).
    pub log: Option<&'a tokio::sync::mpsc::UnboundedSender<String>>,
}

/// What an apply did.
#[derive(Debug)]
pub struct ApplyOutcome {
    /// The record (the new revision, or the latest one when nothing changed); none for a dry run.
    pub deployment: Option<DeploymentRow>,
    /// Each object (`Kind/namespace/name`) and whether the cluster changed it.
    pub objects: Vec<(String, bool)>,
    /// The objects as the cluster's dry run answered them.
    pub planned: Vec<Value>,
    /// The cluster, once chosen.
    pub cluster: String,
    pub environment: String,
}

impl ApplyOutcome {
    pub fn unchanged(&self) -> bool {
        self.objects.iter().all(|(_, changed)| !changed)
    }
}

/// The health of a deployment's objects now.
#[derive(Debug, Clone)]
pub struct Observed {
    pub health: HealthStatus,
    pub message: String,
    /// Per object: its name, health and message.
    pub objects: Vec<(String, HealthStatus, String)>,
}

/// A cluster as the clusters page shows it.
#[derive(Debug, Clone)]
pub struct ClusterStatus {
    pub name: String,
    pub environment: String,
    pub namespaces: Vec<String>,
    pub url: String,
    pub version: Result<String, String>,
}

impl DeployService {
    pub fn new(
        db: PgPool,
        config: Arc<DeployConfig>,
        catalog: CatalogService,
        permissions: Arc<permissions::Policy>,
    ) -> Self {
        Self {
            db,
            config,
            catalog,
            permissions,
        }
    }

    /// The permission policy's word on `action` for what `entity_ref` names in `environment`; a
    /// refusal is audited with the rule and returned as [`DeployError::Refused`].
    async fn permit(
        &self,
        caller: &Caller,
        action: &str,
        entity_ref: Option<&str>,
        template_ref: Option<&str>,
        environment: &str,
    ) -> Result<(), DeployError> {
        let mut target = match entity_ref {
            Some(entity_ref) => match self.catalog.entity(&entity_ref.to_ascii_lowercase()).await {
                Ok(Some(entity)) => Target::entity(&entity),
                Err(crate::error::AppError::Database(e)) => return Err(DeployError::Database(e)),
                // Not in the catalog: the rule sees the ref, with no owner.
                _ => Target {
                    entity: EntityRef::parse(entity_ref, RefDefaults::default()).ok(),
                    ..Target::default()
                },
            },
            None => Target::default(),
        };
        if let Some(template_ref) = template_ref.filter(|t| !t.is_empty()) {
            target = target.with_template(template_ref);
        }
        target = target.with_environment(environment);
        let decision = self.permissions.decide_for(caller, action, &target);
        if decision.allowed {
            return Ok(());
        }
        audit_refusal(&self.db, caller, action, &target, &decision).await;
        Err(DeployError::Refused(decision.explain()))
    }

    pub fn catalog(&self) -> &CatalogService {
        &self.catalog
    }

    pub fn config(&self) -> &DeployConfig {
        &self.config
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.request_timeout_seconds.max(1))
    }

    pub async fn connect(&self, cluster: &ClusterConfig) -> Result<ClusterClient, KubeError> {
        ClusterClient::connect(cluster, self.timeout()).await
    }

    /// Labels the objects, checks them against the environment's guardrails, and returns them with
    /// the cluster they go to: everything an apply does before it talks to the cluster.
    pub fn prepare<'c>(
        &'c self,
        request: &ApplyRequest<'_>,
    ) -> Result<(&'c ClusterConfig, Vec<Value>), DeployError> {
        let cluster = self
            .config
            .pick_cluster(request.cluster, request.environment)
            .map_err(DeployError::Input)?;
        if request.objects.is_empty() {
            return Err(DeployError::Input(
                "there are no objects to apply".to_owned(),
            ));
        }
        check_label_value("name", request.name)?;
        check_label_value("kubernetes id", request.kubernetes_id)?;
        let mut objects = request.objects.clone();
        for object in &mut objects {
            label(object, request, cluster)?;
        }
        let total_bytes = objects
            .iter()
            .map(|o| serde_json::to_vec(o).map_or(0, |b| b.len()))
            .sum();
        let scope = policy::Scope {
            allowed_namespaces: &cluster.namespaces,
            default_namespace: request.namespace,
        };
        let violations = policy::check(
            &self.config.policy(&cluster.environment),
            &scope,
            &objects,
            total_bytes,
        );
        if !violations.is_empty() {
            return Err(DeployError::Guardrails(violations));
        }
        Ok((cluster, objects))
    }

    /// Records a refusal by the guardrails (nothing reached the cluster): which rules, on what.
    async fn audit_guardrails(&self, request: &ApplyRequest<'_>, violations: &[Violation]) {
        let place = request.cluster.or(request.environment).unwrap_or("default");
        let target = format!("deployment:{place}/{}/{}", request.namespace, request.name);
        let detail = json!({
            "guardrails": violations
                .iter()
                .map(|v| json!({"rule": v.rule, "object": v.object, "path": v.path}))
                .collect::<Vec<_>>(),
            "taskId": request.task_id,
        });
        if let Err(error) = audit(
            &self.db,
            request.caller,
            apply_action(request),
            &target,
            "denied",
            detail,
        )
        .await
        {
            tracing::error!(%error, "could not write an audit event");
        }
    }

    /// Refuses unless whoever the apply is for holds `deploy:<environment>` of the cluster it would go
    /// to. The refusal is audited; nothing has reached the cluster.
    pub async fn authorize(&self, request: &ApplyRequest<'_>) -> Result<(), DeployError> {
        let cluster = self
            .config
            .pick_cluster(request.cluster, request.environment)
            .map_err(DeployError::Input)?;
        let scope = Scope::Deploy(cluster.environment.clone());
        if request.caller.allows(&scope) {
            return self
                .permit(
                    request.caller,
                    "deploy.apply",
                    request.entity_ref,
                    request.template_ref,
                    &cluster.environment,
                )
                .await;
        }
        let target = format!(
            "deployment:{}/{}/{}",
            cluster.name, request.namespace, request.name
        );
        if let Err(error) = audit(
            &self.db,
            request.caller,
            apply_action(request),
            &target,
            "denied",
            json!({"needs": scope.to_string(), "taskId": request.task_id}),
        )
        .await
        {
            tracing::error!(%error, "could not write an audit event");
        }
        Err(DeployError::NotPermitted {
            permission: scope.to_string(),
            actor: request.caller.actor(),
        })
    }

    /// Applies the objects (see the module doc for the order of checks).
    pub async fn apply(&self, request: ApplyRequest<'_>) -> Result<ApplyOutcome, DeployError> {
        self.authorize(&request).await?;
        let (cluster, objects) = match self.prepare(&request) {
            Ok(prepared) => prepared,
            Err(DeployError::Guardrails(violations)) => {
                self.audit_guardrails(&request, &violations).await;
                return Err(DeployError::Guardrails(violations));
            }
            Err(other) => return Err(other),
        };
        let client = self.connect(cluster).await?;
        let mut planned = Vec::with_capacity(objects.len());
        for object in &objects {
            planned.push(client.apply(object, true).await?.object);
        }
        let mut outcome = ApplyOutcome {
            deployment: None,
            objects: Vec::new(),
            planned,
            cluster: cluster.name.clone(),
            environment: cluster.environment.clone(),
        };
        if request.dry_run {
            outcome.objects = objects.iter().map(|o| (describe(o), false)).collect();
            return Ok(outcome);
        }
        let approval_id = if self.config.approval(&cluster.environment).required {
            Some(
                self.await_approval(&request, cluster, &outcome.planned)
                    .await?,
            )
        } else {
            None
        };
        let mut failure = None;
        for object in &objects {
            match client.apply(object, false).await {
                Ok(applied) => outcome.objects.push((describe(object), applied.changed)),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let previous =
            db::latest_applied(&self.db, &cluster.name, request.namespace, request.name).await?;
        let objects_json = Value::Array(objects);
        if failure.is_none()
            && outcome.unchanged()
            && let Some(previous) = previous.filter(|p| p.objects == objects_json)
        {
            outcome.deployment = Some(previous);
            return Ok(outcome);
        }
        let error = failure.as_ref().map(ToString::to_string);
        let id = Uuid::new_v4();
        let actor = request.caller.actor();
        let new = NewDeployment {
            id,
            name: request.name,
            cluster: &cluster.name,
            environment: &cluster.environment,
            namespace: request.namespace,
            entity_ref: request.entity_ref,
            kubernetes_id: request.kubernetes_id,
            template_ref: request.template_ref,
            task_id: request.task_id,
            parameters: request.parameters,
            objects: &objects_json,
            created_by: &actor,
            status: if failure.is_some() {
                "failed"
            } else {
                "applied"
            },
            rollback_of: request.rollback_of,
            error: error.as_deref(),
            approval_id,
        };
        let mut tx = self.db.begin().await?;
        let revision = db::insert_deployment(&mut tx, &new).await?;
        audit(
            &mut *tx,
            request.caller,
            apply_action(&request),
            &format!("deployment:{id}"),
            if failure.is_some() {
                "failure"
            } else {
                "success"
            },
            json!({
                "name": request.name,
                "cluster": cluster.name,
                "environment": cluster.environment,
                "namespace": request.namespace,
                "revision": revision,
                "taskId": request.task_id,
                "rollbackOf": request.rollback_of,
            }),
        )
        .await?;
        tx.commit().await?;
        if let Some(failure) = failure {
            return Err(failure.into());
        }
        outcome.deployment = db::deployment(&self.db, id).await?;
        Ok(outcome)
    }

    /// Opens an approval for the planned objects and waits until it is decided or expires.
    async fn await_approval(
        &self,
        request: &ApplyRequest<'_>,
        cluster: &ClusterConfig,
        planned: &[Value],
    ) -> Result<Uuid, DeployError> {
        let Some(group) = request.approver_group else {
            return Err(DeployError::NotApproved(format!(
                "environment `{}` requires an approval, and nothing names the group that would give it (deploy an entity that has an owner)",
                cluster.environment
            )));
        };
        let rule = self.config.approval(&cluster.environment);
        let id = Uuid::new_v4();
        // The requester is the person accountable (for an agent, whom it acts for: a person or a
        // group), so that nobody approves what they, their agent or their group's agent asked for.
        let requester = &request.caller.user_ref;
        db::insert_approval(
            &self.db,
            &NewApproval {
                id,
                task_id: request.task_id,
                name: request.name,
                cluster: &cluster.name,
                environment: &cluster.environment,
                namespace: request.namespace,
                requested_by: requester,
                approver_group: group,
                planned: &Value::Array(planned.to_vec()),
                expires_in_seconds: rule.timeout_seconds as f64,
            },
        )
        .await?;
        if let Some(log) = request.log {
            let _ = log.send(format!(
                "Waiting for approval: environment `{}` requires a member of {group} other than {} to approve at {} (within {} s)",
                cluster.environment,
                requester,
                approval_url(id),
                rule.timeout_seconds
            ));
        }
        let poll = Duration::from_millis(self.config.poll_interval_ms.max(10));
        loop {
            let status = db::expire_approval(&self.db, id).await?.unwrap_or_default();
            match status.as_str() {
                "approved" => {
                    let row = db::approval(&self.db, id).await?;
                    if let (Some(log), Some(row)) = (request.log, row) {
                        let _ = log.send(format!(
                            "Approved by {}{}",
                            row.decided_by.unwrap_or_default(),
                            comment_suffix(&row.comment)
                        ));
                    }
                    return Ok(id);
                }
                "denied" => {
                    let row = db::approval(&self.db, id).await?;
                    let (by, comment) = row
                        .map(|r| (r.decided_by.unwrap_or_default(), r.comment))
                        .unwrap_or_default();
                    return Err(DeployError::NotApproved(format!(
                        "the deployment was denied by {by}{}",
                        comment_suffix(&comment)
                    )));
                }
                "expired" => {
                    return Err(DeployError::NotApproved(format!(
                        "the deployment was not approved within {} s",
                        rule.timeout_seconds
                    )));
                }
                _ => tokio::time::sleep(poll).await,
            }
        }
    }

    pub async fn approval(&self, id: Uuid) -> Result<Option<ApprovalRow>, sqlx::Error> {
        db::approval(&self.db, id).await
    }

    pub async fn approvals(&self, status: Option<&str>) -> Result<Vec<ApprovalRow>, sqlx::Error> {
        db::list_approvals(&self.db, status).await
    }

    /// An approver's decision. Only a person (signed in, never a token or an agent) who belongs to
    /// the approving group and did not request the deployment may decide, and only while it is
    /// pending. Audited as `approval.decide`, refusals as `denied`.
    pub async fn decide(
        &self,
        id: Uuid,
        caller: &Caller,
        approve: bool,
        comment: &str,
    ) -> Result<ApprovalRow, DecisionError> {
        let row = self.approval(id).await?.ok_or(DecisionError::NotFound)?;
        if row.status != "pending" {
            return Err(DecisionError::Closed(row.status));
        }
        let approver = caller.user_ref.as_str();
        let refusal = if !caller.is_person() || !approver.starts_with("user:") {
            Some(
                "only a person may approve a deployment, never an API token, an agent or a service"
                    .to_owned(),
            )
        } else if approver.eq_ignore_ascii_case(&row.requested_by) {
            Some(format!(
                "{approver} requested this deployment; another member of {} must decide",
                row.approver_group
            ))
        } else if row.requested_by.starts_with("group:")
            && self.is_member(approver, &row.requested_by).await?
        {
            // A group's agent asked: its members (the token's maker among them) asked, in effect.
            Some(format!(
                "{approver} is a member of {}, whose agent requested this deployment; someone outside it must decide",
                row.requested_by
            ))
        } else if !self.is_member(approver, &row.approver_group).await? {
            Some(format!(
                "{approver} is not a member of {}, which decides on this deployment",
                row.approver_group
            ))
        } else {
            None
        };
        let target = format!("approval:{id}");
        if let Some(reason) = refusal {
            if let Err(error) = audit(
                &self.db,
                caller,
                "approval.decide",
                &target,
                "denied",
                json!({"reason": reason}),
            )
            .await
            {
                tracing::error!(%error, "could not write an audit event");
            }
            return Err(DecisionError::NotAllowed(reason));
        }
        // Then the permission policy (a rule may keep, say, prod approvals to on-call members).
        match self
            .permit(caller, "deploy.approve", None, None, &row.environment)
            .await
        {
            Ok(()) => {}
            Err(DeployError::Database(e)) => return Err(DecisionError::Database(e)),
            Err(_) => {
                return Err(DecisionError::NotAllowed(
                    "You are not allowed to do this".to_owned(),
                ));
            }
        }
        let status = if approve { "approved" } else { "denied" };
        let mut tx = self.db.begin().await?;
        if !db::decide_approval(&mut *tx, id, status, approver, comment).await? {
            return Err(DecisionError::Closed("expired".to_owned()));
        }
        audit(
            &mut *tx,
            caller,
            "approval.decide",
            &target,
            "success",
            json!({
                "decision": status,
                "name": row.name,
                "cluster": row.cluster,
                "environment": row.environment,
                "namespace": row.namespace,
                "requestedBy": row.requested_by,
                "taskId": row.task_id,
            }),
        )
        .await?;
        tx.commit().await?;
        self.approval(id).await?.ok_or(DecisionError::NotFound)
    }

    /// Whether the user's catalog entity has a `memberOf` relation to the group.
    async fn is_member(&self, user: &str, group: &str) -> Result<bool, sqlx::Error> {
        let entity = match self.catalog.entity(&user.to_ascii_lowercase()).await {
            Ok(Some(entity)) => entity,
            Err(crate::error::AppError::Database(e)) => return Err(e),
            // A user without an entity (or an unreadable one) belongs to no group.
            Ok(None) | Err(_) => return Ok(false),
        };
        let group = group.to_ascii_lowercase();
        Ok(entity["relations"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| {
                r["type"] == "memberOf"
                    && r["targetRef"]
                        .as_str()
                        .is_some_and(|t| t.eq_ignore_ascii_case(&group))
            }))
    }

    /// A record, when the caller may see the entity it deployed (or it names none, or one the
    /// catalog no longer has).
    pub async fn deployment_for(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<Option<DeploymentRow>, crate::error::AppError> {
        let Some(row) = self.deployment(id).await? else {
            return Ok(None);
        };
        if let Some(entity_ref) = &row.entity_ref
            && self.catalog.visible_to(caller).is_some()
            && let Some(entity) = self
                .catalog
                .entity(&entity_ref.to_ascii_lowercase())
                .await?
            && !self.catalog.may_read(caller, &entity)
        {
            return Ok(None);
        }
        Ok(Some(row))
    }

    pub async fn deployment(&self, id: Uuid) -> Result<Option<DeploymentRow>, sqlx::Error> {
        db::deployment(&self.db, id).await
    }

    pub async fn list(
        &self,
        list: &db::DeploymentList,
    ) -> Result<(Vec<DeploymentRow>, i64), sqlx::Error> {
        db::list_deployments(&self.db, list).await
    }

    pub async fn health_history(&self, id: Uuid) -> Result<Vec<db::HealthRow>, sqlx::Error> {
        db::health_history(&self.db, id).await
    }

    fn cluster_of(&self, record: &DeploymentRow) -> Result<&ClusterConfig, DeployError> {
        self.config
            .clusters
            .iter()
            .find(|c| c.name == record.cluster)
            .ok_or_else(|| {
                DeployError::Input(format!(
                    "cluster `{}` is no longer configured",
                    record.cluster
                ))
            })
    }

    /// Reads the record's objects from the cluster and computes their health as Argo CD does (a
    /// workload with a pod stuck in CrashLoopBackOff or ImagePullBackOff is Degraded); stores it.
    pub async fn observe(&self, record: &DeploymentRow) -> Result<Observed, DeployError> {
        let client = self.connect(self.cluster_of(record)?).await?;
        let mut objects = Vec::new();
        for object in record.objects.as_array().into_iter().flatten() {
            let name = describe(object);
            let Some(live) = client.get(object).await? else {
                objects.push((
                    name,
                    HealthStatus::Missing,
                    "not found in the cluster".to_owned(),
                ));
                continue;
            };
            let pods = match pod_selector(&live) {
                Some(selector) => {
                    let namespace = live["metadata"]["namespace"].as_str();
                    client.list("v1", "Pod", namespace, &selector).await?
                }
                None => Vec::new(),
            };
            if let Some(found) = health::workload_health(&live, &pods) {
                objects.push((name, found.status, found.message));
            }
        }
        let worst = health::worst(objects.iter().map(|(_, status, _)| *status));
        let message = objects
            .iter()
            .filter(|(_, status, _)| *status == worst && worst != HealthStatus::Healthy)
            .map(|(name, _, message)| {
                if message.is_empty() {
                    name.clone()
                } else {
                    format!("{name}: {message}")
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        let mut tx = self.db.begin().await?;
        db::record_health(&mut tx, record.id, health_name(worst), &message).await?;
        tx.commit().await?;
        Ok(Observed {
            health: worst,
            message,
            objects,
        })
    }

    /// Observes until the objects are Healthy or Degraded, or the time is up.
    pub async fn wait(
        &self,
        record: &DeploymentRow,
        timeout: Duration,
        mut progress: impl FnMut(&Observed),
    ) -> Result<Observed, DeployError> {
        let deadline = Instant::now() + timeout;
        let poll = Duration::from_millis(self.config.poll_interval_ms.max(10));
        let mut last_message = None;
        loop {
            let observed = self.observe(record).await?;
            if last_message.as_ref() != Some(&(observed.health, observed.message.clone())) {
                progress(&observed);
                last_message = Some((observed.health, observed.message.clone()));
            }
            if matches!(
                observed.health,
                HealthStatus::Healthy | HealthStatus::Degraded
            ) || Instant::now() + poll > deadline
            {
                return Ok(observed);
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Re-applies an earlier revision's objects as a new revision, through the same guardrails. Needs
    /// `deploy:<the record's environment>`.
    pub async fn rollback(&self, id: Uuid, caller: &Caller) -> Result<ApplyOutcome, DeployError> {
        let record = self
            .deployment(id)
            .await?
            .ok_or_else(|| DeployError::Input(format!("no deployment {id}")))?;
        let scope = Scope::Deploy(record.environment.clone());
        if !caller.allows(&scope) {
            if let Err(error) = audit(
                &self.db,
                caller,
                "deployment.rollback",
                &format!("deployment:{id}"),
                "denied",
                json!({"needs": scope.to_string()}),
            )
            .await
            {
                tracing::error!(%error, "could not write an audit event");
            }
            return Err(DeployError::NotPermitted {
                permission: scope.to_string(),
                actor: caller.actor(),
            });
        }
        self.permit(
            caller,
            "deploy.rollback",
            record.entity_ref.as_deref(),
            None,
            &record.environment,
        )
        .await?;
        if record.status != "applied" {
            return Err(DeployError::Input(format!(
                "revision {} of {} failed to apply; roll back to one that was applied",
                record.revision, record.name
            )));
        }
        if self.config.approval(&record.environment).required {
            // An approval waits for hours; a request cannot. Re-running the template waits in its task.
            return Err(DeployError::NotApproved(format!(
                "environment `{}` requires an approval: roll back by running the template again with the earlier parameters (its task waits for the approval)",
                record.environment
            )));
        }
        let objects = record.objects.as_array().cloned().unwrap_or_default();
        self.apply(ApplyRequest {
            cluster: Some(&record.cluster),
            environment: Some(&record.environment),
            namespace: &record.namespace,
            name: &record.name,
            kubernetes_id: &record.kubernetes_id,
            entity_ref: record.entity_ref.as_deref(),
            objects,
            template_ref: record.template_ref.as_deref(),
            task_id: None,
            parameters: &record.parameters,
            caller,
            dry_run: false,
            rollback_of: Some(record.id),
            approver_group: None,
            log: None,
        })
        .await
    }

    /// Where the live objects differ from this record: a server-side dry-run apply of the recorded
    /// objects compared with the live ones. A field another manager took over is drift too. Nothing is
    /// changed.
    pub async fn drift(&self, record: &DeploymentRow) -> Result<Vec<Drift>, DeployError> {
        let client = self.connect(self.cluster_of(record)?).await?;
        let mut drifts = Vec::new();
        for object in record.objects.as_array().into_iter().flatten() {
            let name = describe(object);
            let Some(live) = client.get(object).await? else {
                drifts.push(Drift {
                    object: name,
                    field: String::new(),
                    detail: "deleted from the cluster".to_owned(),
                });
                continue;
            };
            match client.apply(object, true).await {
                Ok(planned) => {
                    let mut fields = Vec::new();
                    diff(
                        &comparable(&live),
                        &comparable(&planned.object),
                        String::new(),
                        &mut fields,
                    );
                    drifts.extend(fields.into_iter().map(|field| Drift {
                        object: name.clone(),
                        field,
                        detail: "changed in the cluster since this revision was applied".to_owned(),
                    }));
                }
                Err(KubeError::Conflict { conflicts, .. }) => {
                    drifts.extend(conflicts.into_iter().map(|c| Drift {
                        object: name.clone(),
                        field: c.field,
                        detail: format!("now owned and changed by field manager \"{}\"", c.manager),
                    }));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(drifts)
    }

    /// Every configured cluster with its reachability and version.
    pub async fn clusters(&self) -> Vec<ClusterStatus> {
        let checks = self.config.clusters.iter().map(|cluster| async move {
            let version = match self.connect(cluster).await {
                Ok(client) => client.version().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            ClusterStatus {
                name: cluster.name.clone(),
                environment: cluster.environment.clone(),
                namespaces: cluster.namespaces.clone(),
                url: cluster
                    .url
                    .clone()
                    .unwrap_or_else(|| "(from kubeconfig / in-cluster)".to_owned()),
                version,
            }
        });
        futures::future::join_all(checks).await
    }
}

/// Why a decision on an approval was not taken.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("no such approval")]
    NotFound,
    #[error("the approval is already {0}")]
    Closed(String),
    #[error("{0}")]
    NotAllowed(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The audit log's name for an apply: a rollback, or a deployment.
fn apply_action(request: &ApplyRequest<'_>) -> &'static str {
    if request.rollback_of.is_some() {
        "deployment.rollback"
    } else {
        "deployment.apply"
    }
}

/// The page where an approval is decided.
pub fn approval_url(id: Uuid) -> String {
    format!("/deployments/approvals/{id}")
}

fn comment_suffix(comment: &str) -> String {
    if comment.is_empty() {
        String::new()
    } else {
        format!(": {comment}")
    }
}

/// One field where the live object left the recorded revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub object: String,
    /// `.spec.replicas`; empty when the whole object is gone.
    pub field: String,
    pub detail: String,
}

/// The health status as the API and the database spell it.
pub fn health_name(status: HealthStatus) -> &'static str {
    match status {
        HealthStatus::Healthy => "Healthy",
        HealthStatus::Suspended => "Suspended",
        HealthStatus::Progressing => "Progressing",
        HealthStatus::Missing => "Missing",
        HealthStatus::Degraded => "Degraded",
        HealthStatus::Unknown => "Unknown",
    }
}

fn check_label_value(what: &str, value: &str) -> Result<(), DeployError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(DeployError::Input(format!(
            "the deployment {what} `{value}` is not a valid label value (at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit)"
        )))
    }
}

/// Adds Atrium's labels to an object (and to its pod template, so pods carry them too), and the
/// default namespace to a namespaced object that names none.
fn label(
    object: &mut Value,
    request: &ApplyRequest<'_>,
    cluster: &ClusterConfig,
) -> Result<(), DeployError> {
    let name = describe(object);
    let Some(map) = object.as_object_mut() else {
        return Err(DeployError::Input("a manifest is not an object".to_owned()));
    };
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let metadata = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(metadata) = metadata.as_object_mut() else {
        return Err(DeployError::Input(format!(
            "{name}: metadata is not an object"
        )));
    };
    if !policy::is_cluster_scoped(&kind) && !metadata.contains_key("namespace") {
        metadata.insert("namespace".to_owned(), json!(request.namespace));
    }
    let _ = cluster;
    add_labels(metadata, request);
    for path in [
        &["spec", "template", "metadata"][..],
        &["spec", "jobTemplate", "spec", "template", "metadata"][..],
    ] {
        let Some(parent) = path[..path.len() - 1]
            .iter()
            .try_fold(&mut *map, |at, key| at.get_mut(*key)?.as_object_mut())
        else {
            continue;
        };
        let template = parent
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(template) = template.as_object_mut() {
            add_labels(template, request);
        }
    }
    Ok(())
}

fn add_labels(metadata: &mut Map<String, Value>, request: &ApplyRequest<'_>) {
    let labels = metadata
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(labels) = labels.as_object_mut() {
        labels.insert(KUBERNETES_ID_LABEL.to_owned(), json!(request.kubernetes_id));
        labels.insert(DEPLOYMENT_LABEL.to_owned(), json!(request.name));
    }
}

/// The label selector of a workload's pods (`spec.selector.matchLabels`), for kinds that have pods.
fn pod_selector(object: &Value) -> Option<String> {
    let kind = object["kind"].as_str()?;
    if !matches!(
        kind,
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job"
    ) {
        return None;
    }
    let labels = object["spec"]["selector"]["matchLabels"].as_object()?;
    if labels.is_empty() {
        return None;
    }
    Some(
        labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// An object without what the server keeps for itself (status, bookkeeping metadata).
fn comparable(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
        if let Some(metadata) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in [
                "managedFields",
                "resourceVersion",
                "generation",
                "uid",
                "creationTimestamp",
            ] {
                metadata.remove(key);
            }
        }
    }
    object
}

/// The paths (`.spec.replicas`) where two JSON values differ.
fn diff(live: &Value, planned: &Value, at: String, out: &mut Vec<String>) {
    match (live, planned) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let path = format!("{at}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff(x, y, path, out),
                    _ => out.push(path),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(x, y, format!("{at}[{i}]"), out);
            }
        }
        (a, b) if a != b => out.push(at),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_each_changed_path() {
        let live = json!({"spec": {"replicas": 5, "template": {"containers": [{"image": "a:1"}]}}});
        let planned =
            json!({"spec": {"replicas": 2, "template": {"containers": [{"image": "a:1"}]}}});
        let mut out = Vec::new();
        diff(&live, &planned, String::new(), &mut out);
        assert_eq!(out, vec![".spec.replicas"]);
    }

    #[test]
    fn pods_of_a_deployment_are_found_by_its_match_labels() {
        let deployment = json!({"kind": "Deployment", "spec": {"selector": {"matchLabels": {"app": "web", "tier": "api"}}}});
        assert_eq!(
            pod_selector(&deployment).as_deref(),
            Some("app=web,tier=api")
        );
        let service = json!({"kind": "Service", "spec": {"selector": {"app": "web"}}});
        assert_eq!(pod_selector(&service), None);
    }

    #[test]
    fn label_values_are_checked() {
        assert!(check_label_value("name", "support-assistant-dev").is_ok());
        assert!(check_label_value("name", "-bad").is_err());
        assert!(check_label_value("name", &"a".repeat(64)).is_err());
        assert!(check_label_value("name", "a/b").is_err());
    }
}
