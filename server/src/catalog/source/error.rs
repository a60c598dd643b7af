//! Why a location target could not be resolved or read.

use crate::git::cache::GitError;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ReadError {
    /// The target is malformed (not a URL, no path).
    #[error("{0}")]
    Invalid(String),
    /// The target does not exist (a missing file, a 404).
    #[error("{0}")]
    NotFound(String),
    /// The target breaks a rule (outside the roots, host not allowed, too large, bad type).
    #[error("{0}")]
    NotAllowed(String),
    /// Reading failed for another reason (I/O, network, timeout, not UTF-8).
    #[error("{0}")]
    Failed(String),
}

impl ReadError {
    /// Backstage's error class name, used in `status.items` and location errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "InputError",
            Self::NotFound(_) => "NotFoundError",
            Self::NotAllowed(_) => "NotAllowedError",
            Self::Failed(_) => "Error",
        }
    }
}

impl From<GitError> for ReadError {
    fn from(error: GitError) -> Self {
        match error {
            GitError::Invalid(m) => Self::Invalid(m),
            GitError::NotFound(m) => Self::NotFound(m),
            GitError::Refused(m) => Self::NotAllowed(m),
            GitError::Failed(m) => Self::Failed(m),
        }
    }
}
