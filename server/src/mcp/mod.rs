//! `/api/mcp`: the portal as a Model Context Protocol server (Streamable HTTP, the `rmcp` SDK), for
//! AI agents.
//!
//! The authentication middleware runs before it, as for every `/api` route: a call carries an API
//! token (an agent token names the agent) and every tool acts as that caller — its scopes, the
//! permission policy and what it may see — through the same services the REST API uses, so an agent
//! can do nothing over MCP that its token could not do over REST. Every tool call is audited as the
//! caller (`mcp.<tool>`, with its outcome).
//!
//! Stateless: no MCP session is kept, so any replica answers any call.
//!
//! - `tools`: the tools, their schemas and hints, and what each does.

pub mod tools;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    InitializeResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::auth::service::audit;
use crate::catalog::skills;
use crate::state::AppState;

/// The MCP server of one request (the SDK makes one per request in stateless mode).
#[derive(Clone)]
pub struct AtriumMcp {
    state: AppState,
}

/// The tower service mounted at `/api/mcp`.
pub fn service(state: AppState) -> StreamableHttpService<AtriumMcp, LocalSessionManager> {
    let mut config = StreamableHttpServerConfig::default();
    config.legacy_session_mode = false;
    config.json_response = true;
    // The SDK's DNS-rebinding guard: the hosts Atrium is reached at (its public URL's and its listen
    // address), besides loopback. Callers authenticate with a token anyway.
    config.allowed_hosts.extend(allowed_hosts(&state));
    StreamableHttpService::new(
        move || {
            Ok(AtriumMcp {
                state: state.clone(),
            })
        },
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

fn allowed_hosts(state: &AppState) -> Vec<String> {
    let listen = state.config.server.listen;
    let mut hosts = vec![listen.to_string(), listen.ip().to_string()];
    if let Some(url) = state
        .config
        .auth
        .public_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        && let Some(host) = url.host_str()
    {
        hosts.push(host.to_owned());
        if let Some(port) = url.port() {
            hosts.push(format!("{host}:{port}"));
        }
    }
    hosts
}

fn skill_uri(name: &str) -> String {
    format!("skill://{name}/SKILL.md")
}

/// The caller the authentication middleware put in the HTTP request.
fn caller_of(context: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| McpError::invalid_request("no caller: send an API token", None))
}

impl ServerHandler for AtriumMcp {
    fn get_info(&self) -> ServerConfig {
        InitializeResult::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("atrium", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Atrium's developer portal: search the software catalog, read entities and \
                 models, list and run golden-path templates, follow tasks and deployments. Every \
                 tool acts with your token's scopes and the portal's permission policy.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools::definitions()))
    }

    /// The catalog's agent skills, as `skill://<name>/SKILL.md` (the ones the caller may see).
    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let caller = caller_of(&context)?;
        let skills = skills::skills(&self.state.catalog, &caller)
            .await
            .map_err(|e| McpError::internal_error(e.public_message(), None))?;
        let resources = skills
            .iter()
            .filter_map(|skill| {
                let name = skill["metadata"]["name"].as_str()?;
                let mut resource =
                    Resource::new(skill_uri(name), name.to_owned()).with_mime_type("text/markdown");
                if let Some(description) = skill["metadata"]["description"].as_str() {
                    resource = resource.with_description(description.to_owned());
                }
                Some(resource)
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let caller = caller_of(&context)?;
        let name = request
            .uri
            .strip_prefix("skill://")
            .and_then(|rest| rest.strip_suffix("/SKILL.md"))
            .ok_or_else(|| {
                McpError::resource_not_found(format!("no resource {}", request.uri), None)
            })?;
        let text = skills::read_skill(&self.state.catalog, &caller, name)
            .await
            .map_err(|e| McpError::resource_not_found(e.public_message(), None))?;
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, request.uri.clone())]).into())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = caller_of(&context)?;
        let name = request.name.to_string();
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        let outcome = tools::call(&self.state, &caller, &name, &arguments).await;
        let (label, detail) = match &outcome {
            Ok(_) => ("success", json!({})),
            Err(error) if error.status().as_u16() == 403 => {
                ("denied", json!({"error": error.public_message()}))
            }
            Err(error) => ("failure", json!({"error": error.public_message()})),
        };
        if let Err(error) = audit(
            &self.state.db,
            &caller,
            &format!("mcp.{name}"),
            &tools::audit_target(&name, &arguments),
            label,
            detail,
        )
        .await
        {
            tracing::error!(%error, "could not write an audit event");
        }
        Ok(match outcome {
            Ok(value) => CallToolResult::structured(value),
            // A refusal or bad input is the tool's answer for the agent to read, not a protocol error.
            Err(error) => CallToolResult::error(vec![ContentBlock::text(error.public_message())]),
        }
        .into())
    }
}
