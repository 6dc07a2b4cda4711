//! Keeping the access token usable: before the proxy calls the API (step
//! 9), an access token that expires within [`SKEW`] seconds is exchanged for
//! a new one with the refresh token (RFC 6749 6), and the rotated pair is
//! stored (RFC 9700 4.14.2: the provider rotates refresh tokens, and reuse
//! of an old one revokes the whole family).
//!
//! Because reuse kills the family, a refresh token is used once, whatever
//! the number of requests and BFF instances:
//! - within an instance, the requests of one login queue behind one task
//!   (single-flight); the others take its result;
//! - across instances, that task first takes a lease in the shared session
//!   store, renewed while the grant runs (a slow provider cannot outlast a
//!   fixed expiry), and the other instances wait for the stored result;
//! - the result is written with the login's version, so it cannot be lost
//!   to, or overwritten by, an older copy.
//!
//! Only a definitive refusal (`invalid_grant`, a refreshed ID token that
//! fails its checks) ends the session. A timeout, a network error, a 5xx
//! or a 429 keeps it: the caller is asked to try again ([`RefreshError::ends_session`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use oauth2::{RefreshToken, RequestTokenError, basic::BasicErrorResponseType};
use openidconnect::core::CoreTokenResponse;
use tracing::instrument;

use crate::{
    AppState,
    flow::{self, Kind, Step},
    id_token,
    session::{Login, SignedIn, StoreError, Tokens},
};

/// Refresh this long before the access token expires (seconds).
pub const SKEW: i64 = 30;
/// A lease runs out this long after its holder stopped renewing it.
const LEASE_TTL: Duration = Duration::from_secs(6);
/// How long a request waits for another instance's refresh.
const WAIT_FOR_OTHERS: Duration = Duration::from_secs(30);
/// How often a waiting request looks for the other instance's result.
const POLL_EVERY: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the access token expired and there is no refresh token")]
    NoRefreshToken,
    #[error("the provider refused the refresh ({0})")]
    Refused(String),
    #[error("the refreshed ID token is not valid: {0}")]
    IdToken(String),
    #[error("the session ended meanwhile")]
    Ended,
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    #[error("the session store failed: {0}")]
    Store(#[from] StoreError),
}

impl RefreshError {
    /// Whether the session is over (definitive), or only this request
    /// failed and a later one may succeed.
    pub fn ends_session(&self) -> bool {
        match self {
            RefreshError::NoRefreshToken
            | RefreshError::Refused(_)
            | RefreshError::IdToken(_)
            | RefreshError::Ended => true,
            RefreshError::Unavailable(_) | RefreshError::Store(_) => false,
        }
    }
}

