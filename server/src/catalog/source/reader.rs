//! Reading location targets: `file` paths only under configured roots, `url` targets only from allowed
//! hosts, git repositories by the same rules, with size and time limits and every redirect re-checked
//! against the allowlist.
//!
//! An allowed host must also be, or resolve to, a public address unless
//! `catalog.url_allow_private_addresses` is set (`crate::net`): hosts written as addresses are checked
//! here, names by the resolver the HTTP client connects through, so the address checked is the one
//! connected to. Git fetches check the remote's host just before libgit2 connects (see `git::cache`).

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use url::Url;

use super::{ReadError, Target};
use crate::config::{CatalogConfig, GitConfig};
use crate::git::cache::{GitCache, Snapshot};
use crate::git::{GitFile, GitRepo, RemoteKind, RepoSettings};
use crate::net::{self, CheckedResolver};

#[derive(Clone)]
pub struct Reader {
    roots: Vec<PathBuf>,
    allowlist: Vec<String>,
    /// Which addresses hosts may resolve to; also the HTTP client's resolver.
    addresses: CheckedResolver,
    max_bytes: usize,
    timeout: Duration,
    http: reqwest::Client,
    git: GitCache,
    git_config: std::sync::Arc<GitConfig>,
}

const MAX_REDIRECTS: usize = 5;

impl Reader {
    pub fn new(config: &CatalogConfig) -> anyhow::Result<Self> {
        // Roots that do not exist yet are kept as given (made absolute) so a later mkdir works.
        let roots = config
            .file_roots
            .iter()
            .map(|root| std::fs::canonicalize(root).or_else(|_| std::path::absolute(root)))
            .collect::<Result<Vec<_>, _>>()?;
        let addresses = CheckedResolver::new(
            config.name_lookup.clone(),
            config.url_allow_private_addresses,
        );
        let http = crate::tls::http_client()
            // Redirects are followed by hand so that each hop is checked against the allowlist.
            .redirect(reqwest::redirect::Policy::none())
            // Names are resolved, checked and connected to in one place; a proxy would resolve them
            // itself, out of reach of the check.
            .dns_resolver(addresses.clone())
            .no_proxy()
            .timeout(Duration::from_secs(config.url_timeout_seconds))
            .build()?;
        Ok(Self {
            roots,
            allowlist: config
                .url_allowlist
                .iter()
                .map(|h| h.to_lowercase())
                .collect(),
            addresses: addresses.clone(),
            max_bytes: config.max_file_bytes,
            timeout: Duration::from_secs(config.url_timeout_seconds),
            http,
            git: GitCache::new(&config.git, addresses),
            git_config: std::sync::Arc::new(config.git.clone()),
        })
    }

