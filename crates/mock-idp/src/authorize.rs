//! `GET /v1/authorize`: step 2 arrives here; steps 3-5 leave from here.
//!
//! The request is checked first, every check in
//! [`AuthRequest::parse`](crate::auth_request::AuthRequest::parse). A valid
//! request then needs a person signed in as it demands (step 3, the sign-in
//! page) and their consent (step 4), after which the IdP sends the browser
//! back with a code (step 5). Which of those comes next is decided in one
//! place, [`next_step`], from plain facts and the time; the sign-in and
//! consent pages come back here through [`proceed`] when they are done.

use std::net::IpAddr;

use axum::{
    extract::{RawQuery, State},
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use tracing::instrument;

use crate::{
    AppState,
    auth_request::AuthRequest,
    codes::{Grant, Ticket},
    interaction::Pending,
    pages::PageError,
    paths, session,
    store::Session,
    throttle::ClientAddress,
};

/// What happens next to a valid authorization request.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Step 3: nobody is signed in as the request demands.
    SignIn,
    /// Step 4: the person must allow what the client asks for.
    AskConsent,
    /// Step 5: everything is there; the code goes to the client.
    IssueCode,
    /// What the request demands cannot be had without a page, and it
    /// forbids one (OIDC Core 3.1.2.6): this error goes to the client.
    Refuse(&'static str, &'static str),
}

/// What the person has consented to, for [`next_step`].
#[derive(Clone, Copy, Debug)]
pub struct Consent {
    /// The client wants consent at all (its registration says so).
    pub required: bool,
    /// The consent remembered for this user and client covers every scope
    /// asked for.
    pub remembered: bool,
    /// The person allowed this very request on the consent page.
    pub given_here: bool,
}

/// The next step of a valid request. `session` is the browser's IdP
/// session, `signed_in_here` whether it was made during this request
/// (`prompt=login` wants that), `now` the time.
pub fn next_step(
    request: &AuthRequest,
    session: Option<&Session>,
    signed_in_here: bool,
    consent: Consent,
    now: i64,
) -> Next {
    // OIDC Core 3.1.2.1: prompt=login and max_age ask for a fresh sign-in.
    let signed_in = session.is_some_and(|s| request.is_satisfied_by(s, signed_in_here, now));
    if !signed_in {
        // OIDC Core 3.1.2.6: prompt=none and nobody (fit) signed in.
        if request.prompt.none {
            return Next::Refuse("login_required", "the user is not signed in");
        }
        return Next::SignIn;
    }
    let asks_again = request.prompt.consent || !consent.remembered;
    if consent.required && asks_again && !consent.given_here {
        // OIDC Core 3.1.2.6: consent needed but no page may be shown.
        if request.prompt.none {
            return Next::Refuse(
                "consent_required",
                "the user has not consented to this application",
            );
        }
        return Next::AskConsent;
    }
    Next::IssueCode
}

/// The authorization endpoint (step 2 in, step 3 or 5 out).
#[instrument(name = "step2_authorize", skip_all, fields(client_id))]
pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientAddress(address): ClientAddress,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let request = match AuthRequest::parse(&state.clients, raw.as_deref().unwrap_or("")) {
        Ok(r) => r,
        Err(error) => {
            // The error code only: the request's `state` is the client's.
            tracing::info!(error = error.code(), "authorization request refused");
            return Ok(error.into_response(&state.issuer));
        }
    };
    tracing::Span::current().record("client_id", request.client_id.as_str());
    let session = session::current(&state, &headers).await?;
    let (browser, set_browser) = session::browser_id(&headers);
    let arrived = Stage::Arrived {
        browser: &browser,
        address,
    };
    let response = proceed(&state, request, arrived, session.as_ref()).await?;
    Ok(session::with_cookie(response, set_browser))
}

