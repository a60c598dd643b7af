//! Where a template's files come from: the directory of its catalog file, or (for a dry run) the
//! `directoryContents` sent with the request.
//!
//! `fetch:*` actions name what they want with a `url` input relative to the template's directory
//! (`./skeleton`, `../shared/ci.yaml`). What may be read:
//!
//! - [`TemplateSource::Dir`]: anything inside the catalog file root (`catalog.file_roots`) that holds
//!   the template — the same rule the catalog applies to `file` locations, so a template reads nothing
//!   the catalog could not. Symbolic links are resolved before that check for the directory or file
//!   named, and never followed inside a fetched tree: a link there is kept as a link when it points
//!   inside the tree, and refused otherwise. (Backstage's own file branch is stricter, the template's
//!   directory only; its URL branch allows `../`, which templates moved from git hosts rely on.)
//! - [`TemplateSource::Inline`]: the dry run's files; `..` may not leave them.
//! - Absolute URLs (`https://github.com/...`) are not fetched as trees: there is no archive reader
//!   behind the catalog's checked [`Reader`](crate::catalog::source::Reader), so the error says to put
//!   the skeleton beside the template. (`fetch:plain:file` and `fetch:template:file` read single files
//!   from absolute URLs through that `Reader`, with its allowlist and limits.)
//! - [`TemplateSource::Git`]: a template whose catalog file is in a git repository (a `git` location):
//!   its files are read from the catalog's git cache at the last fetched commit, anywhere in the same
//!   repository (`../shared/skeleton` too, as Backstage's URL reader allows), never outside it. Links
//!   are kept as links when they point inside the fetched tree, and refused otherwise, as for `Dir`.
//! - A template registered from a git host's file URL (GitHub, GitLab or Gitea, web `blob` or raw) is
//!   read as [`TemplateSource::Git`] from that repository, which the task fetches first.
//! - [`TemplateSource::Remote`]: templates at any other URL. Their files cannot be read (a plain web
//!   server cannot list a directory); the error says so.
//!
//! Reading is blocking file I/O: call these from a blocking thread. Everything read is bounded by
//! [`SourceLimits`]. The template's directory is assumed not to change while a task reads it (it is
//! the catalog's checkout, not something a task writes).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::git::GitFile;
use crate::git::RepoSettings;
use crate::git::cache::{GitCache, GitError, RepoEntry};

/// The base that a template's relative `url` inputs (`./skeleton`) are read from.
#[derive(Debug, Clone)]
pub enum TemplateSource {
    /// The directory holding the template's catalog file (a `file` location under a file root).
    Dir(PathBuf),
    /// A dry run's `directoryContents`: relative path → bytes.
    Inline(BTreeMap<String, Vec<u8>>),
    /// A template whose catalog file is in a git repository (boxed: it is the largest by far).
    Git(Box<GitTemplate>),
    /// A template whose catalog file is at a URL, as the location names it. Its files cannot be
    /// fetched.
    Remote(String),
}

/// A template in a git repository: its catalog file, and the catalog's git cache and the repository's
/// settings to read the rest with.
#[derive(Clone)]
pub struct GitTemplate {
    file: GitFile,
    cache: GitCache,
    settings: RepoSettings,
}

impl std::fmt::Debug for GitTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GitTemplate({})", self.file.target_string())
    }
}

impl GitTemplate {
    pub fn new(file: GitFile, cache: GitCache, settings: RepoSettings) -> Self {
        Self {
            file,
            cache,
            settings,
        }
    }

    /// What `url` (relative to the template's directory) names in the repository.
    fn read(
        &self,
        url: &str,
        limits: &SourceLimits,
    ) -> Result<Vec<(String, RepoEntry)>, SourceError> {
        let target = self.file.join(url).map_err(|e| {
            SourceError::NotAllowed(format!(
                "{url:?} leads outside the template's repository: {e}"
            ))
        })?;
        self.cache
            .read_path_blocking(
                &self.file.repo,
                &self.settings,
                &target.path,
                limits.max_entries,
                limits.max_bytes,
            )
            .map_err(|e| match e {
                GitError::NotFound(m) => SourceError::NotFound(format!("{url}: {m}")),
                GitError::Refused(m) => SourceError::TooLarge(format!("{url}: {m}")),
                GitError::Invalid(m) | GitError::Failed(m) => {
                    SourceError::Failed(format!("{url}: {m}"))
                }
            })
    }

