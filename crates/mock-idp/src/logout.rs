//! Ending the IdP session.
//!
//! - `GET|POST /v1/logout`: OIDC RP-Initiated Logout 1.0. Like Okta, an
//!   `id_token_hint` is required: it names the client and the session. The
//!   browser goes back to `post_logout_redirect_uri` only when it is one the
//!   client registered, to the letter, with `state` echoed (2, 3).
//! - Then OIDC Back-Channel Logout 1.0: every client with a
//!   `backchannel_logout_uri` that this session signed in to gets a signed
//!   logout token (2.4), POSTed in the background with bounded retries; a
//!   slow or dead client never holds up the person.

use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, Method, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;

use crate::{AppState, form::Form, keys::Expect, pages::ErrorPage};

#[derive(Template, WebTemplate)]
#[template(path = "mock-idp/logged_out.html")]
pub struct LoggedOutPage {
    pub message: String,
}

/// What the logout endpoint reads from an `id_token_hint`.
#[derive(Deserialize)]
struct Hint {
    sub: String,
    aud: String,
    sid: Option<String>,
}

/// OIDC Back-Channel Logout 1.0 2.4: the logout token's claims.
#[derive(Serialize)]
struct LogoutClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    sub: &'a str,
    sid: &'a str,
    events: serde_json::Value,
}

/// How many times a logout token is offered to a client.
const DELIVERY_ATTEMPTS: u32 = 3;

#[instrument(name = "logout", skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let raw = if method == Method::POST {
        String::from_utf8_lossy(&body).into_owned()
    } else {
        query.unwrap_or_default()
    };
    let Ok(form) = Form::parse(&raw) else {
        return ErrorPage::bad_request("This sign-out request is not valid", "The request parameters are malformed or repeated.", Some("invalid_request"));
    };
    let hint: Option<Hint> = form.get("id_token_hint").and_then(|t| {
        state.keys.verify(
            t,
            &Expect {
                typ: "JWT",
                issuer: &state.issuer,
                audience: None,
                // RP-Initiated Logout 1.0 2: an expired ID token is a fine hint.
                check_exp: false,
            },
        )
    });
    let Some(hint) = hint else {
        return ErrorPage::bad_request("This sign-out request is not valid", "The application did not say who is signing out (id_token_hint is missing or invalid).", Some("invalid_request"));
    };
    if form.get("client_id").is_some_and(|c| c != hint.aud) {
        return ErrorPage::bad_request("This sign-out request is not valid", "client_id does not match the id_token_hint.", Some("invalid_request"));
    }
    // End the browser's session, or else the one the hint names.
    let session_sid = match crate::session::current(&state, &headers).await {
        Some(s) if s.sub == hint.sub => Some(s.sid),
        _ => hint.sid.clone(),
    };
    if let Some(sid) = session_sid {
        end_session(&state, &sid, &hint.sub).await;
    }
    let client = state.clients.get(&hint.aud);
    let target = form
        .get("post_logout_redirect_uri")
        .filter(|uri| client.is_some_and(|c| c.has_post_logout_redirect_uri(uri)));
    let mut response = match target {
        Some(uri) => match url::Url::parse(uri) {
            Ok(mut url) => {
                if let Some(s) = form.get("state") {
                    url.query_pairs_mut().append_pair("state", s);
                }
                Redirect::to(url.as_str()).into_response()
            }
            Err(_) => LoggedOutPage { message: "You have been signed out.".into() }.into_response(),
        },
        None => LoggedOutPage {
            message: "You have been signed out. You can close this tab.".into(),
        }
        .into_response(),
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, crate::session::clear());
    response
}

/// Deletes the session and tells each client it signed in to.
pub async fn end_session(state: &AppState, sid: &str, sub: &str) {
    let clients = match state.store.delete_session(sid).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "could not end the session");
            return;
        }
    };
    tracing::info!(%sub, "IdP session ended");
    for client_id in clients {
        let Some(uri) = state
            .clients
            .get(&client_id)
            .and_then(|c| c.backchannel_logout_uri.clone())
        else {
            continue;
        };
        let now = crate::now();
        let claims = LogoutClaims {
            iss: &state.issuer,
            aud: &client_id,
            iat: now,
            exp: now + 120,
            jti: crate::random_id(),
            sub,
            sid,
            events: json!({"http://schemas.openid.net/event/backchannel-logout": {}}),
        };
        // 2.4: explicitly typed, and never a nonce.
        let token = match state.keys.sign("logout+jwt", &claims) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "could not sign a logout token");
                continue;
            }
        };
        let http = state.http.clone();
        tokio::spawn(deliver(http, uri, client_id, token));
    }
}

/// POSTs a logout token (2.5), retrying a bounded number of times.
async fn deliver(http: reqwest::Client, uri: String, client_id: String, token: String) {
    for attempt in 1..=DELIVERY_ATTEMPTS {
        let result = http
            .post(&uri)
            .form(&[("logout_token", token.as_str())])
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => {
                tracing::info!(%client_id, "back-channel logout delivered");
                return;
            }
            Ok(r) => tracing::warn!(%client_id, status = %r.status(), attempt, "back-channel logout refused"),
            Err(e) => tracing::warn!(%client_id, error = %e, attempt, "back-channel logout failed"),
        }
        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
    }
    tracing::error!(%client_id, "back-channel logout gave up");
}
