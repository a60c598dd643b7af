//! `/create/tasks/{id}`: one task — its template, status, each step with its status and duration, the
//! log so far, and once it has ended, the output (links and text). Rendered whole from the task row and
//! its events, so a reload always shows the current state; `web/static/task.js` follows a task that
//! is still running over the event stream (`after` the last event rendered here) and fetches the page
//! again when the `completion` event arrives. Cancelling is a plain form post.

use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Redirect;
use serde_json::Value;
use uuid::Uuid;

use super::{form_href, task_href};
use crate::auth::Caller;
use crate::catalog::model::refs::{EntityRef, RefDefaults};
use crate::catalog::pages::view::{ref_href, safe_url};
use crate::error::AppError;
use crate::http::Path;
use crate::scaffolder::ScaffolderService;
use crate::scaffolder::tasks::db::{EventRow, TaskRow};
use crate::ui::csrf::check_same_origin;

pub struct StepView {
    pub id: String,
    pub name: String,
    pub action: String,
    /// `open` (not started), `processing`, `completed`, `skipped` or `failed`.
    pub status: String,
    pub duration: String,
}

pub struct LogLine {
    pub id: i64,
    /// `HH:MM:SS` (UTC) of the event.
    pub time: String,
    pub event_type: String,
    pub step: String,
    pub message: String,
}

pub struct OutputLink {
    pub title: String,
    /// Empty when the URL is not one we make clickable (a `file://` remote, say).
    pub href: String,
    pub url: String,
}

pub struct OutputText {
    pub title: String,
    pub content: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "scaffolder/task.html")]
pub struct TaskPage {
    id: String,
    href: String,
    title: String,
    template_href: String,
    status: String,
    created_at: String,
    created_by: String,
    steps: Vec<StepView>,
    log: Vec<LogLine>,
    /// The id of the last event shown, where the live script resumes (`-1`: none yet).
    last_event: i64,
    running: bool,
    error: String,
    links: Vec<OutputLink>,
    texts: Vec<OutputText>,
}

/// A task id from the URL; anything else is a task that does not exist.
pub fn parse_id(id: &str) -> Result<Uuid, AppError> {
    id.parse().map_err(|_| {
        AppError::not_found(format!("There is no task {id}."))
            .suggest("/create/tasks", "See all tasks")
    })
}

/// The template's title and form link as the task spec recorded them.
pub fn template_of(task: &TaskRow) -> (String, String) {
    let info = &task.spec["templateInfo"];
    let metadata = &info["entity"]["metadata"];
    let title = metadata["title"]
        .as_str()
        .or(metadata["name"].as_str())
        .unwrap_or("Template")
        .to_owned();
    let href = info["entityRef"]
        .as_str()
        .and_then(|r| EntityRef::parse(r, RefDefaults::default()).ok())
        .map(|r| form_href(&r.namespace, &r.name))
        .unwrap_or_default();
    (title, href)
}

fn duration(ms: u64) -> String {
    let elapsed = Duration::from_millis(ms);
    if elapsed < Duration::from_secs(1) {
        format!("{ms} ms")
    } else if elapsed < Duration::from_secs(60) {
        format!("{:.1} s", elapsed.as_secs_f64())
    } else {
        format!(
            "{} min {} s",
            elapsed.as_secs() / 60,
            elapsed.as_secs() % 60
        )
    }
}

fn steps(task: &TaskRow, events: &[EventRow]) -> Vec<StepView> {
    task.spec["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|step| {
            let id = step["id"].as_str().unwrap_or_default().to_owned();
            // The last status an event gave the step, else the checkpoint's, else not started.
            let status = events
                .iter()
                .rev()
                .filter(|e| e.body["stepId"].as_str() == Some(id.as_str()))
                .find_map(|e| e.body["status"].as_str())
                .or(task.state["steps"][&id]["status"].as_str())
                .unwrap_or("open")
                .to_owned();
            StepView {
                name: step["name"].as_str().unwrap_or(&id).to_owned(),
                action: step["action"].as_str().unwrap_or_default().to_owned(),
                duration: task.state["steps"][&id]["durationMs"]
                    .as_u64()
                    .map(duration)
                    .unwrap_or_default(),
                status,
                id,
            }
        })
        .collect()
}

