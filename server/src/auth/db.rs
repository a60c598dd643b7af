//! Identity's SQL: sessions, API tokens, audit events.

use serde_json::Value;
use sqlx::{PgExecutor, Postgres, QueryBuilder, Row};
use uuid::Uuid;

/// A session as the middleware needs it.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user_ref: Option<String>,
    pub pending_login: Option<Value>,
    pub return_to: String,
}

/// Creates a session (a signed-in user, or a sign-in under way).
pub async fn insert_session(
    db: impl PgExecutor<'_>,
    id_hash: &str,
    user_ref: Option<&str>,
    pending_login: Option<&Value>,
    return_to: &str,
    absolute_seconds: f64,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into auth_session (id_hash, user_ref, pending_login, return_to, expires_at)
         values ($1, $2, $3, $4, now() + make_interval(secs => $5))",
        id_hash,
        user_ref,
        pending_login,
        return_to,
        absolute_seconds,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The live session with this id hash, its idle time renewed (at most once a minute: a request is a
/// read, not a row write, so idle ends are accurate to a minute); `None` when unknown, past its absolute
/// end, or idle for longer than `idle_seconds`.
pub async fn touch_session(
    db: impl PgExecutor<'_>,
    id_hash: &str,
    idle_seconds: f64,
) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as!(
        SessionRow,
        r#"with live as (
             select id_hash, user_ref, pending_login, return_to, last_seen_at from auth_session
              where id_hash = $1 and expires_at > now()
                and last_seen_at > now() - make_interval(secs => $2)
           ), touched as (
             update auth_session s set last_seen_at = now() from live
              where s.id_hash = live.id_hash and live.last_seen_at < now() - interval '1 minute'
           )
           select user_ref, pending_login, return_to as "return_to!" from live"#,
        id_hash,
        idle_seconds,
    )
    .fetch_optional(db)
    .await
}

/// Deletes the sign-in under way with this id hash and returns it: each one is used once. `None` when
/// there is none: unknown, ended, already taken, or a signed-in session (left alone).
pub async fn take_pending_session(
    db: impl PgExecutor<'_>,
    id_hash: &str,
) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as!(
        SessionRow,
        r#"delete from auth_session
            where id_hash = $1 and user_ref is null and expires_at > now()
           returning user_ref, pending_login, return_to"#,
        id_hash,
    )
    .fetch_optional(db)
    .await
}

pub async fn delete_session(db: impl PgExecutor<'_>, id_hash: &str) -> sqlx::Result<bool> {
    let deleted = sqlx::query!("delete from auth_session where id_hash = $1", id_hash)
        .execute(db)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Deletes ended sessions and old audit events; returns how many rows went.
pub async fn prune(db: impl PgExecutor<'_> + Copy, audit_days: i32) -> sqlx::Result<u64> {
    let sessions = sqlx::query!("delete from auth_session where expires_at <= now()")
        .execute(db)
        .await?
        .rows_affected();
    let events = sqlx::query!(
        "delete from audit_event where occurred_at < now() - make_interval(days => $1)",
        audit_days
    )
    .execute(db)
    .await?
    .rows_affected();
    Ok(sessions + events)
}

/// An API token as lists show it (never the token, which is not stored).
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: Uuid,
    pub prefix: String,
    pub name: String,
    pub owner_ref: String,
    pub agent: Option<String>,
    pub scopes: Vec<String>,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
    pub rate_limit_per_minute: Option<i32>,
}

/// A new token.
pub struct NewToken<'a> {
    pub id: Uuid,
    pub token_hash: &'a str,
    pub prefix: &'a str,
    pub name: &'a str,
    pub owner_ref: &'a str,
    pub agent: Option<&'a str>,
    pub scopes: &'a [String],
    pub created_by: &'a str,
    pub expires_in_seconds: f64,
    pub rate_limit_per_minute: Option<i32>,
}

pub async fn insert_token(db: impl PgExecutor<'_>, new: &NewToken<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into api_token (id, token_hash, prefix, name, owner_ref, agent, scopes, created_by,
                                expires_at, rate_limit_per_minute)
         values ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9), $10)",
        new.id,
        new.token_hash,
        new.prefix,
        new.name,
        new.owner_ref,
        new.agent,
        new.scopes,
        new.created_by,
        new.expires_in_seconds,
        new.rate_limit_per_minute,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A live token by its hash (not revoked, not expired), with its last use recorded.
