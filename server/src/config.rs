//! Typed configuration: `atrium.yaml` (optional) overlaid with `ATRIUM_*` environment variables and flags.
//!
//! Every field has a default that makes `atrium serve` work out of the box against a local Postgres with
//! the demo catalog. docs/configuration.md lists every field; keep the two in step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::net::Lookup;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub catalog: CatalogConfig,
    pub scaffolder: ScaffolderConfig,
    /// Clusters to deploy to and the guardrails of each environment.
    pub deploy: crate::deploy::config::DeployConfig,
    /// Sign-in, guest mode, sessions, API tokens and the audit log.
    pub auth: crate::auth::config::AuthConfig,
    /// The permission policy: rules over groups, ownership, templates, environments and actions.
    pub permissions: crate::auth::policy::Policy,
}

/// `scaffolder`: golden paths (software templates) and the tasks that run them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScaffolderConfig {
    /// Where each task's workspace directory is made (removed when the task ends). Default
    /// `.atrium/workspaces`.
    pub workspace_dir: PathBuf,
    /// Tasks one replica runs at once. Default 4.
    pub concurrency: usize,
    /// A claimed task whose worker sent no heartbeat for this long is taken over by another worker.
    /// Default 30 s.
    pub lease_seconds: u64,
    /// Finished tasks (and their events) older than this are deleted. Default 30 days.
    pub retention_days: u64,
    /// Hosts that `publish:*` and `RepoUrlPicker` repository URLs may name (`repoUrl: host?owner=o&repo=r`).
    /// Empty: none. The demo configuration allows `localhost`.
    pub allowed_hosts: Vec<String>,
    /// How a repository URL on each allowed host is reached for `publish:git` and `publish:github`.
    pub hosts: Vec<PublishHostConfig>,
}

impl Default for ScaffolderConfig {
    fn default() -> Self {
        Self {
            workspace_dir: PathBuf::from(".atrium/workspaces"),
            concurrency: 4,
            lease_seconds: 30,
            retention_days: 30,
            allowed_hosts: Vec::new(),
            hosts: Vec::new(),
        }
    }
}

