//! `POST /v1/token`: steps 6-8. The client sends the code and the PKCE
//! verifier, the IdP checks them (step 7) and answers with tokens (step 8).
//! Also the `refresh_token` grant, with rotation and reuse detection.
//!
//! Every check of a request is in [`exchange_code`] or [`refresh`], top to
//! bottom, in the order of RFC 6749 4.1.3 / 6 and RFC 7636 4.6. Errors are
//! RFC 6749 5.2 JSON; every answer carries `Cache-Control: no-store`
//! (RFC 6749 5.1).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;
use tokio::sync::watch;
use tracing::instrument;

use crate::{
    AppState,
    clients::{Client, ClientAuthError},
    codes::Redeemed,
    form::Form,
    pkce::CodeVerifier,
    tokens::{Family, MintError, Subject, TokenResponse, mint},
};

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
    fn code(&self) -> &'static str {
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

/// Reads an `application/x-www-form-urlencoded` body (RFC 6749 4.1.3).
pub fn read_form(headers: &HeaderMap, body: &[u8]) -> Result<Form, TokenError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(TokenError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    Form::parse_bytes(body).map_err(|e| TokenError::InvalidRequest(e.to_string()))
}

/// Recent rotations, for the reuse grace period: within it, the same old
/// refresh token gets the same new pair back (two racing requests of one
/// client do not log the user out), and nothing more.
///
/// The first request claims the rotation before it starts; one that races
/// it waits for that answer rather than taking the token for stolen.
#[derive(Clone, Default)]
pub struct RecentRotations(Arc<Mutex<HashMap<String, Rotation>>>);

struct Rotation {
    answer: watch::Receiver<Option<TokenResponse>>,
    until: Instant,
}

/// The right to rotate one refresh token, held by the request that got it.
struct Claim(watch::Sender<Option<TokenResponse>>);

impl Claim {
    fn answer(self, response: &TokenResponse) {
        let _ = self.0.send(Some(response.clone()));
    }
}

/// How long a racing request waits for the rotation it lost to.
const WAIT_FOR_ROTATION: Duration = Duration::from_secs(5);

impl RecentRotations {
    /// Claims the rotation of a token; `None` if another request has.
    fn claim(&self, token_hash: &str, grace: Duration) -> Option<Claim> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, r| now < r.until);
        if map.contains_key(token_hash) {
            return None;
        }
        let (sender, answer) = watch::channel(None);
        map.insert(
            token_hash.to_owned(),
            Rotation {
                answer,
                until: now + grace,
            },
        );
        Some(Claim(sender))
    }

    /// The answer of this token's rotation, if it is within its grace
    /// period; waits for it while it is being made.
    async fn replay(&self, token_hash: &str) -> Option<TokenResponse> {
        let mut answer = {
            let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let rotation = map.get(token_hash).filter(|r| Instant::now() < r.until)?;
            rotation.answer.clone()
        };
        let made = tokio::time::timeout(WAIT_FOR_ROTATION, answer.wait_for(Option::is_some)).await;
        match made {
            Ok(Ok(response)) => response.clone(),
            _ => None,
        }
    }
}

/// The token endpoint.
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(tokens) => (no_store(), Json(tokens)).into_response(),
        Err(e) => {
            tracing::info!(error = e.code(), "token request refused");
            e.into_response()
        }
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, TokenError> {
    let form = read_form(headers, body)?;
    let client = state.clients.authenticate(headers, &form)?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| TokenError::InvalidRequest("grant_type is missing".into()))?;
    if !matches!(grant_type, "authorization_code" | "refresh_token") {
        return Err(TokenError::UnsupportedGrantType);
    }
    // RFC 6749 5.2: a grant this client is not registered for.
    if !client.allows_grant(grant_type) {
        return Err(TokenError::UnauthorizedClient);
    }
    if grant_type == "authorization_code" {
        exchange_code(state, client, &form).await
    } else {
        refresh(state, client, &form).await
    }
}

