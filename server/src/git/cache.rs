//! The local cache of fetched repositories: one bare repository per remote and branch under
//! `catalog.git.cache_dir`, fetched shallow (depth 1) over the network, trimmed least recently used
//! first when it grows past its cap.
//!
//! libgit2 is blocking, so every operation runs on tokio's blocking pool, one at a time per repository
//! (a per-repository lock); different repositories proceed in parallel. libgit2's local transport
//! cannot fetch shallow, so `file://` remotes are fetched whole — they are on this machine anyway.
//!
//! Before a network fetch the remote's host is resolved and refused when it is not a public address
//! (unless private addresses are allowed, or the repository is named in `catalog.git.repositories`).
//! libgit2 then resolves the name again itself: a DNS server that answers differently within that
//! moment (rebinding) can still lead a fetch to another address. url locations do not have that gap.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use git2::{AutotagOption, FetchOptions, ObjectType, Oid, RemoteCallbacks, Repository};
use sha2::{Digest, Sha256};

use super::{GitFile, GitRepo, RemoteKind, RepoSettings};
use crate::config::GitConfig;
use crate::net::{self, CheckedResolver};

/// The ref each cache repository keeps the fetched commit under.
const TIP_REF: &str = "refs/atrium/tip";

/// Why fetching or reading a repository failed. Each message names the repository and what to check;
/// users of the cache map the kinds onto their own errors.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum GitError {
    /// The request is malformed: a commit id or a catalog file glob.
    #[error("{0}")]
    Invalid(String),
    /// The repository, the branch or the file does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Refused: credentials missing or rejected, a repository or file over its size limit, not a file.
    #[error("{0}")]
    Refused(String),
    /// Anything else: network, I/O, libgit2.
    #[error("{0}")]
    Failed(String),
}

/// The state of a repository after a fetch: its commit and the catalog files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub commit: String,
    /// (path, version): the version is the id of the tree of the file's directory, so a file is read
    /// again when anything beside or below it changes (a `$text` target, say), and only then.
    pub files: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct GitCache {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    max_cache_bytes: u64,
    max_repository_bytes: u64,
    fetch_timeout: Duration,
    /// Which addresses network remotes may resolve to.
    addresses: CheckedResolver,
    slots: Mutex<HashMap<PathBuf, Arc<Slot>>>,
    started: Instant,
}

/// One cached repository. The mutex serialises libgit2 work on it within this process.
struct Slot {
    lock: Mutex<()>,
    /// Milliseconds since the cache started, for least-recently-used trimming.
    last_used: AtomicU64,
    bytes: AtomicU64,
}

impl GitCache {
    pub fn new(config: &GitConfig, addresses: CheckedResolver) -> Self {
        Self {
            inner: Arc::new(Inner {
                dir: config.cache_dir.clone(),
                max_cache_bytes: config.cache_max_megabytes.saturating_mul(1024 * 1024),
                max_repository_bytes: config.max_repository_megabytes.saturating_mul(1024 * 1024),
                fetch_timeout: Duration::from_secs(config.fetch_timeout_seconds),
                addresses,
                slots: Mutex::new(HashMap::new()),
                started: Instant::now(),
            }),
        }
    }

    /// Fetches the repository and lists its catalog files at the fetched commit.
    pub async fn snapshot(
        &self,
        repo: &GitRepo,
        settings: &RepoSettings,
    ) -> Result<Snapshot, GitError> {
        let patterns = catalog_file_matcher(&settings.catalog_files)?;
        let (cache, repo, settings) = (self.clone(), repo.clone(), settings.clone());
        run_blocking(move || {
            let (path, slot) = cache.slot(&repo);
            let snapshot = {
                let _guard = slot
                    .lock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                cache.touch(&slot);
                let git = cache.fetch(&path, &repo, &settings)?;
                let commit = git
                    .refname_to_id(TIP_REF)
                    .map_err(|e| failed(&repo, "finding the fetched commit", &e))?;
                let files = list_catalog_files(&git, commit, &patterns)
                    .map_err(|e| failed(&repo, "listing files", &e))?;
                slot.bytes.store(dir_size(&path), Ordering::Relaxed);
                Snapshot {
                    commit: commit.to_string(),
                    files,
                }
            };
            cache.trim(&path);
            Ok(snapshot)
        })
        .await
    }

