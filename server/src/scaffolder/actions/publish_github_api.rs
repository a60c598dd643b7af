//! The small part of GitHub's REST API client that `publish:github` needs: JSON in, JSON out, the
//! token as a bearer token, no redirects, every path segment percent-encoded, and the token removed
//! from any error text (GitHub's answers can quote what they were sent).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::scaffolder::actions::ActionError;
use crate::scaffolder::actions::repo_url::Secret;

/// How long one GitHub API call may take.
const API_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a GitHub API call failed. The text never holds the token.
#[derive(Debug, thiserror::Error)]
pub(super) enum ApiError {
    /// GitHub answered with an error status; the text is its message.
    #[error("{1}")]
    Status(StatusCode, String),
    /// No answer (connection, time-out) or an unreadable one.
    #[error("{0}")]
    Transport(String),
}

impl ApiError {
    pub(super) fn context(self, doing: &str) -> ActionError {
        match self {
            ApiError::Status(StatusCode::UNAUTHORIZED, message) => ActionError::failed(format!(
                "{doing}, GitHub refused the token (401 {message}); check the token input or scaffolder.hosts[].token_env/token_file"
            )),
            ApiError::Status(status, message) => {
                ActionError::failed(format!("{doing}, {message} ({status})"))
            }
            ApiError::Transport(message) => ActionError::failed(format!("{doing}, {message}")),
        }
    }
}

/// A small GitHub REST client: JSON in, JSON out, the token as a bearer token.
pub(super) struct Api {
    client: reqwest::Client,
    base: url::Url,
    token: Secret,
    username: String,
}

impl Api {
    pub(super) fn new(base: &str, token: Secret, username: String) -> Result<Self, ActionError> {
        let base = url::Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && !u.cannot_be_a_base())
            .ok_or_else(|| {
                ActionError::input(format!(
                    "scaffolder.hosts: github_api_url {base:?} is not an http(s) URL"
                ))
            })?;
        let client = crate::tls::http_client()
            .timeout(API_TIMEOUT)
            // A redirect could take the token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ActionError::failed(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            client,
            base,
            token,
            username,
        })
    }

    /// `base` plus the path segments, each percent-encoded: no name can add a segment or a query.
    fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    pub(super) async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Value>,
    ) -> Result<Value, ApiError> {
        let url = self.url(segments);
        let shown = format!("{method} /{}", segments.join("/"));
        self.send(method, url, shown, body).await
    }

    /// Every item of a paginated list (`GET` with `per_page=100&page=N` until a short page), at most
    /// `max_pages` pages.
    pub(super) async fn list(
        &self,
        segments: &[&str],
        max_pages: usize,
    ) -> Result<Vec<Value>, ApiError> {
        let mut items = Vec::new();
        for page in 1..=max_pages {
            let mut url = self.url(segments);
            url.query_pairs_mut()
                .append_pair("per_page", "100")
                .append_pair("page", &page.to_string());
            let shown = format!("GET /{}", segments.join("/"));
            let answer = self.send(Method::GET, url, shown.clone(), None).await?;
            let Value::Array(batch) = answer else {
                return Err(ApiError::Transport(format!(
                    "{shown}: the answer is not a list"
                )));
            };
            let full = batch.len() == 100;
            items.extend(batch);
            if !full {
                break;
            }
        }
        Ok(items)
    }

    async fn send(
        &self,
        method: Method,
        url: url::Url,
        shown: String,
        body: Option<Value>,
    ) -> Result<Value, ApiError> {
        let mut request = self
            .client
            .request(method, url)
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            ApiError::Transport(self.redact(&format!("{shown}: {}", e.without_url())))
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            ApiError::Transport(self.redact(&format!("{shown}: {}", e.without_url())))
        })?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        Err(ApiError::Status(
            status,
            self.redact(&format!("{shown}: {}", error_message(&json, &text))),
        ))
    }

    fn redact(&self, text: &str) -> String {
        self.token.redact(text, &self.username)
    }
}

/// GitHub's error text: `message`, then the `errors[]` details.
fn error_message(json: &Value, text: &str) -> String {
    let Some(message) = json.get("message").and_then(Value::as_str) else {
        let text: String = text.chars().take(200).collect();
        return if text.trim().is_empty() {
            "no message".into()
        } else {
            text
        };
    };
    let details: Vec<String> = json
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| match e {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o
                .get("message")
                .or_else(|| o.get("code"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        })
        .collect();
    if details.is_empty() {
        message.to_owned()
    } else {
        format!("{message} ({})", details.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn github_errors_read_well() {
        let json = json!({"message": "Repository creation failed.", "errors": [{"resource": "Repository", "code": "custom", "field": "name", "message": "name already exists on this account"}]});
        assert_eq!(
            error_message(&json, ""),
            "Repository creation failed. (name already exists on this account)"
        );
        assert_eq!(error_message(&Value::Null, "oops"), "oops");
    }
}
