//! The IdP's own browser session (steps 3-4): once a person has signed in,
//! a cookie lets a second authorization request skip the password prompt
//! (single sign-on), until it expires or the person signs out.
//!
//! - The cookie is `HttpOnly`, `SameSite=Lax`, `Secure` (browsers treat
//!   http://localhost as a secure origin), and its value is a fresh random
//!   secret at every sign-in (no fixation); the store keeps only its digest.
//! - A second cookie, `mockidp_browser`, names the browser so that a pending
//!   sign-in started in one browser cannot be completed from another.
//!
//! The BFF shares the host `localhost` (cookies ignore ports), so these names
//! differ from the BFF's.

use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};

use crate::{AppState, store::Session};

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
pub fn set_cookie(name: &str, value: &str, max_age_seconds: i64) -> HeaderValue {
    let cookie = Cookie::build((name.to_owned(), value.to_owned()))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age_seconds))
        .build();
    HeaderValue::from_str(&cookie.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// The signed-in session of this browser, if any.
pub async fn current(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    let cookie = read_cookie(headers, SESSION_COOKIE)?;
    match state.store.session(&crate::digest(&cookie)).await {
        Ok(session) => session,
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            None
        }
    }
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
) -> Result<(Session, HeaderValue), crate::store::StoreError> {
    let cookie = crate::random_token();
    let now = crate::now();
    let lifetime = state.settings.tokens.session_seconds as i64;
    let session = match previous {
        Some(previous) if previous.sub == sub => {
            let renewed = Session {
                auth_time: now,
                ..previous
            };
            state
                .store
                .renew_session(&renewed, &crate::digest(&cookie), now + lifetime)
                .await?;
            renewed
        }
        other => {
            if let Some(previous) = other {
                crate::logout::end_session(state, &previous.sid, &previous.sub).await;
            }
            let session = Session {
                sid: crate::random_id(),
                sub: sub.to_owned(),
                auth_time: now,
            };
            state
                .store
                .insert_session(&crate::digest(&cookie), &session, now + lifetime)
                .await?;
            session
        }
    };
    Ok((session, set_cookie(SESSION_COOKIE, &cookie, lifetime)))
}

/// The `Set-Cookie` header that removes the session cookie.
pub fn clear() -> HeaderValue {
    set_cookie(SESSION_COOKIE, "", 0)
}

/// The browser's id, and a `Set-Cookie` if it had none yet.
pub fn browser_id(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match read_cookie(headers, BROWSER_COOKIE) {
        Some(id) if id.len() == 43 => (id, None),
        _ => {
            let id = crate::random_token();
            let year = 365 * 24 * 3600;
            let header = set_cookie(BROWSER_COOKIE, &id, year);
            (id, Some(header))
        }
    }
}
