//! Per-repository settings from `catalog.git.repositories`: credentials, which files are catalog
//! files, where the repository's web pages are; and the list of repositories the config names.

use std::path::PathBuf;

use super::{GitRepo, RemoteKind, parse_remote, remote_key};
use crate::config::{GitConfig, GitProvider, GitRepositoryConfig};

/// How to reach and show one repository: credentials, which files to read, where its web pages are.
#[derive(Debug, Clone)]
pub struct RepoSettings {
    pub catalog_files: Vec<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    pub username: String,
    pub ssh_key: Option<PathBuf>,
    pub web_url: Option<String>,
    pub provider: Option<GitProvider>,
    /// Listed in `catalog.git.repositories` (as itself or under an organisation).
    pub configured: bool,
}

impl GitConfig {
    /// Every repository the config names, organisations expanded. Globs under a `file://` organisation
    /// are matched against the directory's entries now; under other organisations only plain names work.
    pub fn configured_repositories(&self) -> Result<Vec<GitRepo>, String> {
        let mut repos = Vec::new();
        for entry in &self.repositories {
            match (&entry.url, &entry.organisation) {
                (Some(url), None) => repos.push(repo_of(entry, url.clone())?),
                (None, Some(base)) => {
                    // An organisation without repositories fetches nothing by itself: it gives its
                    // credentials and settings to every repository under it that a location names
                    // (a repository a golden path has just created and registered, say).
                    for name in expand_organisation(base, &entry.repositories)? {
                        repos.push(repo_of(entry, name)?);
                    }
                }
                _ => {
                    return Err(
                        "catalog.git.repositories: each entry needs exactly one of `url` or `organisation`"
                            .into(),
                    );
                }
            }
        }
        Ok(repos)
    }

    /// Settings for a repository: from the config entry naming it (or its organisation), else defaults.
    pub fn settings_for(&self, repo: &GitRepo) -> RepoSettings {
        let key = remote_key(&repo.remote);
        let entry = self.repositories.iter().find_map(|entry| {
            if let Some(url) = &entry.url {
                return (remote_key(url) == key).then_some((entry, None));
            }
            let base = entry.organisation.as_deref()?;
            let base_key = remote_key(base);
            let name = key.strip_prefix(&format!("{base_key}/"))?;
            (!name.contains('/')).then(|| (entry, Some(name.to_owned())))
        });
        let Some((entry, name_in_organisation)) = entry else {
            return RepoSettings {
                catalog_files: self.catalog_files.clone(),
                token_env: None,
                token_file: None,
                username: DEFAULT_TOKEN_USER.to_owned(),
                ssh_key: None,
                web_url: None,
                provider: None,
                configured: false,
            };
        };
        let web_url = match (&entry.web_url, name_in_organisation) {
            (Some(base), Some(name)) => Some(format!(
                "{}/{}",
                base.trim_end_matches('/'),
                name.trim_end_matches(".git")
            )),
            (web, _) => web.clone(),
        };
        RepoSettings {
            catalog_files: entry
                .catalog_files
                .clone()
                .unwrap_or_else(|| self.catalog_files.clone()),
            token_env: entry.token_env.clone(),
            token_file: entry.token_file.clone(),
            username: entry
                .username
                .clone()
                .unwrap_or_else(|| DEFAULT_TOKEN_USER.to_owned()),
            ssh_key: entry.ssh_key.clone(),
            web_url,
            provider: entry.provider,
            configured: true,
        }
    }
}

const DEFAULT_TOKEN_USER: &str = "x-access-token";

fn repo_of(entry: &GitRepositoryConfig, remote: String) -> Result<GitRepo, String> {
    let target = match &entry.branch {
        Some(branch) => format!("{remote}#{branch}"),
        None => remote,
    };
    GitRepo::parse(&target).map_err(|e| format!("catalog.git.repositories: {e}"))
}

fn expand_organisation(base: &str, names: &[String]) -> Result<Vec<String>, String> {
    let base = base.trim_end_matches('/');
    let is_glob = |n: &str| n.contains(['*', '?', '[']);
    let mut remotes = Vec::new();
    for name in names {
        if !is_glob(name) {
            remotes.push(format!("{base}/{name}"));
            continue;
        }
        let RemoteKind::Local(dir) = parse_remote(base)? else {
            return Err(format!(
                "catalog.git.repositories: organisation {base}: the glob {name:?} can only be expanded for a file:// organisation; list the repository names"
            ));
        };
        let matcher = globset::Glob::new(name)
            .map_err(|e| format!("catalog.git.repositories: {name:?} is not a valid glob: {e}"))?
            .compile_matcher();
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            format!(
                "catalog.git.repositories: cannot list {}: {e}",
                dir.display()
            )
        })?;
        let mut found: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| matcher.is_match(n))
            .map(|n| format!("{base}/{n}"))
            .collect();
        found.sort();
        remotes.extend(found);
    }
    Ok(remotes)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisation_entries_give_their_repositories_settings() {
        let config = GitConfig {
            repositories: vec![GitRepositoryConfig {
                organisation: Some("https://github.com/acme".into()),
                repositories: vec!["payments".into()],
                token_env: Some("ACME_TOKEN".into()),
                web_url: Some("https://github.com/acme".into()),
                ..GitRepositoryConfig::default()
            }],
            ..GitConfig::default()
        };
        let repos = config.configured_repositories().expect("ok");
        assert_eq!(repos[0].remote, "https://github.com/acme/payments");
        let settings =
            config.settings_for(&GitRepo::parse("git@github.com:acme/payments.git").expect("ok"));
        assert!(settings.configured);
        assert_eq!(settings.token_env.as_deref(), Some("ACME_TOKEN"));
        assert_eq!(
            settings.web_url.as_deref(),
            Some("https://github.com/acme/payments")
        );
        let other = config.settings_for(&GitRepo::parse("https://github.com/other/x").expect("ok"));
        assert!(!other.configured);
    }

    #[test]
    fn an_organisation_without_repositories_only_gives_settings() {
        let config = GitConfig {
            repositories: vec![GitRepositoryConfig {
                organisation: Some("https://github.com/acme".into()),
                token_file: Some("/run/secrets/github".into()),
                ..GitRepositoryConfig::default()
            }],
            ..GitConfig::default()
        };
        assert!(config.configured_repositories().expect("ok").is_empty());
        let created = config
            .settings_for(&GitRepo::parse("https://github.com/acme/new-svc.git#main").expect("ok"));
        assert!(created.configured);
        assert_eq!(
            created.token_file.as_deref(),
            Some(std::path::Path::new("/run/secrets/github"))
        );
    }
}
