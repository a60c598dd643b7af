//! `/api/deployments` and `/api/clusters`: deployment records (filter, one record with its health over
//! time, drift, rollback) and the configured clusters with their reachability. A rollback needs
//! `deploy:<environment>`; only a person decides on an approval (see `DeployService::decide`).

use axum::Json;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use uuid::Uuid;

use super::db::ApprovalRow;
use super::db::{DeploymentList, DeploymentRow, HealthRow};
use super::service::{DecisionError, DeployError, DeployService, health_name};
use crate::auth::Caller;
use crate::error::AppError;
use crate::http::{Path, QueryParams};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    DeployService: FromRef<S>,
{
    Router::new()
        .route("/deployments", get(list_deployments))
        .route("/deployments/{id}", get(get_deployment))
        .route("/deployments/{id}/drift", get(get_drift))
        .route("/deployments/{id}/rollback", post(rollback_deployment))
        .route("/deployments/{id}/health", get(observe_health))
        .route("/clusters", get(list_clusters))
        .route("/deployments/approvals", get(list_approvals))
        .route(
            "/deployments/approvals/{id}",
            get(get_approval).post(decide_approval),
        )
}

pub fn approval_json(row: &ApprovalRow) -> Value {
    json!({
        "id": row.id,
        "taskId": row.task_id,
        "name": row.name,
        "cluster": row.cluster,
        "environment": row.environment,
        "namespace": row.namespace,
        "requestedBy": row.requested_by,
        "approverGroup": row.approver_group,
        "planned": row.planned,
        "status": row.status,
        "decidedBy": row.decided_by,
        "comment": row.comment,
        "createdAt": row.created_at,
        "expiresAt": row.expires_at,
        "decidedAt": row.decided_at,
    })
}

impl From<DecisionError> for AppError {
    fn from(error: DecisionError) -> Self {
        match error {
            DecisionError::NotFound => AppError::not_found("No such approval"),
            DecisionError::Closed(_) => AppError::Conflict(error.to_string()),
            DecisionError::NotAllowed(message) => AppError::NotAllowed(message),
            DecisionError::Database(e) => AppError::Database(e),
        }
    }
}

/// `GET /deployments/approvals?status=pending`.
async fn list_approvals(
    State(service): State<DeployService>,
    query: QueryParams,
) -> Result<Json<Value>, AppError> {
    let status = query.one("status");
    if let Some(status) = &status
        && !matches!(
            status.as_str(),
            "pending" | "approved" | "denied" | "expired"
        )
    {
        return Err(AppError::input(format!(
            "status must be pending, approved, denied or expired, not {status:?}"
        )));
    }
    let rows = service.approvals(status.as_deref()).await?;
    Ok(Json(
        json!({"items": rows.iter().map(approval_json).collect::<Vec<_>>()}),
    ))
}

async fn get_approval(
    State(service): State<DeployService>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id: Uuid = id
        .parse()
        .map_err(|_| AppError::not_found("No such approval"))?;
    let row = service
        .approval(id)
        .await?
        .ok_or_else(|| AppError::not_found("No such approval"))?;
    Ok(Json(approval_json(&row)))
}

/// `POST /deployments/approvals/{id}` with `{"decision": "approve" | "deny", "comment": "..."}`.
async fn decide_approval(
    State(service): State<DeployService>,
    caller: Caller,
    Path(id): Path<String>,
    crate::http::ApiJson(body): crate::http::ApiJson<Value>,
) -> Result<Json<Value>, AppError> {
    let id: Uuid = id
        .parse()
        .map_err(|_| AppError::not_found("No such approval"))?;
    let approve = match body["decision"].as_str() {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return Err(AppError::InvalidField {
                field: "decision".to_owned(),
                message: "decision must be \"approve\" or \"deny\"".to_owned(),
            });
        }
    };
    let comment = body["comment"].as_str().unwrap_or_default();
    let row = service.decide(id, &caller, approve, comment).await?;
    Ok(Json(approval_json(&row)))
}

pub fn deployment_json(row: &DeploymentRow) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "revision": row.revision,
        "cluster": row.cluster,
        "environment": row.environment,
        "namespace": row.namespace,
        "entityRef": row.entity_ref,
        "kubernetesId": row.kubernetes_id,
        "templateRef": row.template_ref,
        "taskId": row.task_id,
        "parameters": row.parameters,
        "objects": row.objects,
        "createdBy": row.created_by,
        "createdAt": row.created_at,
        "status": row.status,
        "health": {"status": row.health, "message": row.health_message, "checkedAt": row.health_checked_at},
        "rollbackOf": row.rollback_of,
        "approvalId": row.approval_id,
        "error": row.error,
    })
}

fn history_json(rows: &[HealthRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|h| json!({"status": h.health, "message": h.message, "observedAt": h.observed_at}))
            .collect(),
    )
}

