//! Server-side sessions: where the BFF keeps every token. The browser holds
//! only an opaque, `HttpOnly` cookie (the IETF "OAuth 2.0 for Browser-Based
//! Applications" BFF pattern).
//!
//! The model, in two records (the store plumbing is [`store`]):
//! - the **browser session** (tower-sessions, cookie `__Host-bff`): the logins
//!   under way in this browser ([`PendingLogin`]: state, PKCE verifier,
//!   nonce), and which [`Login`] it holds, with the page's anti-CSRF token
//!   and when it was last used;
//! - the **login**: who signed in and their tokens, written only by the
//!   callback and the refresh, so a request that ends late cannot put older
//!   tokens back. Back-channel logout ends logins by the provider's `sid`.
//!
//! Lifetimes, by the BFF's clock: a session unused for the idle lifetime
//! ends (the last use is recorded to the minute, so that most requests
//! write nothing), and every session ends at its absolute lifetime after
//! sign-in, used or not. Handlers get a signed-in session from the
//! [`SignedIn`] extractor.

mod backend;
mod memory;
mod redis;
mod seal;
mod sqlite;
pub mod store;

use std::fmt;

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use tower_sessions::{Expiry, Session};

pub use seal::Sealer;
pub use store::{Lease, Store, StoreError};

use crate::AppState;

pub const COOKIE_NAME: &str = "__Host-bff";

/// A login under way in this browser (several tabs may each have one).
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub pkce_verifier: String,
    pub nonce: String,
    pub return_url: String,
    pub started_at: i64,
    /// Steps 1-2 of the flow inspector's trace ([`crate::flow`]).
    #[serde(default)]
    pub trace: Vec<crate::flow::Step>,
    /// What the login is for: a person signing in, or an attack of the lab
    /// that needs a fresh code ([`crate::flow::lab`]).
    #[serde(default)]
    pub purpose: Purpose,
}

/// What a login attempt is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    #[default]
    SignIn,
    /// The lab's "redeem a fresh code with a wrong verifier".
    LabWrongVerifier,
}

/// The tokens of a signed-in session. Never leaves the server.
#[derive(Clone, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub access_expires_at: i64,
    pub refresh_token: Option<String>,
    pub id_token: String,
}

/// How long an access token is taken to live when the provider does not say
/// (`expires_in` is only RECOMMENDED, RFC 6749 5.1).
const ASSUMED_ACCESS_LIFETIME: i64 = 300;

impl Tokens {
    /// The one place a token response becomes the tokens a session keeps,
    /// at sign-in and at every refresh. A refresh response without a refresh
    /// token (no rotation) keeps the previous one; one without an ID token
    /// (OIDC Core 12.2 allows it) keeps the previous ID token.
    pub fn from_response(
        response: &impl oauth2::TokenResponse,
        id_token: Option<String>,
        previous: Option<&Tokens>,
        now: i64,
    ) -> Tokens {
        let expires_in = response
            .expires_in()
            .map(|d| d.as_secs() as i64)
            .unwrap_or(ASSUMED_ACCESS_LIFETIME);
        Tokens {
            access_token: response.access_token().secret().clone(),
            access_expires_at: now + expires_in,
            refresh_token: response
                .refresh_token()
                .map(|t| t.secret().clone())
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            id_token: id_token
                .or_else(|| previous.map(|p| p.id_token.clone()))
                .unwrap_or_default(),
        }
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_expires_at", &self.access_expires_at)
            .finish_non_exhaustive()
    }
}

/// Who is signed in, for the pages and `/bff/user`: claims, never tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub sub: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The ID token's claims, as the UI may show them.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// A login: who signed in, their provider session, their tokens.
/// No `Debug`: it holds the tokens.
#[derive(Clone, Serialize, Deserialize)]
pub struct Login {
    pub user: User,
    /// The provider's session id (the ID token's `sid`), for back-channel
    /// logout.
    pub sid: Option<String>,
    pub tokens: Tokens,
    pub signed_in_at: i64,
}

/// The browser session's pointer to its login.
#[derive(Clone, Serialize, Deserialize)]
struct Holds {
    login: String,
    /// Anti-CSRF token for the plain HTML sign-out form.
    csrf: String,
    last_seen: i64,
}

