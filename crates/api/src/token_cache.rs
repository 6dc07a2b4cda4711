//! Verified-token cache: the hot path of step 10.
//!
//! A client sends the same access token with every request until it expires,
//! and each full validation costs a signature verification. Once a token has
//! passed every check in `validate.rs`, its result is remembered here, so the
//! next request with the same token costs one SHA-256 and one map lookup.
//!
//! - The key is the SHA-256 of the token, never the token itself: a heap dump
//!   of this map yields no usable bearer token (RFC 6750 section 5.3 asks
//!   that tokens be protected against disclosure).
//! - An entry is never returned after the token's `exp` (RFC 7519 section
//!   4.1.4); it is as valid as the token and no longer.
//! - The map is bounded: when full, expired entries go first, then the ones
//!   that expire soonest, so a flood of valid tokens cannot grow memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::validate::VerifiedToken;

/// SHA-256 of a token: the cache key, and (its first bytes) the token's name in logs.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// A short prefix to name a token in logs without revealing it.
    pub fn short(&self) -> String {
        self.0[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Tokens already verified, until they expire.
pub struct TokenCache {
    capacity: usize,
    entries: Mutex<HashMap<TokenHash, Arc<VerifiedToken>>>,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The verified token, if it was verified before and has not expired by `now`
    /// (seconds since the Unix epoch).
    pub fn get(&self, hash: &TokenHash, now: u64) -> Option<Arc<VerifiedToken>> {
        let mut entries = self.lock();
        match entries.get(hash) {
            Some(token) if now < token.expires_at => Some(token.clone()),
            Some(_) => {
                entries.remove(hash);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, hash: TokenHash, token: Arc<VerifiedToken>, now: u64) {
        // A capacity of 0 turns the cache off: every request is validated.
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&hash) {
            entries.retain(|_, cached| now < cached.expires_at);
        }
        if entries.len() >= self.capacity && !entries.contains_key(&hash) {
            let soonest = entries
                .iter()
                .min_by_key(|(_, cached)| cached.expires_at)
                .map(|(k, _)| *k);
            if let Some(soonest) = soonest {
                entries.remove(&soonest);
            }
        }
        entries.insert(hash, token);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The map stays usable even if a thread panicked while holding the lock:
    /// every operation leaves it consistent.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Arc<VerifiedToken>>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_at: u64) -> Arc<VerifiedToken> {
        Arc::new(VerifiedToken {
            sub: "1".into(),
            client_id: "c".into(),
            scopes: vec![],
            expires_at,
            issuer: "i".into(),
            checks: vec![],
        })
    }

    #[test]
    fn an_entry_never_outlives_exp_rfc7519_4_1_4() {
        let cache = TokenCache::new(10);
        let hash = TokenHash::of("a.b.c");
        cache.insert(hash, token(100), 50);
        assert!(cache.get(&hash, 99).is_some());
        assert!(cache.get(&hash, 100).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = TokenCache::new(3);
        for i in 0..10u64 {
            cache.insert(TokenHash::of(&i.to_string()), token(1_000 + i), 0);
        }
        assert_eq!(cache.len(), 3);
        // The soonest-expiring entries were evicted; the latest ones remain.
        assert!(cache.get(&TokenHash::of("9"), 0).is_some());
        assert!(cache.get(&TokenHash::of("0"), 0).is_none());
    }

    #[test]
    fn expired_entries_are_evicted_first() {
        let cache = TokenCache::new(2);
        cache.insert(TokenHash::of("old"), token(10), 0);
        cache.insert(TokenHash::of("long"), token(1_000), 0);
        cache.insert(TokenHash::of("new"), token(500), 20);
        assert!(cache.get(&TokenHash::of("long"), 20).is_some());
        assert!(cache.get(&TokenHash::of("new"), 20).is_some());
    }
}
