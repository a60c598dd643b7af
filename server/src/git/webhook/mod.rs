//! Git push webhooks: who sent a delivery, whether it is authentic, and which repository it names.
//!
//! Pure code, no HTTP routing and no database. The route `POST /api/catalog/webhooks/git` hands the raw
//! body and the headers to [`parse`], and the catalog refreshes the locations whose repository URL has
//! the same [`super::remote_key`] as one of [`PushEvent::repository_urls`].
//!
//! | provider | recognised by | authenticated by |
//! |---|---|---|
//! | Gitea, Forgejo | `X-Gitea-Event` / `X-Forgejo-Event` | `X-Gitea-Signature` / `X-Forgejo-Signature`: hex HMAC-SHA256 of the body, no prefix |
//! | GitLab | `X-Gitlab-Event` | `X-Gitlab-Token`: the secret itself |
//! | GitHub | `X-GitHub-Event` | `X-Hub-Signature-256`: `sha256=` and the hex HMAC-SHA256 of the body |
//!
//! Gitea and Forgejo also send GitHub's headers (`X-GitHub-Event`, `X-Hub-Signature-256`), so they are
//! recognised first; otherwise a Gitea delivery would be checked against the GitHub secret. Forgejo is
//! Gitea's protocol and uses the Gitea secret.
//!
//! Every delivery is authenticated before its JSON is read, `ping` included, so an unauthenticated caller
//! learns nothing but "unauthorized". Comparisons are constant-time (`Mac::verify_slice`).

use std::fmt;

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2_0_11::Sha256;

use super::url::normalize_repo_url;

type HmacSha256 = Hmac<Sha256>;

/// The webhook secrets, one per provider, as the configuration read them. `None`: deliveries from that
/// provider are refused, never accepted unauthenticated.
#[derive(Clone, Default)]
pub struct WebhookSecrets {
    pub github: Option<String>,
    pub gitlab: Option<String>,
    /// Gitea and Forgejo.
    pub gitea: Option<String>,
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |s: &Option<String>| if s.is_some() { "****" } else { "none" };
        f.debug_struct("WebhookSecrets")
            .field("github", &shown(&self.github))
            .field("gitlab", &shown(&self.gitlab))
            .field("gitea", &shown(&self.gitea))
            .finish()
    }
}

impl WebhookSecrets {
    fn for_provider(&self, provider: Provider) -> Option<&str> {
        match provider {
            Provider::GitHub => self.github.as_deref(),
            Provider::GitLab => self.gitlab.as_deref(),
            Provider::Gitea => self.gitea.as_deref(),
        }
        // An empty secret is no secret: anyone can sign with it. Treat it as not configured.
        .filter(|s| !s.is_empty())
    }
}

/// The forge that sent a delivery. Forgejo counts as Gitea: same headers, payloads and secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    GitHub,
    GitLab,
    Gitea,
}

impl Provider {
    /// The environment variable that holds this provider's webhook secret.
    pub fn secret_env(self) -> &'static str {
        match self {
            Self::GitHub => "ATRIUM_WEBHOOK_SECRET_GITHUB",
            Self::GitLab => "ATRIUM_WEBHOOK_SECRET_GITLAB",
            Self::Gitea => "ATRIUM_WEBHOOK_SECRET_GITEA",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::GitHub => "GitHub",
            Self::GitLab => "GitLab",
            Self::Gitea => "Gitea",
        })
    }
}

/// A push to a repository (branch or tag), authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    pub provider: Provider,
    /// Every URL the payload gives for the repository (clone over HTTP, SSH, web page), as sent and
    /// without duplicates. Compare them through [`normalize_repo_url`].
    pub repository_urls: Vec<String>,
    /// The pushed ref, such as `refs/heads/main` or `refs/tags/v1.2.0`.
    pub git_ref: Option<String>,
    /// The repository's default branch name (`main`), not a ref.
    pub default_branch: Option<String>,
    /// The commit the ref points at after the push; forty zeros when the ref was deleted.
    pub after: Option<String>,
}

impl PushEvent {
    /// Whether the push moved the repository's default branch (the branch a git location reads by
    /// default). `false` when either side is unknown.
    pub fn is_default_branch(&self) -> bool {
        match (&self.git_ref, &self.default_branch) {
            (Some(git_ref), Some(branch)) => {
                git_ref.strip_prefix("refs/heads/") == Some(branch.as_str())
            }
            _ => false,
        }
    }

    /// The [`normalize_repo_url`] keys of `repository_urls`, without duplicates.
    pub fn repository_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for key in self
            .repository_urls
            .iter()
            .filter_map(|u| normalize_repo_url(u))
        {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }
}

/// An authenticated delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Push(PushEvent),
    /// A delivery that is not a push (GitHub `ping` when the hook is created, issues, merge requests,
    /// GitLab system hooks for projects and users...). The route answers 2xx so the forge does not
    /// retry or disable the hook. `event` is the event header's value.
    Ignored {
        provider: Provider,
        event: String,
    },
}