/// Steps 6-8: code + verifier in, tokens out. Every check, in order.
#[instrument(name = "step7_check_code_and_pkce", skip_all, fields(client_id = %client.id))]
async fn exchange_code(
    state: &AppState,
    client: &Client,
    form: &Form,
) -> Result<TokenResponse, TokenError> {
    let code = form
        .get("code")
        .ok_or_else(|| TokenError::InvalidRequest("code is missing".into()))?;
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or_else(|| TokenError::InvalidRequest("redirect_uri is missing".into()))?;
    // RFC 7636 4.1 shape first; RFC 9700 4.8: no verifier, no tokens.
    let verifier = form
        .get("code_verifier")
        .ok_or_else(|| TokenError::InvalidRequest("code_verifier is missing (PKCE)".into()))
        .and_then(|v| {
            CodeVerifier::parse(v).map_err(|e| TokenError::InvalidRequest(e.to_string()))
        })?;

    // RFC 6749 4.1.2: single use. A second use revokes what the first got.
    let (grant, issued) = match state.codes.redeem(code, &client.id) {
        Redeemed::Fresh(grant, issued) => (grant, issued),
        Redeemed::Replayed(issued) => {
            tracing::warn!("authorization code replayed; revoking its tokens");
            state.store.revoke_access_token(&issued.access_jti).await?;
            state.store.revoke_family(&issued.family_id).await?;
            return Err(TokenError::InvalidGrant("the code has already been used"));
        }
        Redeemed::Invalid => {
            return Err(TokenError::InvalidGrant("the code is invalid or expired"));
        }
    };
    // RFC 6749 4.1.3: issued to this client (the code store already
    // refuses others; checked again here where a reader looks for it)...
    if grant.client_id != client.id {
        return Err(TokenError::InvalidGrant(
            "the code was issued to another client",
        ));
    }
    // ...for this redirect URI, to the letter.
    if grant.redirect_uri != redirect_uri {
        return Err(TokenError::InvalidGrant(
            "redirect_uri does not match the authorization request",
        ));
    }
    // RFC 7636 4.6: S256(verifier) must equal the challenge.
    if !grant.challenge.is_satisfied_by(&verifier) {
        return Err(TokenError::InvalidGrant(
            "code_verifier does not match the code_challenge",
        ));
    }
    let user = state
        .store
        .user_by_sub(&grant.sub)
        .await?
        .ok_or(TokenError::InvalidGrant("the user no longer exists"))?;

    let family_expires_at =
        crate::now() + state.settings.tokens.refresh_token_absolute_seconds as i64;
    let tokens = mint(
        state,
        &Subject {
            user: &user,
            client,
            scopes: &grant.scopes,
            granted: &grant.scopes,
            auth_time: grant.auth_time,
            sid: Some(&grant.sid),
            nonce: grant.nonce.as_deref(),
        },
        &issued.access_jti,
        &Family {
            id: &issued.family_id,
            expires_at: family_expires_at,
        },
    )
    .await?;
    // RFC 6749 4.1.2, 10.5: a replay racing this exchange revoked the family
    // before these tokens were stored; now that they are, revoke them too.
    // (The replay marks the code before it revokes, so one of the two
    // always sees the other.)
    if state.codes.was_replayed(code) {
        tracing::warn!("authorization code replayed during its exchange; revoking its tokens");
        state.store.revoke_family(&issued.family_id).await?;
        return Err(TokenError::InvalidGrant("the code has already been used"));
    }
    tracing::info!(sub = %user.sub, "step8_tokens_issued");
    Ok(tokens)
}