    /// Reads a file at `file.commit` (fetching when this replica's cache does not have that commit yet),
    /// or at the last fetched commit when none is given.
    pub async fn read(
        &self,
        file: &GitFile,
        settings: &RepoSettings,
        max_bytes: usize,
    ) -> Result<Vec<u8>, GitError> {
        let (cache, file, settings) = (self.clone(), file.clone(), settings.clone());
        run_blocking(move || {
            let (path, slot) = cache.slot(&file.repo);
            let _guard = slot
                .lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            cache.touch(&slot);
            let wanted = match &file.commit {
                Some(c) => Some(
                    Oid::from_str(c)
                        .map_err(|_| GitError::Invalid(format!("{c:?} is not a commit id")))?,
                ),
                None => None,
            };
            let opened = Repository::open_bare(&path).ok();
            let has = |git: &Repository| match wanted {
                Some(oid) => git.find_commit(oid).is_ok(),
                None => git.refname_to_id(TIP_REF).is_ok(),
            };
            let git = match opened {
                Some(git) if has(&git) => git,
                _ => {
                    let git = cache.fetch(&path, &file.repo, &settings)?;
                    slot.bytes.store(dir_size(&path), Ordering::Relaxed);
                    git
                }
            };
            // After a fetch the commit may still be missing (the branch moved on, a shallow fetch only has
            // the tip): then the newest commit is read, and the repository's next refresh catches up.
            let commit = match wanted.filter(|oid| git.find_commit(*oid).is_ok()) {
                Some(oid) => oid,
                None => git
                    .refname_to_id(TIP_REF)
                    .map_err(|e| failed(&file.repo, "finding the fetched commit", &e))?,
            };
            read_blob(&git, commit, &file, max_bytes)
        })
        .await
    }

