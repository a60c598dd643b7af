//! The identity pages: `/settings/tokens` (the caller's API tokens: list, create, revoke) and `/audit`
//! (the audit log, for admins). They are the browser's face of `/api/auth/tokens` and `/api/audit`,
//! and go through the same `AuthService`, so a page can do nothing the API refuses.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use uuid::Uuid;

use super::caller::Caller;
use super::db::{self, AuditQuery, TokenRow};
use super::scope::Scope;
use super::service::{AuthService, TokenRequest};
use crate::error::AppError;
use crate::http::{Path, QueryParams};
use crate::ui::csrf::check_same_origin;

/// Events shown on one page of the audit log.
const AUDIT_PAGE_SIZE: i64 = 50;
const OUTCOMES: [&str; 3] = ["success", "denied", "failure"];
/// The scopes offered as checkboxes; the others (`template:run:<ref>`, `deploy:<env>`) are typed.
const CHECKBOX_SCOPES: [&str; 3] = ["catalog:read", "catalog:write", "admin"];

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AuthService: FromRef<S>,
{
    Router::new()
        .route("/settings/tokens", get(show_tokens).post(create_token))
        .route("/settings/tokens/{id}/revoke", post(revoke_token))
        .route("/audit", get(list_audit))
}

/// A token as the list shows it; never the token itself, which is not stored.
pub struct TokenSummary {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub agent: String,
    /// Whom the token acts for.
    pub owner: String,
    pub created_at: String,
    pub expires_at: String,
    pub last_used_at: String,
    pub revoked_at: String,
}

impl TokenSummary {
    pub fn of(row: &TokenRow) -> Self {
        Self {
            id: row.id.to_string(),
            name: row.name.clone(),
            prefix: row.prefix.clone(),
            scopes: row.scopes.join(", "),
            agent: row.agent.clone().unwrap_or_default(),
            owner: row.owner_ref.clone(),
            created_at: shown_time(&row.created_at),
            expires_at: shown_time(&row.expires_at),
            last_used_at: row
                .last_used_at
                .as_deref()
                .map(shown_time)
                .unwrap_or_default(),
            revoked_at: row
                .revoked_at
                .as_deref()
                .map(shown_time)
                .unwrap_or_default(),
        }
    }
}

/// `2025-01-02T03:04:05.678Z` → `2025-01-02 03:04:05` (the pages say UTC in their headings).
pub fn shown_time(stored: &str) -> String {
    let time = stored.replace('T', " ");
    let time = time.trim_end_matches('Z');
    time.split_once('.')
        .map_or(time, |(seconds, _)| seconds)
        .to_owned()
}

pub struct OwnerOption {
    pub value: String,
    pub selected: bool,
}

pub struct ScopeOption {
    pub value: &'static str,
    pub checked: bool,
}

/// The create form as sent, to show again with its errors.
#[derive(Default)]
pub struct TokenFormValues {
    pub name: String,
    pub scopes: Vec<String>,
    pub other_scopes: String,
    pub expires_in_days: String,
    pub agent: String,
    pub rate_limit: String,
    /// Empty: the maker; else a group's ref.
    pub owner: String,
}

/// Messages shown next to the create form's fields (empty: no problem).
#[derive(Default)]
pub struct TokenFormErrors {
    pub name: String,
    pub scopes: String,
    pub expires_in_days: String,
    pub agent: String,
    pub rate_limit: String,
    pub owner: String,
    /// A problem with the request as a whole.
    pub form: String,
}

impl TokenFormErrors {
    fn count(&self) -> usize {
        [
            &self.name,
            &self.scopes,
            &self.expires_in_days,
            &self.agent,
            &self.rate_limit,
            &self.owner,
        ]
        .iter()
        .filter(|e| !e.is_empty())
        .count()
    }

    pub fn any(&self) -> bool {
        self.count() > 0 || !self.form.is_empty()
    }
}

