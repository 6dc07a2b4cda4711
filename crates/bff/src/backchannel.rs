//! `POST /bff/backchannel`: OIDC Back-Channel Logout 1.0, the relying
//! party's side. When a session ends at the provider (a sign-out there, or
//! in another app), the provider POSTs a signed logout token here, and every
//! BFF session of that provider session ends, on every instance sharing the
//! session store.
//!
//! Every check of a logout token, in the order of 2.6, is in [`validate`]:
//! 1. a JWS signed by a key the provider publishes (fetched again, at most
//!    every few seconds, when the `kid` is unknown), with an asymmetric
//!    algorithm: never `none`, never HMAC (RFC 8725 3.1, 3.2);
//! 2. `typ`, when present, is `logout+jwt` (2.4, RFC 8725 3.11);
//! 3. `iss` exactly the provider's; `aud` contains this client;
//! 4. `iat` within the clock window; `exp`, when present, not passed;
//! 5. `events` has the back-channel logout member, a JSON object;
//! 6. `sid` or `sub`; no `nonce` (2.4: so no ID token passes for one);
//! 7. `jti` never seen before, remembered in the session store so that a
//!    replay to another instance is caught too (2.6 item 9).
//!
//! The answer (2.8): 200 with `Cache-Control: no-store`, or 400 with a JSON
//! error; a refused token ends nothing.

use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    jwk::{JwkSet, KeyAlgorithm},
};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::instrument;

use crate::AppState;

/// The `events` member that makes a JWT a logout token (2.4).
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How old a logout token may be, beyond the clock skew (seconds).
const MAX_AGE: i64 = 300;
/// The algorithms a logout token may be signed with.
const ALGORITHMS: [Algorithm; 5] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why a logout token was refused: said to the provider, which sent it.
#[derive(Debug, thiserror::Error)]
pub enum LogoutTokenError {
    #[error("logout_token is missing")]
    Missing,
    #[error("not a JWS signed with an allowed algorithm")]
    Malformed,
    #[error("typ is not logout+jwt")]
    WrongType,
    #[error("signed with a key the provider does not publish")]
    UnknownKey,
    #[error("the signature or a registered claim is not valid")]
    Invalid,
    #[error("iss is not the provider")]
    WrongIssuer,
    #[error("aud does not name this client")]
    WrongAudience,
    #[error("iat is outside the accepted window")]
    Stale,
    #[error("expired")]
    Expired,
    #[error("events has no back-channel logout member")]
    NoEvent,
    #[error("neither sid nor sub")]
    NoSubject,
    #[error("a logout token must not have a nonce")]
    HasNonce,
    #[error("jti is missing")]
    NoJti,
    #[error("this logout token was used already")]
    Replayed,
    #[error("the session store failed")]
    Store,
}

/// A logout token that passed every check: whose sessions to end.
#[derive(Debug)]
pub struct LogoutToken {
    pub sid: Option<String>,
    pub sub: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    aud: Audience,
    iat: i64,
    exp: Option<i64>,
    jti: Option<String>,
    sid: Option<String>,
    sub: Option<String>,
    events: Option<Value>,
    nonce: Option<Value>,
}

/// `aud`: one string or several (RFC 7519 4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, client_id: &str) -> bool {
        match self {
            Audience::One(aud) => aud == client_id,
            Audience::Many(auds) => auds.iter().any(|a| a == client_id),
        }
    }
}

#[instrument(name = "backchannel_logout", skip_all)]
pub async fn backchannel(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "the request body could not be read"}),
        );
    };
    // 2.5: a form-encoded body with `logout_token`; anything else is a token
    // that is missing, answered in JSON like every other refusal.
    let logout_token = url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == "logout_token")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let token = match validate(&state, &logout_token).await {
        Ok(token) => token,
        Err(e) => {
            tracing::info!(error = %e, "logout token refused");
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request", "error_description": e.to_string()}),
            );
        }
    };
    let issuer = state.provider.get().issuer.clone();
    match state
        .store
        .end_logins(&issuer, token.sid.as_deref(), token.sub.as_deref())
        .await
    {
        Ok(ended) => {
            tracing::info!(ended, "back-channel logout: sessions ended");
            state.metrics.sessions_ended("backchannel", ended as u64);
            answer(StatusCode::OK, json!({}))
        }
        Err(e) => {
            // 2.8: the RP could not log out; the provider may try again.
            tracing::error!(error = %e, "back-channel logout: could not end the sessions");
            answer(
                StatusCode::BAD_REQUEST,
                json!({"error": "temporarily_unavailable", "error_description": "the session store failed"}),
            )
        }
    }
}