    /// Everything at `path` (from the repository root, `""` for the root) at the last fetched
    /// commit, fetching first when this replica's cache does not hold the repository: a file gives one
    /// entry with an empty path, a directory every entry below it (paths relative to it, `/`-separated).
    /// At most `max_entries` entries and `max_bytes` bytes of files are read; past either the answer
    /// is [`GitError::Refused`]. Blocking: call it from a blocking thread (a software template's
    /// `fetch:*` actions read their skeletons this way).
    pub fn read_path_blocking(
        &self,
        repo: &GitRepo,
        settings: &RepoSettings,
        path: &str,
        max_entries: usize,
        max_bytes: u64,
    ) -> Result<Vec<(String, RepoEntry)>, GitError> {
        let (dir, slot) = self.slot(repo);
        let _guard = slot
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.touch(&slot);
        let git = match Repository::open_bare(&dir) {
            Ok(git) if git.refname_to_id(TIP_REF).is_ok() => git,
            _ => {
                let git = self.fetch(&dir, repo, settings)?;
                slot.bytes.store(dir_size(&dir), Ordering::Relaxed);
                git
            }
        };
        let commit = git
            .refname_to_id(TIP_REF)
            .map_err(|e| failed(repo, "finding the fetched commit", &e))?;
        let root = git
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| failed(repo, "reading the commit", &e))?;
        let shown = format!("{}#{}:{path}", repo.remote, repo.branch_or_head());
        let mut reading = PathReading {
            git: &git,
            repo,
            shown: &shown,
            max_entries,
            max_bytes,
            bytes: 0,
            entries: Vec::new(),
        };
        if path.is_empty() {
            reading.tree(&root)?;
            return Ok(reading.entries);
        }
        let entry = root.get_path(Path::new(path)).map_err(|_| {
            GitError::NotFound(format!("{shown} does not exist at commit {commit}"))
        })?;
        if entry.kind() == Some(ObjectType::Tree) {
            let tree = git
                .find_tree(entry.id())
                .map_err(|e| failed(repo, "reading a directory", &e))?;
            reading.tree(&tree)?;
        } else {
            reading.entry(String::new(), entry.filemode(), entry.id())?;
        }
        Ok(reading.entries)
    }

    fn slot(&self, repo: &GitRepo) -> (PathBuf, Arc<Slot>) {
        let digest = Sha256::digest(repo.target_string().as_bytes());
        let name: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        let path = self.inner.dir.join(format!("{name}.git"));
        let mut slots = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = slots
            .entry(path.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    lock: Mutex::new(()),
                    last_used: AtomicU64::new(0),
                    bytes: AtomicU64::new(dir_size(&path)),
                })
            })
            .clone();
        (path, slot)
    }

    fn touch(&self, slot: &Slot) {
        let now = self.inner.started.elapsed().as_millis() as u64;
        slot.last_used.store(now, Ordering::Relaxed);
    }

    /// Fetches the followed branch into the cache repository at `path` (created when missing).
    fn fetch(
        &self,
        path: &Path,
        repo: &GitRepo,
        settings: &RepoSettings,
    ) -> Result<Repository, GitError> {
        std::fs::create_dir_all(&self.inner.dir).map_err(|e| {
            GitError::Failed(format!(
                "cannot create the git cache {}: {e} (catalog.git.cache_dir)",
                self.inner.dir.display()
            ))
        })?;
        let git = match Repository::open_bare(path) {
            Ok(git) => git,
            Err(_) => {
                // A half-written directory from a killed process is replaced.
                let _ = std::fs::remove_dir_all(path);
                Repository::init_bare(path)
                    .map_err(|e| failed(repo, "creating its cache repository", &e))?
            }
        };
        let source = match &repo.branch {
            Some(branch) => format!("refs/heads/{branch}"),
            None => "HEAD".to_owned(),
        };
        let refspec = format!("+{source}:{TIP_REF}");
        if let RemoteKind::Network { host, .. } = repo.kind()
            && !settings.configured
        {
            self.check_address(repo, &host)?;
        }
        let deadline = Instant::now() + self.inner.fetch_timeout;
        let max_bytes = self.inner.max_repository_bytes;
        let aborted = std::cell::Cell::new(None::<String>);
        let token = access_token(repo, settings)?;
        let mut credential_attempts = 0;
        let mut callbacks = RemoteCallbacks::new();
        callbacks.credentials(|_url, username_from_url, allowed| {
            // libgit2 asks again after every rejected credential; one try each is enough.
            credential_attempts += 1;
            if credential_attempts > 2 {
                aborted.set(Some(
                    "the server refused the credentials (catalog.git.repositories: token_env, token_file or ssh_key)".into(),
                ));
                return Err(git2::Error::from_str("credentials were rejected"));
            }
            if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT)
                && let Some(token) = &token
            {
                return git2::Cred::userpass_plaintext(&settings.username, token);
            }
            if allowed.contains(git2::CredentialType::SSH_KEY) {
                let user = username_from_url.unwrap_or("git");
                return match &settings.ssh_key {
                    Some(key) => git2::Cred::ssh_key(user, None, key, None),
                    None => git2::Cred::ssh_key_from_agent(user),
                };
            }
            aborted.set(Some(
                "the server asks for credentials and none are configured (catalog.git.repositories: token_env, token_file or ssh_key)".into(),
            ));
            Err(git2::Error::from_str("no credentials configured"))
        });
        callbacks.transfer_progress(|progress| {
            if progress.received_bytes() as u64 > max_bytes {
                aborted.set(Some(format!(
                    "the download passed {} MiB (catalog.git.max_repository_megabytes)",
                    max_bytes / (1024 * 1024)
                )));
                return false;
            }
            if Instant::now() > deadline {
                aborted.set(Some(format!(
                    "the fetch took longer than {:?} (catalog.git.fetch_timeout_seconds)",
                    self.inner.fetch_timeout
                )));
                return false;
            }
            true
        });
        let mut options = FetchOptions::new();
        options.remote_callbacks(callbacks);
        options.download_tags(AutotagOption::None);
        // Redirects to another host would skip the host rules the remote was checked against.
        options.follow_redirects(git2::RemoteRedirect::None);
        if matches!(repo.kind(), RemoteKind::Network { .. }) {
            options.depth(1);
        }
        let result = git
            .remote_anonymous(&repo.remote)
            .and_then(|mut remote| remote.fetch(&[refspec.as_str()], Some(&mut options), None));
        drop(options);
        if let Err(e) = result {
            if let Some(why) = aborted.take() {
                return Err(GitError::Refused(format!(
                    "fetching {} was refused or stopped: {why}",
                    repo.target_string()
                )));
            }
            return Err(fetch_error(repo, &e));
        }
        Ok(git)
    }

    /// Resolves a remote's host and refuses it when an address is not allowed. Runs on the blocking
    /// pool, inside the runtime that spawned the work.
    fn check_address(&self, repo: &GitRepo, host: &str) -> Result<(), GitError> {
        if self.inner.addresses.allows_private() {
            return Ok(());
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| GitError::Failed(format!("cannot resolve {host}: {e}")))?;
        match runtime.block_on(self.inner.addresses.resolve_checked(host)) {
            Ok(_) => Ok(()),
            Err(e) => Err(match net::refusal(&*e) {
                Some(refused) => {
                    GitError::Refused(format!("git remote {}: {refused}", repo.remote))
                }
                None => GitError::Failed(format!(
                    "cannot fetch {}: the host {host} cannot be resolved: {e}",
                    repo.target_string()
                )),
            }),
        }
    }

    /// Deletes least recently used repositories (never `keep`, never one in use) until the cache is
    /// under its cap again.
    fn trim(&self, keep: &Path) {
        let slots: Vec<(PathBuf, Arc<Slot>)> = {
            let slots = self
                .inner
                .slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            slots.iter().map(|(p, s)| (p.clone(), s.clone())).collect()
        };
        let mut total: u64 = slots
            .iter()
            .map(|(_, s)| s.bytes.load(Ordering::Relaxed))
            .sum();
        if total <= self.inner.max_cache_bytes {
            return;
        }
        let mut candidates: Vec<&(PathBuf, Arc<Slot>)> =
            slots.iter().filter(|(p, _)| p != keep).collect();
        candidates.sort_by_key(|(_, s)| s.last_used.load(Ordering::Relaxed));
        for (path, slot) in candidates {
            if total <= self.inner.max_cache_bytes {
                break;
            }
            let Ok(_guard) = slot.lock.try_lock() else {
                continue;
            };
            let bytes = slot.bytes.load(Ordering::Relaxed);
            if std::fs::remove_dir_all(path).is_ok() {
                tracing::info!(path = %path.display(), bytes, "trimmed the git cache");
                slot.bytes.store(0, Ordering::Relaxed);
                total = total.saturating_sub(bytes);
            }
        }
    }

    /// Total size of the cached repositories this process knows of, in bytes.
    pub fn cached_bytes(&self) -> u64 {
        let slots = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots
            .values()
            .map(|s| s.bytes.load(Ordering::Relaxed))
            .sum()
    }
}

