//! The session store: where the BFF keeps what a browser's cookie stands
//! for. One front for every backend (memory, SQLite, Redis) that does the
//! same three things to everything it writes:
//!
//! - keys are digests: a session is kept under SHA-256 of its cookie value,
//!   never the value itself, so a copy of the store names no cookie;
//! - values are sealed ([`super::seal`]): tokens and PKCE verifiers are
//!   encrypted with a key from configuration;
//! - expiry is by the BFF's clock.
//!
//! It keeps two kinds of records. A *browser session* (tower-sessions'
//! record: pending logins, which login this browser holds) is written at the
//! end of any request that changed it. A *login* (the user and their
//! tokens) is written only by the callback and the refresh, versioned, so
//! that no request can put an older token set back ([`Store::replace_login`]).

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use clock::Clock;
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tower_sessions::{
    Expiry, SessionManagerLayer, SessionStore,
    cookie::SameSite,
    session::{Id, Record},
    session_store,
};

use super::{
    COOKIE_NAME,
    backend::{Backend, BackendError, Index, LoginIndex, real_now_ms},
    memory::Memory,
    redis::Redis,
    seal::{SealError, Sealer},
    sqlite::Sqlite,
};
use storage::redacted;

use crate::config::Config;

/// How often expired records are swept out (memory and SQLite).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("a stored record is not what this BFF writes: {0}")]
    Corrupt(String),
}

/// The session store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    sealer: Arc<Sealer>,
    clock: Clock,
    kind: &'static str,
}

/// The kind of store only: never a record.
impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store({})", self.kind)
    }
}

/// A digest that names a record, with what it is for in front so that two
/// kinds of records can never share a name.
fn slot(kind: &str, secret: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(kind.as_bytes());
    hash.update(b"\n");
    hash.update(secret.as_bytes());
    URL_SAFE_NO_PAD.encode(hash.finalize())
}

/// The session store's sealing keys: the configured ones, else the key
/// file's (made when missing); a store that lives only in this process may
/// have a random one.
fn sealing_keys(config: &Config, ephemeral: bool) -> anyhow::Result<Vec<String>> {
    if !config.session_keys.is_empty() {
        return Ok(config.session_keys.clone());
    }
    if ephemeral {
        return Ok(vec![Sealer::new_key()]);
    }
    let path = &config.session_key_file;
    let shown = path.display();
    match std::fs::read_to_string(path) {
        Ok(key) => Ok(vec![key.trim().to_owned()]),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("--session-key-file {shown}: {e}"))?;
            }
            let key = Sealer::new_key();
            write_private(path, &key)
                .map_err(|e| anyhow::anyhow!("--session-key-file {shown}: {e}"))?;
            tracing::info!(file = %shown, "made a new session key");
            Ok(vec![key])
        }
        Err(e) => Err(anyhow::anyhow!("--session-key-file {shown}: {e}")),
    }
}

/// Writes a file only its owner may read.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

impl Store {
    /// Opens the store `--session-store` names, with the sealing keys of
    /// the configuration; a bad URL or key fails here, at start.
    pub async fn open(config: &Config, clock: Clock) -> anyhow::Result<Store> {
        let url = config.session_store.as_str();
        let shown = redacted(url);
        let fail = |e: &dyn fmt::Display| anyhow::anyhow!("--session-store {shown}: {e}");
        let (backend, kind): (Arc<dyn Backend>, _) = if url == "memory" {
            (Arc::new(Memory::default()), "memory")
        } else if url.starts_with("sqlite:") {
            (
                Arc::new(Sqlite::open(url).await.map_err(|e| fail(&e))?),
                "sqlite",
            )
        } else if url.starts_with("redis") || url.starts_with("valkey") {
            let redis = Redis::connect(url, &config.redis_key_prefix)
                .await
                .map_err(|e| fail(&e))?;
            (Arc::new(redis), "redis")
        } else {
            return Err(fail(
                &"expected memory, sqlite://… or redis://… (redis-sentinel://, redis-cluster://)",
            ));
        };
        let keys = sealing_keys(config, kind == "memory")?;
        let sealer =
            Sealer::from_encoded(&keys).map_err(|e| anyhow::anyhow!("--session-keys: {e}"))?;
        let store = Store {
            backend,
            sealer: Arc::new(sealer),
            clock,
            kind,
        };
        tokio::spawn(store.clone().sweep_forever());
        Ok(store)
    }