    /// Checks a `type` + `target` pair from outside (API, config) and turns it into a `Target`. Relative
    /// file paths are taken relative to the working directory.
    pub fn resolve(&self, location_type: &str, target: &str) -> Result<Target, ReadError> {
        // No file, URL or remote holds one, and Postgres cannot store it.
        if target.contains('\0') || location_type.contains('\0') {
            return Err(ReadError::Invalid(
                "location target contains a NUL character".to_owned(),
            ));
        }
        match location_type {
            "file" => {
                let path = Path::new(target);
                let path = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    std::env::current_dir()
                        .map_err(|e| {
                            ReadError::Failed(format!("cannot read the working directory: {e}"))
                        })?
                        .join(path)
                };
                self.check_file(&path).map(Target::File)
            }
            "url" => {
                let url = Url::parse(target).map_err(|e| {
                    ReadError::Invalid(format!("url target {target:?} is not a valid URL: {e}"))
                })?;
                self.check_url(&url)?;
                Ok(Target::Url(url))
            }
            "git" => {
                let repo = GitRepo::parse(target).map_err(ReadError::Invalid)?;
                self.check_remote(&repo)?;
                Ok(Target::GitRepo(repo))
            }
            "git-file" => {
                let file = GitFile::parse(target).map_err(ReadError::Invalid)?;
                self.check_remote(&file.repo)?;
                Ok(Target::GitFile(file))
            }
            other => Err(ReadError::NotAllowed(format!(
                "Unsupported location type '{other}'; expected 'file', 'url' or 'git'"
            ))),
        }
    }

    /// A git remote is allowed when `catalog.git.repositories` names it, or by the rules of its kind:
    /// a `file://` repository under `catalog.file_roots`, a network one from a host in
    /// `catalog.url_allowlist`.
    fn check_remote(&self, repo: &GitRepo) -> Result<(), ReadError> {
        if self.git_config.settings_for(repo).configured {
            return Ok(());
        }
        match repo.kind() {
            RemoteKind::Local(path) => self.check_file(&path).map(|_| ()),
            RemoteKind::Network { host, port } => {
                if self.host_allowed(&host, port) {
                    self.addresses.check_literal(&host).map_err(|refused| {
                        ReadError::NotAllowed(format!("git remote {}: {refused}", repo.remote))
                    })
                } else {
                    Err(ReadError::NotAllowed(format!(
                        "host '{host}' of git remote {} is neither in catalog.git.repositories nor in catalog.url_allowlist",
                        repo.remote
                    )))
                }
            }
        }
    }

    /// Settings (credentials, catalog file globs, web address) of a repository.
    pub fn git_settings(&self, repo: &GitRepo) -> RepoSettings {
        self.git_config.settings_for(repo)
    }

    /// A `git-file` target checked as at registration, with what reading more of its repository
    /// needs: the cache and the repository's settings. A software template in git reads its skeletons
    /// this way.
    pub fn git_file_access(
        &self,
        target: &str,
    ) -> Result<(GitFile, GitCache, RepoSettings), ReadError> {
        match self.resolve("git-file", target)? {
            Target::GitFile(file) => {
                let settings = self.git_settings(&file.repo);
                Ok((file, self.git.clone(), settings))
            }
            other => Err(ReadError::Invalid(format!(
                "{} is not a file in a git repository",
                other.target_string()
            ))),
        }
    }

    /// Fetches a repository and lists its catalog files.
    pub async fn git_snapshot(&self, repo: &GitRepo) -> Result<Snapshot, ReadError> {
        let settings = self.git_settings(repo);
        Ok(self.git.snapshot(repo, &settings).await?)
    }

    /// Resolves `relative` against the location `base` (a Location entity's target, a `$text` path):
    /// relative paths stay within the same kind of location, absolute URLs are allowed for both.
    pub fn resolve_relative(&self, base: &Target, relative: &str) -> Result<Target, ReadError> {
        if relative.starts_with("http://") || relative.starts_with("https://") {
            return self.resolve("url", relative);
        }
        match base {
            Target::File(base_path) => {
                let dir = base_path.parent().unwrap_or(Path::new("/"));
                self.check_file(&dir.join(relative)).map(Target::File)
            }
            Target::Url(base_url) => {
                let url = base_url.join(relative).map_err(|e| {
                    ReadError::NotAllowed(format!(
                        "{relative:?} cannot be resolved against {base_url}: {e}"
                    ))
                })?;
                self.check_url(&url)?;
                Ok(Target::Url(url))
            }
            Target::GitFile(file) => file
                .join(relative)
                .map(Target::GitFile)
                .map_err(|e| ReadError::NotAllowed(format!("{}: {e}", file.target_string()))),
            Target::GitRepo(repo) => Err(ReadError::NotAllowed(format!(
                "{relative:?} cannot be resolved against the repository {}",
                repo.target_string()
            ))),
        }
    }

    /// Largest file read (config `catalog.max_file_bytes`); YAML parsing uses the same cap.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    fn check_file(&self, path: &Path) -> Result<PathBuf, ReadError> {
        let normalized = normalize(path);
        // Symlinks are resolved before the root check, so a link cannot lead outside a root.
        let real = match std::fs::canonicalize(&normalized) {
            Ok(real) => real,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Judge a missing file by its lexical path, so the error says "not found", not "not allowed".
                if self.under_roots(&normalized) {
                    return Ok(normalized);
                }
                return Err(self.outside_roots(&normalized));
            }
            Err(e) => {
                return Err(ReadError::Failed(format!(
                    "cannot read {}: {e}",
                    normalized.display()
                )));
            }
        };
        if self.under_roots(&real) {
            Ok(real)
        } else {
            Err(self.outside_roots(&normalized))
        }
    }

    fn under_roots(&self, path: &Path) -> bool {
        self.roots.iter().any(|root| path.starts_with(root))
    }

    fn outside_roots(&self, path: &Path) -> ReadError {
        let roots: Vec<String> = self.roots.iter().map(|r| r.display().to_string()).collect();
        ReadError::NotAllowed(format!(
            "file location {} is outside the allowed roots [{}] (config catalog.file_roots)",
            path.display(),
            roots.join(", ")
        ))
    }

    fn check_url(&self, url: &Url) -> Result<(), ReadError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ReadError::NotAllowed(format!(
                "url location {url} uses scheme '{}'; only http and https are read",
                url.scheme()
            )));
        }
        let host = url.host_str().unwrap_or_default().to_lowercase();
        if !self.host_allowed(&host, url.port()) {
            return Err(ReadError::NotAllowed(format!(
                "host '{host}' of url location {url} is not in catalog.url_allowlist"
            )));
        }
        // The url crate has already turned every numeric spelling of an IPv4 address (`2130706433`,
        // `0x7f000001`, `127.1`) into the dotted address it stands for. Names are checked when the
        // client resolves them.
        self.addresses
            .check_literal(&host)
            .map_err(|refused| ReadError::NotAllowed(format!("url location {url}: {refused}")))
    }

    fn host_allowed(&self, host: &str, port: Option<u16>) -> bool {
        let with_port = port.map(|p| format!("{host}:{p}"));
        self.allowlist.iter().any(|rule| {
            if let Some(suffix) = rule.strip_prefix("*.") {
                host.ends_with(&format!(".{suffix}"))
            } else {
                rule == host || Some(rule) == with_port.as_ref()
            }
        })
    }

    /// Reads the whole target as UTF-8 text, within the size and time limits.
    pub async fn read(&self, target: &Target) -> Result<String, ReadError> {
        let bytes = match target {
            Target::File(path) => self.read_file(path).await?,
            Target::Url(url) => tokio::time::timeout(self.timeout, self.read_url(url))
                .await
                .map_err(|_| {
                    ReadError::Failed(format!("reading {url} took longer than {:?}", self.timeout))
                })??,
            Target::GitFile(file) => {
                let settings = self.git_settings(&file.repo);
                self.git.read(file, &settings, self.max_bytes).await?
            }
            Target::GitRepo(repo) => {
                return Err(ReadError::NotAllowed(format!(
                    "the git repository {} is not a file",
                    repo.target_string()
                )));
            }
        };
        String::from_utf8(bytes).map_err(|e| {
            ReadError::Failed(format!("{} is not UTF-8 text: {e}", target.target_string()))
        })
    }

    async fn read_file(&self, path: &Path) -> Result<Vec<u8>, ReadError> {
        let metadata = tokio::fs::metadata(path)
            .await
            .map_err(|e| io_error(path, e))?;
        if !metadata.is_file() {
            return Err(ReadError::NotAllowed(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        if metadata.len() > self.max_bytes as u64 {
            return Err(self.too_large(&path.display().to_string(), metadata.len()));
        }
        tokio::fs::read(path).await.map_err(|e| io_error(path, e))
    }

    async fn read_url(&self, start: &Url) -> Result<Vec<u8>, ReadError> {
        let mut url = start.clone();
        for _ in 0..=MAX_REDIRECTS {
            let response = self
                .http
                .get(url.clone())
                .send()
                .await
                .map_err(|e| request_error(&url, &e))?;
            let status = response.status();
            if status.is_redirection() {
                let next = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| url.join(v).ok())
                    .ok_or_else(|| {
                        ReadError::Failed(format!("{url} redirected without a valid Location"))
                    })?;
                self.check_url(&next).map_err(|e| {
                    ReadError::NotAllowed(format!(
                        "{url} redirected to {next}, which is not allowed: {e}"
                    ))
                })?;
                url = next;
                continue;
            }
            if status == reqwest::StatusCode::NOT_FOUND {
                return Err(ReadError::NotFound(format!(
                    "{url} was not found (HTTP 404)"
                )));
            }
            if !status.is_success() {
                return Err(ReadError::Failed(format!(
                    "reading {url} failed with HTTP {status}"
                )));
            }
            if let Some(length) = response.content_length()
                && length > self.max_bytes as u64
            {
                return Err(self.too_large(url.as_str(), length));
            }
            let mut body = Vec::new();
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| {
                    ReadError::Failed(format!("reading {url} failed: {}", without_url(&e)))
                })?;
                body.extend_from_slice(&chunk);
                if body.len() > self.max_bytes {
                    return Err(self.too_large(url.as_str(), body.len() as u64));
                }
            }
            return Ok(body);
        }
        Err(ReadError::Failed(format!(
            "{start} redirected more than {MAX_REDIRECTS} times"
        )))
    }

    fn too_large(&self, what: &str, size: u64) -> ReadError {
        ReadError::NotAllowed(format!(
            "{what} is {size} bytes, more than the {} byte limit (catalog.max_file_bytes)",
            self.max_bytes
        ))
    }
}