/// `scaffolder.hosts[]`: one git host templates publish to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishHostConfig {
    /// The host as repository URLs name it (`github.com`, `git.example.com`, `localhost`).
    pub host: String,
    /// Git remote for `owner/repo` on this host, with `{owner}` and `{repo}` placeholders, e.g.
    /// `https://github.com/{owner}/{repo}.git` or `file:///srv/git/{owner}/{repo}.git`.
    pub remote: String,
    /// GitHub REST API base URL for `publish:github` (`https://api.github.com`, or
    /// `https://ghe.example.com/api/v3`). Unset: `publish:github` refuses this host.
    #[serde(default)]
    pub github_api_url: Option<String>,
    /// Environment variable holding the token used to create repositories and push. Secrets never sit
    /// in the file itself.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the token instead (a mounted Kubernetes secret, say), read at every publish;
    /// surrounding whitespace is trimmed. Wins over `token_env`. Default unset.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// User name sent with the token over https. Default `x-access-token` (GitHub's; GitLab wants
    /// `oauth2`).
    #[serde(default)]
    pub username: Option<String>,
    /// Private key for ssh remotes. Default unset: the ssh agent is asked.
    #[serde(default)]
    pub ssh_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:7007` (Backstage's backend port).
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes. Default 2 MiB.
    pub body_limit_bytes: usize,
    /// Requests taking longer than this are answered with 408. Default 30 s.
    pub request_timeout_seconds: u64,
    /// Log format: `pretty` (default) or `json`.
    pub log_format: LogFormat,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7007)),
            body_limit_bytes: 2 * 1024 * 1024,
            request_timeout_seconds: 30,
            log_format: LogFormat::Pretty,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Postgres URL. Usually given as `DATABASE_URL`; it may carry a password, so it is never logged whole.
    /// Unset (the default) means `DEFAULT_DATABASE_URL`, or a private cluster when nothing answers
    /// there (`db::local`).
    pub url: Option<String>,
    /// Connection pool size per replica. Default 10.
    pub max_connections: u32,
    /// Create the database named in the URL when it does not exist. Default true.
    pub create_if_missing: bool,
}

/// The database used when none is named: the local server's default port, trust authentication.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/atrium";

impl DatabaseConfig {
    /// The URL to connect to: the one configured, else `DEFAULT_DATABASE_URL`.
    pub fn url_or_default(&self) -> &str {
        self.url.as_deref().unwrap_or(DEFAULT_DATABASE_URL)
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 16,
            create_if_missing: true,
        }
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("max_connections", &self.max_connections)
            .field("create_if_missing", &self.create_if_missing)
            .finish()
    }
}

/// The URL with any password replaced, for logs and error messages.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparseable database URL>".to_owned(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// Locations registered at start-up (origin `config`). Default: the demo catalog, `catalog/all.yaml`.
    pub locations: Vec<LocationConfig>,
    /// Directories that `file` locations must lie under (after resolving symlinks). Default `["catalog"]`.
    pub file_roots: Vec<PathBuf>,
    /// Hosts that `url` locations may be read from: exact names, `*.example.com` wildcards, or
    /// `host:port`. Empty (the default) means url locations are refused.
    pub url_allowlist: Vec<String>,
    /// Let url locations, and git remotes not named in `git.repositories`, reach loopback, private,
    /// shared (CGNAT), link-local and other non-public addresses. Default false: a host is resolved
    /// before it is read, and refused when it is, or resolves to, such an address.
    pub url_allow_private_addresses: bool,
    /// How host names are looked up: the system's resolver. Not read from the file or the environment;
    /// tests put in their own (`net::Lookup::custom`) to map made-up names.
    #[serde(skip)]
    pub name_lookup: Lookup,
    /// Largest catalog file read, in bytes. Default 1 MiB.
    pub max_file_bytes: usize,
    /// Time limit for reading one url target. Default 10 s.
    pub url_timeout_seconds: u64,
    /// How often every location is re-read. Default 120 s.
    pub refresh_interval_seconds: u64,
    /// How long a claimed location stays claimed before another worker may take it. Default 60 s.
    pub processing_lease_seconds: u64,
    /// Locations processed at once per replica. Default 4.
    pub processing_workers: usize,
    /// Counts and facet counts each replica keeps for the current catalog generation. Default 10,000;
    /// 0 computes every answer afresh.
    pub answer_cache_entries: usize,
    /// Compressed bodies of unpaginated entity lists (a team's owned entities, say) each replica keeps
    /// for the current catalog generation, in megabytes. Default 32; 0 keeps none.
    pub list_cache_megabytes: usize,
    /// Entity bodies asked for by name each replica keeps for the current catalog generation, in
    /// megabytes. Default 16 (about 11,000 entities of the benchmark's size); 0 keeps none.
    pub entity_cache_megabytes: usize,
    /// What happens to entities their location stopped emitting: `delete` (default) or `keep`
    /// (kept, annotated `backstage.io/orphan: "true"`).
    pub orphan_policy: OrphanPolicy,
    /// Git repositories read as locations, and how they are fetched.
    pub git: GitConfig,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            locations: vec![LocationConfig {
                location_type: "file".to_owned(),
                target: "catalog/all.yaml".to_owned(),
            }],
            file_roots: vec![PathBuf::from("catalog")],
            url_allowlist: Vec::new(),
            url_allow_private_addresses: false,
            name_lookup: Lookup::system(),
            max_file_bytes: 1024 * 1024,
            url_timeout_seconds: 10,
            refresh_interval_seconds: 120,
            processing_lease_seconds: 60,
            processing_workers: 6,
            answer_cache_entries: 10_000,
            list_cache_megabytes: 32,
            entity_cache_megabytes: 16,
            orphan_policy: OrphanPolicy::Delete,
            git: GitConfig::default(),
        }
    }
}

/// `catalog.git`: repositories scanned for catalog files. Each configured repository becomes a `git`
/// location; see docs/configuration.md.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GitConfig {
    /// Repositories, single (`url`) or a whole organisation (`organisation` + `repositories`).
    pub repositories: Vec<GitRepositoryConfig>,
    /// Where fetched repositories are kept, one bare repository per remote and branch. Each replica
    /// needs its own. Default `.atrium/git-cache`.
    pub cache_dir: PathBuf,
    /// The cache is trimmed, least recently used repository first, when it grows past this. Default 2048.
    pub cache_max_megabytes: u64,
    /// A fetch that would download more than this is aborted. Default 512.
    pub max_repository_megabytes: u64,
    /// A fetch taking longer than this is aborted. Default 120 s.
    pub fetch_timeout_seconds: u64,
    /// Which files in a repository are catalog files (globs over the path from the repository root;
    /// `*` stays within a directory, `**` crosses them). Default `["**/catalog-info.yaml"]`.
    pub catalog_files: Vec<String>,
    /// Webhook secrets, from the environment only (never from the file):
    /// `ATRIUM_WEBHOOK_SECRET_GITHUB`, `ATRIUM_WEBHOOK_SECRET_GITLAB`, `ATRIUM_WEBHOOK_SECRET_GITEA`.
    #[serde(skip)]
    pub webhook_secrets: WebhookSecretsConfig,
}

impl Default for GitConfig {
    fn default() -> Self {
        Self {
            repositories: Vec::new(),
            cache_dir: PathBuf::from(".atrium/git-cache"),
            cache_max_megabytes: 2048,
            max_repository_megabytes: 512,
            fetch_timeout_seconds: 120,
            catalog_files: vec![DEFAULT_CATALOG_FILE.to_owned()],
            webhook_secrets: WebhookSecretsConfig::default(),
        }
    }
}

/// The catalog file name looked for in repositories unless `catalog_files` says otherwise.
pub const DEFAULT_CATALOG_FILE: &str = "**/catalog-info.yaml";

#[derive(Clone, Default)]
pub struct WebhookSecretsConfig {
    pub github: Option<String>,
    pub gitlab: Option<String>,
    pub gitea: Option<String>,
}

impl std::fmt::Debug for WebhookSecretsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |s: &Option<String>| if s.is_some() { "set" } else { "unset" };
        f.debug_struct("WebhookSecretsConfig")
            .field("github", &set(&self.github))
            .field("gitlab", &set(&self.gitlab))
            .field("gitea", &set(&self.gitea))
            .finish()
    }
}

/// One entry of `catalog.git.repositories`: either `url` (one repository) or `organisation` with
/// `repositories` (names or globs under it; globs are expanded only for `file://` organisations, whose
/// repositories can be listed).
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct GitRepositoryConfig {
    /// Remote of one repository: `https://host/org/repo.git`, `ssh://git@host/org/repo.git`,
    /// `git@host:org/repo.git`, `git://host/repo` or `file:///srv/git/repo.git`.
    pub url: Option<String>,
    /// Base of many repositories: `https://github.com/acme` or `file:///srv/git`.
    pub organisation: Option<String>,
    /// With `organisation`: repository names (`payments`), or globs (`*.git`) for a `file://` base.
    pub repositories: Vec<String>,
    /// Branch to follow. Default: the remote's default branch.
    pub branch: Option<String>,
    /// Overrides `catalog.git.catalog_files` for these repositories.
    pub catalog_files: Option<Vec<String>>,
    /// Environment variable holding an https access token (sent as the password).
    pub token_env: Option<String>,
    /// File holding the token instead (a mounted Kubernetes secret, say); surrounding whitespace is
    /// ignored. Read at every fetch, so a rotated token is picked up.
    pub token_file: Option<PathBuf>,
    /// User name sent with the token. Default `x-access-token` (GitHub; GitLab and Gitea accept any).
    pub username: Option<String>,
    /// Private key for ssh remotes. Default: the ssh agent.
    pub ssh_key: Option<PathBuf>,
    /// Web address of the repository (of the organisation, for `organisation`; the repository name is
    /// appended) used for view and edit links. Default: derived from an https or ssh remote.
    pub web_url: Option<String>,
    /// Link style of the web address: `github`, `gitlab` or `gitea`. Default: guessed from the host.
    pub provider: Option<GitProvider>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GitProvider {
    Github,
    Gitlab,
    Gitea,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LocationConfig {
    #[serde(rename = "type")]
    pub location_type: String,
    pub target: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OrphanPolicy {
    Delete,
    Keep,
}

/// Environment variables that override the file. Flags of the same meaning are handled in main.rs.
const ENV_OVERRIDES: &[&str] = &[
    "DATABASE_URL",
    "ATRIUM_LISTEN",
    "ATRIUM_LOG_FORMAT",
    "ATRIUM_CATALOG_LOCATIONS",
    "ATRIUM_CATALOG_FILE_ROOTS",
    "ATRIUM_CATALOG_URL_ALLOWLIST",
    "ATRIUM_CATALOG_URL_ALLOW_PRIVATE_ADDRESSES",
    "ATRIUM_CATALOG_REFRESH_INTERVAL_SECONDS",
    "ATRIUM_CATALOG_ORPHAN_POLICY",
    "ATRIUM_CATALOG_PROCESSING_WORKERS",
    "ATRIUM_CATALOG_PROCESSING_LEASE_SECONDS",
    "ATRIUM_CATALOG_ANSWER_CACHE_ENTRIES",
    "ATRIUM_GIT_CACHE_DIR",
    "ATRIUM_WEBHOOK_SECRET_GITHUB",
    "ATRIUM_WEBHOOK_SECRET_GITLAB",
    "ATRIUM_WEBHOOK_SECRET_GITEA",
];

impl Config {
    /// Reads `path` if given (an explicit path must exist), else `./atrium.yaml` when present, then
    /// applies the environment.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let mut config = match path {
            Some(path) => Self::from_file(path)?,
            None if Path::new("atrium.yaml").exists() => Self::from_file(Path::new("atrium.yaml"))?,
            None => Self::demo(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// What `atrium serve` runs without a config file: the defaults (the demo catalog) plus a place for
    /// the demo's golden paths to publish to: repository URLs on `localhost` (`localhost?owner=o&repo=r`)
    /// become bare repositories under `.atrium/git/` (created on first push), which the catalog may
    /// read. A configured Atrium publishes nowhere until `scaffolder.allowed_hosts` says where.
    pub fn demo() -> Self {
        let mut config = Self::default();
        let git_dir =
            std::path::absolute(".atrium/git").unwrap_or_else(|_| PathBuf::from(".atrium/git"));
        config.scaffolder.allowed_hosts = vec!["localhost".to_owned()];
        config.scaffolder.hosts = vec![PublishHostConfig {
            host: "localhost".to_owned(),
            remote: format!("file://{}/{{owner}}/{{repo}}.git", git_dir.display()),
            github_api_url: None,
            token_env: None,
            token_file: None,
            username: None,
            ssh_key: None,
        }];
        config.catalog.file_roots.push(git_dir);
        config.deploy = demo_deploy();
        // The demo stays one command: no sign-in, everyone is the guest (on loopback only).
        config.auth.guest = true;
        config
    }

    fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        serde_saphyr::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Applies `ATRIUM_*` variables; `lookup` is `std::env::var` outside tests.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        for name in ENV_OVERRIDES {
            let Some(value) = lookup(name).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            let bad =
                |e: &dyn std::fmt::Display| anyhow::anyhow!("{name}={value:?} is not valid: {e}");
            match *name {
                "DATABASE_URL" => self.database.url = Some(value.clone()),
                "ATRIUM_LISTEN" => self.server.listen = value.parse().map_err(|e| bad(&e))?,
                "ATRIUM_LOG_FORMAT" => {
                    self.server.log_format = match value.as_str() {
                        "json" => LogFormat::Json,
                        "pretty" => LogFormat::Pretty,
                        _ => return Err(bad(&"expected `json` or `pretty`")),
                    }
                }
                "ATRIUM_CATALOG_LOCATIONS" => {
                    self.catalog.locations = split_list(&value)
                        .map(|item| parse_location_shorthand(&item).map_err(|e| bad(&e)))
                        .collect::<anyhow::Result<_>>()?;
                }
                "ATRIUM_CATALOG_FILE_ROOTS" => {
                    self.catalog.file_roots = split_list(&value).map(PathBuf::from).collect();
                }
                "ATRIUM_CATALOG_URL_ALLOWLIST" => {
                    self.catalog.url_allowlist = split_list(&value).collect();
                }
                "ATRIUM_CATALOG_URL_ALLOW_PRIVATE_ADDRESSES" => {
                    self.catalog.url_allow_private_addresses =
                        value.trim().parse().map_err(|e| bad(&e))?;
                }
                "ATRIUM_CATALOG_REFRESH_INTERVAL_SECONDS" => {
                    self.catalog.refresh_interval_seconds = value.parse().map_err(|e| bad(&e))?;
                }
                "ATRIUM_CATALOG_PROCESSING_WORKERS" => {
                    self.catalog.processing_workers = value.parse().map_err(|e| bad(&e))?;
                }
                "ATRIUM_CATALOG_PROCESSING_LEASE_SECONDS" => {
                    self.catalog.processing_lease_seconds = value.parse().map_err(|e| bad(&e))?;
                }
                "ATRIUM_CATALOG_ANSWER_CACHE_ENTRIES" => {
                    self.catalog.answer_cache_entries = value.parse().map_err(|e| bad(&e))?;
                }
                "ATRIUM_CATALOG_LIST_CACHE_MEGABYTES" => {
                    self.catalog.list_cache_megabytes = value.parse().map_err(|e| bad(&e))?;
                }
                "ATRIUM_CATALOG_ENTITY_CACHE_MEGABYTES" => {
                    self.catalog.entity_cache_megabytes = value.parse().map_err(|e| bad(&e))?;
                }
                "ATRIUM_GIT_CACHE_DIR" => self.catalog.git.cache_dir = PathBuf::from(&value),
                "ATRIUM_WEBHOOK_SECRET_GITHUB" => {
                    self.catalog.git.webhook_secrets.github = Some(value.clone());
                }
                "ATRIUM_WEBHOOK_SECRET_GITLAB" => {
                    self.catalog.git.webhook_secrets.gitlab = Some(value.clone());
                }
                "ATRIUM_WEBHOOK_SECRET_GITEA" => {
                    self.catalog.git.webhook_secrets.gitea = Some(value.clone());
                }
                "ATRIUM_CATALOG_ORPHAN_POLICY" => {
                    self.catalog.orphan_policy = match value.as_str() {
                        "delete" => OrphanPolicy::Delete,
                        "keep" => OrphanPolicy::Keep,
                        _ => return Err(bad(&"expected `delete` or `keep`")),
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn split_list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `file:path/to/catalog.yaml` or `url:https://host/catalog-info.yaml`; a bare `https://` URL is a url
/// location and anything else a file path.
pub fn parse_location_shorthand(item: &str) -> Result<LocationConfig, String> {
    let (location_type, target) = if let Some(rest) = item.strip_prefix("file:") {
        ("file", rest)
    } else if let Some(rest) = item.strip_prefix("url:") {
        ("url", rest)
    } else if item.starts_with("http://") || item.starts_with("https://") {
        ("url", item)
    } else {
        ("file", item)
    };
    if target.is_empty() {
        return Err(format!("location {item:?} has no target"));
    }
    Ok(LocationConfig {
        location_type: location_type.to_owned(),
        target: target.to_owned(),
    })
}

/// The demo's one cluster: `local`, the current context of the user's kubeconfig (a kind or k3d
/// cluster, say), in environment `dev`. Without one, a deploy step fails saying the kubeconfig cannot
/// be read, and everything else works.
fn demo_deploy() -> crate::deploy::config::DeployConfig {
    use crate::deploy::config::{ClusterConfig, DeployConfig, EnvironmentConfig};
    use crate::deploy::policy::PolicyConfig;
    let kubeconfig = std::env::var_os("KUBECONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".kube/config")))
        .unwrap_or_else(|| PathBuf::from(".kube/config"));
    let mut deploy = DeployConfig::default();
    deploy.environments.insert(
        "dev".to_owned(),
        EnvironmentConfig {
            policy: PolicyConfig {
                allowed_registries: vec![
                    "registry.example.com/northwind-labs".to_owned(),
                    "docker.io/vllm".to_owned(),
                    "ghcr.io/northwind-labs".to_owned(),
                ],
                max_replicas: 4,
                max_gpus: 8,
                ..PolicyConfig::default()
            },
            ..EnvironmentConfig::default()
        },
    );
    deploy.clusters.push(ClusterConfig {
        name: "local".to_owned(),
        environment: "dev".to_owned(),
        namespaces: vec!["apps".to_owned(), "model-serving".to_owned()],
        url: None,
        ca_file: None,
        token_env: None,
        token_file: None,
        kubeconfig: Some(kubeconfig),
        context: None,
        in_cluster: false,
    });
    deploy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_values() {
        let mut config = Config::default();
        config
            .apply_env(|name| match name {
                "ATRIUM_LISTEN" => Some("0.0.0.0:8080".into()),
                "ATRIUM_CATALOG_LOCATIONS" => {
                    Some("file:a.yaml, https://example.com/c.yaml".into())
                }
                "ATRIUM_CATALOG_ORPHAN_POLICY" => Some("keep".into()),
                "ATRIUM_CATALOG_URL_ALLOW_PRIVATE_ADDRESSES" => Some("true".into()),
                _ => None,
            })
            .expect("valid env");
        assert!(config.catalog.url_allow_private_addresses);
        assert_eq!(config.server.listen.port(), 8080);
        assert_eq!(config.catalog.locations.len(), 2);
        assert_eq!(config.catalog.locations[1].location_type, "url");
        assert_eq!(config.catalog.orphan_policy, OrphanPolicy::Keep);
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let mut config = Config::default();
        let err = config
            .apply_env(|name| (name == "ATRIUM_LISTEN").then(|| "not-an-address".into()))
            .expect_err("must fail");
        assert!(err.to_string().contains("ATRIUM_LISTEN"), "{err}");
    }

    /// `db::local` starts a private cluster only when no URL was given, so "unset" must stay visible.
    #[test]
    fn database_url_is_unset_unless_given() {
        let mut config = Config::default();
        config
            .apply_env(|name| (name == "DATABASE_URL").then(|| " ".into()))
            .expect("valid env");
        assert_eq!(config.database.url, None, "a blank value is ignored");
        assert_eq!(config.database.url_or_default(), DEFAULT_DATABASE_URL);

        config
            .apply_env(|name| (name == "DATABASE_URL").then(|| "postgres://db/x".into()))
            .expect("valid env");
        assert_eq!(config.database.url.as_deref(), Some("postgres://db/x"));

        let from_file: Config =
            serde_saphyr::from_str("database:\n  url: postgres://db/y\n").expect("valid yaml");
        assert_eq!(from_file.database.url.as_deref(), Some("postgres://db/y"));
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@db:5432/atrium"),
            "postgres://u:****@db:5432/atrium"
        );
    }

    #[test]
    fn yaml_file_with_unknown_key_is_rejected() {
        let err = serde_saphyr::from_str::<Config>("catalog:\n  refresh_intervl_seconds: 5\n")
            .expect_err("unknown key");
        assert!(err.to_string().contains("refresh_intervl_seconds"), "{err}");
    }
}
