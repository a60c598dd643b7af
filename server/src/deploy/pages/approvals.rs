//! `/deployments/approvals`: deployments waiting for a person's approval, and one approval with the
//! objects the cluster's dry run answered (what would be applied) and the approve and deny forms.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Redirect;
use serde::Deserialize;
use uuid::Uuid;

use super::super::db::ApprovalRow;
use super::super::service::{DeployService, approval_url};
use crate::auth::Caller;
use crate::error::AppError;
use crate::http::Path;
use crate::ui::csrf::check_same_origin;

pub struct ApprovalLine {
    pub href: String,
    pub name: String,
    pub environment: String,
    pub cluster: String,
    pub namespace: String,
    pub requested_by: String,
    pub approver_group: String,
    pub status: String,
    pub created_at: String,
}

fn line(row: &ApprovalRow) -> ApprovalLine {
    ApprovalLine {
        href: approval_url(row.id),
        name: row.name.clone(),
        environment: row.environment.clone(),
        cluster: row.cluster.clone(),
        namespace: row.namespace.clone(),
        requested_by: row.requested_by.clone(),
        approver_group: row.approver_group.clone(),
        status: row.status.clone(),
        created_at: row.created_at.clone(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "deploy/approvals.html")]
pub struct ApprovalsPage {
    approvals: Vec<ApprovalLine>,
}

pub async fn list_approvals(
    State(service): State<DeployService>,
) -> Result<ApprovalsPage, AppError> {
    let rows = service.approvals(None).await?;
    Ok(ApprovalsPage {
        approvals: rows.iter().map(line).collect(),
    })
}

pub struct PlannedObject {
    pub name: String,
    pub yaml: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "deploy/approval.html")]
pub struct ApprovalPage {
    a: ApprovalLine,
    task_href: Option<String>,
    decided_by: Option<String>,
    comment: String,
    expires_at: String,
    planned: Vec<PlannedObject>,
}

fn parse_id(id: &str) -> Result<Uuid, AppError> {
    id.parse()
        .map_err(|_| AppError::not_found(format!("Approval {id} does not exist")))
}

pub async fn show_approval(
    State(service): State<DeployService>,
    Path(id): Path<String>,
) -> Result<ApprovalPage, AppError> {
    let id = parse_id(&id)?;
    let row = service
        .approval(id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Approval {id} does not exist")))?;
    Ok(ApprovalPage {
        a: line(&row),
        task_href: row.task_id.map(|t| format!("/create/tasks/{t}")),
        decided_by: row.decided_by.clone(),
        comment: row.comment.clone(),
        expires_at: row.expires_at.clone(),
        planned: row
            .planned
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| PlannedObject {
                name: super::super::cluster::describe(o),
                yaml: serde_saphyr::to_string(o).unwrap_or_else(|_| o.to_string()),
            })
            .collect(),
    })
}

#[derive(Deserialize)]
pub struct DecisionForm {
    decision: String,
    #[serde(default)]
    comment: String,
}

pub async fn decide(
    State(service): State<DeployService>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<DecisionForm>,
) -> Result<Redirect, AppError> {
    check_same_origin(&headers)?;
    let id = parse_id(&id)?;
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        other => {
            return Err(AppError::input(format!(
                "decision must be approve or deny, not {other:?}"
            )));
        }
    };
    service
        .decide(id, &caller, approve, form.comment.trim())
        .await?;
    Ok(Redirect::to(&approval_url(id)))
}
