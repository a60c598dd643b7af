//! Signing in with a browser: `/signin`, the round trip to an OpenID Connect provider or a GitHub
//! OAuth app (`/auth/oidc/start` → provider → `/auth/oidc/callback`, the same under `/auth/github/`),
//! and `/signout`.
//!
//! `start` keeps the login's secrets (`state`, nonce, PKCE verifier) and where to go afterwards in a
//! session row without a user, whose id is the cookie. `callback` takes that row (once: it is
//! deleted), has the provider's answer checked (`oidc`, `github`), finds the catalog User the person
//! is (`auth.sign_in_resolvers`) and starts a session under a new id, so an id planted in the browser
//! before the sign-in (session fixation) is worth nothing after it. When no User matches there is no
//! session: a page says why, and the audit log has a `sign-in` event `denied`.
//!
//! Providers are contacted at the first sign-in, not at start-up: one that is down does not stop
//! Atrium, and the sign-in page says so when its button is used.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::config::Resolver;
use super::github::GithubClient;
use super::middleware::{SESSION_COOKIE, session_cookie};
use super::oidc::{OidcClient, OidcError, PendingLogin, VerifiedLogin};
use super::service::AuthService;
use crate::catalog::CatalogService;
use crate::catalog::db::EntityQuery;
use crate::catalog::filter::Filter;
use crate::catalog::model::EntityRef;
use crate::catalog::service::parse_stored;
use crate::config::Config;
use crate::error::{AppError, OwnErrorBody};
use crate::http::{Path, QueryParams};
use crate::ui::csrf::check_same_origin;

/// How long a sign-in may take between leaving for the provider and coming back.
const LOGIN_SECONDS: u64 = 10 * 60;
/// The longest `returnTo` kept; a longer one leads to `/`.
const MAX_RETURN_TO: usize = 2048;

/// `/signin`, `/auth/{oidc,github}/{start,callback}`, `/signout`. All are public (the
/// authentication middleware lets them through without a caller).
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AuthService: FromRef<S>,
    CatalogService: FromRef<S>,
    Arc<Config>: FromRef<S>,
{
    // The providers' clients live as long as this router: made at the first sign-in, then kept.
    let clients = Clients::default();
    let start_clients = clients.clone();
    Router::new()
        .route("/signin", get(show_signin))
        .route(
            "/auth/{provider}/start",
            get(
                move |signin: Signin, Path(provider): Path<String>, query: QueryParams| {
                    start_login(signin, start_clients.clone(), provider, query)
                },
            ),
        )
        .route(
            "/auth/{provider}/callback",
            get(
                move |signin: Signin,
                      Path(provider): Path<String>,
                      query: QueryParams,
                      headers: HeaderMap| {
                    finish_login(signin, clients.clone(), provider, query, headers)
                },
            ),
        )
        .route("/signout", post(sign_out))
}

/// What the sign-in handlers use, from the router's state.
struct Signin {
    auth: AuthService,
    catalog: CatalogService,
    config: Arc<Config>,
}

impl<S> FromRequestParts<S> for Signin
where
    S: Send + Sync,
    AuthService: FromRef<S>,
    CatalogService: FromRef<S>,
    Arc<Config>: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            auth: AuthService::from_ref(state),
            catalog: CatalogService::from_ref(state),
            config: Arc::<Config>::from_ref(state),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Oidc,
    Github,
}

impl Provider {
    fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Github => "github",
        }
    }
}

/// The providers' clients, made at first use: discovery is a round trip, and a provider that is down
/// must not stop start-up. One that failed is tried again at the next sign-in.
#[derive(Clone, Default)]
struct Clients {
    oidc: Arc<OnceCell<OidcClient>>,
    github: Arc<OnceCell<GithubClient>>,
}

/// A provider's client, whichever kind it is.
enum Client {
    Oidc(OidcClient),
    Github(Box<GithubClient>),
}

impl Client {
    fn begin(&self) -> (String, PendingLogin) {
        match self {
            Self::Oidc(client) => client.begin(),
            Self::Github(client) => client.begin(),
        }
    }