/// A token just made: shown on this one response, never again.
pub struct NewToken {
    pub name: String,
    pub token: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/tokens.html")]
pub struct TokensPage {
    user_ref: String,
    tokens: Vec<TokenSummary>,
    /// People and admins make tokens; a token or an agent may not.
    can_create: bool,
    scope_options: Vec<ScopeOption>,
    /// The groups an agent's token may act for: the maker's own.
    owner_options: Vec<OwnerOption>,
    form: TokenFormValues,
    errors: TokenFormErrors,
    field_errors: usize,
    created: Option<NewToken>,
    max_days: u64,
}

impl TokensPage {
    async fn new(
        auth: &AuthService,
        caller: &Caller,
        form: TokenFormValues,
        errors: TokenFormErrors,
        created: Option<NewToken>,
    ) -> Result<Self, AppError> {
        let tokens = auth.tokens(caller, false).await?;
        let scope_options = CHECKBOX_SCOPES
            .iter()
            // Only an admin may give a token `admin`; offering it to others would only be refused.
            .filter(|scope| **scope != "admin" || caller.is_admin())
            .map(|value| ScopeOption {
                value,
                checked: form.scopes.iter().any(|s| s == value),
            })
            .collect();
        let owner_options = if caller.is_person() {
            auth.groups_of(&caller.user_ref).await?
        } else {
            Vec::new()
        }
        .into_iter()
        .map(|group| OwnerOption {
            selected: form.owner == group,
            value: group,
        })
        .collect();
        Ok(Self {
            owner_options,
            user_ref: caller.actor(),
            tokens: tokens.iter().map(TokenSummary::of).collect(),
            can_create: caller.is_person() || caller.is_admin(),
            scope_options,
            field_errors: errors.count(),
            form,
            errors,
            created,
            max_days: auth.config().max_token_days,
        })
    }
}

pub async fn show_tokens(
    State(auth): State<AuthService>,
    caller: Caller,
) -> Result<TokensPage, AppError> {
    let form = TokenFormValues {
        expires_in_days: "30".to_owned(),
        ..TokenFormValues::default()
    };
    TokensPage::new(&auth, &caller, form, TokenFormErrors::default(), None).await
}

impl TokenFormValues {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut form = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "name" => form.name = value,
                "scope" => form.scopes.push(value),
                "otherScopes" => form.other_scopes = value,
                "expiresInDays" => form.expires_in_days = value,
                "agent" => form.agent = value,
                "rateLimitPerMinute" => form.rate_limit = value,
                "owner" => form.owner = value,
                _ => {}
            }
        }
        form
    }

    /// The API request the form stands for, or the errors of fields the page reads itself.
    fn request(&self, errors: &mut TokenFormErrors) -> Option<TokenRequest> {
        let expires_in_days = match self.expires_in_days.trim().parse::<u64>() {
            Ok(days) => days,
            Err(_) => {
                errors.expires_in_days = "Give the number of days until the token expires.".into();
                0
            }
        };
        let rate_limit = self.rate_limit.trim();
        let rate_limit_per_minute = if rate_limit.is_empty() {
            None
        } else {
            match rate_limit.parse::<u32>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    errors.rate_limit =
                        "A rate limit is a whole number of requests a minute, or empty for none."
                            .into();
                    None
                }
            }
        };
        let scopes = self
            .scopes
            .iter()
            .map(String::as_str)
            .chain(self.other_scopes.lines())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let agent = self.agent.trim();
        let owner = self.owner.trim();
        (errors.count() == 0).then(|| TokenRequest {
            name: self.name.clone(),
            scopes,
            expires_in_days,
            agent: (!agent.is_empty()).then(|| agent.to_owned()),
            rate_limit_per_minute,
            owner: (!owner.is_empty()).then(|| owner.to_owned()),
        })
    }
}

