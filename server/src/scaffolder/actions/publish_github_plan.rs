//! `publish:github`'s inputs read into a plan of what the action will do: every name checked, every
//! request body built, before the first request is sent. Defaults are Backstage's (`github.ts`).

use serde_json::{Map, Value, json};

use super::git::Credentials;
use super::github::DEFAULT_GITHUB_BRANCH;
use super::github_api::Api;
use super::{CommitSpec, required_text, text_input};
use crate::scaffolder::actions::repo_url::{
    RepoUrl, RepoUrlError, Secret, check_github_owner, check_name, host_token, token_user,
};
use crate::scaffolder::actions::{ActionContext, ActionError};

/// `access`: an admin team of the owning organization, or an admin collaborator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Access {
    Team(String),
    User(String),
}

/// One `collaborators` entry, its name already reduced to a plain name as Backstage's
/// `entityRefToName` does (`user:default/jane` → `jane`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Collaborator {
    User { name: String, access: String },
    Team { slug: String, access: String },
}

/// Everything the action will do, checked before the first request.
pub(super) struct Plan {
    pub(super) owner: String,
    pub(super) repo: String,
    pub(super) spec: CommitSpec,
    pub(super) remote: String,
    pub(super) api: Api,
    pub(super) credentials: Credentials,
    pub(super) create_fields: Map<String, Value>,
    pub(super) org_only_fields: Map<String, Value>,
    pub(super) access: Option<Access>,
    pub(super) collaborators: Vec<Collaborator>,
    pub(super) topics: Option<Vec<String>>,
    pub(super) variables: Vec<(String, String)>,
    pub(super) oidc: Option<Value>,
    pub(super) subscribe: bool,
    pub(super) protection: Option<Value>,
    pub(super) required_commit_signing: bool,
}

