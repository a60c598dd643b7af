//! Sign-in with OpenID Connect: the authorization-code flow with PKCE (S256), `state` and `nonce`,
//! against any provider that publishes a discovery document (Keycloak, Entra ID, Google, Okta,
//! Dex...).
//!
//! [`OidcClient::discover`] reads the provider's metadata and signing keys once at start-up.
//! [`OidcClient::begin`] makes the URL the browser is sent to and the secrets of that one login
//! ([`PendingLogin`]), which the caller keeps server-side until the callback.
//! [`OidcClient::finish`] checks the returned `state`, exchanges the code (with the PKCE verifier and
//! the client's credentials) and verifies the ID token: signature with the provider's keys (asymmetric
//! algorithms only: `none` and the HMAC family are refused, so a token "signed" with a public key as
//! an HMAC secret goes nowhere), issuer, audience, expiry (60 s of clock skew) and nonce. Claims the
//! ID token lacks (providers that follow the spec to the letter put email and profile claims only in
//! the userinfo answer) are read from the userinfo endpoint with the access token, for the same
//! subject.
//!
//! The protocol itself is the `openidconnect` crate's. Its HTTP goes through the workspace's reqwest
//! 0.13 client via [`Http`] (the crate's own reqwest feature would build a second reqwest, 0.12, with
//! its own TLS stack).

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreErrorResponseType, CoreIdToken,
    CoreIdTokenClaims, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AsyncHttpClient, AuthType, AuthorizationCode, ClaimsVerificationError,
    ClientId, ClientSecret, CsrfToken, DiscoveryError, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, HttpRequest, HttpResponse, IssuerUrl, JsonWebKeySetUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    Scope, SignatureVerificationError, StandardErrorResponse, TokenResponse, UserInfoError,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Tolerated difference between our clock and the provider's, for `exp` and `iat`.
const CLOCK_SKEW: TimeDelta = TimeDelta::seconds(60);
/// Each request to the provider (discovery, keys, token, userinfo) gets this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from the provider; discovery documents and key sets are a few kB.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Signing keys are fetched again for an ID token signed with a key we do not know (the provider
/// rotated its keys), at most this often.
const MIN_KEYS_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// ID-token signature algorithms accepted: public-key ones only. The HMAC family (`HS*`) would take
/// the client secret as the key, and `none` has no signature.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 8] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
];

/// `auth.oidc` in atrium.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL, exactly as its discovery document writes it
    /// (`https://accounts.example.com`); discovery is read at `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// Atrium's client id at the provider.
    pub client_id: String,
    /// The environment variable holding the client secret. Neither this nor `client_secret_file`:
    /// a public client (PKCE only).
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// A file holding the client secret (a trailing newline is ignored). Wins over
    /// `client_secret_env`.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Scopes asked for. `openid` is always asked for. Default `openid email profile`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Provider name shown on the sign-in button. Default "Sign in".
    #[serde(default)]
    pub display_name: Option<String>,
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}

impl OidcConfig {
    /// The sign-in button's text.
    pub fn display_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or("Sign in")
    }
}

