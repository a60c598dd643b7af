//! Sign-in with a GitHub OAuth app (github.com or GitHub Enterprise Server), for organisations without
//! an OpenID provider. GitHub OAuth apps speak plain OAuth 2 (no ID token), so who signed in is read
//! from the REST API with the access token: `GET /user` (id, login, name) and `GET /user/emails` (the
//! primary address, if verified).
//!
//! Same shape as [`super::oidc`]: [`GithubClient::begin`] gives the URL to send the browser to and a
//! [`PendingLogin`] (its `nonce` unused) to keep server-side; [`GithubClient::finish`] checks `state`,
//! exchanges the code (with PKCE, which GitHub supports for OAuth apps) and returns a
//! [`VerifiedLogin`] whose subject is GitHub's numeric user id. That id is stable across renames;
//! the login is not. Subjects are only unique per provider: key identities by provider and subject.

use oauth2::basic::BasicClient;
use oauth2::http::{HeaderValue, Method, Request, StatusCode, header};
use oauth2::{
    AccessToken, AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, ClientId, CsrfToken,
    EndpointNotSet, EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, StandardErrorResponse, TokenResponse, TokenUrl,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::oidc::{
    Http, OidcError, PendingLogin, VerifiedLogin, check_state, read_client_secret, token_error,
};

/// `auth.github` in atrium.yaml: a GitHub OAuth app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    /// The OAuth app's client id.
    pub client_id: String,
    /// The environment variable holding the OAuth app's client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// A file holding the client secret (a trailing newline is ignored). Wins over
    /// `client_secret_env`. One of the two is required.
    #[serde(default)]
    pub client_secret_file: Option<std::path::PathBuf>,
    /// The REST API. Default `https://api.github.com`; GitHub Enterprise Server:
    /// `https://<host>/api/v3`.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Where people sign in (the OAuth endpoints live under it). Default `https://github.com`.
    #[serde(default = "default_web_url")]
    pub web_url: String,
    /// Text of the sign-in button. Default "Sign in with GitHub".
    #[serde(default)]
    pub display_name: Option<String>,
}

fn default_api_url() -> String {
    "https://api.github.com".into()
}

fn default_web_url() -> String {
    "https://github.com".into()
}

impl GithubConfig {
    /// The sign-in button's text.
    pub fn display_name(&self) -> &str {
        self.display_name
            .as_deref()
            .unwrap_or("Sign in with GitHub")
    }
}

/// Scopes asked for: the profile and the email addresses, read-only.
const SCOPES: [&str; 2] = ["read:user", "user:email"];

type AppClient = BasicClient<
    EndpointSet,    // authorization
    EndpointNotSet, // device authorization
    EndpointNotSet, // introspection
    EndpointNotSet, // revocation
    EndpointSet,    // token
>;

/// A GitHub OAuth app, ready for logins. Cheap to clone.
#[derive(Clone)]
pub struct GithubClient {
    client: AppClient,
    http: Http,
    api_url: url::Url,
}

impl std::fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubClient")
            .field("client_id", &self.client.client_id().as_str())
            .field("api_url", &self.api_url.as_str())
            .finish_non_exhaustive()
    }
}

impl GithubClient {
    /// Reads the client secret and checks the URLs. `redirect_url` is Atrium's absolute callback URL;
    /// `http` must not follow redirects, as for [`super::oidc::OidcClient::discover`].
    pub async fn new(
        config: &GithubConfig,
        redirect_url: &str,
        http: reqwest::Client,
    ) -> Result<Self, OidcError> {
        let secret = read_client_secret(
            config.client_secret_file.as_deref(),
            config.client_secret_env.as_deref(),
        )
        .await?
        .ok_or_else(|| {
            OidcError::Config("auth.github needs client_secret_file or client_secret_env".into())
        })?;
        let web_url = base_url("web_url", &config.web_url)?;
        let api_url = base_url("api_url", &config.api_url)?;
        let endpoint = |path: &str| {
            web_url
                .join(path)
                .map(String::from)
                .map_err(|e| OidcError::Config(format!("web_url: {e}")))
        };
        let client =
            BasicClient::new(ClientId::new(config.client_id.clone()))
                .set_client_secret(secret)
                .set_auth_uri(
                    AuthUrl::new(endpoint("login/oauth/authorize")?)
                        .map_err(|e| OidcError::Config(format!("web_url: {e}")))?,
                )
                .set_token_uri(
                    TokenUrl::new(endpoint("login/oauth/access_token")?)
                        .map_err(|e| OidcError::Config(format!("web_url: {e}")))?,
                )
                .set_redirect_uri(RedirectUrl::new(redirect_url.to_owned()).map_err(|e| {
                    OidcError::Config(format!("redirect URL {redirect_url:?}: {e}"))
                })?)
                // GitHub documents the credentials as form parameters.
                .set_auth_type(AuthType::RequestBody);
        Ok(Self {
            client,
            http: Http(http),
            api_url,
        })
    }

