//! Deployment records' SQL: one row per apply (a revision of its target), and health over time.

use serde_json::Value;
use sqlx::{PgExecutor, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::catalog::db::filter::push_sql;
use crate::catalog::filter::Filter;

/// A deployment record as the API and pages show it.
#[derive(Debug, Clone)]
pub struct DeploymentRow {
    pub id: Uuid,
    pub name: String,
    pub cluster: String,
    pub environment: String,
    pub namespace: String,
    pub revision: i32,
    pub entity_ref: Option<String>,
    pub kubernetes_id: String,
    pub template_ref: Option<String>,
    pub task_id: Option<Uuid>,
    pub parameters: Value,
    pub objects: Value,
    pub created_by: String,
    pub created_at: String,
    pub status: String,
    pub health: String,
    pub health_message: String,
    pub health_checked_at: Option<String>,
    pub rollback_of: Option<Uuid>,
    pub error: Option<String>,
    pub approval_id: Option<Uuid>,
}

/// A new record.
pub struct NewDeployment<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub cluster: &'a str,
    pub environment: &'a str,
    pub namespace: &'a str,
    pub entity_ref: Option<&'a str>,
    pub kubernetes_id: &'a str,
    pub template_ref: Option<&'a str>,
    pub task_id: Option<Uuid>,
    pub parameters: &'a Value,
    pub objects: &'a Value,
    pub created_by: &'a str,
    pub status: &'a str,
    pub rollback_of: Option<Uuid>,
    pub error: Option<&'a str>,
    pub approval_id: Option<Uuid>,
}

/// Inserts a record as the next revision of its target. The target's rows are locked first (an
/// advisory lock on the target), so two applies of one target cannot take the same revision.
pub async fn insert_deployment(
    tx: &mut sqlx::PgConnection,
    new: &NewDeployment<'_>,
) -> sqlx::Result<i32> {
    let target = format!("{}/{}/{}", new.cluster, new.namespace, new.name);
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtextextended($1, 0))",
        target
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query_scalar!(
        r#"insert into deployment
             (id, name, cluster, environment, namespace, revision, entity_ref, kubernetes_id,
              template_ref, task_id, parameters, objects, created_by, status, rollback_of, error,
              approval_id)
           values ($1, $2, $3, $4, $5,
                   (select coalesce(max(revision), 0) + 1 from deployment
                     where cluster = $3 and namespace = $5 and name = $2),
                   $6, $7, $8,
                   (select id from scaffolder_task where id = $9), $10, $11, $12, $13, $14, $15, $16)
           returning revision"#,
        new.id,
        new.name,
        new.cluster,
        new.environment,
        new.namespace,
        new.entity_ref,
        new.kubernetes_id,
        new.template_ref,
        new.task_id,
        new.parameters,
        new.objects,
        new.created_by,
        new.status,
        new.rollback_of,
        new.error,
        new.approval_id,
    )
    .fetch_one(&mut *tx)
    .await
}

const SELECT: &str = r#"select id, name, cluster, environment, namespace, revision, entity_ref,
       kubernetes_id, template_ref, task_id, parameters, objects, created_by,
       to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as created_at,
       status, health, health_message,
       to_char(health_checked_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as health_checked_at,
       rollback_of, error, approval_id
  from deployment"#;

fn row(row: &sqlx::postgres::PgRow) -> sqlx::Result<DeploymentRow> {
    Ok(DeploymentRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        cluster: row.try_get("cluster")?,
        environment: row.try_get("environment")?,
        namespace: row.try_get("namespace")?,
        revision: row.try_get("revision")?,
        entity_ref: row.try_get("entity_ref")?,
        kubernetes_id: row.try_get("kubernetes_id")?,
        template_ref: row.try_get("template_ref")?,
        task_id: row.try_get("task_id")?,
        parameters: row.try_get("parameters")?,
        objects: row.try_get("objects")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        status: row.try_get("status")?,
        health: row.try_get("health")?,
        health_message: row.try_get("health_message")?,
        health_checked_at: row.try_get("health_checked_at")?,
        rollback_of: row.try_get("rollback_of")?,
        error: row.try_get("error")?,
        approval_id: row.try_get("approval_id")?,
    })
}

