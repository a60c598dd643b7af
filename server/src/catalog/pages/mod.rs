//! The catalog's pages: the entity list (`/catalog`), one entity (`/catalog/{namespace}/{kind}/{name}`,
//! Backstage's URL)
//! and registering a catalog file (`/catalog/register`). Handlers read through `CatalogService` and the
//! catalog's queries; what every page shares (layout, errors, CSP, CSRF) is in `crate::ui`.

mod entity;
mod list;
mod register;
pub mod view;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/catalog", get(list::list_entities))
        .route(
            "/catalog/register",
            get(register::show_register).post(register::submit_register),
        )
        .route(
            "/catalog/{namespace}/{kind}/{name}",
            get(entity::show_entity),
        )
}
