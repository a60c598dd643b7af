//! A task's workspace: one directory per task; every path an action names resolves inside it.
//!
//! Paths come from templates (`targetPath`, rendered file names, `fs:delete` globs), so each one is
//! checked where it is used, never once up front:
//!
//! - it must be relative, and `..` may not climb above the workspace root (checked on the words of
//!   the path, as Backstage's `resolveSafeChildPath` does);
//! - every component that exists is then looked at on disk: a symbolic link is followed hop by hop
//!   (chains included, at most [`MAX_SYMLINK_HOPS`]), and each hop must stay inside the root — a
//!   dangling link too, since writing through it would create its target;
//! - writes never go through a symbolic link: a file is written to a fresh temporary file beside its
//!   destination (`O_CREAT|O_EXCL`, which does not follow links) and renamed over it, and a
//!   destination that is itself a link is refused.
//!
//! What is and is not guaranteed (time of check against time of use): the check and the use are two
//! system calls apart, so a process that can change the workspace between them could swap a
//! directory for a link. A task's workspace is written only by that task, and a task runs one step at
//! a time, so within Atrium nothing else moves under a check; the links a template brings are checked
//! when they are created and again whenever a path passes through them. What is not defended
//! against is another local user or process with write access to the workspace directory racing the
//! task — keep `scaffolder.workspace_dir` private to the server's user.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// How many symbolic links one path may pass through before it is refused (Linux's own limit).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// The most entries [`Workspace::entries`] lists, so a runaway template cannot exhaust memory.
pub const MAX_LISTED_ENTRIES: usize = 100_000;

/// A path given by a template or an action input left the workspace, or could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("path {path:?} {reason}")]
    Outside { path: String, reason: &'static str },
    #[error("{path:?}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl PathError {
    fn outside(path: &str, reason: &'static str) -> Self {
        Self::Outside {
            path: path.to_owned(),
            reason,
        }
    }

    fn io(path: &str, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn other(path: &str, kind: std::io::ErrorKind, message: &str) -> Self {
        Self::io(path, std::io::Error::new(kind, message.to_owned()))
    }
}

/// What sits at a workspace path (the entry itself: a link is a link, not what it points to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// One entry found by [`Workspace::entries`]: its `/`-separated path relative to the listed directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
}

