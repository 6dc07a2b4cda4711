//! `POST /bff/logout`: ends the session here, gives the refresh token back to
//! the provider (RFC 7009), then sends the browser to the provider's
//! `end_session_endpoint` (OIDC RP-Initiated Logout 1.0) so the person is
//! signed out there too.
//!
//! - CSRF: the page's plain HTML form carries the session's anti-CSRF token;
//!   a script sends `X-CSRF: 1` instead.
//! - The logout redirect names this client by `client_id`, not by
//!   `id_token_hint`: the ID token would otherwise pass through the browser,
//!   which never receives a token. The provider asks the person to confirm.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use subtle::ConstantTimeEq;
use tower_sessions::Session;
use tracing::instrument;

use crate::{AppState, csrf, pages::ErrorPage, session::Sessions};

#[instrument(name = "logout", skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(signed_in) =
        Sessions::signed_in(&session, state.config.session_absolute_seconds).await
    else {
        // Nobody to sign out: just go home.
        return Redirect::to("/").into_response();
    };
    // The form's `csrf` field (an empty body from a script has none).
    let form_token = url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let form_ok = bool::from(form_token.as_bytes().ct_eq(signed_in.csrf.as_bytes()));
    if !form_ok && !csrf::has_header(&headers) {
        return ErrorPage::response(
            StatusCode::UNAUTHORIZED,
            "Sign-out was not confirmed",
            "This sign-out request did not come from this app's page.",
            false,
        );
    }
    if let Some(refresh_token) = &signed_in.tokens.refresh_token {
        revoke(&state, refresh_token).await;
    }
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "could not end the session");
        return ErrorPage::unavailable();
    }
    tracing::info!(sub = %signed_in.user.sub, "signed out");
    let provider = state.provider.get();
    let Some(end_session) = &provider.extra.end_session_endpoint else {
        return Redirect::to("/").into_response();
    };
    let Ok(mut url) = url::Url::parse(end_session) else {
        return Redirect::to("/").into_response();
    };
    url.query_pairs_mut()
        .append_pair("client_id", &state.config.client_id)
        .append_pair(
            "post_logout_redirect_uri",
            &state.config.post_logout_redirect_uri(),
        );
    Redirect::to(url.as_str()).into_response()
}

/// RFC 7009: the refresh token goes back to the provider. Best effort: a
/// provider that is down must not keep the person signed in here.
async fn revoke(state: &AppState, refresh_token: &str) {
    let provider = state.provider.get();
    let Some(endpoint) = &provider.extra.revocation_endpoint else {
        return;
    };
    let result = state
        .http
        .post(endpoint)
        .basic_auth(
            form_encode(&state.config.client_id),
            Some(form_encode(state.config.client_secret.expose())),
        )
        .form(&[
            ("token", refresh_token),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await;
    match result {
        Ok(r) if r.status().is_success() => tracing::info!("refresh token revoked"),
        Ok(r) => tracing::warn!(status = %r.status(), "refresh token revocation refused"),
        Err(e) => tracing::warn!(error = %e, "refresh token revocation failed"),
    }
}

/// RFC 6749 2.3.1: Basic credentials are form-urlencoded first.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
