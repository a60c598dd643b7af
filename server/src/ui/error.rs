//! HTML error pages: how the page routers render an error response (see `crate::error`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{Suggestion, keep_headers, request_id, take_payload};

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    title: String,
    message: String,
    status: u16,
    suggestion: Option<Suggestion>,
    request_id: String,
}

/// Middleware of the page routers: error responses become an HTML page with the request id.
pub async fn render_html(request: Request, next: Next) -> Response {
    let request_id = request_id(&request);
    let mut response = next.run(request).await;
    let Some(payload) = take_payload(&mut response) else {
        return response;
    };
    let (title, message) = if payload.status.is_server_error() {
        (
            "Something went wrong".to_owned(),
            "The page could not be shown because of an error on our side.".to_owned(),
        )
    } else {
        (
            payload
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_owned(),
            payload.message,
        )
    };
    let page = ErrorPage {
        title,
        message,
        status: payload.status.as_u16(),
        suggestion: payload.suggestion,
        request_id,
    };
    keep_headers(&response, (payload.status, page).into_response())
}
