//! A pending authorization request while the person signs in (step 3-4) or
//! consents: the IdP keeps the validated request server-side and gives the
//! browser only an opaque id (`tx`) in the page's URL.
//!
//! Each interaction is bound to the browser that started it (the
//! `mockidp_browser` cookie) and carries an anti-CSRF token that every form
//! of it must post back. A form posted from another site, or another
//! browser, is refused. Interactions live ten minutes, in memory.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use subtle::ConstantTimeEq;

use crate::authorize::AuthRequest;

const LIFETIME: Duration = Duration::from_secs(600);
/// Most interactions held at once: each costs memory, and anyone can start
/// one, so there is a ceiling (then the IdP answers "busy").
const MAX_INTERACTIONS: usize = 10_000;
/// Wrong passwords one interaction accepts before it is dropped and the
/// person must start again from the application.
pub const MAX_FAILED_SIGN_INS: u32 = 5;

#[derive(Clone)]
pub struct Interaction {
    pub request: AuthRequest,
    browser_digest: String,
    pub csrf: String,
    expires_at: Instant,
    /// Answered already: kept until it expires so that the browser's back
    /// button lands somewhere useful instead of on an error.
    finished: bool,
    failed_sign_ins: u32,
}

#[derive(Clone, Default)]
pub struct Interactions(Arc<Mutex<HashMap<String, Interaction>>>);

#[derive(Debug, thiserror::Error)]
pub enum InteractionError {
    #[error("this sign-in request has expired or is unknown")]
    Unknown,
    #[error("this form was not sent by the page the IdP served to this browser")]
    Forged,
    #[error("this sign-in request is already complete")]
    Finished { client_id: String },
}

impl Interactions {
    /// Remembers a validated request for this browser; returns its id, or
    /// `None` when the IdP holds as many as it will.
    pub fn start(&self, request: AuthRequest, browser_id: &str) -> Option<String> {
        let id = crate::random_token();
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_INTERACTIONS {
            map.retain(|_, i| now < i.expires_at);
            if map.len() >= MAX_INTERACTIONS {
                return None;
            }
        }
        map.insert(
            id.clone(),
            Interaction {
                request,
                browser_digest: crate::digest(browser_id),
                csrf: crate::random_token(),
                expires_at: now + LIFETIME,
                finished: false,
                failed_sign_ins: 0,
            },
        );
        Some(id)
    }

    /// Counts a wrong password; after [`MAX_FAILED_SIGN_INS`] the interaction
    /// is dropped (`false`), so one page cannot be used to guess forever.
    pub fn record_failed_sign_in(&self, id: &str) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(interaction) = map.get_mut(id) else {
            return false;
        };
        interaction.failed_sign_ins += 1;
        if interaction.failed_sign_ins >= MAX_FAILED_SIGN_INS {
            map.remove(id);
            return false;
        }
        true
    }

    /// The interaction `id`, if it is still alive and belongs to this
    /// browser (for showing a page).
    pub fn get(&self, id: &str, browser_id: Option<&str>) -> Result<Interaction, InteractionError> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let interaction = map
            .get(id)
            .filter(|i| Instant::now() < i.expires_at)
            .ok_or(InteractionError::Unknown)?;
        let same_browser = browser_id.is_some_and(|b| {
            bool::from(
                crate::digest(b)
                    .as_bytes()
                    .ct_eq(interaction.browser_digest.as_bytes()),
            )
        });
        if !same_browser {
            return Err(InteractionError::Forged);
        }
        if interaction.finished {
            return Err(InteractionError::Finished {
                client_id: interaction.request.client_id.clone(),
            });
        }
        Ok(interaction.clone())
    }

    /// The interaction a form was posted for: same browser, and the form's
    /// anti-CSRF token matches.
    pub fn check_form(
        &self,
        id: &str,
        browser_id: Option<&str>,
        csrf: &str,
    ) -> Result<Interaction, InteractionError> {
        let interaction = self.get(id, browser_id)?;
        if !bool::from(interaction.csrf.as_bytes().ct_eq(csrf.as_bytes())) {
            return Err(InteractionError::Forged);
        }
        Ok(interaction)
    }

    /// Ends an interaction (its request has been answered).
    pub fn finish(&self, id: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(interaction) = map.get_mut(id) {
            interaction.finished = true;
        }
    }
}

/// The interaction a page is shown for, checked against this browser; or
/// the answer that says why not.
#[expect(
    clippy::result_large_err,
    reason = "the error is the page to answer with, once per request"
)]
pub fn for_page(
    state: &crate::AppState,
    headers: &axum::http::HeaderMap,
    tx: &str,
) -> Result<Interaction, axum::response::Response> {
    let browser = crate::session::read_cookie(headers, crate::session::BROWSER_COOKIE);
    state
        .interactions
        .get(tx, browser.as_deref())
        .map_err(|e| crate::pages::ErrorPage::interaction(state, &e))
}

/// The interaction a form was posted for: same browser, right anti-CSRF
/// token; or the answer that says why not.
#[expect(
    clippy::result_large_err,
    reason = "the error is the page to answer with, once per request"
)]
pub fn for_form(
    state: &crate::AppState,
    headers: &axum::http::HeaderMap,
    tx: &str,
    csrf: &str,
) -> Result<Interaction, axum::response::Response> {
    let browser = crate::session::read_cookie(headers, crate::session::BROWSER_COOKIE);
    state
        .interactions
        .check_form(tx, browser.as_deref(), csrf)
        .map_err(|e| crate::pages::ErrorPage::interaction(state, &e))
}
