//! Cross-site request forgery protection for form posts, the scheme of Go 1.25's
//! `CrossOriginProtection`: a browser's `Sec-Fetch-Site` must say same-origin, or else its `Origin`
//! must name this host. Requests with neither header come from non-browser clients, which carry no
//! ambient credentials.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::error::AppError;

/// Refuses a state-changing request that a browser sent from another site.
pub fn check_same_origin(headers: &HeaderMap) -> Result<(), AppError> {
    let forbidden = || {
        AppError::not_allowed(
            "This form was sent from another site, so it was refused. Open the page on this site and send it again.",
        )
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Ok(()),
            _ => Err(forbidden()),
        };
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).map(HeaderValue::as_bytes);
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, authority)| authority.as_bytes());
    match (origin_host, host) {
        (Some(origin_host), Some(host)) if origin_host == host => Ok(()),
        _ => Err(forbidden()),
    }
}
