//! `/`: the way in — search, what the catalog holds by kind, and what changed lately.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::view::EntitySummary;
use super::{PageResult, parse_entity};
use crate::AppState;
use crate::catalog::db;

const RECENT: i64 = 8;

pub struct KindCount {
    pub kind: String,
    pub count: i64,
    pub href: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "catalog/home.html")]
pub struct HomePage {
    total: i64,
    kinds: Vec<KindCount>,
    recent: Vec<EntitySummary>,
}

pub async fn show_home(State(state): State<AppState>) -> PageResult<HomePage> {
    let counts = db::facet_counts(&state.db, "kind", None).await?;
    let bodies: Vec<String> = sqlx::query_scalar(
        "select final from entity where final is not null order by updated_at desc, entity_key limit $1",
    )
    .bind(RECENT)
    .fetch_all(&state.db)
    .await?;
    let mut recent = Vec::with_capacity(bodies.len());
    for body in &bodies {
        recent.push(EntitySummary::from_entity(&parse_entity(body)?));
    }
    let mut kinds: Vec<KindCount> = counts
        .into_iter()
        .map(|(kind, count)| KindCount {
            href: format!(
                "/catalog?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("kind", &kind)
                    .finish()
            ),
            kind,
            count,
        })
        .collect();
    kinds.sort_by_key(|k| k.kind.to_lowercase());
    Ok(HomePage {
        total: kinds.iter().map(|k| k.count).sum(),
        kinds,
        recent,
    })
}
