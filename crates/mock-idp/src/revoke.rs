//! `POST /v1/revoke` (RFC 7009): a client gives back a token it no longer
//! needs (the BFF does at logout).
//!
//! - Client authentication as at the token endpoint; a client can only
//!   revoke its own tokens.
//! - Revoking a refresh token revokes its whole family and the access tokens
//!   issued from it (RFC 7009 2.1).
//! - An unknown or foreign token still answers 200 (RFC 7009 2.2): the
//!   answer tells an attacker nothing.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use crate::{
    AppState,
    form::{BackChannelBody, Form},
    secret,
    token_error::{TokenError, no_store},
    tokens::verify_access_token,
};

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    BackChannelBody(body): BackChannelBody,
) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(()) => (StatusCode::OK, no_store()).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), TokenError> {
    let form = Form::read_body(headers, body)?;
    let client = crate::client_auth::authenticate(state, headers, &form)?;
    let token = form
        .get("token")
        .ok_or_else(|| TokenError::InvalidRequest("token is missing".into()))?;
    // The hint only orders the look-ups (RFC 7009 2.1); both are tried.
    let access_first = form.get("token_type_hint") == Some("access_token");
    if access_first && revoke_access(state, &client.id, token).await? {
        return Ok(());
    }
    if let Some(stored) = state.store.refresh_token(&secret::digest(token)).await? {
        if stored.client_id == client.id {
            state.store.revoke_family(&stored.family_id).await?;
            tracing::info!(client_id = %client.id, "refresh token family revoked");
        }
        return Ok(());
    }
    if !access_first {
        revoke_access(state, &client.id, token).await?;
    }
    Ok(())
}

/// Revokes an access token of this client; `false` if it is not one.
async fn revoke_access(state: &AppState, client_id: &str, token: &str) -> Result<bool, TokenError> {
    match verify_access_token(state, token).await {
        Some(claims) if claims.client_id == client_id => {
            state
                .store
                .revoke_access_token(&claims.jti, state.clock.now())
                .await?;
            tracing::info!(client_id, "access token revoked");
            Ok(true)
        }
        _ => Ok(false),
    }
}
