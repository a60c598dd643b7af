//! `/api/auth`: who am I, and my API tokens. `/api/audit`: the audit log, for collectors (admin).

use axum::Json;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::{Value, json};
use uuid::Uuid;

use super::caller::Caller;
use super::db::{AuditQuery, AuditRow, TokenRow};
use super::service::{AuthService, TokenRequest};
use crate::error::AppError;
use crate::http::{ApiJson, Path, QueryParams};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AuthService: FromRef<S>,
{
    Router::new()
        .route("/auth/me", get(me))
        .route("/auth/tokens", get(list_tokens).post(create_token))
        .route("/auth/tokens/{id}", delete(revoke_token))
        .route("/audit", get(list_audit))
}

async fn me(caller: Caller) -> Json<Value> {
    Json(json!({
        "userRef": caller.user_ref,
        "actor": caller.actor(),
        "kind": caller.kind.as_str(),
        "scopes": caller.scopes.strings(),
    }))
}

pub fn token_json(row: &TokenRow) -> Value {
    json!({
        "id": row.id,
        "prefix": row.prefix,
        "name": row.name,
        "ownerRef": row.owner_ref,
        "agent": row.agent,
        "scopes": row.scopes,
        "createdBy": row.created_by,
        "createdAt": row.created_at,
        "expiresAt": row.expires_at,
        "revokedAt": row.revoked_at,
        "lastUsedAt": row.last_used_at,
        "rateLimitPerMinute": row.rate_limit_per_minute,
    })
}

/// `GET /auth/tokens` (`?all=true` for an admin): never the tokens themselves.
async fn list_tokens(
    State(auth): State<AuthService>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<Value>, AppError> {
    let all = query.one("all").is_some_and(|v| v == "true");
    let rows = auth.tokens(&caller, all).await?;
    Ok(Json(
        json!({"items": rows.iter().map(token_json).collect::<Vec<_>>()}),
    ))
}

/// `POST /auth/tokens` `{name, scopes, expiresInDays, agent?, rateLimitPerMinute?}` → 201 with the
/// token, shown this once.
async fn create_token(
    State(auth): State<AuthService>,
    caller: Caller,
    ApiJson(request): ApiJson<TokenRequest>,
) -> Result<Response, AppError> {
    let (token, row) = auth.create_token(&caller, &request).await?;
    let mut body = token_json(&row);
    body["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn revoke_token(
    State(auth): State<AuthService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id: Uuid = id
        .parse()
        .map_err(|_| AppError::not_found(format!("Token {id} does not exist")))?;
    let row = auth.revoke_token(&caller, id).await?;
    Ok(Json(token_json(&row)))
}

pub fn audit_json(row: &AuditRow) -> Value {
    json!({
        "id": row.id,
        "occurredAt": row.occurred_at,
        "actor": row.actor,
        "actorKind": row.actor_kind,
        "action": row.action,
        "target": row.target,
        "outcome": row.outcome,
        "requestId": row.request_id,
        "detail": row.detail,
    })
}

/// `GET /audit?actor=&action=&outcome=&target=&before=<id>&limit=`: newest first; `before` pages on.
async fn list_audit(
    State(auth): State<AuthService>,
    query: QueryParams,
) -> Result<Json<Value>, AppError> {
    for (key, _) in query.pairs() {
        if !matches!(
            key.as_str(),
            "actor" | "action" | "outcome" | "target" | "before" | "limit"
        ) {
            return Err(AppError::input(format!(
                "unknown query parameter `{key}`; use actor, action, outcome, target, before, limit"
            )));
        }
    }
    let number = |key: &str| -> Result<Option<i64>, AppError> {
        query
            .one(key)
            .map(|raw| {
                raw.parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| AppError::input(format!("`{key}` must be a positive number")))
            })
            .transpose()
    };
    let rows = super::db::list_audit(
        auth.db(),
        &AuditQuery {
            actor: query.one("actor"),
            action: query.one("action"),
            outcome: query.one("outcome"),
            target: query.one("target"),
            before: number("before")?,
            limit: number("limit")?.unwrap_or(100).min(1000),
        },
    )
    .await?;
    let next = rows.last().map(|r| r.id);
    Ok(Json(json!({
        "items": rows.iter().map(audit_json).collect::<Vec<_>>(),
        "nextBefore": next,
    })))
}
