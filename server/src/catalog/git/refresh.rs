//! Push events: which registered repositories a push concerns, and making them due now.

use sqlx::PgPool;
use uuid::Uuid;

use super::{GitRepo, remote_key};

/// A push as far as refreshing is concerned.
#[derive(Debug, Clone, Default)]
pub struct Push {
    /// Every URL the event names for the repository (clone, ssh, web); any spelling matches.
    pub repository_urls: Vec<String>,
    /// `refs/heads/<branch>`; `None` when the event does not say (then every branch is refreshed).
    pub git_ref: Option<String>,
    /// The repository's default branch, for locations that follow it.
    pub default_branch: Option<String>,
}

/// Makes every registered repository the push concerns due now, revoking claims in progress (a fetch
/// that started before the push must not be the last word). Returns the targets refreshed.
pub async fn refresh_pushed(db: &PgPool, push: &Push) -> Result<Vec<String>, sqlx::Error> {
    let keys: Vec<String> = push.repository_urls.iter().map(|u| remote_key(u)).collect();
    let pushed_branch = push
        .git_ref
        .as_deref()
        .map(|r| r.strip_prefix("refs/heads/").unwrap_or(r));
    if push
        .git_ref
        .as_deref()
        .is_some_and(|r| !r.starts_with("refs/heads/"))
    {
        return Ok(Vec::new()); // a tag or another ref: no branch we follow moved
    }
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
        let followed = repo.branch.as_deref().or(push.default_branch.as_deref());
        let concerned = match (pushed_branch, followed) {
            (Some(pushed), Some(followed)) => pushed == followed,
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