/// 2.8: no cache may keep the answer.
fn answer(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Every check of a logout token, in order (2.6).
pub async fn validate(state: &AppState, token: &str) -> Result<LogoutToken, LogoutTokenError> {
    if token.is_empty() {
        return Err(LogoutTokenError::Missing);
    }
    // 1. The header: an allowed algorithm, and `typ` when present.
    let header = jsonwebtoken::decode_header(token).map_err(|_| LogoutTokenError::Malformed)?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(LogoutTokenError::Malformed);
    }
    // 2. 2.4: explicitly typed when typed at all.
    if let Some(typ) = &header.typ
        && !typ.eq_ignore_ascii_case("logout+jwt")
        && !typ.eq_ignore_ascii_case("application/logout+jwt")
    {
        return Err(LogoutTokenError::WrongType);
    }
    // 1. The key, from the provider's JWKS, fetched again once if unknown.
    let provider = state.provider.get();
    let claims = match verify(token, &header, &provider.keys, &provider.issuer) {
        Err(LogoutTokenError::UnknownKey) => match state.provider.refresh().await {
            Some(fresh) => verify(token, &header, &fresh.keys, &fresh.issuer)?,
            None => return Err(LogoutTokenError::UnknownKey),
        },
        other => other?,
    };
    // 3. iss exactly (jsonwebtoken checked it too), aud this client.
    if claims.iss != provider.issuer {
        return Err(LogoutTokenError::WrongIssuer);
    }
    if !claims.aud.contains(&state.config.client_id) {
        return Err(LogoutTokenError::WrongAudience);
    }
    // 4. iat and exp, by the BFF's clock.
    let now = state.clock.now();
    let skew = state.config.clock_skew_seconds;
    if claims.iat > now + skew || claims.iat < now - skew - MAX_AGE {
        return Err(LogoutTokenError::Stale);
    }
    if claims.exp.is_some_and(|exp| now >= exp + skew) {
        return Err(LogoutTokenError::Expired);
    }
    // 5. events: the back-channel logout member, a JSON object.
    let is_logout = claims
        .events
        .as_ref()
        .and_then(|events| events.get(BACKCHANNEL_EVENT))
        .is_some_and(Value::is_object);
    if !is_logout {
        return Err(LogoutTokenError::NoEvent);
    }
    // 6. sid or sub; never a nonce.
    if claims.sid.is_none() && claims.sub.is_none() {
        return Err(LogoutTokenError::NoSubject);
    }
    if claims.nonce.is_some() {
        return Err(LogoutTokenError::HasNonce);
    }
    // 7. jti, once across every instance.
    let jti = claims.jti.ok_or(LogoutTokenError::NoJti)?;
    let first = state
        .store
        .first_use(
            "logout-jti",
            &format!("{}\n{jti}", provider.issuer),
            now + MAX_AGE + 2 * skew,
        )
        .await
        .map_err(|_| LogoutTokenError::Store)?;
    if !first {
        return Err(LogoutTokenError::Replayed);
    }
    Ok(LogoutToken {
        sid: claims.sid,
        sub: claims.sub,
    })
}

/// The signature, by the key the header's `kid` names in `keys`.
fn verify(
    token: &str,
    header: &jsonwebtoken::Header,
    keys: &JwkSet,
    issuer: &str,
) -> Result<Claims, LogoutTokenError> {
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        // A provider with one key may leave `kid` out.
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or(LogoutTokenError::UnknownKey)?;
    // RFC 8725 3.1: a key that names its algorithm verifies only that one.
    if jwk
        .common
        .key_algorithm
        .is_some_and(|alg| alg != KeyAlgorithm::from(header.alg))
    {
        return Err(LogoutTokenError::Malformed);
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| LogoutTokenError::UnknownKey)?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    // The audience and the times are checked by `validate`, in order.
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss"]);
    jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|_| LogoutTokenError::Invalid)
}