    async fn finish(
        &self,
        pending: &PendingLogin,
        state: &str,
        code: &str,
    ) -> Result<VerifiedLogin, OidcError> {
        match self {
            Self::Oidc(client) => client.finish(pending, state, code).await,
            Self::Github(client) => client.finish(pending, state, code).await,
        }
    }
}

impl Signin {
    /// A configured provider by its path segment; 404 for anything else.
    fn provider(&self, segment: &str) -> Result<Provider, AppError> {
        let auth = &self.config.auth;
        match segment {
            "oidc" if auth.oidc.is_some() => Ok(Provider::Oidc),
            "github" if auth.github.is_some() => Ok(Provider::Github),
            _ => Err(
                AppError::not_found(format!("Sign-in with `{segment}` is not configured."))
                    .suggest("/signin", "Go to the sign-in page"),
            ),
        }
    }

    fn display_name(&self, provider: Provider) -> &str {
        let auth = &self.config.auth;
        match provider {
            Provider::Oidc => auth.oidc.as_ref().map_or("", |c| c.display_name()),
            Provider::Github => auth.github.as_ref().map_or("", |c| c.display_name()),
        }
    }

    /// Where the provider sends the browser back to: `<public_url>/auth/<provider>/callback`.
    fn callback_url(&self, provider: Provider) -> String {
        let base = match &self.config.auth.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.config.server.listen),
        };
        format!("{base}/auth/{}/callback", provider.as_str())
    }

    /// The provider's client, discovered (OpenID Connect) or set up (GitHub) at first use.
    async fn client(&self, clients: &Clients, provider: Provider) -> Result<Client, OidcError> {
        let http = || {
            // Redirects are not followed: `oidc::Http` refuses an answer from another URL.
            crate::tls::http_client()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| OidcError::Config(format!("HTTP client: {e}")))
        };
        let redirect_url = self.callback_url(provider);
        let not_configured = || OidcError::Config("not configured".to_owned());
        match provider {
            Provider::Oidc => {
                let config = self.config.auth.oidc.as_ref().ok_or_else(not_configured)?;
                let client = clients
                    .oidc
                    .get_or_try_init(|| async {
                        OidcClient::discover(config, &redirect_url, http()?).await
                    })
                    .await?;
                Ok(Client::Oidc(client.clone()))
            }
            Provider::Github => {
                let config = self
                    .config
                    .auth
                    .github
                    .as_ref()
                    .ok_or_else(not_configured)?;
                let client = clients
                    .github
                    .get_or_try_init(|| async {
                        GithubClient::new(config, &redirect_url, http()?).await
                    })
                    .await?;
                Ok(Client::Github(Box::new(client.clone())))
            }
        }
    }

    /// The sign-in page; `failed` puts a message under one provider's button.
    fn page(
        &self,
        return_to: &str,
        signed_in_as: Option<String>,
        failed: Option<(Provider, String)>,
        error: String,
    ) -> SigninPage {
        let auth = &self.config.auth;
        let configured = [
            (Provider::Oidc, auth.oidc.is_some()),
            (Provider::Github, auth.github.is_some()),
        ];
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("returnTo", return_to)
            .finish();
        let providers = configured
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(provider, _)| ProviderButton {
                href: format!("/auth/{}/start?{query}", provider.as_str()),
                label: self.display_name(provider).to_owned(),
                error: failed
                    .as_ref()
                    .filter(|(p, _)| *p == provider)
                    .map(|(_, message)| message.clone())
                    .unwrap_or_default(),
            })
            .collect();
        SigninPage {
            providers,
            guest: auth.guest,
            return_to: return_to.to_owned(),
            signed_in_as: signed_in_as.unwrap_or_default(),
            error,
        }
    }

    /// The sign-in page again, with `error`, answered with `status`.
    fn retry(&self, status: StatusCode, return_to: &str, error: String) -> Response {
        own_page(status, self.page(return_to, None, None, error))
    }

    fn unavailable(&self, provider: Provider, return_to: &str, error: &OidcError) -> Response {
        tracing::warn!(provider = provider.as_str(), error = %error, "sign-in provider unavailable");
        let message = format!(
            "{} is not available just now; try again in a while. The server log says why.",
            self.display_name(provider)
        );
        let page = self.page(return_to, None, Some((provider, message)), String::new());
        own_page(StatusCode::SERVICE_UNAVAILABLE, page)
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/signin.html")]
struct SigninPage {
    providers: Vec<ProviderButton>,
    guest: bool,
    /// Where to go after signing in (already checked), for the guest's and the signed-in link.
    return_to: String,
    /// The user ref of the session the browser holds, if any.
    signed_in_as: String,
    /// Why the last attempt did not sign anyone in, when no one provider is to blame.
    error: String,
}

struct ProviderButton {
    href: String,
    label: String,
    /// Why this provider cannot be used just now.
    error: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/no_match.html")]
struct NoMatchPage {
    /// The provider's display name.
    provider: String,
    /// Who the provider says signed in: the email, else the user name, else the subject.
    identity: String,
    /// The verified email, if any.
    email: String,
    /// What the resolvers looked for, in words.
    tried: Vec<String>,
    /// Users that matched together, when more than one did.
    ambiguous: Vec<String>,
    request_id: String,
}

/// `GET /signin?returnTo=`: a button per configured provider.
async fn show_signin(
    signin: Signin,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let return_to = safe_return_to(&query.one("returnTo").unwrap_or_default());
    let signed_in_as = match session_cookie(&headers) {
        Some(id) => signin.auth.session_caller(&id).await?.map(|c| c.user_ref),
        None => None,
    };
    Ok((
        no_store(),
        signin.page(&return_to, signed_in_as, None, String::new()),
    )
        .into_response())
}

/// `GET /auth/{provider}/start?returnTo=`: a session row holding the login under way, its cookie,
/// and off to the provider.
async fn start_login(
    signin: Signin,
    clients: Clients,
    provider: String,
    query: QueryParams,
) -> Result<Response, AppError> {
    let provider = signin.provider(&provider)?;
    let return_to = safe_return_to(&query.one("returnTo").unwrap_or_default());
    let client = match signin.client(&clients, provider).await {
        Ok(client) => client,
        Err(e) => return Ok(signin.unavailable(provider, &return_to, &e)),
    };
    let (url, pending) = client.begin();
    let stored = json!({"provider": provider.as_str(), "login": pending});
    let id = signin
        .auth
        .begin_login(&stored, &return_to, LOGIN_SECONDS)
        .await?;
    Ok((
        no_store(),
        [(header::SET_COOKIE, set_cookie(&id, LOGIN_SECONDS)?)],
        Redirect::to(&url),
    )
        .into_response())
}

/// `GET /auth/{provider}/callback?code=&state=`: the provider's answer, checked against the login
/// under way; then the catalog User, a new session, and back to `returnTo`.
async fn finish_login(
    signin: Signin,
    clients: Clients,
    provider: String,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let provider = signin.provider(&provider)?;
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let taken = match session_cookie(&headers) {
        Some(id) => signin.auth.take_login(&id).await?,
        None => None,
    };
    let expired = || {
        signin.retry(
            StatusCode::BAD_REQUEST,
            "/",
            "This sign-in ran out of time or was already used (or the browser did not keep its cookie). Start again.".to_owned(),
        )
    };
    // Nothing taken: the browser may hold a signed-in session, which stays.
    let Some((stored, return_to)) = taken else {
        return Ok(expired());
    };
    // From here the login under way is gone; so goes its cookie, whatever happens.
    let clear = [(header::SET_COOKIE, clear_cookie())];
    let pending = (stored["provider"] == provider.as_str())
        .then(|| serde_json::from_value::<PendingLogin>(stored["login"].clone()).ok())
        .flatten();
    let Some(pending) = pending else {
        return Ok((clear, expired()).into_response());
    };
    let return_to = safe_return_to(&return_to);
    let name = signin.display_name(provider).to_owned();

    if let Some(error) = query.one("error") {
        // The provider sent the browser back without a sign-in: the person declined, or it refused.
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        let message = format!("{name} did not sign you in ({error}).");
        let page = signin.retry(StatusCode::BAD_REQUEST, &return_to, message);
        return Ok((clear, page).into_response());
    }
    let client = match signin.client(&clients, provider).await {
        Ok(client) => client,
        Err(e) => return Ok((clear, signin.unavailable(provider, &return_to, &e)).into_response()),
    };
    let state = query.one("state").unwrap_or_default();
    let code = query.one("code").unwrap_or_default();
    let login = match client.finish(&pending, &state, &code).await {
        Ok(login) => login,
        Err(e) => {
            tracing::warn!(provider = provider.as_str(), error = %e, "sign-in refused");
            signin
                .auth
                .sign_in_refused(
                    provider.as_str(),
                    "",
                    "failure",
                    json!({"provider": provider.as_str(), "reason": e.to_string()}),
                    request_id.as_deref(),
                )
                .await?;
            let status = match e {
                OidcError::StateMissing | OidcError::StateMismatch => StatusCode::BAD_REQUEST,
                _ => StatusCode::BAD_GATEWAY,
            };
            let message = format!(
                "The answer from {name} could not be verified, so you were not signed in. Try again; if it keeps happening, the server log says why."
            );
            return Ok((clear, signin.retry(status, &return_to, message)).into_response());
        }
    };

    let resolvers = &signin.config.auth.sign_in_resolvers;
    match resolve_user(&signin.catalog, resolvers, &login).await? {
        Resolution::User(user_ref) => {
            let id = signin
                .auth
                .sign_in(&user_ref, request_id.as_deref())
                .await?;
            let max_age = signin.config.auth.session_absolute_timeout_seconds;
            Ok((
                no_store(),
                [(header::SET_COOKIE, set_cookie(&id, max_age)?)],
                Redirect::to(&return_to),
            )
                .into_response())
        }
        Resolution::NoMatch { tried, ambiguous } => {
            let email = verified_email(&login).unwrap_or_default().to_owned();
            let identity = [Some(email.as_str()), login.preferred_username.as_deref()]
                .into_iter()
                .flatten()
                .find(|s| !s.is_empty())
                .unwrap_or(&login.subject)
                .to_owned();
            signin
                .auth
                .sign_in_refused(
                    &format!("{}:{}", provider.as_str(), login.subject),
                    &identity,
                    "denied",
                    json!({
                        "provider": provider.as_str(),
                        "subject": login.subject,
                        "email": login.email,
                        "emailVerified": login.email_verified,
                        "username": login.preferred_username,
                        "reason": if ambiguous.is_empty() { "no User entity matches" } else { "several User entities match" },
                        "matched": ambiguous,
                    }),
                    request_id.as_deref(),
                )
                .await?;
            let page = NoMatchPage {
                provider: name,
                identity,
                email,
                tried,
                ambiguous,
                request_id: request_id.unwrap_or_default(),
            };
            Ok((clear, own_page(StatusCode::FORBIDDEN, page)).into_response())
        }
    }
}

/// `POST /signout`: ends the browser's session, clears its cookie, back to `/signin`.
async fn sign_out(signin: Signin, headers: HeaderMap) -> Result<Response, AppError> {
    check_same_origin(&headers)?;
    if let Some(id) = session_cookie(&headers)
        && let Some(mut caller) = signin.auth.session_caller(&id).await?
    {
        caller.request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        signin.auth.sign_out(&id, &caller).await?;
    }
    Ok((
        no_store(),
        [(header::SET_COOKIE, clear_cookie())],
        Redirect::to("/signin"),
    )
        .into_response())
}

/// Who a signed-in person is in the catalog.
#[derive(Debug, PartialEq, Eq)]
enum Resolution {
    /// The User's entity ref.
    User(String),
    /// No resolver found exactly one User: what each looked for, and the Users found together.
    NoMatch {
        tried: Vec<String>,
        ambiguous: Vec<String>,
    },
}

/// The email the provider vouches for, if any.
fn verified_email(login: &VerifiedLogin) -> Option<&str> {
    login
        .email
        .as_deref()
        .filter(|e| login.email_verified && !e.is_empty())
}

/// The User `login` is, by the first of `resolvers` that finds exactly one. Several Users with the
/// person's email is a refusal, not a pick: the catalog is wrong, and guessing would sign someone in
/// as another person.
async fn resolve_user(
    catalog: &CatalogService,
    resolvers: &[Resolver],
    login: &VerifiedLogin,
) -> Result<Resolution, AppError> {
    let email = verified_email(login);
    let mut tried = Vec::new();
    for resolver in resolvers {
        match resolver {
            Resolver::Email => {
                let Some(email) = email else { continue };
                tried.push(format!("a User whose spec.profile.email is {email}"));
                let mut users = users_with_email(catalog, email).await?;
                if users.len() > 1 {
                    return Ok(Resolution::NoMatch {
                        tried,
                        ambiguous: users,
                    });
                }
                if let Some(user) = users.pop() {
                    return Ok(Resolution::User(user));
                }
            }
            Resolver::EmailLocalPart => {
                let Some((local, _)) = email.and_then(|e| e.rsplit_once('@')) else {
                    continue;
                };
                tried.push(format!("a User named {local} (the email's local part)"));
                if let Some(user) = user_named(catalog, local).await? {
                    return Ok(Resolution::User(user));
                }
            }
            Resolver::Username => {
                let Some(username) = login.preferred_username.as_deref() else {
                    continue;
                };
                tried.push(format!("a User named {username} (the user name)"));
                if let Some(user) = user_named(catalog, username).await? {
                    return Ok(Resolution::User(user));
                }
            }
        }
    }
    Ok(Resolution::NoMatch {
        tried,
        ambiguous: Vec::new(),
    })
}

/// Refs of the Users whose `spec.profile.email` is `email` (case-insensitive); at most two, which
/// is enough to tell one from several.
async fn users_with_email(catalog: &CatalogService, email: &str) -> Result<Vec<String>, AppError> {
    let wanted = email.to_lowercase();
    let filter = Filter::All(vec![
        Filter::In("kind".to_owned(), vec!["user".to_owned()]),
        Filter::In("spec.profile.email".to_owned(), vec![wanted.clone()]),
    ]);
    let query = EntityQuery {
        filter: Some(&filter),
        limit: Some(2),
        ..EntityQuery::default()
    };
    let mut users = Vec::new();
    for row in catalog.query_page(&query).await? {
        let entity = parse_stored(&row.body)?;
        // The filter's index holds every value of the field; keep the Users whose email it is.
        let matches = entity
            .pointer("/spec/profile/email")
            .and_then(Value::as_str)
            .is_some_and(|e| e.to_lowercase() == wanted);
        if let Some(reference) = EntityRef::of_entity(&entity).filter(|_| matches) {
            users.push(reference.key());
        }
    }
    Ok(users)
}

/// The ref of the User `name` in the default namespace, if there is one.
async fn user_named(catalog: &CatalogService, name: &str) -> Result<Option<String>, AppError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Ok(None);
    }
    let key = format!("user:default/{}", name.to_ascii_lowercase());
    Ok(catalog.entity(&key).await?.map(|_| key))
}

