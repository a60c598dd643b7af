//! Where a template's files come from: the directory of its catalog file, a git repository at the
//! fetched commit, or (for a dry run) the `directoryContents` sent with the request.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The base that a template's relative `url` inputs (`./skeleton`) are read from.
#[derive(Debug, Clone)]
pub enum TemplateSource {
    /// The directory holding the template's catalog file (a `file` location under a file root).
    Dir(PathBuf),
    /// A dry run's `directoryContents`: relative path → bytes.
    Inline(BTreeMap<String, Vec<u8>>),
    /// A template whose files cannot be read from where it is registered; reading says why.
    Unsupported(String),
}
