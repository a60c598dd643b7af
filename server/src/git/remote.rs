//! Remotes and targets: which repository, which branch, which file in it.
//!
//! A repository target is `<remote>` (the remote's default branch) or `<remote>#<branch>`; a file
//! target is `<remote>#<branch or HEAD>:<path>`. The syntax is unambiguous: a remote URL cannot contain
//! `#` (it would be a fragment) and a branch name cannot contain `:` (git refuses such ref names).

use std::path::PathBuf;

use super::url::normalize_repo_url;

/// The branch name used in targets and links when a repository follows its default branch.
pub const DEFAULT_BRANCH: &str = "HEAD";

/// A repository and the branch followed (`None`: the remote's default branch).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GitRepo {
    pub remote: String,
    pub branch: Option<String>,
}

impl GitRepo {
    /// Parses a `git` location target, `<remote>` or `<remote>#<branch>`.
    pub fn parse(target: &str) -> Result<Self, String> {
        let (remote, branch) = match target.split_once('#') {
            Some((remote, branch)) => (remote, Some(branch)),
            None => (target, None),
        };
        parse_remote(remote)?;
        let branch = match branch {
            None => None,
            Some(b) if b == DEFAULT_BRANCH => None,
            Some(b) => {
                check_branch(b).map_err(|e| format!("git target {target:?}: {e}"))?;
                Some(b.to_owned())
            }
        };
        Ok(Self {
            remote: remote.to_owned(),
            branch,
        })
    }

    pub fn target_string(&self) -> String {
        match &self.branch {
            Some(branch) => format!("{}#{branch}", self.remote),
            None => self.remote.clone(),
        }
    }

    /// The branch as written in `git-file` targets and links: the name, or `HEAD`.
    pub fn branch_or_head(&self) -> &str {
        self.branch.as_deref().unwrap_or(DEFAULT_BRANCH)
    }

    pub fn kind(&self) -> RemoteKind {
        // `parse` checked the remote; a failure here would be a bug, reported as a network remote.
        parse_remote(&self.remote).unwrap_or(RemoteKind::Network {
            host: String::new(),
            port: None,
        })
    }
}

/// A catalog file inside a repository, and the commit to read it at (`None`: the last one fetched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitFile {
    pub repo: GitRepo,
    /// Path from the repository root, `/`-separated, no `.` or `..`.
    pub path: String,
    pub commit: Option<String>,
}

impl GitFile {
    /// Parses a `git-file` target, `<remote>#<branch or HEAD>:<path>`.
    pub fn parse(target: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("git-file target {target:?} {why}; expected <remote>#<branch or HEAD>:<path>")
        };
        let (remote, rest) = target.split_once('#').ok_or_else(|| bad("has no '#'"))?;
        let (branch, path) = rest.split_once(':').ok_or_else(|| bad("has no ':'"))?;
        let repo = GitRepo::parse(&format!("{remote}#{branch}"))?;
        let path = normalize_repo_path("", path).map_err(|e| bad(&e))?;
        Ok(Self {
            repo,
            path,
            commit: None,
        })
    }

    pub fn target_string(&self) -> String {
        format!(
            "{}#{}:{}",
            self.repo.remote,
            self.repo.branch_or_head(),
            self.path
        )
    }

    /// A path relative to this file's directory (`./api.yaml`, `../shared/x.yaml`, `/docs/y.yaml` from
    /// the repository root), in the same repository at the same commit.
    pub fn join(&self, relative: &str) -> Result<Self, String> {
        let dir = match self.path.rsplit_once('/') {
            Some((dir, _)) => dir,
            None => "",
        };
        Ok(Self {
            repo: self.repo.clone(),
            path: normalize_repo_path(dir, relative)?,
            commit: self.commit.clone(),
        })
    }

    /// The directory holding the file, `""` at the root.
    pub fn dir(&self) -> &str {
        self.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
    }
}

/// Joins `relative` to `dir` inside a repository, refusing paths that leave it.
fn normalize_repo_path(dir: &str, relative: &str) -> Result<String, String> {
    let mut parts: Vec<&str> = if relative.starts_with('/') {
        Vec::new()
    } else {
        dir.split('/').filter(|p| !p.is_empty()).collect()
    };
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("path {relative:?} leaves the repository"));
                }
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Err(format!("path {relative:?} names no file"));
    }
    Ok(parts.join("/"))
}

fn check_branch(branch: &str) -> Result<(), String> {
    let invalid = branch.is_empty()
        || branch.starts_with('/')
        || branch.ends_with('/')
        || branch.ends_with(".lock")
        || branch.contains("..")
        || branch.contains("//")
        || branch.contains("@{")
        || branch
            .chars()
            .any(|c| c.is_control() || " ~^:?*[\\".contains(c));
    if invalid {
        Err(format!("{branch:?} is not a valid branch name"))
    } else {
        Ok(())
    }
}

/// Where a remote lives, which decides the rules it is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteKind {
    /// `file://` — a repository on this machine, allowed only under `catalog.file_roots`.
    Local(PathBuf),
    /// https, http, ssh, git or `user@host:path` — allowed by host.
    Network { host: String, port: Option<u16> },
}

