//! How far processing has got: `GET /api/atrium/processing` and the metrics gauges.

use sqlx::PgExecutor;

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessingStatusRow {
    pub entities: i64,
    pub entities_pending: i64,
    pub locations: i64,
    pub locations_due: i64,
    pub stitch_queue: i64,
    pub locations_with_errors: i64,
}

pub async fn processing_status(
    db: impl PgExecutor<'_>,
) -> Result<ProcessingStatusRow, sqlx::Error> {
    sqlx::query_as!(
        ProcessingStatusRow,
        r#"select (select count(*) from entity) as "entities!",
                  (select count(*) from entity where final is null) as "entities_pending!",
                  (select count(*) from location) as "locations!",
                  (select count(*) from location where next_refresh_at <= now()) as "locations_due!",
                  (select count(*) from stitch_queue) as "stitch_queue!",
                  (select count(*) from location where errors <> '[]'::jsonb) as "locations_with_errors!""#
    )
    .fetch_one(db)
    .await
}
