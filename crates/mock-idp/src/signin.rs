//! Steps 3-4: the sign-in page, where the person proves who they are.
//!
//! - Passwords are checked against argon2id hashes; a failed sign-in says so
//!   without telling which field was wrong, and costs the same time whether
//!   or not the username exists.
//! - Every form is bound to its interaction, its browser and an anti-CSRF
//!   token ([`crate::interaction`], [`crate::csrf`]).
//! - A successful sign-in starts a fresh IdP session (a new cookie value:
//!   no fixation), then the request goes on to consent or straight to the
//!   code ([`crate::authorize::proceed`]).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tracing::instrument;

use crate::{
    AppState, authorize,
    interaction::{self, Pending},
    pages::{PageError, PageForm, PageQuery, csp_with_forms_to},
    paths, session,
    store::User,
    throttle::{self, ClientAddress},
};

#[derive(Template, WebTemplate)]
#[template(path = "mock-idp/signin.html")]
pub struct SignInPage {
    pub client_name: String,
    pub action: &'static str,
    pub tx: String,
    pub csrf: String,
    pub username: String,
    pub error: Option<String>,
    pub signup_url: String,
}

/// The `tx` of a pending sign-in's page; missing is as good as unknown.
#[derive(Deserialize)]
pub struct TxQuery {
    #[serde(default)]
    pub tx: String,
}

/// The sign-in form's fields: `username`, `password`, names any HTTP client
/// can post.
#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    tx: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

const FAILED: &str = "The email or password is not correct.";

/// The name of the application a pending sign-in is for.
pub fn client_name(state: &AppState, pending: &Pending) -> String {
    state
        .clients
        .get(&pending.interaction.request.client_id)
        .map(|c| c.name.clone())
        .unwrap_or_default()
}

fn sign_in_page(
    state: &AppState,
    pending: &Pending,
    username: &str,
    error: Option<&str>,
) -> SignInPage {
    SignInPage {
        client_name: client_name(state, pending),
        action: paths::SIGN_IN,
        tx: pending.tx.clone(),
        csrf: pending.csrf.clone(),
        username: username.to_owned(),
        error: error.map(str::to_owned),
        signup_url: paths::with_tx(paths::SIGN_UP, &pending.tx),
    }
}

/// A page of a pending sign-in, with the CSP that lets its forms lead back
/// to the client's redirect URI (where the IdP sends the browser next).
pub fn with_csp(pending: &Pending, page: impl IntoResponse) -> Response {
    let csp = csp_with_forms_to(&[pending.interaction.request.redirect_uri.as_str()]);
    ([csp], page).into_response()
}

/// Step 3: the sign-in page.
#[instrument(name = "step3_sign_in_page", skip_all)]
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageQuery(q): PageQuery<TxQuery>,
) -> Result<Response, PageError> {
    let pending = interaction::for_page(&state, &headers, &q.tx)?;
    Ok(with_csp(&pending, sign_in_page(&state, &pending, "", None)))
}

/// Step 4: the person submits their username and password.
#[instrument(name = "step4_sign_in", skip_all)]
pub async fn submit(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    PageForm(form): PageForm<SignInForm>,
) -> Result<Response, PageError> {
    let pending = interaction::for_form(&state, &headers, &form.tx, &form.csrf)?;
    // NIST SP 800-63B 5.2.2: guesses are throttled per account and per
    // address, counted before any password is checked; the same answer
    // whether or not the account exists.
    if let Err(wait) = state.throttle.attempt(&form.username, address) {
        let seconds = throttle::seconds(wait);
        tracing::info!(seconds, "sign-in throttled");
        state.metrics.sign_in("throttled");
        let message = format!("Too many attempts. Try again in {seconds} seconds.");
        let page = sign_in_page(&state, &pending, &form.username, Some(&message));
        let retry_after = (header::RETRY_AFTER, HeaderValue::from(seconds));
        return Ok(with_csp(
            &pending,
            (StatusCode::TOO_MANY_REQUESTS, [retry_after], page),
        ));
    }
    let user = state.store.user_by_username(form.username.trim()).await?;
    // Checked against a dummy hash when there is no such user: the same
    // time either way, so timing tells nobody which usernames exist.
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let right_password = state
        .hasher
        .verify(form.password, hash)
        .await
        .map_err(|_| {
            state.metrics.sign_in("busy");
            PageError::Busy
        })?;
    match user {
        Some(user) if right_password => {
            state.throttle.succeeded(&form.username);
            state.metrics.sign_in("signed_in");
            signed_in(&state, pending, &user, &headers).await
        }
        _ => {
            tracing::info!("sign-in failed");
            state.metrics.sign_in("wrong_password");
            state.interactions.record_failed_sign_in(&pending.tx)?;
            let page = sign_in_page(&state, &pending, &form.username, Some(FAILED));
            Ok(with_csp(&pending, (StatusCode::UNAUTHORIZED, page)))
        }
    }
}

/// The person proved who they are (signed in or registered): starts the IdP
/// session, records the sign-in on the pending request, and takes the
/// request to its next step.
pub async fn signed_in(
    state: &AppState,
    mut pending: Pending,
    user: &User,
    headers: &HeaderMap,
) -> Result<Response, PageError> {
    let previous = session::current(state, headers).await?;
    let (session, cookie) = session::start(state, &user.sub, previous).await?;
    tracing::info!(sub = %user.sub, "signed in");
    state
        .interactions
        .record(&pending.tx, |i| i.signed_in = true);
    pending.interaction.signed_in = true;
    let request = pending.interaction.request.clone();
    let stage = authorize::Stage::Pending(&pending);
    let response = authorize::proceed(state, request, stage, Some(&session)).await?;
    Ok(session::with_cookie(response, Some(cookie)))
}
