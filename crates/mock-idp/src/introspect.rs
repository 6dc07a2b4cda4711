//! `POST /v1/introspect` (RFC 7662): is this token active, and what does it
//! say?
//!
//! - Client authentication is required (RFC 7662 2.1; public clients may not
//!   introspect).
//! - `{"active": false}` and nothing else for anything expired, revoked,
//!   malformed, issued to another audience, or a refresh token of another
//!   client (RFC 7662 2.2, 4).

use axum::{
    Json,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::{
    AppState,
    clients::AuthMethod,
    form::{BackChannelBody, Form},
    secret,
    token_error::{TokenError, no_store},
    tokens::verify_access_token,
};

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    BackChannelBody(body): BackChannelBody,
) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(answer) => (no_store(), Json(answer)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Value, TokenError> {
    let form = Form::read_body(headers, body)?;
    let client = crate::client_auth::authenticate(state, headers, &form)?;
    if client.auth_method == AuthMethod::None {
        return Err(TokenError::InvalidClient);
    }
    let token = form
        .get("token")
        .ok_or_else(|| TokenError::InvalidRequest("token is missing".into()))?;
    if let Some(claims) = verify_access_token(state, token).await {
        return Ok(json!({
            "active": true,
            "token_type": "Bearer",
            "iss": state.issuer,
            "sub": claims.sub,
            "aud": state.settings.profile.api_audience(),
            "exp": claims.expires_at,
            "iat": claims.issued_at,
            "jti": claims.jti,
            "client_id": claims.client_id,
            "scope": claims.scope,
        }));
    }
    let now = state.clock.now();
    if let Some(stored) = state.store.refresh_token(&secret::digest(token)).await? {
        let active = stored.client_id == client.id
            && !stored.revoked
            && stored.rotated_at.is_none()
            && now < stored.expires_at
            && now < stored.family_expires_at;
        if active {
            return Ok(json!({
                "active": true,
                "token_type": "refresh_token",
                "iss": state.issuer,
                "sub": stored.sub,
                "client_id": stored.client_id,
                "scope": stored.scope,
                "exp": stored.expires_at.min(stored.family_expires_at),
            }));
        }
    }
    Ok(json!({"active": false}))
}
