//! Steps 5-8, the client's side: `GET /bff/callback` receives the code,
//! exchanges it with the PKCE verifier, validates the ID token, and keeps
//! every token in the server-side session.
//!
//! The checks, in order:
//! 1. `state` names a login this browser started, and is used up
//!    (RFC 6749 10.12, RFC 9700 4.7).
//! 2. `iss` is the expected issuer when the provider sends it or says it
//!    will (RFC 9207 2.4; mix-up defence, RFC 9700 4.4).
//! 3. An error response becomes a page a person can read and recover from.
//! 4. The code is exchanged with the verifier (step 6; the provider checks
//!    PKCE, step 7).
//! 5. The ID token: signature, `iss`, `aud`, `exp`, `iat`, `nonce`
//!    (OIDC Core 3.1.3.7) and `at_hash` (3.1.3.8).
//! 6. The session id changes (no session fixation), then tokens are stored.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClaimsVerificationError, Nonce, OAuth2TokenResponse,
    PkceCodeVerifier, SignatureVerificationError, TokenResponse,
    core::{CoreIdTokenClaims, CoreTokenResponse},
};
use serde::Deserialize;
use tower_sessions::Session;
use tracing::instrument;

use crate::{
    AppState,
    oidc::{ID_TOKEN_ALGS, Provider},
    pages::ErrorPage,
    session::{Sessions, SignedIn, Tokens, User},
};

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    // `error_description` is neither shown nor logged: anyone can put any
    // words in it by crafting the URL.
}

/// Why a callback was refused.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("this sign-in response is not one this browser asked for (unknown or used state)")]
    UnknownState,
    #[error("the sign-in response came from the wrong issuer")]
    WrongIssuer,
    #[error("the provider answered: {0}")]
    Denied(String),
    #[error("the sign-in response has no code")]
    MissingCode,
    #[error("the provider refused the code: {0}")]
    Exchange(String),
    #[error("the ID token is not valid: {0}")]
    IdToken(String),
    #[error("the session store failed")]
    Session,
}

impl IntoResponse for CallbackError {
    fn into_response(self) -> Response {
        match &self {
            CallbackError::Denied(code) if code == "access_denied" => ErrorPage::response(
                StatusCode::FORBIDDEN,
                "Access was denied",
                "You chose not to let this app use your account, so you are not signed in.",
                true,
            ),
            CallbackError::Denied(_) => ErrorPage::response(
                StatusCode::BAD_REQUEST,
                "Sign-in did not finish",
                &self.to_string(),
                true,
            ),
            CallbackError::Exchange(_) | CallbackError::Session => ErrorPage::response(
                StatusCode::BAD_GATEWAY,
                "Sign-in did not finish",
                &self.to_string(),
                true,
            ),
            _ => ErrorPage::response(
                StatusCode::BAD_REQUEST,
                "Sign-in did not finish",
                &self.to_string(),
                true,
            ),
        }
    }
}

/// The redirect URI.
#[instrument(name = "step5_callback", skip_all)]
pub async fn callback(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<CallbackQuery>,
) -> Response {
    // The back button after sign-in replays a used callback: a signed-in
    // person simply goes home instead of meeting an error.
    let already_signed_in = Sessions::signed_in(&session, state.config.session_absolute_seconds)
        .await
        .is_some();
    match handle(&state, &session, q).await {
        Ok(return_url) => Redirect::to(&return_url).into_response(),
        Err(CallbackError::UnknownState) if already_signed_in => Redirect::to("/").into_response(),
        Err(e) => {
            tracing::info!(error = %e, "callback refused");
            e.into_response()
        }
    }
}

