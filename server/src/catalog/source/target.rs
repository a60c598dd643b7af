//! Location targets that passed the rules: what a location reads.

use std::path::PathBuf;

use url::Url;

use crate::catalog::model::location::generated_location_name;
use crate::git::{GitFile, GitRepo};

/// A location target that passed the rules and can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    File(PathBuf),
    Url(Url),
    /// A repository: processing lists its catalog files instead of reading it.
    GitRepo(GitRepo),
    /// A catalog file inside a repository.
    GitFile(GitFile),
}

impl Target {
    pub fn location_type(&self) -> &'static str {
        match self {
            Self::File(_) => "file",
            Self::Url(_) => "url",
            Self::GitRepo(_) => "git",
            Self::GitFile(_) => "git-file",
        }
    }

    /// The target as stored and shown (`/abs/path`, `https://...`, `<remote>#<branch>:<path>`).
    pub fn target_string(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Url(url) => url.to_string(),
            Self::GitRepo(repo) => repo.target_string(),
            Self::GitFile(file) => file.target_string(),
        }
    }

    /// `type:target`, the form of the managed-by-location annotations.
    pub fn location_ref(&self) -> String {
        format!("{}:{}", self.location_type(), self.target_string())
    }
}

/// Entity key of the Location entity generated for a registered location.
pub fn generated_location_key(target: &Target) -> String {
    format!(
        "location:default/{}",
        generated_location_name(target.location_type(), &target.target_string())
    )
}
