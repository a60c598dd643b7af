//! `publish:git` and `publish:github`: commit the task's workspace (or a directory in it) as the first
//! commit of a new repository and push it.
//!
//! Both follow Backstage's publish actions (`initRepoAndPush` in `plugins/scaffolder-node`, and
//! `publish:github` in `plugins/scaffolder-backend-module-github`): the same inputs, defaults and
//! outputs, where Atrium keeps them. `publish:git` is Atrium's own member of the family (like
//! `publish:gitea`, for any git remote): the repository is `scaffolder.hosts[].remote` with the
//! `repoUrl`'s names filled in; a missing `file://` repository is created, any other must exist.
//!
//! How a publish stays inside its guardrails:
//! - the `repoUrl` is checked before anything else happens (`repo_url`): host allowlist, strict names,
//!   remote from configuration only; then every other input (branch, author, `sourcePath`);
//! - the git directory is a fresh bare repository in the system's temporary directory, never the
//!   workspace's `.git`: a skeleton cannot plant git configuration or hooks, and a `.git` entry in the
//!   workspace is skipped (as git itself refuses it in a tree). Files are read into blobs directly, so
//!   no checkout filter, attribute or ignore setting from any git configuration applies; only the
//!   workspace's own `.gitignore` files are honoured, as Backstage's `git add .` honours them;
//! - libgit2 never runs hooks, and the scratch repository's configuration is replaced by an empty one
//!   before the remote is named, so no global or system `url.*.insteadOf`, proxy or header setting
//!   changes where the push goes;
//! - the token is given to libgit2 through the credentials callback (never in a URL, never on disk)
//!   and is removed from any message the remote sends back;
//! - a branch that already exists on the remote is never touched: the refs the remote advertises are
//!   checked on the same connection the push then uses, and the push is not forced.
//!
//! `repoContentsUrl`: `publish:git` outputs `<remote>#<branch>`, a catalog `git` location target
//! (`<remote>#<branch>:<path>` is the `git-file` target of one file in it); `publish:github` outputs
//! Backstage's `<html_url>/blob/<branch>`. `repo_url::contents_location` turns either, with a
//! `catalogInfoPath`, into the catalog locations `catalog:register` needs.

#[path = "publish_git.rs"]
mod git;
#[path = "publish_github.rs"]
mod github;
#[path = "publish_github_api.rs"]
mod github_api;
#[path = "publish_github_plan.rs"]
mod github_plan;

use std::path::{Component, Path, PathBuf};

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::repo_url::{RepoUrl, git_contents_url, host_token, token_user};
use super::{Action, ActionContext, ActionError};
use crate::scaffolder::workspace::{PathError, Workspace};

pub use git::Credentials;
pub use github::{PublishGithub, github_owners};

/// Backstage's default commit message for a new repository.
pub const DEFAULT_COMMIT_MESSAGE: &str = "initial commit";
/// Backstage's default author (`initRepoAndPush`).
pub const DEFAULT_AUTHOR_NAME: &str = "Scaffolder";
pub const DEFAULT_AUTHOR_EMAIL: &str = "scaffolder@backstage.io";
/// `publish:git`'s default branch (`publish:gitea`'s; `publish:github` keeps Backstage's `master`).
pub const DEFAULT_GIT_BRANCH: &str = "main";

/// The publish actions, for the action registry.
pub fn actions() -> Vec<Box<dyn Action>> {
    vec![Box::new(PublishGit), Box::new(PublishGithub)]
}

/// What a publish commits, read and checked from the step's input before anything is touched.
#[derive(Debug, Clone)]
pub struct CommitSpec {
    /// The directory whose files become the repository's root (canonical, inside the workspace).
    pub source: PathBuf,
    pub branch: String,
    pub message: String,
    pub author_name: String,
    pub author_email: String,
}

impl CommitSpec {
    /// Reads `sourcePath`, `defaultBranch`, `gitCommitMessage`, `gitAuthorName` and `gitAuthorEmail`;
    /// empty strings count as absent, as in Backstage.
    pub fn from_input(ctx: &ActionContext<'_>, default_branch: &str) -> Result<Self, ActionError> {
        let branch = text_input(ctx, "defaultBranch")
            .unwrap_or(default_branch)
            .to_owned();
        check_branch(&branch)?;
        let message = text_input(ctx, "gitCommitMessage")
            .unwrap_or(DEFAULT_COMMIT_MESSAGE)
            .to_owned();
        if message.contains('\0') {
            return Err(ActionError::input("gitCommitMessage must not contain NUL"));
        }
        let author_name = text_input(ctx, "gitAuthorName")
            .unwrap_or(DEFAULT_AUTHOR_NAME)
            .to_owned();
        check_identity("gitAuthorName", &author_name)?;
        let author_email = text_input(ctx, "gitAuthorEmail")
            .unwrap_or(DEFAULT_AUTHOR_EMAIL)
            .to_owned();
        check_identity("gitAuthorEmail", &author_email)?;
        let source = source_dir(ctx.workspace, text_input(ctx, "sourcePath"))?;
        Ok(Self {
            source,
            branch,
            message,
            author_name,
            author_email,
        })
    }
}

