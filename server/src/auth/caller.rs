//! The caller of a request: who (a person, a token, an agent, the guest) and with which scopes. The
//! authentication middleware puts it in the request; handlers ask for it as an extractor.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use uuid::Uuid;

use super::scope::{Scope, Scopes};
use crate::error::AppError;

/// The user ref of the guest (guest mode, local evaluation).
pub const GUEST: &str = "user:default/guest";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// A person signed in through the browser.
    User,
    /// An API token acting for its owner.
    Token,
    /// An agent token: the agent is the actor.
    Agent,
    Guest,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Token => "token",
            Self::Agent => "agent",
            Self::Guest => "guest",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Caller {
    /// The entity ref whose rights apply (the person, or a token's owner).
    pub user_ref: String,
    pub kind: ActorKind,
    pub token_id: Option<Uuid>,
    /// For agent tokens, the agent's name.
    pub agent: Option<String>,
    pub scopes: Scopes,
    /// The groups the user is a direct member of (lower-cased refs), read from the catalog when the
    /// permission policy looks at groups or ownership; empty otherwise.
    pub groups: Vec<String>,
    /// The request's id (`x-request-id`), for the audit log.
    pub request_id: Option<String>,
}

impl Caller {
    pub fn guest() -> Self {
        Self {
            user_ref: GUEST.to_owned(),
            kind: ActorKind::Guest,
            token_id: None,
            agent: None,
            scopes: Scopes::person(false),
            groups: Vec::new(),
            request_id: None,
        }
    }

    /// Atrium itself (start-up, the command line): every scope, named `system` in the audit log.
    pub fn system() -> Self {
        Self {
            user_ref: "system".to_owned(),
            kind: ActorKind::User,
            token_id: None,
            agent: None,
            scopes: Scopes(vec![Scope::Admin]),
            groups: Vec::new(),
            request_id: None,
        }
    }

    /// Who the audit log and task records name: the person, or `agent:<name>` for an agent.
    pub fn actor(&self) -> String {
        match &self.agent {
            Some(agent) => format!("agent:{agent}"),
            None => self.user_ref.clone(),
        }
    }

    pub fn allows(&self, scope: &Scope) -> bool {
        self.scopes.allows(scope)
    }

    pub fn is_admin(&self) -> bool {
        self.allows(&Scope::Admin)
    }

    /// A person (signed in, or the guest) rather than a token or an agent.
    pub fn is_person(&self) -> bool {
        matches!(self.kind, ActorKind::User | ActorKind::Guest)
    }

    /// Refuses the request (403, naming the scope it needs) unless the caller holds `scope`.
    pub fn require(&self, scope: &Scope) -> Result<(), AppError> {
        if self.allows(scope) {
            Ok(())
        } else {
            Err(AppError::Forbidden {
                permission: scope.to_string(),
            })
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| AppError::Unauthenticated("Sign in or send an API token".to_owned()))
    }
}
