//! Static assets, embedded in the binary so a single file deploys the whole portal.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

/// (file name, content type, content).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../web/static/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../../web/static/favicon.svg"),
    ),
    (
        "form.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/static/form.js"),
    ),
    (
        "task.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/static/task.js"),
    ),
];

pub async fn serve_static(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                // Not fingerprinted, so an hour; revalidation is cheap.
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                ),
            ],
            *bytes,
        )
            .into_response(),
        None => {
            AppError::not_found(format!("There is no static file named {file}.")).into_response()
        }
    }
}