    fn read_tree(&self, url: &str, limits: &SourceLimits) -> Result<SourceTree, SourceError> {
        let mut tree = SourceTree::default();
        for (relative, entry) in self.read(url, limits)? {
            if relative.is_empty() {
                return Err(SourceError::NotFound(format!(
                    "{url} is not a directory (use fetch:plain:file or fetch:template:file for a single file)"
                )));
            }
            let entry = match entry {
                RepoEntry::Dir => SourceEntry::Dir,
                RepoEntry::File {
                    contents,
                    executable,
                } => SourceEntry::File(SourceFile {
                    contents,
                    executable,
                }),
                RepoEntry::Symlink(target) => {
                    let inside = link_inside(&relative, Path::new(&target)).ok_or_else(|| {
                        SourceError::NotAllowed(format!(
                            "{} is a symbolic link to {target}, outside the fetched directory; links in a skeleton may only point inside it",
                            join_shown(url, &relative)
                        ))
                    })?;
                    SourceEntry::Symlink(inside)
                }
            };
            tree.entries.insert(relative, entry);
        }
        Ok(tree)
    }

    fn read_file(&self, url: &str, limits: &SourceLimits) -> Result<SourceFile, SourceError> {
        match self.read(url, limits)?.pop() {
            Some((
                relative,
                RepoEntry::File {
                    contents,
                    executable,
                },
            )) if relative.is_empty() => Ok(SourceFile {
                contents,
                executable,
            }),
            _ => Err(SourceError::NotFound(format!("{url} is not a file"))),
        }
    }
}

/// Bounds on what one fetch reads.
#[derive(Debug, Clone)]
pub struct SourceLimits {
    /// Total bytes of all files. Default 50 MiB.
    pub max_bytes: u64,
    /// Files, directories and links. Default 10 000.
    pub max_entries: usize,
}

impl Default for SourceLimits {
    fn default() -> Self {
        Self {
            max_bytes: 50 * 1024 * 1024,
            max_entries: 10_000,
        }
    }
}

/// One file read from a template source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub contents: Vec<u8>,
    /// Any execute bit was set (a dry run's files never are).
    pub executable: bool,
}

/// One entry of a fetched tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEntry {
    Dir,
    File(SourceFile),
    /// A relative link that stays inside the tree: its target as written.
    Symlink(String),
}

/// A fetched directory: `/`-separated paths relative to it (no trailing `/`) → entries, sorted, so a
/// directory always comes before what is in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceTree {
    pub entries: BTreeMap<String, SourceEntry>,
}

/// Why a template's files could not be read. Messages name the `url` and what to change.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The url names something the template may not read: absolute, outside its root, a link out.
    #[error("{0}")]
    NotAllowed(String),
    #[error("{0}")]
    NotFound(String),
    /// More files or bytes than [`SourceLimits`] allow.
    #[error("{0}")]
    TooLarge(String),
    /// The template's location or the url's kind cannot be fetched from.
    #[error("{0}")]
    Unsupported(String),
    /// Reading failed (I/O).
    #[error("{0}")]
    Failed(String),
}

/// Whether `url` is an absolute URL (`https://...`, `file:...`) rather than a path: what Backstage
/// decides with `new URL(url)`.
pub fn is_absolute_url(url: &str) -> bool {
    url::Url::parse(url).is_ok()
}

fn absolute_url_refused(url: &str) -> SourceError {
    SourceError::Unsupported(format!(
        "{url}: fetching from absolute URLs is not supported; put the skeleton beside the template"
    ))
}

impl TemplateSource {
    /// Reads the directory `url` names, relative to the template's directory. `roots` are the
    /// catalog's file roots (`catalog.file_roots`), which bound what a [`TemplateSource::Dir`] reads.
    pub fn read_tree(
        &self,
        url: &str,
        roots: &[PathBuf],
        limits: &SourceLimits,
    ) -> Result<SourceTree, SourceError> {
        check_url(url)?;
        match self {
            Self::Dir(dir) => {
                let path = dir_target(dir, url, roots)?;
                if !path.is_dir() {
                    return Err(SourceError::NotFound(format!(
                        "{url} is not a directory (use fetch:plain:file or fetch:template:file for a single file)"
                    )));
                }
                read_dir_tree(&path, url, limits)
            }
            Self::Inline(files) => inline_tree(files, url, limits),
            Self::Git(template) => template.read_tree(url, limits),
            Self::Remote(location) => Err(remote_unsupported(location)),
        }
    }

