//! Server-side sessions: where the BFF keeps every token. The browser holds
//! only an opaque, `HttpOnly` cookie (the IETF "OAuth 2.0 for Browser-Based
//! Applications" BFF pattern).
//!
//! - Cookie `__Host-bff`: `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no
//!   `Domain` (RFC 6265bis `__Host-` prefix). Browsers treat
//!   http://localhost as a secure origin, so this works in development.
//! - Stores chosen by URL: `sqlite://…` (default, under `data/`), `memory`,
//!   `redis://…` for several BFF instances sharing sessions. A small
//!   in-process cache sits in front of Redis.
//! - Idle lifetime (tower-sessions' inactivity expiry) and absolute lifetime
//!   (checked here against the sign-in time).

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use fred::prelude::{ClientLike, Config as RedisConfig, KeysInterface, Pool as RedisPool};
use serde::{Deserialize, Serialize};
use tower_sessions::{
    Expiry, MemoryStore, Session, SessionManagerLayer, SessionStore,
    cookie::SameSite,
    session::{Id, Record},
    session_store::{self, ExpiredDeletion},
};
use tower_sessions_sqlx_store::SqliteStore;

use crate::config::Config;

pub const COOKIE_NAME: &str = "__Host-bff";

/// A login under way in this browser (several tabs may each have one).
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub pkce_verifier: String,
    pub nonce: String,
    pub return_url: String,
    pub started_at: i64,
}

/// The tokens of a signed-in session. Never leaves the server.
#[derive(Clone, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub access_expires_at: i64,
    pub refresh_token: Option<String>,
    pub id_token: String,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_expires_at", &self.access_expires_at)
            .finish_non_exhaustive()
    }
}

/// Who is signed in, for the pages and `/bff/user`: claims, never tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub sub: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The ID token's claims, as the UI may show them.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// A signed-in session.
/// No `Debug`: it holds the tokens and the anti-CSRF token.
#[derive(Clone, Serialize, Deserialize)]
pub struct SignedIn {
    pub user: User,
    pub tokens: Tokens,
    pub signed_in_at: i64,
    /// Anti-CSRF token for the plain HTML sign-out form.
    pub csrf: String,
}

const PENDING_KEY: &str = "pending_logins";
const SIGNED_IN_KEY: &str = "signed_in";
/// How many logins may be under way at once in one browser.
const MAX_PENDING: usize = 5;
/// How long a login may take, from `/bff/login` to the callback.
const PENDING_LIFETIME: i64 = 600;

/// Session helpers, over tower-sessions' `Session`.
pub struct Sessions;

impl Sessions {
    /// Adds a login attempt, dropping stale ones and the oldest beyond the cap.
    pub async fn add_pending(session: &Session, login: PendingLogin) -> session_store::Result<()> {
        let mut pending = Sessions::live_pending(session).await;
        pending.push(login);
        let excess = pending.len().saturating_sub(MAX_PENDING);
        pending.drain(..excess);
        session
            .insert(PENDING_KEY, pending)
            .await
            .map_err(to_store_error)
    }

    /// Takes the login attempt with this `state`: one use only.
    pub async fn take_pending(session: &Session, state: &str) -> Option<PendingLogin> {
        let mut pending = Sessions::live_pending(session).await;
        let position = pending.iter().position(|p| p.state == state)?;
        let login = pending.remove(position);
        session.insert(PENDING_KEY, pending).await.ok()?;
        Some(login)
    }

    async fn live_pending(session: &Session) -> Vec<PendingLogin> {
        let now = crate::now();
        session
            .get::<Vec<PendingLogin>>(PENDING_KEY)
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .filter(|p| now - p.started_at < PENDING_LIFETIME)
            .collect()
    }

    /// Stores the signed-in state after a successful callback.
    pub async fn sign_in(session: &Session, signed_in: &SignedIn) -> session_store::Result<()> {
        session
            .insert(SIGNED_IN_KEY, signed_in)
            .await
            .map_err(to_store_error)
    }