/// A client secret, from `file` (trailing newline ignored) or else the environment variable `env`;
/// `None` when neither is configured.
pub(super) async fn read_client_secret(
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Option<ClientSecret>, OidcError> {
    if let Some(path) = file {
        let secret = tokio::fs::read_to_string(path).await.map_err(|e| {
            OidcError::Config(format!(
                "cannot read client_secret_file {}: {e}",
                path.display()
            ))
        })?;
        let secret = secret.trim_end_matches(['\r', '\n']);
        if secret.is_empty() {
            return Err(OidcError::Config(format!(
                "client_secret_file {} is empty",
                path.display()
            )));
        }
        return Ok(Some(ClientSecret::new(secret.to_owned())));
    }
    if let Some(name) = env {
        return match std::env::var(name) {
            Ok(secret) if !secret.is_empty() => Ok(Some(ClientSecret::new(secret))),
            _ => Err(OidcError::Config(format!(
                "client_secret_env: environment variable {name} is not set"
            ))),
        };
    }
    Ok(None)
}

/// The callback's `state` against the pending login's, in constant time.
pub(super) fn check_state(pending: &PendingLogin, returned_state: &str) -> Result<(), OidcError> {
    if returned_state.is_empty() {
        return Err(OidcError::StateMissing);
    }
    if pending.state.is_empty()
        || !bool::from(pending.state.as_bytes().ct_eq(returned_state.as_bytes()))
    {
        return Err(OidcError::StateMismatch);
    }
    Ok(())
}

/// What must be kept server-side (in the session row) between [`OidcClient::begin`] and
/// [`OidcClient::finish`]. All three are secrets of this one login; `Debug` does not print them.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The `state` sent to the provider; the callback must bring it back.
    pub state: String,
    /// The `nonce` sent to the provider; the ID token must carry it.
    pub nonce: String,
    /// The PKCE verifier whose S256 challenge was sent to the provider.
    pub pkce_verifier: String,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin").finish_non_exhaustive()
    }
}

/// Who signed in, from verified claims.
#[derive(Debug, Clone)]
pub struct VerifiedLogin {
    /// `sub`: the provider's stable id of the person (unique per issuer).
    pub subject: String,
    pub email: Option<String>,
    /// The provider vouches for `email`; false when it does not say.
    pub email_verified: bool,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
}

/// Why a sign-in failed (with OpenID Connect, or with a GitHub OAuth app in `github`). Messages say
/// what failed, never a token, code, verifier or secret; they are for logs, not for the browser.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("sign-in configuration: {0}")]
    Config(String),
    #[error("OpenID discovery at {issuer} failed: {reason}")]
    Discovery { issuer: String, reason: String },
    #[error("the sign-in callback has no state")]
    StateMissing,
    #[error("the sign-in callback's state does not match the pending login")]
    StateMismatch,
    #[error("the provider refused the code exchange: {error}{}", description_suffix(.description))]
    TokenExchangeRefused {
        /// The OAuth error code (`invalid_grant`, `invalid_client`...).
        error: String,
        description: Option<String>,
    },
    #[error("the token request failed: {0}")]
    TokenRequest(String),
    #[error("the provider's token response has no ID token")]
    MissingIdToken,
    #[error("ID token nonce mismatch: {0}")]
    NonceMismatch(String),
    #[error("ID token has a bad audience: {0}")]
    BadAudience(String),
    #[error("ID token has a bad issuer: {0}")]
    BadIssuer(String),
    #[error("ID token expired or not yet valid: {0}")]
    Expired(String),
    #[error("ID token signing algorithm refused: {0}")]
    AlgorithmRefused(String),
    #[error("ID token signature is invalid: {0}")]
    BadSignature(String),
    #[error("ID token refused: {0}")]
    InvalidIdToken(String),
    #[error("the access token does not match the ID token's at_hash")]
    AccessTokenMismatch,
    #[error("cannot refresh the provider's signing keys: {0}")]
    Keys(String),
    #[error("the userinfo request failed: {0}")]
    UserInfo(String),
}

fn description_suffix(description: &Option<String>) -> String {
    description
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

/// The client of the provider's endpoints, in the typestate `openidconnect` gives it once the
/// authorization and token endpoints are known.
type ProviderClient = CoreClient<
    EndpointSet,      // authorization
    EndpointNotSet,   // device authorization
    EndpointNotSet,   // introspection
    EndpointNotSet,   // revocation
    EndpointSet,      // token
    EndpointMaybeSet, // userinfo
>;

/// A discovered provider, ready for logins. Cheap to clone.
#[derive(Clone)]
pub struct OidcClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: ProviderClient,
    http: Http,
    client_id: ClientId,
    issuer: IssuerUrl,
    jwks_url: JsonWebKeySetUrl,
    scopes: Vec<Scope>,
    keys: Mutex<Keys>,
}

struct Keys {
    set: CoreJsonWebKeySet,
    /// When the keys were last fetched again after discovery.
    refreshed_at: Option<Instant>,
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClient")
            .field("issuer", &self.inner.issuer.as_str())
            .field("client_id", &self.inner.client_id.as_str())
            .finish_non_exhaustive()
    }
}

