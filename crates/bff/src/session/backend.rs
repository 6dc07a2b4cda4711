//! What a session store must do, whatever keeps the bytes: memory, SQLite
//! or Redis. Keys arrive already digested and values already sealed
//! ([`super::store`]); a backend only stores, compares and expires them,
//! each operation atomic on its own.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

/// Unix milliseconds, real time: leases coordinate real processes, so they
/// run on real time whatever the BFF's clock says.
pub fn real_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A store failure, in words without secrets.
#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct BackendError(pub String);

impl BackendError {
    pub fn from(e: impl std::fmt::Display) -> BackendError {
        BackendError(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, BackendError>;

/// Which sessions a login belongs to, for back-channel logout: digests of
/// the provider's `sid` and `sub`.
pub struct LoginIndex<'a> {
    pub sid: Option<&'a str>,
    pub sub: &'a str,
}

/// One of a login's indexes.
#[derive(Clone, Copy)]
pub enum Index<'a> {
    Sid(&'a str),
    Sub(&'a str),
}

#[async_trait]
pub trait Backend: Send + Sync {
    /// Stores a new browser session; `false` if the key is taken.
    async fn create_session(&self, key: &str, value: &[u8], expires_at: i64) -> Result<bool>;
    /// Replaces a browser session that still exists, in one step: a
    /// session deleted meanwhile (a logout) stays deleted.
    async fn update_session(&self, key: &str, value: &[u8], expires_at: i64) -> Result<()>;
    async fn load_session(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>>;
    async fn delete_session(&self, key: &str) -> Result<()>;

    /// Stores a new login (its tokens) at version 0.
    async fn insert_login(
        &self,
        key: &str,
        index: &LoginIndex<'_>,
        value: &[u8],
        expires_at: i64,
    ) -> Result<()>;
    /// A login and its version.
    async fn load_login(&self, key: &str, now: i64) -> Result<Option<(u64, Vec<u8>)>>;
    /// Replaces a login if it is still at `version` (then it is at
    /// `version + 1`); `false` if another write came first or it is gone.
    async fn replace_login(&self, key: &str, version: u64, value: &[u8]) -> Result<bool>;
    async fn delete_login(&self, key: &str) -> Result<()>;
    /// Deletes every login under an index; how many there were.
    async fn delete_logins(&self, index: Index<'_>) -> Result<usize>;

    /// `true` the first time a key is presented before `expires_at`.
    async fn first_use(&self, key: &str, expires_at: i64, now: i64) -> Result<bool>;

    /// Takes the lease `key` for `owner` until `until_ms` (Unix
    /// milliseconds, real time); `false` while another owner holds it.
    async fn acquire(&self, key: &str, owner: &str, until_ms: i64) -> Result<bool>;
    /// Extends a lease the owner still holds; `false` if it lost it.
    async fn renew(&self, key: &str, owner: &str, until_ms: i64) -> Result<bool>;
    async fn release(&self, key: &str, owner: &str) -> Result<()>;

    /// Drops what has expired (a no-op where the backend expires by itself).
    async fn sweep(&self, now: i64) -> Result<()>;
}
