//! `GET|POST /v1/userinfo` (OIDC Core 5.3): the claims about the signed-in
//! user that the access token's scopes release.
//!
//! The access token comes in the `Authorization: Bearer` header only
//! (RFC 6750 2.1); errors are RFC 6750 3 `WWW-Authenticate` challenges.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::{
    AppState,
    token_error::no_store,
    tokens::{user_claims, verify_access_token},
};

/// The bearer token of the `Authorization` header, if it has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn challenge(status: StatusCode, value: &'static str) -> Response {
    (
        status,
        [(header::WWW_AUTHENTICATE, HeaderValue::from_static(value))],
    )
        .into_response()
}

pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        // RFC 6750 3.1: no credentials, no error code.
        return challenge(StatusCode::UNAUTHORIZED, "Bearer realm=\"mock-idp\"");
    };
    let Some(claims) = verify_access_token(&state, token).await else {
        return challenge(
            StatusCode::UNAUTHORIZED,
            "Bearer realm=\"mock-idp\", error=\"invalid_token\"",
        );
    };
    // OIDC Core 5.3: userinfo needs the openid scope.
    if !claims.scopes().any(|s| s == "openid") {
        return challenge(
            StatusCode::FORBIDDEN,
            "Bearer realm=\"mock-idp\", error=\"insufficient_scope\", scope=\"openid\"",
        );
    }
    let user = match state.store.user_by_sub(&claims.sub).await {
        Ok(Some(user)) => user,
        _ => {
            return challenge(
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"mock-idp\", error=\"invalid_token\"",
            );
        }
    };
    let mut body = user_claims(&user, claims.scopes(), state.settings.profile);
    body.insert("sub".into(), user.sub.into());
    (no_store(), Json(body)).into_response()
}
