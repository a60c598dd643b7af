//! Git: remotes, credentials, fetching into a local cache, web links and push webhooks. Shared by the
//! catalog's git sources and, later, the scaffolder's publish actions; it knows nothing of either.
//!
//! - `remote`: repository and file targets, remote URL rules, comparison keys (`remote_key`);
//! - `settings`: per-repository settings from `catalog.git.repositories`;
//! - `cache`: fetching with libgit2 into a local bare-repository cache and reading files from it;
//! - `web`: view and edit links of a file on its forge;
//! - `webhook`: authenticating and parsing forges' push webhooks;
//! - `url`: the many spellings of one repository URL reduced to one key.

pub mod cache;
mod remote;
mod settings;
pub mod url;
pub mod web;
pub mod webhook;

pub use remote::{DEFAULT_BRANCH, GitFile, GitRepo, RemoteKind, parse_remote, remote_key};
pub use settings::RepoSettings;