fn io_error(path: &Path, e: std::io::Error) -> ReadError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ReadError::NotFound(format!("{} does not exist", path.display()))
    } else {
        ReadError::Failed(format!("cannot read {}: {e}", path.display()))
    }
}

/// Why a request failed; a refusal by the resolver (a private address) is a rule broken, not a failure.
fn request_error(url: &Url, e: &reqwest::Error) -> ReadError {
    match net::refusal(e) {
        Some(refused) => ReadError::NotAllowed(format!("cannot read {url}: {refused}")),
        None => ReadError::Failed(format!("cannot read {url}: {}", without_url(e))),
    }
}

/// reqwest errors repeat the URL; the messages above already carry it.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text
            .replace(&format!(" ({url})"), "")
            .replace(&format!(" for url ({url})"), "");
    }
    text
}

/// Removes `.` and `..` lexically so that a missing file under a root is still judged correctly.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(root: &Path, allow: &[&str]) -> Reader {
        let config = CatalogConfig {
            file_roots: vec![root.to_path_buf()],
            url_allowlist: allow.iter().map(ToString::to_string).collect(),
            // These tests are about roots and the allowlist; the address rule has its own below.
            url_allow_private_addresses: true,
            max_file_bytes: 64,
            ..CatalogConfig::default()
        };
        Reader::new(&config).expect("reader")
    }

    /// A reader with the default address rule: public addresses only.
    fn strict_reader(allow: &[&str]) -> Reader {
        let config = CatalogConfig {
            file_roots: vec![PathBuf::from("/nonexistent")],
            url_allowlist: allow.iter().map(ToString::to_string).collect(),
            ..CatalogConfig::default()
        };
        Reader::new(&config).expect("reader")
    }

    #[test]
    fn hosts_written_as_private_addresses_are_refused_in_every_spelling() {
        // The url crate reads numeric spellings as the dotted address, which the allowlist and the
        // address rule then see.
        for (written, normal) in [
            ("2130706433", "127.0.0.1"),
            ("0x7f000001", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("0", "0.0.0.0"),
            ("[::ffff:127.0.0.1]", "[::ffff:7f00:1]"),
        ] {
            let url = Url::parse(&format!("http://{written}/c.yaml")).expect(written);
            assert_eq!(url.host_str(), Some(normal), "{written}");
        }
        let reader = strict_reader(&[
            "127.0.0.1",
            "0.0.0.0",
            "[::ffff:7f00:1]",
            "[::1]",
            "10.1.2.3",
            "169.254.169.254",
            "[fd00::1]",
            "203.0.113.7",
        ]);
        for target in [
            "http://2130706433/c.yaml",
            "http://0x7f000001:8080/c.yaml",
            "http://127.1/c.yaml",
            "http://0/c.yaml",
            "http://[::ffff:127.0.0.1]/c.yaml",
            "http://[::1]/c.yaml",
            "https://10.1.2.3/c.yaml",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00::1]/c.yaml",
        ] {
            let error = reader.resolve("url", target).expect_err(target);
            assert!(
                matches!(&error, ReadError::NotAllowed(m) if m.contains("refused:") && m.contains("catalog.url_allow_private_addresses")),
                "{target}: {error:?}"
            );
        }
        assert!(reader.resolve("url", "http://203.0.113.7/c.yaml").is_ok());
        // A $text or Location target, and a redirect hop, pass the same check.
        let base = reader
            .resolve("url", "http://203.0.113.7/c.yaml")
            .expect("public");
        assert!(
            reader
                .resolve_relative(&base, "http://169.254.169.254/x")
                .is_err()
        );
        let error = reader
            .resolve("git", "https://10.1.2.3/acme/shop.git")
            .expect_err("git remote on a private address");
        assert!(
            error
                .to_string()
                .contains("refused: 10.1.2.3 is a private address"),
            "{error}"
        );
    }

    #[test]
    fn targets_with_a_nul_character_are_invalid() {
        let reader = reader(Path::new("/nonexistent"), &["example.com"]);
        for (kind, target) in [
            ("file", "/nonexistent/a\0.yaml"),
            ("url", "https://example.com/\0"),
            ("git", "https://example.com/a\0.git"),
        ] {
            assert!(
                matches!(reader.resolve(kind, target), Err(ReadError::Invalid(_))),
                "{kind} {target:?}"
            );
        }
    }

    #[tokio::test]
    async fn files_only_under_roots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir(&root).expect("mkdir");
        std::fs::write(root.join("a.yaml"), "kind: x").expect("write");
        std::fs::write(dir.path().join("secret.yaml"), "x").expect("write");
        let reader = reader(&root, &[]);
        let ok = reader
            .resolve("file", &root.join("a.yaml").display().to_string())
            .expect("inside");
        assert_eq!(reader.read(&ok).await.expect("reads"), "kind: x");
        let escape = reader
            .resolve_relative(&ok, "../secret.yaml")
            .expect_err("outside");
        assert!(matches!(escape, ReadError::NotAllowed(_)), "{escape:?}");
        let missing = reader
            .resolve_relative(&ok, "missing.yaml")
            .expect("missing is resolvable");
        assert!(matches!(
            reader.read(&missing).await,
            Err(ReadError::NotFound(_))
        ));
        std::fs::write(root.join("big.yaml"), "x".repeat(100)).expect("write");
        let big = reader.resolve_relative(&ok, "big.yaml").expect("inside");
        assert!(
            reader
                .read(&big)
                .await
                .expect_err("too big")
                .to_string()
                .contains("64 byte limit")
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_a_root_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir(&root).expect("mkdir");
        std::fs::write(dir.path().join("outside.yaml"), "x").expect("write");
        std::os::unix::fs::symlink(dir.path().join("outside.yaml"), root.join("link.yaml"))
            .expect("symlink");
        let reader = reader(&root, &[]);
        let err = reader
            .resolve("file", &root.join("link.yaml").display().to_string())
            .expect_err("refused");
        assert!(matches!(err, ReadError::NotAllowed(_)));
    }

    #[test]
    fn url_allowlist_rules() {
        let reader = reader(
            Path::new("/nonexistent"),
            &["git.example.com", "*.example.org", "127.0.0.1:8080"],
        );
        assert!(
            reader
                .resolve("url", "https://git.example.com/a.yaml")
                .is_ok()
        );
        assert!(
            reader
                .resolve("url", "https://a.b.example.org/a.yaml")
                .is_ok()
        );
        assert!(
            reader
                .resolve("url", "http://127.0.0.1:8080/a.yaml")
                .is_ok()
        );
        assert!(
            reader
                .resolve("url", "http://127.0.0.1:9090/a.yaml")
                .is_err()
        );
        assert!(reader.resolve("url", "https://evil.com/a.yaml").is_err());
        assert!(reader.resolve("url", "file:///etc/passwd").is_err());
        assert!(reader.resolve("github", "x").is_err());
    }
}