/// Why a delivery was refused. Each message says what is wrong and where (header, field, setting), and
/// never contains a secret. [`WebhookError::status`] is the HTTP status the route answers with.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No known event header: not a GitHub, GitLab, Gitea or Forgejo webhook (400).
    #[error(
        "not a recognised git webhook: expected one of the headers X-GitHub-Event, X-Gitlab-Event, \
         X-Gitea-Event or X-Forgejo-Event"
    )]
    UnknownSender,
    /// The sender is recognised but this server has no secret for it (403: the request is understood,
    /// and no credential the sender could add would make it acceptable until an operator sets the
    /// secret; it is not the client's input that is wrong, so not 400).
    #[error(
        "{provider} webhooks are not enabled on this server: set the environment variable {env} to \
         the webhook's secret",
        env = provider.secret_env()
    )]
    SecretNotConfigured { provider: Provider },
    /// The signature or token is missing or does not match (401).
    #[error("{provider} webhook not authenticated: {reason}")]
    Unauthorized { provider: Provider, reason: String },
    /// Authentic, but the body is not JSON or lacks the repository (400).
    #[error("{provider} webhook payload: {message}")]
    BadPayload { provider: Provider, message: String },
}

impl WebhookError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownSender | Self::BadPayload { .. } => StatusCode::BAD_REQUEST,
            Self::SecretNotConfigured { .. } => StatusCode::FORBIDDEN,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
        }
    }

    fn unauthorized(provider: Provider, reason: impl Into<String>) -> Self {
        Self::Unauthorized {
            provider,
            reason: reason.into(),
        }
    }

    fn bad_payload(provider: Provider, message: impl Into<String>) -> Self {
        Self::BadPayload {
            provider,
            message: message.into(),
        }
    }
}

/// Recognises the sender, authenticates the delivery with that provider's secret, and reads a push's
/// repository from the JSON body. `body` must be the raw bytes as received: signatures cover them, not
/// a re-serialisation.
pub fn parse(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &WebhookSecrets,
) -> Result<Parsed, WebhookError> {
    let (provider, event) = detect(headers).ok_or(WebhookError::UnknownSender)?;
    let secret = secrets
        .for_provider(provider)
        .ok_or(WebhookError::SecretNotConfigured { provider })?;
    authenticate(provider, headers, body, secret)?;

    let system_hook = provider == Provider::GitLab && event == "System Hook";
    let is_push = match provider {
        Provider::GitHub | Provider::Gitea => event == "push",
        Provider::GitLab => event == "Push Hook" || event == "Tag Push Hook",
    };
    if !(is_push || system_hook) {
        return Ok(Parsed::Ignored { provider, event });
    }
    let payload = parse_json(provider, body)?;
    if system_hook {
        // System hooks share one header; the payload names the event. Push and tag push payloads are
        // the project hook's.
        let kind = payload
            .get("event_name")
            .or_else(|| payload.get("object_kind"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind != "push" && kind != "tag_push" {
            return Ok(Parsed::Ignored {
                provider,
                event: format!("System Hook: {kind}"),
            });
        }
    }
    push_event(provider, &payload).map(Parsed::Push)
}

/// Gitea and Forgejo first: they also send `X-GitHub-Event`.
fn detect(headers: &HeaderMap) -> Option<(Provider, String)> {
    const ORDER: [(&str, Provider); 4] = [
        ("x-forgejo-event", Provider::Gitea),
        ("x-gitea-event", Provider::Gitea),
        ("x-gitlab-event", Provider::GitLab),
        ("x-github-event", Provider::GitHub),
    ];
    ORDER.iter().find_map(|(name, provider)| {
        let value = headers.get(*name)?;
        Some((
            *provider,
            String::from_utf8_lossy(value.as_bytes()).trim().to_owned(),
        ))
    })
}

fn authenticate(
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
    secret: &str,
) -> Result<(), WebhookError> {
    let env = provider.secret_env();
    match provider {
        Provider::GitHub => {
            let Some(value) = header(headers, "x-hub-signature-256") else {
                let hint = if header(headers, "x-hub-signature").is_some() {
                    " (only the SHA-1 X-Hub-Signature was sent, which Atrium does not accept)"
                } else {
                    "; give the webhook a secret"
                };
                return Err(WebhookError::unauthorized(
                    provider,
                    format!("the X-Hub-Signature-256 header is missing{hint}"),
                ));
            };
            let hex = value.strip_prefix("sha256=").ok_or_else(|| {
                WebhookError::unauthorized(
                    provider,
                    "the X-Hub-Signature-256 header does not start with \"sha256=\"",
                )
            })?;
            verify_hmac(secret, body, hex).map_err(|()| {
                WebhookError::unauthorized(
                    provider,
                    format!(
                        "X-Hub-Signature-256 does not match the body signed with {env}; the \
                         webhook's secret must equal it"
                    ),
                )
            })
        }
        Provider::Gitea => {
            let (name, value) = ["x-gitea-signature", "x-forgejo-signature"]
                .into_iter()
                .find_map(|name| header(headers, name).map(|v| (name, v)))
                .ok_or_else(|| {
                    // Gitea sends the header empty when the webhook has no secret.
                    WebhookError::unauthorized(
                        provider,
                        "the X-Gitea-Signature / X-Forgejo-Signature header is missing or empty; \
                         give the webhook a secret",
                    )
                })?;
            verify_hmac(secret, body, value).map_err(|()| {
                let hint = if body.starts_with(b"payload=") {
                    "; the body is form-encoded: set the webhook's content type to application/json"
                } else {
                    ""
                };
                WebhookError::unauthorized(
                    provider,
                    format!(
                        "{} does not match the body signed with {env}; the webhook's secret must \
                         equal it{hint}",
                        canonical_header(name)
                    ),
                )
            })
        }
        Provider::GitLab => {
            let token = headers.get("x-gitlab-token").ok_or_else(|| {
                WebhookError::unauthorized(
                    provider,
                    "the X-Gitlab-Token header is missing; give the webhook a secret token",
                )
            })?;
            if tokens_equal(secret.as_bytes(), token.as_bytes()) {
                Ok(())
            } else {
                Err(WebhookError::unauthorized(
                    provider,
                    format!("X-Gitlab-Token does not equal {env}"),
                ))
            }
        }
    }
}

/// A header's value, trimmed; `None` when absent, empty or not text.
fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn canonical_header(name: &str) -> &'static str {
    match name {
        "x-forgejo-signature" => "X-Forgejo-Signature",
        _ => "X-Gitea-Signature",
    }
}

/// Checks `hex_signature` against HMAC-SHA256(secret, body) in constant time.
fn verify_hmac(secret: &str, body: &[u8], hex_signature: &str) -> Result<(), ()> {
    let expected = decode_hex(hex_signature).ok_or(())?;
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).map_err(|_| ())?;
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| ())
}

