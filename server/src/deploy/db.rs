//! Deployment records' SQL: one row per apply (a revision of its target), and health over time.

use serde_json::Value;
use sqlx::{PgExecutor, Postgres, QueryBuilder, Row};
use uuid::Uuid;

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
              template_ref, task_id, parameters, objects, created_by, status, rollback_of, error)
           values ($1, $2, $3, $4, $5,
                   (select coalesce(max(revision), 0) + 1 from deployment
                     where cluster = $3 and namespace = $5 and name = $2),
                   $6, $7, $8,
                   (select id from scaffolder_task where id = $9), $10, $11, $12, $13, $14, $15)
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
    )
    .fetch_one(&mut *tx)
    .await
}

const SELECT: &str = r#"select id, name, cluster, environment, namespace, revision, entity_ref,
       kubernetes_id, template_ref, task_id, parameters, objects, created_by,
       to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as created_at,
       status, health, health_message,
       to_char(health_checked_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as health_checked_at,
       rollback_of, error
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
