//! The processing queue of locations: claiming due locations with a lease and a fencing token,
//! renewing the lease, and storing a result only while the claim is still this worker's.
//!
//! Claiming is `FOR UPDATE SKIP LOCKED` plus a lease: the claim moves `next_refresh_at` forward by the
//! lease, so a location whose worker died becomes due again by itself, and any number of replicas
//! share the work without coordination.

use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::catalog::model::ProcessingError;

/// A claimed location, with what processing needs to know about its tree.
#[derive(Debug, Clone)]
pub struct LocationJob {
    pub id: Uuid,
    pub location_type: String,
    pub target: String,
    pub parent_id: Option<Uuid>,
    pub root_id: Uuid,
    pub declared_by: String,
    pub root_type: String,
    pub root_target: String,
    /// Fencing token of this claim (`None` for dry runs, which never store).
    pub claim_token: Option<Uuid>,
    /// The root's `source_version`: for a git repository, the commit its files are read at.
    pub root_version: Option<String>,
}

impl LocationJob {
    pub fn is_root(&self) -> bool {
        self.parent_id.is_none()
    }
}

/// Claims up to `limit` due locations for `lease_seconds`.
pub async fn claim_due_locations(
    db: impl PgExecutor<'_>,
    limit: i64,
    lease_seconds: f64,
) -> Result<Vec<LocationJob>, sqlx::Error> {
    sqlx::query_as!(
        LocationJob,
        r#"with due as (
             select id from location where next_refresh_at <= now()
             order by next_refresh_at limit $1 for update skip locked
           )
           update location l set next_refresh_at = now() + make_interval(secs => $2),
                                 claim_token = gen_random_uuid()
           from due, location r
           where l.id = due.id and r.id = l.root_id
           returning l.id, l.type as location_type, l.target, l.parent_id, l.root_id, l.declared_by,
                     r.type as root_type, r.target as root_target, l.claim_token,
                     r.source_version as root_version"#,
        limit,
        lease_seconds,
    )
    .fetch_all(db)
    .await
}

/// Extends a claim's lease, while the claim token is still `token`.
pub async fn renew_lease(
    db: impl PgExecutor<'_>,
    id: Uuid,
    token: Uuid,
    lease_seconds: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update location set next_refresh_at = now() + make_interval(secs => $3)
         where id = $1 and claim_token = $2",
        id,
        token,
        lease_seconds,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// What a location held before the result of its claim is stored.
pub struct ClaimedLocationRow {
    pub errors: Json<Vec<ProcessingError>>,
    pub source_version: Option<String>,
}

/// Locks a claimed location for storing its result; `None` when the location was deleted meanwhile, or
/// when the claim token is no longer `token` (the lease ran out and another worker claimed it since,
/// or a refresh revoked the claim): then the result is stale and must not be stored.
pub async fn lock_claimed_location(
    tx: &mut PgConnection,
    id: Uuid,
    token: Option<Uuid>,
) -> Result<Option<ClaimedLocationRow>, sqlx::Error> {
    sqlx::query_as!(
        ClaimedLocationRow,
        r#"select errors as "errors: Json<Vec<ProcessingError>>", source_version from location
           where id = $1 and claim_token is not distinct from $2 for update"#,
        id,
        token,
    )
    .fetch_optional(tx)
    .await
}

/// Stores a processed location's errors and schedule, and ends its claim. A location that its
/// repository drives (`until_its_repository_changes`) is not due again on a timer.
pub async fn finish_location(
    tx: &mut PgConnection,
    id: Uuid,
    errors: &[ProcessingError],
    refresh_interval_seconds: f64,
    until_its_repository_changes: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update location set errors = $2, last_refreshed_at = now(), claim_token = null,
         next_refresh_at = case when $4 then 'infinity' else now() + make_interval(secs => $3) end
         where id = $1",
        id,
        Json(errors) as _,
        refresh_interval_seconds,
        until_its_repository_changes,
    )
    .execute(tx)
    .await?;
    Ok(())
}