    async fn sweep_forever(self) {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = self.backend.sweep(self.clock.now()).await {
                tracing::warn!(error = %e, "sweeping expired sessions failed");
            }
        }
    }

    /// The session layer with the BFF's cookie rules: `__Host-` prefix,
    /// `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`. The
    /// cookie lasts as long as the browser; the session model sets each
    /// record's expiry itself, by the BFF's clock.
    pub fn layer(&self) -> SessionManagerLayer<Store> {
        SessionManagerLayer::new(self.clone())
            .with_name(COOKIE_NAME)
            .with_secure(true)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_path("/")
            .with_expiry(Expiry::OnSessionEnd)
    }

    fn seal_json(&self, slot: &str, value: &impl Serialize) -> Result<Vec<u8>, StoreError> {
        let json = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(self.sealer.seal(slot, &json))
    }

    fn open_json<T: DeserializeOwned>(&self, slot: &str, sealed: &[u8]) -> Result<T, StoreError> {
        let json = self.sealer.open(slot, sealed)?;
        serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    // ---- records of their own, beside the sessions ----------------------

    /// Keeps `value` under `kind` and `id` until `expires_at`: data a
    /// session refers to by id but does not carry (the flow inspector's
    /// trace), so that the session record every request loads stays small.
    pub async fn put_record<T: Serialize>(
        &self,
        kind: &str,
        id: &str,
        value: &T,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let slot = slot(kind, id);
        let sealed = self.seal_json(&slot, value)?;
        if !self
            .backend
            .create_session(&slot, &sealed, expires_at)
            .await?
        {
            self.backend
                .update_session(&slot, &sealed, expires_at)
                .await?;
        }
        Ok(())
    }

    /// The record under `kind` and `id`, if it is there and not expired.
    pub async fn record<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let slot = slot(kind, id);
        match self.backend.load_session(&slot, self.clock.now()).await? {
            Some(sealed) => Ok(Some(self.open_json(&slot, &sealed)?)),
            None => Ok(None),
        }
    }

    // ---- logins: the user and their tokens ----------------------------

    /// Stores a new login (after the callback), until `expires_at`.
    pub async fn insert_login<T: Serialize>(
        &self,
        id: &str,
        issuer: &str,
        sid: Option<&str>,
        sub: &str,
        login: &T,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let slot = slot("login", id);
        let sid = sid.map(|sid| self::slot("sid", &format!("{issuer}\n{sid}")));
        let sub = self::slot("sub", &format!("{issuer}\n{sub}"));
        let index = LoginIndex {
            sid: sid.as_deref(),
            sub: &sub,
        };
        let sealed = self.seal_json(&slot, login)?;
        Ok(self
            .backend
            .insert_login(&slot, &index, &sealed, expires_at)
            .await?)
    }

    /// A login and its version; `None` once it has ended. A login sealed
    /// with a key no longer configured counts as ended.
    pub async fn login<T: DeserializeOwned>(
        &self,
        id: &str,
    ) -> Result<Option<(T, u64)>, StoreError> {
        let slot = slot("login", id);
        let Some((version, sealed)) = self.backend.load_login(&slot, self.clock.now()).await?
        else {
            return Ok(None);
        };
        match self.open_json(&slot, &sealed) {
            Ok(login) => Ok(Some((login, version))),
            Err(StoreError::Seal(e)) => {
                tracing::warn!(error = %e, "a login could not be opened; treating it as ended");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Replaces a login that is still at `version`: the only way its tokens
    /// change. `false` when another write came first (or it ended).
    pub async fn replace_login<T: Serialize>(
        &self,
        id: &str,
        version: u64,
        login: &T,
    ) -> Result<bool, StoreError> {
        let slot = slot("login", id);
        let sealed = self.seal_json(&slot, login)?;
        Ok(self.backend.replace_login(&slot, version, &sealed).await?)
    }

    pub async fn delete_login(&self, id: &str) -> Result<(), StoreError> {
        Ok(self.backend.delete_login(&slot("login", id)).await?)
    }

    /// Ends every login of a provider session (`sid`) or of a user (`sub`).
    pub async fn end_logins(
        &self,
        issuer: &str,
        sid: Option<&str>,
        sub: Option<&str>,
    ) -> Result<usize, StoreError> {
        let ended = match (sid, sub) {
            (Some(sid), _) => {
                let key = slot("sid", &format!("{issuer}\n{sid}"));
                self.backend.delete_logins(Index::Sid(&key)).await?
            }
            (None, Some(sub)) => {
                let key = slot("sub", &format!("{issuer}\n{sub}"));
                self.backend.delete_logins(Index::Sub(&key)).await?
            }
            (None, None) => 0,
        };
        Ok(ended)
    }

    /// `true` the first time `value` is presented for `purpose` (a logout
    /// token's `jti`, a callback's `state`), shared by every instance on the
    /// same store; remembered until `expires_at`.
    pub async fn first_use(
        &self,
        purpose: &str,
        value: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let key = slot(purpose, value);
        Ok(self
            .backend
            .first_use(&key, expires_at, self.clock.now())
            .await?)
    }

    /// Takes the lease `name` (real time, `ttl` long, renewed in the
    /// background while held); `None` while someone else holds it.
    pub async fn lease(&self, name: &str, ttl: Duration) -> Result<Option<Lease>, StoreError> {
        let key = slot("lease", name);
        let owner = crate::random_token();
        let ttl_ms = ttl.as_millis() as i64;
        if !self
            .backend
            .acquire(&key, &owner, real_now_ms() + ttl_ms)
            .await?
        {
            return Ok(None);
        }
        let backend = self.backend.clone();
        let (renew_key, renew_owner) = (key.clone(), owner.clone());
        let renewal = tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                match backend
                    .renew(&renew_key, &renew_owner, real_now_ms() + ttl_ms)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("a lease was lost while held");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "could not renew a lease"),
                }
            }
        });
        Ok(Some(Lease {
            backend: self.backend.clone(),
            key,
            owner,
            renewal,
        }))
    }
}

