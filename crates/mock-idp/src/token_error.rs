//! The errors of the back-channel endpoints (token, revocation,
//! introspection) in their one wire form: RFC 6749 5.2 JSON, with
//! `Cache-Control: no-store` (RFC 6749 5.1) and, for a failed client
//! authentication, a `WWW-Authenticate` challenge (RFC 9110 15.5.2).

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{client_auth::ClientAuthError, form::FormError, tokens::MintError};

/// RFC 6749 5.2 errors (also used by revocation and introspection).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("client authentication failed")]
    InvalidClient,
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("this client may not use this grant type")]
    UnauthorizedClient,
    #[error("grant_type must be authorization_code or refresh_token")]
    UnsupportedGrantType,
    #[error("{0}")]
    InvalidScope(&'static str),
    #[error("the server could not answer")]
    Server,
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(_) => "invalid_request",
            TokenError::InvalidClient => "invalid_client",
            TokenError::InvalidGrant(_) => "invalid_grant",
            TokenError::UnauthorizedClient => "unauthorized_client",
            TokenError::UnsupportedGrantType => "unsupported_grant_type",
            TokenError::InvalidScope(_) => "invalid_scope",
            TokenError::Server => "server_error",
        }
    }
}

impl From<ClientAuthError> for TokenError {
    fn from(e: ClientAuthError) -> Self {
        match e {
            ClientAuthError::Malformed(m) => TokenError::InvalidRequest(m.to_owned()),
            ClientAuthError::Unauthenticated | ClientAuthError::Failed => TokenError::InvalidClient,
        }
    }
}

impl From<MintError> for TokenError {
    fn from(e: MintError) -> Self {
        tracing::error!(error = %e, "could not issue tokens");
        TokenError::Server
    }
}

impl From<crate::store::StoreError> for TokenError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store failed");
        TokenError::Server
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let status = match &self {
            // RFC 6749 5.2: 401 for a failed client authentication.
            TokenError::InvalidClient => StatusCode::UNAUTHORIZED,
            TokenError::Server => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = Json(json!({"error": self.code(), "error_description": self.to_string()}));
        let mut response = (status, no_store(), body).into_response();
        // RFC 6749 5.2: a failed Basic authentication gets its challenge back;
        // RFC 9110 15.5.2: so does every other 401 (Basic is the scheme we take).
        if let TokenError::InvalidClient = self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mock-idp\""),
            );
        }
        response
    }
}

/// RFC 6749 5.1: token responses must not be cached.
pub fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

impl From<FormError> for TokenError {
    fn from(e: FormError) -> Self {
        TokenError::InvalidRequest(e.to_string())
    }
}
