//! Self-service registration, beside the sign-in page (step 4 for a person
//! without an account): the new account is stored, signed in, and the
//! authorization request goes on as after a sign-in.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde::Deserialize;
use tracing::instrument;

use crate::{
    AppState,
    interaction::{self, Pending},
    pages::{PageError, PageForm, PageQuery},
    paths,
    signin::{TxQuery, client_name, signed_in, with_csp},
    store::{StoreError, User, new_subject},
};

#[derive(Template, WebTemplate)]
#[template(path = "mock-idp/signup.html")]
pub struct SignUpPage {
    pub client_name: String,
    pub action: &'static str,
    pub tx: String,
    pub csrf: String,
    pub username: String,
    pub name: String,
    pub error: Option<String>,
    pub error_field: String,
    pub signin_url: String,
}

/// The registration form's fields: `username`, `password`, `name`, names any
/// HTTP client can post.
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

fn sign_up_page(
    state: &AppState,
    pending: &Pending,
    form: Option<&SignUpForm>,
    error: Option<(&str, &str)>,
) -> SignUpPage {
    SignUpPage {
        client_name: client_name(state, pending),
        action: paths::SIGN_UP,
        tx: pending.tx.clone(),
        csrf: pending.csrf.clone(),
        username: form.map(|f| f.username.clone()).unwrap_or_default(),
        name: form.map(|f| f.name.clone()).unwrap_or_default(),
        error: error.map(|(_, m)| m.to_owned()),
        error_field: error.map(|(f, _)| f.to_owned()).unwrap_or_default(),
        signin_url: paths::with_tx(paths::SIGN_IN, &pending.tx),
    }
}

/// The registration page.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageQuery(q): PageQuery<TxQuery>,
) -> Result<Response, PageError> {
    let pending = interaction::for_page(&state, &headers, &q.tx)?;
    Ok(with_csp(
        &pending,
        sign_up_page(&state, &pending, None, None),
    ))
}

/// What a new account must be: (the field, what to tell the person).
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
/// with the authorization request. What is cheap is checked first (the
/// form, then whether the email is taken); the password is hashed last,
/// with a turn at hashing like every check. A refused registration counts
/// against the pending sign-in like a wrong password.
#[instrument(name = "step4_register", skip_all)]
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<SignUpForm>,
) -> Result<Response, PageError> {
    let pending = interaction::for_form(&state, &headers, &form.tx, &form.csrf)?;
    let refuse = |field: &str, message: &str| {
        state.interactions.record_failed_sign_in(&pending.tx)?;
        let page = sign_up_page(&state, &pending, Some(&form), Some((field, message)));
        Ok(with_csp(&pending, (StatusCode::UNPROCESSABLE_ENTITY, page)))
    };
    const TAKEN: &str = "An account with this email already exists. Sign in instead.";
    if let Err((field, message)) = check_new_account(&form) {
        return refuse(field, message);
    }
    if state
        .store
        .user_by_username(form.username.trim())
        .await?
        .is_some()
    {
        return refuse("username", TAKEN);
    }
    let password_hash = state
        .hasher
        .hash(form.password.clone())
        .await
        .map_err(|_| PageError::Busy)?
        .ok_or_else(|| PageError::Server("could not hash a password".into()))?;
    let name = form.name.trim().to_owned();
    let user = User {
        sub: new_subject(),
        username: form.username.trim().to_owned(),
        password_hash,
        given_name: name.split_whitespace().next().map(str::to_owned),
        family_name: None,
        // Nobody checked that this address is theirs.
        email_verified: false,
        name,
        updated_at: state.clock.now(),
    };
    match state.store.insert_user(&user, state.clock.now()).await {
        Ok(()) => {}
        Err(StoreError::UsernameTaken) => return refuse("username", TAKEN),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(sub = %user.sub, "registered");
    signed_in(&state, pending, &user, &headers).await
}