fn record_id(id: &str) -> Result<Uuid, AppError> {
    id.parse()
        .map_err(|_| AppError::not_found(format!("Deployment {id} does not exist")))
}

async fn record(
    service: &DeployService,
    caller: &Caller,
    id: &str,
) -> Result<DeploymentRow, AppError> {
    let id = record_id(id)?;
    service
        .deployment_for(caller, id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Deployment {id} does not exist")))
}

impl From<DeployError> for AppError {
    fn from(error: DeployError) -> Self {
        match error {
            DeployError::Input(message) => AppError::Input(message),
            DeployError::Guardrails(_) => AppError::NotAllowed(error.to_string()),
            DeployError::Kube(e) => AppError::Conflict(e.to_string()),
            DeployError::NotApproved(message) => AppError::NotAllowed(message),
            DeployError::NotPermitted { permission, .. } => AppError::Forbidden { permission },
            // The rule is in the audit log, not in the answer.
            DeployError::Refused(_) => {
                AppError::NotAllowed("You are not allowed to do this".to_owned())
            }
            DeployError::Database(e) => AppError::Database(e),
        }
    }
}

/// `GET /deployments?entity=&cluster=&environment=&name=&status=&limit=&offset=`: newest first.
async fn list_deployments(
    State(service): State<DeployService>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<Value>, AppError> {
    for (key, _) in query.pairs() {
        if !matches!(
            key.as_str(),
            "entity" | "cluster" | "environment" | "name" | "status" | "limit" | "offset"
        ) {
            return Err(AppError::input(format!(
                "unknown query parameter `{key}`; use entity, cluster, environment, name, status, limit, offset"
            )));
        }
    }
    let number = |key: &str, default: i64, max: i64| -> Result<i64, AppError> {
        match query.one(key) {
            None => Ok(default),
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=max).contains(n))
                .ok_or_else(|| {
                    AppError::input(format!(
                        "`{key}` must be a number from 0 to {max}, not {raw:?}"
                    ))
                }),
        }
    };
    let list = DeploymentList {
        entity_ref: query
            .list("entity")
            .into_iter()
            .map(|e| e.to_ascii_lowercase())
            .collect(),
        cluster: query.list("cluster"),
        environment: query.list("environment"),
        name: query.list("name"),
        status: query.list("status"),
        limit: number("limit", 50, 500)?,
        offset: number("offset", 0, i64::MAX)?,
        visible: service.catalog().visible_to(&caller),
    };
    let (rows, total) = service.list(&list).await?;
    Ok(Json(json!({
        "items": rows.iter().map(deployment_json).collect::<Vec<_>>(),
        "totalItems": total,
    })))
}

/// `GET /deployments/{id}`: the record with its health over time.
async fn get_deployment(
    State(service): State<DeployService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let row = record(&service, &caller, &id).await?;
    let history = service.health_history(row.id).await?;
    let mut body = deployment_json(&row);
    body["healthHistory"] = history_json(&history);
    Ok(Json(body))
}

/// `GET /deployments/{id}/drift`: where the live objects left this revision (nothing is changed).
async fn get_drift(
    State(service): State<DeployService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let row = record(&service, &caller, &id).await?;
    let drift = service.drift(&row).await?;
    Ok(Json(json!({
        "deploymentId": row.id,
        "drifted": !drift.is_empty(),
        "drift": drift.iter().map(|d| json!({"object": d.object, "field": d.field, "detail": d.detail})).collect::<Vec<_>>(),
    })))
}

/// `POST /deployments/{id}/rollback`: re-applies that revision's objects as a new revision.
async fn rollback_deployment(
    State(service): State<DeployService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = record_id(&id)?;
    let outcome = service.rollback(id, &caller).await?;
    let record = outcome
        .deployment
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("rollback wrote no record")))?;
    Ok((StatusCode::CREATED, Json(deployment_json(&record))).into_response())
}

/// `GET /deployments/{id}/health`: reads the objects' health from the cluster now (and stores it).
async fn observe_health(
    State(service): State<DeployService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let row = record(&service, &caller, &id).await?;
    let observed = service.observe(&row).await?;
    Ok(Json(json!({
        "status": health_name(observed.health),
        "message": observed.message,
        "objects": observed.objects.iter().map(|(name, status, message)| json!({
            "object": name, "status": health_name(*status), "message": message,
        })).collect::<Vec<_>>(),
    })))
}

/// `GET /clusters`: each configured cluster, reachable or not, with its version.
async fn list_clusters(State(service): State<DeployService>) -> Json<Value> {
    let clusters = service.clusters().await;
    Json(json!({
        "items": clusters.iter().map(|c| json!({
            "name": c.name,
            "environment": c.environment,
            "namespaces": c.namespaces,
            "url": c.url,
            "reachable": c.version.is_ok(),
            "version": c.version.as_ref().ok(),
            "error": c.version.as_ref().err(),
        })).collect::<Vec<_>>(),
    }))
}
