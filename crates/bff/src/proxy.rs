//! Step 9: `ANY /bff/api/{*path}` forwards the browser's request to the API's
//! `/api/{path}` with the session's access token attached. The browser never
//! sees the token; the API never sees the browser's cookie.
//!
//! - Requires `X-CSRF: 1` (see `csrf.rs`).
//! - An access token about to expire is refreshed first ([`crate::refresh`]);
//!   a refresh the provider refuses ends the session (401), one that could
//!   not be made keeps it (503 with `Retry-After`).
//! - Bodies stream both ways; nothing is buffered.
//! - Only an allow-list of headers crosses, in each direction.
//! - The API down is a clean 502 JSON error.

use axum::{
    body::Body,
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderName, StatusCode, header},
    response::Response,
};
use tracing::instrument;

use crate::{
    AppState, refresh,
    reply::{json_error, unavailable_json},
    session::SignedIn,
};

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

fn copy(from: &HeaderMap, to: &mut HeaderMap, allowed: &[HeaderName]) {
    for name in allowed {
        for value in from.get_all(name) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// `{api_url}/api/{path}?{query}`, or `None` for a path that could leave
/// `/api/`. Each segment is appended (and percent-encoded) by the URL parser
/// itself, so `.`, `..`, an encoded `%2e%2e` decoded once by the router, or
/// a backslash cannot climb out; anything still odd is refused.
fn api_url(base: &url::Url, path: &str, query: Option<&str>) -> Option<url::Url> {
    let odd = |s: &str| {
        s == "." || s == ".." || s.contains(['\\', '%']) || s.chars().any(char::is_control)
    };
    if path.split('/').any(odd) {
        return None;
    }
    let mut url = base.clone();
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .push("api")
        .extend(path.split('/'));
    url.set_query(query);
    let prefix = format!("{}/api/", base.path().trim_end_matches('/'));
    url.path().starts_with(&prefix).then_some(url)
}

#[instrument(name = "step9_call_api", skip_all, fields(path = ?path))]
pub async fn proxy(
    State(state): State<AppState>,
    mut signed_in: SignedIn,
    Path(path): Path<String>,
    request: Request,
) -> Response {
    let started = std::time::Instant::now();
    if let Err(e) = refresh::ensure_fresh(&state, &mut signed_in).await {
        if !e.ends_session() {
            tracing::warn!(error = %e, "could not refresh the access token; the session is kept");
            return unavailable_json("the identity provider is unavailable; try again");
        }
        tracing::info!(error = %e, "session ended: its tokens could not be refreshed");
        match signed_in.end(&state).await {
            Ok(()) => state.metrics.sessions_ended("refresh_refused", 1),
            Err(e) => tracing::error!(error = %e, "could not end the session"),
        }
        return json_error(StatusCode::UNAUTHORIZED, "session_expired", "sign in again");
    }
    let Some(url) = api_url(&state.api_url, &path, request.uri().query()) else {
        return json_error(StatusCode::BAD_REQUEST, "invalid_request", "bad path");
    };
    let (parts, body) = request.into_parts();
    let mut headers = HeaderMap::new();
    copy(&parts.headers, &mut headers, &REQUEST_HEADERS);
    let mut upstream = state
        .api_http
        .request(parts.method, url)
        .headers(headers)
        .bearer_auth(&signed_in.login.tokens.access_token);
    // A body only when the browser sent one: a GET goes out as a GET, not
    // as a chunked upload of nothing.
    let has_body = parts.headers.contains_key(header::CONTENT_LENGTH)
        || parts.headers.contains_key(header::TRANSFER_ENCODING);
    if has_body {
        upstream = upstream.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let upstream = upstream.send().await;
    let upstream = match upstream {
        Ok(r) => r,
        Err(e) => {
            state.metrics.proxied(None, started.elapsed().as_secs_f64());
            // Without the URL: it carries the caller's query.
            tracing::warn!(error = %e.without_url(), "the API is unreachable");
            return json_error(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "the API is unreachable",
            );
        }
    };
    tracing::info!(status = %upstream.status(), "step10_api_answered");
    state.metrics.proxied(
        Some(upstream.status().as_u16()),
        started.elapsed().as_secs_f64(),
    );
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

#[cfg(test)]
mod tests {
    use super::api_url;

    fn base(url: &str) -> url::Url {
        url::Url::parse(url).unwrap()
    }

    #[test]
    fn paths_cannot_leave_the_api_prefix() {
        let ok = api_url(&base("http://api:4000"), "notes/7", Some("a=b")).unwrap();
        assert_eq!(ok.as_str(), "http://api:4000/api/notes/7?a=b");
        let gateway = api_url(&base("https://gw/notes-svc/"), "me", None).unwrap();
        assert_eq!(gateway.as_str(), "https://gw/notes-svc/api/me");
        // What the router hands over after decoding the request path once.
        for bad in [
            "../healthz",
            "./me",
            "%2e%2e/healthz",
            ".%2e/x",
            "..\\healthz",
            "a/../../b",
            ".\n./x",
        ] {
            assert!(
                api_url(&base("http://api:4000"), bad, None).is_none(),
                "{bad:?}"
            );
        }
    }
}
