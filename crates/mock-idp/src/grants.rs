//! `GET /grants` and `POST /grants/revoke`: the person's own view of which
//! applications they let in (the consents of step 4), and the way to take
//! one back.
//!
//! - Only for the signed-in person (the IdP session cookie); anyone else is
//!   offered `GET /grants/signin`.
//! - Revoking forgets the consent, so the next authorization request asks
//!   again, and revokes every refresh and access token of that person for
//!   that client (RFC 7009 2.1: a revoked grant leaves no token alive).
//! - The revoke form carries the IdP's anti-CSRF token ([`crate::csrf`]):
//!   another site cannot post the form for the person (RFC 6749 10.12),
//!   even one that knows the session's `sid` from an ID token.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tracing::instrument;

use crate::{
    AppState,
    auth_request::{AuthRequest, Prompt},
    authorize::{self, Stage},
    clients::ACCOUNT_CLIENT,
    csrf::{self, Purpose},
    pages::{PageError, PageForm, csp_with_forms_to},
    paths,
    pkce::CodeChallenge,
    secret, session,
    store::Session,
    throttle::ClientAddress,
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

/// `GET /grants/signin`: signs the person in for their account page, by an
/// authorization request of the account page's own client
/// ([`crate::clients::ACCOUNT_CLIENT`]); its code, sent back to `/grants`,
/// is never redeemed.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientAddress(address): ClientAddress,
) -> Result<Response, PageError> {
    let client = state
        .clients
        .get(ACCOUNT_CLIENT)
        .ok_or(PageError::NotFound)?;
    let redirect_uri = client.redirect_uris[0].as_str().to_owned();
    // PKCE is required of every request; no verifier goes with this
    // challenge, as the code is never redeemed.
    let challenge = secret::random_token();
    let request = AuthRequest {
        client_id: client.id.clone(),
        redirect_uri,
        state: None,
        nonce: None,
        scopes: vec!["openid".to_owned()],
        challenge: CodeChallenge::from_request(Some(&challenge), Some("S256"))
            .map_err(|e| PageError::Server(e.to_string()))?,
        prompt: Prompt::default(),
        max_age: None,
        offline: false,
    };
    let session = session::current(&state, &headers).await?;
    let (browser, set_browser) = session::browser_id(&headers);
    let arrived = Stage::Arrived {
        browser: &browser,
        address,
    };
    let response = authorize::proceed(&state, request, arrived, session.as_ref()).await?;
    Ok(session::with_cookie(response, set_browser))
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
    PageForm(form): PageForm<RevokeForm>,
) -> Result<Response, PageError> {
    let session = signed_in(&state, &headers).await?;
    // RFC 6749 10.12: only the page the IdP served may post this form.
    csrf::check(
        session::browser(&headers).as_deref(),
        Purpose::RevokeGrant,
        &form.csrf,
    )?;
    // Codes before the store (an exchange under way either finds its code
    // withdrawn or has stored its tokens before the store revokes them
    // all) and after it (a request that read the consent meanwhile gets no
    // code). See `Codes::withdraw`.
    let now = state.clock.now();
    state.codes.withdraw(&session.sub, &form.client_id, now);
    state
        .store
        .revoke_grant(&session.sub, &form.client_id)
        .await?;
    state.codes.withdraw(&session.sub, &form.client_id, now);
    tracing::info!(sub = %session.sub, "grant revoked");
    Ok(Redirect::to(paths::GRANTS).into_response())
}