/// The https token of a repository, from `token_file` or `token_env`.
fn access_token(repo: &GitRepo, settings: &RepoSettings) -> Result<Option<String>, GitError> {
    if let Some(path) = &settings.token_file {
        let token = std::fs::read_to_string(path).map_err(|e| {
            GitError::Refused(format!(
                "the token for {} is read from {} (token_file), which cannot be read: {e}",
                repo.remote,
                path.display()
            ))
        })?;
        return Ok(Some(token.trim().to_owned()));
    }
    match &settings.token_env {
        Some(name) => match std::env::var(name) {
            Ok(token) => Ok(Some(token.trim().to_owned())),
            Err(_) => Err(GitError::Refused(format!(
                "the token for {} is read from the environment variable {name} (token_env), which is not set",
                repo.remote
            ))),
        },
        None => Ok(None),
    }
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, GitError> + Send + 'static,
) -> Result<T, GitError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(GitError::Failed(format!("git work failed: {e}"))))
}

fn catalog_file_matcher(patterns: &[String]) -> Result<globset::GlobSet, GitError> {
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in patterns {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| {
                GitError::Invalid(format!(
                    "catalog file pattern {pattern:?} is not a valid glob: {e}"
                ))
            })?;
        builder.add(glob);
    }
    builder
        .build()
        .map_err(|e| GitError::Invalid(format!("catalog file patterns: {e}")))
}

/// Every blob matching `patterns` in the commit's tree, with the tree id of its directory.
fn list_catalog_files(
    git: &Repository,
    commit: Oid,
    patterns: &globset::GlobSet,
) -> Result<Vec<(String, String)>, git2::Error> {
    let tree = git.find_commit(commit)?.tree()?;
    let mut dir_versions: HashMap<String, String> = HashMap::new();
    dir_versions.insert(String::new(), tree.id().to_string());
    let mut files = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        let Ok(name) = entry.name() else {
            return git2::TreeWalkResult::Skip;
        };
        let path = format!("{dir}{name}");
        match entry.kind() {
            Some(ObjectType::Tree) => {
                dir_versions.insert(path, entry.id().to_string());
            }
            Some(ObjectType::Blob) if patterns.is_match(&path) => {
                let dir_key = dir.trim_end_matches('/');
                let version = dir_versions.get(dir_key).cloned().unwrap_or_default();
                files.push((path, version));
            }
            _ => {}
        }
        git2::TreeWalkResult::Ok
    })?;
    files.sort();
    Ok(files)
}