/// Reads and checks every input; nothing has been sent anywhere yet.
pub(super) fn plan(ctx: &ActionContext<'_>) -> Result<Plan, ActionError> {
    let repo_url = RepoUrl::parse(required_text(ctx, "repoUrl")?)?;
    let owner = repo_url
        .require_owner()
        .map_err(|_| ActionError::input("Invalid repository owner provided in repoUrl"))?
        .to_owned();
    check_github_owner(&owner)?;
    let repo = repo_url.repo.clone();
    let host = repo_url.host_config(&ctx.services.config.scaffolder)?;
    let api_url = host.github_api_url.as_deref().ok_or_else(|| {
        ActionError::input(format!(
            "publish:github cannot publish to {}: its scaffolder.hosts entry has no github_api_url",
            host.host
        ))
    })?;
    let remote = repo_url.remote(host)?;
    let spec = CommitSpec::from_input(ctx, DEFAULT_GITHUB_BRANCH)?;
    let token = match text_input(ctx, "token") {
        Some(token) => Some(Secret::new(token)),
        None => host_token(host)?,
    }
    .ok_or_else(|| {
        ActionError::input(format!(
            "publish:github needs a token: give the token input, or set token_env or token_file for host {} in scaffolder.hosts",
            host.host
        ))
    })?;
    let credentials = Credentials {
        username: token_user(host).to_owned(),
        token: Some(token.clone()),
        ssh_key: host.ssh_key.clone(),
    };
    let api = Api::new(api_url, token, credentials.username.clone())?;

    let flag = |key: &str, default: bool| {
        ctx.input
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(default)
    };
    let visibility = text_input(ctx, "repoVisibility").unwrap_or("private");
    if !["private", "public", "internal"].contains(&visibility) {
        return Err(ActionError::input(format!(
            "repoVisibility {visibility:?} must be private, public or internal"
        )));
    }
    let mut create_fields = Map::new();
    create_fields.insert("name".into(), json!(repo));
    create_fields.insert("private".into(), json!(visibility == "private"));
    let mut org_only_fields = Map::new();
    org_only_fields.insert("visibility".into(), json!(visibility));
    if let Some(description) = text_input(ctx, "description") {
        create_fields.insert("description".into(), json!(description));
    }
    if let Some(homepage) = text_input(ctx, "homepage") {
        create_fields.insert("homepage".into(), json!(homepage));
    }
    for (key, field, default) in [
        ("deleteBranchOnMerge", "delete_branch_on_merge", false),
        ("allowMergeCommit", "allow_merge_commit", true),
        ("allowSquashMerge", "allow_squash_merge", true),
        ("allowRebaseMerge", "allow_rebase_merge", true),
        ("allowAutoMerge", "allow_auto_merge", false),
    ] {
        create_fields.insert(field.into(), json!(flag(key, default)));
    }
    create_fields.insert(
        "squash_merge_commit_title".into(),
        json!(text_input(ctx, "squashMergeCommitTitle").unwrap_or("COMMIT_OR_PR_TITLE")),
    );
    create_fields.insert(
        "squash_merge_commit_message".into(),
        json!(text_input(ctx, "squashMergeCommitMessage").unwrap_or("COMMIT_MESSAGES")),
    );
    for (key, field) in [
        ("hasProjects", "has_projects"),
        ("hasWiki", "has_wiki"),
        ("hasIssues", "has_issues"),
    ] {
        if let Some(value) = ctx.input.get(key).and_then(Value::as_bool) {
            create_fields.insert(field.into(), json!(value));
        }
    }
    if let Some(properties) = ctx.input.get("customProperties").filter(|v| v.is_object()) {
        org_only_fields.insert("custom_properties".into(), properties.clone());
    }

    let access = match text_input(ctx, "access") {
        None => None,
        Some(access) => match access.strip_prefix(&format!("{owner}/")) {
            Some(team) => {
                check_name("access team", team)?;
                Some(Access::Team(team.to_owned()))
            }
            None if access == owner => None,
            None => {
                check_name("access", access).map_err(|e| {
                    ActionError::input(format!(
                        "{e}; access is a user name, or a team as {owner}/team-slug"
                    ))
                })?;
                Some(Access::User(access.to_owned()))
            }
        },
    };

    let mut collaborators = Vec::new();
    for item in ctx
        .input
        .get("collaborators")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let access = item
            .get("access")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| ActionError::input("every collaborators entry needs an access"))?
            .to_owned();
        let name_of = |key: &str| -> Result<Option<String>, RepoUrlError> {
            match item.get(key).and_then(Value::as_str) {
                Some(reference) => {
                    let name = entity_ref_to_name(reference);
                    check_name(&format!("collaborators {key}"), name)?;
                    Ok(Some(name.to_owned()))
                }
                None => Ok(None),
            }
        };
        if let Some(name) = name_of("user")? {
            collaborators.push(Collaborator::User { name, access });
        } else if let Some(slug) = name_of("team")? {
            collaborators.push(Collaborator::Team { slug, access });
        } else if let Some(name) = item.get("username").and_then(Value::as_str) {
            ctx.log(format!(
                "Skipping {access} access for {name}: collaborators entries name a user or a team; username is no longer used"
            ));
        }
    }

    let topics = ctx
        .input
        .get("topics")
        .and_then(Value::as_array)
        .map(|topics| {
            topics
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        });

    let mut variables = Vec::new();
    if let Some(Value::Object(map)) = ctx.input.get("repoVariables") {
        for (name, value) in map {
            let value = value.as_str().ok_or_else(|| {
                ActionError::input(format!("repoVariables {name} must be a string"))
            })?;
            variables.push((name.clone(), value.to_owned()));
        }
    }

    let oidc = match ctx.input.get("oidcCustomization") {
        Some(Value::Object(o)) => {
            let mut body = Map::new();
            body.insert(
                "use_default".into(),
                json!(o.get("useDefault").and_then(Value::as_bool).unwrap_or(true)),
            );
            if let Some(keys) = o.get("includeClaimKeys") {
                body.insert("include_claim_keys".into(), keys.clone());
            }
            Some(Value::Object(body))
        }
        _ => None,
    };

    let protection = flag("protectDefaultBranch", true).then(|| {
        let mut reviews = Map::new();
        reviews.insert(
            "required_approving_review_count".into(),
            ctx.input
                .get("requiredApprovingReviewCount")
                .cloned()
                .unwrap_or(json!(1)),
        );
        reviews.insert(
            "require_code_owner_reviews".into(),
            json!(flag("requireCodeOwnerReviews", false)),
        );
        if let Some(bypass) = ctx.input.get("bypassPullRequestAllowances") {
            reviews.insert("bypass_pull_request_allowances".into(), bypass.clone());
        }
        reviews.insert(
            "dismiss_stale_reviews".into(),
            json!(flag("dismissStaleReviews", false)),
        );
        reviews.insert(
            "require_last_push_approval".into(),
            json!(flag("requireLastPushApproval", false)),
        );
        json!({
            "required_status_checks": {
                "strict": flag("requireBranchesToBeUpToDate", true),
                "contexts": ctx.input.get("requiredStatusCheckContexts").cloned().unwrap_or(json!([])),
            },
            "restrictions": ctx.input.get("restrictions").cloned().unwrap_or(Value::Null),
            "enforce_admins": flag("protectEnforceAdmins", true),
            "required_pull_request_reviews": reviews,
            "required_conversation_resolution": flag("requiredConversationResolution", false),
            "required_linear_history": flag("requiredLinearHistory", false),
        })
    });

    Ok(Plan {
        owner,
        repo,
        spec,
        remote,
        api,
        credentials,
        create_fields,
        org_only_fields,
        access,
        collaborators,
        topics,
        variables,
        oidc,
        subscribe: flag("subscribe", false),
        protection,
        required_commit_signing: flag("requiredCommitSigning", false),
    })
}

/// Backstage's `entityRefToName`: everything up to the last `:` or `/` goes.
fn entity_ref_to_name(reference: &str) -> &str {
    reference
        .rfind([':', '/'])
        .map_or(reference, |i| &reference[i + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_refs_become_names_as_in_backstage() {
        assert_eq!(entity_ref_to_name("user:default/jane"), "jane");
        assert_eq!(entity_ref_to_name("group:team-a"), "team-a");
        assert_eq!(entity_ref_to_name("jane"), "jane");
    }
}