/// Compares two tokens without leaking, through timing, where they differ or how long the secret is:
/// both are MACed under a fixed key and the fixed-length MACs compared in constant time.
fn tokens_equal(secret: &[u8], received: &[u8]) -> bool {
    let mac_of = |bytes: &[u8]| {
        // HMAC takes keys of any length, so this never fails.
        let mut mac = HmacSha256::new_from_slice(b"atrium gitlab token comparison").ok()?;
        mac.update(bytes);
        Some(mac)
    };
    let (Some(received_mac), Some(secret_mac)) = (mac_of(received), mac_of(secret)) else {
        return false;
    };
    secret_mac
        .verify_slice(&received_mac.finalize().into_bytes())
        .is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

fn parse_json(provider: Provider, body: &[u8]) -> Result<Value, WebhookError> {
    serde_json::from_slice(body).map_err(|e| {
        let hint = if body.starts_with(b"payload=") {
            "; the body is form-encoded: set the webhook's content type to application/json"
        } else {
            ""
        };
        WebhookError::bad_payload(provider, format!("the body is not valid JSON: {e}{hint}"))
    })
}

/// Reads the repository and ref of a push payload. GitHub and Gitea put the repository under
/// `repository`; GitLab under `project`, with the older `repository` object kept for compatibility.
fn push_event(provider: Provider, payload: &Value) -> Result<PushEvent, WebhookError> {
    let (object, fields): (&str, &[&str]) = match provider {
        Provider::GitHub | Provider::Gitea => ("repository", &["clone_url", "ssh_url", "html_url"]),
        Provider::GitLab => ("project", &["git_http_url", "git_ssh_url", "web_url"]),
    };
    let mut sources: Vec<(&Value, &[&str])> = Vec::new();
    if let Some(main) = payload.get(object).filter(|v| v.is_object()) {
        sources.push((main, fields));
    }
    if provider == Provider::GitLab
        && let Some(legacy) = payload.get("repository").filter(|v| v.is_object())
    {
        sources.push((legacy, &["git_http_url", "git_ssh_url", "homepage", "url"]));
    }
    if sources.is_empty() {
        return Err(WebhookError::bad_payload(
            provider,
            format!("the `{object}` object is missing"),
        ));
    }
    let mut repository_urls: Vec<String> = Vec::new();
    for (source, names) in &sources {
        for name in *names {
            if let Some(url) = source.get(*name).and_then(Value::as_str).map(str::trim)
                && !url.is_empty()
                && !repository_urls.iter().any(|u| u == url)
            {
                repository_urls.push(url.to_owned());
            }
        }
    }
    if repository_urls.is_empty() {
        let wanted: Vec<String> = fields.iter().map(|f| format!("{object}.{f}")).collect();
        return Err(WebhookError::bad_payload(
            provider,
            format!("no repository URL: {} are all missing", wanted.join(", ")),
        ));
    }
    let text = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(PushEvent {
        provider,
        repository_urls,
        git_ref: text(payload.get("ref")),
        default_branch: text(sources[0].0.get("default_branch")),
        after: text(payload.get("after")),
    })
}

#[cfg(test)]
mod tests;