/// The refresh grant (RFC 6749 6) with rotation (RFC 9700 4.14.2).
#[instrument(name = "refresh", skip_all, fields(client_id = %client.id))]
async fn refresh(
    state: &AppState,
    client: &Client,
    form: &Form,
) -> Result<TokenResponse, TokenError> {
    let token = form
        .get("refresh_token")
        .ok_or_else(|| TokenError::InvalidRequest("refresh_token is missing".into()))?;
    let hash = crate::digest(token);
    let now = crate::now();
    let stored = state
        .store
        .refresh_token(&hash)
        .await?
        .ok_or(TokenError::InvalidGrant("the refresh token is invalid"))?;
    // RFC 6749 10.4: a refresh token is bound to the client it was issued to.
    if stored.client_id != client.id {
        return Err(TokenError::InvalidGrant(
            "the refresh token was issued to another client",
        ));
    }
    if stored.revoked {
        return Err(TokenError::InvalidGrant(
            "the refresh token has been revoked",
        ));
    }
    let grace = state.settings.tokens.refresh_token_reuse_grace_seconds;
    if stored.rotated_at.is_some() {
        return reused(state, &hash, &stored.family_id).await;
    }
    if now >= stored.expires_at || now >= stored.family_expires_at {
        return Err(TokenError::InvalidGrant("the refresh token has expired"));
    }
    // RFC 6749 6: the scope may be narrowed, never widened.
    let granted: Vec<String> = stored.scope.split(' ').map(str::to_owned).collect();
    let scopes: Vec<String> = match form.get("scope") {
        None => granted.clone(),
        Some(asked) => {
            let asked: Vec<String> = asked
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if asked.iter().any(|s| !granted.contains(s)) {
                return Err(TokenError::InvalidScope(
                    "the scope is wider than the grant",
                ));
            }
            asked
        }
    };
    // Within a grace period, a request racing this one waits for its answer.
    let claim = match grace {
        0 => None,
        _ => match state.rotations.claim(&hash, Duration::from_secs(grace)) {
            Some(claim) => Some(claim),
            None => return reused(state, &hash, &stored.family_id).await,
        },
    };
    // One rotation per token, even under a race.
    if !state.store.mark_rotated(&hash, now).await? {
        drop(claim); // rotated elsewhere: nobody may wait for our answer
        return reused(state, &hash, &stored.family_id).await;
    }
    let user = state
        .store
        .user_by_sub(&stored.sub)
        .await?
        .ok_or(TokenError::InvalidGrant("the user no longer exists"))?;
    let tokens = mint(
        state,
        &Subject {
            user: &user,
            client,
            scopes: &scopes,
            granted: &granted,
            auth_time: stored.auth_time,
            sid: stored.sid.as_deref(),
            nonce: None,
        },
        &crate::random_id(),
        &Family {
            id: &stored.family_id,
            expires_at: stored.family_expires_at,
        },
    )
    .await?;
    // RFC 9700 4.14.2: a reuse that raced this rotation revoked the family
    // before the new refresh token was stored; revoke it too, now that it is.
    // (The reuse revokes this very token first, so one of the two requests
    // always sees the other.)
    if state
        .store
        .refresh_token(&hash)
        .await?
        .is_some_and(|t| t.revoked)
    {
        tracing::warn!("refresh token reused during its rotation; revoking its family");
        state.store.revoke_family(&stored.family_id).await?;
        return Err(TokenError::InvalidGrant(
            "the refresh token has already been used",
        ));
    }
    if let Some(claim) = claim {
        claim.answer(&tokens);
    }
    Ok(tokens)
}

/// A refresh token presented after it was rotated: within the grace period,
/// the same answer again; after it, a stolen token is assumed and the whole
/// family dies (RFC 9700 4.14.2).
async fn reused(
    state: &AppState,
    hash: &str,
    family_id: &str,
) -> Result<TokenResponse, TokenError> {
    if let Some(same) = state.rotations.replay(hash).await {
        return Ok(same);
    }
    tracing::warn!("rotated refresh token reused; revoking its family");
    state.store.revoke_family(family_id).await?;
    Err(TokenError::InvalidGrant(
        "the refresh token has already been used",
    ))
}