fn read_blob(
    git: &Repository,
    commit: Oid,
    file: &GitFile,
    max_bytes: usize,
) -> Result<Vec<u8>, GitError> {
    let tree = git
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(|e| failed(&file.repo, "reading the commit", &e))?;
    let entry = tree.get_path(Path::new(&file.path)).map_err(|_| {
        GitError::NotFound(format!(
            "{} does not exist at commit {commit}",
            file.target_string()
        ))
    })?;
    let blob = entry
        .to_object(git)
        .and_then(|o| o.peel_to_blob())
        .map_err(|_| {
            GitError::Refused(format!("{} is not a regular file", file.target_string()))
        })?;
    if blob.size() > max_bytes {
        return Err(GitError::Refused(format!(
            "{} is {} bytes, more than the {max_bytes} byte limit (catalog.max_file_bytes)",
            file.target_string(),
            blob.size()
        )));
    }
    Ok(blob.content().to_vec())
}

/// What a path in a repository holds, as [`GitCache::read_path_blocking`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoEntry {
    File {
        contents: Vec<u8>,
        executable: bool,
    },
    Dir,
    /// A symbolic link and its target, as written (never followed here).
    Symlink(String),
}

/// One read of a path: the entries so far, within the limits.
struct PathReading<'a> {
    git: &'a Repository,
    repo: &'a GitRepo,
    shown: &'a str,
    max_entries: usize,
    max_bytes: u64,
    bytes: u64,
    entries: Vec<(String, RepoEntry)>,
}

impl PathReading<'_> {
    fn tree(&mut self, tree: &git2::Tree<'_>) -> Result<(), GitError> {
        let mut found = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if let Ok(name) = entry.name() {
                found.push((format!("{dir}{name}"), entry.filemode(), entry.id()));
            } else {
                found.push((String::new(), 0, entry.id()));
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(|e| failed(self.repo, "listing a directory", &e))?;
        for (path, mode, id) in found {
            if path.is_empty() {
                return Err(GitError::Refused(format!(
                    "{}: a name below it is not UTF-8",
                    self.shown
                )));
            }
            self.entry(path, mode, id)?;
        }
        Ok(())
    }

    fn entry(&mut self, path: String, mode: i32, id: Oid) -> Result<(), GitError> {
        if self.entries.len() >= self.max_entries {
            return Err(GitError::Refused(format!(
                "{} holds more than {} files and directories, the most one read takes",
                self.shown, self.max_entries
            )));
        }
        let blob = |reading: &mut Self| -> Result<Vec<u8>, GitError> {
            let blob = reading
                .git
                .find_blob(id)
                .map_err(|e| failed(reading.repo, "reading a file", &e))?;
            reading.bytes = reading.bytes.saturating_add(blob.size() as u64);
            if reading.bytes > reading.max_bytes {
                return Err(GitError::Refused(format!(
                    "{} holds more than {} bytes, the most one read takes",
                    reading.shown, reading.max_bytes
                )));
            }
            Ok(blob.content().to_vec())
        };
        let entry = match mode {
            0o040000 => RepoEntry::Dir,
            0o100644 | 0o100755 => RepoEntry::File {
                contents: blob(self)?,
                executable: mode == 0o100755,
            },
            0o120000 => RepoEntry::Symlink(String::from_utf8_lossy(&blob(self)?).into_owned()),
            _ => {
                return Err(GitError::Refused(format!(
                    "{}/{path} is a submodule, which is not read",
                    self.shown
                )));
            }
        };
        self.entries.push((path, entry));
        Ok(())
    }
}

fn failed(repo: &GitRepo, doing: &str, e: &git2::Error) -> GitError {
    GitError::Failed(format!(
        "git repository {}: {doing}: {}",
        repo.target_string(),
        e.message()
    ))
}

