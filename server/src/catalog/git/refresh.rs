//! Push events: which registered repositories a push concerns, and making them due now.

use sqlx::PgPool;
use uuid::Uuid;

use super::{GitRepo, remote_key};
use crate::catalog::webhook::PushEvent;

/// Makes every registered repository the push concerns due now, revoking claims in progress (a fetch
/// that started before the push must not be the last word). Returns the targets refreshed.
pub async fn refresh_pushed(db: &PgPool, push: &PushEvent) -> Result<Vec<String>, sqlx::Error> {
    let pushed_branch = match push.git_ref.as_deref() {
        Some(git_ref) => match git_ref.strip_prefix("refs/heads/") {
            Some(branch) => Some(branch),
            None => return Ok(Vec::new()), // a tag or another ref: no branch we follow moved
        },
        None => None,
    };
    let keys = push.repository_keys();
    let repositories: Vec<(Uuid, String)> =
        sqlx::query_as("select id, target from location where type = 'git' and parent_id is null")
            .fetch_all(db)
            .await?;
    let mut ids = Vec::new();
    let mut targets = Vec::new();
    for (id, target) in repositories {
        let Ok(repo) = GitRepo::parse(&target) else {
            continue;
        };
        if !keys.contains(&remote_key(&repo.remote)) {
            continue;
        }
        // When the event leaves the branch out, refresh rather than miss a push.
        let concerned = match (&repo.branch, pushed_branch) {
            (Some(followed), Some(pushed)) => followed == pushed,
            (None, Some(_)) if push.default_branch.is_some() => push.is_default_branch(),
            _ => true,
        };
        if concerned {
            ids.push(id);
            targets.push(target);
        }
    }
    if !ids.is_empty() {
        sqlx::query(
            "update location set next_refresh_at = now(), claim_token = null where id = any($1)",
        )
        .bind(&ids)
        .execute(db)
        .await?;
    }
    Ok(targets)
}
