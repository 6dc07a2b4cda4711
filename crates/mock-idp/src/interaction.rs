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
//! - Interactions live ten minutes, in memory. Anyone can start one with a
//!   GET, so they are bounded per browser, per address and per client, the
//!   oldest going first, and swept out when they expire: a flood of them
//!   from one place pushes out only its own, never shuts the door on a
//!   person elsewhere.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
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
/// Most pending sign-ins of one browser (tabs signing in at once).
const PER_BROWSER: usize = 10;
/// Most pending sign-ins started from one address (a whole office behind
/// one NAT address signs in well under this in ten minutes).
const PER_ADDRESS: usize = 1_000;
/// Most pending sign-ins of one client: each costs memory (about a
/// kilobyte), and anyone can start one.
const PER_CLIENT: usize = 10_000;
/// Wrong passwords one interaction accepts before it is dropped and the
/// person must start again from the application.
pub const MAX_FAILED_SIGN_INS: u32 = 5;

#[derive(Clone)]
pub struct Interaction {
    pub request: AuthRequest,
    browser_digest: String,
    /// Where the request that started it came from.
    address: IpAddr,
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
pub struct Interactions(Arc<Mutex<Book>>);

/// What pending sign-ins are counted by, and how many each one may hold.
const BOUNDS: [(Bound, usize); 3] = [
    (Bound::Browser, PER_BROWSER),
    (Bound::Address, PER_ADDRESS),
    (Bound::Client, PER_CLIENT),
];

#[derive(Clone, Copy)]
enum Bound {
    Browser,
    Address,
    Client,
}

/// The pending sign-ins of one browser, address or client: their ids,
/// oldest first, and how many of them are still held. An id whose
/// interaction is gone (answered and expired, or pushed out elsewhere) is
/// skipped, and dropped at the next sweep.
#[derive(Default)]
struct Queue {
    order: VecDeque<String>,
    held: usize,
}

#[derive(Default)]
struct Book {
    by_tx: HashMap<String, Interaction>,
    /// One map of queues per bound, in the order of [`BOUNDS`].
    queues: [HashMap<String, Queue>; 3],
    /// When expired sign-ins were last swept out.
    swept_at: i64,
}

impl Interaction {
    /// The browser, address or client it is counted under.
    fn key(&self, bound: Bound) -> String {
        match bound {
            Bound::Browser => self.browser_digest.clone(),
            Bound::Address => self.address.to_string(),
            Bound::Client => self.request.client_id.clone(),
        }
    }
}

impl Book {
    fn insert(&mut self, tx: String, interaction: Interaction) {
        for (n, (bound, cap)) in BOUNDS.into_iter().enumerate() {
            let key = interaction.key(bound);
            let queue = self.queues[n].entry(key.clone()).or_default();
            queue.order.push_back(tx.clone());
            queue.held += 1;
            // Its oldest make room (the new one itself is counted, not yet
            // stored, so it cannot be pushed out).
            while let Some(queue) = self.queues[n].get_mut(&key)
                && queue.held > cap
                && let Some(oldest) = queue.order.pop_front()
            {
                self.remove(&oldest);
            }
        }
        self.by_tx.insert(tx, interaction);
    }

    fn remove(&mut self, tx: &str) -> Option<Interaction> {
        let interaction = self.by_tx.remove(tx)?;
        for (n, (bound, _)) in BOUNDS.into_iter().enumerate() {
            if let Some(queue) = self.queues[n].get_mut(&interaction.key(bound)) {
                queue.held = queue.held.saturating_sub(1);
            }
        }
        Some(interaction)
    }

    /// At most once a minute: drops expired sign-ins, and forgets the ids
    /// of those gone.
    fn sweep(&mut self, now: i64) {
        if now - self.swept_at < 60 {
            return;
        }
        self.swept_at = now;
        let expired: Vec<String> = (self.by_tx.iter())
            .filter(|(_, i)| i.expires_at <= now)
            .map(|(tx, _)| tx.clone())
            .collect();
        for tx in expired {
            self.remove(&tx);
        }
        let by_tx = &self.by_tx;
        for queues in &mut self.queues {
            queues.retain(|_, queue| {
                queue.order.retain(|tx| by_tx.contains_key(tx));
                queue.held > 0
            });
        }
    }
}

impl Interactions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers a validated request for this browser, which came from
    /// `address`; returns its id. The browser's, the address's and the
    /// client's oldest pending sign-ins make room.
    pub fn start(
        &self,
        request: AuthRequest,
        browser_id: &str,
        address: IpAddr,
        now: i64,
    ) -> String {
        let id = secret::random_token();
        let mut book = self.lock();
        book.sweep(now);
        book.insert(
            id.clone(),
            Interaction {
                request,
                browser_digest: secret::digest(browser_id),
                address,
                expires_at: now + LIFETIME,
                finished: false,
                failed_sign_ins: 0,
                signed_in: false,
                consented: false,
            },
        );
        id
    }

    /// How many sign-ins are pending.
    pub fn len(&self) -> usize {
        self.lock().by_tx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts a wrong password; after [`MAX_FAILED_SIGN_INS`] the interaction
    /// is dropped, so one page cannot be used to guess forever.
    pub fn record_failed_sign_in(&self, id: &str) -> Result<(), PageError> {
        let mut book = self.lock();
        let Some(interaction) = book.by_tx.get_mut(id) else {
            return Err(PageError::UnknownRequest);
        };
        interaction.failed_sign_ins += 1;
        if interaction.failed_sign_ins >= MAX_FAILED_SIGN_INS {
            book.remove(id);
            return Err(PageError::TooManyAttempts);
        }
        Ok(())
    }

    /// Records a sign-in or a consent given during the interaction.
    pub fn record(&self, id: &str, change: impl FnOnce(&mut Interaction)) {
        if let Some(interaction) = self.lock().by_tx.get_mut(id) {
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
        let book = self.lock();
        let interaction = book
            .by_tx
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
