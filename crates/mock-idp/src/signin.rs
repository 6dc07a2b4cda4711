//! Steps 3-4: the sign-in page, and the self-service registration page
//! beside it.
//!
//! - Passwords are checked against argon2id hashes; a failed sign-in says so
//!   without telling which field was wrong, and costs the same time whether
//!   or not the username exists.
//! - Every form is bound to its interaction, its browser and an anti-CSRF
//!   token ([`crate::interaction`]).
//! - A successful sign-in starts a fresh IdP session (a new cookie value:
//!   no fixation), then the flow goes on to consent or straight to the code.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tracing::instrument;

use crate::{
    AppState,
    authorize::after_sign_in,
    interaction::{self, Interaction},
    pages::ErrorPage,
    passwords,
    session::{self, BROWSER_COOKIE},
    store::{Session, StoreError, User},
};

#[derive(Template, WebTemplate)]
#[template(path = "mock-idp/signin.html")]
pub struct SignInPage {
    pub client_name: String,
    pub action: String,
    pub tx: String,
    pub csrf: String,
    pub username: String,
    pub error: Option<String>,
    pub signup_url: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "mock-idp/signup.html")]
pub struct SignUpPage {
    pub client_name: String,
    pub action: String,
    pub tx: String,
    pub csrf: String,
    pub username: String,
    pub name: String,
    pub error: Option<String>,
    pub error_field: String,
    pub signin_url: String,
}

#[derive(Deserialize)]
pub struct TxQuery {
    tx: String,
}

/// The sign-in form's fields (CONTRACT.md: `username`, `password`).
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

/// The registration form's fields (CONTRACT.md: `username`, `password`, `name`).
#[derive(Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    tx: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    name: String,
}

const FAILED: &str = "The email or password is not correct.";

fn client_name(state: &AppState, interaction: &Interaction) -> String {
    state
        .clients
        .get(&interaction.request.client_id)
        .map(|c| c.name.clone())
        .unwrap_or_default()
}

fn sign_in_page(
    state: &AppState,
    tx: &str,
    interaction: &Interaction,
    username: &str,
    error: Option<&str>,
) -> SignInPage {
    SignInPage {
        client_name: client_name(state, interaction),
        action: "/signin".into(),
        tx: tx.to_owned(),
        csrf: interaction.csrf.clone(),
        username: username.to_owned(),
        error: error.map(str::to_owned),
        signup_url: format!("/signup?tx={tx}"),
    }
}

/// Step 3: the sign-in page.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TxQuery>,
) -> Response {
    match interaction::for_page(&state, &headers, &q.tx) {
        Ok(interaction) => sign_in_page(&state, &q.tx, &interaction, "", None).into_response(),
        Err(answer) => answer,
    }
}

/// Step 4: the person submits their username and password.
#[instrument(name = "step4_sign_in", skip_all)]
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let browser = session::read_cookie(&headers, BROWSER_COOKIE);
    let interaction = match interaction::for_form(&state, &headers, &form.tx, &form.csrf) {
        Ok(i) => i,
        Err(answer) => return answer,
    };
    let user = match state.store.user_by_username(form.username.trim()).await {
        Ok(user) => user,
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            return ErrorPage::server_error();
        }
    };
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let user = match user {
        Some(user) if passwords::verify(form.password, hash).await => user,
        _ => {
            // Same words, same cost, whichever of the two was wrong.
            if user.is_none() {
                passwords::verify(String::new(), None).await;
            }
            tracing::info!("sign-in failed");
            if !state.interactions.record_failed_sign_in(&form.tx) {
                return ErrorPage::response(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many attempts",
                    "This sign-in was stopped after too many wrong passwords. Go back to the application to start again.",
                    Some("access_denied"),
                );
            }
            let page = sign_in_page(&state, &form.tx, &interaction, &form.username, Some(FAILED));
            return (StatusCode::UNAUTHORIZED, page).into_response();
        }
    };
    let previous = session::current(&state, &headers).await;
    signed_in(
        &state,
        &form.tx,
        interaction,
        &user,
        browser.as_deref().unwrap_or(""),
        previous,
    )
    .await
}

