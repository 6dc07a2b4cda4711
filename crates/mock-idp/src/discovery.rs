//! Discovery: how a client learns everything else about this IdP from its
//! issuer URL alone (OpenID Connect Discovery 1.0, RFC 8414).
//!
//! Served at `{issuer}/.well-known/openid-configuration` and
//! `{issuer}/.well-known/oauth-authorization-server` (where Okta serves
//! them), and at RFC 8414 3's `/.well-known/oauth-authorization-server{path}`.

use axum::{Json, extract::State, response::IntoResponse};
use serde_json::{Value, json};

use crate::{AppState, paths};

/// The metadata document. Every value is true of this server.
pub fn metadata(state: &AppState) -> Value {
    let issuer = &state.issuer;
    let mut scopes: Vec<&str> = state
        .clients
        .iter()
        .flat_map(|c| c.allowed_scopes.iter().map(String::as_str))
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}{}", paths::AUTHORIZE),
        "token_endpoint": format!("{issuer}{}", paths::TOKEN),
        "userinfo_endpoint": format!("{issuer}{}", paths::USERINFO),
        "jwks_uri": format!("{issuer}{}", paths::KEYS),
        "revocation_endpoint": format!("{issuer}{}", paths::REVOKE),
        "introspection_endpoint": format!("{issuer}{}", paths::INTROSPECT),
        "end_session_endpoint": format!("{issuer}{}", paths::LOGOUT),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "subject_types_supported": ["public"],
        "scopes_supported": scopes,
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid",
            "name", "given_name", "family_name", "preferred_username", "email", "email_verified"
        ],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    })
}

pub async fn openid_configuration(State(state): State<AppState>) -> impl IntoResponse {
    Json(metadata(&state))
}

/// The JWKS: public keys only.
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.keys.jwks())
}