pub async fn use_token(
    db: impl PgExecutor<'_>,
    token_hash: &str,
) -> sqlx::Result<Option<TokenRow>> {
    // A read per request; the row is written (last use) at most once a minute.
    let mut query = QueryBuilder::<Postgres>::new("with live as (select ");
    query
        .push(TOKEN_COLUMNS)
        .push(", last_used_at as last_used from api_token")
        .push(" where revoked_at is null and expires_at > now() and token_hash = ")
        .push_bind(token_hash.to_owned())
        .push(
            "), touched as (update api_token t set last_used_at = now() from live
               where t.id = live.id
                 and (live.last_used is null or live.last_used < now() - interval '1 minute'))
             select * from live",
        );
    let row = query.build().fetch_optional(db).await?;
    row.map(|r| token_row(&r)).transpose()
}

/// A token that exists but may no longer be used, and why (`revoked` or `expired`).
pub async fn dead_token(
    db: impl PgExecutor<'_>,
    token_hash: &str,
) -> sqlx::Result<Option<(TokenRow, String)>> {
    let mut query = QueryBuilder::<Postgres>::new("select ");
    query
        .push(TOKEN_COLUMNS)
        .push(
            ", case when revoked_at is not null then 'revoked' else 'expired' end as reason
               from api_token where (revoked_at is not null or expires_at <= now()) and token_hash = ",
        )
        .push_bind(token_hash.to_owned());
    let row = query.build().fetch_optional(db).await?;
    row.map(|r| Ok((token_row(&r)?, r.try_get("reason")?)))
        .transpose()
}

/// Whether `action` on `target` was audited in the last `seconds`.
pub async fn audited_recently(
    db: impl PgExecutor<'_>,
    action: &str,
    target: &str,
    seconds: i32,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from audit_event where action = $1
           and occurred_at > now() - make_interval(secs => $3) and target = $2)",
    )
    .bind(action)
    .bind(target)
    .bind(f64::from(seconds))
    .fetch_one(db)
    .await
}

const TOKEN_COLUMNS: &str = r#"id, prefix, name, owner_ref, agent, scopes, created_by,
    to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as created_at,
    to_char(expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as expires_at,
    to_char(revoked_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as revoked_at,
    to_char(last_used_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as last_used_at,
    rate_limit_per_minute"#;

fn token_row(row: &sqlx::postgres::PgRow) -> sqlx::Result<TokenRow> {
    Ok(TokenRow {
        id: row.try_get("id")?,
        prefix: row.try_get("prefix")?,
        name: row.try_get("name")?,
        owner_ref: row.try_get("owner_ref")?,
        agent: row.try_get("agent")?,
        scopes: row.try_get("scopes")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        last_used_at: row.try_get("last_used_at")?,
        rate_limit_per_minute: row.try_get("rate_limit_per_minute")?,
    })
}

pub async fn token(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<TokenRow>> {
    let mut query = QueryBuilder::<Postgres>::new("select ");
    query
        .push(TOKEN_COLUMNS)
        .push(" from api_token where id = ")
        .push_bind(id);
    let row = query.build().fetch_optional(db).await?;
    row.map(|r| token_row(&r)).transpose()
}

/// Whose tokens a list shows.
pub enum TokensOf<'a> {
    /// Every token (admins).
    All,
    /// Tokens `user_ref` made, and the agent tokens owned by a group in `groups`.
    Person {
        user_ref: &'a str,
        groups: &'a [String],
    },
}

/// Tokens as `of` says, newest first.
pub async fn list_tokens(db: impl PgExecutor<'_>, of: TokensOf<'_>) -> sqlx::Result<Vec<TokenRow>> {
    let mut query = QueryBuilder::<Postgres>::new("select ");
    query.push(TOKEN_COLUMNS).push(" from api_token");
    if let TokensOf::Person { user_ref, groups } = of {
        query
            .push(" where created_by = ")
            .push_bind(user_ref.to_owned())
            .push(" or owner_ref = any(")
            .push_bind(groups.to_vec())
            .push(")");
    }
    query.push(" order by created_at desc, id limit 500");
    query
        .build()
        .fetch_all(db)
        .await?
        .iter()
        .map(token_row)
        .collect()
}

/// Whom an agent already acts for: the owner of its earlier tokens (revoked or expired ones too, so
/// that an agent's name names one identity for as long as its records are kept).
pub async fn agent_owner(db: impl PgExecutor<'_>, agent: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "select owner_ref from api_token where lower(agent) = lower($1) order by created_at limit 1",
    )
    .bind(agent)
    .fetch_optional(db)
    .await
}

/// Whether the catalog holds the entity `key` (`kind:namespace/name`, lower case).
pub async fn entity_exists(db: impl PgExecutor<'_>, key: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from entity where entity_key = $1 and final is not null)",
    )
    .bind(key)
    .fetch_one(db)
    .await
}

/// Revokes a token; false when it was already revoked or does not exist.
pub async fn revoke_token(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<bool> {
    let revoked = sqlx::query!(
        "update api_token set revoked_at = now() where id = $1 and revoked_at is null",
        id
    )
    .execute(db)
    .await?;
    Ok(revoked.rows_affected() == 1)
}

/// One audit event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEvent<'a> {
    pub actor: &'a str,
    pub actor_kind: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub outcome: &'a str,
    pub request_id: Option<&'a str>,
    pub detail: Value,
}

pub async fn insert_audit_event(
    db: impl PgExecutor<'_>,
    event: &AuditEvent<'_>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into audit_event (actor, actor_kind, action, target, outcome, request_id, detail)
         values ($1, $2, $3, $4, $5, $6, $7)",
        event.actor,
        event.actor_kind,
        event.action,
        event.target,
        event.outcome,
        event.request_id,
        event.detail,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// An audit event as stored.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: i64,
    pub occurred_at: String,
    pub actor: String,
    pub actor_kind: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub request_id: Option<String>,
    pub detail: Value,
}

/// Filters of `GET /api/audit`.
#[derive(Debug, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub target: Option<String>,
    /// Events with ids below this (the next page of a newest-first list).
    pub before: Option<i64>,
    pub limit: i64,
}

