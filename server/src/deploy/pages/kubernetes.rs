//! `/catalog/{namespace}/{kind}/{name}/kubernetes`: an entity's Kubernetes tab. Its live workloads,
//! pods and events in every cluster (`deploy::workloads`), the deployment records Atrium wrote for it,
//! and for a Model, where each version runs.
//!
//! Served by `deploy`, not by the catalog's pages: the catalog knows nothing of clusters; this page
//! reads the entity through `CatalogService` like any other client.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use serde_json::Value;

use super::{DeploymentSummary, summary};
use crate::auth::Caller;
use crate::catalog::CatalogService;
use crate::catalog::model::refs::EntityRef;
use crate::catalog::pages::view::{EntitySummary, catalog_href};
use crate::deploy::actions::deployment_url;
use crate::deploy::db::{DeploymentList, DeploymentRow};
use crate::deploy::health::{self, Health};
use crate::deploy::service::{DeployService, KUBERNETES_ID_LABEL, health_name};
use crate::deploy::workloads::{
    ClusterWorkloads, EntitySelector, EventLine, KUBERNETES_ID_ANNOTATION,
    LABEL_SELECTOR_ANNOTATION, entity_selector, entity_workloads,
};
use crate::error::AppError;
use crate::http::Path;

/// The label `deploy:model` puts on every object with the version it serves (`deploy::model`).
const MODEL_VERSION_LABEL: &str = "atrium.dev/model-version";

/// Deployment records listed on the page; the rest are a link away.
const RECORDS_SHOWN: i64 = 50;
/// Applied records read to find what each target of a Model runs now.
const TARGET_RECORDS_READ: i64 = 500;

#[derive(Template, WebTemplate)]
#[template(path = "deploy/kubernetes.html")]
pub struct KubernetesPage {
    kind: String,
    namespace: String,
    name: String,
    title: String,
    entity_href: String,
    kubernetes_href: String,
    kind_href: String,
    /// The label selector the workloads were listed with.
    selector: Option<String>,
    /// The selector is the `backstage.io/kubernetes-id` label of Atrium's own deployments of the
    /// entity, which has no annotation.
    selector_from_records: bool,
    /// Why the annotation cannot be used, when it is set but wrong.
    selector_problem: Option<String>,
    id_annotation: &'static str,
    selector_annotation: &'static str,
    clusters: Vec<ClusterView>,
    deployments: Vec<DeploymentSummary>,
    deployments_total: i64,
    /// The deployments list of the entity, when there are more records than shown here.
    all_deployments_href: Option<String>,
    /// For a Model: each version and the targets that serve it.
    versions: Option<Vec<VersionRuns>>,
}

pub struct ClusterView {
    pub name: String,
    pub environment: String,
    pub namespaces: String,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub workloads: Vec<WorkloadView>,
    pub pods: Vec<PodView>,
    pub events: Vec<EventLine>,
}

pub struct WorkloadView {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub detail: String,
    /// Empty when no health rule applies to the object.
    pub health: String,
    pub health_message: String,
}

pub struct PodView {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub ready: String,
    pub restarts: u64,
    pub waiting: String,
    pub health: String,
    pub health_message: String,
}

pub struct VersionRuns {
    pub version: String,
    /// The version is no longer in the Model's `spec.versions`.
    pub retired: bool,
    pub targets: Vec<RunningTarget>,
}

pub struct RunningTarget {
    pub environment: String,
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub revision: i32,
    pub href: String,
    pub health: String,
    /// `live` when read from the cluster just now, else when it was last recorded.
    pub health_source: String,
}

/// `GET /catalog/{namespace}/{kind}/{name}/kubernetes`.
pub async fn show_kubernetes(
    State(catalog): State<CatalogService>,
    State(service): State<DeployService>,
    caller: Caller,
    Path((namespace, kind, name)): Path<(String, String, String)>,
) -> Result<KubernetesPage, AppError> {
    let key = EntityRef::new(&kind, &namespace, &name).key();
    let entity = catalog.entity_for(&caller, &key).await?.ok_or_else(|| {
        AppError::not_found(format!(
            "There is no {kind} named {namespace}/{name} in the catalog."
        ))
    })?;
    let entity_summary = EntitySummary::from_entity(&entity);
    let (records, deployments_total) = service
        .list(&DeploymentList {
            entity_ref: vec![key.clone()],
            limit: RECORDS_SHOWN,
            ..Default::default()
        })
        .await?;

    let (selector, selector_from_records, selector_problem) = match entity_selector(&entity) {
        EntitySelector::Labels(selector) => (Some(selector), false, None),
        EntitySelector::Invalid(problem) => (None, false, Some(problem)),
        EntitySelector::Missing => {
            let recorded = recorded_selector(&records);
            let from_records = recorded.is_some();
            (recorded, from_records, None)
        }
    };
    let clusters = match &selector {
        Some(selector) => entity_workloads(&service, selector).await,
        None => Vec::new(),
    };

    let versions = if entity_summary.kind.eq_ignore_ascii_case("model") {
        let (applied, _) = service
            .list(&DeploymentList {
                entity_ref: vec![key.clone()],
                status: vec!["applied".to_owned()],
                limit: TARGET_RECORDS_READ,
                ..Default::default()
            })
            .await?;
        Some(model_versions(&entity, &applied, &clusters))
    } else {
        None
    };

    Ok(KubernetesPage {
        kubernetes_href: format!("{}/kubernetes", entity_summary.href),
        kind_href: catalog_href(&[("kind", &entity_summary.kind)]),
        all_deployments_href: (deployments_total > records.len() as i64).then(|| {
            format!(
                "/deployments?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("entity", &key)
                    .finish()
            )
        }),
        entity_href: entity_summary.href,
        kind: entity_summary.kind,
        namespace: entity_summary.namespace,
        name: entity_summary.name,
        title: entity_summary.title,
        selector,
        selector_from_records,
        selector_problem,
        id_annotation: KUBERNETES_ID_ANNOTATION,
        selector_annotation: LABEL_SELECTOR_ANNOTATION,
        clusters: clusters.into_iter().map(cluster_view).collect(),
        deployments: records.iter().map(summary).collect(),
        deployments_total,
        versions,
    })
}

