//! A pending authorization request while the person signs in (steps 3-4) or
//! consents: the IdP keeps the validated request server-side and gives the
//! browser only an opaque id (`tx`) in the page's URL.
//!
//! - Each interaction is bound to the browser that started it (the
//!   `mockidp_browser` cookie); its forms carry an anti-CSRF token
//!   ([`crate::csrf`]). A form posted from another site, or another browser,
//!   is refused.
//! - It records what happened during it (a sign-in, a consent), which is
//!   what `prompt=login` and `prompt=consent` ask for.
//! - Interactions live ten minutes, in memory.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::http::HeaderMap;

use crate::{
    AppState,
    auth_request::AuthRequest,
    csrf::{self, Purpose},
    pages::PageError,
    secret, session,
};

/// How long a pending sign-in lives, in seconds.
const LIFETIME: i64 = 600;
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
    expires_at: i64,
    /// Answered already: kept until it expires so that the browser's back
    /// button lands somewhere useful instead of on an error.
    finished: bool,
    failed_sign_ins: u32,
    /// The person signed in during this interaction.
    pub signed_in: bool,
    /// The person allowed the request during this interaction.
    pub consented: bool,
}

/// A pending sign-in a page is shown for or a form was posted to.
pub struct Pending {
    pub tx: String,
    pub interaction: Interaction,
    /// The anti-CSRF token its forms carry.
    pub csrf: String,
}

#[derive(Clone, Default)]
pub struct Interactions(Arc<Mutex<HashMap<String, Interaction>>>);

impl Interactions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Interaction>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers a validated request for this browser; returns its id.
    pub fn start(
        &self,
        request: AuthRequest,
        browser_id: &str,
        now: i64,
    ) -> Result<String, PageError> {
        let id = secret::random_token();
        let mut map = self.lock();
        if map.len() >= MAX_INTERACTIONS {
            map.retain(|_, i| now < i.expires_at);
            if map.len() >= MAX_INTERACTIONS {
                return Err(PageError::Busy);
            }
        }
        map.insert(
            id.clone(),
            Interaction {
                request,
                browser_digest: secret::digest(browser_id),
                expires_at: now + LIFETIME,
                finished: false,
                failed_sign_ins: 0,
                signed_in: false,
                consented: false,
            },
        );
        Ok(id)
    }

    /// Counts a wrong password; after [`MAX_FAILED_SIGN_INS`] the interaction
    /// is dropped, so one page cannot be used to guess forever.
    pub fn record_failed_sign_in(&self, id: &str) -> Result<(), PageError> {
        let mut map = self.lock();
        let Some(interaction) = map.get_mut(id) else {
            return Err(PageError::UnknownRequest);
        };
        interaction.failed_sign_ins += 1;
        if interaction.failed_sign_ins >= MAX_FAILED_SIGN_INS {
            map.remove(id);
            return Err(PageError::TooManyAttempts);
        }
        Ok(())
    }

    /// Records a sign-in or a consent given during the interaction.
    pub fn record(&self, id: &str, change: impl FnOnce(&mut Interaction)) {
        if let Some(interaction) = self.lock().get_mut(id) {
            change(interaction);
        }
    }

    /// Ends an interaction (its request has been answered).
    pub fn finish(&self, id: &str) {
        self.record(id, |i| i.finished = true);
    }

    /// The interaction `id`, if it is still alive and belongs to this browser.
    fn get(
        &self,
        state: &AppState,
        id: &str,
        browser: Option<&str>,
    ) -> Result<Interaction, PageError> {
        let map = self.lock();
        let interaction = map
            .get(id)
            .filter(|i| state.clock.now() < i.expires_at)
            .ok_or(PageError::UnknownRequest)?;
        let same_browser =
            browser.is_some_and(|b| secret::same(&secret::digest(b), &interaction.browser_digest));
        if !same_browser {
            return Err(PageError::Forged);
        }
        if interaction.finished {
            let home = state
                .clients
                .get(&interaction.request.client_id)
                .and_then(|c| c.client_uri.clone());
            return Err(PageError::Finished { home });
        }
        Ok(interaction.clone())
    }
}

/// The interaction a page is shown for, checked against this browser.
pub fn for_page(state: &AppState, headers: &HeaderMap, tx: &str) -> Result<Pending, PageError> {
    let browser = session::browser(headers);
    let interaction = state.interactions.get(state, tx, browser.as_deref())?;
    let csrf = csrf::token(
        browser.as_deref().unwrap_or_default(),
        Purpose::Interaction(tx),
    );
    Ok(Pending {
        tx: tx.to_owned(),
        interaction,
        csrf,
    })
}

/// The interaction a form was posted for: same browser, right anti-CSRF
/// token.
pub fn for_form(
    state: &AppState,
    headers: &HeaderMap,
    tx: &str,
    posted_csrf: &str,
) -> Result<Pending, PageError> {
    let pending = for_page(state, headers, tx)?;
    csrf::check(
        session::browser(headers).as_deref(),
        Purpose::Interaction(tx),
        posted_csrf,
    )?;
    Ok(pending)
}