/// A task's directory. Dropping it does not remove it; the runner calls [`Workspace::remove`].
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// Uses `root` (created if missing) as a workspace.
    pub fn create(root: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        Ok(Self {
            root: std::fs::canonicalize(root)?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `relative` is on disk: the entry itself (a final symbolic link is not followed), with every
    /// directory above it resolved. Refused when the path is absolute, climbs above the root, or passes
    /// through (or is) a symbolic link that leads outside, dangling or not. `""`, `.` and `./` are the
    /// root itself.
    pub fn resolve(&self, relative: &str) -> Result<PathBuf, PathError> {
        let parts = lexical_parts(relative)?;
        let mut hops = 0;
        self.walk(&self.root.clone(), &parts, false, &mut hops, relative)
    }

    /// What is at `relative`, `None` when nothing is.
    pub fn kind(&self, relative: &str) -> Result<Option<EntryKind>, PathError> {
        let path = self.resolve(relative)?;
        kind_of(&path).map_err(|e| PathError::io(relative, e))
    }

    /// Creates the directory `relative` and its parents (an existing one is fine).
    pub fn create_dir(&self, relative: &str) -> Result<PathBuf, PathError> {
        let parts = lexical_parts(relative)?;
        let mut hops = 0;
        let path = self.walk(&self.root.clone(), &parts, true, &mut hops, relative)?;
        std::fs::create_dir_all(&path).map_err(|e| PathError::io(relative, e))?;
        // Look again: what was created must still resolve to a directory inside.
        let mut hops = 0;
        let path = self.walk(&self.root.clone(), &parts, true, &mut hops, relative)?;
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            return Err(PathError::other(
                relative,
                std::io::ErrorKind::NotADirectory,
                "is not a directory",
            ));
        }
        Ok(path)
    }

    /// Writes `contents` to the file `relative` (parent directories created), replacing a file already
    /// there. Mode 0755 when `executable`, 0644 otherwise. Refused when `relative` is a directory or a
    /// symbolic link: nothing is ever written through a link.
    pub fn write_file(
        &self,
        relative: &str,
        contents: &[u8],
        executable: bool,
    ) -> Result<PathBuf, PathError> {
        let (parent, name) = self.prepare_parent(relative)?;
        let path = parent.join(&name);
        match kind_of(&path).map_err(|e| PathError::io(relative, e))? {
            Some(EntryKind::Symlink) => {
                return Err(PathError::outside(
                    relative,
                    "is a symbolic link; files are never written through one",
                ));
            }
            Some(EntryKind::Dir) => {
                return Err(PathError::other(
                    relative,
                    std::io::ErrorKind::IsADirectory,
                    "is a directory, not a file",
                ));
            }
            Some(EntryKind::File) | None => {}
        }
        // A fresh file (O_EXCL never follows a link) renamed over the destination: the rename replaces
        // whatever entry is there and never writes into what it might point to.
        let temporary = parent.join(format!(".atrium-write-{}", uuid::Uuid::new_v4().simple()));
        let written = write_new(&temporary, contents, executable)
            .and_then(|()| std::fs::rename(&temporary, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(PathError::io(relative, e));
        }
        Ok(path)
    }

    /// Creates the symbolic link `relative` → `target` (parent directories created), replacing a file
    /// or link already there. `target` must be relative and, followed from where the link is, stay
    /// inside the workspace (it may dangle).
    pub fn create_symlink(&self, relative: &str, target: &str) -> Result<PathBuf, PathError> {
        if target.is_empty() || target.contains('\0') || Path::new(target).is_absolute() {
            return Err(PathError::outside(
                relative,
                "would be a symbolic link with an absolute or empty target; only relative targets inside the workspace are created",
            ));
        }
        let (parent, name) = self.prepare_parent(relative)?;
        let path = parent.join(&name);
        let mut hops = 0;
        self.follow(&parent, Path::new(target), &mut hops, relative)
            .map_err(|_| {
                PathError::outside(
                    relative,
                    "would be a symbolic link leading outside the workspace",
                )
            })?;
        match kind_of(&path).map_err(|e| PathError::io(relative, e))? {
            Some(EntryKind::Dir) => {
                return Err(PathError::other(
                    relative,
                    std::io::ErrorKind::IsADirectory,
                    "is a directory",
                ));
            }
            Some(_) => std::fs::remove_file(&path).map_err(|e| PathError::io(relative, e))?,
            None => {}
        }
        make_symlink(target, &path).map_err(|e| PathError::io(relative, e))?;
        Ok(path)
    }

    /// Copies the regular file `from` (a link inside the workspace is followed) to `to`, keeping its
    /// executable bit.
    pub fn copy_file(&self, from: &str, to: &str) -> Result<PathBuf, PathError> {
        let parts = lexical_parts(from)?;
        let mut hops = 0;
        let source = self.walk(&self.root.clone(), &parts, true, &mut hops, from)?;
        let metadata = std::fs::metadata(&source).map_err(|e| PathError::io(from, e))?;
        if !metadata.is_file() {
            return Err(PathError::other(
                from,
                std::io::ErrorKind::InvalidInput,
                "is not a regular file",
            ));
        }
        let contents = std::fs::read(&source).map_err(|e| PathError::io(from, e))?;
        self.write_file(to, &contents, is_executable(&metadata))
    }

    /// Deletes what is at `relative`: a file, a link (never what it points to) or a directory with
    /// everything in it. The root itself is emptied, not removed. `false` when nothing was there.
    pub fn delete(&self, relative: &str) -> Result<bool, PathError> {
        let path = self.resolve(relative)?;
        if path == self.root {
            let entries = std::fs::read_dir(&path).map_err(|e| PathError::io(relative, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| PathError::io(relative, e))?;
                remove_entry(&entry.path()).map_err(|e| PathError::io(relative, e))?;
            }
            return Ok(true);
        }
        match remove_entry(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(PathError::io(relative, e)),
        }
    }

    /// Moves `from` to `to` (parent directories of `to` created). An existing `to` is an error unless
    /// `overwrite`, which deletes it first. A directory cannot move into itself.
    pub fn rename(&self, from: &str, to: &str, overwrite: bool) -> Result<PathBuf, PathError> {
        let source = self.resolve(from)?;
        if source == self.root {
            return Err(PathError::outside(
                from,
                "is the workspace itself, which cannot be moved",
            ));
        }
        let source_kind = kind_of(&source)
            .map_err(|e| PathError::io(from, e))?
            .ok_or_else(|| {
                PathError::other(from, std::io::ErrorKind::NotFound, "does not exist")
            })?;
        let destination = self.resolve(to)?;
        if destination == source {
            return Err(PathError::other(
                to,
                std::io::ErrorKind::InvalidInput,
                "is the same as the source",
            ));
        }
        if source_kind == EntryKind::Dir && destination.starts_with(&source) {
            return Err(PathError::other(
                to,
                std::io::ErrorKind::InvalidInput,
                "is inside the directory being moved",
            ));
        }
        if destination == self.root {
            return Err(PathError::outside(
                to,
                "is the workspace itself, which cannot be replaced",
            ));
        }
        if kind_of(&destination)
            .map_err(|e| PathError::io(to, e))?
            .is_some()
        {
            if !overwrite {
                return Err(PathError::other(
                    to,
                    std::io::ErrorKind::AlreadyExists,
                    "already exists",
                ));
            }
            remove_entry(&destination).map_err(|e| PathError::io(to, e))?;
        }
        let (parent, name) = self.prepare_parent(to)?;
        let destination = parent.join(name);
        std::fs::rename(&source, &destination).map_err(|e| PathError::io(from, e))?;
        Ok(destination)
    }

    /// Every entry under the directory `relative` (`""` for the whole workspace), links listed but not
    /// followed, sorted by path; at most [`MAX_LISTED_ENTRIES`].
    pub fn entries(&self, relative: &str) -> Result<Vec<Entry>, PathError> {
        let parts = lexical_parts(relative)?;
        let mut hops = 0;
        let base = self.walk(&self.root.clone(), &parts, true, &mut hops, relative)?;
        let mut found = Vec::new();
        let mut pending = vec![(base, String::new())];
        while let Some((dir, prefix)) = pending.pop() {
            let listing = match std::fs::read_dir(&dir) {
                Ok(listing) => listing,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && prefix.is_empty() => {
                    return Ok(Vec::new());
                }
                Err(e) => return Err(PathError::io(relative, e)),
            };
            for entry in listing {
                let entry = entry.map_err(|e| PathError::io(relative, e))?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let file_type = entry.file_type().map_err(|e| PathError::io(relative, e))?;
                let path = format!("{prefix}{name}");
                let kind = if file_type.is_symlink() {
                    EntryKind::Symlink
                } else if file_type.is_dir() {
                    pending.push((entry.path(), format!("{path}/")));
                    EntryKind::Dir
                } else {
                    EntryKind::File
                };
                found.push(Entry { path, kind });
                if found.len() > MAX_LISTED_ENTRIES {
                    return Err(PathError::other(
                        relative,
                        std::io::ErrorKind::FileTooLarge,
                        "holds more entries than can be listed",
                    ));
                }
            }
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(found)
    }

    /// Deletes the workspace and everything in it. Links inside are removed, never followed.
    pub fn remove(self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Resolves `relative`'s parent directory (creating it), returning it resolved and the final name.
    fn prepare_parent(&self, relative: &str) -> Result<(PathBuf, String), PathError> {
        let mut parts = lexical_parts(relative)?;
        let Some(name) = parts.pop() else {
            return Err(PathError::outside(
                relative,
                "is the workspace itself, not a file in it",
            ));
        };
        let mut hops = 0;
        let parent = self.walk(&self.root.clone(), &parts, true, &mut hops, relative)?;
        std::fs::create_dir_all(&parent).map_err(|e| PathError::io(relative, e))?;
        // Look again now that the directories exist.
        let mut hops = 0;
        let parent = self.walk(&self.root.clone(), &parts, true, &mut hops, relative)?;
        if !std::fs::metadata(&parent).is_ok_and(|m| m.is_dir()) {
            return Err(PathError::other(
                relative,
                std::io::ErrorKind::NotADirectory,
                "has a parent that is not a directory",
            ));
        }
        // The name itself is checked too (a link there must not lead outside).
        let mut hops = 0;
        self.walk(
            &parent,
            std::slice::from_ref(&name),
            false,
            &mut hops,
            relative,
        )?;
        Ok((parent, name))
    }

    /// Walks `parts` (plain names) from the real directory `start`, following links — all of them, or
    /// all but the last one when `follow_last` is false, whose chain is still checked. Every hop must
    /// stay inside the root. Once a component does not exist the rest is appended as written.
    fn walk(
        &self,
        start: &Path,
        parts: &[String],
        follow_last: bool,
        hops: &mut usize,
        shown: &str,
    ) -> Result<PathBuf, PathError> {
        let mut current = start.to_path_buf();
        let mut missing = false;
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let candidate = current.join(part);
            if missing {
                current = candidate;
                continue;
            }
            match std::fs::symlink_metadata(&candidate) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    missing = true;
                    current = candidate;
                }
                Err(e) => return Err(PathError::io(shown, e)),
                Ok(meta) if meta.file_type().is_symlink() => {
                    let target =
                        std::fs::read_link(&candidate).map_err(|e| PathError::io(shown, e))?;
                    let reached = self.follow(&current, &target, hops, shown)?;
                    if last && !follow_last {
                        current = candidate;
                    } else {
                        missing = std::fs::symlink_metadata(&reached).is_err();
                        current = reached;
                    }
                }
                Ok(_) => current = candidate,
            }
        }
        Ok(current)
    }

    /// Follows one link `target` found in the real directory `dir`: where it leads, which must be
    /// inside the root. `..` is taken on the real directory reached so far, as the kernel does, so a
    /// link to a link's parent cannot be used to climb out.
    fn follow(
        &self,
        dir: &Path,
        target: &Path,
        hops: &mut usize,
        shown: &str,
    ) -> Result<PathBuf, PathError> {
        *hops += 1;
        if *hops > MAX_SYMLINK_HOPS {
            return Err(PathError::outside(
                shown,
                "passes through too many symbolic links",
            ));
        }
        let leaves = || {
            PathError::outside(
                shown,
                "passes through a symbolic link that leads outside the workspace",
            )
        };
        let (mut current, rest): (PathBuf, &Path) = if target.is_absolute() {
            // Only an absolute target spelled with this root's own path can stay inside.
            let rest = target.strip_prefix(&self.root).map_err(|_| leaves())?;
            (self.root.clone(), rest)
        } else {
            (dir.to_path_buf(), target)
        };
        let mut missing = false;
        for component in rest.components() {
            match component {
                Component::CurDir => {}
                Component::ParentDir => {
                    if current == self.root || !current.starts_with(&self.root) {
                        return Err(leaves());
                    }
                    current.pop();
                    // Above a missing component the rest is words only; still never above the root.
                    if !current.starts_with(&self.root) {
                        return Err(leaves());
                    }
                }
                Component::Normal(name) => {
                    let name = name.to_str().ok_or_else(leaves)?;
                    if missing {
                        current.push(name);
                        continue;
                    }
                    let next = self.walk(
                        &current,
                        std::slice::from_ref(&name.to_owned()),
                        true,
                        hops,
                        shown,
                    )?;
                    missing = std::fs::symlink_metadata(&next).is_err();
                    current = next;
                }
                Component::RootDir | Component::Prefix(_) => return Err(leaves()),
            }
        }
        if current.starts_with(&self.root) {
            Ok(current)
        } else {
            Err(leaves())
        }
    }
}

/// The plain names of a relative path, `.` dropped and `..` applied to the words: refused when the
/// path is absolute, holds a NUL, or climbs above its start.
pub fn lexical_parts(relative: &str) -> Result<Vec<String>, PathError> {
    if relative.contains('\0') {
        return Err(PathError::outside(relative, "contains a NUL character"));
    }
    let path = Path::new(relative);
    if path.has_root() || path.is_absolute() {
        return Err(PathError::outside(
            relative,
            "is absolute; workspace paths are relative to the workspace",
        ));
    }
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(PathError::outside(
                        relative,
                        "refers to a location outside the workspace",
                    ));
                }
            }
            Component::Normal(name) => match name.to_str() {
                Some(name) => parts.push(name.to_owned()),
                None => return Err(PathError::outside(relative, "is not UTF-8")),
            },
            Component::RootDir | Component::Prefix(_) => {
                return Err(PathError::outside(
                    relative,
                    "is absolute; workspace paths are relative to the workspace",
                ));
            }
        }
    }
    Ok(parts)
}