    /// A fresh login: the GitHub URL to redirect the browser to, and what must be kept server-side
    /// until the callback (`nonce` is empty: there is no ID token).
    pub fn begin(&self) -> (String, PendingLogin) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(SCOPES.map(|s| Scope::new(s.to_owned())))
            .set_pkce_challenge(challenge)
            .url();
        let pending = PendingLogin {
            state: state.into_secret(),
            nonce: String::new(),
            pkce_verifier: verifier.into_secret(),
        };
        (url.into(), pending)
    }

    /// The callback: checks `state` (constant-time), exchanges the code with the PKCE verifier, then
    /// asks the API who the token belongs to.
    pub async fn finish(
        &self,
        pending: &PendingLogin,
        returned_state: &str,
        code: &str,
    ) -> Result<VerifiedLogin, OidcError> {
        check_state(pending, returned_state)?;
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(github_token_error)?;
        let token = response.access_token();

        let user: User = self.get(token, &["user"]).await?;
        let emails: Vec<Email> = self.get(token, &["user", "emails"]).await?;
        let email = emails.into_iter().find(|e| e.primary && e.verified);
        Ok(VerifiedLogin {
            subject: user.id.to_string(),
            email_verified: email.is_some(),
            email: email.map(|e| e.email),
            preferred_username: Some(user.login),
            name: user.name.filter(|n| !n.is_empty()),
        })
    }

    /// A GET of the REST API as the signed-in person.
    async fn get<T: DeserializeOwned>(
        &self,
        token: &AccessToken,
        segments: &[&str],
    ) -> Result<T, OidcError> {
        let mut url = self.api_url.clone();
        url.path_segments_mut()
            .map_err(|()| OidcError::Config("api_url cannot be a base".into()))?
            .pop_if_empty()
            .extend(segments);
        let path = url.path().to_owned();
        let failed = |why: String| OidcError::UserInfo(format!("GitHub GET {path}: {why}"));
        let bearer = HeaderValue::try_from(format!("Bearer {}", token.secret()))
            .map_err(|_| failed("unusable access token".into()))?;
        let request = Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .header(header::AUTHORIZATION, bearer)
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .body(Vec::new())
            .map_err(|e| failed(e.to_string()))?;
        let response = self
            .http
            .call(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if response.status() != StatusCode::OK {
            return Err(failed(format!("HTTP {}", response.status())));
        }
        serde_json::from_slice(response.body()).map_err(|e| failed(format!("unreadable: {e}")))
    }
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    primary: bool,
    verified: bool,
}

/// GitHub answers a refused exchange with `200 OK` and an error object, which reads as a token
/// response that does not parse: read it as the refusal it is.
fn github_token_error(error: super::oidc::TokenError) -> OidcError {
    if let RequestTokenError::Parse(_, body) = &error
        && let Ok(refusal) = serde_json::from_slice::<
            StandardErrorResponse<oauth2::basic::BasicErrorResponseType>,
        >(body)
    {
        return token_error(RequestTokenError::ServerResponse(refusal));
    }
    token_error(error)
}

/// An http(s) URL that paths can be added to.
fn base_url(field: &str, value: &str) -> Result<url::Url, OidcError> {
    let mut url = url::Url::parse(value)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http") && !u.cannot_be_a_base())
        .ok_or_else(|| OidcError::Config(format!("{field} {value:?} is not an http(s) URL")))?;
    // `join` keeps the last segment only after a slash (`.../api/v3` + `user`).
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}