pub async fn deployment(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<DeploymentRow>> {
    let mut query = QueryBuilder::<Postgres>::new(SELECT);
    query.push(" where id = ").push_bind(id);
    query
        .build()
        .fetch_optional(db)
        .await?
        .map(|r| row(&r))
        .transpose()
}

/// The latest applied revision of a target.
pub async fn latest_applied(
    db: impl PgExecutor<'_>,
    cluster: &str,
    namespace: &str,
    name: &str,
) -> sqlx::Result<Option<DeploymentRow>> {
    let mut query = QueryBuilder::<Postgres>::new(SELECT);
    query
        .push(" where cluster = ")
        .push_bind(cluster.to_owned())
        .push(" and namespace = ")
        .push_bind(namespace.to_owned())
        .push(" and name = ")
        .push_bind(name.to_owned())
        .push(" and status = 'applied' order by revision desc limit 1");
    query
        .build()
        .fetch_optional(db)
        .await?
        .map(|r| row(&r))
        .transpose()
}

/// Filters of `GET /api/deployments`; empty lists filter nothing.
#[derive(Debug, Default)]
pub struct DeploymentList {
    pub entity_ref: Vec<String>,
    pub cluster: Vec<String>,
    pub environment: Vec<String>,
    pub name: Vec<String>,
    /// Health (`Healthy`, `Degraded`, ...) or record status (`applied`, `failed`).
    pub status: Vec<String>,
    pub limit: i64,
    pub offset: i64,
    /// What the caller may see of the catalog (see `catalog::access`): a record of an entity that
    /// exists but is hidden from them is left out. `None`: every record.
    pub visible: Option<Filter>,
}

/// Records, newest first, and how many match in all.
pub async fn list_deployments(
    db: impl PgExecutor<'_> + Copy,
    list: &DeploymentList,
) -> sqlx::Result<(Vec<DeploymentRow>, i64)> {
    fn filters(query: &mut QueryBuilder<Postgres>, list: &DeploymentList) {
        query.push(" where true");
        for (column, values) in [
            ("entity_ref", &list.entity_ref),
            ("cluster", &list.cluster),
            ("environment", &list.environment),
            ("name", &list.name),
        ] {
            if !values.is_empty() {
                query
                    .push(format!(" and {column} = any("))
                    .push_bind(values.clone())
                    .push(")");
            }
        }
        if let Some(visible) = &list.visible {
            query.push(
                " and (deployment.entity_ref is null or not exists (select 1 from entity e \
                 where e.entity_key = lower(deployment.entity_ref) and e.final is not null and not ",
            );
            push_sql(visible, query);
            query.push("))");
        }
        if !list.status.is_empty() {
            query
                .push(" and (status = any(")
                .push_bind(list.status.clone())
                .push(") or health = any(")
                .push_bind(list.status.clone())
                .push("))");
        }
    }
    let mut query = QueryBuilder::<Postgres>::new(SELECT);
    filters(&mut query, list);
    query
        .push(" order by created_at desc, id limit ")
        .push_bind(list.limit)
        .push(" offset ")
        .push_bind(list.offset);
    let rows = query
        .build()
        .fetch_all(db)
        .await?
        .iter()
        .map(row)
        .collect::<sqlx::Result<Vec<_>>>()?;
    let mut count = QueryBuilder::<Postgres>::new("select count(*) from deployment");
    filters(&mut count, list);
    let total: i64 = count.build_query_scalar().fetch_one(db).await?;
    Ok((rows, total))
}

/// Stores an observed health; a row in the history only when it changed.
pub async fn record_health(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    health: &str,
    message: &str,
) -> sqlx::Result<()> {
    let previous = sqlx::query!(
        "select health, health_message from deployment where id = $1 for update",
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query!(
        "update deployment set health = $2, health_message = $3, health_checked_at = now()
          where id = $1",
        id,
        health,
        message,
    )
    .execute(&mut *tx)
    .await?;
    let changed = previous.is_some_and(|p| p.health != health || p.health_message != message);
    if changed {
        sqlx::query!(
            "insert into deployment_health (deployment_id, health, message) values ($1, $2, $3)",
            id,
            health,
            message
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// One observed health.
#[derive(Debug, Clone)]
pub struct HealthRow {
    pub health: String,
    pub message: String,
    pub observed_at: String,
}

/// A record's health over time, oldest first.
pub async fn health_history(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Vec<HealthRow>> {
    sqlx::query_as!(
        HealthRow,
        r#"select health, message,
                  to_char(observed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "observed_at!"
             from deployment_health where deployment_id = $1 order by id"#,
        id
    )
    .fetch_all(db)
    .await
}

/// An approval as the API and pages show it.
#[derive(Debug, Clone)]
pub struct ApprovalRow {
    pub id: Uuid,
    pub task_id: Option<Uuid>,
    pub name: String,
    pub cluster: String,
    pub environment: String,
    pub namespace: String,
    pub requested_by: String,
    pub approver_group: String,
    pub planned: Value,
    pub status: String,
    pub decided_by: Option<String>,
    pub comment: String,
    pub created_at: String,
    pub expires_at: String,
    pub decided_at: Option<String>,
}

/// A new pending approval.
pub struct NewApproval<'a> {
    pub id: Uuid,
    pub task_id: Option<Uuid>,
    pub name: &'a str,
    pub cluster: &'a str,
    pub environment: &'a str,
    pub namespace: &'a str,
    pub requested_by: &'a str,
    pub approver_group: &'a str,
    pub planned: &'a Value,
    pub expires_in_seconds: f64,
}

pub async fn insert_approval(db: impl PgExecutor<'_>, new: &NewApproval<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into deployment_approval
           (id, task_id, name, cluster, environment, namespace, requested_by, approver_group, planned,
            expires_at)
         values ($1, (select id from scaffolder_task where id = $2), $3, $4, $5, $6, $7, $8, $9,
                 now() + make_interval(secs => $10))",
        new.id,
        new.task_id,
        new.name,
        new.cluster,
        new.environment,
        new.namespace,
        new.requested_by,
        new.approver_group,
        new.planned,
        new.expires_in_seconds,
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn approval(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<ApprovalRow>> {
    sqlx::query_as!(
        ApprovalRow,
        r#"select id, task_id, name, cluster, environment, namespace, requested_by, approver_group,
                  planned, status, decided_by, comment,
                  to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "created_at!",
                  to_char(expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "expires_at!",
                  to_char(decided_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as decided_at
             from deployment_approval where id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// Approvals in a status (all when `None`), newest first.
pub async fn list_approvals(
    db: impl PgExecutor<'_>,
    status: Option<&str>,
) -> sqlx::Result<Vec<ApprovalRow>> {
    sqlx::query_as!(
        ApprovalRow,
        r#"select id, task_id, name, cluster, environment, namespace, requested_by, approver_group,
                  planned, status, decided_by, comment,
                  to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "created_at!",
                  to_char(expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "expires_at!",
                  to_char(decided_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as decided_at
             from deployment_approval where $1::text is null or status = $1
            order by created_at desc limit 200"#,
        status
    )
    .fetch_all(db)
    .await
}

/// Records a decision on a pending, unexpired approval; false when it was no longer pending.
pub async fn decide_approval(
    db: impl PgExecutor<'_>,
    id: Uuid,
    status: &str,
    decided_by: &str,
    comment: &str,
) -> sqlx::Result<bool> {
    let updated = sqlx::query!(
        "update deployment_approval
            set status = $2, decided_by = $3, comment = $4, decided_at = now()
          where id = $1 and status = 'pending' and expires_at > now()",
        id,
        status,
        decided_by,
        comment,
    )
    .execute(db)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Marks a pending approval past its time as expired; returns its status afterwards.
pub async fn expire_approval(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "update deployment_approval
            set status = case when status = 'pending' and expires_at <= now() then 'expired' else status end,
                decided_at = case when status = 'pending' and expires_at <= now() then now() else decided_at end
          where id = $1
          returning status",
        id
    )
    .fetch_optional(db)
    .await
}
