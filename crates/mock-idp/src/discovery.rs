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
    let endpoint = |path| state.endpoint(path);
    let mut scopes: Vec<&str> = state
        .clients
        .iter()
        .flat_map(|c| c.allowed_scopes.iter().map(String::as_str))
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    let profile = state.settings.profile;
    let mut auth_methods = vec!["client_secret_basic", "client_secret_post"];
    if profile.offers_private_key_jwt() {
        auth_methods.push("private_key_jwt");
    }
    let with_none = |mut methods: Vec<&'static str>| {
        methods.push("none");
        methods
    };
    let mut metadata = json!({
        "issuer": issuer,
        "authorization_endpoint": endpoint(paths::AUTHORIZE),
        "token_endpoint": endpoint(paths::TOKEN),
        "userinfo_endpoint": endpoint(paths::USERINFO),
        "jwks_uri": endpoint(paths::KEYS),
        "revocation_endpoint": endpoint(paths::REVOKE),
        "introspection_endpoint": endpoint(paths::INTROSPECT),
        "end_session_endpoint": endpoint(paths::LOGOUT),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": with_none(auth_methods.clone()),
        "revocation_endpoint_auth_methods_supported": with_none(auth_methods.clone()),
        "introspection_endpoint_auth_methods_supported": auth_methods,
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
        "backchannel_logout_supported": profile.sends_backchannel_logout(),
        "backchannel_logout_session_supported": profile.sends_backchannel_logout(),
    });
    // What a profile's provider does not have is left out, not set false:
    // a client finds no end-session endpoint, as at Google.
    if !profile.has_end_session() {
        metadata
            .as_object_mut()
            .map(|m| m.remove("end_session_endpoint"));
    }
    if profile.offers_private_key_jwt() {
        metadata["token_endpoint_auth_signing_alg_values_supported"] =
            json!(["RS256", "PS256", "ES256"]);
    }
    metadata
}

pub async fn openid_configuration(State(state): State<AppState>) -> impl IntoResponse {
    Json(metadata(&state))
}

/// The JWKS: public keys only.
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.keys.jwks())
}