/// `Set-Cookie` for a session id: `__Host-` (this host only, path `/`, `Secure`), out of scripts'
/// reach, sent on top-level navigations from other sites (the provider's redirect back) but not on
/// their form posts.
fn set_cookie(id: &str, max_age: u64) -> Result<HeaderValue, AppError> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    ))
    .map_err(|e| AppError::Internal(anyhow::anyhow!("session cookie: {e}")))
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-atrium_session=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
    )
}

/// One of this module's pages, answered with `status`: an error status keeps the page (the page
/// routers' error renderer leaves it alone).
fn own_page(status: StatusCode, page: impl IntoResponse) -> Response {
    let mut response = (status, no_store(), page).into_response();
    response.extensions_mut().insert(OwnErrorBody);
    response
}

/// Answers with sessions in them are not for caches.
fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// `returnTo` as a path on this site, or `/` when it is not one.
///
/// Let through: printable ASCII (a `Location` header's alphabet; URLs reach us percent-encoded),
/// `/` followed by anything but `/` or `\` (which browsers read as the start of another host), no
/// backslash or control character — the last three also once percent-decoded, for a value that is
/// decoded again on its way — and still on this site when resolved against it. Sign-in's own paths
/// lead to `/` instead of round in a circle.
pub fn safe_return_to(raw: &str) -> String {
    fn acceptable(path: &str) -> bool {
        path.starts_with('/')
            && !matches!(path.as_bytes().get(1), Some(b'/' | b'\\'))
            && !path.chars().any(|c| c.is_control() || c == '\\')
    }
    let home = || "/".to_owned();
    let printable = raw.bytes().all(|b| b.is_ascii_graphic());
    if raw.len() > MAX_RETURN_TO
        || !printable
        || !acceptable(raw)
        || !acceptable(&percent_decode(raw))
    {
        return home();
    }
    let Ok(site) = url::Url::parse("http://atrium.invalid/") else {
        return home();
    };
    let stays = site.join(raw).is_ok_and(|url| {
        url.origin() == site.origin() && url.username().is_empty() && url.password().is_none()
    });
    let path = raw.split(['?', '#']).next().unwrap_or_default();
    let own = matches!(path, "/signin" | "/signout") || path.starts_with("/auth/");
    if !stays || own {
        return home();
    }
    raw.to_owned()
}

