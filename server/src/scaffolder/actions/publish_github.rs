//! `publish:github`: Backstage's action of that name (`plugins/scaffolder-backend-module-github`,
//! `github.ts` and `helpers.ts`) against GitHub's REST API, then the same push as `publish:git`.
//!
//! The calls, in Backstage's order: `GET /users/{owner}` (its `type` decides between
//! `POST /orgs/{owner}/repos` and `POST /user/repos`; for a user, `GET /user` first checks that the
//! token is that user's), `GET /orgs/{org}/teams/{team}` when `access`
//! names a team, the repository creation, `access` as an admin team or collaborator, `collaborators`
//! and `topics` (failures there are warnings, as in Backstage), `repoVariables`, `oidcCustomization`,
//! `subscribe`; the push; then branch protection of the default branch (a failure is a warning).
//! `secrets` need libsodium's sealed boxes, which Atrium does not have: they are reported and skipped.
//!
//! The push goes to the host's configured `remote` pattern, not to the `clone_url` GitHub answers:
//! the token is only ever sent where the configuration says (the two agree on github.com; a
//! difference is logged). `remoteUrl` is that remote; `repoContentsUrl` is Backstage's
//! `<html_url>/blob/<branch>`.

use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::git::{self, Create};
use super::github_api::ApiError;
use super::github_plan::{Access, Collaborator, plan};
use super::{commit_properties, output, output_schema, refuse_dry_run};
use crate::scaffolder::actions::{Action, ActionContext, ActionError};

/// Backstage's default branch for `publish:github`.
pub const DEFAULT_GITHUB_BRANCH: &str = "master";

/// `publish:github`.
pub struct PublishGithub;

/// Most organisations listed for `POST /v2/autocomplete/github/owners` (100 a page).
const MAX_OWNER_PAGES: usize = 10;

/// `POST /v2/autocomplete/github/owners`, as Backstage's GitHub module answers it: the organisations
/// the given (user's) token belongs to, on `host` (a `scaffolder.hosts` entry with a
/// `github_api_url`). The token is the caller's own, as Backstage's form sends it; the host's
/// configured token is never used here, so nobody lists what only the portal's account can see.
pub async fn github_owners(
    config: &crate::config::ScaffolderConfig,
    host: &str,
    token: &str,
) -> Result<Vec<String>, ActionError> {
    if token.trim().is_empty() {
        return Err(ActionError::input(
            "autocomplete github owners needs the caller's GitHub token in `token`",
        ));
    }
    let api_url = config
        .hosts
        .iter()
        .find(|h| h.host.eq_ignore_ascii_case(host))
        .and_then(|h| h.github_api_url.as_deref())
        .ok_or_else(|| {
            ActionError::input(format!(
                "{host} is not a GitHub host in scaffolder.hosts (an entry with github_api_url)"
            ))
        })?;
    let api = super::github_api::Api::new(
        api_url,
        super::super::repo_url::Secret::new(token.trim()),
        "x-access-token".to_owned(),
    )?;
    let organizations = api
        .list(&["user", "orgs"], MAX_OWNER_PAGES)
        .await
        .map_err(|e| {
            e.context(&format!(
                "Cannot list the organizations of the token on {host}"
            ))
        })?;
    Ok(organizations
        .iter()
        .filter_map(|o| o.get("login").and_then(Value::as_str))
        .map(str::to_owned)
        .collect())
}

