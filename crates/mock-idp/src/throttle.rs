//! Password guessing, limited (NIST SP 800-63B 5.2.2; OWASP Authentication
//! Cheat Sheet): every sign-in attempt is counted against the account it
//! names and the address it comes from, before its password is checked.
//!
//! - Counting is governor's GCRA, one bucket per key, updated atomically:
//!   fifty concurrent guesses at one account get five checks, not fifty.
//! - An account allows a few attempts, then one a minute (by default); an
//!   address allows more, for several people behind one NAT.
//! - The answer to a throttled attempt is the same whether or not the
//!   account exists, and says when to try again.
//! - A successful sign-in gives the account a fresh bucket: the person who
//!   finally types the right password is not held back afterwards.
//! - Time is the IdP's clock.

use std::{
    collections::HashMap, hash::Hash, net::IpAddr, num::NonZeroU32, sync::Mutex, time::Duration,
};

use clock::Clock;
use governor::{
    Quota, RateLimiter, middleware::NoOpMiddleware, nanos::Nanos, state::keyed::HashMapStateStore,
};
use serde::Deserialize;

/// How many attempts, and how fast they come back.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Attempts an account takes at once.
    pub account_attempts: u32,
    /// Then one more attempt every this many seconds.
    pub account_refill_seconds: u64,
    /// Attempts an address takes at once.
    pub address_attempts: u32,
    /// Then one more every this many seconds.
    pub address_refill_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            account_attempts: 5,
            account_refill_seconds: 60,
            address_attempts: 30,
            address_refill_seconds: 2,
        }
    }
}

/// governor's view of the IdP's clock.
#[derive(Clone)]
struct IdpClock(Clock);

impl governor::clock::Clock for IdpClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(Duration::from_secs(
            u64::try_from(self.0.now()).unwrap_or(0),
        ))
    }
}

type Limiter<K> = RateLimiter<K, HashMapStateStore<K>, IdpClock, NoOpMiddleware<Nanos>>;

fn limiter<K: Hash + Eq + Clone>(
    attempts: u32,
    refill_seconds: u64,
    clock: &IdpClock,
) -> Limiter<K> {
    let burst = NonZeroU32::new(attempts.max(1)).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(Duration::from_secs(refill_seconds.max(1)))
        .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
        .allow_burst(burst);
    RateLimiter::hashmap_with_clock(quota, clock.clone())
}

/// The sign-in attempts of every account and address.
pub struct Throttle {
    accounts: Limiter<(String, u64)>,
    addresses: Limiter<IpAddr>,
    /// Each account's bucket generation: a success starts a new one.
    generations: Mutex<HashMap<String, u64>>,
    clock: IdpClock,
}

impl Throttle {
    pub fn new(limits: Limits, clock: Clock) -> Throttle {
        let clock = IdpClock(clock);
        Throttle {
            accounts: limiter(
                limits.account_attempts,
                limits.account_refill_seconds,
                &clock,
            ),
            addresses: limiter(
                limits.address_attempts,
                limits.address_refill_seconds,
                &clock,
            ),
            generations: Mutex::default(),
            clock,
        }
    }

    fn generation(&self, account: &str) -> u64 {
        let generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        generations.get(account).copied().unwrap_or(0)
    }

    /// Counts an attempt to sign in as `username` from `address`; `Err` with
    /// the time to wait when either has had too many.
    pub fn attempt(&self, username: &str, address: IpAddr) -> Result<(), Duration> {
        let now = governor::clock::Clock::now(&self.clock);
        let wait = |not_until: governor::NotUntil<Nanos>| not_until.wait_time_from(now);
        self.addresses.check_key(&address).map_err(wait)?;
        let account = normalize(username);
        let generation = self.generation(&account);
        self.accounts
            .check_key(&(account, generation))
            .map_err(wait)
    }

    /// The account signed in: its next attempts start from a full bucket.
    pub fn succeeded(&self, username: &str) {
        let mut generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        *generations.entry(normalize(username)).or_default() += 1;
    }

    /// Forgets buckets that are full again (they would allow every attempt
    /// anyway), so a flood of made-up usernames does not pile up.
    pub fn forget_idle(&self) {
        self.accounts.retain_recent();
        self.addresses.retain_recent();
    }
}

/// The address a request came from (the TCP peer; a proxy in front of the
/// IdP would have to pass the client's own). Unknown when the server was
/// started without it: then every request shares one address.
pub struct ClientAddress(pub IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(ClientAddress(peer.unwrap_or(IpAddr::from([0, 0, 0, 0]))))
    }
}

/// Usernames are email addresses, matched ignoring case.
fn normalize(username: &str) -> String {
    username.trim().to_lowercase()
}

/// Whole seconds to wait, rounded up: what the person is told.
pub fn seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }

    #[test]
    fn an_account_takes_a_few_attempts_then_one_a_minute_nist_800_63b_5_2_2() {
        let time = clock::ManualClock::starting_now();
        let throttle = Throttle::new(Limits::default(), time.clock());
        for _ in 0..5 {
            assert!(throttle.attempt("alice@example.com", address()).is_ok());
        }
        // Another spelling of the same account is the same account.
        let wait = throttle
            .attempt("ALICE@example.com ", address())
            .unwrap_err();
        assert_eq!(seconds(wait), 60);
        // Another account is not held back.
        assert!(throttle.attempt("bob@example.com", address()).is_ok());
        time.advance(Duration::from_secs(60));
        assert!(throttle.attempt("alice@example.com", address()).is_ok());
        assert!(throttle.attempt("alice@example.com", address()).is_err());
    }

    #[test]
    fn a_success_gives_the_account_a_fresh_bucket() {
        let time = clock::ManualClock::starting_now();
        let throttle = Throttle::new(Limits::default(), time.clock());
        for _ in 0..5 {
            throttle.attempt("alice@example.com", address()).unwrap();
        }
        throttle.succeeded("Alice@Example.com");
        assert!(throttle.attempt("alice@example.com", address()).is_ok());
    }

    #[test]
    fn an_address_is_limited_across_accounts() {
        let time = clock::ManualClock::starting_now();
        let limits = Limits {
            address_attempts: 3,
            ..Limits::default()
        };
        let throttle = Throttle::new(limits, time.clock());
        for n in 0..3 {
            assert!(
                throttle
                    .attempt(&format!("user{n}@example.com"), address())
                    .is_ok()
            );
        }
        assert!(throttle.attempt("user9@example.com", address()).is_err());
        let elsewhere = IpAddr::from([10, 0, 0, 2]);
        assert!(throttle.attempt("user9@example.com", elsewhere).is_ok());
    }

    #[test]
    fn the_same_wait_whether_or_not_the_account_exists() {
        let time = clock::ManualClock::starting_now();
        let throttle = Throttle::new(Limits::default(), time.clock());
        let waits: Vec<_> = ["alice@example.com", "nobody@example.com"]
            .iter()
            .map(|user| {
                for _ in 0..5 {
                    throttle.attempt(user, address()).unwrap();
                }
                throttle.attempt(user, address()).unwrap_err()
            })
            .collect();
        assert_eq!(waits[0], waits[1]);
    }
}
