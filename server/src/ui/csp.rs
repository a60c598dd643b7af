//! The Content-Security-Policy every page is served with, and the endpoint browsers report violations
//! to. Reports are counted, so the browser tests can assert that none happened.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;

/// The policy every page is served with. `report-uri` makes browsers tell us about violations.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'; \
report-uri /csp-report";

static CSP_REPORTS: AtomicU64 = AtomicU64::new(0);

/// How many CSP violation reports this process has received.
pub fn report_count() -> u64 {
    CSP_REPORTS.load(Ordering::Relaxed)
}

/// `POST /csp-report`.
pub async fn receive_report(body: axum::body::Bytes) -> StatusCode {
    CSP_REPORTS.fetch_add(1, Ordering::Relaxed);
    // Reports are small JSON documents; log a bounded, lossy prefix for whoever investigates.
    let text = String::from_utf8_lossy(&body[..body.len().min(2048)]).into_owned();
    tracing::warn!(report = %text, "content security policy violation reported");
    StatusCode::NO_CONTENT
}