/// Starts the IdP session and continues the authorization request.
async fn signed_in(
    state: &AppState,
    tx: &str,
    interaction: Interaction,
    user: &User,
    browser: &str,
    previous: Option<Session>,
) -> Response {
    let (session, cookie) = match session::start(state, &user.sub, previous).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "could not start a session");
            return ErrorPage::server_error();
        }
    };
    tracing::info!(sub = %user.sub, "signed in");
    let mut response = after_sign_in(state, interaction.request, &session, Some(tx), browser).await;
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

fn sign_up_page(
    state: &AppState,
    tx: &str,
    interaction: &Interaction,
    form: Option<&SignUpForm>,
    error: Option<(&str, &str)>,
) -> SignUpPage {
    SignUpPage {
        client_name: client_name(state, interaction),
        action: "/signup".into(),
        tx: tx.to_owned(),
        csrf: interaction.csrf.clone(),
        username: form.map(|f| f.username.clone()).unwrap_or_default(),
        name: form.map(|f| f.name.clone()).unwrap_or_default(),
        error: error.map(|(_, m)| m.to_owned()),
        error_field: error.map(|(f, _)| f.to_owned()).unwrap_or_default(),
        signin_url: format!("/signin?tx={tx}"),
    }
}

/// The registration page.
pub async fn show_signup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TxQuery>,
) -> Response {
    match interaction::for_page(&state, &headers, &q.tx) {
        Ok(interaction) => sign_up_page(&state, &q.tx, &interaction, None, None).into_response(),
        Err(answer) => answer,
    }
}

/// What a new account must be.
fn check_new_account(form: &SignUpForm) -> Result<(), (&'static str, &'static str)> {
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(("name", "Enter your name (at most 100 characters)."));
    }
    let email = form.username.trim();
    let looks_like_email = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.contains(char::is_whitespace);
    if !looks_like_email {
        return Err(("username", "Enter an email address like name@example.com."));
    }
    let length = form.password.chars().count();
    if !(8..=256).contains(&length) {
        return Err(("password", "Choose a password of at least 8 characters."));
    }
    Ok(())
}

/// Registration: adds the user to the store, signs them in and goes on
/// with the authorization request.
#[instrument(name = "step4_register", skip_all)]
pub async fn submit_signup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignUpForm>,
) -> Response {
    let browser = session::read_cookie(&headers, BROWSER_COOKIE);
    let interaction = match interaction::for_form(&state, &headers, &form.tx, &form.csrf) {
        Ok(i) => i,
        Err(answer) => return answer,
    };
    let refuse = |field: &str, message: &str| {
        let page = sign_up_page(
            &state,
            &form.tx,
            &interaction,
            Some(&form),
            Some((field, message)),
        );
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    };
    if let Err((field, message)) = check_new_account(&form) {
        return refuse(field, message);
    }
    let Some(password_hash) = passwords::hash_blocking(form.password.clone()).await else {
        return ErrorPage::server_error();
    };
    let name = form.name.trim().to_owned();
    let user = User {
        sub: crate::new_subject(),
        username: form.username.trim().to_owned(),
        password_hash,
        given_name: name.split_whitespace().next().map(str::to_owned),
        family_name: None,
        // Nobody checked that this address is theirs.
        email_verified: false,
        name,
    };
    match state.store.insert_user(&user).await {
        Ok(()) => {}
        Err(StoreError::UsernameTaken) => {
            return refuse(
                "username",
                "An account with this email already exists. Sign in instead.",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "registration failed");
            return ErrorPage::server_error();
        }
    }
    tracing::info!(sub = %user.sub, "registered");
    let previous = session::current(&state, &headers).await;
    signed_in(
        &state,
        &form.tx,
        interaction,
        &user,
        browser.as_deref().unwrap_or(""),
        previous,
    )
    .await
}
