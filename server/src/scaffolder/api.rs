//! `/api/scaffolder`: Backstage's scaffolder REST API (`/v2/...`), wire-compatible with
//! `ScaffolderClient` from `@backstage/plugin-scaffolder-common`.
//!
//! Two routers: `router()` answers under the API's request time limit; `streams()` holds the two
//! routes that wait on purpose (the long poll of `/events` and the SSE `/eventstream`), which are
//! mounted outside that limit and bound their own time.
//!
//! Who may do what (the service decides, so the pages follow the same rules): running a template
//! needs `template:run:<template>` (and `deploy:<environment>` for its deploy steps); a task is seen,
//! followed, cancelled and retried only by its creator or an admin — to anyone else it does not
//! exist (404).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::service::{CreateError, NewTaskRequest, ScaffolderService};
use super::tasks::db::{EventRow, ORDER_FIELDS, TaskList, TaskRow};
use crate::auth::Caller;
use crate::error::{AppError, OwnErrorBody};
use crate::http::{ApiJson, Path, QueryParams};

/// How long `GET /v2/tasks/{id}/events` waits for a first new event, as Backstage's does.
const LONG_POLL: Duration = Duration::from_secs(30);

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ScaffolderService: FromRef<S>,
{
    Router::new()
        .route("/v2/tasks", post(create_task).get(list_tasks))
        .route("/v2/tasks/{id}", get(get_task))
        .route("/v2/tasks/{id}/cancel", post(cancel_task))
        .route("/v2/tasks/{id}/retry", post(retry_task))
        .route("/v2/dry-run", post(dry_run))
        .route("/v2/actions", get(list_actions))
        .route("/v2/templating-extensions", get(templating_extensions))
        .route("/v2/autocomplete/{provider}/{resource}", post(autocomplete))
        .route(
            "/v2/templates/{namespace}/{kind}/{name}/parameter-schema",
            get(parameter_schema),
        )
}

/// The routes that wait: mounted without the request time limit.
pub fn streams<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ScaffolderService: FromRef<S>,
{
    Router::new()
        .route("/v2/tasks/{id}/events", get(task_events))
        .route("/v2/tasks/{id}/eventstream", get(task_event_stream))
}

fn task_id(id: &str) -> Result<Uuid, AppError> {
    id.parse()
        .map_err(|_| AppError::not_found(format!("Task with id {id} does not exist")))
}

pub fn task_json(task: &TaskRow) -> Value {
    json!({
        "id": task.id,
        "spec": task.spec,
        "status": task.status,
        "createdAt": task.created_at,
        "lastHeartbeatAt": task.last_heartbeat_at,
        "createdBy": task.created_by,
        "state": task.state,
        "attempt": task.attempt,
        "retryOf": task.retry_of,
    })
}

