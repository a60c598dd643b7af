//! The git half of every publish action: a scratch repository outside the workspace, one commit of
//! the source directory's files, a push of that commit to a new branch of the remote.
//!
//! libgit2 is blocking: the whole of it runs on tokio's blocking pool.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use git2::{
    Cred, CredentialType, Direction, Oid, PushOptions, RemoteCallbacks, RemoteRedirect, Repository,
    RepositoryInitOptions, Signature,
};

use super::CommitSpec;
use crate::git::{RemoteKind, parse_remote};
use crate::scaffolder::actions::repo_url::Secret;
use crate::scaffolder::actions::{ActionError, LogSink};

/// How a publish authenticates to the remote: a token over https, a key (or the agent) over ssh.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Sent with the token (`x-access-token` for GitHub).
    pub username: String,
    pub token: Option<Secret>,
    pub ssh_key: Option<PathBuf>,
}

impl Credentials {
    /// `text` without the token in it.
    pub fn redact(&self, text: &str) -> String {
        match &self.token {
            Some(token) => token.redact(text, &self.username),
            None => text.to_owned(),
        }
    }
}

/// Whether a missing remote repository is created first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// A `file://` remote that does not exist yet is created as a bare repository (a forge creates
    /// its repositories through its API instead).
    LocalIfMissing,
    /// The remote must exist.
    Never,
}

/// Commits `spec.source` as the root commit of `spec.branch` and pushes it to `remote`; returns the
/// commit id.
pub async fn commit_and_push(
    remote: String,
    spec: CommitSpec,
    credentials: Credentials,
    log: LogSink,
    create: Create,
) -> Result<String, ActionError> {
    tokio::task::spawn_blocking(move || {
        let log = |line: String| {
            // A closed channel only means the task is gone.
            let _ = log.send(credentials.redact(&line));
        };
        publish_blocking(&remote, &spec, &credentials, &log, create)
            .map_err(|e| ActionError::Failed(credentials.redact(&e)))
    })
    .await
    .map_err(|e| ActionError::failed(format!("publishing failed: {e}")))?
}

fn publish_blocking(
    remote: &str,
    spec: &CommitSpec,
    credentials: &Credentials,
    log: &dyn Fn(String),
    create: Create,
) -> Result<String, String> {
    let scratch = Scratch::create()?;
    let repo = init_scratch(&scratch.0, &spec.branch)?;
    let (tree, files) = write_tree_of(&repo, &spec.source, log)?;
    let refname = format!("refs/heads/{}", spec.branch);
    let signature = Signature::now(&spec.author_name, &spec.author_email)
        .map_err(|e| format!("the commit author is not valid: {}", e.message()))?;
    let tree = repo
        .find_tree(tree)
        .map_err(|e| format!("writing the commit: {}", e.message()))?;
    let commit = repo
        .commit(
            Some(&refname),
            &signature,
            &signature,
            &spec.message,
            &tree,
            &[],
        )
        .map_err(|e| format!("writing the commit: {}", e.message()))?;
    log(format!(
        "Initialized repository with {files} files, commit {commit}"
    ));
    if create == Create::LocalIfMissing
        && let Ok(RemoteKind::Local(path)) = parse_remote(remote)
        && !path.exists()
    {
        match create_local(&path, &spec.branch) {
            Ok(()) => log(format!("Created repository {}", path.display())),
            // Another task created it in the meantime: its branches are checked like any others.
            Err(_) if path.exists() => {}
            Err(e) => return Err(e),
        }
    }
    push(&repo, remote, &spec.branch, credentials, log)?;
    log(format!("Pushed to {remote} (branch {})", spec.branch));
    Ok(commit.to_string())
}