fn kind_of(path: &Path) -> std::io::Result<Option<EntryKind>> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Ok(Some(EntryKind::Symlink)),
        Ok(meta) if meta.is_dir() => Ok(Some(EntryKind::Dir)),
        Ok(_) => Ok(Some(EntryKind::File)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes a file, a link or a directory tree; `remove_dir_all` does not follow links inside.
fn remove_entry(path: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

fn write_new(path: &Path, contents: &[u8], executable: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if executable { 0o755 } else { 0o644 });
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    #[cfg(unix)]
    {
        // The mode given to open is narrowed by the umask; the bit a template asked for is kept.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(if executable {
            0o755
        } else {
            0o644
        }))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    // No fsync: a workspace lives only as long as its task, and a crash restarts the step anyway.
    Ok(())
}

/// Whether any execute bit is set (always false where files have no mode).
pub fn is_executable(metadata: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        metadata.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        false
    }
}

#[cfg(unix)]
fn make_symlink(target: &str, path: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, path)
}

#[cfg(not(unix))]
fn make_symlink(_target: &str, _path: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "symbolic links are only created on Unix",
    ))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        outside: PathBuf,
        workspace: Workspace,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        let workspace = Workspace::create(dir.path().join("ws")).expect("workspace");
        Fixture {
            outside: std::fs::canonicalize(outside).expect("canonical"),
            workspace,
            _dir: dir,
        }
    }

    fn refused(result: Result<impl std::fmt::Debug, PathError>) -> String {
        match result {
            Err(e @ PathError::Outside { .. }) => e.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn plain_paths_resolve_inside() {
        let f = fixture();
        let root = f.workspace.root().to_path_buf();
        assert_eq!(f.workspace.resolve("").expect("root"), root);
        assert_eq!(f.workspace.resolve("./").expect("root"), root);
        assert_eq!(
            f.workspace.resolve("a/./b/../c").expect("inside"),
            root.join("a/c")
        );
    }

    #[test]
    fn absolute_and_climbing_paths_are_refused() {
        let f = fixture();
        for path in ["/etc/passwd", "../x", "a/../../x", "a/../..", "..", "x\0y"] {
            let message = refused(f.workspace.resolve(path));
            assert!(message.contains(&format!("{path:?}")), "{message}");
        }
    }

    #[test]
    fn links_leading_outside_are_refused_dangling_or_not() {
        let f = fixture();
        let root = f.workspace.root().to_path_buf();
        symlink(&f.outside, root.join("out")).expect("link");
        symlink(f.outside.join("missing"), root.join("dangling")).expect("link");
        symlink("../outside/new", root.join("relative-dangling")).expect("link");
        for path in [
            "out",
            "out/x",
            "dangling",
            "relative-dangling",
            "dangling/deeper",
        ] {
            let message = refused(f.workspace.resolve(path));
            assert!(message.contains("outside the workspace"), "{message}");
        }
        refused(f.workspace.write_file("dangling", b"x", false));
        refused(f.workspace.write_file("out/x", b"x", false));
        refused(f.workspace.create_dir("out/sub"));
        assert!(!f.outside.join("missing").exists());
        assert!(!f.outside.join("new").exists());
        assert!(!f.outside.join("x").exists());
        assert!(!f.outside.join("sub").exists());
    }

    #[test]
    fn link_chains_are_followed_hop_by_hop() {
        let f = fixture();
        let root = f.workspace.root().to_path_buf();
        std::fs::create_dir_all(root.join("sub/deep")).expect("mkdir");
        // sub/up → .. (the root): fine by itself.
        symlink("..", root.join("sub/up")).expect("link");
        // a → sub/up/../outside: on the words it is `sub/outside`; on disk it climbs out of the root.
        symlink("sub/up/../outside", root.join("a")).expect("link");
        refused(f.workspace.resolve("a"));
        refused(f.workspace.write_file("a/x", b"x", false));
        // A chain that stays inside is fine: c → b → sub/deep.
        symlink("sub/deep", root.join("b")).expect("link");
        symlink("b", root.join("c")).expect("link");
        f.workspace
            .write_file("c/file", b"ok", false)
            .expect("write");
        assert_eq!(
            std::fs::read(root.join("sub/deep/file")).expect("read"),
            b"ok"
        );
        // A chain that ends outside: d → c2 → /outside.
        symlink(&f.outside, root.join("c2")).expect("link");
        symlink("c2", root.join("d")).expect("link");
        refused(f.workspace.resolve("d/x"));
        // A loop.
        symlink("loop2", root.join("loop1")).expect("link");
        symlink("loop1", root.join("loop2")).expect("link");
        let message = refused(f.workspace.resolve("loop1/x"));
        assert!(message.contains("too many"), "{message}");
    }

    #[test]
    fn writes_never_go_through_a_link() {
        let f = fixture();
        let root = f.workspace.root().to_path_buf();
        f.workspace
            .write_file("target.txt", b"old", false)
            .expect("write");
        symlink("target.txt", root.join("link.txt")).expect("link");
        let message = refused(f.workspace.write_file("link.txt", b"new", false));
        assert!(message.contains("symbolic link"), "{message}");
        assert_eq!(
            std::fs::read(root.join("target.txt")).expect("read"),
            b"old"
        );
    }

    #[test]
    fn files_are_written_with_their_mode_and_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let f = fixture();
        let path = f
            .workspace
            .write_file("bin/run.sh", b"#!/bin/sh\n", true)
            .expect("write");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        f.workspace
            .write_file("bin/run.sh", b"again", false)
            .expect("replace");
        assert_eq!(std::fs::read(&path).expect("read"), b"again");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        // No temporary files are left behind.
        let names: Vec<_> = f
            .workspace
            .entries("")
            .expect("entries")
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(names, ["bin", "bin/run.sh"]);
    }

    #[test]
    fn symlinks_are_created_only_pointing_inside() {
        let f = fixture();
        let root = f.workspace.root().to_path_buf();
        f.workspace
            .write_file("a/b.txt", b"b", false)
            .expect("write");
        f.workspace
            .create_symlink("a/link", "b.txt")
            .expect("inside");
        f.workspace
            .create_symlink("a/dangling", "missing")
            .expect("dangling inside");
        for target in ["../../outside", "/etc/passwd", "../.."] {
            refused(f.workspace.create_symlink("a/bad", target));
        }
        assert!(!root.join("a/bad").exists());
        assert!(std::fs::symlink_metadata(root.join("a/bad")).is_err());
    }

    #[test]
    fn delete_removes_links_not_their_targets_and_empties_the_root() {
        let f = fixture();
        let root = f.workspace.root().to_path_buf();
        std::fs::write(f.outside.join("keep"), "k").expect("write");
        f.workspace.write_file("d/x", b"x", false).expect("write");
        f.workspace.create_symlink("d/l", "x").expect("link");
        assert!(f.workspace.delete("d/l").expect("delete"));
        assert!(root.join("d/x").exists());
        assert!(!f.workspace.delete("d/l").expect("gone"));
        assert!(f.workspace.delete(".").expect("empty"));
        assert!(root.exists());
        assert_eq!(std::fs::read_dir(&root).expect("list").count(), 0);
        refused(f.workspace.delete("../outside"));
        assert!(f.outside.join("keep").exists());
    }

    #[test]
    fn rename_checks_both_ends() {
        let f = fixture();
        let root = f.workspace.root().to_path_buf();
        f.workspace.write_file("a.txt", b"a", false).expect("write");
        f.workspace.write_file("b.txt", b"b", false).expect("write");
        let exists = f
            .workspace
            .rename("a.txt", "b.txt", false)
            .expect_err("exists");
        assert!(exists.to_string().contains("already exists"), "{exists}");
        f.workspace
            .rename("a.txt", "b.txt", true)
            .expect("overwrite");
        assert_eq!(std::fs::read(root.join("b.txt")).expect("read"), b"a");
        f.workspace
            .rename("b.txt", "deep/er/c.txt", false)
            .expect("into new dirs");
        refused(f.workspace.rename("deep/er/c.txt", "../c.txt", false));
        refused(f.workspace.rename("deep/er/c.txt", "/tmp/c.txt", false));
        assert!(root.join("deep/er/c.txt").exists());
        f.workspace.create_dir("dir/sub").expect("mkdir");
        let into_itself = f
            .workspace
            .rename("dir", "dir/sub/x", false)
            .expect_err("into itself");
        assert!(into_itself.to_string().contains("inside"), "{into_itself}");
    }

    #[test]
    fn remove_deletes_the_tree_but_not_what_links_point_to() {
        let f = fixture();
        std::fs::write(f.outside.join("keep"), "k").expect("write");
        let root = f.workspace.root().to_path_buf();
        symlink(&f.outside, root.join("out")).expect("link");
        f.workspace.write_file("x/y", b"y", false).expect("write");
        f.workspace.clone().remove().expect("remove");
        assert!(!root.exists());
        assert!(f.outside.join("keep").exists());
        f.workspace.remove().expect("already gone");
    }
}
