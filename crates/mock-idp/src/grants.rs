//! `GET /grants` and `POST /grants/revoke`: the person's own view of which
//! applications they let in (the consents of step 4), and the way to take
//! one back.
//!
//! - Only for the signed-in person (the IdP session cookie).
//! - Revoking forgets the consent, so the next authorization request asks
//!   again, and revokes every refresh and access token of that person for
//!   that client (RFC 7009 2.1: a revoked grant leaves no token alive).
//! - The revoke form carries the IdP's anti-CSRF token ([`crate::csrf`]):
//!   another site cannot post the form for the person (RFC 6749 10.12),
//!   even one that knows the session's `sid` from an ID token.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tracing::instrument;

use crate::{
    AppState,
    csrf::{self, Purpose},
    pages::{PageError, csp_with_forms_to},
    paths, session,
    store::Session,
};

#[derive(Template, WebTemplate)]
#[template(path = "mock-idp/grants.html")]
pub struct GrantsPage {
    pub user_name: String,
    pub csrf: String,
    pub action: &'static str,
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

/// The signed-in person's session, or the page that says they are not.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Session, PageError> {
    session::current(state, headers)
        .await?
        .ok_or(PageError::NotSignedIn)
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
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let session = signed_in(&state, &headers).await?;
    let user = state
        .store
        .user_by_sub(&session.sub)
        .await?
        .ok_or(PageError::NotSignedIn)?;
    let grants = state
        .store
        .consents_of(&session.sub)
        .await?
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
    let (browser, set_browser) = session::browser_id(&headers);
    let page = GrantsPage {
        user_name: user.name,
        csrf: csrf::token(&browser, Purpose::RevokeGrant),
        action: paths::GRANTS_REVOKE,
        grants,
    };
    Ok(session::with_cookie(
        ([csp_with_forms_to(&[])], page).into_response(),
        set_browser,
    ))
}

/// Takes an application's access back: its consent and every token it
/// holds for this person.
#[instrument(name = "revoke_grant", skip_all, fields(client_id = %form.client_id))]
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<RevokeForm>,
) -> Result<Response, PageError> {
    let session = signed_in(&state, &headers).await?;
    // RFC 6749 10.12: only the page the IdP served may post this form.
    csrf::check(
        session::browser(&headers).as_deref(),
        Purpose::RevokeGrant,
        &form.csrf,
    )?;
    state
        .store
        .revoke_grant(&session.sub, &form.client_id)
        .await?;
    tracing::info!(sub = %session.sub, "grant revoked");
    Ok(Redirect::to(paths::GRANTS).into_response())
}
