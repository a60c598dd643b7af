//! `AuthService`: sessions, API tokens and the audit log, for the middleware, the handlers and the
//! command line.

use std::sync::Arc;

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::caller::{ActorKind, Caller};
use super::config::AuthConfig;
use super::db::{self, AuditEvent, NewToken, TokenRow};
use super::policy::{ACTIONS, Decision, Policy, Target, ref_key};
use super::scope::{Scope, Scopes};
use super::token;
use crate::error::AppError;

#[derive(Clone)]
pub struct AuthService {
    db: PgPool,
    config: Arc<AuthConfig>,
    policy: Arc<Policy>,
}

/// Who a token acts as: its owner, as the token or as its agent, with its scopes.
fn token_holder(row: TokenRow) -> Caller {
    // Stored scopes were checked when the token was made; one that no longer parses grants nothing.
    let scopes = Scopes::parse_all(&row.scopes).unwrap_or_default();
    Caller {
        user_ref: row.owner_ref,
        kind: if row.agent.is_some() {
            ActorKind::Agent
        } else {
            ActorKind::Token
        },
        token_id: Some(row.id),
        agent: row.agent,
        scopes,
        groups: Vec::new(),
        request_id: None,
    }
}

/// What `atrium policy explain` asks.
pub struct Question<'a> {
    pub user: &'a str,
    pub action: &'a str,
    /// An entity ref: the target entity (a Template's ref also names the template).
    pub target: Option<&'a str>,
    pub template: Option<&'a str>,
    pub environment: Option<&'a str>,
    pub step: Option<&'a str>,
}

/// Its answer.
pub struct Explanation {
    pub caller: Caller,
    pub target: Target,
    pub decision: Decision,
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups = if self.caller.groups.is_empty() {
            "no groups".to_owned()
        } else {
            self.caller.groups.join(", ")
        };
        writeln!(f, "caller: {} ({groups})", self.caller.user_ref)?;
        let owners = if self.target.owners.is_empty() {
            String::new()
        } else {
            format!(" (owned by {})", self.target.owners.join(", "))
        };
        let target = self.target.describe();
        let target = if target.is_empty() {
            "-".to_owned()
        } else {
            target
        };
        writeln!(f, "target: {target}{owners}")?;
        writeln!(f, "{}", self.decision.explain())
    }
}

/// `POST /api/auth/tokens`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    pub name: String,
    pub scopes: Vec<String>,
    /// Required: tokens always end.
    pub expires_in_days: u64,
    /// An agent token: the agent is named as the actor of what the token does.
    #[serde(default)]
    pub agent: Option<String>,
    /// Requests a minute the token may make (agents); none when unset.
    #[serde(default)]
    pub rate_limit_per_minute: Option<u32>,
    /// For an agent token: the group it acts for (`group:default/ml-platform`, or a group's name),
    /// instead of its maker. The maker must be a member of the group (or an admin).
    #[serde(default)]
    pub owner: Option<String>,
}