/// Where a request being taken forward stands.
pub enum Stage<'a> {
    /// Fresh from `/authorize`: a page for the person starts a pending
    /// sign-in for this browser, which came from this address.
    Arrived { browser: &'a str, address: IpAddr },
    /// Back from the sign-in or consent page of this pending sign-in.
    Pending(&'a Pending),
}

/// Takes a valid request to its next step: a page for the person, or the
/// answer to the client.
pub async fn proceed(
    state: &AppState,
    request: AuthRequest,
    stage: Stage<'_>,
    session: Option<&Session>,
) -> Result<Response, PageError> {
    let pending = match stage {
        Stage::Pending(pending) => Some(pending),
        Stage::Arrived { .. } => None,
    };
    // Before the consent is read: a grant withdrawn after this point
    // issues no code on what was read.
    let ticket = state.codes.ticket();
    let client = state.clients.get(&request.client_id).ok_or_else(|| {
        PageError::Server(format!(
            "client {} is no longer registered",
            request.client_id
        ))
    })?;
    // RFC 8252 8.6: a client anything on the machine can pose as does not
    // get a consent given earlier; the person answers each time.
    let remembered = match session {
        Some(_) if !client.remembers_consent => false,
        Some(session) => {
            let consented = state
                .store
                .consented_scopes(&session.sub, &client.id)
                .await?;
            request.scopes.iter().all(|s| consented.contains(s))
        }
        None => false,
    };
    let consent = Consent {
        required: client.consent_required,
        remembered,
        given_here: pending.is_some_and(|p| p.interaction.consented),
    };
    let signed_in_here = pending.is_some_and(|p| p.interaction.signed_in);
    let now = state.clock.now();
    let page = |path: &str| -> Result<Response, PageError> {
        let tx = match stage {
            Stage::Pending(p) => p.tx.clone(),
            Stage::Arrived { browser, address } => {
                state
                    .interactions
                    .start(request.clone(), browser, address, now)
            }
        };
        Ok(Redirect::to(&paths::with_tx(path, &tx)).into_response())
    };
    match (
        next_step(&request, session, signed_in_here, consent, now),
        session,
    ) {
        (Next::SignIn, _) => page(paths::SIGN_IN),
        (Next::AskConsent, _) => page(paths::CONSENT),
        (Next::Refuse(error, description), _) => {
            if let Some(p) = pending {
                state.interactions.finish(&p.tx);
            }
            Ok(request.reply().error(&state.issuer, error, description))
        }
        (Next::IssueCode, Some(session)) => {
            if let Some(p) = pending {
                state.interactions.finish(&p.tx);
            }
            issue_code(state, &request, session, ticket).await
        }
        (Next::IssueCode, None) => Err(PageError::Server("a code without a session".into())),
    }
}

/// Step 5: mints the code, bound to everything it authorizes, and sends the
/// browser back to the client with it.
#[instrument(name = "step5_code_to_redirect_uri", skip_all, fields(client_id = %request.client_id))]
async fn issue_code(
    state: &AppState,
    request: &AuthRequest,
    session: &Session,
    ticket: Ticket,
) -> Result<Response, PageError> {
    state
        .store
        .add_session_client(&session.sid, &request.client_id)
        .await?;
    let code = state.codes.issue(
        Grant {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            challenge: request.challenge.clone(),
            nonce: request.nonce.clone(),
            scopes: request.scopes.clone(),
            sub: session.sub.clone(),
            auth_time: session.auth_time,
            sid: session.sid.clone(),
            offline: request.offline,
        },
        state.clock.now(),
        ticket,
    );
    match code {
        Some(code) => Ok(request.reply().code(&state.issuer, &code)),
        // RFC 6749 4.1.2.1: the person took the application's access back
        // while this request was under way.
        None => Ok(request.reply().error(
            &state.issuer,
            "access_denied",
            "the user withdrew this application's access",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{auth_request::Prompt, pkce::CodeChallenge};

    fn request(prompt: Prompt, max_age: Option<i64>) -> AuthRequest {
        AuthRequest {
            client_id: "c".into(),
            redirect_uri: "https://c.example/cb".into(),
            state: None,
            nonce: None,
            scopes: vec!["openid".into()],
            challenge: CodeChallenge::from_request(
                Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
                Some("S256"),
            )
            .expect("a challenge"),
            prompt,
            max_age,
            offline: false,
        }
    }

    const NOW: i64 = 1_000_000;
    const REMEMBERED: Consent = Consent {
        required: true,
        remembered: true,
        given_here: false,
    };

    fn session(auth_time: i64) -> Session {
        Session {
            sid: "s".into(),
            sub: "u".into(),
            auth_time,
        }
    }

    #[test]
    fn prompt_login_needs_a_sign_in_during_the_request_oidc_core_3_1_2_1() {
        let login = request(
            Prompt {
                login: true,
                ..Prompt::default()
            },
            None,
        );
        let old = session(NOW - 5);
        assert_eq!(
            next_step(&login, Some(&old), false, REMEMBERED, NOW),
            Next::SignIn
        );
        assert_eq!(
            next_step(&login, Some(&old), true, REMEMBERED, NOW),
            Next::IssueCode
        );
    }

    #[test]
    fn max_age_needs_a_sign_in_no_older_than_it_oidc_core_3_1_2_1() {
        let recent = request(Prompt::default(), Some(60));
        assert_eq!(
            next_step(&recent, Some(&session(NOW - 61)), false, REMEMBERED, NOW),
            Next::SignIn
        );
        assert_eq!(
            next_step(&recent, Some(&session(NOW - 60)), false, REMEMBERED, NOW),
            Next::IssueCode
        );
    }

    #[test]
    fn prompt_none_refuses_instead_of_showing_a_page_oidc_core_3_1_2_6() {
        let none = request(
            Prompt {
                none: true,
                ..Prompt::default()
            },
            None,
        );
        assert_eq!(
            next_step(&none, None, false, REMEMBERED, NOW),
            Next::Refuse("login_required", "the user is not signed in")
        );
        let unknown = Consent {
            remembered: false,
            ..REMEMBERED
        };
        assert!(matches!(
            next_step(&none, Some(&session(NOW)), false, unknown, NOW),
            Next::Refuse("consent_required", _)
        ));
    }

    #[test]
    fn prompt_consent_asks_once_even_when_consent_is_remembered() {
        let consent = request(
            Prompt {
                consent: true,
                ..Prompt::default()
            },
            None,
        );
        let s = session(NOW);
        assert_eq!(
            next_step(&consent, Some(&s), false, REMEMBERED, NOW),
            Next::AskConsent
        );
        let given = Consent {
            given_here: true,
            ..REMEMBERED
        };
        assert_eq!(
            next_step(&consent, Some(&s), false, given, NOW),
            Next::IssueCode
        );
    }
}
