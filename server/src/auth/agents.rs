//! `/agents`: the agents acting for the caller (every agent, for an admin) — each agent's tokens
//! with their scopes, expiry, rate limit and last use, and what the agent did lately, from the audit
//! log (the events its tokens wrote: MCP calls, tasks, deployments, refusals).

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::caller::Caller;
use super::db::{self, TokenRow};
use super::pages::{TokenSummary, shown_time};
use super::service::AuthService;
use crate::error::AppError;

pub fn router<S>() -> Router<S>
where
    AuthService: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/agents", get(show_agents))
}

/// Events shown per agent.
const RECENT: i64 = 20;

pub struct AgentView {
    pub name: String,
    /// Whom it acts for (its tokens' owners).
    pub owners: String,
    pub tokens: Vec<TokenSummary>,
    pub rate_limits: String,
    pub events: Vec<AgentEvent>,
}

pub struct AgentEvent {
    pub occurred_at: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/agents.html")]
pub struct AgentsPage {
    agents: Vec<AgentView>,
    all: bool,
}

pub async fn show_agents(
    State(auth): State<AuthService>,
    caller: Caller,
) -> Result<AgentsPage, AppError> {
    let all = caller.is_admin();
    let mut by_agent: BTreeMap<String, Vec<TokenRow>> = BTreeMap::new();
    for token in auth.tokens(&caller, all).await? {
        if let Some(agent) = token.agent.clone() {
            by_agent.entry(agent).or_default().push(token);
        }
    }
    let mut agents = Vec::with_capacity(by_agent.len());
    for (name, tokens) in by_agent {
        let ids: Vec<_> = tokens.iter().map(|t| t.id).collect();
        let events = db::agent_activity(auth.db(), &name, &ids, RECENT)
            .await?
            .into_iter()
            .map(|row| AgentEvent {
                occurred_at: shown_time(&row.occurred_at),
                action: row.action,
                target: row.target,
                outcome: row.outcome,
            })
            .collect();
        let mut owners: Vec<&str> = tokens.iter().map(|t| t.owner_ref.as_str()).collect();
        owners.sort_unstable();
        owners.dedup();
        let rate_limits = tokens
            .iter()
            .map(|t| {
                t.rate_limit_per_minute
                    .map_or_else(|| "none".to_owned(), |n| format!("{n}/min"))
            })
            .collect::<Vec<_>>()
            .join(", ");
        agents.push(AgentView {
            owners: owners.join(", "),
            tokens: tokens.iter().map(TokenSummary::of).collect(),
            rate_limits,
            events,
            name,
        });
    }
    Ok(AgentsPage { agents, all })
}