    /// The signed-in state, if the session has one that has not outlived
    /// its absolute lifetime (then the session is ended here).
    pub async fn signed_in(session: &Session, absolute_seconds: i64) -> Option<SignedIn> {
        let signed_in: SignedIn = session.get(SIGNED_IN_KEY).await.ok().flatten()?;
        if crate::now() - signed_in.signed_in_at >= absolute_seconds {
            let _ = session.flush().await;
            return None;
        }
        Some(signed_in)
    }
}

fn to_store_error(e: tower_sessions::session::Error) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

/// The session store chosen by `--session-store`.
#[derive(Clone)]
pub enum Store {
    Memory(MemoryStore),
    Sqlite(SqliteStore),
    Redis(Cached),
}

/// The kind of store only: the memory store's own `Debug` would print every
/// session, tokens and all.
impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Store::Memory(_) => "Store::Memory",
            Store::Sqlite(_) => "Store::Sqlite",
            Store::Redis(_) => "Store::Redis",
        })
    }
}

impl Store {
    /// Opens the store a URL names; a bad URL fails here, at start.
    pub async fn open(config: &Config) -> anyhow::Result<Store> {
        let url = config.session_store.as_str();
        let shown = crate::config::redacted(url);
        let fail = |e: &dyn fmt::Display| anyhow::anyhow!("--session-store {shown}: {e}");
        if url == "memory" {
            return Ok(Store::Memory(MemoryStore::default()));
        }
        if url.starts_with("sqlite:") {
            let options: sqlx::sqlite::SqliteConnectOptions = url.parse().map_err(|e| fail(&e))?;
            let options = options.create_if_missing(true);
            if let Some(dir) = std::path::Path::new(options.get_filename()).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
            }
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .map_err(|e| fail(&e))?;
            let store = SqliteStore::new(pool);
            store.migrate().await.map_err(|e| fail(&e))?;
            tokio::spawn(
                store
                    .clone()
                    .continuously_delete_expired(tokio::time::Duration::from_secs(300)),
            );
            return Ok(Store::Sqlite(store));
        }
        if url.starts_with("redis://") {
            let redis = RedisStore::connect(url, &config.redis_key_prefix)
                .await
                .map_err(|e| fail(&e))?;
            return Ok(Store::Redis(Cached::new(redis)));
        }
        Err(fail(&"expected sqlite://…, memory or redis://…"))
    }

    /// The session layer with the BFF's cookie rules.
    pub fn layer(self, idle_seconds: i64) -> SessionManagerLayer<Store> {
        SessionManagerLayer::new(self)
            .with_name(COOKIE_NAME)
            .with_secure(true)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_path("/")
            // Every request saves, so the idle lifetime slides with use.
            .with_always_save(true)
            .with_expiry(Expiry::OnInactivity(
                tower_sessions::cookie::time::Duration::seconds(idle_seconds),
            ))
    }
}

#[async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Store::Memory(s) => s.create(record).await,
            Store::Sqlite(s) => s.create(record).await,
            Store::Redis(s) => s.create(record).await,
        }
    }

    /// Updates a session that still exists, and only then: a request that
    /// loaded the session before a logout deleted it must not write it back
    /// (tokens and all) when it ends. New sessions go through `create`.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Store::Memory(s) => {
                if s.load(&record.id).await?.is_some() {
                    s.save(record).await?;
                }
                Ok(())
            }
            Store::Sqlite(s) => {
                if s.load(&record.id).await?.is_some() {
                    s.save(record).await?;
                }
                Ok(())
            }
            Store::Redis(s) => s.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Store::Memory(s) => s.load(id).await,
            Store::Sqlite(s) => s.load(id).await,
            Store::Redis(s) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Store::Memory(s) => s.delete(id).await,
            Store::Sqlite(s) => s.delete(id).await,
            Store::Redis(s) => s.delete(id).await,
        }
    }
}