pub async fn list_audit(
    db: impl PgExecutor<'_>,
    query: &AuditQuery,
) -> sqlx::Result<Vec<AuditRow>> {
    let mut sql = QueryBuilder::<Postgres>::new(
        r#"select id, to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as occurred_at,
                  actor, actor_kind, action, target, outcome, request_id, detail
             from audit_event where true"#,
    );
    for (column, value) in [
        ("actor", &query.actor),
        ("action", &query.action),
        ("outcome", &query.outcome),
        ("target", &query.target),
    ] {
        if let Some(value) = value {
            sql.push(format!(" and {column} = "))
                .push_bind(value.clone());
        }
    }
    if let Some(before) = query.before {
        sql.push(" and id < ").push_bind(before);
    }
    sql.push(" order by id desc limit ").push_bind(query.limit);
    sql.build()
        .fetch_all(db)
        .await?
        .iter()
        .map(audit_row)
        .collect()
}

fn audit_row(row: &sqlx::postgres::PgRow) -> sqlx::Result<AuditRow> {
    Ok(AuditRow {
        id: row.try_get("id")?,
        occurred_at: row.try_get("occurred_at")?,
        actor: row.try_get("actor")?,
        actor_kind: row.try_get("actor_kind")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        outcome: row.try_get("outcome")?,
        request_id: row.try_get("request_id")?,
        detail: row.try_get("detail")?,
    })
}

/// The groups `user_ref` is a direct member of (`memberOf` relations, from the user's own spec or a
/// group's `spec.members`), as lower-cased refs.
pub async fn groups_of(db: impl PgExecutor<'_>, user_ref: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select distinct target_key from relation where source_key = $1 and type = 'memberOf' order by 1",
    )
    .bind(user_ref.to_ascii_lowercase())
    .fetch_all(db)
    .await
}

/// Counts one request of a rate-limited token in the current minute (every replica shares the row):
/// how many it has made in this minute, this one included, and the seconds left in the minute.
pub async fn count_token_request(
    db: impl PgExecutor<'_>,
    token_id: Uuid,
) -> sqlx::Result<(i32, i32)> {
    let row = sqlx::query(
        "insert into api_token_rate (token_id, window_start, used)
         values ($1, date_trunc('minute', now()), 1)
         on conflict (token_id) do update set
           used = case when api_token_rate.window_start = excluded.window_start
                       then api_token_rate.used + 1 else 1 end,
           window_start = excluded.window_start
         returning used,
           ceil(extract(epoch from window_start + interval '1 minute' - now()))::int as seconds_left",
    )
    .bind(token_id)
    .fetch_one(db)
    .await?;
    Ok((row.try_get("used")?, row.try_get("seconds_left")?))
}

/// What these tokens of one agent did, newest first: the audit events they wrote.
pub async fn agent_activity(
    db: impl PgExecutor<'_>,
    agent: &str,
    token_ids: &[Uuid],
    limit: i64,
) -> sqlx::Result<Vec<AuditRow>> {
    let ids: Vec<String> = token_ids.iter().map(Uuid::to_string).collect();
    let mut sql = QueryBuilder::<Postgres>::new(
        r#"select id, to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as occurred_at,
                  actor, actor_kind, action, target, outcome, request_id, detail
             from audit_event where actor = "#,
    );
    sql.push_bind(format!("agent:{agent}"))
        .push(" and detail->>'tokenId' = any(")
        .push_bind(ids)
        .push(") order by id desc limit ")
        .push_bind(limit);
    sql.build()
        .fetch_all(db)
        .await?
        .iter()
        .map(audit_row)
        .collect()
}
