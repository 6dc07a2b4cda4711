//! Steps 5-8, the client's side: `GET /bff/callback` receives the code,
//! exchanges it with the PKCE verifier, validates the ID token, and keeps
//! every token in the server-side session.
//!
//! The checks, in order:
//! 1. `state` names a login this browser started, and is used up: once per
//!    browser, and once across every instance sharing the session store
//!    (RFC 6749 10.12, RFC 9700 4.7).
//! 2. `iss` is the expected issuer when the provider sends it or says it
//!    will (RFC 9207 2.4; mix-up defence, RFC 9700 4.4).
//! 3. An error response becomes a page a person can read and recover from.
//! 4. The code is exchanged with the verifier (step 6; the provider checks
//!    PKCE, step 7). A code the provider refuses is the person's to retry
//!    (400); only a provider that cannot be reached, or answers garbage, is
//!    a bad gateway (502).
//! 5. The ID token ([`crate::id_token`]).
//! 6. The session id changes (no session fixation), then the login is
//!    stored.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use oauth2::{
    AuthorizationCode, PkceCodeVerifier, RequestTokenError, basic::BasicErrorResponseType,
};
use openidconnect::{Nonce, core::CoreTokenResponse};
use serde::Deserialize;
use tower_sessions::Session;
use tracing::instrument;

use crate::{
    AppState,
    flow::{self, Kind, Step},
    id_token,
    reply::{self, ErrorPage},
    session::{self, Login, PENDING_LIFETIME, Purpose, SignedIn, Tokens, User},
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
    #[error("the provider refused the code ({0}); the sign-in did not complete")]
    CodeRefused(String),
    #[error("the identity provider could not be reached or gave no usable answer")]
    ProviderUnavailable,
    #[error("the ID token is not valid: {0}")]
    IdToken(String),
    #[error("the session store failed")]
    Session,
}