/// Sessions in Redis, as JSON under `{prefix}{id}`, expiring with the
/// session (so Redis itself forgets idle sessions).
#[derive(Clone)]
pub struct RedisStore {
    pool: RedisPool,
    prefix: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn backend(e: impl fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

impl RedisStore {
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<RedisStore> {
        let config = RedisConfig::from_url(url)?;
        let pool = RedisPool::new(config, None, None, None, 2)?;
        // fred's pool does not connect until told to.
        pool.init().await?;
        Ok(RedisStore {
            pool,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, id: &Id) -> String {
        format!("{}{id}", self.prefix)
    }

    /// Writes a record: `NX` only if the id is new, `XX` only if it exists;
    /// `false` when that condition failed.
    async fn write(
        &self,
        record: &Record,
        condition: fred::types::SetOptions,
    ) -> session_store::Result<bool> {
        let json = serde_json::to_string(record).map_err(backend)?;
        let expire_at = record.expiry_date.unix_timestamp();
        let set: Option<String> = self
            .pool
            .set(
                self.key(&record.id),
                json,
                Some(fred::types::Expiration::EXAT(expire_at)),
                Some(condition),
                false,
            )
            .await
            .map_err(backend)?;
        Ok(set.is_some())
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A fresh id until one is free (a collision of 128 random bits is
        // not expected, but SET NX makes it impossible to overwrite).
        while !self.write(record, fred::types::SetOptions::NX).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    /// Only an existing session is updated (`SET … XX`): one deleted by a
    /// logout stays deleted.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.write(record, fred::types::SetOptions::XX)
            .await
            .map(|_| ())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let json: Option<String> = self.pool.get(self.key(id)).await.map_err(backend)?;
        json.map(|j| serde_json::from_str(&j).map_err(backend))
            .transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let _: i64 = self.pool.del(self.key(id)).await.map_err(backend)?;
        Ok(())
    }
}

/// A small in-process read cache in front of Redis: a session read again
/// within `CACHE_TTL` is served from memory. Writes and deletes go through
/// to Redis at once. Another instance may see a change (a logout) up to
/// `CACHE_TTL` late, and never writes a deleted session back; keep it short.
#[derive(Clone)]
pub struct Cached {
    inner: RedisStore,
    entries: Arc<Mutex<HashMap<Id, (Record, Instant)>>>,
}

const CACHE_TTL: Duration = Duration::from_secs(1);
const CACHE_CAPACITY: usize = 10_000;

impl fmt::Debug for Cached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("inner", &self.inner)
            .finish()
    }
}

impl Cached {
    pub fn new(inner: RedisStore) -> Cached {
        Cached {
            inner,
            entries: Arc::default(),
        }
    }

    fn remember(&self, record: &Record) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_CAPACITY {
            let now = Instant::now();
            entries.retain(|_, (_, at)| now.duration_since(*at) < CACHE_TTL);
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(record.id, (record.clone(), Instant::now()));
    }

    fn forget(&self, id: &Id) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    fn recall(&self, id: &Id) -> Option<Record> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(id)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(record, _)| record.clone())
    }
}

#[async_trait]
impl SessionStore for Cached {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.inner.create(record).await?;
        self.remember(record);
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        if self
            .inner
            .write(record, fred::types::SetOptions::XX)
            .await?
        {
            self.remember(record);
        } else {
            self.forget(&record.id);
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        if let Some(record) = self.recall(id) {
            return Ok(Some(record));
        }
        let record = self.inner.load(id).await?;
        match &record {
            Some(r) => self.remember(r),
            None => self.forget(id),
        }
        Ok(record)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.forget(id);
        self.inner.delete(id).await
    }
}

/// `state` values whose callback this instance has taken, for as long as a
/// login may take: the session's own list is per request, so two requests
/// racing with one callback would both find their `state` there.
#[derive(Default)]
pub struct AnsweredStates(Mutex<HashMap<[u8; 32], Instant>>);

impl AnsweredStates {
    /// `true` the first time a `state` is claimed, `false` after.
    pub fn claim(&self, state: &str) -> bool {
        use sha2::{Digest, Sha256};
        let key: [u8; 32] = Sha256::digest(state.as_bytes()).into();
        let keep = Duration::from_secs(PENDING_LIFETIME as u64);
        let mut answered = self.0.lock().unwrap_or_else(|e| e.into_inner());
        answered.retain(|_, at| at.elapsed() < keep);
        answered.insert(key, Instant::now()).is_none()
    }
}