fn log_line(event: &EventRow) -> LogLine {
    LogLine {
        id: event.id,
        time: event
            .created_at
            .get(11..19)
            .unwrap_or(&event.created_at)
            .to_owned(),
        event_type: event.event_type.clone(),
        step: event.body["stepId"].as_str().unwrap_or_default().to_owned(),
        message: event.body["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| event.body.to_string()),
    }
}

/// The output's links and texts; a link to an entity goes to its catalog page.
fn output(output: &Value) -> (Vec<OutputLink>, Vec<OutputText>) {
    let links = output["links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|link| {
            let title = link["title"].as_str().unwrap_or_default();
            if let Some(reference) = link["entityRef"].as_str().filter(|r| !r.is_empty()) {
                let parsed = EntityRef::parse(
                    reference,
                    RefDefaults {
                        kind: Some("component"),
                        namespace: "default",
                    },
                )
                .ok()?;
                return Some(OutputLink {
                    title: if title.is_empty() { reference } else { title }.to_owned(),
                    href: ref_href(&parsed),
                    url: reference.to_owned(),
                });
            }
            let url = link["url"].as_str().filter(|u| !u.is_empty())?;
            Some(OutputLink {
                title: if title.is_empty() { url } else { title }.to_owned(),
                href: safe_url(url).unwrap_or_default(),
                url: url.to_owned(),
            })
        })
        .collect();
    let texts = output["text"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|text| {
            Some(OutputText {
                title: text["title"].as_str().unwrap_or_default().to_owned(),
                content: text["content"].as_str()?.to_owned(),
            })
        })
        .collect();
    (links, texts)
}

pub async fn show_task(
    State(scaffolder): State<ScaffolderService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<TaskPage, AppError> {
    let id = parse_id(&id)?;
    let task = scaffolder
        .task_for(&caller, id)
        .await
        .map_err(|e| e.suggest("/create/tasks", "See all tasks"))?;
    let events = scaffolder.events(id, -1, Duration::ZERO).await?;
    let (title, template_href) = template_of(&task);
    let completion = events.iter().rev().find(|e| e.event_type == "completion");
    let result = completion
        .map(|e| &e.body["output"])
        .filter(|o| o.is_object())
        .unwrap_or(&task.state["output"]);
    let (links, texts) = output(result);
    let error = match task.status.as_str() {
        "failed" => completion
            .and_then(|e| e.body["error"]["message"].as_str())
            .unwrap_or("The run failed; the log says where.")
            .to_owned(),
        _ => String::new(),
    };
    Ok(TaskPage {
        id: id.to_string(),
        href: task_href(id),
        title,
        template_href,
        running: matches!(task.status.as_str(), "open" | "processing"),
        status: task.status.clone(),
        created_at: task
            .created_at
            .replace('T', " ")
            .trim_end_matches('Z')
            .to_owned(),
        created_by: task.created_by.clone(),
        steps: steps(&task, &events),
        last_event: events.last().map_or(-1, |e| e.id),
        log: events.iter().map(log_line).collect(),
        error,
        links,
        texts,
    })
}

pub async fn cancel_task(
    State(scaffolder): State<ScaffolderService>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Redirect, AppError> {
    check_same_origin(&headers)?;
    let id = parse_id(&id)?;
    scaffolder
        .cancel(&caller, id)
        .await
        .map_err(|e| e.suggest("/create/tasks", "See all tasks"))?;
    Ok(Redirect::to(&task_href(id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn output_links_go_to_entity_pages_or_safe_urls() {
        let (links, texts) = output(&json!({
            "links": [
                {"title": "Repository", "url": "file:///srv/git/o/r.git"},
                {"title": "Open in catalog", "entityRef": "component:default/orders-api"},
                {"url": "https://git.example.com/o/r"},
            ],
            "text": [{"title": "Next steps", "content": "Run make dev"}],
        }));
        assert_eq!(links[0].href, "", "file URLs are shown, not linked");
        assert_eq!(links[1].href, "/catalog/default/component/orders-api");
        assert_eq!(links[2].title, "https://git.example.com/o/r");
        assert_eq!(links[2].href, "https://git.example.com/o/r");
        assert_eq!(texts[0].content, "Run make dev");
        assert_eq!(duration(250), "250 ms");
        assert_eq!(duration(1500), "1.5 s");
        assert_eq!(duration(61_000), "1 min 1 s");
    }
}
