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

/// Bounds every network read and write libgit2 makes (fetches into the cache, the scaffolder's
/// pushes) to `io` without a byte, and every connection to at most 30 s (or `io` when shorter). The
/// fetch deadline in `cache` is checked only as bytes arrive: without these a server that accepts and
/// then says nothing would hold a catalog worker or a task's step (its lease renewed all the while)
/// forever.
///
/// # Safety
/// libgit2 keeps these in process-wide globals written without synchronisation: call this before any
/// thread uses libgit2 (at start-up, before the runtime starts), and only then.
#[allow(unsafe_code)]
pub unsafe fn set_network_timeouts(io: std::time::Duration) {
    let io_ms = i32::try_from(io.as_millis()).unwrap_or(i32::MAX).max(1);
    let connect_ms = io_ms.min(30_000);
    // SAFETY: the caller guarantees no other thread uses libgit2 yet. Both setters cannot fail.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(connect_ms);
        let _ = git2::opts::set_server_timeout_in_milliseconds(io_ms);
    }
}
