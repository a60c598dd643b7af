//! `auth` in `atrium.yaml`: who may sign in and how, guest mode, sessions, tokens and the audit log.
//! Names nothing else in the crate but its own parts, so `config` can hold it.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Anyone who reaches the server acts as `user:default/guest`, with a person's scopes. For local
    /// evaluation only: off by default, on in the demo configuration, and refused on a listen address
    /// other than loopback unless `allow_guest_on_any_address` says otherwise.
    pub guest: bool,
    /// Let guest mode serve a non-loopback address. Default false.
    pub allow_guest_on_any_address: bool,
    /// The address people reach Atrium at (`https://portal.example.com`): the sign-in callback is
    /// built from it, and its scheme decides whether cookies are `Secure`. Default
    /// `http://<server.listen>`.
    pub public_url: Option<String>,
    /// A session ends after this long without a request. Default 8 hours.
    pub session_idle_timeout_seconds: u64,
    /// A session ends this long after sign-in, whatever happens. Default 7 days.
    pub session_absolute_timeout_seconds: u64,
    /// User entity refs given the `admin` scope when they sign in (`user:default/alice`).
    pub admins: Vec<String>,
    /// The longest lifetime a new API token may have. Default 365 days.
    pub max_token_days: u64,
    /// Audit events older than this are deleted. Default 365 days.
    pub audit_retention_days: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            guest: false,
            allow_guest_on_any_address: false,
            public_url: None,
            session_idle_timeout_seconds: 8 * 3600,
            session_absolute_timeout_seconds: 7 * 24 * 3600,
            admins: Vec::new(),
            max_token_days: 365,
            audit_retention_days: 365,
        }
    }
}
