//! Authentication of every request, and the coarse permission of each API route.
//!
//! Default deny: only the public paths below are served without a caller. A caller is an API token
//! (`Authorization: Bearer`; a bad one is a 401 and never falls back to anything else), a session
//! cookie, or — when guest mode is on — the guest. Without one, the API answers 401 and pages send the
//! browser to sign in. Finer rules (which template, which environment, whose task) are the handlers'.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::caller::Caller;
use super::scope::Scope;
use super::service::{AuthService, audit};
use crate::error::AppError;

/// The session cookie: `__Host-` pins it to this host and path `/`, and requires `Secure`.
pub const SESSION_COOKIE: &str = "__Host-atrium_session";

/// Paths served to anyone: health and metrics live on their own router; these are the rest.
pub fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/signin" | "/signout" | "/csp-report" | "/favicon.ico" | "/api/catalog/webhooks/git"
    ) || path.starts_with("/static/")
        || path.starts_with("/auth/")
}

/// The scope an API route needs before its handler runs; `None` where the handler decides (running a
/// template, deploying, approving, tokens).
pub fn required_scope(method: &Method, path: &str) -> Option<Scope> {
    let reading = matches!(*method, Method::GET | Method::HEAD);
    if let Some(rest) = path.strip_prefix("/api/catalog") {
        // Backstage's catalog answers several reads to POST (bodies too long for a query string).
        let read_by_post = matches!(
            rest,
            "/entities/by-refs"
                | "/entities/by-query"
                | "/entity-facets"
                | "/locations/by-query"
                | "/validate-entity"
                | "/analyze-location"
        );
        return Some(if reading || read_by_post {
            Scope::CatalogRead
        } else {
            Scope::CatalogWrite
        });
    }
    if path.starts_with("/api/audit") {
        return Some(Scope::Admin);
    }
    if path.starts_with("/api/auth/") || path == "/api/mcp" {
        return None;
    }
    if path.starts_with("/api/scaffolder/")
        || path.starts_with("/api/deployments")
        || path.starts_with("/api/clusters")
    {
        return reading.then_some(Scope::CatalogRead);
    }
    if path.starts_with("/api/") {
        return Some(if reading {
            Scope::CatalogRead
        } else {
            Scope::Admin
        });
    }
    // Pages: reading needs only a caller; forms check their own rights.
    if path == "/catalog/register" && !reading {
        return Some(Scope::CatalogWrite);
    }
    None
}

fn bearer(headers: &HeaderMap) -> Option<Result<&str, ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(()),
    )
}

/// The session id in the request's cookies.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Who is calling: `Ok(None)` when nobody is (no credentials and no guest mode); `Err` with the
/// response to give when credentials were sent but are not good.
async fn identify(auth: &AuthService, headers: &HeaderMap) -> Result<Option<Caller>, Response> {
    if let Some(token) = bearer(headers) {
        let unauthenticated = || {
            AppError::Unauthenticated(
                "The API token is not valid: unknown, expired or revoked".to_owned(),
            )
            .into_response()
        };
        let Ok(token) = token else {
            return Err(unauthenticated());
        };
        return match auth.token_caller(token).await {
            Ok(Some(caller)) => Ok(Some(caller)),
            Ok(None) => Err(unauthenticated()),
            Err(e) => Err(e.into_response()),
        };
    }
    if let Some(id) = session_cookie(headers) {
        match auth.session_caller(&id).await {
            Ok(Some(caller)) => return Ok(Some(caller)),
            Ok(None) => {}
            Err(e) => return Err(AppError::Database(e).into_response()),
        }
    }
    Ok(auth.config().guest.then(Caller::guest))
}

pub async fn authenticate(
    State(auth): State<AuthService>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if is_public(&path) {
        return next.run(request).await;
    }
    let caller = match identify(&auth, request.headers()).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let api = path == "/api" || path.starts_with("/api/");
    let caller = match caller {
        Some(caller) => match auth.with_groups(caller).await {
            Ok(caller) => Some(caller),
            Err(e) => return AppError::Database(e).into_response(),
        },
        None => None,
    };
    let Some(mut caller) = caller else {
        if api {
            return AppError::Unauthenticated(
                "Sign in, or send an API token (Authorization: Bearer atr_...)".to_owned(),
            )
            .into_response();
        }
        let target = request
            .uri()
            .path_and_query()
            .map_or_else(|| path.clone(), ToString::to_string);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("returnTo", &target)
            .finish();
        return Redirect::to(&format!("/signin?{query}")).into_response();
    };
    caller.request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(scope) = required_scope(request.method(), &path)
        && !caller.allows(&scope)
    {
        let target = format!("{} {path}", request.method());
        if let Err(e) = audit(
            auth.db(),
            &caller,
            "permission",
            &target,
            "denied",
            serde_json::json!({"needs": scope.to_string()}),
        )
        .await
        {
            tracing::error!(error = %e, "could not write an audit event");
        }
        return AppError::Forbidden {
            permission: scope.to_string(),
        }
        .into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_reads_and_writes_need_their_scopes() {
        let get = Method::GET;
        let post = Method::POST;
        let delete = Method::DELETE;
        assert_eq!(
            required_scope(&get, "/api/catalog/entities"),
            Some(Scope::CatalogRead)
        );
        assert_eq!(
            required_scope(&post, "/api/catalog/entities/by-refs"),
            Some(Scope::CatalogRead)
        );
        assert_eq!(
            required_scope(&post, "/api/catalog/locations"),
            Some(Scope::CatalogWrite)
        );
        assert_eq!(
            required_scope(&delete, "/api/catalog/entities/by-uid/x"),
            Some(Scope::CatalogWrite)
        );
        assert_eq!(required_scope(&get, "/api/audit"), Some(Scope::Admin));
        assert_eq!(required_scope(&post, "/api/scaffolder/v2/tasks"), None);
        assert_eq!(required_scope(&post, "/api/unknown"), Some(Scope::Admin));
    }

    #[test]
    fn public_paths_are_few() {
        for path in [
            "/signin",
            "/static/app.css",
            "/auth/oidc/callback",
            "/api/catalog/webhooks/git",
        ] {
            assert!(is_public(path), "{path}");
        }
        for path in [
            "/",
            "/catalog",
            "/api/catalog/entities",
            "/create",
            "/deployments",
            "/api/auth/tokens",
        ] {
            assert!(!is_public(path), "{path}");
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "theme=dark; __Host-atrium_session=abc123; x=y"
                .parse()
                .expect("header"),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc123"));
    }
}
