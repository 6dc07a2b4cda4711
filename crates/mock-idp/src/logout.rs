//! `GET|POST /v1/logout`: OIDC RP-Initiated Logout 1.0, the end of the IdP
//! session that a client asks for.
//!
//! - 2: the OP accepts GET and POST. The session ends at once only when an
//!   unexpired `id_token_hint` names this browser's own session (its `sid`).
//!   Any other request (no hint, an expired one, one of another session or
//!   user) is only a hint: the person is asked to confirm, and nothing ends
//!   until they do, so no other site can sign them out. A request with no
//!   browser session behind it ends nothing at all.
//! - 2, 3: the browser goes back to `post_logout_redirect_uri` only when it is
//!   one the client registered, to the letter, with `state` echoed.
//! - Ending the session tells the clients it signed in to
//!   ([`crate::backchannel`]).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    body::Bytes,
    extract::{RawQuery, State, rejection::BytesRejection},
    http::{HeaderMap, Method, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tracing::instrument;

use crate::{
    AppState,
    clients::Client,
    csrf::{self, Purpose},
    form::Form,
    keys::Expect,
    pages::{PageError, PageForm, csp_with_forms_to},
    paths, session,
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
    pub action: &'static str,
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

/// What the logout endpoint reads from an `id_token_hint`.
#[derive(Deserialize)]
struct Hint {
    aud: String,
    sid: Option<String>,
    exp: i64,
}

fn invalid(message: &str) -> PageError {
    PageError::bad_request(
        "This sign-out request is not valid",
        message,
        "invalid_request",
    )
}

#[instrument(name = "logout", skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let body = body.map_err(|_| invalid("The request could not be read."))?;
    let form = if method == Method::POST {
        Form::parse_bytes(&body)
    } else {
        Form::parse(query.as_deref().unwrap_or_default())
    }
    .map_err(|_| invalid("The request parameters are malformed or repeated."))?;
    // 2: the OP must have issued the hint; it may have expired.
    let hint: Option<Hint> = match form.get("id_token_hint") {
        None => None,
        Some(token) => Some(
            state
                .keys
                .verify(
                    token,
                    &Expect {
                        typ: "JWT",
                        issuer: &state.issuer,
                        audience: None,
                        // 2: an expired ID token is still a hint.
                        unexpired_at: None,
                    },
                )
                .ok_or_else(|| {
                    invalid("The id_token_hint is not one this identity provider issued.")
                })?,
        ),
    };
    if hint.is_none() && state.settings.profile.logout_needs_id_token_hint() {
        return Err(invalid(
            "id_token_hint is required: sign out from the application.",
        ));
    }
    let client_id = match (&hint, form.get("client_id")) {
        (Some(hint), Some(id)) if id != hint.aud => {
            return Err(invalid("client_id does not match the id_token_hint."));
        }
        (Some(hint), _) => hint.aud.as_str(),
        (None, Some(id)) => id,
        (None, None) => {
            return Err(invalid(
                "The application did not say who it is (client_id or id_token_hint).",
            ));
        }
    };
    let client = state
        .clients
        .get(client_id)
        .ok_or_else(|| invalid("The application is not registered."))?;
    let redirect = form.get("post_logout_redirect_uri");
    let state_param = form.get("state");
    let Some(current) = session::current(&state, &headers).await? else {
        // Nobody is signed in at this browser: nothing to end.
        return Ok(signed_out(client, redirect, state_param));
    };
    let now = state.clock.now();
    let names_this_session = hint
        .as_ref()
        .is_some_and(|h| now < h.exp && h.sid.as_deref() == Some(current.sid.as_str()));
    if !names_this_session {
        return Ok(ask_to_confirm(&headers, client, redirect, state_param));
    }
    session::end(&state, &current).await?;
    Ok(signed_out(client, redirect, state_param))
}

/// Ask the person before signing them out.
fn ask_to_confirm(
    headers: &HeaderMap,
    client: &Client,
    redirect: Option<&str>,
    state_param: Option<&str>,
) -> Response {
    let (browser, set_browser) = session::browser_id(headers);
    let registered = redirect.filter(|uri| client.has_post_logout_redirect_uri(uri));
    let csp = csp_with_forms_to(registered.as_slice());
    let page = LogoutConfirmPage {
        client_name: client.name.clone(),
        action: paths::LOGOUT_CONFIRM,
        csrf: csrf::token(&browser, Purpose::ConfirmLogout),
        client_id: client.id.clone(),
        post_logout_redirect_uri: registered.unwrap_or_default().to_owned(),
        state: state_param.unwrap_or_default().to_owned(),
    };
    session::with_cookie(([csp], page).into_response(), set_browser)
}

/// `POST /logout/confirm`: the person confirmed; end their session.
#[instrument(name = "logout_confirmed", skip_all)]
pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<ConfirmForm>,
) -> Result<Response, PageError> {
    csrf::check(
        session::browser(&headers).as_deref(),
        Purpose::ConfirmLogout,
        &form.csrf,
    )?;
    if let Some(current) = session::current(&state, &headers).await? {
        session::end(&state, &current).await?;
    }
    let Some(client) = state.clients.get(&form.client_id) else {
        return Err(invalid("The application is not registered."));
    };
    let uri = Some(form.post_logout_redirect_uri.as_str()).filter(|u| !u.is_empty());
    let state_param = Some(form.state.as_str()).filter(|s| !s.is_empty());
    Ok(signed_out(client, uri, state_param))
}

/// The answer once the session is over: back to the client's registered
/// `post_logout_redirect_uri` with `state`, or a page; the cookie cleared.
fn signed_out(client: &Client, uri: Option<&str>, state_param: Option<&str>) -> Response {
    // RP-Initiated Logout 1.0 3: only a registered URI, to the letter.
    let target = uri
        .filter(|uri| client.has_post_logout_redirect_uri(uri))
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
