//! Step 9: `ANY /bff/api/{*path}` forwards the browser's request to the API's
//! `/api/{path}` with the session's access token attached. The browser never
//! sees the token; the API never sees the browser's cookie.
//!
//! - Requires `X-CSRF: 1` (see `csrf.rs`).
//! - Bodies stream both ways; nothing is buffered.
//! - Only an allow-list of headers crosses, in each direction.
//! - The API down is a clean 502 JSON error.

use axum::{
    Json,
    body::Body,
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderName, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;
use tower_sessions::Session;
use tracing::instrument;

use crate::{AppState, session::Sessions};

/// Request headers passed to the API. Not `cookie`, not `authorization`.
const REQUEST_HEADERS: [HeaderName; 6] = [
    header::ACCEPT,
    header::ACCEPT_LANGUAGE,
    header::CONTENT_TYPE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    HeaderName::from_static("x-request-id"),
];

/// Response headers passed back to the browser. Not `set-cookie`.
const RESPONSE_HEADERS: [HeaderName; 7] = [
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    header::ETAG,
    header::LAST_MODIFIED,
    header::LOCATION,
    header::WWW_AUTHENTICATE,
    HeaderName::from_static("x-request-id"),
];

fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn copy(from: &HeaderMap, to: &mut HeaderMap, allowed: &[HeaderName]) {
    for name in allowed {
        for value in from.get_all(name) {
            to.append(name.clone(), value.clone());
        }
    }
}

#[instrument(name = "step9_call_api", skip_all, fields(path = %path))]
pub async fn proxy(
    State(state): State<AppState>,
    session: Session,
    Path(path): Path<String>,
    request: Request,
) -> Response {
    let Some(signed_in) =
        Sessions::signed_in(&session, state.config.session_absolute_seconds).await
    else {
        return json_error(StatusCode::UNAUTHORIZED, "not_signed_in", "sign in first");
    };
    // No climbing out of /api/ with dot segments.
    if path.split('/').any(|s| s == ".." || s == ".") {
        return json_error(StatusCode::BAD_REQUEST, "invalid_request", "bad path");
    }
    let mut url = format!("{}/api/{path}", state.config.api_url.trim_end_matches('/'));
    if let Some(query) = request.uri().query() {
        url.push('?');
        url.push_str(query);
    }
    let (parts, body) = request.into_parts();
    let mut headers = HeaderMap::new();
    copy(&parts.headers, &mut headers, &REQUEST_HEADERS);
    let upstream = state
        .api_http
        .request(parts.method, &url)
        .headers(headers)
        .bearer_auth(&signed_in.tokens.access_token)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let upstream = match upstream {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "the API is unreachable");
            return json_error(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "the API is unreachable",
            );
        }
    };
    tracing::info!(status = %upstream.status(), "step10_api_answered");
    let mut response = Response::builder().status(upstream.status().as_u16());
    if let Some(headers) = response.headers_mut() {
        copy(upstream.headers(), headers, &RESPONSE_HEADERS);
    }
    response
        .body(Body::from_stream(upstream.bytes_stream()))
        .unwrap_or_else(|_| {
            json_error(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "bad answer from the API",
            )
        })
}
