//! The scaffolder's browser pages: the template gallery (`/create`), a template's form
//! (`/create/templates/{namespace}/{name}`), one task followed live (`/create/tasks/{id}`) and the task
//! history (`/create/tasks`).
//!
//! Handlers read through `ScaffolderService` (and `CatalogService` for the gallery and the pickers);
//! what every page shares (layout, errors, CSP, the same-origin check) is in `crate::ui`. Every page
//! works without JavaScript: the form is plain HTML validated on the server, and the task page shows
//! the state at the time it was rendered. `web/static/task.js` only follows a running task live.

mod conditions;
mod fields;
mod form;
mod gallery;
mod history;
mod shown;
mod task;

use axum::Router;
use axum::routing::{get, post};

use axum::extract::FromRef;

use crate::catalog::CatalogService;
use crate::scaffolder::ScaffolderService;

/// The pages, for any router state that holds the two services (the scaffolder sits below `state`).
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ScaffolderService: FromRef<S>,
    CatalogService: FromRef<S>,
{
    Router::new()
        .route("/create", get(gallery::list_templates))
        .route(
            "/create/templates/{namespace}/{name}",
            get(form::show_form).post(form::submit_form),
        )
        .route("/create/tasks", get(history::list_tasks))
        .route("/create/tasks/{id}", get(task::show_task))
        .route("/create/tasks/{id}/cancel", post(task::cancel_task))
}

/// The form of a template: `/create/templates/{namespace}/{name}`.
pub fn form_href(namespace: &str, name: &str) -> String {
    use crate::catalog::pages::view::encode_segment;
    format!(
        "/create/templates/{}/{}",
        encode_segment(&namespace.to_lowercase()),
        encode_segment(name)
    )
}

/// The page of a task.
pub fn task_href(id: uuid::Uuid) -> String {
    format!("/create/tasks/{id}")
}