const PENDING_KEY: &str = "pending_logins";
const HOLDS_KEY: &str = "login";
const LOGOUT_STATE_KEY: &str = "logout_state";
/// How many logins may be under way at once in one browser.
const MAX_PENDING: usize = 5;
/// How long a login may take, from `/bff/login` to the callback (seconds).
pub const PENDING_LIFETIME: i64 = 600;
/// The last use of a session is recorded at most this often (seconds).
const TOUCH_EVERY: i64 = 60;

/// Why the session could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("session: {0}")]
    Session(#[from] tower_sessions::session::Error),
}

/// Sets a browser session's expiry to `at` (Unix seconds, BFF clock).
fn expire_at(session: &Session, at: i64) {
    if let Ok(at) = time::OffsetDateTime::from_unix_timestamp(at) {
        session.set_expiry(Some(Expiry::AtDateTime(at)));
    }
}

/// Adds a login attempt, dropping stale ones and the oldest beyond the cap.
pub async fn add_pending(
    state: &AppState,
    session: &Session,
    login: PendingLogin,
) -> Result<(), SessionError> {
    let mut pending = live_pending(session, state.clock.now()).await;
    pending.push(login);
    let excess = pending.len().saturating_sub(MAX_PENDING);
    pending.drain(..excess);
    session.insert(PENDING_KEY, pending).await?;
    // A browser that is not signed in keeps its session only while a login
    // may still come back.
    if session.get::<Holds>(HOLDS_KEY).await?.is_none() {
        expire_at(session, state.clock.now() + PENDING_LIFETIME);
    }
    Ok(())
}

/// Takes the login attempt with this `state`: one use only.
pub async fn take_pending(
    state: &AppState,
    session: &Session,
    login_state: &str,
) -> Option<PendingLogin> {
    let mut pending = live_pending(session, state.clock.now()).await;
    let position = pending.iter().position(|p| p.state == login_state)?;
    let login = pending.remove(position);
    session.insert(PENDING_KEY, pending).await.ok()?;
    Some(login)
}

async fn live_pending(session: &Session, now: i64) -> Vec<PendingLogin> {
    session
        .get::<Vec<PendingLogin>>(PENDING_KEY)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| now - p.started_at < PENDING_LIFETIME)
        .collect()
}

/// After the callback: a new session id (no fixation), the login stored,
/// and this browser holding it. A login the browser held before ends.
pub async fn sign_in(
    state: &AppState,
    session: &Session,
    login: &Login,
) -> Result<(), SessionError> {
    if let Some(old) = session.remove::<Holds>(HOLDS_KEY).await? {
        state.store.delete_login(&old.login).await?;
    }
    session.cycle_id().await?;
    let id = crate::random_token();
    let absolute_end = login.signed_in_at + state.config.session_absolute_seconds;
    state
        .store
        .insert_login(
            &id,
            &state.provider.get().issuer,
            login.sid.as_deref(),
            &login.user.sub,
            login,
            absolute_end,
        )
        .await?;
    let now = state.clock.now();
    let holds = Holds {
        login: id,
        csrf: crate::random_token(),
        last_seen: now,
    };
    session.insert(HOLDS_KEY, holds).await?;
    expire_at(
        session,
        (now + state.config.session_idle_seconds).min(absolute_end),
    );
    Ok(())
}

/// A signed-in session: the login this browser holds, read fresh from the
/// store, within its idle and absolute lifetimes.
pub struct SignedIn {
    pub session: Session,
    /// The login's id in the store.
    pub id: String,
    pub login: Login,
    /// The login's version in the store (see [`Store::replace_login`]).
    pub version: u64,
    /// Anti-CSRF token of the sign-out form.
    pub csrf: String,
}

