//! The API section of an API entity's page: the definition, and for OpenAPI its title, version and
//! operations.

use serde_json::Value;

use crate::catalog::yaml::{YamlLimits, parse_documents};

pub struct Operation {
    pub method: String,
    pub path: String,
    pub summary: String,
}

/// What an API's definition shows as.
pub enum ApiDefinition {
    /// OpenAPI: its operations (possibly none), with the raw text kept for the details element.
    OpenApi {
        operations: Vec<Operation>,
        title: String,
        version: String,
    },
    /// Could not be read as OpenAPI; shown as text with why.
    Unparsed { problem: String },
    /// Another format (asyncapi, graphql, grpc...): shown as text.
    Other,
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

pub fn api_definition(spec_type: &str, definition: &str) -> ApiDefinition {
    if !spec_type.eq_ignore_ascii_case("openapi") {
        return ApiDefinition::Other;
    }
    // JSON is YAML, so one parser reads both; the catalog's limits bound size, depth and aliases.
    let documents = match parse_documents(definition, &YamlLimits::default()) {
        Ok(documents) => documents,
        Err(e) => {
            return ApiDefinition::Unparsed {
                problem: e.to_string(),
            };
        }
    };
    let Some(document) = documents.into_iter().next() else {
        return ApiDefinition::Unparsed {
            problem: "the definition is empty".to_owned(),
        };
    };
    let doc = document.value;
    let mut operations = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, operation) in item {
                if !METHODS.contains(&method.to_ascii_lowercase().as_str()) {
                    continue;
                }
                let summary = operation
                    .get("summary")
                    .or_else(|| operation.get("operationId"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                operations.push(Operation {
                    method: method.to_ascii_uppercase(),
                    path: path.clone(),
                    summary,
                });
            }
        }
    }
    let info = |field: &str| {
        doc.get("info")
            .and_then(|i| i.get(field))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    ApiDefinition::OpenApi {
        operations,
        title: info("title"),
        version: info("version"),
    }
}

/// One transport of an MCP server (`spec.remotes` of an `mcp-server` API).
pub struct Remote {
    pub transport: String,
    pub url: String,
    /// The URL, when it is one a browser may follow (http or https).
    pub href: Option<String>,
}

/// The API section of the page: the definition as text, and what could be read from it.
pub struct ApiSection {
    /// For an `mcp-server` API: where and how agents reach it.
    pub remotes: Vec<Remote>,
    pub definition: String,
    pub is_openapi: bool,
    pub title: String,
    pub version: String,
    /// Why an OpenAPI definition could not be read; empty otherwise.
    pub problem: String,
    pub operations: Vec<Operation>,
}

pub fn api_section(spec_type: &str, spec: &Value) -> ApiSection {
    // An MCP server has `remotes` and often no definition.
    let definition = match &spec["definition"] {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    let remotes = spec["remotes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|remote| {
            let url = remote["url"].as_str().unwrap_or_default().to_owned();
            let href = url::Url::parse(&url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .map(|_| url.clone());
            Remote {
                transport: remote["type"].as_str().unwrap_or("unknown").to_owned(),
                url,
                href,
            }
        })
        .collect();
    let mut section = ApiSection {
        remotes,
        definition: String::new(),
        is_openapi: false,
        title: String::new(),
        version: String::new(),
        problem: String::new(),
        operations: Vec::new(),
    };
    match api_definition(spec_type, &definition) {
        ApiDefinition::OpenApi {
            operations,
            title,
            version,
        } => {
            section.is_openapi = true;
            section.title = title;
            section.version = version;
            section.operations = operations;
        }
        ApiDefinition::Unparsed { problem } => section.problem = problem,
        ApiDefinition::Other => {}
    }
    section.definition = definition;
    section
}
