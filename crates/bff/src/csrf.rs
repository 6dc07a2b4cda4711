//! CSRF defence for the BFF's JSON endpoints: they require the header
//! `X-CSRF: 1` (the IETF browser-based-apps draft, BFF section).
//!
//! A cross-site form cannot set a custom header, and a cross-site `fetch`
//! that sets one needs a CORS preflight this BFF never grants, so a request
//! that carries it came from the BFF's own pages.

use axum::{
    Json,
    extract::Request,
    http::{HeaderMap, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;

pub const HEADER: &str = "x-csrf";

pub fn has_header(headers: &HeaderMap) -> bool {
    headers.get(HEADER).is_some_and(|v| v == "1")
}

/// Middleware: answers 401 and does nothing unless `X-CSRF: 1` is present.
pub async fn require_header(request: Request, next: Next) -> Response {
    if !has_header(request.headers()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({
                "error": "csrf_header_missing",
                "error_description": "send the header X-CSRF: 1",
            })),
        )
            .into_response();
    }
    next.run(request).await
}

/// A form's anti-CSRF token (its `csrf` field) is `expected`, or the
/// request carries `X-CSRF: 1` (a script): how the BFF's forms that change
/// something (sign-out, the attack lab) are protected.
pub fn form_or_header(body: &[u8], headers: &HeaderMap, expected: &str) -> bool {
    let form_token = url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    crate::same_secret(&form_token, expected) || has_header(headers)
}