impl CallbackError {
    fn status(&self) -> StatusCode {
        match self {
            CallbackError::Denied(code) if code == "access_denied" => StatusCode::FORBIDDEN,
            CallbackError::ProviderUnavailable => StatusCode::BAD_GATEWAY,
            CallbackError::Session => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_code(&self) -> &'static str {
        match self {
            CallbackError::Denied(code) if code == "access_denied" => "access_denied",
            CallbackError::CodeRefused(_) => "invalid_grant",
            CallbackError::ProviderUnavailable => "bad_gateway",
            CallbackError::Session => "temporarily_unavailable",
            _ => "invalid_request",
        }
    }

    /// A page for a person, JSON for a script.
    fn answer(&self, headers: &HeaderMap) -> Response {
        if reply::wants_json(headers) {
            return reply::json_error(self.status(), self.error_code(), &self.to_string());
        }
        match self {
            CallbackError::Denied(code) if code == "access_denied" => ErrorPage::response(
                self.status(),
                "Access was denied",
                "You chose not to let this app use your account, so you are not signed in.",
                true,
            ),
            CallbackError::CodeRefused(_) => ErrorPage::response(
                self.status(),
                "The sign-in did not complete",
                "The identity provider did not accept this sign-in (it may have taken too long, or been used already). Please try again.",
                true,
            ),
            _ => ErrorPage::response(
                self.status(),
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
    headers: HeaderMap,
    reply::PageQuery(q): reply::PageQuery<CallbackQuery>,
) -> Response {
    // The back button after sign-in replays a used callback: a signed-in
    // person simply goes home instead of meeting an error.
    let already_signed_in = matches!(SignedIn::load(&state, &session).await, Ok(Some(_)));
    match handle(&state, &session, q).await {
        Ok(return_url) => {
            state.metrics.login("signed_in");
            Redirect::to(&return_url).into_response()
        }
        Err(CallbackError::UnknownState) if already_signed_in => Redirect::to("/").into_response(),
        Err(e) => {
            tracing::info!(error = %e, "callback refused");
            state.metrics.login(e.error_code());
            e.answer(&headers)
        }
    }
}

async fn handle(
    state: &AppState,
    session: &Session,
    q: CallbackQuery,
) -> Result<String, CallbackError> {
    let now = state.clock.now();
    // 1. RFC 6749 10.12: state must be one this browser's session holds;
    // used once. Two requests racing with the same callback URL each hold
    // their own copy of the session, maybe on two instances: only the first
    // may go on, or the second would redeem the code again and the provider
    // would revoke the first's tokens as a replay.
    let pending = match q.state.as_deref() {
        Some(s) => session::take_pending(state, session, s).await,
        None => None,
    }
    .ok_or(CallbackError::UnknownState)?;
    let first = state
        .store
        .first_use("state", &pending.state, now + PENDING_LIFETIME)
        .await
        .map_err(|_| CallbackError::Session)?;
    if !first {
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
    if let Some(error) = &q.error
        && pending.purpose == Purpose::LabWrongVerifier
    {
        return Ok(flow::lab::no_fresh_code(state, session, error).await);
    }
    if let Some(error) = q.error {
        // The code only, escaped: the description is whatever the URL said.
        tracing::info!(error = ?error, "provider returned an error");
        return Err(CallbackError::Denied(error));
    }
    let code = q.code.ok_or(CallbackError::MissingCode)?;
    // The attack lab's fresh code, to redeem with a wrong verifier.
    if pending.purpose == Purpose::LabWrongVerifier {
        return Ok(flow::lab::wrong_verifier(state, session, &code).await);
    }
    let callback_step = Step::new(Kind::Callback, now, crate::here!("handle"))
        .request(
            "GET",
            &state.config.redirect_uri(),
            vec![
                ("code".to_owned(), flow::mask(&code)),
                ("state".to_owned(), flow::mask(&pending.state)),
                (
                    "iss".to_owned(),
                    q.iss.clone().unwrap_or_else(|| "(not sent)".to_owned()),
                ),
            ],
        )
        .outcome("state is one this browser started, used once; iss is the provider's (RFC 9207)");

    // 4. Step 6: code + verifier to the token endpoint.
    let verifier = pending.pkce_verifier.clone();
    let response = exchange(state, code.clone(), pending.pkce_verifier).await?;

    // 5. OIDC Core 3.1.3.7: the ID token.
    let verified = id_token::verify_login(state, &response, &Nonce::new(pending.nonce))
        .await
        .map_err(|e| CallbackError::IdToken(e.to_string()))?;
    let claims = &verified.claims;
    let user = User {
        sub: claims.subject().to_string(),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
        email: claims.email().map(|e| e.to_string()),
        claims: verified.all_claims.clone(),
    };
    let sid = user
        .claims
        .get("sid")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let login = Login {
        tokens: Tokens::from_response(&response, Some(verified.raw.clone()), None, now),
        user,
        sid,
        signed_in_at: now,
    };

    // 6. A new session id now that the session carries identity (fixation).
    session::sign_in(state, session, &login)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not store the login");
            CallbackError::Session
        })?;
    tracing::info!(sub = %login.user.sub, "signed in");

    // The flow inspector's trace of this login, and what the lab's replay
    // attack needs.
    let mut trace = pending.trace;
    trace.push(at_idp_step(pending.started_at, now, &verified));
    trace.push(callback_step);
    trace.extend(token_steps(
        state, &code, &verifier, &response, &verified, now,
    ));
    trace.extend(flow::api_steps(state, &login.tokens.access_token).await);
    flow::store(state, session, trace).await;
    flow::lab::remember_spent_code(session, &code, &verifier).await;
    Ok(pending.return_url)
}

/// Steps 3-4 of the trace: the browser at the IdP.
fn at_idp_step(left: i64, back: i64, verified: &id_token::Verified) -> Step {
    let auth_time = verified
        .all_claims
        .get("auth_time")
        .and_then(|v| v.as_i64())
        .map_or_else(|| "(not in the ID token)".to_owned(), flow::when);
    let source = Kind::AtIdp
        .source_elsewhere()
        .unwrap_or_else(|| crate::here!("handle"));
    Step::new(Kind::AtIdp, back, source)
        .detail("left for the IdP", flow::when(left))
        .detail("back at the BFF", flow::when(back))
        .detail("time at the IdP", format!("{} s", back - left))
        .detail("signed in at (auth_time, from the ID token)", auth_time)
        .outcome("the person signed in and allowed the app; the BFF saw none of it")
}

/// Steps 6-8 of the trace: the token request, the IdP's PKCE check, the
/// tokens.
fn token_steps(
    state: &AppState,
    code: &str,
    verifier: &str,
    response: &CoreTokenResponse,
    verified: &id_token::Verified,
    now: i64,
) -> Vec<Step> {
    use oauth2::TokenResponse as _;
    let provider = state.provider.get();
    let token_endpoint = provider.token_endpoint.clone().unwrap_or_default();
    let mut params = vec![
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("code".to_owned(), flow::mask(code)),
        ("redirect_uri".to_owned(), state.config.redirect_uri()),
        ("code_verifier".to_owned(), flow::mask(verifier)),
    ];
    params.extend(flow::client_authentication(state));
    let challenge = flow::s256(verifier);
    let pkce_source = Kind::PkceCheck
        .source_elsewhere()
        .unwrap_or_else(|| crate::here!("exchange"));
    let mut tokens = Step::new(Kind::Tokens, now, crate::here!("verify_login"))
        .detail("token_type", response.token_type().as_ref().to_owned())
        .detail(
            "expires_in",
            response
                .expires_in()
                .map_or_else(|| "(not sent)".to_owned(), |d| format!("{} s", d.as_secs())),
        )
        .detail(
            "scope",
            response.scopes().map_or_else(
                || "(as asked)".to_owned(),
                |scopes| {
                    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
                    names.join(" ")
                },
            ),
        )
        .token("access token", response.access_token().secret())
        .token("ID token", &verified.raw);
    if let Some(refresh) = response.refresh_token() {
        tokens = tokens.token("refresh token", refresh.secret());
    }
    if verified.fetched_keys {
        tokens = tokens.detail(
            "keys",
            "the ID token was signed by a key the BFF had not seen: it fetched the provider's keys again",
        );
    }
    let kid = flow::decode("ID token", &verified.raw)
        .and_then(|d| d.header["kid"].as_str().map(str::to_owned))
        .unwrap_or_default();
    vec![
        Step::new(Kind::TokenRequest, now, crate::here!("exchange"))
            .request("POST", &token_endpoint, params)
            .outcome("200 OK: the provider accepted the code and the verifier"),
        Step::new(Kind::PkceCheck, now, pkce_source)
            .detail("code_verifier (sent in step 6)", flow::mask(verifier))
            .detail("BASE64URL(SHA-256(code_verifier))", challenge.clone())
            .detail("code_challenge (sent in step 2)", challenge)
            .outcome("equal: only the client that made the challenge could redeem the code"),
        tokens.outcome(format!(
            "the BFF verified the ID token (signature by key {kid}, iss, aud, exp, iat, nonce, at_hash) and keeps the three tokens in the server-side session"
        )),
    ]
}

/// Step 6: the token request.
#[instrument(name = "step6_exchange_code", skip_all)]
async fn exchange(
    state: &AppState,
    code: String,
    verifier: String,
) -> Result<CoreTokenResponse, CallbackError> {
    let provider = state.provider.get();
    let mut request = provider
        .client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| {
            tracing::error!(error = %e, "the provider has no token endpoint");
            CallbackError::ProviderUnavailable
        })?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier));
    let credentials = state.token_request_params(&provider).map_err(|e| {
        tracing::error!(error = %e, "could not sign the client assertion");
        CallbackError::ProviderUnavailable
    })?;
    for (name, value) in credentials {
        request = request.add_extra_param(name, value);
    }
    request
        .request_async(&state.http)
        .await
        .map_err(|e| match e {
            // RFC 6749 5.2: the provider refused this code (expired, used,
            // a wrong verifier): the person can start again.
            RequestTokenError::ServerResponse(refusal)
                if matches!(
                    refusal.error(),
                    BasicErrorResponseType::InvalidGrant | BasicErrorResponseType::InvalidRequest
                ) =>
            {
                tracing::info!(error = %refusal.error(), "the provider refused the code");
                CallbackError::CodeRefused(refusal.error().to_string())
            }
            // Anything else lies between the BFF and its provider (down,
            // busy, or the client's registration): not the person's to fix.
            other => {
                tracing::warn!(error = %describe(&other), "the token request failed");
                CallbackError::ProviderUnavailable
            }
        })
}

/// A token-endpoint failure in words, without any secret.
pub fn describe<E: std::error::Error>(e: &E) -> String {
    match e.source() {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}