fn fetch_error(repo: &GitRepo, e: &git2::Error) -> GitError {
    let target = repo.target_string();
    let message = e.message();
    match (e.class(), e.code()) {
        (_, git2::ErrorCode::Auth) | (git2::ErrorClass::Ssh, _) => GitError::Refused(format!(
            "fetching {target} was refused: {message} (check token_env or ssh_key in catalog.git.repositories)"
        )),
        (git2::ErrorClass::Reference, _) | (_, git2::ErrorCode::NotFound)
            if repo.branch.is_some() =>
        {
            GitError::NotFound(format!(
                "fetching {target}: branch '{}' not found: {message}",
                repo.branch_or_head()
            ))
        }
        _ if message.contains("not found")
            || message.contains("does not appear to be a git repository")
            || message.contains("could not find repository") =>
        {
            GitError::NotFound(format!("git repository {target} was not found: {message}"))
        }
        _ => GitError::Failed(format!("fetching {target} failed: {message}")),
    }
}

fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository_with_a_file(dir: &Path, name: &str) -> GitRepo {
        let path = dir.join(name);
        let git = Repository::init_bare(&path).expect("init");
        let blob = git.blob(&vec![b'x'; 64 * 1024]).expect("blob");
        let mut tree = git.treebuilder(None).expect("tree");
        tree.insert("catalog-info.yaml", blob, 0o100644)
            .expect("insert");
        let tree = git.find_tree(tree.write().expect("write")).expect("tree");
        let who = git2::Signature::now("t", "t@example.test").expect("signature");
        git.commit(Some("HEAD"), &who, &who, "c", &tree, &[])
            .expect("commit");
        GitRepo::parse(&format!("file://{}", path.display())).expect("remote")
    }

    fn settings() -> RepoSettings {
        RepoSettings {
            catalog_files: vec!["**/catalog-info.yaml".into()],
            token_env: None,
            token_file: None,
            username: "x".into(),
            ssh_key: None,
            web_url: None,
            provider: None,
            configured: true,
        }
    }

    fn strict() -> CheckedResolver {
        CheckedResolver::new(net::Lookup::system(), false)
    }

    #[tokio::test]
    async fn the_cache_is_trimmed_least_recently_used_first() {
        let remotes = tempfile::tempdir().expect("tempdir");
        let cache_dir = tempfile::tempdir().expect("tempdir");
        let config = GitConfig {
            cache_dir: cache_dir.path().to_path_buf(),
            cache_max_megabytes: 0,
            ..GitConfig::default()
        };
        let cache = GitCache::new(&config, strict());
        let first = repository_with_a_file(remotes.path(), "first.git");
        let second = repository_with_a_file(remotes.path(), "second.git");
        let snapshot = cache
            .snapshot(&first, &settings())
            .await
            .expect("first fetch");
        assert_eq!(snapshot.files.len(), 1);
        let (first_path, _) = cache.slot(&first);
        assert!(first_path.exists());
        cache
            .snapshot(&second, &settings())
            .await
            .expect("second fetch");
        let (second_path, _) = cache.slot(&second);
        assert!(
            !first_path.exists(),
            "over the cap, the least recently used repository goes"
        );
        assert!(second_path.exists(), "the one just fetched stays");
        // A trimmed repository is fetched again when it is needed.
        let file = GitFile {
            repo: first.clone(),
            path: "catalog-info.yaml".into(),
            commit: Some(snapshot.commit.clone()),
        };
        let content = cache
            .read(&file, &settings(), 1024 * 1024)
            .await
            .expect("read");
        assert_eq!(content.len(), 64 * 1024);
    }

    #[tokio::test]
    async fn a_fetch_larger_than_the_limit_is_stopped() {
        let remotes = tempfile::tempdir().expect("tempdir");
        let cache_dir = tempfile::tempdir().expect("tempdir");
        let cache = GitCache::new(
            &GitConfig {
                cache_dir: cache_dir.path().to_path_buf(),
                max_repository_megabytes: 0,
                ..GitConfig::default()
            },
            strict(),
        );
        let repo = repository_with_a_file(remotes.path(), "big.git");
        let err = cache
            .snapshot(&repo, &settings())
            .await
            .expect_err("too big");
        assert!(
            err.to_string().contains("max_repository_megabytes"),
            "{err}"
        );
    }
}