impl Action for PublishGithub {
    fn id(&self) -> &'static str {
        "publish:github"
    }

    fn description(&self) -> &'static str {
        "Initializes a git repository of contents in workspace and publishes it to GitHub."
    }

    fn input_schema(&self) -> Value {
        let mut properties = commit_properties(DEFAULT_GITHUB_BRANCH);
        let boolean = || json!({"type": "boolean"});
        let strings = || json!({"type": "array", "items": {"type": "string"}});
        let string_map = || json!({"type": "object", "additionalProperties": {"type": "string"}});
        let principals = || {
            json!({
                "type": "object",
                "properties": {"apps": strings(), "users": strings(), "teams": strings()}
            })
        };
        let collaborator = json!({
            "type": "object",
            "required": ["access"],
            "properties": {
                "access": {"type": "string"},
                "user": {"type": "string"},
                "team": {"type": "string"},
                "username": {"type": "string"}
            }
        });
        for (name, schema) in [
            (
                "homepage",
                json!({"title": "Repository Homepage", "type": "string"}),
            ),
            (
                "access",
                json!({
                    "type": "string",
                    "description": "Sets an admin collaborator on the repository: a user other than the owner, or a team as `owner/team-slug`"
                }),
            ),
            (
                "repoVisibility",
                json!({"type": "string", "enum": ["private", "public", "internal"]}),
            ),
            ("deleteBranchOnMerge", boolean()),
            ("allowMergeCommit", boolean()),
            ("allowSquashMerge", boolean()),
            (
                "squashMergeCommitTitle",
                json!({"type": "string", "enum": ["PR_TITLE", "COMMIT_OR_PR_TITLE"]}),
            ),
            (
                "squashMergeCommitMessage",
                json!({"type": "string", "enum": ["PR_BODY", "COMMIT_MESSAGES", "BLANK"]}),
            ),
            ("allowRebaseMerge", boolean()),
            ("allowAutoMerge", boolean()),
            ("hasProjects", boolean()),
            ("hasWiki", boolean()),
            ("hasIssues", boolean()),
            (
                "collaborators",
                json!({"type": "array", "items": collaborator}),
            ),
            ("topics", strings()),
            (
                "token",
                json!({"type": "string", "description": "The token to use for authorization to GitHub"}),
            ),
            ("repoVariables", string_map()),
            ("secrets", string_map()),
            (
                "oidcCustomization",
                json!({
                    "type": "object",
                    "properties": {"useDefault": boolean(), "includeClaimKeys": strings()}
                }),
            ),
            ("customProperties", json!({"type": "object"})),
            ("subscribe", boolean()),
            ("protectDefaultBranch", boolean()),
            ("protectEnforceAdmins", boolean()),
            ("requireCodeOwnerReviews", boolean()),
            ("dismissStaleReviews", boolean()),
            ("requiredApprovingReviewCount", json!({"type": "number"})),
            ("requiredStatusCheckContexts", strings()),
            ("requireBranchesToBeUpToDate", boolean()),
            ("requiredConversationResolution", boolean()),
            ("requireLastPushApproval", boolean()),
            ("requiredCommitSigning", boolean()),
            ("requiredLinearHistory", boolean()),
            ("bypassPullRequestAllowances", principals()),
            ("restrictions", principals()),
        ] {
            properties.insert(name.to_owned(), schema);
        }
        json!({"type": "object", "required": ["repoUrl"], "properties": properties})
    }

    fn output_schema(&self) -> Value {
        output_schema()
    }

    fn supports_dry_run(&self) -> bool {
        false
    }

    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Map<String, Value>, ActionError>> {
        Box::pin(run(ctx))
    }
}

/// GitHub refused to create the repository (422), most often because it exists. When it exists and
/// has no branch, it is what an earlier attempt of this step left after creating it and failing
/// before its push (a retried task, a worker that died mid-step): publish into it instead of failing
/// the retry for good. A repository with any branch is someone's work and is never written to.
async fn adopt_empty_repository(
    ctx: &ActionContext<'_>,
    api: &super::github_api::Api,
    owner: &str,
    repo: &str,
    owner_type: &str,
    refusal: &str,
) -> Result<Value, ActionError> {
    let refused = || {
        format!(
            "Failed to create the {owner_type} repository {owner}/{repo}, {refusal} (422 Unprocessable Entity)"
        )
    };
    let branches = match api
        .call(Method::GET, &["repos", owner, repo, "branches"], None)
        .await
    {
        Ok(branches) => branches,
        // It does not exist (or the token cannot see it): the 422 was about something else.
        Err(ApiError::Status(StatusCode::NOT_FOUND, _)) => {
            return Err(ActionError::failed(refused()));
        }
        Err(e) => return Err(e.context(&refused())),
    };
    if branches.as_array().is_none_or(|b| !b.is_empty()) {
        return Err(ActionError::failed(format!(
            "{}; it exists and already has branches, so it is left as it is",
            refused()
        )));
    }
    let existing = api
        .call(Method::GET, &["repos", owner, repo], None)
        .await
        .map_err(|e| e.context(&refused()))?;
    ctx.log(format!(
        "The GitHub repository {owner}/{repo} already exists and is empty (left by an earlier attempt?): publishing into it"
    ));
    Ok(existing)
}

