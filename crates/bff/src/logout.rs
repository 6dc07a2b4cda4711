//! `POST /bff/logout`: ends the session here, gives the refresh token back to
//! the provider (RFC 7009), then sends the browser to the provider's
//! `end_session_endpoint` so the person is signed out there too (OIDC
//! RP-Initiated Logout 1.0).
//!
//! - CSRF: the page's plain HTML form carries the session's anti-CSRF token;
//!   a script sends `X-CSRF: 1` instead.
//! - 2: the request carries `id_token_hint` (Okta and Keycloak require it),
//!   `client_id`, `post_logout_redirect_uri` and a fresh `state`, which the
//!   home page checks when the provider sends the browser back.
//! - The ID token must not sit in a URL (history, logs, `Referer`), so by
//!   default the request is an auto-submitted POST form, which the spec
//!   requires providers to accept; `--logout-method get` sends a redirect
//!   for providers that take only GET. It is the one token the browser is
//!   ever handed: the ID token of the session that has just ended, as a
//!   hint, worth nothing at the API.
//! - A provider without an `end_session_endpoint` (Google) gets a local
//!   sign-out, and the home page says so.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use tower_sessions::Session;
use tracing::instrument;

use crate::{
    AppState, csrf,
    flow::{self, Kind, Step},
    reply::{self, ErrorPage, PageBody},
    session::{self, SignedIn},
};

#[derive(Template, WebTemplate)]
#[template(path = "bff/logout.html")]
pub struct LogoutPage {
    /// The provider's end-session endpoint.
    pub action: String,
    pub fields: Vec<(&'static str, String)>,
}

#[instrument(name = "logout", skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    signed_in: Option<SignedIn>,
    headers: HeaderMap,
    PageBody(body): PageBody,
) -> Response {
    let Some(signed_in) = signed_in else {
        // Nobody to sign out: just go home.
        return Redirect::to("/").into_response();
    };
    if !csrf::form_or_header(&body, &headers, &signed_in.csrf) {
        return ErrorPage::response(
            StatusCode::UNAUTHORIZED,
            "Sign-out was not confirmed",
            "This sign-out request did not come from this app's page.",
            false,
        );
    }
    let revoked = match &signed_in.login.tokens.refresh_token {
        Some(refresh_token) => revoke(&state, refresh_token).await,
        None => "no refresh token to give back".to_owned(),
    };
    let id_token = signed_in.login.tokens.id_token.clone();
    let sub = signed_in.login.user.sub.clone();
    // The flow inspector's trace outlives the session: the browser's next
    // session keeps it, with the sign-out at its end.
    let trace = flow::load(&state, &session).await;
    if let Err(e) = signed_in.end(&state).await {
        tracing::error!(error = %e, "could not end the session");
        return reply::unavailable_page();
    }
    tracing::info!(%sub, "signed out");
    state.metrics.sessions_ended("sign_out", 1);
    let provider = state.provider.get();
    let sign_out = Step::new(Kind::SignOut, state.clock.now(), crate::here!("logout"))
        .detail("session", "ended here")
        .detail("refresh token", revoked);
    let Some(end_session) = provider.extra.end_session_endpoint.clone() else {
        let sign_out = sign_out
            .outcome("the provider has no end-session endpoint: signed out of this app only");
        flow::store(&state, &session, [trace, vec![sign_out]].concat()).await;
        return Redirect::to("/?signed_out=local").into_response();
    };
    let logout_state = crate::random_token();
    if let Err(e) = session::expect_logout_return(&state, &session, &logout_state).await {
        tracing::warn!(error = %e, "could not remember the logout's state");
    }
    let sign_out = sign_out
        .request(
            if state.config.logout_method == "get" {
                "GET"
            } else {
                "POST"
            },
            &end_session,
            vec![
                ("id_token_hint".to_owned(), flow::mask(&id_token)),
                ("client_id".to_owned(), state.config.client_id.clone()),
                (
                    "post_logout_redirect_uri".to_owned(),
                    state.config.post_logout_redirect_uri(),
                ),
                ("state".to_owned(), flow::mask(&logout_state)),
            ],
        )
        .outcome(
            "the browser takes the sign-out to the provider, which sends it back with the state",
        );
    flow::store(&state, &session, [trace, vec![sign_out]].concat()).await;
    let fields = vec![
        ("id_token_hint", id_token),
        ("client_id", state.config.client_id.clone()),
        (
            "post_logout_redirect_uri",
            state.config.post_logout_redirect_uri(),
        ),
        ("state", logout_state),
    ];
    if state.config.logout_method == "get" {
        let Ok(mut url) = url::Url::parse(&end_session) else {
            return Redirect::to("/").into_response();
        };
        url.query_pairs_mut().extend_pairs(&fields);
        return Redirect::to(url.as_str()).into_response();
    }
    LogoutPage {
        action: end_session,
        fields,
    }
    .into_response()
}

/// RFC 7009: the refresh token goes back to the provider. Best effort: a
/// provider that is down must not keep the person signed in here. What
/// happened, in words, for the flow inspector.
async fn revoke(state: &AppState, refresh_token: &str) -> String {
    let provider = state.provider.get();
    let Some(endpoint) = &provider.extra.revocation_endpoint else {
        return "kept: the provider has no revocation endpoint".to_owned();
    };
    let mut form = vec![
        ("token", refresh_token.to_owned()),
        ("token_type_hint", "refresh_token".to_owned()),
    ];
    // RFC 7009 2.1: authenticated as at the token endpoint.
    let audience = state.assertion_audience(&provider);
    let request = state.client_auth.authenticate(
        state.http.post(endpoint),
        &mut form,
        &state.config.client_id,
        audience,
        state.clock.now(),
    );
    let result = match request {
        Ok(request) => request.form(&form).send().await,
        Err(e) => {
            tracing::warn!(error = %e, "could not authenticate the revocation");
            return "not revoked: the BFF could not authenticate".to_owned();
        }
    };
    match result {
        Ok(r) if r.status().is_success() => {
            tracing::info!("refresh token revoked");
            format!("revoked at {endpoint} (RFC 7009)")
        }
        Ok(r) => {
            tracing::warn!(status = %r.status(), "refresh token revocation refused");
            format!("revocation refused: {}", r.status())
        }
        Err(e) => {
            tracing::warn!(error = %e.without_url(), "refresh token revocation failed");
            "revocation failed: the provider did not answer".to_owned()
        }
    }
}
