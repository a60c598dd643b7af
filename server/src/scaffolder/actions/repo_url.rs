//! Repository URLs as templates write them, and the git remotes they lead to.
//!
//! A template names the repository it publishes to in Backstage's `repoUrl` form,
//! `host?owner=o&repo=r` (forges other than GitHub also use `organization`, `workspace` and
//! `project`); the `RepoUrlPicker` field produces it. Backstage reads it by prefixing `https://` and
//! parsing the result as a URL (`parseRepoUrl` in `plugins/scaffolder-node/src/actions/util.ts`); so
//! does [`RepoUrl::parse`], with the same error messages in spirit.
//!
//! Everything a user controls here ends up in a git remote, a file path (`file://` remotes) or a
//! REST path, so it is checked before anything is used:
//! - the host must be listed in `scaffolder.allowed_hosts` (exact match, case-insensitive) and
//!   described in `scaffolder.hosts`;
//! - every parameter follows a strict grammar: letters, digits, `-`, `_` and `.`, not starting with
//!   `-`, not `.` or `..`, at most 100 characters. Nothing like `--upload-pack=x`, a space, a slash, a
//!   newline or a decoded `%2e%2e` gets through;
//! - the remote is made from the host's `remote` pattern and checked like any other git remote
//!   (`crate::git::parse_remote`: no password in it, no leading `-`).
//!
//! Tokens are read when a publish runs (from `token_file` or `token_env`) and only ever held in
//! memory, as a [`Secret`] whose `Debug` shows nothing.

use std::fmt;

use crate::config::{PublishHostConfig, ScaffolderConfig};
use crate::git::{GitRepo, parse_remote};

use super::ActionError;

/// The longest owner, repository, organization, workspace or project name accepted (GitHub's limit
/// for repository names).
pub const MAX_NAME_CHARS: usize = 100;

/// The user name sent with a token over https when the host names none: what GitHub expects (and
/// what Backstage sends for GitHub).
pub const DEFAULT_TOKEN_USER: &str = "x-access-token";

/// A repository URL that was refused, and why. Shown to the user as an input error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RepoUrlError(pub String);

impl From<RepoUrlError> for ActionError {
    fn from(e: RepoUrlError) -> Self {
        ActionError::Input(e.0)
    }
}

/// The parameters `repoUrl` may carry, in the order placeholders are documented.
const PARAMS: [&str; 5] = ["owner", "repo", "organization", "workspace", "project"];

/// A parsed `repoUrl`. Every name in it has passed [`check_name`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoUrl {
    /// As the URL parser gives it: lower case, with `:port` when one other than 443 is named.
    pub host: String,
    pub owner: Option<String>,
    pub repo: String,
    pub organization: Option<String>,
    pub workspace: Option<String>,
    pub project: Option<String>,
    /// The text the template gave, for error messages.
    raw: String,
}

