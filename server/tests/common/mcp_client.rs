//! The MCP SDK's own client against a live Atrium's `/api/mcp`, for the agent tests.

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::Value;

pub type McpClient = RunningService<RoleClient, ()>;

/// A session with `url` as the holder of `token`.
pub async fn connect(url: &str, token: &str) -> McpClient {
    let transport = StreamableHttpClientTransport::with_client(
        reqwest::Client::new(),
        StreamableHttpClientTransportConfig::with_uri(url).auth_header(token),
    );
    ().serve(transport).await.expect("an MCP session")
}

/// Calls `tool`; a refusal comes back as a result with `is_error`, not as an `Err`.
pub async fn call(client: &McpClient, tool: &str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments are an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .expect("the call is answered")
}

/// The text content of a result (a refusal's message).
pub fn text(result: &CallToolResult) -> String {
    serde_json::to_value(&result.content)
        .expect("content")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["text"].as_str().map(str::to_owned))
        .collect()
}