/// For an entity without annotations, the `backstage.io/kubernetes-id` labels Atrium put on what it
/// deployed for it (valid label values: the apply checked them).
fn recorded_selector(records: &[DeploymentRow]) -> Option<String> {
    let mut ids: Vec<&str> = records.iter().map(|r| r.kubernetes_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    match ids.as_slice() {
        [] => None,
        [id] => Some(format!("{KUBERNETES_ID_LABEL}={id}")),
        ids => Some(format!("{KUBERNETES_ID_LABEL} in ({})", ids.join(","))),
    }
}

fn health_strings(health: Option<&Health>) -> (String, String) {
    health.map_or_else(Default::default, |h| {
        (health_name(h.status).to_owned(), h.message.clone())
    })
}

fn cluster_view(found: ClusterWorkloads) -> ClusterView {
    ClusterView {
        name: found.cluster,
        environment: found.environment,
        namespaces: found.namespaces.join(", "),
        error: found.error,
        warnings: found.warnings,
        workloads: found
            .workloads
            .into_iter()
            .map(|w| {
                let (health, health_message) = health_strings(w.health.as_ref());
                WorkloadView {
                    kind: w.kind,
                    namespace: w.namespace,
                    name: w.name,
                    detail: w.detail,
                    health,
                    health_message,
                }
            })
            .collect(),
        pods: found
            .pods
            .into_iter()
            .map(|p| {
                let (health, health_message) = health_strings(p.health.as_ref());
                PodView {
                    ready: format!("{}/{}", p.ready_containers, p.containers),
                    namespace: p.namespace,
                    name: p.name,
                    phase: p.phase,
                    restarts: p.restarts,
                    waiting: p.waiting.unwrap_or_default(),
                    health,
                    health_message,
                }
            })
            .collect(),
        events: found.events,
    }
}

/// The version a `deploy:model` record serves: the label on its objects.
fn served_version(record: &DeploymentRow) -> Option<&str> {
    record
        .objects
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|o| o["metadata"]["labels"][MODEL_VERSION_LABEL].as_str())
}

/// Each version of the Model (in `spec.versions` order, then retired ones) with the targets whose
/// latest applied revision serves it. `applied` is newest first, so a target's first record is
/// what runs there: a failed apply left the previous revision's objects in place.
fn model_versions(
    entity: &Value,
    applied: &[DeploymentRow],
    clusters: &[ClusterWorkloads],
) -> Vec<VersionRuns> {
    let mut versions: Vec<VersionRuns> = entity["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .map(|version| VersionRuns {
            version: version.to_owned(),
            retired: false,
            targets: Vec::new(),
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for record in applied {
        if !seen.insert((&record.cluster, &record.namespace, &record.name)) {
            continue;
        }
        let Some(version) = served_version(record) else {
            continue;
        };
        let target = running_target(record, clusters);
        match versions.iter_mut().find(|v| v.version == version) {
            Some(runs) => runs.targets.push(target),
            None => versions.push(VersionRuns {
                version: version.to_owned(),
                retired: true,
                targets: vec![target],
            }),
        }
    }
    for runs in &mut versions {
        runs.targets.sort_by(|a, b| {
            (&a.environment, &a.cluster, &a.namespace, &a.name).cmp(&(
                &b.environment,
                &b.cluster,
                &b.namespace,
                &b.name,
            ))
        });
    }
    versions
}

/// A target with its health: live when the cluster was read and holds its objects, else as last
/// recorded (the cluster is unreachable, or the entity's selector does not find them).
fn running_target(record: &DeploymentRow, clusters: &[ClusterWorkloads]) -> RunningTarget {
    let live: Vec<_> = clusters
        .iter()
        .filter(|c| c.cluster == record.cluster && c.error.is_none())
        .flat_map(|c| &c.workloads)
        .filter(|w| {
            w.namespace == record.namespace && w.deployment.as_deref() == Some(&record.name)
        })
        .filter_map(|w| w.health.as_ref().map(|h| h.status))
        .collect();
    let (health, health_source) = if live.is_empty() {
        let when = record.health_checked_at.as_deref().map_or_else(
            || "never observed".to_owned(),
            |at| format!("recorded {at}"),
        );
        (record.health.clone(), when)
    } else {
        (
            health_name(health::worst(live)).to_owned(),
            "live".to_owned(),
        )
    };
    RunningTarget {
        environment: record.environment.clone(),
        cluster: record.cluster.clone(),
        namespace: record.namespace.clone(),
        name: record.name.clone(),
        revision: record.revision,
        href: deployment_url(record.id),
        health,
        health_source,
    }
}