/// A directory in the system's temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn create() -> Result<Self, String> {
        let path = std::env::temp_dir().join(format!("atrium-publish-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&path)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| format!("cannot create a scratch repository: {e}"))?;
        Ok(Self(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bare repository whose configuration is empty: nothing from the global, system or XDG git
/// configuration (`url.*.insteadOf`, proxies, extra headers) applies to what happens next.
fn init_scratch(path: &Path, branch: &str) -> Result<Repository, String> {
    let mut options = RepositoryInitOptions::new();
    options
        .bare(true)
        .no_reinit(true)
        .external_template(false)
        .initial_head(branch);
    let repo = Repository::init_opts(path, &options)
        .map_err(|e| format!("cannot create a scratch repository: {}", e.message()))?;
    let empty = git2::Config::new()
        .and_then(|config| repo.set_config(&config))
        .map_err(|e| format!("cannot isolate the scratch repository: {}", e.message()));
    empty.map(|()| repo)
}

/// A directory of the tree being built.
#[derive(Default)]
struct Dir {
    entries: BTreeMap<OsString, Entry>,
}

enum Entry {
    Blob(Oid, i32),
    Dir(Dir),
}

const MODE_FILE: i32 = 0o100_644;
const MODE_EXECUTABLE: i32 = 0o100_755;
const MODE_SYMLINK: i32 = 0o120_000;
const MODE_TREE: i32 = 0o040_000;

/// Names git refuses as symbolic links in a tree (fsck: `gitmodulesSymlink` and its siblings).
const NO_SYMLINK_NAMES: [&str; 4] = [".gitmodules", ".gitattributes", ".gitignore", ".mailmap"];

/// Writes every file under `source` as blobs and trees; returns the root tree and the file count.
/// Regular files keep their executable bit; symbolic links are stored as links (their target is
/// never read); `.git` entries and what the workspace's `.gitignore` files exclude are left out.
fn write_tree_of(
    repo: &Repository,
    source: &Path,
    log: &dyn Fn(String),
) -> Result<(Oid, usize), String> {
    check_ignore_files(source)?;
    let skipped: Arc<Mutex<Vec<PathBuf>>> = Arc::default();
    let skipped_in_walk = skipped.clone();
    let mut walk = ignore::WalkBuilder::new(source);
    walk.standard_filters(false)
        .git_ignore(true)
        // Honoured whether or not a `.git` is present: a planted one must change nothing.
        .require_git(false)
        .parents(false)
        .git_global(false)
        .git_exclude(false)
        .follow_links(false)
        .filter_entry(move |entry| {
            let git = is_git_metadata(entry);
            if git && let Ok(mut skipped) = skipped_in_walk.lock() {
                skipped.push(entry.path().to_path_buf());
            }
            !git
        });
    let mut root = Dir::default();
    let mut files = 0;
    for entry in walk.build() {
        let entry = entry.map_err(|e| format!("cannot read the workspace: {e}"))?;
        if entry.depth() == 0 {
            continue;
        }
        let path = entry.path();
        let relative = path.strip_prefix(source).unwrap_or(path);
        let shown = relative.display();
        let Some(file_type) = entry.file_type() else {
            continue;
        };
        let blob = if file_type.is_dir() {
            continue;
        } else if file_type.is_symlink() {
            if NO_SYMLINK_NAMES.iter().any(|n| entry.file_name() == *n) {
                log(format!(
                    "Skipped {shown}: git does not accept it as a symbolic link"
                ));
                continue;
            }
            let target = std::fs::read_link(path)
                .map_err(|e| format!("cannot read the link {shown}: {e}"))?;
            let oid = repo
                .blob(target.as_os_str().as_bytes())
                .map_err(|e| format!("storing {shown}: {}", e.message()))?;
            Entry::Blob(oid, MODE_SYMLINK)
        } else if file_type.is_file() {
            let metadata = entry
                .metadata()
                .map_err(|e| format!("cannot read {shown}: {e}"))?;
            let content = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
            let oid = repo
                .blob(&content)
                .map_err(|e| format!("storing {shown}: {}", e.message()))?;
            let executable = metadata.permissions().mode() & 0o111 != 0;
            Entry::Blob(
                oid,
                if executable {
                    MODE_EXECUTABLE
                } else {
                    MODE_FILE
                },
            )
        } else {
            log(format!("Skipped {shown}: not a file, directory or link"));
            continue;
        };
        insert(&mut root, relative, blob);
        files += 1;
    }
    if let Ok(skipped) = skipped.lock() {
        for path in skipped.iter() {
            let shown = path.strip_prefix(source).unwrap_or(path).display();
            log(format!(
                "Skipped {shown}: git metadata in the workspace is never published"
            ));
        }
    }
    if files == 0 {
        return Err(
            "there is nothing to publish: the directory holds no files (check sourcePath)".into(),
        );
    }
    let tree = write_dir(repo, &root)?;
    Ok((tree, files))
}

/// A `.git` entry (any case, file or directory) below the source directory: git metadata, which git
/// itself refuses in a tree.
fn is_git_metadata(entry: &ignore::DirEntry) -> bool {
    entry.depth() > 0 && entry.file_name().eq_ignore_ascii_case(".git")
}

/// The walk reads every `.gitignore` it meets, following links: one that is a link (to `/dev/zero`,
/// to a file outside the workspace) or anything but a regular file is refused before it is read.
fn check_ignore_files(source: &Path) -> Result<(), String> {
    let mut walk = ignore::WalkBuilder::new(source);
    walk.standard_filters(false)
        .follow_links(false)
        .filter_entry(|entry| !is_git_metadata(entry));
    for entry in walk.build() {
        let entry = entry.map_err(|e| format!("cannot read the workspace: {e}"))?;
        if entry.file_name() == ".gitignore" && !entry.file_type().is_some_and(|t| t.is_file()) {
            let path = entry.path();
            return Err(format!(
                "{} is not a regular file; publishing reads .gitignore files only when they are",
                path.strip_prefix(source).unwrap_or(path).display()
            ));
        }
    }
    Ok(())
}

fn insert(root: &mut Dir, relative: &Path, blob: Entry) {
    let mut dir = root;
    let parts: Vec<OsString> = relative
        .components()
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let Some((name, parents)) = parts.split_last() else {
        return;
    };
    for part in parents {
        // The walk yields a directory's entries only after the directory itself, never as a blob.
        let Entry::Dir(next) = dir
            .entries
            .entry(part.clone())
            .or_insert_with(|| Entry::Dir(Dir::default()))
        else {
            return;
        };
        dir = next;
    }
    dir.entries.insert(name.clone(), blob);
}

fn write_dir(repo: &Repository, dir: &Dir) -> Result<Oid, String> {
    let mut builder = repo
        .treebuilder(None)
        .map_err(|e| format!("writing a tree: {}", e.message()))?;
    for (name, entry) in &dir.entries {
        let (oid, mode) = match entry {
            Entry::Blob(oid, mode) => (*oid, *mode),
            Entry::Dir(sub) => (write_dir(repo, sub)?, MODE_TREE),
        };
        builder
            .insert(Path::new(name), oid, mode)
            .map_err(|e| format!("{}: {}", Path::new(name).display(), e.message()))?;
    }
    builder
        .write()
        .map_err(|e| format!("writing a tree: {}", e.message()))
}

/// A new bare repository for a `file://` remote, its HEAD on the branch about to be pushed.
fn create_local(path: &Path, branch: &str) -> Result<(), String> {
    let mut options = RepositoryInitOptions::new();
    options
        .bare(true)
        .no_reinit(true)
        .mkpath(true)
        .external_template(false)
        .initial_head(branch);
    Repository::init_opts(path, &options)
        .map(drop)
        .map_err(|e| format!("cannot create {}: {}", path.display(), e.message()))
}

/// Pushes `refs/heads/<branch>` to the remote, after checking on the same connection that the remote
/// does not have that branch yet.
fn push(
    repo: &Repository,
    remote_url: &str,
    branch: &str,
    credentials: &Credentials,
    log: &dyn Fn(String),
) -> Result<(), String> {
    let refname = format!("refs/heads/{branch}");
    let problem: Cell<Option<String>> = Cell::new(None);
    let remote_said: RefCell<Vec<String>> = RefCell::new(Vec::new());
    let rejected: Cell<Option<String>> = Cell::new(None);
    let failure = |doing: &str, e: &git2::Error| -> String {
        let said = remote_said.borrow().join(" ");
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(" (the remote said: {said})")
        };
        if let Some(why) = problem.take() {
            return format!("{doing} {remote_url} was refused: {why}");
        }
        match (e.class(), e.code()) {
            (_, git2::ErrorCode::Auth) | (git2::ErrorClass::Ssh, _) => format!(
                "{doing} {remote_url} was refused: {}{said} (check scaffolder.hosts[].token_env, token_file or ssh_key)",
                e.message()
            ),
            _ => format!("{doing} {remote_url} failed: {}{said}", e.message()),
        }
    };

    let mut remote = repo
        .remote_anonymous(remote_url)
        .map_err(|e| failure("connecting to", &e))?;
    let mut connection = remote
        .connect_auth(
            Direction::Push,
            Some(callbacks(credentials, &problem, &remote_said)),
            None,
        )
        .map_err(|e| failure("connecting to", &e))?;
    let exists = connection
        .list()
        .map_err(|e| failure("listing the branches of", &e))?
        .iter()
        .any(|head| head.name() == refname);
    if exists {
        return Err(format!(
            "{remote_url} already has a branch {branch}: publishing creates a new repository and never overwrites an existing branch"
        ));
    }
    let mut push_callbacks = callbacks(credentials, &problem, &remote_said);
    push_callbacks.push_update_reference(|name, status| {
        if let Some(status) = status {
            rejected.set(Some(format!("{name}: {status}")));
        }
        Ok(())
    });
    let mut options = PushOptions::new();
    options.remote_callbacks(push_callbacks);
    // A redirect to another host would take the credentials with it.
    options.follow_redirects(RemoteRedirect::None);
    // Not forced: should the branch appear after the check, the remote refuses the update.
    let refspec = format!("{refname}:{refname}");
    let result = connection
        .remote()
        .push(&[refspec.as_str()], Some(&mut options));
    drop(options);
    drop(connection);
    result.map_err(|e| failure("pushing to", &e))?;
    for line in remote_said.borrow().iter() {
        log(format!("remote: {line}"));
    }
    if let Some(why) = rejected.take() {
        let said = remote_said.borrow().join(" ");
        return Err(format!(
            "{remote_url} refused the push of {why}{}",
            if said.is_empty() {
                String::new()
            } else {
                format!(" (the remote said: {said})")
            }
        ));
    }
    Ok(())
}

/// Credentials from memory, at most twice per connection; and what the remote prints, kept for the
/// log and error messages (bounded).
fn callbacks<'a>(
    credentials: &'a Credentials,
    problem: &'a Cell<Option<String>>,
    remote_said: &'a RefCell<Vec<String>>,
) -> RemoteCallbacks<'a> {
    let mut attempts = 0;
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(move |_url, username_from_url, allowed| {
        // libgit2 asks again after every rejected credential; one retry is enough.
        attempts += 1;
        if attempts > 2 {
            problem.set(Some(
                "the server refused the credentials (scaffolder.hosts[].token_env, token_file or ssh_key)"
                    .into(),
            ));
            return Err(git2::Error::from_str("credentials were rejected"));
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
            && let Some(token) = &credentials.token
        {
            return Cred::userpass_plaintext(&credentials.username, token.expose());
        }
        let ssh_user = username_from_url.unwrap_or("git");
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(ssh_user);
        }
        if allowed.contains(CredentialType::SSH_KEY) {
            return match &credentials.ssh_key {
                Some(key) => Cred::ssh_key(ssh_user, None, key, None),
                None => Cred::ssh_key_from_agent(ssh_user),
            };
        }
        problem.set(Some(
            "the server asks for credentials and none are configured (scaffolder.hosts[].token_env or token_file)"
                .into(),
        ));
        Err(git2::Error::from_str("no credentials configured"))
    });
    callbacks.sideband_progress(move |data| {
        let mut said = remote_said.borrow_mut();
        if said.len() < 50 {
            for line in String::from_utf8_lossy(data).lines() {
                let line = line.trim();
                if !line.is_empty() {
                    said.push(line.chars().take(500).collect());
                }
            }
        }
        true
    });
    callbacks
}