/// Checks that `remote` is a git remote Atrium may name and says where it lives. Passwords in the URL
/// are refused: they would end up in targets and annotations (use `token_env`).
pub fn parse_remote(remote: &str) -> Result<RemoteKind, String> {
    if remote.is_empty() {
        return Err("git remote is empty".into());
    }
    if remote.contains(char::is_whitespace) || remote.starts_with('-') {
        return Err(format!("git remote {remote:?} is not valid"));
    }
    if let Some((scheme, _)) = remote.split_once("://") {
        let url = url::Url::parse(remote)
            .map_err(|e| format!("git remote {remote:?} is not a valid URL: {e}"))?;
        if url.password().is_some() {
            return Err(format!(
                "git remote {} carries a password; put the token in an environment variable and name it in token_env",
                crate::config::redact_url(remote)
            ));
        }
        return match scheme {
            "file" => url
                .to_file_path()
                .map(RemoteKind::Local)
                .map_err(|_| format!("git remote {remote:?} is not a local path")),
            "https" | "http" | "ssh" | "git" => match url.host_str() {
                Some(host) if !host.is_empty() => Ok(RemoteKind::Network {
                    host: host.to_lowercase(),
                    port: url.port(),
                }),
                _ => Err(format!("git remote {remote:?} has no host")),
            },
            other => Err(format!(
                "git remote {remote:?} uses scheme '{other}'; expected https, http, ssh, git or file"
            )),
        };
    }
    // scp-like syntax: [user@]host:path
    if let Some((user_host, path)) = remote.split_once(':')
        && !path.is_empty()
        && !user_host.contains('/')
    {
        let host = user_host.rsplit_once('@').map_or(user_host, |(_, h)| h);
        if !host.is_empty() {
            return Ok(RemoteKind::Network {
                host: host.to_lowercase(),
                port: None,
            });
        }
    }
    Err(format!(
        "git remote {remote:?} is not a remote URL; use https://, ssh://, git://, user@host:path or file://"
    ))
}

/// A comparison key for remotes and repository URLs, so that every https, ssh and scp spelling of one
/// repository matches (see [`normalize_repo_url`]); an unparseable remote is its own key.
pub fn remote_key(remote: &str) -> String {
    normalize_repo_url(remote).unwrap_or_else(|| remote.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip() {
        let repo = GitRepo::parse("https://github.com/acme/payments.git#release/1.x").expect("ok");
        assert_eq!(repo.branch.as_deref(), Some("release/1.x"));
        assert_eq!(
            repo.target_string(),
            "https://github.com/acme/payments.git#release/1.x"
        );
        let head = GitRepo::parse("git@github.com:acme/payments.git").expect("ok");
        assert_eq!(head.branch, None);
        let file =
            GitFile::parse("git@github.com:acme/payments.git#HEAD:services/a/catalog-info.yaml")
                .expect("ok");
        assert_eq!(file.repo, head);
        assert_eq!(file.path, "services/a/catalog-info.yaml");
        assert_eq!(
            file.target_string(),
            "git@github.com:acme/payments.git#HEAD:services/a/catalog-info.yaml"
        );
    }

    #[test]
    fn relative_paths_stay_inside_the_repository() {
        let file = GitFile::parse("file:///srv/r.git#main:a/b/catalog-info.yaml").expect("ok");
        assert_eq!(file.join("./api.yaml").expect("ok").path, "a/b/api.yaml");
        assert_eq!(file.join("../c.yaml").expect("ok").path, "a/c.yaml");
        assert_eq!(file.join("/top.yaml").expect("ok").path, "top.yaml");
        assert!(file.join("../../../etc/passwd").is_err());
        assert!(GitFile::parse("file:///srv/r.git#main:../x.yaml").is_err());
    }

    #[test]
    fn bad_remotes_and_branches_are_refused_with_a_reason() {
        for (target, needle) in [
            ("https://user:secret@github.com/a/b.git", "password"),
            ("ftp://host/repo", "scheme"),
            ("relative/path", "not a remote URL"),
            ("-uhack@host:repo", "not valid"),
            (
                "https://github.com/a/b.git#bad..branch",
                "not a valid branch",
            ),
            ("https://github.com/a/b.git#has space", "not a valid branch"),
        ] {
            let err = GitRepo::parse(target).expect_err(target);
            assert!(err.contains(needle), "{target}: {err}");
        }
        assert!(
            !GitRepo::parse("https://user:secret@github.com/a/b.git")
                .expect_err("password")
                .contains("secret")
        );
    }

    #[test]
    fn remote_keys_match_every_spelling_of_a_repository() {
        let key = "github.com/acme/payments";
        for spelling in [
            "https://github.com/Acme/Payments.git",
            "git@github.com:acme/payments.git",
            "ssh://git@github.com:22/acme/payments",
            "https://token@github.com/acme/payments/",
            "http://github.com/acme/payments",
        ] {
            assert_eq!(remote_key(spelling), key, "{spelling}");
        }
        assert_eq!(
            remote_key("file:///srv/Git/payments.git"),
            "file:///srv/Git/payments"
        );
    }
}
