//! The IdP's own browser session (steps 3-4): once a person has signed in,
//! a cookie lets a second authorization request skip the password prompt
//! (single sign-on), until it expires or the person signs out.
//!
//! - The cookie is `HttpOnly`, `SameSite=Lax`, `Secure` (browsers treat
//!   http://localhost as a secure origin), and its value is a fresh random
//!   secret at every sign-in (no fixation); the store keeps only its digest.
//! - A second cookie, `mockidp_browser`, names the browser: a pending
//!   sign-in started in one browser cannot be completed from another, and
//!   the anti-CSRF tokens of the forms derive from it ([`crate::csrf`]).
//! - Ending a session tells every client it signed in to
//!   ([`crate::backchannel`]).
//!
//! The BFF shares the host `localhost` (cookies ignore ports), so these names
//! differ from the BFF's.

use axum::{
    http::{HeaderMap, HeaderValue, header},
    response::Response,
};
use cookie::{Cookie, SameSite};

use crate::{
    AppState, backchannel, secret,
    store::{Session, StoreError},
};

pub const SESSION_COOKIE: &str = "mockidp_session";
pub const BROWSER_COOKIE: &str = "mockidp_browser";

/// Reads one cookie from the request.
pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| Cookie::parse(pair.trim().to_owned()).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A `Set-Cookie` value with the attributes every IdP cookie has.
fn set_cookie(name: &str, value: &str, max_age_seconds: i64) -> HeaderValue {
    let cookie = Cookie::build((name.to_owned(), value.to_owned()))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age_seconds))
        .build();
    HeaderValue::from_str(&cookie.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// Adds a `Set-Cookie` to a response, if there is one.
pub fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The `Set-Cookie` header that removes the session cookie.
pub fn clear() -> HeaderValue {
    set_cookie(SESSION_COOKIE, "", 0)
}

/// The browser's secret id, if it has one.
pub fn browser(headers: &HeaderMap) -> Option<String> {
    read_cookie(headers, BROWSER_COOKIE).filter(|id| id.len() == 43)
}

/// The browser's id, and a `Set-Cookie` if it had none yet.
pub fn browser_id(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match browser(headers) {
        Some(id) => (id, None),
        None => {
            let id = secret::random_token();
            let year = 365 * 24 * 3600;
            let header = set_cookie(BROWSER_COOKIE, &id, year);
            (id, Some(header))
        }
    }
}

/// The signed-in session of this browser, if any.
pub async fn current(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, StoreError> {
    let Some(cookie) = read_cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    state
        .store
        .session(&secret::digest(&cookie), state.clock.now())
        .await
}

/// Starts a session for a user who just proved who they are; returns it
/// and the `Set-Cookie` header that carries it. The cookie value is always
/// new (no fixation). The browser's `previous` session, if any, does not
/// linger: the same user's is renewed under its `sid` (clients keep
/// recognising it), another user's is ended, with back-channel logout.
pub async fn start(
    state: &AppState,
    sub: &str,
    previous: Option<Session>,
) -> Result<(Session, HeaderValue), StoreError> {
    let cookie = secret::random_token();
    let now = state.clock.now();
    let lifetime = state.settings.tokens.session_seconds as i64;
    let session = match previous {
        Some(previous) if previous.sub == sub => {
            let renewed = Session {
                auth_time: now,
                ..previous
            };
            state
                .store
                .renew_session(&renewed, &secret::digest(&cookie), now + lifetime)
                .await?;
            renewed
        }
        other => {
            if let Some(previous) = other {
                end(state, &previous).await?;
            }
            let session = Session {
                sid: secret::random_id(),
                sub: sub.to_owned(),
                auth_time: now,
            };
            state
                .store
                .insert_session(&secret::digest(&cookie), &session, now + lifetime)
                .await?;
            session
        }
    };
    Ok((session, set_cookie(SESSION_COOKIE, &cookie, lifetime)))
}

/// Ends a session and tells each client it signed in to (OIDC Back-Channel
/// Logout 1.0).
pub async fn end(state: &AppState, session: &Session) -> Result<(), StoreError> {
    let clients = state.store.delete_session(&session.sid).await?;
    tracing::info!(sub = %session.sub, "IdP session ended");
    backchannel::notify(state, &session.sid, &session.sub, &clients);
    Ok(())
}