/// `%XX` decoded once; bytes that do not form UTF-8 become U+FFFD.
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_keeps_paths_on_this_site() {
        for path in [
            "/",
            "/catalog",
            "/catalog?kind=component&q=pay%20ments",
            "/catalog/default/component/checkout#links",
            "/create/templates/default/x",
            "/@alice",
            "/a//b",
            "/caf%C3%A9",
            "/%E9",
        ] {
            assert_eq!(safe_return_to(path), path, "{path}");
        }
    }

    #[test]
    fn return_to_refuses_other_sites_and_tricks() {
        for attack in [
            "",
            "catalog",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "https://atrium@evil.example",
            "http:evil.example",
            "javascript:alert(1)",
            "/%2F%2Fevil.example",
            "/%2fevil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "/\t/evil.example",
            "/%09/evil.example",
            "/\n/evil.example",
            "/%0d%0aSet-Cookie:x=1",
            "/a\\b",
            "/ spaces",
            "/caf\u{e9}",
            " /catalog",
        ] {
            assert_eq!(safe_return_to(attack), "/", "{attack:?}");
        }
        assert_eq!(safe_return_to(&format!("/{}", "a".repeat(3000))), "/");
    }

    #[test]
    fn return_to_never_leads_back_into_sign_in() {
        for path in [
            "/signin",
            "/signin?returnTo=/x",
            "/signout",
            "/auth/oidc/start",
        ] {
            assert_eq!(safe_return_to(path), "/", "{path}");
        }
        assert_eq!(safe_return_to("/signing-policy"), "/signing-policy");
    }

    #[test]
    fn percent_decoding_is_done_once() {
        assert_eq!(percent_decode("/%252F"), "/%2F");
        assert_eq!(percent_decode("/%2f%2F"), "///");
        assert_eq!(percent_decode("/100%"), "/100%");
        assert_eq!(percent_decode("/%zz"), "/%zz");
    }

    #[test]
    fn the_session_cookie_is_host_only_secure_and_http_only() {
        let cookie = set_cookie("abc", 60).expect("cookie");
        assert_eq!(
            cookie,
            "__Host-atrium_session=abc; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=60"
        );
        assert!(
            clear_cookie()
                .to_str()
                .expect("ascii")
                .starts_with(&format!("{SESSION_COOKIE}=;"))
        );
    }
}