impl RepoUrl {
    /// Parses `host?owner=o&repo=r` as Backstage's `parseRepoUrl` does: `https://` is put in front and
    /// the result read as a URL; parameter values are percent-decoded and trimmed of `/`. `repo` is
    /// required; which other parameters are required depends on the host's remote pattern
    /// ([`RepoUrl::remote`]). Stricter than Backstage: control characters, credentials before the
    /// host and parameters given twice are refused, and every value must pass [`check_name`].
    pub fn parse(raw: &str) -> Result<Self, RepoUrlError> {
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            // The URL parser would silently drop tabs and newlines; refuse them instead.
            return Err(RepoUrlError(format!(
                "Invalid repo URL passed to publisher, got {raw:?}: it contains whitespace or control characters"
            )));
        }
        let parsed = url::Url::parse(&format!("https://{raw}")).map_err(|e| {
            RepoUrlError(format!(
                "Invalid repo URL passed to publisher, got {raw}, {e}"
            ))
        })?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(RepoUrlError(
                "Invalid repo URL passed to publisher: it must not carry credentials before the host"
                    .into(),
            ));
        }
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(""), _) | (None, _) => None,
            (Some(h), Some(port)) => Some(format!("{h}:{port}")),
            (Some(h), None) => Some(h.to_owned()),
        }
        .ok_or_else(|| {
            RepoUrlError(format!(
                "Invalid repo URL passed to publisher, got {raw}, it names no host"
            ))
        })?;

        let mut values: [Option<String>; 5] = Default::default();
        for (key, value) in parsed.query_pairs() {
            let Some(index) = PARAMS.iter().position(|p| *p == key) else {
                continue;
            };
            if values[index].is_some() {
                return Err(RepoUrlError(format!(
                    "Invalid repo URL passed to publisher: {raw}, {key} is given more than once"
                )));
            }
            let value = value.trim_matches('/');
            if value.is_empty() {
                continue;
            }
            check_name(key.as_ref(), value)?;
            values[index] = Some(value.to_owned());
        }
        let [owner, repo, organization, workspace, project] = values;
        let repo = repo.ok_or_else(|| missing(raw, "repo"))?;
        Ok(Self {
            host,
            owner,
            repo,
            organization,
            workspace,
            project,
            raw: raw.to_owned(),
        })
    }

    /// The value of a parameter by name (`owner`, `repo`, ...).
    pub fn param(&self, name: &str) -> Option<&str> {
        match name {
            "owner" => self.owner.as_deref(),
            "repo" => Some(&self.repo),
            "organization" => self.organization.as_deref(),
            "workspace" => self.workspace.as_deref(),
            "project" => self.project.as_deref(),
            _ => None,
        }
    }

    /// The owner, which GitHub (and most remote patterns) need.
    pub fn require_owner(&self) -> Result<&str, RepoUrlError> {
        self.owner
            .as_deref()
            .ok_or_else(|| missing(&self.raw, "owner"))
    }

    /// Checks the host against `scaffolder.allowed_hosts` and finds its `scaffolder.hosts` entry.
    pub fn host_config<'c>(
        &self,
        config: &'c ScaffolderConfig,
    ) -> Result<&'c PublishHostConfig, RepoUrlError> {
        if !config
            .allowed_hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(&self.host))
        {
            let allowed = if config.allowed_hosts.is_empty() {
                "none are".to_owned()
            } else {
                format!("allowed are {}", config.allowed_hosts.join(", "))
            };
            return Err(RepoUrlError(format!(
                "Repository host {} is not allowed: {allowed} (scaffolder.allowed_hosts)",
                self.host
            )));
        }
        config
            .hosts
            .iter()
            .find(|h| h.host.eq_ignore_ascii_case(&self.host))
            .ok_or_else(|| {
                RepoUrlError(format!(
                    "No matching publish configuration for host {}, please check scaffolder.hosts",
                    self.host
                ))
            })
    }

    /// The git remote for this repository: the host's `remote` pattern with its `{owner}`, `{repo}`,
    /// `{organization}`, `{workspace}` and `{project}` placeholders filled in. A placeholder whose
    /// parameter the URL lacks is a missing parameter, as in Backstage.
    pub fn remote(&self, host: &PublishHostConfig) -> Result<String, RepoUrlError> {
        let mut remote = host.remote.clone();
        for name in PARAMS {
            let placeholder = format!("{{{name}}}");
            if remote.contains(&placeholder) {
                let value = self.param(name).ok_or_else(|| missing(&self.raw, name))?;
                remote = remote.replace(&placeholder, value);
            }
        }
        if remote.contains('{') || remote.contains('}') {
            return Err(RepoUrlError(format!(
                "scaffolder.hosts: the remote pattern {:?} of host {} has a placeholder other than {{owner}}, {{repo}}, {{organization}}, {{workspace}} or {{project}}",
                host.remote, host.host
            )));
        }
        parse_remote(&remote).map_err(|e| {
            RepoUrlError(format!(
                "scaffolder.hosts: the remote pattern of host {} gives an unusable remote: {e}",
                host.host
            ))
        })?;
        Ok(remote)
    }
}

impl fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn missing(raw: &str, param: &str) -> RepoUrlError {
    RepoUrlError(format!(
        "Invalid repo URL passed to publisher: {raw}, missing {param}"
    ))
}

/// The grammar of every name that reaches a remote, a path or a REST URL: GitHub's repository name
/// characters (`[A-Za-z0-9_.-]`), not starting with `-` (git would read an option), not `.` or `..`
/// (a path would leave its directory), 1 to [`MAX_NAME_CHARS`] characters.
pub fn check_name(what: &str, value: &str) -> Result<(), RepoUrlError> {
    let valid = !value.is_empty()
        && value.len() <= MAX_NAME_CHARS
        && !value.starts_with('-')
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(RepoUrlError(format!(
            "Invalid {what} {value:?}: use letters, digits, '-', '_' and '.', not starting with '-', not '.' or '..', at most {MAX_NAME_CHARS} characters"
        )))
    }
}

