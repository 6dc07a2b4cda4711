//! Ending the IdP session.
//!
//! - `GET|POST /v1/logout`: OIDC RP-Initiated Logout 1.0. With a valid
//!   `id_token_hint` the session ends at once. With only a `client_id` (a
//!   BFF keeps its ID token away from the browser), the person is asked to
//!   confirm first (2: "the OP SHOULD ask the End-User whether to log out"),
//!   so no other site can sign them out. The browser goes back to
//!   `post_logout_redirect_uri` only when it is one the client registered,
//!   to the letter, with `state` echoed (2, 3).
//! - Then OIDC Back-Channel Logout 1.0: every client with a
//!   `backchannel_logout_uri` that this session signed in to gets a signed
//!   logout token (2.4), POSTed in the background with bounded retries; a
//!   slow or dead client never holds up the person.

use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form as FormBody,
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, Method, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;

use subtle::ConstantTimeEq;

use crate::{
    AppState,
    authorize::with_cookie,
    form::Form,
    keys::Expect,
    pages::ErrorPage,
    session::{self, BROWSER_COOKIE},
};

#[derive(Template, WebTemplate)]
#[template(path = "mock-idp/logged_out.html")]
pub struct LoggedOutPage {
    pub message: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "mock-idp/logout_confirm.html")]
pub struct LogoutConfirmPage {
    pub client_name: String,
    pub action: String,
    pub csrf: String,
    pub client_id: String,
    pub post_logout_redirect_uri: String,
    pub state: String,
}

/// The confirmation form's fields.
#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    post_logout_redirect_uri: String,
    #[serde(default)]
    state: String,
}

/// The confirmation form's anti-CSRF token: bound to this browser.
fn confirm_csrf(browser_id: &str) -> String {
    crate::digest(&format!("logout-confirm:{browser_id}"))
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
        return ErrorPage::bad_request(
            "This sign-out request is not valid",
            "The request parameters are malformed or repeated.",
            Some("invalid_request"),
        );
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
        if form.get("id_token_hint").is_some() {
            return ErrorPage::bad_request(
                "This sign-out request is not valid",
                "The id_token_hint is not one this identity provider issued.",
                Some("invalid_request"),
            );
        }
        return ask_to_confirm(&state, &headers, &form);
    };
    if form.get("client_id").is_some_and(|c| c != hint.aud) {
        return ErrorPage::bad_request(
            "This sign-out request is not valid",
            "client_id does not match the id_token_hint.",
            Some("invalid_request"),
        );
    }
    // End the browser's session, or else the one the hint names.
    // The person at this browser is signing out: end this browser's
    // session, whoever it is for (the cookie is cleared below, so none may
    // be left alive behind it). Without one (the request came from a
    // back-end, say), end the session the hint names.
    match session::current(&state, &headers).await {
        Some(own) => end_session(&state, &own.sid, &own.sub).await,
        None => {
            if let Some(sid) = &hint.sid {
                end_session(&state, sid, &hint.sub).await;
            }
        }
    }
    signed_out(
        &state,
        &hint.aud,
        form.get("post_logout_redirect_uri"),
        form.get("state"),
    )
}

/// No `id_token_hint`: ask the person before signing them out.
fn ask_to_confirm(state: &AppState, headers: &HeaderMap, form: &Form) -> Response {
    let Some(client) = form.get("client_id").and_then(|id| state.clients.get(id)) else {
        return ErrorPage::bad_request(
            "This sign-out request is not valid",
            "The application did not say who it is (client_id or id_token_hint).",
            Some("invalid_request"),
        );
    };
    let (browser, set_browser) = session::browser_id(headers);
    let page = LogoutConfirmPage {
        client_name: client.name.clone(),
        action: "/logout/confirm".into(),
        csrf: confirm_csrf(&browser),
        client_id: client.id.clone(),
        post_logout_redirect_uri: form
            .get("post_logout_redirect_uri")
            .filter(|uri| client.has_post_logout_redirect_uri(uri))
            .unwrap_or_default()
            .to_owned(),
        state: form.get("state").unwrap_or_default().to_owned(),
    };
    with_cookie(page.into_response(), set_browser)
}

/// `POST /logout/confirm`: the person confirmed; end their session.
#[instrument(name = "logout_confirmed", skip_all)]
pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    FormBody(form): FormBody<ConfirmForm>,
) -> Response {
    let browser = session::read_cookie(&headers, BROWSER_COOKIE).unwrap_or_default();
    let expected = confirm_csrf(&browser);
    if browser.is_empty() || !bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return ErrorPage::bad_request(
            "Sign-out was not confirmed",
            "This form was not sent by the page the identity provider showed this browser.",
            Some("invalid_request"),
        );
    }
    if let Some(current) = session::current(&state, &headers).await {
        end_session(&state, &current.sid, &current.sub).await;
    }
    let uri = Some(form.post_logout_redirect_uri.as_str()).filter(|u| !u.is_empty());
    let state_param = Some(form.state.as_str()).filter(|s| !s.is_empty());
    signed_out(&state, &form.client_id, uri, state_param)
}

/// The answer once the session is over: back to the client's registered
/// `post_logout_redirect_uri` with `state`, or a page; the cookie cleared.
fn signed_out(
    state: &AppState,
    client_id: &str,
    uri: Option<&str>,
    state_param: Option<&str>,
) -> Response {
    let client = state.clients.get(client_id);
    // RP-Initiated Logout 1.0 3: only a registered URI, to the letter.
    let target = uri
        .filter(|uri| client.is_some_and(|c| c.has_post_logout_redirect_uri(uri)))
        .and_then(|uri| url::Url::parse(uri).ok());
    let mut response = match target {
        Some(mut url) => {
            if let Some(s) = state_param {
                url.query_pairs_mut().append_pair("state", s);
            }
            Redirect::to(url.as_str()).into_response()
        }
        None => LoggedOutPage {
            message: "You have been signed out. You can close this tab.".into(),
        }
        .into_response(),
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, session::clear());
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
            Ok(r) => {
                tracing::warn!(%client_id, status = %r.status(), attempt, "back-channel logout refused")
            }
            Err(e) => tracing::warn!(%client_id, error = %e, attempt, "back-channel logout failed"),
        }
        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
    }
    tracing::error!(%client_id, "back-channel logout gave up");
}