    /// Reads the single file `url` names, relative to the template's directory.
    pub fn read_file(
        &self,
        url: &str,
        roots: &[PathBuf],
        limits: &SourceLimits,
    ) -> Result<SourceFile, SourceError> {
        check_url(url)?;
        match self {
            Self::Dir(dir) => {
                let path = dir_target(dir, url, roots)?;
                let metadata = std::fs::metadata(&path)
                    .map_err(|e| SourceError::Failed(format!("{url}: cannot be read: {e}")))?;
                if !metadata.is_file() {
                    return Err(SourceError::NotFound(format!("{url} is not a file")));
                }
                let mut budget = Budget::new(limits, url);
                budget.count()?;
                let contents = budget.read(&path, metadata.len(), url)?;
                Ok(SourceFile {
                    contents,
                    executable: crate::scaffolder::workspace::is_executable(&metadata),
                })
            }
            Self::Inline(files) => {
                let wanted = url_parts(url, "the dry run's files")?;
                let mut budget = Budget::new(limits, url);
                for (key, contents) in files {
                    if key_parts(key)? == wanted {
                        budget.count()?;
                        budget.add(contents.len() as u64)?;
                        return Ok(SourceFile {
                            contents: contents.clone(),
                            executable: false,
                        });
                    }
                }
                Err(SourceError::NotFound(format!(
                    "{url} is not among the dry run's files"
                )))
            }
            Self::Git(template) => template.read_file(url, limits),
            Self::Remote(location) => Err(remote_unsupported(location)),
        }
    }
}

fn check_url(url: &str) -> Result<(), SourceError> {
    if url.contains('\0') {
        return Err(SourceError::NotAllowed(format!(
            "url {url:?} contains a NUL character"
        )));
    }
    if is_absolute_url(url) {
        return Err(absolute_url_refused(url));
    }
    Ok(())
}

fn remote_unsupported(location: &str) -> SourceError {
    SourceError::Unsupported(format!(
        "the template comes from {location}; a template's files are read only for templates registered from a file or git location, or from a git host's file URL (GitHub, GitLab or Gitea blob and raw URLs), or a dry run's contents"
    ))
}

/// The path `url` names for a template in `dir`, checked to be inside the file root holding `dir`
/// (on its words, then again with links resolved).
fn dir_target(dir: &Path, url: &str, roots: &[PathBuf]) -> Result<PathBuf, SourceError> {
    if Path::new(url).has_root() {
        return Err(SourceError::NotAllowed(format!(
            "{url:?} is an absolute path; name the skeleton relative to the template's directory (./skeleton)"
        )));
    }
    let dir = std::fs::canonicalize(dir).map_err(|e| {
        SourceError::Failed(format!(
            "the template's directory {} cannot be read: {e}",
            dir.display()
        ))
    })?;
    let root = roots
        .iter()
        .map(|root| std::fs::canonicalize(root).unwrap_or_else(|_| normalize(root)))
        .filter(|root| dir.starts_with(root))
        .max_by_key(|root| root.components().count())
        .ok_or_else(|| {
            SourceError::NotAllowed(format!(
                "the template's directory {} is outside catalog.file_roots; its files are not read",
                dir.display()
            ))
        })?;
    let outside = || {
        SourceError::NotAllowed(format!(
            "{url:?} leads outside {} (the catalog file root holding the template)",
            root.display()
        ))
    };
    let lexical = normalize(&dir.join(url));
    if !lexical.starts_with(&root) {
        return Err(outside());
    }
    let real = match std::fs::canonicalize(&lexical) {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SourceError::NotFound(format!(
                "{url} does not exist beside the template ({})",
                lexical.display()
            )));
        }
        Err(e) => return Err(SourceError::Failed(format!("{url}: cannot be read: {e}"))),
    };
    if real.starts_with(&root) {
        Ok(real)
    } else {
        Err(outside())
    }
}

/// Counts entries and bytes against the limits.
struct Budget<'a> {
    limits: &'a SourceLimits,
    url: &'a str,
    entries: usize,
    bytes: u64,
}

impl<'a> Budget<'a> {
    fn new(limits: &'a SourceLimits, url: &'a str) -> Self {
        Self {
            limits,
            url,
            entries: 0,
            bytes: 0,
        }
    }