/// A held lease: renewed until released; dropped without release, it
/// simply runs out.
pub struct Lease {
    backend: Arc<dyn Backend>,
    key: String,
    owner: String,
    renewal: JoinHandle<()>,
}

impl Lease {
    pub async fn release(self) {
        self.renewal.abort();
        if let Err(e) = self.backend.release(&self.key, &self.owner).await {
            tracing::warn!(error = %e, "could not release a lease; it will run out");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

// ---- browser sessions: tower-sessions' records ---------------------------

fn to_session_error(e: impl fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

/// What is sealed of a tower-sessions record: its data (the id is the
/// cookie, kept only as the digest that names the slot).
#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    data: std::collections::HashMap<String, serde_json::Value>,
    expiry_date: i64,
}

impl Store {
    fn session_slot(id: &Id) -> String {
        slot("session", &id.to_string())
    }

    fn sealed_record(&self, slot: &str, record: &Record) -> session_store::Result<Vec<u8>> {
        let sealed = Sealed {
            data: record.data.clone(),
            expiry_date: record.expiry_date.unix_timestamp(),
        };
        self.seal_json(slot, &sealed).map_err(to_session_error)
    }
}

#[async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let slot = Store::session_slot(&record.id);
            let sealed = self.sealed_record(&slot, record)?;
            let expires_at = record.expiry_date.unix_timestamp();
            // A fresh id until one is free: never overwrite another session.
            if self
                .backend
                .create_session(&slot, &sealed, expires_at)
                .await
                .map_err(to_session_error)?
            {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    /// Updates a session that still exists, and only then, in one step of
    /// the backend: a request that loaded the session before a logout
    /// deleted it cannot write it back.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let slot = Store::session_slot(&record.id);
        let sealed = self.sealed_record(&slot, record)?;
        self.backend
            .update_session(&slot, &sealed, record.expiry_date.unix_timestamp())
            .await
            .map_err(to_session_error)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let slot = Store::session_slot(id);
        let Some(sealed) = self
            .backend
            .load_session(&slot, self.clock.now())
            .await
            .map_err(to_session_error)?
        else {
            return Ok(None);
        };
        let sealed: Sealed = match self.open_json(&slot, &sealed) {
            Ok(s) => s,
            // Sealed with a key no longer configured: as good as gone.
            Err(StoreError::Seal(_)) => return Ok(None),
            Err(e) => return Err(to_session_error(e)),
        };
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(sealed.expiry_date)
            .map_err(to_session_error)?;
        Ok(Some(Record {
            id: *id,
            data: sealed.data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.backend
            .delete_session(&Store::session_slot(id))
            .await
            .map_err(to_session_error)
    }
}