impl OidcClient {
    /// Discovery + JWKS fetch. `redirect_url` is Atrium's absolute callback URL (e.g.
    /// `http://127.0.0.1:7007/auth/oidc/callback`).
    ///
    /// `http`: the reqwest client to use (the caller may pass one with a custom DNS resolver). It must
    /// not follow redirects (`redirect(reqwest::redirect::Policy::none())`): an answer that comes from
    /// another URL than the one asked is refused.
    pub async fn discover(
        config: &OidcConfig,
        redirect_url: &str,
        http: reqwest::Client,
    ) -> Result<Self, OidcError> {
        let issuer = IssuerUrl::new(config.issuer.clone())
            .map_err(|e| OidcError::Config(format!("issuer {:?}: {e}", config.issuer)))?;
        let redirect_url = RedirectUrl::new(redirect_url.to_owned())
            .map_err(|e| OidcError::Config(format!("redirect URL {redirect_url:?}: {e}")))?;
        let client_id = ClientId::new(config.client_id.clone());
        let client_secret = read_client_secret(
            config.client_secret_file.as_deref(),
            config.client_secret_env.as_deref(),
        )
        .await?;
        let http = Http(http);

        let discovery_failed = |reason: String| OidcError::Discovery {
            issuer: config.issuer.clone(),
            reason,
        };
        let metadata = CoreProviderMetadata::discover_async(issuer.clone(), &http)
            .await
            .map_err(|e| discovery_failed(describe_discovery_error(&e)))?;
        let token_url = metadata
            .token_endpoint()
            .cloned()
            .ok_or_else(|| discovery_failed("the provider has no token endpoint".into()))?;
        // client_secret_basic is the default method (RFC 8414); some providers take only _post.
        let auth_type = match metadata.token_endpoint_auth_methods_supported() {
            Some(methods)
                if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                    && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
            {
                AuthType::RequestBody
            }
            _ => AuthType::BasicAuth,
        };
        let jwks_url = metadata.jwks_uri().clone();
        let keys = metadata.jwks().clone();

        let client = CoreClient::from_provider_metadata(metadata, client_id.clone(), client_secret)
            .set_redirect_uri(redirect_url)
            .set_auth_type(auth_type)
            .set_token_uri(token_url);
        let scopes = config
            .scopes
            .iter()
            .filter(|s| s.as_str() != "openid") // always sent by the client
            .map(|s| Scope::new(s.clone()))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                http,
                client_id,
                issuer,
                jwks_url,
                scopes,
                keys: Mutex::new(Keys {
                    set: keys,
                    refreshed_at: None,
                }),
            }),
        })
    }

    /// A fresh login: the provider URL to redirect the browser to, and what must be kept server-side
    /// (in the session row) until the callback.
    pub fn begin(&self) -> (String, PendingLogin) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = self
            .inner
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(self.inner.scopes.iter().cloned())
            .set_pkce_challenge(challenge)
            .url();
        let pending = PendingLogin {
            state: state.into_secret(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.into_secret(),
        };
        (url.into(), pending)
    }

    /// The callback: checks `state` (constant-time) against the pending login, exchanges the code with
    /// the PKCE verifier, verifies the ID token (signature with the provider's JWKS, iss, aud, exp,
    /// nonce; only asymmetric algorithms) and returns the verified claims.
    pub async fn finish(
        &self,
        pending: &PendingLogin,
        returned_state: &str,
        code: &str,
    ) -> Result<VerifiedLogin, OidcError> {
        check_state(pending, returned_state)?;

        let inner = &self.inner;
        let response = inner
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&inner.http)
            .await
            .map_err(token_error)?;
        let id_token = response.id_token().ok_or(OidcError::MissingIdToken)?;
        let nonce = Nonce::new(pending.nonce.clone());

        let mut verifier = self.verifier(self.keys());
        let mut claims = id_token.claims(&verifier, &nonce);
        if let Err(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        )) = claims
            && self.may_refresh_keys()
        {
            // A key we have not seen: the provider may have rotated its keys since discovery.
            let fresh = CoreJsonWebKeySet::fetch_async(&inner.jwks_url, &inner.http)
                .await
                .map_err(|e| OidcError::Keys(describe_discovery_error(&e)))?;
            self.store_keys(fresh.clone());
            verifier = self.verifier(fresh);
            claims = id_token.claims(&verifier, &nonce);
        }
        let claims = claims.map_err(claims_error)?;
        self.verified_login(&response, id_token, claims, &verifier)
            .await
    }

    /// The login a verified ID token describes, with what it lacks filled in from userinfo.
    async fn verified_login(
        &self,
        response: &CoreTokenResponse,
        id_token: &CoreIdToken,
        claims: &CoreIdTokenClaims,
        verifier: &CoreIdTokenVerifier<'static>,
    ) -> Result<VerifiedLogin, OidcError> {
        // The access token is used below; make sure it is the one issued with this ID token.
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token
                .signing_alg()
                .map_err(|e| OidcError::AlgorithmRefused(e.to_string()))?;
            let key = id_token
                .signing_key(verifier)
                .map_err(|e| OidcError::BadSignature(e.to_string()))?;
            let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
                .map_err(|e| OidcError::InvalidIdToken(format!("at_hash: {e}")))?;
            if actual != *expected {
                return Err(OidcError::AccessTokenMismatch);
            }
        }

        let mut login = VerifiedLogin {
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified().unwrap_or(false),
            preferred_username: claims.preferred_username().map(|u| u.as_str().to_owned()),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
        };
        let incomplete =
            login.email.is_none() || login.preferred_username.is_none() || login.name.is_none();
        if incomplete
            && let Ok(request) = self.inner.client.user_info(
                response.access_token().clone(),
                Some(claims.subject().clone()),
            )
        {
            // The request checks that userinfo speaks of the same subject.
            let info: CoreUserInfoClaims = request
                .request_async(&self.inner.http)
                .await
                .map_err(describe_userinfo_error)?;
            if login.email.is_none() {
                // Email and its verification come from the same source, never one from each.
                login.email = info.email().map(|e| e.as_str().to_owned());
                login.email_verified = info.email_verified().unwrap_or(false);
            }
            if login.preferred_username.is_none() {
                login.preferred_username = info.preferred_username().map(|u| u.as_str().to_owned());
            }
            if login.name.is_none() {
                login.name = info
                    .name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().to_owned());
            }
        }
        Ok(login)
    }

    fn verifier(&self, keys: CoreJsonWebKeySet) -> CoreIdTokenVerifier<'static> {
        // A public-client verifier even when we have a secret: it refuses HMAC-signed ID tokens.
        CoreIdTokenVerifier::new_public_client(
            self.inner.client_id.clone(),
            self.inner.issuer.clone(),
            keys,
        )
        .set_allowed_algs(ALLOWED_ALGS)
        // `exp` is compared with a clock set back by the skew, so a token is good until exp + skew.
        .set_time_fn(|| Utc::now() - CLOCK_SKEW)
        .set_issue_time_verifier_fn(|iat| {
            if iat > Utc::now() + CLOCK_SKEW {
                Err(format!("issued in the future ({iat})"))
            } else {
                Ok(())
            }
        })
    }

    fn keys(&self) -> CoreJsonWebKeySet {
        let keys = self
            .inner
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        keys.set.clone()
    }

    /// Whether the keys may be fetched again now; if so, marks them as being refreshed.
    fn may_refresh_keys(&self) -> bool {
        let mut keys = self
            .inner
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let allowed = keys
            .refreshed_at
            .is_none_or(|at| at.elapsed() >= MIN_KEYS_REFRESH_INTERVAL);
        if allowed {
            keys.refreshed_at = Some(Instant::now());
        }
        allowed
    }

    fn store_keys(&self, set: CoreJsonWebKeySet) {
        let mut keys = self
            .inner
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        keys.set = set;
    }
}

