//! The task engine's SQL: tasks, their lease and fencing token, and their events.
//!
//! A worker's writes (`heartbeat`, `save_state`, `append_event` with a token, `finish`) name the lease
//! token its claim returned and change nothing when the token has moved on: a worker that was paused
//! or cut off past its lease, and whose task another worker has since claimed, cannot write. Event
//! inserts take a share lock on the task row, so an insert racing a new claim waits for it and then
//! sees the new token.

use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

/// ISO 8601 in UTC with milliseconds, as Backstage serialises dates.
macro_rules! iso {
    ($column:literal) => {
        concat!(
            "to_char(",
            $column,
            " at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
        )
    };
}

/// A task as the API shows it (never with its secrets).
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub id: Uuid,
    pub spec: Value,
    pub status: String,
    pub created_by: String,
    pub created_at: String,
    pub last_heartbeat_at: Option<String>,
    pub state: Value,
    pub attempt: i32,
    pub retry_of: Option<Uuid>,
}

/// What a new task row holds.
pub struct NewTask<'a> {
    pub id: Uuid,
    pub spec: &'a Value,
    pub created_by: &'a str,
    pub secrets: Option<&'a Value>,
    pub state: &'a Value,
    pub attempt: i32,
    pub retry_of: Option<Uuid>,
    pub idempotency_key: Option<&'a str>,
    pub request_digest: Option<&'a str>,
}

/// Inserts a task; with an idempotency key that `created_by` already used, inserts nothing and returns
/// the earlier task's id and request digest instead. Takes a connection (a transaction, so the audit
/// event of the creation commits with it).
pub async fn insert_task(
    db: &mut PgConnection,
    task: &NewTask<'_>,
) -> sqlx::Result<Result<Uuid, (Uuid, Option<String>)>> {
    let inserted = sqlx::query_scalar!(
        "insert into scaffolder_task
           (id, spec, created_by, secrets, state, attempt, retry_of, idempotency_key, request_digest)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         on conflict (created_by, idempotency_key) where idempotency_key is not null do nothing
         returning id",
        task.id,
        task.spec,
        task.created_by,
        task.secrets,
        task.state,
        task.attempt,
        task.retry_of,
        task.idempotency_key,
        task.request_digest,
    )
    .fetch_optional(&mut *db)
    .await?;
    if let Some(id) = inserted {
        return Ok(Ok(id));
    }
    let earlier = sqlx::query!(
        "select id, request_digest from scaffolder_task where created_by = $1 and idempotency_key = $2",
        task.created_by,
        task.idempotency_key,
    )
    .fetch_one(&mut *db)
    .await?;
    Ok(Err((earlier.id, earlier.request_digest)))
}

