//! A task's workspace: one directory per task; every path an action names resolves inside it.
//!
//! (Interface fixed here; filled in by the workspace/fetch work.)

use std::path::{Path, PathBuf};

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
}