/// A string input; `None` when absent, not a string, or empty.
fn text_input<'a>(ctx: &'a ActionContext<'_>, key: &str) -> Option<&'a str> {
    ctx.str_input(key).filter(|s| !s.is_empty())
}

fn required_text<'a>(ctx: &'a ActionContext<'_>, key: &str) -> Result<&'a str, ActionError> {
    text_input(ctx, key).ok_or_else(|| ActionError::input(format!("{key} is required")))
}

/// A branch name git accepts, that cannot be read as an option, and that catalog targets can name
/// (`HEAD` there means "the default branch").
fn check_branch(branch: &str) -> Result<(), ActionError> {
    let valid = branch.len() <= 255
        && !branch.starts_with('-')
        && branch != "HEAD"
        && !branch.chars().any(char::is_control)
        && git2::Reference::is_valid_name(&format!("refs/heads/{branch}"));
    if valid {
        Ok(())
    } else {
        Err(ActionError::input(format!(
            "defaultBranch {branch:?} is not a valid branch name"
        )))
    }
}

/// Author names and emails end up in the commit header between fixed delimiters: a line break or an
/// angle bracket would forge header lines or another identity.
fn check_identity(field: &str, value: &str) -> Result<(), ActionError> {
    if value.len() > 256
        || value
            .chars()
            .any(|c| c.is_control() || c == '<' || c == '>')
    {
        return Err(ActionError::input(format!(
            "{field} {value:?} must not contain line breaks, control characters, '<' or '>' (at most 256 bytes)"
        )));
    }
    Ok(())
}

/// The directory to publish: the workspace, or `sourcePath` inside it. Unlike Backstage, which drops
/// leading `../`, a path that leaves the workspace is refused, also through a symbolic link.
fn source_dir(workspace: &Workspace, source_path: Option<&str>) -> Result<PathBuf, ActionError> {
    let root = workspace.root();
    let Some(relative) = source_path else {
        return Ok(root.to_path_buf());
    };
    let outside = |reason: &'static str| {
        ActionError::Path(PathError::Outside {
            path: relative.to_owned(),
            reason,
        })
    };
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                parts
                    .pop()
                    .ok_or_else(|| outside("leaves the workspace (sourcePath)"))?;
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(outside(
                    "is absolute; sourcePath is relative to the workspace",
                ));
            }
        }
    }
    let joined: PathBuf = parts.iter().fold(root.to_path_buf(), |p, c| p.join(c));
    let real = std::fs::canonicalize(&joined).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            return outside("does not exist in the workspace (sourcePath)");
        }
        ActionError::Path(PathError::Io {
            path: relative.to_owned(),
            source,
        })
    })?;
    if !real.starts_with(root) {
        return Err(outside(
            "leads outside the workspace through a symbolic link (sourcePath)",
        ));
    }
    if !real.is_dir() {
        return Err(outside("is not a directory (sourcePath)"));
    }
    Ok(real)
}

/// The runner only reports these actions in a dry run; should one be called anyway, it does nothing.
fn refuse_dry_run(ctx: &ActionContext<'_>, id: &str) -> Result<(), ActionError> {
    if ctx.dry_run {
        return Err(ActionError::failed(format!(
            "{id} pushes to a remote and does not run in a dry run"
        )));
    }
    Ok(())
}

fn output(remote: &str, contents: String, commit: String) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("remoteUrl".into(), Value::String(remote.to_owned()));
    out.insert("repoContentsUrl".into(), Value::String(contents));
    out.insert("commitHash".into(), Value::String(commit));
    out
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "remoteUrl": {"title": "A URL to the repository with the provider", "type": "string"},
            "repoContentsUrl": {"title": "A URL to the root of the repository", "type": "string"},
            "commitHash": {"title": "The git commit hash of the initial commit", "type": "string"}
        }
    })
}

