//! The deployment pages: `/deployments` (history, filtered), `/deployments/{id}` (one revision: its
//! objects, health over time, drift on demand, rollback) and `/clusters` (each cluster's reachability,
//! version, environment and namespaces).

mod approvals;
mod kubernetes;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::HeaderMap;
use axum::response::Redirect;
use axum::routing::{get, post};
use uuid::Uuid;

use super::actions::deployment_url;
use super::db::{DeploymentList, DeploymentRow};
use super::service::DeployService;
use crate::auth::Caller;
use crate::error::AppError;
use crate::http::{Path, QueryParams};
use crate::ui::csrf::check_same_origin;

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    DeployService: FromRef<S>,
    crate::catalog::CatalogService: FromRef<S>,
{
    Router::new()
        .route("/deployments", get(list_deployments))
        .route("/deployments/{id}", get(show_deployment))
        .route("/deployments/{id}/rollback", post(rollback))
        .route("/clusters", get(list_clusters))
        .route("/deployments/approvals", get(approvals::list_approvals))
        .route(
            "/deployments/approvals/{id}",
            get(approvals::show_approval).post(approvals::decide),
        )
        .route(
            "/catalog/{namespace}/{kind}/{name}/kubernetes",
            get(kubernetes::show_kubernetes),
        )
}

pub struct DeploymentSummary {
    pub href: String,
    pub name: String,
    pub revision: i32,
    pub cluster: String,
    pub environment: String,
    pub namespace: String,
    pub status: String,
    pub health: String,
    pub created_at: String,
    pub created_by: String,
}

fn summary(row: &DeploymentRow) -> DeploymentSummary {
    DeploymentSummary {
        href: deployment_url(row.id),
        name: row.name.clone(),
        revision: row.revision,
        cluster: row.cluster.clone(),
        environment: row.environment.clone(),
        namespace: row.namespace.clone(),
        status: row.status.clone(),
        health: row.health.clone(),
        created_at: row.created_at.clone(),
        created_by: row.created_by.clone(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "deploy/list.html")]
pub struct DeploymentsPage {
    deployments: Vec<DeploymentSummary>,
    total: i64,
    environment: String,
    entity: String,
}

async fn list_deployments(
    State(service): State<DeployService>,
    caller: Caller,
    params: QueryParams,
) -> Result<DeploymentsPage, AppError> {
    let environment = params.one("environment").unwrap_or_default();
    let entity = params.one("entity").unwrap_or_default();
    let list = DeploymentList {
        environment: Some(environment.clone())
            .filter(|e| !e.is_empty())
            .into_iter()
            .collect(),
        entity_ref: Some(entity.to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .into_iter()
            .collect(),
        limit: 100,
        visible: service.catalog().visible_to(&caller),
        ..Default::default()
    };
    let (rows, total) = service.list(&list).await?;
    Ok(DeploymentsPage {
        deployments: rows.iter().map(summary).collect(),
        total,
        environment,
        entity,
    })
}

pub struct ObjectLine {
    pub name: String,
    pub yaml: String,
}

pub struct HealthLine {
    pub status: String,
    pub message: String,
    pub observed_at: String,
}

pub struct DriftLine {
    pub object: String,
    pub field: String,
    pub detail: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "deploy/deployment.html")]
pub struct DeploymentPage {
    d: DeploymentSummary,
    id: Uuid,
    entity_ref: Option<String>,
    task_href: Option<String>,
    rollback_of: Option<String>,
    error: Option<String>,
    health_message: String,
    objects: Vec<ObjectLine>,
    history: Vec<HealthLine>,
    /// `None` until asked for (`?drift=1`); then the drift, or why it could not be read.
    drift: Option<Result<Vec<DriftLine>, String>>,
    revisions: Vec<DeploymentSummary>,
}

fn parse_id(id: &str) -> Result<Uuid, AppError> {
    id.parse()
        .map_err(|_| AppError::not_found(format!("Deployment {id} does not exist")))
}

async fn show_deployment(
    State(service): State<DeployService>,
    caller: Caller,
    Path(id): Path<String>,
    params: QueryParams,
) -> Result<DeploymentPage, AppError> {
    let id = parse_id(&id)?;
    let row = service
        .deployment_for(&caller, id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Deployment {id} does not exist")))?;
    let history = service.health_history(id).await?;
    let drift = if params.one("drift").is_some() {
        Some(match service.drift(&row).await {
            Ok(found) => Ok(found
                .into_iter()
                .map(|d| DriftLine {
                    object: d.object,
                    field: d.field,
                    detail: d.detail,
                })
                .collect()),
            Err(e) => Err(e.to_string()),
        })
    } else {
        None
    };
    let (revisions, _) = service
        .list(&DeploymentList {
            name: vec![row.name.clone()],
            cluster: vec![row.cluster.clone()],
            limit: 20,
            ..Default::default()
        })
        .await?;
    Ok(DeploymentPage {
        d: summary(&row),
        id,
        entity_ref: row.entity_ref.clone(),
        task_href: row.task_id.map(|t| format!("/create/tasks/{t}")),
        rollback_of: row.rollback_of.map(deployment_url),
        error: row.error.clone(),
        health_message: row.health_message.clone(),
        objects: row
            .objects
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| ObjectLine {
                name: super::cluster::describe(o),
                yaml: serde_saphyr::to_string(o).unwrap_or_else(|_| o.to_string()),
            })
            .collect(),
        history: history
            .into_iter()
            .map(|h| HealthLine {
                status: h.health,
                message: h.message,
                observed_at: h.observed_at,
            })
            .collect(),
        drift,
        revisions: revisions.iter().map(summary).collect(),
    })
}

async fn rollback(
    State(service): State<DeployService>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Redirect, AppError> {
    check_same_origin(&headers)?;
    let id = parse_id(&id)?;
    let outcome = service
        .rollback(id, &caller)
        .await
        .map_err(AppError::from)?;
    let target = outcome.deployment.map_or(id, |d| d.id);
    Ok(Redirect::to(&deployment_url(target)))
}

pub struct ClusterLine {
    pub name: String,
    pub environment: String,
    pub namespaces: String,
    pub url: String,
    pub version: Option<String>,
    pub error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "deploy/clusters.html")]
pub struct ClustersPage {
    clusters: Vec<ClusterLine>,
}

async fn list_clusters(State(service): State<DeployService>) -> ClustersPage {
    let clusters = service.clusters().await;
    ClustersPage {
        clusters: clusters
            .into_iter()
            .map(|c| ClusterLine {
                name: c.name,
                environment: c.environment,
                namespaces: c.namespaces.join(", "),
                url: c.url,
                version: c.version.as_ref().ok().cloned(),
                error: c.version.err(),
            })
            .collect(),
    }
}
