//! `auth` in `atrium.yaml`: who may sign in and how, guest mode, sessions, tokens and the audit log.
//! Names nothing else in the crate but its own parts, so `config` can hold it.

use serde::Deserialize;

use super::github::GithubConfig;
use super::oidc::OidcConfig;

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
    /// built from it. (The session cookie is always `Secure`, as its `__Host-` prefix requires;
    /// browsers accept that on `http://localhost`.) Default `http://<server.listen>`.
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
    /// Sign-in with an OpenID Connect provider (Keycloak, Entra ID, Google, Okta, Dex...). The
    /// callback is `<public_url>/auth/oidc/callback`; register that at the provider. The provider is
    /// asked for its discovery document at the first sign-in, not at start-up. Default unset.
    pub oidc: Option<OidcConfig>,
    /// Sign-in with a GitHub OAuth app (github.com or GitHub Enterprise Server). The callback is
    /// `<public_url>/auth/github/callback`. Default unset.
    pub github: Option<GithubConfig>,
    /// How the person a provider vouches for becomes a User entity of the catalog, tried in order
    /// until one matches. No match: no session (the sign-in is refused and audited). Default
    /// `[email]`: the other two are only safe with a provider that vouches for your own domain's
    /// addresses or names only, so they are opt-in.
    pub sign_in_resolvers: Vec<Resolver>,
}

/// One way of finding the User entity a signed-in person is (`auth.sign_in_resolvers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolver {
    /// The verified email equals a User's `spec.profile.email` (case-insensitive). Two Users with the
    /// same email match neither.
    Email,
    /// The verified email's local part (before `@`) is a User's `metadata.name` in the `default`
    /// namespace. Only safe when the provider vouches only for addresses of your own domain: with
    /// GitHub, anyone can verify `alice@any-domain` and would match the User `alice`.
    EmailLocalPart,
    /// The provider's user name (`preferred_username`; a GitHub login) is a User's `metadata.name` in
    /// the `default` namespace. Only safe when people cannot choose or change that name at the
    /// provider.
    Username,
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
            oidc: None,
            github: None,
            sign_in_resolvers: vec![Resolver::Email],
        }
    }
}