async fn run(ctx: &ActionContext<'_>) -> Result<Map<String, Value>, ActionError> {
    refuse_dry_run(ctx, "publish:github")?;
    let plan = plan(ctx)?;
    let (owner, repo, api) = (plan.owner.as_str(), plan.repo.as_str(), &plan.api);

    let user = api
        .call(Method::GET, &["users", owner], None)
        .await
        .map_err(|e| e.context(&format!("Cannot look up the GitHub owner {owner}")))?;
    let owner_type = user
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("User")
        .to_owned();
    let organization = owner_type == "Organization";
    if !organization {
        // POST /user/repos creates the repository for the token's own user, whoever the owner is:
        // refuse before a repository appears in the wrong account. (Backstage does not check.)
        let me = api
            .call(Method::GET, &["user"], None)
            .await
            .map_err(|e| e.context("Cannot look up the token's GitHub user"))?;
        let login = me.get("login").and_then(Value::as_str).unwrap_or_default();
        if !login.eq_ignore_ascii_case(owner) {
            return Err(ActionError::failed(format!(
                "{owner} is a GitHub user other than the token's ({login}): a token can create repositories only for its own user or in organizations"
            )));
        }
    }

    if let Some(Access::Team(team)) = &plan.access {
        // Backstage goes on after any other answer; the permission call below reports it.
        if let Err(ApiError::Status(StatusCode::NOT_FOUND, _)) = api
            .call(Method::GET, &["orgs", owner, "teams", team], None)
            .await
        {
            return Err(ActionError::failed(format!(
                "Received 'Not Found' from the API; one of org: {owner} or team: {team} was not found within GitHub."
            )));
        }
    }

    let mut body = plan.create_fields.clone();
    let path: Vec<&str> = if organization {
        body.extend(plan.org_only_fields.clone());
        vec!["orgs", owner, "repos"]
    } else {
        vec!["user", "repos"]
    };
    let created = match api
        .call(Method::POST, &path, Some(Value::Object(body)))
        .await
    {
        Ok(created) => {
            ctx.log(format!("Created the GitHub repository {owner}/{repo}"));
            created
        }
        Err(ApiError::Status(StatusCode::UNPROCESSABLE_ENTITY, message)) => {
            adopt_empty_repository(ctx, api, owner, repo, &owner_type, &message).await?
        }
        Err(e) => {
            return Err(e.context(&format!(
                "Failed to create the {owner_type} repository {owner}/{repo}"
            )));
        }
    };
    let login = created
        .pointer("/owner/login")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !login.eq_ignore_ascii_case(owner) {
        return Err(ActionError::failed(format!(
            "GitHub created the repository for {login:?}, not for {owner}"
        )));
    }
    let html_url = created
        .get("html_url")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ActionError::failed("GitHub's answer to the repository creation has no html_url")
        })?
        .trim_end_matches('/')
        .to_owned();
    if let Some(clone_url) = created.get("clone_url").and_then(Value::as_str)
        && clone_url != plan.remote
    {
        ctx.log(format!(
            "GitHub gives the clone URL {clone_url}; pushing to {} as scaffolder.hosts configures",
            plan.remote
        ));
    }

    match &plan.access {
        Some(Access::Team(team)) => {
            api.call(
                Method::PUT,
                &["orgs", owner, "teams", team, "repos", owner, repo],
                Some(json!({"permission": "admin"})),
            )
            .await
            .map_err(|e| e.context(&format!("Cannot give the team {owner}/{team} admin access")))?;
        }
        Some(Access::User(user)) => {
            api.call(
                Method::PUT,
                &["repos", owner, repo, "collaborators", user],
                Some(json!({"permission": "admin"})),
            )
            .await
            .map_err(|e| e.context(&format!("Cannot give {user} admin access")))?;
        }
        None => {}
    }

    for collaborator in &plan.collaborators {
        let (result, name, access) = match collaborator {
            Collaborator::User { name, access } => (
                api.call(
                    Method::PUT,
                    &["repos", owner, repo, "collaborators", name],
                    Some(json!({"permission": access})),
                )
                .await,
                name,
                access,
            ),
            Collaborator::Team { slug, access } => (
                api.call(
                    Method::PUT,
                    &["orgs", owner, "teams", slug, "repos", owner, repo],
                    Some(json!({"permission": access})),
                )
                .await,
                slug,
                access,
            ),
        };
        if let Err(e) = result {
            ctx.log(format!("Skipping {access} access for {name}, {e}"));
        }
    }

    if let Some(topics) = &plan.topics
        && let Err(e) = api
            .call(
                Method::PUT,
                &["repos", owner, repo, "topics"],
                Some(json!({"names": topics})),
            )
            .await
    {
        ctx.log(format!("Skipping topics {}, {e}", topics.join(" ")));
    }

    for (name, value) in &plan.variables {
        api.call(
            Method::POST,
            &["repos", owner, repo, "actions", "variables"],
            Some(json!({"name": name, "value": value})),
        )
        .await
        .map_err(|e| e.context(&format!("Cannot create the repository variable {name}")))?;
    }
    if let Some(Value::Object(secrets)) = ctx.input.get("secrets")
        && !secrets.is_empty()
    {
        let names: Vec<&str> = secrets.keys().map(String::as_str).collect();
        ctx.log(format!(
            "Skipping secrets {}: Atrium cannot encrypt GitHub Actions secrets yet",
            names.join(" ")
        ));
    }
    if let Some(oidc) = &plan.oidc {
        api.call(
            Method::PUT,
            &[
                "repos",
                owner,
                repo,
                "actions",
                "oidc",
                "customization",
                "sub",
            ],
            Some(oidc.clone()),
        )
        .await
        .map_err(|e| e.context("Cannot set the OIDC subject claim template"))?;
    }
    if plan.subscribe {
        api.call(
            Method::PUT,
            &["repos", owner, repo, "subscription"],
            Some(json!({"subscribed": true, "ignored": false})),
        )
        .await
        .map_err(|e| e.context("Cannot subscribe to the repository"))?;
    }

    let commit = git::commit_and_push(
        plan.remote.clone(),
        plan.spec.clone(),
        plan.credentials.clone(),
        ctx.log.clone(),
        Create::Never,
    )
    .await?;

    let branch = plan.spec.branch.as_str();
    if let Some(protection) = &plan.protection {
        let protected = async {
            api.call(
                Method::PUT,
                &["repos", owner, repo, "branches", branch, "protection"],
                Some(protection.clone()),
            )
            .await?;
            if plan.required_commit_signing {
                api.call(
                    Method::POST,
                    &[
                        "repos",
                        owner,
                        repo,
                        "branches",
                        branch,
                        "protection",
                        "required_signatures",
                    ],
                    None,
                )
                .await?;
            }
            Ok::<(), ApiError>(())
        };
        match protected.await {
            Ok(()) => ctx.log(format!("Protected the branch {branch}")),
            Err(e)
                if e.to_string().contains(
                    "Upgrade to GitHub Pro or make this repository public to enable this feature",
                ) =>
            {
                ctx.log(
                    "Branch protection was not enabled as it requires GitHub Pro for private repositories",
                );
            }
            Err(e) => ctx.log(format!(
                "Skipping: default branch protection on '{repo}', {e}"
            )),
        }
    }

    Ok(output(
        &plan.remote,
        format!("{html_url}/blob/{branch}"),
        commit,
    ))
}