async fn handle(
    state: &AppState,
    session: &Session,
    q: CallbackQuery,
) -> Result<String, CallbackError> {
    // 1. RFC 6749 10.12: state must be one this browser's session holds; used once.
    let pending = match q.state.as_deref() {
        Some(s) => Sessions::take_pending(session, s).await,
        None => None,
    }
    .ok_or(CallbackError::UnknownState)?;
    // Two requests racing with the same callback URL each hold their own
    // copy of the session: only the first may go on (or the second would
    // redeem the code again, and the provider would revoke the first's
    // tokens as a replay).
    if !state.answered_states.claim(&pending.state) {
        return Err(CallbackError::UnknownState);
    }
    // 2. RFC 9207 2.4: the issuer, when sent or promised, must be ours.
    let provider = state.provider.get();
    let promised = provider
        .extra
        .authorization_response_iss_parameter_supported
        == Some(true);
    match q.iss.as_deref() {
        Some(iss) if iss != provider.issuer => return Err(CallbackError::WrongIssuer),
        None if promised => return Err(CallbackError::WrongIssuer),
        _ => {}
    }
    // 3. An error response (RFC 6749 4.1.2.1).
    if let Some(error) = q.error {
        // The code only, escaped: the description is whatever the URL said.
        tracing::info!(error = ?error, "provider returned an error");
        return Err(CallbackError::Denied(error));
    }
    let code = q.code.ok_or(CallbackError::MissingCode)?;

    // 4. Step 6: code + verifier to the token endpoint.
    let response = exchange(&provider, &state.http, code, pending.pkce_verifier).await?;

    // 5. OIDC Core 3.1.3.7: the ID token. A key the BFF has not seen yet
    // (the provider rotated) gets one fresh look at its JWKS.
    let nonce = Nonce::new(pending.nonce);
    let claims = match verify_id_token(&provider, &response, &nonce) {
        Err(IdTokenError::UnknownKey) => match state.provider.refresh().await {
            Some(fresh) => verify_id_token(&fresh, &response, &nonce),
            None => Err(IdTokenError::UnknownKey),
        },
        other => other,
    }
    .map_err(|e| CallbackError::IdToken(e.to_string()))?;
    let id_token = response
        .id_token()
        .ok_or_else(|| CallbackError::IdToken("the token response has no id_token".into()))?;
    let user = User {
        sub: claims.subject().to_string(),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
        email: claims.email().map(|e| e.to_string()),
        claims: serde_json::to_value(claims)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default(),
    };
    let expires_in = response
        .expires_in()
        .map(|d| d.as_secs() as i64)
        .unwrap_or(300);
    let signed_in = SignedIn {
        user,
        tokens: Tokens {
            access_token: response.access_token().secret().clone(),
            access_expires_at: crate::now() + expires_in,
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            id_token: id_token.to_string(),
        },
        signed_in_at: crate::now(),
        csrf: crate::random_token(),
    };

    // 6. A new session id now that the session carries identity (fixation).
    session
        .cycle_id()
        .await
        .map_err(|_| CallbackError::Session)?;
    Sessions::sign_in(session, &signed_in)
        .await
        .map_err(|_| CallbackError::Session)?;
    tracing::info!(sub = %signed_in.user.sub, "signed in");
    Ok(pending.return_url)
}

/// How far in the future an ID token's `iat` may be (clocks differ).
const MAX_CLOCK_SKEW: i64 = 60;
/// How old an ID token may be when it arrives with its code.
const MAX_ID_TOKEN_AGE: i64 = 300;

#[derive(Debug, thiserror::Error)]
enum IdTokenError {
    #[error("the token response has no id_token")]
    Missing,
    #[error("signed with a key the provider does not publish")]
    UnknownKey,
    #[error("{0}")]
    Invalid(String),
}

/// OIDC Core 3.1.3.7 (signature, `iss`, `aud`, `exp`, `iat`, `nonce`) and
/// 3.1.3.8 (`at_hash` binds the access token to the ID token).
fn verify_id_token(
    provider: &Provider,
    response: &CoreTokenResponse,
    nonce: &Nonce,
) -> Result<CoreIdTokenClaims, IdTokenError> {
    let id_token = response.id_token().ok_or(IdTokenError::Missing)?;
    let verifier = provider
        .client
        .id_token_verifier()
        .set_allowed_algs(ID_TOKEN_ALGS.to_vec());
    let claims = id_token.claims(&verifier, nonce).map_err(|e| match e {
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        ) => IdTokenError::UnknownKey,
        other => IdTokenError::Invalid(other.to_string()),
    })?;
    // 3.1.3.7 item 10: a token just issued has an `iat` of about now.
    let age = crate::now() - claims.issue_time().timestamp();
    if !(-MAX_CLOCK_SKEW..=MAX_ID_TOKEN_AGE).contains(&age) {
        return Err(IdTokenError::Invalid("iat is too far from now".into()));
    }
    if let Some(expected) = claims.access_token_hash() {
        let invalid = |e: &dyn std::fmt::Display| IdTokenError::Invalid(e.to_string());
        let alg = id_token.signing_alg().map_err(|e| invalid(&e))?;
        let key = id_token.signing_key(&verifier).map_err(|e| invalid(&e))?;
        let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
            .map_err(|e| invalid(&e))?;
        if actual != *expected {
            return Err(IdTokenError::Invalid(
                "at_hash does not match the access token".into(),
            ));
        }
    }
    Ok(claims.clone())
}

/// Step 6: the token request.
#[instrument(name = "step6_exchange_code", skip_all)]
async fn exchange(
    provider: &Provider,
    http: &reqwest::Client,
    code: String,
    verifier: String,
) -> Result<CoreTokenResponse, CallbackError> {
    provider
        .client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| CallbackError::Exchange(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(http)
        .await
        .map_err(|e| CallbackError::Exchange(describe_token_error(&e)))
}

/// A token-endpoint failure in words, without any secret.
fn describe_token_error<E: std::error::Error>(e: &E) -> String {
    match e.source() {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}