/// GitHub's rule for user and organization names: letters, digits and single hyphens, not at either
/// end, at most 39 characters.
pub fn check_github_owner(owner: &str) -> Result<(), RepoUrlError> {
    let valid = !owner.is_empty()
        && owner.len() <= 39
        && !owner.starts_with('-')
        && !owner.ends_with('-')
        && !owner.contains("--")
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(RepoUrlError(format!(
            "Invalid repository owner {owner:?} for GitHub: use letters, digits and single hyphens, not at either end, at most 39 characters"
        )))
    }
}

/// A token, held in memory only. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The token itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the token (plain, or inside a Basic authorization value for
    /// `username`) replaced by `****`: for error messages and logs built from what a server said.
    pub fn redact(&self, text: &str, username: &str) -> String {
        use base64::Engine;
        if self.0.is_empty() {
            return text.to_owned();
        }
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", self.0));
        text.replace(&basic, "****").replace(&self.0, "****")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// The token of a publish host: `token_file` (read now, surrounding whitespace trimmed), else the
/// environment variable `token_env` (read now), else none.
pub fn host_token(host: &PublishHostConfig) -> Result<Option<Secret>, RepoUrlError> {
    host_token_with(host, |name| std::env::var(name).ok())
}

/// [`host_token`] with the environment given as a function (tests).
pub fn host_token_with(
    host: &PublishHostConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, RepoUrlError> {
    if let Some(path) = &host.token_file {
        let token = std::fs::read_to_string(path).map_err(|e| {
            RepoUrlError(format!(
                "the token for host {} is read from {} (scaffolder.hosts[].token_file), which cannot be read: {}",
                host.host,
                path.display(),
                e.kind()
            ))
        })?;
        return Ok(Some(Secret::new(token.trim())));
    }
    match &host.token_env {
        Some(name) => match env(name) {
            Some(token) if !token.trim().is_empty() => Ok(Some(Secret::new(token.trim()))),
            _ => Err(RepoUrlError(format!(
                "the token for host {} is read from the environment variable {name} (scaffolder.hosts[].token_env), which is not set or empty",
                host.host
            ))),
        },
        None => Ok(None),
    }
}

/// The user name sent with the host's token over https.
pub fn token_user(host: &PublishHostConfig) -> &str {
    host.username.as_deref().unwrap_or(DEFAULT_TOKEN_USER)
}

/// The `repoContentsUrl` that `publish:git` outputs: `<remote>#<branch>`, which is exactly a catalog
/// `git` location target (registrable through `POST /api/catalog/locations`), and which with
/// `:<path>` appended names one file as a `git-file` target.
pub fn git_contents_url(remote: &str, branch: &str) -> String {
    format!("{remote}#{branch}")
}

/// Where the catalog reads what a publish action pushed: the repository as a `git` location target,
/// and one file in it as a `git-file` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentsLocation {
    /// `<remote>#<branch>`: a `git` location target.
    pub repository: String,
    /// `<remote>#<branch>:<path>`: a `git-file` location target.
    pub file: String,
}

/// Maps a publish action's `repoContentsUrl` and a `catalogInfoPath` (Backstage's default is
/// `/catalog-info.yaml`) to catalog locations, for `catalog:register`. Understands both forms the
/// publish actions output:
/// - `<remote>#<branch>` (`publish:git`);
/// - `https://<host>/<owner>/<repo>/blob/<branch>` (`publish:github`, Backstage's form), for a host in
///   `scaffolder.hosts` that has a `github_api_url`: the remote is the host's pattern.
///
/// `None` when the URL is neither, or the path leaves the repository.
pub fn contents_location(
    repo_contents_url: &str,
    catalog_info_path: &str,
    config: &ScaffolderConfig,
) -> Option<ContentsLocation> {
    let repo = match GitRepo::parse(repo_contents_url) {
        Ok(repo) if repo.branch.is_some() => repo,
        _ => github_blob_repo(repo_contents_url, config)?,
    };
    let path = normalize_path(catalog_info_path)?;
    let repository = repo.target_string();
    let file = format!("{repository}:{path}");
    Some(ContentsLocation { repository, file })
}

fn github_blob_repo(url: &str, config: &ScaffolderConfig) -> Option<GitRepo> {
    let parsed = url::Url::parse(url).ok()?;
    let host = match parsed.port() {
        Some(port) => format!("{}:{port}", parsed.host_str()?),
        None => parsed.host_str()?.to_owned(),
    };
    let path = parsed.path().trim_start_matches('/');
    let mut parts = path.splitn(4, '/');
    let (owner, repo, blob, branch) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if blob != "blob" || branch.is_empty() {
        return None;
    }
    let repo_url = RepoUrl::parse(&format!("{host}?owner={owner}&repo={repo}")).ok()?;
    let host_config = config
        .hosts
        .iter()
        .find(|h| h.host.eq_ignore_ascii_case(&repo_url.host) && h.github_api_url.is_some())?;
    let remote = repo_url.remote(host_config).ok()?;
    GitRepo::parse(&format!("{remote}#{branch}")).ok()
}

/// A `catalogInfoPath` as a path from the repository root; `None` when it leaves the repository.
fn normalize_path(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(remote: &str) -> PublishHostConfig {
        PublishHostConfig {
            host: "git.example.com".into(),
            remote: remote.into(),
            github_api_url: None,
            token_env: None,
            token_file: None,
            username: None,
            ssh_key: None,
        }
    }

    fn config(hosts: Vec<PublishHostConfig>) -> ScaffolderConfig {
        ScaffolderConfig {
            allowed_hosts: hosts.iter().map(|h| h.host.clone()).collect(),
            hosts,
            ..ScaffolderConfig::default()
        }
    }

    #[test]
    fn backstage_repo_urls_parse() {
        let url = RepoUrl::parse("github.com?owner=acme&repo=payments").expect("ok");
        assert_eq!(url.host, "github.com");
        assert_eq!(url.owner.as_deref(), Some("acme"));
        assert_eq!(url.repo, "payments");
        let url = RepoUrl::parse("GIT.Example.com:8443?repo=/svc/&owner=a&workspace=w&project=P")
            .expect("ok");
        assert_eq!(url.host, "git.example.com:8443", "lower case, port kept");
        assert_eq!(url.repo, "svc", "slashes trimmed as Backstage does");
        assert_eq!(url.workspace.as_deref(), Some("w"));
        assert_eq!(url.project.as_deref(), Some("P"));
        assert_eq!(
            RepoUrl::parse("github.com:443?owner=a&repo=b")
                .expect("ok")
                .host,
            "github.com",
            "the default port disappears, as in a URL's host"
        );
        assert_eq!(
            RepoUrl::parse("github.com?owner=a&repo=.github")
                .expect("ok")
                .repo,
            ".github"
        );
    }

    #[test]
    fn hostile_repo_urls_are_refused() {
        for (raw, needle) in [
            ("github.com?owner=acme", "missing repo"),
            ("github.com?owner=acme&repo=", "missing repo"),
            (
                "github.com?owner=--upload-pack=touch%20/tmp/x&repo=r",
                "Invalid owner",
            ),
            (
                "github.com?owner=--upload-pack=touch /tmp/x&repo=r",
                "whitespace",
            ),
            (
                "github.com?owner=a&repo=-c%20core.sshCommand=x",
                "Invalid repo",
            ),
            ("github.com?owner=a&repo=..", "Invalid repo"),
            ("github.com?owner=a&repo=%2e%2e", "Invalid repo"),
            ("github.com?owner=a&repo=%2E", "Invalid repo"),
            ("github.com?owner=a%2Fb&repo=r", "Invalid owner"),
            ("github.com?owner=a&repo=b%0Ac", "Invalid repo"),
            ("github.com?owner=a&repo=b\nc", "whitespace"),
            ("github.com?owner=a&repo=b\tc", "whitespace"),
            ("github.com?owner=a&repo=b%00", "Invalid repo"),
            ("github.com?owner=a&repo=b&repo=c", "more than once"),
            ("github.com?owner=a&repo=b+c", "Invalid repo"),
            ("github.com?owner=a&repo=caf%C3%A9", "Invalid repo"),
            ("user:pw@github.com?owner=a&repo=b", "credentials"),
            ("?owner=a&repo=b", "Invalid repo URL"),
        ] {
            let err = RepoUrl::parse(raw).expect_err(raw);
            assert!(err.0.contains(needle), "{raw:?}: {err}");
        }
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        assert!(RepoUrl::parse(&format!("github.com?owner=a&repo={long}")).is_err());
        assert!(RepoUrl::parse(&format!("github.com?owner=a&repo={}", &long[1..])).is_ok());
    }

    #[test]
    fn hosts_must_be_allowed_and_configured() {
        let mut config = config(vec![host("https://git.example.com/{owner}/{repo}.git")]);
        let url = RepoUrl::parse("GIT.EXAMPLE.COM?owner=a&repo=b").expect("ok");
        assert!(url.host_config(&config).is_ok(), "case-insensitive");
        for raw in [
            "evil.example?owner=a&repo=b",
            "git.example.com.evil.example?owner=a&repo=b",
            "git.example.com:2222?owner=a&repo=b",
        ] {
            let err = RepoUrl::parse(raw)
                .expect("parses")
                .host_config(&config)
                .expect_err(raw);
            assert!(err.0.contains("scaffolder.allowed_hosts"), "{raw}: {err}");
        }
        config.allowed_hosts.push("other.example".into());
        let err = RepoUrl::parse("other.example?owner=a&repo=b")
            .expect("parses")
            .host_config(&config)
            .expect_err("no hosts entry");
        assert!(err.0.contains("scaffolder.hosts"), "{err}");
    }

    #[test]
    fn remotes_come_from_the_host_pattern() {
        let url = RepoUrl::parse("git.example.com?owner=acme&repo=svc").expect("ok");
        assert_eq!(
            url.remote(&host("https://git.example.com/{owner}/{repo}.git"))
                .expect("ok"),
            "https://git.example.com/acme/svc.git"
        );
        assert_eq!(
            url.remote(&host("file:///srv/git/{owner}/{repo}.git"))
                .expect("ok"),
            "file:///srv/git/acme/svc.git"
        );
        let err = url
            .remote(&host("https://dev.example/{organization}/_git/{repo}"))
            .expect_err("no organization");
        assert!(err.0.contains("missing organization"), "{err}");
        let err = url
            .remote(&host("https://git.example.com/{group}/{repo}"))
            .expect_err("unknown placeholder");
        assert!(err.0.contains("placeholder"), "{err}");
        let err = url
            .remote(&host("https://u:pw@git.example.com/{owner}/{repo}"))
            .expect_err("password");
        assert!(
            err.0.contains("password") && !err.0.contains("pw@"),
            "{err}"
        );
    }

    #[test]
    fn tokens_come_from_a_file_or_the_environment_and_are_never_shown() {
        let dir = std::env::temp_dir().join(format!("atrium-token-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("token");
        std::fs::write(&file, "from-file\n").expect("write");
        let mut h = host("https://git.example.com/{owner}/{repo}.git");
        h.token_env = Some("PUBLISH_TOKEN".into());
        let env = |name: &str| (name == "PUBLISH_TOKEN").then(|| "from-env".to_owned());
        let token = host_token_with(&h, env).expect("ok").expect("token");
        assert_eq!(token.expose(), "from-env");
        assert_eq!(format!("{token:?}"), "Secret(****)");
        h.token_file = Some(file);
        let token = host_token_with(&h, env).expect("ok").expect("token");
        assert_eq!(token.expose(), "from-file", "the file wins");
        h.token_file = None;
        let err = host_token_with(&h, |_| None).expect_err("unset");
        assert!(err.0.contains("PUBLISH_TOKEN"), "{err}");
        h.token_env = None;
        assert_eq!(host_token_with(&h, env).expect("ok"), None);
        std::fs::remove_dir_all(dir).expect("cleanup");

        let secret = Secret::new("s3cret");
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode("x-access-token:s3cret");
        assert_eq!(
            secret.redact(
                &format!("bad token s3cret; header {basic}"),
                "x-access-token"
            ),
            "bad token ****; header ****"
        );
    }

    #[test]
    fn contents_urls_map_to_catalog_locations() {
        let mut github = host("https://github.example/{owner}/{repo}.git");
        github.host = "github.example".into();
        github.github_api_url = Some("https://github.example/api/v3".into());
        let config = config(vec![github]);
        let contents = git_contents_url("file:///srv/git/acme/svc.git", "main");
        assert_eq!(contents, "file:///srv/git/acme/svc.git#main");
        assert_eq!(
            contents_location(&contents, "/catalog-info.yaml", &config),
            Some(ContentsLocation {
                repository: "file:///srv/git/acme/svc.git#main".into(),
                file: "file:///srv/git/acme/svc.git#main:catalog-info.yaml".into(),
            })
        );
        assert_eq!(
            contents_location(
                "https://github.example/acme/svc/blob/release/1.x",
                "./docs/catalog-info.yaml",
                &config
            ),
            Some(ContentsLocation {
                repository: "https://github.example/acme/svc.git#release/1.x".into(),
                file: "https://github.example/acme/svc.git#release/1.x:docs/catalog-info.yaml"
                    .into(),
            })
        );
        assert_eq!(
            contents_location(&contents, "../../etc/passwd", &config),
            None
        );
        assert_eq!(
            contents_location("https://other.example/a/b/blob/main", "/x", &config),
            None
        );
    }
}
