//! `GET /grants` and `POST /grants/revoke`: the person's own view of which
//! applications they let in (the consents of step 4), and the way to take
//! one back.
//!
//! - Only for the signed-in person (the IdP session cookie); anyone else
//!   gets a page saying they are not signed in, with 401.
//! - Revoking forgets the consent, so the next authorization request asks
//!   again, and revokes every refresh and access token of that person for
//!   that client (RFC 7009 2.1: a revoked grant leaves no token alive).
//! - The revoke form carries an anti-CSRF token derived from the session
//!   cookie's secret, compared in constant time: another site cannot post
//!   the form for the person (RFC 6749 10.12), even one that knows the
//!   session's `sid` from an ID token.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tracing::instrument;

use crate::{
    AppState,
    pages::ErrorPage,
    session::{self, SESSION_COOKIE},
    store::Session,
};

pub const PATH: &str = "/grants";
pub const REVOKE_PATH: &str = "/grants/revoke";

#[derive(Template, WebTemplate)]
#[template(path = "mock-idp/grants.html")]
pub struct GrantsPage {
    pub user_name: String,
    pub csrf: String,
    pub action: String,
    pub grants: Vec<GrantLine>,
}

/// One application the person let in.
pub struct GrantLine {
    pub client_id: String,
    pub client_name: String,
    pub scopes: String,
    pub granted_at: String,
}

/// The revoke form's fields.
#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    client_id: String,
}

/// The signed-in person's session and the anti-CSRF token of this page.
/// The token is a digest of the session cookie's secret, which only this
/// browser holds (the `sid` is no secret: every client sees it in its ID
/// tokens).
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Option<(Session, String)> {
    let cookie = session::read_cookie(headers, SESSION_COOKIE)?;
    let session = session::current(state, headers).await?;
    Some((session, crate::digest(&format!("grants:{cookie}"))))
}

fn not_signed_in() -> Response {
    ErrorPage::response(
        StatusCode::UNAUTHORIZED,
        "You are not signed in",
        "Sign in to an application through this identity provider first, then come back to see which applications have access to your account.",
        Some("login_required"),
    )
}

/// `granted_at` in words: `2025-01-31 14:05 UTC`.
fn date(unix_seconds: i64) -> String {
    match cookie::time::OffsetDateTime::from_unix_timestamp(unix_seconds) {
        Ok(t) => format!(
            "{}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => String::new(),
    }
}

/// The list of applications with access.
pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((session, csrf)) = signed_in(&state, &headers).await else {
        return not_signed_in();
    };
    let (user, consents) = match (
        state.store.user_by_sub(&session.sub).await,
        state.store.consents_of(&session.sub).await,
    ) {
        (Ok(Some(user)), Ok(consents)) => (user, consents),
        _ => return ErrorPage::server_error(),
    };
    let grants = consents
        .into_iter()
        .map(|(client_id, scopes, granted_at)| GrantLine {
            client_name: state
                .clients
                .get(&client_id)
                .map(|c| c.name.clone())
                .unwrap_or_else(|| client_id.clone()),
            client_id,
            scopes,
            granted_at: date(granted_at),
        })
        .collect();
    GrantsPage {
        user_name: user.name,
        csrf,
        action: REVOKE_PATH.into(),
        grants,
    }
    .into_response()
}

/// Takes an application's access back: its consent and every token it
/// holds for this person.
#[instrument(name = "revoke_grant", skip_all, fields(client_id = %form.client_id))]
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<RevokeForm>,
) -> Response {
    let Some((session, csrf)) = signed_in(&state, &headers).await else {
        return not_signed_in();
    };
    // RFC 6749 10.12: only the page the IdP served may post this form.
    if !bool::from(csrf.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return ErrorPage::bad_request(
            "This form is no longer valid",
            "It was not sent by the page the identity provider showed you. Open the list of applications again.",
            Some("invalid_request"),
        );
    }
    let revoked = async {
        state
            .store
            .revoke_consent(&session.sub, &form.client_id)
            .await?;
        state
            .store
            .revoke_client_grants(&session.sub, &form.client_id)
            .await
    };
    if let Err(e) = revoked.await {
        tracing::error!(error = %e, "could not revoke a grant");
        return ErrorPage::server_error();
    }
    tracing::info!(sub = %session.sub, "grant revoked");
    Redirect::to(PATH).into_response()
}