fn claims_error(error: ClaimsVerificationError) -> OidcError {
    match error {
        ClaimsVerificationError::InvalidNonce(m) => OidcError::NonceMismatch(m),
        ClaimsVerificationError::InvalidAudience(m) => OidcError::BadAudience(m),
        ClaimsVerificationError::InvalidIssuer(m) => OidcError::BadIssuer(m),
        ClaimsVerificationError::Expired(m) => OidcError::Expired(m),
        ClaimsVerificationError::SignatureVerification(
            e @ (SignatureVerificationError::DisallowedAlg(_)
            | SignatureVerificationError::UnsupportedAlg(_)
            | SignatureVerificationError::NoSignature),
        ) => OidcError::AlgorithmRefused(e.to_string()),
        ClaimsVerificationError::SignatureVerification(e) => OidcError::BadSignature(e.to_string()),
        other => OidcError::InvalidIdToken(other.to_string()),
    }
}

pub(super) type TokenError =
    RequestTokenError<HttpError, StandardErrorResponse<CoreErrorResponseType>>;

pub(super) fn token_error(error: TokenError) -> OidcError {
    match error {
        RequestTokenError::ServerResponse(response) => OidcError::TokenExchangeRefused {
            error: response.error().as_ref().to_owned(),
            description: response.error_description().cloned(),
        },
        RequestTokenError::Request(e) => OidcError::TokenRequest(e.to_string()),
        // Not the body: it may hold tokens.
        RequestTokenError::Parse(e, _body) => {
            OidcError::TokenRequest(format!("unreadable response at {}", e.path()))
        }
        RequestTokenError::Other(m) => OidcError::TokenRequest(m),
    }
}