impl AuthService {
    pub fn new(db: PgPool, config: Arc<AuthConfig>, policy: Arc<Policy>) -> Self {
        Self { db, config, policy }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// `atrium policy explain`: what the policy decides for `user` doing `action` on the target, and
    /// the rule that decides it. The user's groups and the target entity's owners are read from the
    /// catalog, as for a request.
    pub async fn explain(&self, question: &Question<'_>) -> Result<Explanation, AppError> {
        if !ACTIONS.iter().any(|(a, _)| *a == question.action) {
            return Err(AppError::input(format!(
                "unknown action `{}`; the actions are {}",
                question.action,
                ACTIONS
                    .iter()
                    .map(|(a, _)| *a)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let user = ref_key(question.user, "user");
        if user.is_empty() {
            return Err(AppError::input(format!(
                "`{}` is not a user reference",
                question.user
            )));
        }
        let mut caller = Caller {
            scopes: self.person_scopes(&user),
            user_ref: user,
            kind: ActorKind::User,
            token_id: None,
            agent: None,
            groups: Vec::new(),
            request_id: None,
        };
        caller.groups = self.groups_of(&caller.user_ref).await?;
        let mut target = Target::default();
        if let Some(raw) = question.target {
            let key = ref_key(raw, "");
            if key.is_empty() {
                return Err(AppError::input(format!(
                    "`{raw}` is not an entity reference (kind:namespace/name)"
                )));
            }
            let body = crate::catalog::db::entities::get_final_by_key(&self.db, &key)
                .await?
                .ok_or_else(|| {
                    AppError::input(format!("there is no entity {key} in the catalog"))
                })?;
            let entity: Value =
                serde_json::from_str(&body).map_err(|e| AppError::Internal(e.into()))?;
            target = Target::entity(&entity);
            if key.starts_with("template:") {
                target = target.with_template(&key);
            }
        }
        if let Some(template) = question.template {
            target = target.with_template(&ref_key(template, "template"));
        }
        if let Some(environment) = question.environment {
            target = target.with_environment(environment);
        }
        if let Some(step) = question.step {
            target = target.with_step(step);
        }
        let decision = self.policy.decide_for(&caller, question.action, &target);
        Ok(Explanation {
            caller,
            target,
            decision,
        })
    }

    /// Fills in the caller's groups from the catalog, when the policy looks at groups at all.
    pub async fn with_groups(&self, mut caller: Caller) -> Result<Caller, sqlx::Error> {
        if self.policy.uses_groups() {
            caller.groups = self.groups_of(&caller.user_ref).await?;
        }
        Ok(caller)
    }

    /// The groups `user_ref` acts with: a user's direct `memberOf` groups; for a group (the owner of
    /// a group's agent token), the group itself.
    pub async fn groups_of(&self, user_ref: &str) -> Result<Vec<String>, sqlx::Error> {
        if user_ref.starts_with("group:") {
            return Ok(vec![user_ref.to_owned()]);
        }
        db::groups_of(&self.db, user_ref).await
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    pub fn db(&self) -> &PgPool {
        &self.db
    }

    fn person_scopes(&self, user_ref: &str) -> Scopes {
        let admin = self
            .config
            .admins
            .iter()
            .any(|a| a.eq_ignore_ascii_case(user_ref));
        Scopes::person(admin)
    }

    /// The caller an `Authorization: Bearer` token stands for; `None` for a token that is malformed,
    /// unknown, expired or revoked (revocation takes effect at the next request).
    ///
    /// A token with a rate limit (`rateLimitPerMinute`, agent tokens) is refused with
    /// [`AppError::TooManyRequests`] past its requests of the current minute; the first refusal of a
    /// minute is audited (`rate-limit`, denied), the rest are not, so a runaway agent cannot flood the
    /// audit log.
    pub async fn token_caller(&self, raw: &str) -> Result<Option<Caller>, AppError> {
        if !token::is_well_formed(raw) {
            return Ok(None);
        }
        let hash = token::hash(raw);
        let Some(row) = db::use_token(&self.db, &hash).await? else {
            self.audit_dead_token(&hash).await?;
            return Ok(None);
        };
        let limit = row.rate_limit_per_minute;
        let id = row.id;
        let caller = token_holder(row);
        if let Some(limit) = limit {
            let (used, seconds_left) = db::count_token_request(&self.db, id).await?;
            if used > limit {
                if used == limit + 1 {
                    audit(
                        &self.db,
                        &caller,
                        "rate-limit",
                        &format!("token:{id}"),
                        "denied",
                        json!({"limitPerMinute": limit}),
                    )
                    .await?;
                }
                return Err(AppError::TooManyRequests {
                    message: format!(
                        "This token may make {limit} requests a minute; try again in {seconds_left} s"
                    ),
                    retry_after: u64::try_from(seconds_left.max(1)).unwrap_or(1),
                });
            }
        }
        Ok(Some(caller))
    }

    /// A revoked or expired token that is still being used is refused like an unknown one, and
    /// recorded as its holder's `authenticate` denial — at most once a minute per token, so a
    /// runaway agent cannot flood the log. An unknown token names nobody and is not recorded.
    async fn audit_dead_token(&self, hash: &str) -> Result<(), AppError> {
        let Some((row, reason)) = db::dead_token(&self.db, hash).await? else {
            return Ok(());
        };
        let target = format!("token:{}", row.id);
        if db::audited_recently(&self.db, "authenticate", &target, 60).await? {
            return Ok(());
        }
        audit(
            &self.db,
            &token_holder(row),
            "authenticate",
            &target,
            "denied",
            json!({"reason": reason}),
        )
        .await?;
        Ok(())
    }

    /// The person a session cookie stands for, the session's idle time renewed.
    pub async fn session_caller(&self, session_id: &str) -> Result<Option<Caller>, sqlx::Error> {
        let row = db::touch_session(
            &self.db,
            &token::hash(session_id),
            self.config.session_idle_timeout_seconds as f64,
        )
        .await?;
        Ok(row.and_then(|r| r.user_ref).map(|user_ref| Caller {
            scopes: self.person_scopes(&user_ref),
            user_ref,
            kind: ActorKind::User,
            token_id: None,
            agent: None,
            groups: Vec::new(),
            request_id: None,
        }))
    }

    /// A new session for a signed-in person: its id (for the cookie). Audited as `sign-in`.
    pub async fn sign_in(
        &self,
        user_ref: &str,
        request_id: Option<&str>,
    ) -> Result<String, AppError> {
        let id = random_id()?;
        let mut tx = self.db.begin().await?;
        db::insert_session(
            &mut *tx,
            &token::hash(&id),
            Some(user_ref),
            None,
            "/",
            self.config.session_absolute_timeout_seconds as f64,
        )
        .await?;
        let caller = Caller {
            scopes: self.person_scopes(user_ref),
            user_ref: user_ref.to_owned(),
            kind: ActorKind::User,
            token_id: None,
            agent: None,
            groups: Vec::new(),
            request_id: request_id.map(str::to_owned),
        };
        audit(&mut *tx, &caller, "sign-in", user_ref, "success", json!({})).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A sign-in under way: a session with no user yet, holding `pending` (what the provider's
    /// callback is checked against) and where to go afterwards. Returns its id, for the cookie. It
    /// ends after `seconds`, and is used once ([`Self::take_login`]).
    pub async fn begin_login(
        &self,
        pending: &Value,
        return_to: &str,
        seconds: u64,
    ) -> Result<String, AppError> {
        let id = random_id()?;
        db::insert_session(
            &self.db,
            &token::hash(&id),
            None,
            Some(pending),
            return_to,
            seconds as f64,
        )
        .await?;
        Ok(id)
    }

    /// Takes the sign-in under way for this session id: deletes it and returns what
    /// [`Self::begin_login`] stored (`pending`, `return_to`). `None` when there is none (unknown,
    /// ended, already used, or a signed-in session).
    pub async fn take_login(&self, session_id: &str) -> Result<Option<(Value, String)>, AppError> {
        let row = db::take_pending_session(&self.db, &token::hash(session_id)).await?;
        Ok(row.map(|r| (r.pending_login.unwrap_or(Value::Null), r.return_to)))
    }

    /// Records a sign-in at a provider that did not become a session: `denied` (no User matches) or
    /// `failure` (the provider's answer was refused). The actor is the identity at the provider
    /// (`oidc:<subject>`), who is nobody here.
    pub async fn sign_in_refused(
        &self,
        actor: &str,
        target: &str,
        outcome: &str,
        detail: Value,
        request_id: Option<&str>,
    ) -> Result<(), AppError> {
        db::insert_audit_event(
            &self.db,
            &AuditEvent {
                actor,
                actor_kind: "anonymous",
                action: "sign-in",
                target,
                outcome,
                request_id,
                detail,
            },
        )
        .await?;
        Ok(())
    }

    /// Ends a session. Audited as `sign-out` when there was one.
    pub async fn sign_out(&self, session_id: &str, caller: &Caller) -> Result<(), AppError> {
        let mut tx = self.db.begin().await?;
        if db::delete_session(&mut *tx, &token::hash(session_id)).await? {
            audit(
                &mut *tx,
                caller,
                "sign-out",
                &caller.user_ref,
                "success",
                json!({}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Makes a token for the caller. It may not be wider than the caller's own rights, tokens and
    /// agents may not make tokens (only people and admins), and it must end. The token is returned
    /// once, here; only its hash is kept. Audited as `token.create`.
    pub async fn create_token(
        &self,
        caller: &Caller,
        request: &TokenRequest,
    ) -> Result<(String, TokenRow), AppError> {
        if !caller.is_person() && !caller.is_admin() {
            return Err(self
                .deny(
                    caller,
                    "token.create",
                    &request.name,
                    "tokens and agents may not create tokens",
                )
                .await);
        }
        let name = request.name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(AppError::InvalidField {
                field: "name".to_owned(),
                message: "name the token (1 to 100 characters)".to_owned(),
            });
        }
        if request.scopes.is_empty() {
            return Err(AppError::InvalidField {
                field: "scopes".to_owned(),
                message: "give the token at least one scope".to_owned(),
            });
        }
        let scopes =
            Scopes::parse_all(&request.scopes).map_err(|message| AppError::InvalidField {
                field: "scopes".to_owned(),
                message,
            })?;
        if request.expires_in_days == 0 || request.expires_in_days > self.config.max_token_days {
            return Err(AppError::InvalidField {
                field: "expiresInDays".to_owned(),
                message: format!(
                    "expiresInDays: a token must expire, in 1 to {} days",
                    self.config.max_token_days
                ),
            });
        }
        if !caller.scopes.contains_all(&scopes) {
            return Err(self
                .deny(
                    caller,
                    "token.create",
                    name,
                    "a token may not have scopes its maker does not have",
                )
                .await);
        }
        if let Some(agent) = &request.agent {
            let ok = !agent.is_empty()
                && agent.len() <= 63
                && agent
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err(AppError::InvalidField {
                    field: "agent".to_owned(),
                    message: "an agent's name is 1 to 63 letters, digits, `-`, `_` or `.`"
                        .to_owned(),
                });
            }
        }
        let owner = self.token_owner(caller, request).await?;
        if request.rate_limit_per_minute == Some(0) {
            return Err(AppError::InvalidField {
                field: "rateLimitPerMinute".to_owned(),
                message: "rateLimitPerMinute must be at least 1 (leave it out for no limit)"
                    .to_owned(),
            });
        }
        let raw = token::generate().map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let id = Uuid::new_v4();
        let scope_strings = scopes.strings();
        let rate_limit = request
            .rate_limit_per_minute
            .map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        let mut tx = self.db.begin().await?;
        db::insert_token(
            &mut *tx,
            &NewToken {
                id,
                token_hash: &token::hash(&raw),
                prefix: &token::display_prefix(&raw),
                name,
                owner_ref: &owner,
                agent: request.agent.as_deref(),
                scopes: &scope_strings,
                created_by: &caller.user_ref,
                expires_in_seconds: (request.expires_in_days * 86_400) as f64,
                rate_limit_per_minute: rate_limit,
            },
        )
        .await?;
        audit(
            &mut *tx,
            caller,
            "token.create",
            &format!("token:{id}"),
            "success",
            json!({"name": name, "scopes": scope_strings, "agent": request.agent, "owner": owner, "expiresInDays": request.expires_in_days}),
        )
        .await?;
        tx.commit().await?;
        let row = db::token(&self.db, id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the new token vanished"))?;
        Ok((raw, row))
    }

    /// Whom a new token acts for: its maker, or for an agent token the group named in `owner`, which
    /// the maker must belong to (directly; admins may name any group in the catalog). An agent's name
    /// stays with the owner of its first token: another owner's token for the same name is refused,
    /// so `agent:<name>` in tasks, deployments and the audit log always means the same agent.
    async fn token_owner(
        &self,
        caller: &Caller,
        request: &TokenRequest,
    ) -> Result<String, AppError> {
        let owner = match request.owner.as_deref().map(str::trim) {
            None | Some("") => caller.user_ref.clone(),
            Some(raw) => {
                let invalid = |message: String| AppError::InvalidField {
                    field: "owner".to_owned(),
                    message,
                };
                if request.agent.is_none() {
                    return Err(invalid(
                        "only an agent's token may be owned by a group; name the agent".to_owned(),
                    ));
                }
                let group = ref_key(raw, "group");
                if !group.starts_with("group:") {
                    return Err(invalid(format!(
                        "owner `{raw}` is not a group; give a group's ref (group:default/ml-platform)"
                    )));
                }
                let member = self.groups_of(&caller.user_ref).await?.contains(&group);
                if !member && !caller.is_admin() {
                    return Err(self
                        .deny(
                            caller,
                            "token.create",
                            &group,
                            "only a member of a group may make a token for it",
                        )
                        .await);
                }
                if !member && !db::entity_exists(&self.db, &group).await? {
                    return Err(invalid(format!("there is no group {group} in the catalog")));
                }
                group
            }
        };
        if let Some(agent) = &request.agent
            && let Some(existing) = db::agent_owner(&self.db, agent).await?
            && existing != owner
        {
            return Err(AppError::InvalidField {
                field: "agent".to_owned(),
                message: format!(
                    "agent `{agent}` already acts for {existing}; choose another name, or ask them for a token"
                ),
            });
        }
        Ok(owner)
    }

    /// A token for the command line's bootstrap (`atrium token create`): no caller to check.
    pub async fn issue(
        &self,
        owner: &str,
        scopes: &Scopes,
        name: &str,
        days: u64,
    ) -> Result<String, AppError> {
        let system = Caller {
            user_ref: owner.to_owned(),
            kind: ActorKind::User,
            token_id: None,
            agent: None,
            scopes: Scopes(vec![Scope::Admin]),
            groups: Vec::new(),
            request_id: None,
        };
        let request = TokenRequest {
            name: name.to_owned(),
            scopes: scopes.strings(),
            expires_in_days: days,
            agent: None,
            rate_limit_per_minute: None,
            owner: None,
        };
        Ok(self.create_token(&system, &request).await?.0)
    }

    /// The caller's tokens: those they made, and those owned by them or by one of their groups (a
    /// team's agents stay manageable when their maker leaves). Every token, for an admin asking.
    pub async fn tokens(&self, caller: &Caller, all: bool) -> Result<Vec<TokenRow>, AppError> {
        if all {
            caller.require(&Scope::Admin)?;
            return Ok(db::list_tokens(&self.db, db::TokensOf::All).await?);
        }
        // A token or an agent sees only the tokens its maker made; ownership rights are people's.
        let groups = if caller.is_person() {
            self.groups_of(&caller.user_ref).await?
        } else {
            Vec::new()
        };
        let of = db::TokensOf::Person {
            user_ref: &caller.user_ref,
            groups: &groups,
        };
        Ok(db::list_tokens(&self.db, of).await?)
    }

    /// Revokes a token the caller made or that they or their group own (any token, for an admin).
    /// Effective at the next request.
    pub async fn revoke_token(&self, caller: &Caller, id: Uuid) -> Result<TokenRow, AppError> {
        let row = db::token(&self.db, id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("Token {id} does not exist")))?;
        let theirs = row.created_by == caller.user_ref
            || (caller.is_person() && row.owner_ref == caller.user_ref)
            || (caller.is_person()
                && row.owner_ref.starts_with("group:")
                && self
                    .groups_of(&caller.user_ref)
                    .await?
                    .contains(&row.owner_ref));
        if !theirs && !caller.is_admin() {
            // Someone else's token: as if it did not exist.
            self.deny(
                caller,
                "token.revoke",
                &format!("token:{id}"),
                "not the token's maker",
            )
            .await;
            return Err(AppError::not_found(format!("Token {id} does not exist")));
        }
        let mut tx = self.db.begin().await?;
        if db::revoke_token(&mut *tx, id).await? {
            audit(
                &mut *tx,
                caller,
                "token.revoke",
                &format!("token:{id}"),
                "success",
                json!({"name": row.name}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(db::token(&self.db, id).await?.unwrap_or(row))
    }

    /// Records a denial (in its own transaction) and returns the generic error to answer with.
    pub async fn deny(&self, caller: &Caller, action: &str, target: &str, why: &str) -> AppError {
        if let Err(e) = audit(
            &self.db,
            caller,
            action,
            target,
            "denied",
            json!({"reason": why}),
        )
        .await
        {
            tracing::error!(error = %e, "could not write an audit event");
        }
        AppError::NotAllowed(format!("You are not allowed to do this: {why}"))
    }

    /// Prunes every hour until `shutdown` (every replica does; the deletes are idempotent).
    pub fn spawn_pruner(
        &self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let auth = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        if let Err(e) = auth.prune().await {
                            tracing::warn!(error = %e, "pruning sessions and audit events failed");
                        }
                    }
                    _ = shutdown.changed() => return,
                }
            }
        })
    }

    /// Deletes ended sessions and audit events past the retention.
    pub async fn prune(&self) -> Result<u64, sqlx::Error> {
        let days = i32::try_from(self.config.audit_retention_days).unwrap_or(i32::MAX);
        db::prune(&self.db, days).await
    }
}

/// Writes one audit event with `db` (pass the transaction of the change it records).
/// Records what the permission policy refused (nothing changed, so in no transaction): the rule
/// that decided is in the event, never in the answer. A failure to record it is logged.
pub async fn audit_refusal(
    db: impl sqlx::PgExecutor<'_>,
    caller: &Caller,
    action: &str,
    target: &Target,
    decision: &Decision,
) {
    let detail = json!({"policy": decision.rule.as_deref().unwrap_or("permissions.default")});
    if let Err(error) = audit(db, caller, action, &target.describe(), "denied", detail).await {
        tracing::error!(%error, "could not write an audit event");
    }
}

pub async fn audit(
    db: impl sqlx::PgExecutor<'_>,
    caller: &Caller,
    action: &str,
    target: &str,
    outcome: &str,
    mut detail: Value,
) -> sqlx::Result<()> {
    if let (Some(id), Some(map)) = (caller.token_id, detail.as_object_mut()) {
        map.insert("tokenId".to_owned(), json!(id));
        if caller.agent.is_some() {
            map.insert("onBehalfOf".to_owned(), json!(caller.user_ref));
        }
    }
    let actor = caller.actor();
    db::insert_audit_event(
        db,
        &AuditEvent {
            actor: &actor,
            actor_kind: caller.kind.as_str(),
            action,
            target,
            outcome,
            request_id: caller.request_id.as_deref(),
            detail,
        },
    )
    .await
}

/// 32 random bytes as hex: a session id.
pub fn random_id() -> Result<String, AppError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