/// The refreshes under way in this instance, one gate per login.
#[derive(Default)]
pub struct InFlight(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl InFlight {
    fn gate(&self, login: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Gates nobody holds or waits for go.
        gates.retain(|_, gate| Arc::strong_count(gate) > 1);
        gates.entry(login.to_owned()).or_default().clone()
    }
}

/// Makes sure `signed_in` holds an access token that is not about to
/// expire, refreshing it (once per refresh token) if needed.
#[instrument(name = "refresh_tokens", skip_all)]
pub async fn ensure_fresh(state: &AppState, signed_in: &mut SignedIn) -> Result<(), RefreshError> {
    if is_fresh(state, &signed_in.login) {
        return Ok(());
    }
    let result = refresh_once(state, signed_in).await;
    let outcome = match &result {
        Ok(Refreshed::Made) => "made",
        Ok(Refreshed::Shared) => "shared",
        Err(e) if e.ends_session() => "failed",
        Err(_) => "unavailable",
    };
    state.metrics.refresh(outcome);
    result.map(|_| ())
}

/// Who did the refresh a request needed.
enum Refreshed {
    /// This request.
    Made,
    /// Another request, here or on another instance.
    Shared,
}

async fn refresh_once(
    state: &AppState,
    signed_in: &mut SignedIn,
) -> Result<Refreshed, RefreshError> {
    let gate = state.refreshes.gate(&signed_in.id);
    let _turn = gate.lock().await;
    // Another request, here or on another instance, may have done it.
    if adopt_newer(state, signed_in).await? {
        return Ok(Refreshed::Shared);
    }
    let deadline = Instant::now() + WAIT_FOR_OTHERS;
    loop {
        if let Some(lease) = state.store.lease(&signed_in.id, LEASE_TTL).await? {
            let result = match adopt_newer(state, signed_in).await {
                Ok(true) => Ok(Refreshed::Shared),
                Ok(false) => refresh_and_store(state, signed_in)
                    .await
                    .map(|()| Refreshed::Made),
                Err(e) => Err(e),
            };
            lease.release().await;
            return result;
        }
        // Another instance holds the lease: wait for what it stores.
        if Instant::now() >= deadline {
            return Err(RefreshError::Unavailable(
                "another instance's refresh takes too long".into(),
            ));
        }
        tokio::time::sleep(POLL_EVERY).await;
        if adopt_newer(state, signed_in).await? {
            return Ok(Refreshed::Shared);
        }
    }
}

fn is_fresh(state: &AppState, login: &Login) -> bool {
    state.clock.now() < login.tokens.access_expires_at - SKEW
}

/// Takes the stored login if it is newer than ours and fresh; `true` then.
async fn adopt_newer(state: &AppState, signed_in: &mut SignedIn) -> Result<bool, RefreshError> {
    let (login, version) = state
        .store
        .login::<Login>(&signed_in.id)
        .await?
        .ok_or(RefreshError::Ended)?;
    if version > signed_in.version && is_fresh(state, &login) {
        signed_in.login = login;
        signed_in.version = version;
        return Ok(true);
    }
    Ok(false)
}

/// The refresh grant, its ID token checked, the result stored over the
/// version it was made from.
async fn refresh_and_store(state: &AppState, signed_in: &mut SignedIn) -> Result<(), RefreshError> {
    let refresh_token = signed_in
        .login
        .tokens
        .refresh_token
        .clone()
        .ok_or(RefreshError::NoRefreshToken)?;
    let response = grant(state, refresh_token).await?;
    let id_token = id_token::verify_refreshed(state, &response, &signed_in.login.user.sub)
        .await
        .map_err(|e| RefreshError::IdToken(e.to_string()))?;
    let fetched_keys = id_token.as_ref().is_some_and(|v| v.fetched_keys);
    let mut login = signed_in.login.clone();
    login.tokens = Tokens::from_response(
        &response,
        id_token.map(|v| v.raw),
        Some(&signed_in.login.tokens),
        state.clock.now(),
    );
    if !state
        .store
        .replace_login(&signed_in.id, signed_in.version, &login)
        .await?
    {
        // Under the lease nobody else writes: the session ended meanwhile.
        return Err(RefreshError::Ended);
    }
    let event = refresh_event(state, &signed_in.login, &login, &response);
    let mut events = Vec::new();
    if fetched_keys {
        events.push(
            Step::new(Kind::KeysFetched, state.clock.now(), crate::here!("refresh_and_store"))
                .outcome("the refreshed ID token was signed by a key the BFF had not seen: it fetched the provider's keys again, and the token verified"),
        );
    }
    events.push(event);
    flow::append(state, &signed_in.session, events).await;
    signed_in.login = login;
    signed_in.version += 1;
    tracing::info!("access token refreshed");
    Ok(())
}

/// The flow inspector's record of a refresh.
fn refresh_event(
    state: &AppState,
    before: &Login,
    after: &Login,
    response: &CoreTokenResponse,
) -> Step {
    use oauth2::TokenResponse as _;
    let provider = state.provider.get();
    let mut params = vec![
        ("grant_type".to_owned(), "refresh_token".to_owned()),
        (
            "refresh_token".to_owned(),
            before
                .tokens
                .refresh_token
                .as_deref()
                .map(flow::mask)
                .unwrap_or_default(),
        ),
    ];
    params.extend(state.config.refresh_params.iter().cloned());
    params.extend(flow::client_authentication(state));
    let rotated = match (&before.tokens.refresh_token, response.refresh_token()) {
        (Some(old), Some(new)) if old != new.secret() => "rotated: a new one, the old one spent",
        (_, Some(_)) => "the same one again",
        (_, None) => "none sent: the BFF keeps the one it has",
    };
    let id_token = match after.tokens.id_token != before.tokens.id_token {
        true => "a new one, verified",
        false => "none sent: the BFF keeps the one it has",
    };
    let mut step = Step::new(
        Kind::Refresh,
        state.clock.now(),
        crate::here!("refresh_and_store"),
    )
    .request(
        "POST",
        provider.token_endpoint.as_deref().unwrap_or_default(),
        params,
    )
    .detail(
        "access token valid until",
        flow::when(after.tokens.access_expires_at),
    )
    .detail("refresh token", rotated)
    .detail("ID token", id_token)
    .token("access token", &after.tokens.access_token)
    .outcome("200 OK: one refresh grant for this session, however many requests were waiting");
    if after.tokens.id_token != before.tokens.id_token {
        step = step.token("ID token", &after.tokens.id_token);
    }
    step
}

/// The refresh request itself, its failure sorted into definitive or not.
async fn grant(state: &AppState, refresh_token: String) -> Result<CoreTokenResponse, RefreshError> {
    let provider = state.provider.get();
    let refresh_token = RefreshToken::new(refresh_token);
    let mut request = provider
        .client
        .exchange_refresh_token(&refresh_token)
        .map_err(|e| RefreshError::Unavailable(e.to_string()))?;
    let credentials = state
        .token_request_params(&provider)
        .map_err(|e| RefreshError::Unavailable(e.to_string()))?;
    // `--refresh-param`: what a provider needs on a refresh (Entra ID: the
    // scope again).
    let extra = (state.config.refresh_params.iter()).map(|(k, v)| (k.as_str(), v.clone()));
    for (name, value) in credentials.into_iter().chain(extra) {
        request = request.add_extra_param(name, value);
    }
    request
        .request_async(&state.http)
        .await
        .map_err(|e| match e {
            // RFC 6749 5.2: the grant is dead (expired, revoked, reused).
            RequestTokenError::ServerResponse(refusal)
                if *refusal.error() == BasicErrorResponseType::InvalidGrant =>
            {
                RefreshError::Refused(refusal.error().to_string())
            }
            other => RefreshError::Unavailable(crate::callback::describe(&other)),
        })
}