/// `POST /settings/tokens`: makes a token and answers with the page that shows it, this once. The
/// token is in this response's body only (no redirect carries it), and the response is not cached.
pub async fn create_token(
    State(auth): State<AuthService>,
    caller: Caller,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    check_same_origin(&headers)?;
    let form = TokenFormValues::from_pairs(pairs);
    let mut errors = TokenFormErrors::default();
    let Some(request) = form.request(&mut errors) else {
        let page = TokensPage::new(&auth, &caller, form, errors, None).await?;
        return Ok(page.into_response());
    };
    match auth.create_token(&caller, &request).await {
        Ok((token, row)) => {
            let created = NewToken {
                name: row.name,
                token,
            };
            let blank = TokenFormValues {
                expires_in_days: "30".to_owned(),
                ..TokenFormValues::default()
            };
            let page = TokensPage::new(
                &auth,
                &caller,
                blank,
                TokenFormErrors::default(),
                Some(created),
            )
            .await?;
            let mut response = page.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
        Err(error) if error.status().is_client_error() => {
            let message = error.public_message();
            match (&error, error.field()) {
                (_, Some("name")) => errors.name = message,
                (_, Some("scopes")) => errors.scopes = message,
                (_, Some("expiresInDays")) => errors.expires_in_days = message,
                (_, Some("agent")) => errors.agent = message,
                (_, Some("rateLimitPerMinute")) => errors.rate_limit = message,
                (_, Some("owner")) => errors.owner = message,
                // With a valid form, a person is refused only a scope wider than their own.
                (AppError::NotAllowed(_), _) if caller.is_person() || caller.is_admin() => {
                    errors.scopes = message;
                }
                _ => errors.form = message,
            }
            let page = TokensPage::new(&auth, &caller, form, errors, None).await?;
            Ok(page.into_response())
        }
        Err(error) => Err(error),
    }
}

/// `POST /settings/tokens/{id}/revoke`: effective at the token's next request; back to the list.
pub async fn revoke_token(
    State(auth): State<AuthService>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Redirect, AppError> {
    check_same_origin(&headers)?;
    let id: Uuid = id
        .parse()
        .map_err(|_| AppError::not_found(format!("Token {id} does not exist")))?;
    auth.revoke_token(&caller, id).await?;
    Ok(Redirect::to("/settings/tokens"))
}

pub struct AuditSummary {
    pub id: i64,
    pub occurred_at: String,
    pub actor: String,
    pub actor_kind: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub request_id: String,
    pub detail: String,
}

pub struct OutcomeOption {
    pub value: &'static str,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/audit.html")]
pub struct AuditPage {
    actor: String,
    action: String,
    target: String,
    outcomes: Vec<OutcomeOption>,
    events: Vec<AuditSummary>,
    any_filter: bool,
    /// Set when this is not the newest page.
    newest_href: Option<String>,
    older_href: Option<String>,
}

/// The audit page's address with these filters, from `before` (exclusive) when given.
fn audit_href(filters: &[(&str, &str)], before: Option<i64>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in filters {
        if !value.is_empty() {
            query.append_pair(key, value);
        }
    }
    if let Some(before) = before {
        query.append_pair("before", &before.to_string());
    }
    let query = query.finish();
    if query.is_empty() {
        "/audit".to_owned()
    } else {
        format!("/audit?{query}")
    }
}

/// `GET /audit?actor=&action=&outcome=&target=&before=<id>`: admins only; newest first; filters match
/// exactly.
pub async fn list_audit(
    State(auth): State<AuthService>,
    caller: Caller,
    params: QueryParams,
) -> Result<AuditPage, AppError> {
    caller.require(&Scope::Admin)?;
    let text = |key: &str| params.one(key).unwrap_or_default().trim().to_owned();
    let (actor, action, target) = (text("actor"), text("action"), text("target"));
    let outcome = params
        .one("outcome")
        .filter(|o| OUTCOMES.contains(&o.as_str()))
        .unwrap_or_default();
    let before = params.number("before")?.filter(|n| *n > 0);
    let some = |s: &String| (!s.is_empty()).then(|| s.clone());
    // One more than a page: whether there is an older page.
    let mut rows = db::list_audit(
        auth.db(),
        &AuditQuery {
            actor: some(&actor),
            action: some(&action),
            outcome: some(&outcome),
            target: some(&target),
            before,
            limit: AUDIT_PAGE_SIZE + 1,
        },
    )
    .await?;
    let more = rows.len() as i64 > AUDIT_PAGE_SIZE;
    rows.truncate(AUDIT_PAGE_SIZE as usize);
    let filters = [
        ("actor", actor.as_str()),
        ("action", action.as_str()),
        ("outcome", outcome.as_str()),
        ("target", target.as_str()),
    ];
    let older_href = more
        .then(|| rows.last().map(|r| audit_href(&filters, Some(r.id))))
        .flatten();
    let newest_href = before.map(|_| audit_href(&filters, None));
    Ok(AuditPage {
        outcomes: OUTCOMES
            .iter()
            .map(|value| OutcomeOption {
                value,
                selected: *value == outcome,
            })
            .collect(),
        events: rows
            .into_iter()
            .map(|row| AuditSummary {
                id: row.id,
                occurred_at: shown_time(&row.occurred_at),
                actor: row.actor,
                actor_kind: row.actor_kind,
                action: row.action,
                target: row.target,
                outcome: row.outcome,
                request_id: row.request_id.unwrap_or_default(),
                detail: if row
                    .detail
                    .as_object()
                    .is_some_and(serde_json::Map::is_empty)
                {
                    String::new()
                } else {
                    row.detail.to_string()
                },
            })
            .collect(),
        any_filter: filters.iter().any(|(_, v)| !v.is_empty()),
        newest_href,
        older_href,
        actor,
        action,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_to_the_second() {
        assert_eq!(
            shown_time("2025-01-02T03:04:05.678Z"),
            "2025-01-02 03:04:05"
        );
    }

    #[test]
    fn audit_links_keep_the_filters() {
        assert_eq!(audit_href(&[("actor", ""), ("action", "")], None), "/audit");
        assert_eq!(
            audit_href(&[("actor", "user:default/a b"), ("action", "")], Some(7)),
            "/audit?actor=user%3Adefault%2Fa+b&before=7"
        );
    }

    #[test]
    fn the_form_becomes_a_token_request() {
        let form = TokenFormValues::from_pairs(vec![
            ("name".into(), "ci".into()),
            ("scope".into(), "catalog:read".into()),
            (
                "otherScopes".into(),
                "deploy:dev\r\n\r\n template:run:x \n".into(),
            ),
            ("expiresInDays".into(), "7".into()),
            ("agent".into(), " ".into()),
            ("rateLimitPerMinute".into(), "".into()),
        ]);
        let mut errors = TokenFormErrors::default();
        let request = form.request(&mut errors).expect("a request");
        assert_eq!(
            request.scopes,
            ["catalog:read", "deploy:dev", "template:run:x"]
        );
        assert_eq!(request.expires_in_days, 7);
        assert_eq!(request.agent, None);
        assert_eq!(request.rate_limit_per_minute, None);

        let form = TokenFormValues::from_pairs(vec![
            ("expiresInDays".into(), "".into()),
            ("rateLimitPerMinute".into(), "lots".into()),
        ]);
        let mut errors = TokenFormErrors::default();
        assert!(form.request(&mut errors).is_none());
        assert!(!errors.expires_in_days.is_empty());
        assert!(!errors.rate_limit.is_empty());
    }
}
