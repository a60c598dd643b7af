//! `POST /api/catalog/webhooks/git`: push events from GitHub, GitLab and Gitea/Forgejo. An
//! authenticated push makes the pushed repository due now, on whichever replica claims it first; the
//! interval refresh stays as the safety net for lost deliveries.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use crate::error::AppError;
use crate::git::webhook::{self, Parsed, WebhookError, WebhookSecrets};
use crate::state::AppState;

pub async fn git_push(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, AppError> {
    let configured = &state.config.catalog.git.webhook_secrets;
    let secrets = WebhookSecrets {
        github: configured.github.clone(),
        gitlab: configured.gitlab.clone(),
        gitea: configured.gitea.clone(),
    };
    let event = match webhook::parse(&headers, &body, &secrets) {
        Ok(Parsed::Push(event)) => event,
        Ok(Parsed::Ignored { provider, event }) => {
            // Answered with success so the forge neither retries nor disables the hook.
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "provider": provider.to_string(), "event": event, "refreshed": [] })),
            ));
        }
        Err(e) => {
            metrics::counter!("atrium_catalog_webhooks_refused_total").increment(1);
            return Err(webhook_error(e));
        }
    };
    let refreshed = state.catalog.refresh_pushed(&event).await?;
    metrics::counter!("atrium_catalog_webhooks_accepted_total").increment(1);
    tracing::info!(provider = %event.provider, git_ref = ?event.git_ref, ?refreshed, "git push received");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "provider": event.provider.to_string(),
            "event": "push",
            "ref": event.git_ref,
            "refreshed": refreshed,
        })),
    ))
}

fn webhook_error(e: WebhookError) -> AppError {
    let message = e.to_string();
    match e.status() {
        StatusCode::UNAUTHORIZED => AppError::Unauthenticated(message),
        StatusCode::FORBIDDEN => AppError::NotAllowed(message),
        _ => AppError::Input(message),
    }
}
