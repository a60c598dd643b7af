//! `publish:github`: Backstage's action of that name (`plugins/scaffolder-backend-module-github`,
//! `github.ts` and `helpers.ts`) against GitHub's REST API, then the same push as `publish:git`.
//!
//! The calls, in Backstage's order: `GET /users/{owner}` (its `type` decides between
//! `POST /orgs/{owner}/repos` and `POST /user/repos`), `GET /orgs/{org}/teams/{team}` when `access`
//! names a team, the repository creation, `access` as an admin team or collaborator, `collaborators`
//! and `topics` (failures there are warnings, as in Backstage), `repoVariables`, `oidcCustomization`,
//! `subscribe`; the push; then branch protection of the default branch (a failure is a warning).
//! `secrets` need libsodium's sealed boxes, which Atrium does not have: they are reported and skipped.
//!
//! The push goes to the host's configured `remote` pattern, not to the `clone_url` GitHub answers:
//! the token is only ever sent where the configuration says (the two agree on github.com; a
//! difference is logged). `remoteUrl` is that remote; `repoContentsUrl` is Backstage's
//! `<html_url>/blob/<branch>`.

use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::git::{self, Create, Credentials};
use super::{CommitSpec, commit_properties, output, output_schema, required_text, text_input};
use crate::scaffolder::actions::repo_url::{
    RepoUrl, RepoUrlError, Secret, check_github_owner, check_name, host_token, token_user,
};
use crate::scaffolder::actions::{Action, ActionContext, ActionError};

/// Backstage's default branch for `publish:github`.
pub const DEFAULT_GITHUB_BRANCH: &str = "master";

/// How long one GitHub API call may take.
const API_TIMEOUT: Duration = Duration::from_secs(30);

/// `publish:github`.
pub struct PublishGithub;

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

/// `access`: an admin team of the owning organization, or an admin collaborator.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Access {
    Team(String),
    User(String),
}

/// One `collaborators` entry, its name already reduced to a plain name as Backstage's
/// `entityRefToName` does (`user:default/jane` → `jane`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Collaborator {
    User { name: String, access: String },
    Team { slug: String, access: String },
}

/// Everything the action will do, checked before the first request.
struct Plan {
    owner: String,
    repo: String,
    spec: CommitSpec,
    remote: String,
    api: Api,
    credentials: Credentials,
    create_fields: Map<String, Value>,
    org_only_fields: Map<String, Value>,
    access: Option<Access>,
    collaborators: Vec<Collaborator>,
    topics: Option<Vec<String>>,
    variables: Vec<(String, String)>,
    oidc: Option<Value>,
    subscribe: bool,
    protection: Option<Value>,
    required_commit_signing: bool,
}

async fn run(ctx: &ActionContext<'_>) -> Result<Map<String, Value>, ActionError> {
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
    let created = api
        .call(Method::POST, &path, Some(Value::Object(body)))
        .await
        .map_err(|e| {
            e.context(&format!(
                "Failed to create the {owner_type} repository {owner}/{repo}"
            ))
        })?;
    let login = created
        .pointer("/owner/login")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !login.eq_ignore_ascii_case(owner) {
        return Err(ActionError::failed(format!(
            "GitHub created the repository for {login:?}, not {owner}: POST /user/repos creates repositories of the token's own user"
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
    ctx.log(format!("Created the GitHub repository {owner}/{repo}"));
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

/// Reads and checks every input; nothing has been sent anywhere yet.
fn plan(ctx: &ActionContext<'_>) -> Result<Plan, ActionError> {
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

/// Why a GitHub API call failed. The text never holds the token.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    /// GitHub answered with an error status; the text is its message.
    #[error("{1}")]
    Status(StatusCode, String),
    /// No answer (connection, time-out) or an unreadable one.
    #[error("{0}")]
    Transport(String),
}

impl ApiError {
    fn context(self, doing: &str) -> ActionError {
        match self {
            ApiError::Status(StatusCode::UNAUTHORIZED, message) => ActionError::failed(format!(
                "{doing}, GitHub refused the token (401 {message}); check the token input or scaffolder.hosts[].token_env/token_file"
            )),
            ApiError::Status(status, message) => {
                ActionError::failed(format!("{doing}, {message} ({status})"))
            }
            ApiError::Transport(message) => ActionError::failed(format!("{doing}, {message}")),
        }
    }
}

/// A small GitHub REST client: JSON in, JSON out, the token as a bearer token.
struct Api {
    client: reqwest::Client,
    base: url::Url,
    token: Secret,
    username: String,
}

impl Api {
    fn new(base: &str, token: Secret, username: String) -> Result<Self, ActionError> {
        let base = url::Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && !u.cannot_be_a_base())
            .ok_or_else(|| {
                ActionError::input(format!(
                    "scaffolder.hosts: github_api_url {base:?} is not an http(s) URL"
                ))
            })?;
        let client = crate::tls::http_client()
            .timeout(API_TIMEOUT)
            // A redirect could take the token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ActionError::failed(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            client,
            base,
            token,
            username,
        })
    }

    /// `base` plus the path segments, each percent-encoded: no name can add a segment or a query.
    fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Value>,
    ) -> Result<Value, ApiError> {
        let url = self.url(segments);
        let shown = format!("{method} /{}", segments.join("/"));
        let mut request = self
            .client
            .request(method, url)
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            ApiError::Transport(self.redact(&format!("{shown}: {}", e.without_url())))
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            ApiError::Transport(self.redact(&format!("{shown}: {}", e.without_url())))
        })?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        Err(ApiError::Status(
            status,
            self.redact(&format!("{shown}: {}", error_message(&json, &text))),
        ))
    }

    fn redact(&self, text: &str) -> String {
        self.token.redact(text, &self.username)
    }
}

/// GitHub's error text: `message`, then the `errors[]` details.
fn error_message(json: &Value, text: &str) -> String {
    let Some(message) = json.get("message").and_then(Value::as_str) else {
        let text: String = text.chars().take(200).collect();
        return if text.trim().is_empty() {
            "no message".into()
        } else {
            text
        };
    };
    let details: Vec<String> = json
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| match e {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o
                .get("message")
                .or_else(|| o.get("code"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        })
        .collect();
    if details.is_empty() {
        message.to_owned()
    } else {
        format!("{message} ({})", details.join("; "))
    }
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

    #[test]
    fn github_errors_read_well() {
        let json = json!({"message": "Repository creation failed.", "errors": [{"resource": "Repository", "code": "custom", "field": "name", "message": "name already exists on this account"}]});
        assert_eq!(
            error_message(&json, ""),
            "Repository creation failed. (name already exists on this account)"
        );
        assert_eq!(error_message(&Value::Null, "oops"), "oops");
    }
}