pub async fn task(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<TaskRow>> {
    sqlx::query_as!(
        TaskRow,
        r#"select id, spec, status, created_by, state, attempt, retry_of,
                  to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "created_at!",
                  to_char(last_heartbeat_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as last_heartbeat_at
           from scaffolder_task where id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// The secrets of a task, for a retry that is given none.
pub async fn secrets(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Value>> {
    Ok(
        sqlx::query_scalar!("select secrets from scaffolder_task where id = $1", id)
            .fetch_optional(db)
            .await?
            .flatten(),
    )
}

/// Columns `GET /v2/tasks` may sort on: the API name and the column. Anything else is refused before
/// SQL is built.
/// Qualified with the table's alias: a bare `created_at` would name the formatted text the select
/// list outputs under that name, and sort every row by it instead of reading the index.
pub const ORDER_FIELDS: [(&str, &str); 3] = [
    ("created_at", "t.created_at"),
    ("status", "t.status"),
    ("created_by", "t.created_by"),
];

/// Filters, order and page of `GET /v2/tasks`.
#[derive(Debug, Default)]
pub struct TaskList {
    pub created_by: Vec<String>,
    pub status: Vec<String>,
    /// (column from [`ORDER_FIELDS`], descending)
    pub order: Vec<(&'static str, bool)>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

fn push_filters(query: &mut QueryBuilder<Postgres>, list: &TaskList) {
    query.push(" where true");
    if !list.created_by.is_empty() {
        query
            .push(" and created_by = any(")
            .push_bind(list.created_by.clone())
            .push(")");
    }
    if !list.status.is_empty() {
        query
            .push(" and status = any(")
            .push_bind(list.status.clone())
            .push(")");
    }
}

/// One page of tasks and the total that match the filters.
pub async fn list_tasks(
    db: impl PgExecutor<'_> + Copy,
    list: &TaskList,
) -> sqlx::Result<(Vec<TaskRow>, i64)> {
    let mut query = QueryBuilder::new(concat!(
        "select id, spec, status, created_by, state, attempt, retry_of, ",
        iso!("created_at"),
        " as created_at, ",
        iso!("last_heartbeat_at"),
        " as last_heartbeat_at from scaffolder_task t"
    ));
    push_filters(&mut query, list);
    query.push(" order by ");
    for (column, descending) in &list.order {
        // Only names from ORDER_FIELDS reach this point (the API refuses the rest).
        query
            .push(*column)
            .push(if *descending { " desc, " } else { " asc, " });
    }
    query.push("t.created_at desc, t.id");
    if let Some(limit) = list.limit {
        query.push(" limit ").push_bind(limit);
    }
    if let Some(offset) = list.offset {
        query.push(" offset ").push_bind(offset);
    }
    let rows = query.build().fetch_all(db).await?;
    let tasks = rows
        .iter()
        .map(|row| {
            use sqlx::Row;
            Ok(TaskRow {
                id: row.try_get("id")?,
                spec: row.try_get("spec")?,
                status: row.try_get("status")?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
                last_heartbeat_at: row.try_get("last_heartbeat_at")?,
                state: row.try_get("state")?,
                attempt: row.try_get("attempt")?,
                retry_of: row.try_get("retry_of")?,
            })
        })
        .collect::<sqlx::Result<Vec<_>>>()?;
    // The counters the triggers of migration 0007 keep: a few rows, however many tasks there are.
    let mut count =
        QueryBuilder::new("select coalesce(sum(n), 0)::bigint from scaffolder_task_count");
    push_filters(&mut count, list);
    let total: i64 = count.build_query_scalar().fetch_one(db).await?;
    Ok((tasks, total))
}

/// A task a worker claimed: what it needs to run it, and the token its writes must carry.
#[derive(Debug)]
pub struct Claim {
    pub id: Uuid,
    pub token: i64,
    pub spec: Value,
    pub state: Value,
    pub secrets: Option<Value>,
    /// The task was processing under another worker whose lease ran out.
    pub recovered: bool,
    pub cancel_requested: bool,
}

/// Claims the oldest open task, or a processing one whose lease ran out, for `lease_seconds`.
pub async fn claim(
    db: impl PgExecutor<'_>,
    owner: &str,
    lease_seconds: f64,
) -> sqlx::Result<Option<Claim>> {
    sqlx::query_as!(
        Claim,
        r#"with next as (
             select id, status as previous from scaffolder_task
             where status = 'open' or (status = 'processing' and lease_expires_at < now())
             order by created_at limit 1 for update skip locked
           )
           update scaffolder_task t
           set status = 'processing', lease_token = t.lease_token + 1, lease_owner = $1,
               lease_expires_at = now() + make_interval(secs => $2), last_heartbeat_at = now()
           from next where t.id = next.id
           returning t.id, t.lease_token as token, t.spec, t.state, t.secrets,
                     next.previous = 'processing' as "recovered!", t.cancel_requested"#,
        owner,
        lease_seconds,
    )
    .fetch_optional(db)
    .await
}

/// Pushes the lease forward. `None`: the lease is lost (another worker holds the task, or it ended);
/// `Some(cancel_requested)` otherwise.
pub async fn heartbeat(
    db: impl PgExecutor<'_>,
    id: Uuid,
    token: i64,
    lease_seconds: f64,
) -> sqlx::Result<Option<bool>> {
    sqlx::query_scalar!(
        "update scaffolder_task
         set last_heartbeat_at = now(), lease_expires_at = now() + make_interval(secs => $3)
         where id = $1 and lease_token = $2 and status = 'processing'
         returning cancel_requested",
        id,
        token,
        lease_seconds,
    )
    .fetch_optional(db)
    .await
}

/// Stores the step checkpoints; false when the lease is lost.
pub async fn save_state(
    db: impl PgExecutor<'_>,
    id: Uuid,
    token: i64,
    state: &Value,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "update scaffolder_task set state = $3
         where id = $1 and lease_token = $2 and status = 'processing'",
        id,
        token,
        state,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Appends an event. With a token, only while that lease holds (false otherwise); without one (the
/// API's own events) always.
pub async fn append_event(
    db: impl PgExecutor<'_>,
    id: Uuid,
    token: Option<i64>,
    event_type: &str,
    body: &Value,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "insert into scaffolder_task_event (task_id, event_type, body)
         select id, $3, $4 from scaffolder_task
         where id = $1 and ($2::bigint is null or (lease_token = $2 and status = 'processing'))
         for share",
        id,
        token,
        event_type,
        body,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a run: `status` unless a cancel was asked for meanwhile (then `cancelled`); secrets dropped,
/// lease released. Returns the final status, or `None` when the lease is lost.
pub async fn finish(
    db: impl PgExecutor<'_>,
    id: Uuid,
    token: i64,
    status: &str,
    state: &Value,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "update scaffolder_task
         set status = case when cancel_requested then 'cancelled' else $3 end,
             state = $4, finished_at = now(), secrets = null,
             lease_owner = null, lease_expires_at = null
         where id = $1 and lease_token = $2 and status = 'processing'
         returning status",
        id,
        token,
        status,
        state,
    )
    .fetch_optional(db)
    .await
}

/// What a cancel request did.
#[derive(Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// The task had not started: it is cancelled now.
    Now,
    /// The task is running: its worker stops at the next step boundary.
    Requested,
    /// The task had already ended with this status.
    AlreadyEnded(String),
}

pub async fn request_cancel(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Cancelled>> {
    let row = sqlx::query!(
        r#"with before as (select id, status from scaffolder_task where id = $1 for update)
           update scaffolder_task t
           set cancel_requested = t.status in ('open', 'processing'),
               status = case when t.status = 'open' then 'cancelled' else t.status end,
               finished_at = case when t.status = 'open' then now() else t.finished_at end,
               secrets = case when t.status = 'open' then null else t.secrets end
           from before where t.id = before.id
           returning before.status as "previous!""#,
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| match row.previous.as_str() {
        "open" => Cancelled::Now,
        "processing" => Cancelled::Requested,
        _ => Cancelled::AlreadyEnded(row.previous),
    }))
}

#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub task_id: Uuid,
    pub event_type: String,
    pub body: Value,
    pub created_at: String,
}

/// Events after `after` (an event id), oldest first.
pub async fn events(
    db: impl PgExecutor<'_>,
    task_id: Uuid,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as!(
        EventRow,
        r#"select id, task_id, event_type, body, to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "created_at!"
           from scaffolder_task_event where task_id = $1 and id > $2 order by id limit $3"#,
        task_id,
        after,
        limit,
    )
    .fetch_all(db)
    .await
}

/// Deletes tasks that ended more than `days` days ago, with their events. Returns how many.
pub async fn prune(db: impl PgExecutor<'_>, days: f64) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        "delete from scaffolder_task
         where finished_at < now() - make_interval(secs => $1::float8 * 86400)",
        days,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