impl SignedIn {
    /// The signed-in state of this browser, if it has one; a session past
    /// its lifetimes is ended here.
    pub async fn load(
        state: &AppState,
        session: &Session,
    ) -> Result<Option<SignedIn>, SessionError> {
        let Some(mut holds) = session.get::<Holds>(HOLDS_KEY).await? else {
            return Ok(None);
        };
        let now = state.clock.now();
        let idle = state.config.session_idle_seconds;
        if now - holds.last_seen >= idle {
            tracing::info!("session ended: idle too long");
            end(state, session, &holds.login).await?;
            state.metrics.sessions_ended("idle", 1);
            return Ok(None);
        }
        let Some((login, version)) = state.store.login::<Login>(&holds.login).await? else {
            // Ended elsewhere: a back-channel logout, or its absolute end.
            session.remove::<Holds>(HOLDS_KEY).await?;
            session.flush().await?;
            return Ok(None);
        };
        let absolute_end = login.signed_in_at + state.config.session_absolute_seconds;
        if now >= absolute_end {
            tracing::info!("session ended: absolute lifetime reached");
            end(state, session, &holds.login).await?;
            state.metrics.sessions_ended("absolute", 1);
            return Ok(None);
        }
        if now - holds.last_seen >= TOUCH_EVERY {
            holds.last_seen = now;
            session.insert(HOLDS_KEY, holds.clone()).await?;
            expire_at(session, (now + idle).min(absolute_end));
        }
        Ok(Some(SignedIn {
            session: session.clone(),
            id: holds.login,
            login,
            version,
            csrf: holds.csrf,
        }))
    }

    /// Ends this session: its login and the browser session.
    pub async fn end(self, state: &AppState) -> Result<(), SessionError> {
        end(state, &self.session, &self.id).await
    }

    /// When this session ends unless used again (Unix seconds).
    pub fn ends_at(&self, state: &AppState) -> i64 {
        let idle_end = self.session.expiry_date().unix_timestamp();
        idle_end.min(self.login.signed_in_at + state.config.session_absolute_seconds)
    }
}

async fn end(state: &AppState, session: &Session, login: &str) -> Result<(), SessionError> {
    state.store.delete_login(login).await?;
    session.flush().await?;
    Ok(())
}

/// Remembers the `state` of an RP-initiated logout under way, in a fresh
/// session of its own (the signed-in one is gone by then).
pub async fn expect_logout_return(
    state: &AppState,
    session: &Session,
    logout_state: &str,
) -> Result<(), SessionError> {
    session.insert(LOGOUT_STATE_KEY, logout_state).await?;
    expire_at(session, state.clock.now() + PENDING_LIFETIME);
    Ok(())
}

/// Whether `returned` is the `state` of this browser's logout (used once).
pub async fn logout_returned(session: &Session, returned: &str) -> bool {
    match session.remove::<String>(LOGOUT_STATE_KEY).await {
        Ok(Some(expected)) => crate::same_secret(&expected, returned),
        _ => false,
    }
}

/// The answer when there is no signed-in session: 401 with a JSON error
/// (the JSON endpoints), or 503 when the store failed, as a page when a
/// person asked.
pub enum NotSignedIn {
    No,
    StoreFailed { error: SessionError, page: bool },
}

impl NotSignedIn {
    fn store_failed(error: SessionError, parts: &Parts) -> NotSignedIn {
        let page = !crate::reply::wants_json(&parts.headers)
            && !crate::reply::is_json_route(parts.uri.path());
        NotSignedIn::StoreFailed { error, page }
    }
}

impl IntoResponse for NotSignedIn {
    fn into_response(self) -> Response {
        match self {
            NotSignedIn::No => {
                crate::reply::json_error(StatusCode::UNAUTHORIZED, "not_signed_in", "sign in first")
            }
            NotSignedIn::StoreFailed { error, page } => {
                tracing::error!(%error, "the session store failed");
                match page {
                    true => crate::reply::unavailable_page(),
                    false => crate::reply::unavailable_json("the session store is unavailable"),
                }
            }
        }
    }
}

async fn tower_session(parts: &mut Parts, state: &AppState) -> Result<Session, NotSignedIn> {
    Session::from_request_parts(parts, state)
        .await
        .map_err(|(_, message)| {
            let error = SessionError::Store(StoreError::Corrupt(message.into()));
            NotSignedIn::store_failed(error, parts)
        })
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = NotSignedIn;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, NotSignedIn> {
        let session = tower_session(parts, state).await?;
        match SignedIn::load(state, &session).await {
            Ok(Some(signed_in)) => Ok(signed_in),
            Ok(None) => Err(NotSignedIn::No),
            Err(e) => Err(NotSignedIn::store_failed(e, parts)),
        }
    }
}

impl OptionalFromRequestParts<AppState> for SignedIn {
    type Rejection = NotSignedIn;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, NotSignedIn> {
        let session = tower_session(parts, state).await?;
        SignedIn::load(state, &session)
            .await
            .map_err(|e| NotSignedIn::store_failed(e, parts))
    }
}