    fn count(&mut self) -> Result<(), SourceError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(SourceError::TooLarge(format!(
                "{} holds more than {} files and directories, the most one fetch reads",
                self.url, self.limits.max_entries
            )));
        }
        Ok(())
    }

    fn add(&mut self, bytes: u64) -> Result<(), SourceError> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.limits.max_bytes {
            return Err(SourceError::TooLarge(format!(
                "{} holds more than {} bytes, the most one fetch reads",
                self.url, self.limits.max_bytes
            )));
        }
        Ok(())
    }

    /// Reads a file of `size` bytes (as listed), never more than the budget left plus one byte.
    fn read(&mut self, path: &Path, size: u64, shown: &str) -> Result<Vec<u8>, SourceError> {
        self.add(size)?;
        let failed =
            |e: std::io::Error| SourceError::Failed(format!("{shown}: cannot be read: {e}"));
        let file = std::fs::File::open(path).map_err(failed)?;
        let left = self.limits.max_bytes - (self.bytes - size);
        let mut contents = Vec::with_capacity(size as usize);
        file.take(left + 1)
            .read_to_end(&mut contents)
            .map_err(failed)?;
        // The file may have grown since it was listed.
        self.add((contents.len() as u64).saturating_sub(size))?;
        Ok(contents)
    }
}

/// Reads the tree under the real directory `base`, never following a link.
fn read_dir_tree(base: &Path, url: &str, limits: &SourceLimits) -> Result<SourceTree, SourceError> {
    let mut budget = Budget::new(limits, url);
    let mut tree = SourceTree::default();
    let mut pending = vec![(base.to_path_buf(), String::new())];
    let failed = |shown: &str, e: std::io::Error| {
        SourceError::Failed(format!("{shown}: cannot be read: {e}"))
    };
    while let Some((dir, prefix)) = pending.pop() {
        let listing = std::fs::read_dir(&dir).map_err(|e| failed(url, e))?;
        for entry in listing {
            let entry = entry.map_err(|e| failed(url, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(SourceError::Failed(format!(
                    "{url}: the name {name:?} is not UTF-8"
                )));
            };
            let relative = format!("{prefix}{name}");
            let shown = join_shown(url, &relative);
            budget.count()?;
            // `file_type` does not follow links.
            let file_type = entry.file_type().map_err(|e| failed(&shown, e))?;
            if file_type.is_symlink() {
                let target = std::fs::read_link(entry.path()).map_err(|e| failed(&shown, e))?;
                let target = link_inside(&relative, &target).ok_or_else(|| {
                    SourceError::NotAllowed(format!(
                        "{shown} is a symbolic link to {}, outside the fetched directory; links in a skeleton may only point inside it",
                        target.display()
                    ))
                })?;
                tree.entries.insert(relative, SourceEntry::Symlink(target));
            } else if file_type.is_dir() {
                tree.entries.insert(relative.clone(), SourceEntry::Dir);
                pending.push((entry.path(), format!("{relative}/")));
            } else if file_type.is_file() {
                let metadata = entry.metadata().map_err(|e| failed(&shown, e))?;
                let contents = budget.read(&entry.path(), metadata.len(), &shown)?;
                tree.entries.insert(
                    relative,
                    SourceEntry::File(SourceFile {
                        contents,
                        executable: crate::scaffolder::workspace::is_executable(&metadata),
                    }),
                );
            } else {
                return Err(SourceError::NotAllowed(format!(
                    "{shown} is neither a file, a directory nor a symbolic link"
                )));
            }
        }
    }
    Ok(tree)
}

/// A link's target as text when it is relative and, taken from where the link is in the tree, stays
/// inside the tree (on its words: nothing in a source tree is followed).
fn link_inside(relative: &str, target: &Path) -> Option<String> {
    if target.has_root() {
        return None;
    }
    let mut depth: Vec<&str> = relative.split('/').collect();
    depth.pop();
    let mut depth = depth.len();
    for component in target.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => depth = depth.checked_sub(1)?,
            Component::Normal(_) => depth += 1,
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    let text = target.to_str()?;
    (!text.is_empty()).then(|| text.to_owned())
}

/// The tree of a dry run's files under `url`.
fn inline_tree(
    files: &BTreeMap<String, Vec<u8>>,
    url: &str,
    limits: &SourceLimits,
) -> Result<SourceTree, SourceError> {
    let prefix = url_parts(url, "the dry run's files")?;
    let mut budget = Budget::new(limits, url);
    let mut tree = SourceTree::default();
    for (key, contents) in files {
        let parts = key_parts(key)?;
        if parts == prefix {
            return Err(SourceError::NotFound(format!(
                "{url} is a file, not a directory (use fetch:plain:file or fetch:template:file for a single file)"
            )));
        }
        let Some(rest) = parts.strip_prefix(prefix.as_slice()) else {
            continue;
        };
        for depth in 1..rest.len() {
            let dir = rest[..depth].join("/");
            if let std::collections::btree_map::Entry::Vacant(slot) = tree.entries.entry(dir) {
                budget.count()?;
                slot.insert(SourceEntry::Dir);
            }
        }
        budget.count()?;
        budget.add(contents.len() as u64)?;
        tree.entries.insert(
            rest.join("/"),
            SourceEntry::File(SourceFile {
                contents: contents.clone(),
                executable: false,
            }),
        );
    }
    if tree.entries.is_empty() {
        return Err(SourceError::NotFound(format!(
            "{url} is not among the dry run's files"
        )));
    }
    Ok(tree)
}

/// The plain names of a relative `url`; `..` may not climb above the template's directory.
fn url_parts(url: &str, base: &str) -> Result<Vec<String>, SourceError> {
    relative_parts(url).ok_or_else(|| {
        SourceError::NotAllowed(format!(
            "{url:?} leads outside {base}; name the skeleton relative to the template's directory"
        ))
    })
}

fn key_parts(key: &str) -> Result<Vec<String>, SourceError> {
    match relative_parts(key) {
        Some(parts) if !parts.is_empty() => Ok(parts),
        _ => Err(SourceError::NotAllowed(format!(
            "the dry run's file {key:?} is not a relative path inside the template's directory"
        ))),
    }
}

fn relative_parts(path: &str) -> Option<Vec<String>> {
    let path = Path::new(path);
    if path.has_root() {
        return None;
    }
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(name) => parts.push(name.to_str()?.to_owned()),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts)
}