pub fn event_json(event: &EventRow) -> Value {
    json!({
        "id": event.id,
        "taskId": event.task_id,
        "body": event.body,
        "type": event.event_type,
        "createdAt": event.created_at,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateTaskBody {
    template_ref: String,
    #[serde(default)]
    values: Value,
    #[serde(default)]
    secrets: Option<Value>,
}

async fn create_task(
    State(scaffolder): State<ScaffolderService>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateTaskBody>,
) -> Result<Response, AppError> {
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .ok_or_else(|| {
                    AppError::input(
                        "The Idempotency-Key header must be 1 to 255 visible characters",
                    )
                })?,
        ),
    };
    let values = if body.values.is_null() {
        json!({})
    } else {
        body.values
    };
    let created = scaffolder
        .create_task(NewTaskRequest {
            template_ref: &body.template_ref,
            values: &values,
            secrets: body.secrets.as_ref(),
            idempotency_key,
            caller: &caller,
        })
        .await;
    match created {
        Ok(id) => Ok((StatusCode::CREATED, Json(json!({"id": id}))).into_response()),
        // Backstage answers invalid values with the validator's errors, not its error envelope.
        Err(CreateError::Invalid(errors)) => Ok(invalid_values(&errors)),
        Err(CreateError::Other(error)) => Err(error),
    }
}

async fn list_tasks(
    State(scaffolder): State<ScaffolderService>,
    caller: Caller,
    params: QueryParams,
) -> Result<Json<Value>, AppError> {
    const KNOWN: [&str; 5] = ["createdBy", "status", "order", "limit", "offset"];
    if let Some((key, _)) = params
        .pairs()
        .iter()
        .find(|(k, _)| !KNOWN.contains(&k.as_str()))
    {
        return Err(AppError::input(format!(
            "Unknown query parameter {key:?}; expected one of {}",
            KNOWN.join(", ")
        )));
    }
    let mut list = TaskList {
        created_by: params.all("createdBy"),
        status: params.all("status"),
        ..TaskList::default()
    };
    const STATUSES: [&str; 5] = ["open", "processing", "completed", "failed", "cancelled"];
    if let Some(status) = list.status.iter().find(|s| !STATUSES.contains(&s.as_str())) {
        return Err(AppError::input(format!(
            "Invalid status {status:?}; expected one of {}",
            STATUSES.join(", ")
        )));
    }
    for order in params.all("order") {
        let (direction, field) = order.split_once(':').unwrap_or(("asc", order.as_str()));
        let descending = match direction {
            "asc" => false,
            "desc" => true,
            other => {
                return Err(AppError::input(format!(
                    "Invalid order direction {other:?} in {order:?}; expected asc or desc"
                )));
            }
        };
        let Some((_, column)) = ORDER_FIELDS.iter().find(|(name, _)| *name == field) else {
            return Err(AppError::input(format!(
                "Tasks cannot be ordered by {field:?}; allowed: {}",
                ORDER_FIELDS.map(|(name, _)| name).join(", ")
            )));
        };
        list.order.push((column, descending));
    }
    list.limit = params.number("limit")?;
    list.offset = params.number("offset")?;
    if list.limit.is_some_and(|l| l < 0) || list.offset.is_some_and(|o| o < 0) {
        return Err(AppError::input("limit and offset must not be negative"));
    }
    let (tasks, total) = scaffolder.list_tasks(&caller, list).await?;
    Ok(Json(json!({
        "tasks": tasks.iter().map(task_json).collect::<Vec<_>>(),
        "totalTasks": total,
    })))
}

async fn get_task(
    State(scaffolder): State<ScaffolderService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let task = scaffolder.task_for(&caller, task_id(&id)?).await?;
    Ok(Json(task_json(&task)))
}

async fn cancel_task(
    State(scaffolder): State<ScaffolderService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let status = scaffolder.cancel(&caller, task_id(&id)?).await?;
    Ok(Json(json!({"status": status})))
}

#[derive(Deserialize, Default)]
struct RetryBody {
    #[serde(default)]
    secrets: Option<Value>,
}

async fn retry_task(
    State(scaffolder): State<ScaffolderService>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    // The body is optional (`{secrets}`); Backstage's client sends none.
    let body: RetryBody = if body.iter().all(u8::is_ascii_whitespace) {
        RetryBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::input(format!("The retry request body is not valid: {e}")))?
    };
    let new_id = scaffolder
        .retry(&caller, task_id(&id)?, body.secrets.as_ref())
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"id": new_id}))).into_response())
}

async fn task_events(
    State(scaffolder): State<ScaffolderService>,
    caller: Caller,
    Path(id): Path<String>,
    params: QueryParams,
) -> Result<Json<Value>, AppError> {
    let id = task_id(&id)?;
    let after = params.number("after")?.unwrap_or(-1);
    let task = scaffolder.task_for(&caller, id).await?;
    // An ended task has all its events already: no reason to wait.
    let wait = if matches!(task.status.as_str(), "open" | "processing") {
        LONG_POLL
    } else {
        Duration::ZERO
    };
    let events = scaffolder.events(id, after, wait).await?;
    Ok(Json(Value::Array(events.iter().map(event_json).collect())))
}

