//! `/create/tasks`: the task history, newest first, filtered by status and creator through a plain GET
//! form, in pages of `limit` from `offset` with previous/next links. It lists the caller's own tasks
//! (everyone's for an admin), as the API does.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::task::template_of;
use super::task_href;
use crate::auth::Caller;
use crate::error::AppError;
use crate::http::QueryParams;
use crate::scaffolder::ScaffolderService;
use crate::scaffolder::tasks::db::TaskList;

const PAGE_SIZE: i64 = 20;
const MAX_PAGE_SIZE: i64 = 100;
const STATUSES: [&str; 5] = ["open", "processing", "completed", "failed", "cancelled"];

pub struct TaskSummary {
    pub href: String,
    pub title: String,
    pub status: String,
    pub created_at: String,
    pub created_by: String,
}

pub struct StatusOption {
    pub value: &'static str,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "scaffolder/history.html")]
pub struct HistoryPage {
    statuses: Vec<StatusOption>,
    created_by: String,
    tasks: Vec<TaskSummary>,
    total: i64,
    first: i64,
    last: i64,
    prev_href: Option<String>,
    next_href: Option<String>,
    any_filter: bool,
}

fn href(status: &str, created_by: &str, limit: i64, offset: i64) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if !status.is_empty() {
        query.append_pair("status", status);
    }
    if !created_by.is_empty() {
        query.append_pair("createdBy", created_by);
    }
    if limit != PAGE_SIZE {
        query.append_pair("limit", &limit.to_string());
    }
    if offset > 0 {
        query.append_pair("offset", &offset.to_string());
    }
    let query = query.finish();
    if query.is_empty() {
        "/create/tasks".to_owned()
    } else {
        format!("/create/tasks?{query}")
    }
}

pub async fn list_tasks(
    State(scaffolder): State<ScaffolderService>,
    caller: Caller,
    params: QueryParams,
) -> Result<HistoryPage, AppError> {
    let status = params
        .one("status")
        .filter(|s| STATUSES.contains(&s.as_str()))
        .unwrap_or_default();
    let created_by = params
        .one("createdBy")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let limit = params
        .number("limit")?
        .unwrap_or(PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let offset = params.number("offset")?.unwrap_or(0);
    let list = TaskList {
        status: if status.is_empty() {
            Vec::new()
        } else {
            vec![status.clone()]
        },
        created_by: if created_by.is_empty() {
            Vec::new()
        } else {
            vec![created_by.clone()]
        },
        order: vec![("created_at", true)],
        limit: Some(limit),
        offset: Some(offset),
    };
    let (rows, total) = scaffolder.list_tasks(&caller, list).await?;
    let tasks: Vec<TaskSummary> = rows
        .iter()
        .map(|task| {
            let (title, _) = template_of(task);
            TaskSummary {
                href: task_href(task.id),
                title,
                status: task.status.clone(),
                created_at: task
                    .created_at
                    .replace('T', " ")
                    .trim_end_matches('Z')
                    .to_owned(),
                created_by: task.created_by.clone(),
            }
        })
        .collect();
    let shown = tasks.len() as i64;
    Ok(HistoryPage {
        statuses: STATUSES
            .iter()
            .map(|value| StatusOption {
                value,
                selected: *value == status,
            })
            .collect(),
        prev_href: (offset > 0).then(|| href(&status, &created_by, limit, (offset - limit).max(0))),
        next_href: (offset + shown < total)
            .then(|| href(&status, &created_by, limit, offset + limit)),
        first: if shown == 0 { 0 } else { offset + 1 },
        last: offset + shown,
        any_filter: !status.is_empty() || !created_by.is_empty(),
        created_by,
        tasks,
        total,
    })
}