/// `url` and a path inside it, for messages: `./skeleton` + `a/b` → `skeleton/a/b`.
pub fn join_shown(url: &str, relative: &str) -> String {
    let base = url.trim_start_matches("./").trim_end_matches('/');
    match base {
        "" | "." => relative.to_owned(),
        base => format!("{base}/{relative}"),
    }
}

/// Removes `.` and `..` on the words of a path.
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

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
        root: PathBuf,
        template: PathBuf,
    }

    /// `<tmp>/root/templates/demo` is the template's directory, `<tmp>/root` the file root.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(dir.path())
            .expect("canonical")
            .join("root");
        let template = root.join("templates/demo");
        std::fs::create_dir_all(template.join("skeleton/src")).expect("mkdir");
        std::fs::write(
            template.join("skeleton/README.md"),
            "# ${{ values.name }}\n",
        )
        .expect("write");
        std::fs::write(template.join("skeleton/src/run.sh"), "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(
            template.join("skeleton/src/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        std::fs::create_dir_all(root.join("templates/shared")).expect("mkdir");
        std::fs::write(root.join("templates/shared/ci.yaml"), "ci").expect("write");
        std::fs::write(dir.path().join("secret"), "secret").expect("write");
        Fixture {
            root,
            template,
            dir,
        }
    }

    #[test]
    fn a_tree_is_read_with_modes_and_directories() {
        let f = fixture();
        let source = TemplateSource::Dir(f.template.clone());
        let tree = source
            .read_tree(
                "./skeleton",
                std::slice::from_ref(&f.root),
                &SourceLimits::default(),
            )
            .expect("tree");
        let paths: Vec<&str> = tree.entries.keys().map(String::as_str).collect();
        assert_eq!(paths, ["README.md", "src", "src/run.sh"]);
        assert_eq!(
            tree.entries["src/run.sh"],
            SourceEntry::File(SourceFile {
                contents: b"#!/bin/sh\n".to_vec(),
                executable: true
            })
        );
        let Some(SourceEntry::File(readme)) = tree.entries.get("README.md") else {
            panic!("README.md");
        };
        assert!(!readme.executable);
    }

    #[test]
    fn urls_stay_inside_the_file_root() {
        let f = fixture();
        let source = TemplateSource::Dir(f.template.clone());
        let roots = [f.root.clone()];
        let limits = SourceLimits::default();
        let shared = source
            .read_file("../shared/ci.yaml", &roots, &limits)
            .expect("beside, under the root");
        assert_eq!(shared.contents, b"ci");
        for url in ["../../../secret", "/etc", "/etc/passwd", "../../.."] {
            let error = source.read_tree(url, &roots, &limits).expect_err(url);
            assert!(
                matches!(error, SourceError::NotAllowed(_)),
                "{url}: {error}"
            );
        }
        let error = source
            .read_file("https://example.com/x", &roots, &limits)
            .expect_err("absolute URL");
        assert!(
            error
                .to_string()
                .contains("fetching from absolute URLs is not supported"),
            "{error}"
        );
        let error = source
            .read_tree("./skeleton", &[f.dir.path().join("elsewhere")], &limits)
            .expect_err("template outside the roots");
        assert!(error.to_string().contains("catalog.file_roots"), "{error}");
    }

    #[test]
    fn links_in_a_tree_are_kept_inside_and_refused_outside() {
        let f = fixture();
        let skeleton = f.template.join("skeleton");
        symlink("README.md", skeleton.join("readme-link")).expect("link");
        let source = TemplateSource::Dir(f.template.clone());
        let roots = [f.root.clone()];
        let tree = source
            .read_tree("skeleton", &roots, &SourceLimits::default())
            .expect("tree");
        assert_eq!(
            tree.entries["readme-link"],
            SourceEntry::Symlink("README.md".into())
        );
        symlink(f.dir.path().join("secret"), skeleton.join("src/secret")).expect("link");
        let error = source
            .read_tree("skeleton", &roots, &SourceLimits::default())
            .expect_err("link out");
        assert!(
            error
                .to_string()
                .contains("skeleton/src/secret is a symbolic link"),
            "{error}"
        );
        std::fs::remove_file(skeleton.join("src/secret")).expect("rm");
        symlink("../../secret", skeleton.join("src/up")).expect("link");
        assert!(
            source
                .read_tree("skeleton", &roots, &SourceLimits::default())
                .is_err()
        );
        // A skeleton directory that is itself a link out of the root is refused.
        std::fs::remove_file(skeleton.join("src/up")).expect("rm");
        symlink(f.dir.path(), f.template.join("escape")).expect("link");
        let error = source
            .read_tree("escape", &roots, &SourceLimits::default())
            .expect_err("escape");
        assert!(matches!(error, SourceError::NotAllowed(_)), "{error}");
    }

    #[test]
    fn limits_bound_files_and_bytes() {
        let f = fixture();
        let source = TemplateSource::Dir(f.template.clone());
        let roots = [f.root.clone()];
        let few = SourceLimits {
            max_bytes: 1024,
            max_entries: 2,
        };
        let error = source
            .read_tree("skeleton", &roots, &few)
            .expect_err("entries");
        assert!(error.to_string().contains("more than 2 files"), "{error}");
        let small = SourceLimits {
            max_bytes: 5,
            max_entries: 100,
        };
        let error = source
            .read_tree("skeleton", &roots, &small)
            .expect_err("bytes");
        assert!(error.to_string().contains("more than 5 bytes"), "{error}");
    }

    #[test]
    fn inline_files_are_a_tree_too() {
        let files = BTreeMap::from([
            ("template.yaml".to_owned(), b"t".to_vec()),
            ("skeleton/a/b.txt".to_owned(), b"b".to_vec()),
            ("./skeleton/c.txt".to_owned(), b"c".to_vec()),
        ]);
        let source = TemplateSource::Inline(files);
        let limits = SourceLimits::default();
        let tree = source.read_tree("./skeleton", &[], &limits).expect("tree");
        let paths: Vec<&str> = tree.entries.keys().map(String::as_str).collect();
        assert_eq!(paths, ["a", "a/b.txt", "c.txt"]);
        assert_eq!(
            source
                .read_file("skeleton/c.txt", &[], &limits)
                .expect("file")
                .contents,
            b"c"
        );
        assert!(matches!(
            source.read_tree("../x", &[], &limits),
            Err(SourceError::NotAllowed(_))
        ));
        assert!(matches!(
            source.read_tree("missing", &[], &limits),
            Err(SourceError::NotFound(_))
        ));
    }

    #[test]
    fn remote_templates_say_what_is_not_supported() {
        let source = TemplateSource::Remote("git https://example.com/acme/templates.git".into());
        let error = source
            .read_tree("./skeleton", &[], &SourceLimits::default())
            .expect_err("remote");
        assert!(matches!(error, SourceError::Unsupported(_)), "{error}");
        assert!(error.to_string().contains("example.com"), "{error}");
    }
}
