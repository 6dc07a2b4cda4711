//! Every way a request to the API can fail, and its one wire form.
//!
//! Authentication and authorization errors follow RFC 6750 section 3: a
//! `WWW-Authenticate: Bearer` challenge whose `error` is `invalid_token`
//! (401) or `insufficient_scope` (403, with the `scope` needed, section 3.1).
//! A request with no token at all gets the bare challenge without an error
//! code (section 3.1: "SHOULD NOT include an error code").
//!
//! What failed inside a token is never said: every validation failure is the
//! same `invalid_token`, so an attacker cannot learn which check to work on.
//! The reason goes to the log instead (see `validate.rs`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The realm named in every challenge (RFC 6750 section 3).
const REALM: &str = "api";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No bearer token in the request (RFC 6750 section 3.1).
    #[error("no bearer token")]
    MissingToken,
    /// Any validation failure; the reason is logged, never returned.
    #[error("invalid token")]
    InvalidToken,
    /// A valid token without the scope this route needs (RFC 6750 section 3.1).
    #[error("insufficient scope: {0} needed")]
    InsufficientScope(&'static str),
    /// The issuer's keys could not be fetched yet, so no token can be checked.
    #[error("signing keys unavailable")]
    KeysUnavailable,
    /// A malformed request body or parameter, described for the client.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// No such note for this caller (whether it exists for someone else is not said).
    #[error("not found")]
    NotFound,
    /// A route asked with a method it does not take.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The database failed.
    #[error("storage error: {0}")]
    Storage(#[from] sqlx::Error),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::MissingToken => challenge(
                StatusCode::UNAUTHORIZED,
                format!("Bearer realm=\"{REALM}\""),
                json!({"error": "unauthorized"}),
            ),
            ApiError::InvalidToken => challenge(
                StatusCode::UNAUTHORIZED,
                format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""),
                json!({"error": "invalid_token"}),
            ),
            ApiError::InsufficientScope(scope) => challenge(
                StatusCode::FORBIDDEN,
                format!(
                    "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{scope}\""
                ),
                json!({"error": "insufficient_scope", "scope": scope}),
            ),
            ApiError::KeysUnavailable => {
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "temporarily_unavailable"})),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
                response
            }
            ApiError::InvalidRequest(description) => (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_request", "error_description": description})),
            )
                .into_response(),
            ApiError::NotFound => {
                (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response()
            }
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(json!({"error": "method_not_allowed"})),
            )
                .into_response(),
            ApiError::Storage(error) => {
                tracing::error!(%error, "database error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"error": "server_error"})),
                )
                    .into_response()
            }
        }
    }
}

fn challenge(status: StatusCode, www_authenticate: String, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    // Built only from constants and scope names this crate defines, so it is
    // always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&www_authenticate) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
