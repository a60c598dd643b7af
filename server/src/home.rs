//! `/`: the way in — search, what the catalog holds by kind, and what changed lately. The one page
//! that spans features, so it sits above them (beside the router assembly in `lib.rs`), not in `ui`:
//! it reads each feature through its service (today the catalog; later golden paths and deployments)
//! and its shared view helpers, never through their queries.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::auth::Caller;
use crate::catalog::CatalogService;
use crate::catalog::pages::view::{EntitySummary, catalog_href};
use crate::error::AppError;
use crate::state::AppState;

const RECENT: i64 = 8;

pub struct KindCount {
    pub kind: String,
    pub count: i64,
    pub href: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    total: i64,
    kinds: Vec<KindCount>,
    recent: Vec<EntitySummary>,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(show_home))
}

async fn show_home(
    State(catalog): State<CatalogService>,
    caller: Caller,
) -> Result<HomePage, AppError> {
    let mut kinds: Vec<KindCount> = catalog
        .kind_counts(&caller)
        .await?
        .iter()
        .map(|row| KindCount {
            href: catalog_href(&[("kind", &row.value)]),
            kind: row.value.clone(),
            count: row.count,
        })
        .collect();
    kinds.sort_by_key(|k| k.kind.to_lowercase());
    let recent = catalog
        .recent_entities(&caller, RECENT)
        .await?
        .iter()
        .map(EntitySummary::from_entity)
        .collect();
    Ok(HomePage {
        total: kinds.iter().map(|k| k.count).sum(),
        kinds,
        recent,
    })
}
