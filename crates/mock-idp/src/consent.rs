//! Step 4, second half: the consent page. The person sees, in words, what the
//! application asks for, and allows or denies it.
//!
//! - Consent is remembered per user and client, so the next sign-in skips
//!   the page unless the client asks for more, or for `prompt=consent`.
//! - `deny` answers the client with `access_denied` (RFC 6749 4.1.2.1).
//! - `allow` goes back to [`crate::authorize::proceed`], which issues the
//!   code only if the person is signed in as the request demands: consent
//!   is no way around `prompt=login` or `max_age`.

use askama::Template;
use askama_web::WebTemplate;
use axum::{extract::State, http::HeaderMap, response::Response};
use serde::Deserialize;
use tracing::instrument;

use crate::{
    AppState, authorize, interaction,
    pages::{PageError, PageForm, PageQuery},
    paths, session,
    signin::{TxQuery, client_name, with_csp},
};

pub struct ScopeLine {
    pub name: String,
    pub description: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "mock-idp/consent.html")]
pub struct ConsentPage {
    pub client_name: String,
    pub user_name: String,
    pub action: &'static str,
    pub tx: String,
    pub csrf: String,
    pub scopes: Vec<ScopeLine>,
}

/// Each scope in words a person understands.
pub fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "Know who you are (your user id)",
        "profile" => "See your name",
        "email" => "See your email address",
        "offline_access" => "Stay signed in to it when you are away (refresh tokens)",
        "notes:read" => "Read your notes",
        "notes:write" => "Add and delete your notes",
        _ => "An access right this application defines",
    }
}

/// The consent form's fields: `decision` = `allow` or `deny`, names any
/// HTTP client can post.
#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    tx: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
}

/// Shows what the client asks for.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageQuery(q): PageQuery<TxQuery>,
) -> Result<Response, PageError> {
    let pending = interaction::for_page(&state, &headers, &q.tx)?;
    // The person's session may have ended since the sign-in page.
    let session = session::current(&state, &headers)
        .await?
        .ok_or(PageError::NotSignedIn)?;
    let user = state
        .store
        .user_by_sub(&session.sub)
        .await?
        .ok_or(PageError::NotSignedIn)?;
    let scopes = pending
        .interaction
        .request
        .scopes
        .iter()
        .map(|s| ScopeLine {
            name: s.clone(),
            description: describe(s).to_owned(),
        })
        .collect();
    let page = ConsentPage {
        client_name: client_name(&state, &pending),
        user_name: user.name,
        action: paths::CONSENT,
        tx: pending.tx.clone(),
        csrf: pending.csrf.clone(),
        scopes,
    };
    Ok(with_csp(&pending, page))
}

/// The person's decision.
#[instrument(name = "step4_consent", skip_all)]
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<ConsentForm>,
) -> Result<Response, PageError> {
    let mut pending = interaction::for_form(&state, &headers, &form.tx, &form.csrf)?;
    let session = session::current(&state, &headers)
        .await?
        .ok_or(PageError::NotSignedIn)?;
    let request = pending.interaction.request.clone();
    match form.decision.as_str() {
        "allow" => {
            let now = state.clock.now();
            // OIDC Core 3.1.2.1: a request that wants a fresh sign-in gets
            // one before any consent counts (`proceed` sends the browser
            // to the sign-in page).
            if request.is_satisfied_by(&session, pending.interaction.signed_in, now) {
                state
                    .store
                    .grant_consent(&session.sub, &request.client_id, &request.scopes, now)
                    .await?;
                state
                    .interactions
                    .record(&pending.tx, |i| i.consented = true);
                pending.interaction.consented = true;
                tracing::info!(client_id = %request.client_id, "consent given");
            }
            let stage = authorize::Stage::Pending(&pending);
            authorize::proceed(&state, request, stage, Some(&session)).await
        }
        "deny" => {
            state.interactions.finish(&pending.tx);
            tracing::info!(client_id = %request.client_id, "consent denied");
            // RFC 6749 4.1.2.1: the resource owner denied the request.
            Ok(request.reply().error(
                &state.issuer,
                "access_denied",
                "the user denied the request",
            ))
        }
        _ => Err(PageError::bad_request(
            "Choose Allow or Deny",
            "The form was sent without a decision.",
            "invalid_request",
        )),
    }
}
