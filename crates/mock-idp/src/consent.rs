//! Step 4, second half: the consent page. The person sees, in words, what the
//! application asks for, and allows or denies it.
//!
//! - Consent is remembered per user and client, so the next sign-in skips
//!   the page unless the client asks for more, or for `prompt=consent`.
//! - `deny` answers the client with `access_denied` (RFC 6749 4.1.2.1).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Query, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tracing::instrument;

use crate::{AppState, authorize::issue_code, interaction, pages::ErrorPage, session};

pub struct ScopeLine {
    pub name: String,
    pub description: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "mock-idp/consent.html")]
pub struct ConsentPage {
    pub client_name: String,
    pub user_name: String,
    pub action: String,
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

#[derive(Deserialize)]
pub struct TxQuery {
    tx: String,
}

/// The consent form's fields (CONTRACT.md: `decision` = `allow` or `deny`).
#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    tx: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
}

/// Consent needs the person signed in (their session may have ended since
/// the sign-in page).
fn not_signed_in() -> Response {
    ErrorPage::bad_request(
        "You are not signed in",
        "Go back to the application and sign in again.",
        Some("login_required"),
    )
}

/// Shows what the client asks for.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TxQuery>,
) -> Response {
    let interaction = match interaction::for_page(&state, &headers, &q.tx) {
        Ok(i) => i,
        Err(answer) => return answer,
    };
    let Some(session) = session::current(&state, &headers).await else {
        return not_signed_in();
    };
    let user_name = match state.store.user_by_sub(&session.sub).await {
        Ok(Some(u)) => u.name,
        _ => return ErrorPage::server_error(),
    };
    let request = &interaction.request;
    ConsentPage {
        client_name: state
            .clients
            .get(&request.client_id)
            .map(|c| c.name.clone())
            .unwrap_or_default(),
        user_name,
        action: "/consent".into(),
        tx: q.tx,
        csrf: interaction.csrf.clone(),
        scopes: request
            .scopes
            .iter()
            .map(|s| ScopeLine {
                name: s.clone(),
                description: describe(s).to_owned(),
            })
            .collect(),
    }
    .into_response()
}

/// The person's decision.
#[instrument(name = "step4_consent", skip_all)]
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Response {
    let interaction = match interaction::for_form(&state, &headers, &form.tx, &form.csrf) {
        Ok(i) => i,
        Err(answer) => return answer,
    };
    let Some(session) = session::current(&state, &headers).await else {
        return not_signed_in();
    };
    let request = interaction.request;
    match form.decision.as_str() {
        "allow" => {
            if let Err(e) = state
                .store
                .grant_consent(&session.sub, &request.client_id, &request.scopes)
                .await
            {
                tracing::error!(error = %e, "could not store consent");
                return ErrorPage::server_error();
            }
            state.interactions.finish(&form.tx);
            tracing::info!(client_id = %request.client_id, "consent given");
            issue_code(&state, &request, &session).await
        }
        "deny" => {
            state.interactions.finish(&form.tx);
            tracing::info!(client_id = %request.client_id, "consent denied");
            // RFC 6749 4.1.2.1: the resource owner denied the request.
            request.reply().error(
                &state.issuer,
                "access_denied",
                "the user denied the request",
            )
        }
        _ => ErrorPage::bad_request(
            "Choose Allow or Deny",
            "The form was sent without a decision.",
            Some("invalid_request"),
        ),
    }
}