/// The inputs both actions share, as JSON Schema properties.
fn commit_properties(default_branch: &str) -> Map<String, Value> {
    let properties = json!({
        "repoUrl": {
            "title": "Repository Location",
            "type": "string",
            "description": "`host?owner=o&repo=r`: the host must be in scaffolder.allowed_hosts and scaffolder.hosts"
        },
        "description": {"title": "Repository Description", "type": "string"},
        "defaultBranch": {
            "title": "Default Branch",
            "type": "string",
            "description": format!("The branch to create. The default value is '{default_branch}'")
        },
        "sourcePath": {
            "title": "Source Path",
            "type": "string",
            "description": "Path within the workspace that will be used as the repository root. If omitted, the entire workspace will be published as the repository."
        },
        "gitCommitMessage": {
            "title": "Git Commit Message",
            "type": "string",
            "description": format!("The commit message. The default value is '{DEFAULT_COMMIT_MESSAGE}'")
        },
        "gitAuthorName": {
            "title": "Default Author Name",
            "type": "string",
            "description": format!("The author name of the commit. The default value is '{DEFAULT_AUTHOR_NAME}'")
        },
        "gitAuthorEmail": {
            "title": "Default Author Email",
            "type": "string",
            "description": format!("The author email of the commit. The default value is '{DEFAULT_AUTHOR_EMAIL}'")
        }
    });
    match properties {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `publish:git`: the workspace as the first commit of a branch in a git remote named by
/// `scaffolder.hosts`.
pub struct PublishGit;

impl Action for PublishGit {
    fn id(&self) -> &'static str {
        "publish:git"
    }

    fn description(&self) -> &'static str {
        "Initializes a git repository of the contents of the workspace and pushes it as a new branch to a git remote configured in scaffolder.hosts (file://, https or ssh)."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["repoUrl"],
            "properties": commit_properties(DEFAULT_GIT_BRANCH)
        })
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
        Box::pin(async move {
            refuse_dry_run(ctx, self.id())?;
            let repo_url = RepoUrl::parse(required_text(ctx, "repoUrl")?)?;
            let host = repo_url.host_config(&ctx.services.config.scaffolder)?;
            let remote = repo_url.remote(host)?;
            let spec = CommitSpec::from_input(ctx, DEFAULT_GIT_BRANCH)?;
            if text_input(ctx, "description").is_some() {
                ctx.log("A plain git remote keeps no description; description is ignored");
            }
            let credentials = Credentials {
                username: token_user(host).to_owned(),
                token: host_token(host)?,
                ssh_key: host.ssh_key.clone(),
            };
            let commit = git::commit_and_push(
                remote.clone(),
                spec.clone(),
                credentials,
                ctx.log.clone(),
                git::Create::LocalIfMissing,
            )
            .await?;
            Ok(output(
                &remote,
                git_contents_url(&remote, &spec.branch),
                commit,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_and_identities_are_checked() {
        for ok in ["main", "master", "release/1.x", "feature-a"] {
            assert!(check_branch(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-f", "HEAD", "a..b", "a b", "a\nb", "a~1", "a:b", "/a", "a/", "a.lock", "a@{1}",
        ] {
            assert!(check_branch(bad).is_err(), "{bad:?}");
        }
        assert!(check_identity("gitAuthorName", "Jane Doe (bot)").is_ok());
        for bad in ["a\nb", "a\rb", "a<b", "a>b", "a\0b"] {
            assert!(check_identity("gitAuthorName", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn schemas_are_valid_json_schema() {
        for action in actions() {
            jsonschema::validator_for(&action.input_schema())
                .unwrap_or_else(|e| panic!("{}: {e}", action.id()));
            jsonschema::validator_for(&action.output_schema())
                .unwrap_or_else(|e| panic!("{}: {e}", action.id()));
            assert!(!action.supports_dry_run());
        }
        let ids: Vec<&str> = actions().iter().map(|a| a.id()).collect();
        assert_eq!(ids, ["publish:git", "publish:github"]);
    }

    #[test]
    fn source_paths_stay_inside_the_workspace() {
        let dir = std::env::temp_dir().join(format!("atrium-source-{}", uuid::Uuid::new_v4()));
        let workspace = Workspace::create(dir.join("ws")).expect("workspace");
        std::fs::create_dir_all(workspace.root().join("app/sub")).expect("mkdir");
        std::fs::create_dir_all(dir.join("elsewhere")).expect("mkdir");
        std::os::unix::fs::symlink(dir.join("elsewhere"), workspace.root().join("link"))
            .expect("symlink");
        let root = workspace.root().to_path_buf();
        assert_eq!(source_dir(&workspace, None).expect("root"), root);
        assert_eq!(
            source_dir(&workspace, Some("./app/sub/..")).expect("app"),
            root.join("app")
        );
        for bad in ["../ws", "app/../../x", "/etc", "link", "missing"] {
            assert!(source_dir(&workspace, Some(bad)).is_err(), "{bad}");
        }
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