/// Server-sent events: `event: <type>` and `data: <event json>` for each event after `after`, ending
/// after the `completion` event.
async fn task_event_stream(
    State(scaffolder): State<ScaffolderService>,
    caller: Caller,
    Path(id): Path<String>,
    params: QueryParams,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let id = task_id(&id)?;
    let after = params.number("after")?.unwrap_or(-1);
    scaffolder.task_for(&caller, id).await?;
    let stream = futures::stream::unfold(
        (scaffolder, after, false),
        move |(scaffolder, after, done)| async move {
            if done {
                return None;
            }
            let events = match scaffolder.events(id, after, LONG_POLL).await {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(task = %id, %error, "event stream ended by an error");
                    return None;
                }
            };
            let last = events.last().map_or(after, |e| e.id);
            let completed = events.iter().any(|e| e.event_type == "completion");
            let frames: Vec<Result<Event, Infallible>> = events
                .iter()
                .map(|event| {
                    Ok(Event::default()
                        .event(event.event_type.clone())
                        .data(event_json(event).to_string()))
                })
                .collect();
            Some((futures::stream::iter(frames), (scaffolder, last, completed)))
        },
    );
    use futures::StreamExt;
    Ok(Sse::new(stream.flatten()).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DryRunBody {
    template: Value,
    #[serde(default)]
    values: Value,
    #[serde(default)]
    secrets: Option<Value>,
    #[serde(default)]
    directory_contents: Value,
}

async fn dry_run(
    State(scaffolder): State<ScaffolderService>,
    caller: Caller,
    ApiJson(body): ApiJson<DryRunBody>,
) -> Result<Response, AppError> {
    let files = super::service::directory_contents(&body.directory_contents)?;
    let values = if body.values.is_null() {
        json!({})
    } else {
        body.values
    };
    let result = scaffolder
        .dry_run(
            &caller,
            body.template,
            &values,
            body.secrets.as_ref(),
            files,
        )
        .await?;
    match result {
        Ok(result) => Ok(Json(json!({
            "log": result.log,
            "directoryContents": result.directory_contents,
            "output": result.output,
            "steps": result.steps,
        }))
        .into_response()),
        Err(errors) => Ok(invalid_values(&errors)),
    }
}

/// 400 with the validator's errors as the body (`{errors: [...]}`), as Backstage answers invalid
/// values: marked as the error body, so the JSON error renderer leaves it as it is.
fn invalid_values(errors: &[super::params::ParameterError]) -> Response {
    let mut response = (StatusCode::BAD_REQUEST, Json(json!({"errors": errors}))).into_response();
    response.extensions_mut().insert(OwnErrorBody);
    response
}

async fn list_actions(State(scaffolder): State<ScaffolderService>) -> Json<Value> {
    Json(scaffolder.actions().describe())
}

/// The filters and globals template expressions may call (Backstage's four filters).
/// `POST /v2/autocomplete/{provider}/{resource}` with `{token, context}`: what Backstage's pickers
/// ask a source-control host for. Like Backstage's built-in modules, Atrium answers `github` `owners`
/// (the organisations of the caller's token, on `context.host`, default `github.com`); anything else
/// is a 400 naming what is supported.
async fn autocomplete(
    State(scaffolder): State<ScaffolderService>,
    _caller: Caller,
    Path((provider, resource)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, AppError> {
    if provider != "github" {
        return Err(AppError::input(format!(
            "Unsupported provider: {provider} (Atrium answers autocomplete for github)"
        )));
    }
    if resource != "owners" {
        return Err(AppError::input(format!(
            "Invalid resource: {resource} (github answers owners)"
        )));
    }
    let token = body["token"].as_str().unwrap_or_default();
    let host = body["context"]["host"].as_str().unwrap_or("github.com");
    let owners = super::actions::publish::github_owners(scaffolder.config(), host, token)
        .await
        .map_err(|e| AppError::input(e.to_string()))?;
    Ok(Json(json!({
        "results": owners.into_iter().map(|id| json!({"id": id})).collect::<Vec<_>>()
    })))
}

async fn templating_extensions() -> Json<Value> {
    Json(super::expr::templating_extensions())
}

async fn parameter_schema(
    State(scaffolder): State<ScaffolderService>,
    caller: Caller,
    Path((namespace, kind, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, AppError> {
    if !kind.eq_ignore_ascii_case("template") {
        return Err(AppError::input(format!(
            "Invalid kind {kind:?}, only 'Template' kind is supported"
        )));
    }
    let template = scaffolder
        .template(&caller, &format!("template:{namespace}/{name}"))
        .await?;
    let metadata = &template.entity["metadata"];
    let steps: Vec<Value> = template
        .pages
        .iter()
        .map(|page| {
            json!({
                "title": page["title"].as_str().unwrap_or("Please enter the following information"),
                "description": page.get("description"),
                "schema": page,
            })
        })
        .collect();
    let mut answer = json!({
        "title": metadata["title"].as_str().or(metadata["name"].as_str()),
        "description": metadata.get("description"),
        "steps": steps,
    });
    if let Some(presentation) = template.entity["spec"].get("presentation") {
        answer["presentation"] = presentation.clone();
    }
    Ok(Json(answer))
}