fn describe_discovery_error(error: &DiscoveryError<HttpError>) -> String {
    match error {
        DiscoveryError::Request(e) => e.to_string(),
        DiscoveryError::Response(status, _body, message) => format!("HTTP {status}: {message}"),
        DiscoveryError::Parse(e) => format!("unreadable document: {e}"),
        DiscoveryError::UrlParse(e) => format!("bad URL: {e}"),
        DiscoveryError::Validation(m) | DiscoveryError::Other(m) => m.clone(),
        other => other.to_string(),
    }
}

fn describe_userinfo_error(error: UserInfoError<HttpError>) -> OidcError {
    OidcError::UserInfo(match error {
        UserInfoError::ClaimsVerification(e) => e.to_string(),
        UserInfoError::Parse(e) => format!("unreadable response at {}", e.path()),
        UserInfoError::Request(e) => e.to_string(),
        UserInfoError::Response(status, _body, message) => format!("HTTP {status}: {message}"),
        UserInfoError::Other(m) => m,
        other => other.to_string(),
    })
}

/// `openidconnect`'s HTTP client over our reqwest 0.13 client: bounded time and size, and no
/// redirects (one followed by a misconfigured client shows up as an answer from another URL).
#[derive(Clone)]
pub(super) struct Http(pub(super) reqwest::Client);

/// Why a request to the provider failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum HttpError {
    #[error("{0}")]
    Request(#[from] reqwest::Error),
    #[error("{0}")]
    Build(#[from] openidconnect::http::Error),
    #[error("{url} redirected to {to}; redirects are not followed")]
    Redirected { url: String, to: String },
    #[error("{url} answered with more than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge { url: String },
}

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let mut request = reqwest::Request::try_from(request)?;
            *request.timeout_mut() = Some(REQUEST_TIMEOUT);
            let url = request.url().clone();
            let mut response = self.0.execute(request).await?;
            if response.url() != &url {
                return Err(HttpError::Redirected {
                    url: url.to_string(),
                    to: response.url().to_string(),
                });
            }
            let mut answer = openidconnect::http::Response::builder()
                .status(response.status())
                .version(response.version());
            if let Some(headers) = answer.headers_mut() {
                headers.extend(response.headers().clone());
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(HttpError::TooLarge {
                        url: url.to_string(),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(answer.body(body)?)
        })
    }
}
