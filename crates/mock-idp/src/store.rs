//! What the IdP must remember across a restart, in SQLite: registered users,
//! consents, browser sessions, refresh tokens, issued access tokens (so they
//! can be revoked) and signing keys.
//!
//! `sqlite://data/mock-idp.db` by default, `sqlite::memory:` in tests.
//! Secrets that act as bearer credentials (session cookies, refresh tokens)
//! are stored only as SHA-256 digests: a copy of the database signs no one in.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    Row, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

/// One account per email address, whatever its letter case (created after
/// [`refuse_case_twins`] looked at a database made before it).
const ONE_ACCOUNT_PER_ADDRESS: &str =
    "CREATE UNIQUE INDEX IF NOT EXISTS users_username_nocase ON users (username COLLATE NOCASE)";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS users (
    sub TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    given_name TEXT,
    family_name TEXT,
    email_verified INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER
);
CREATE TABLE IF NOT EXISTS consents (
    sub TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (sub, client_id)
);
CREATE TABLE IF NOT EXISTS signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_pem TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);
CREATE TABLE IF NOT EXISTS sessions (
    cookie_hash TEXT PRIMARY KEY,
    sid TEXT NOT NULL UNIQUE,
    sub TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS session_clients (
    sid TEXT NOT NULL,
    client_id TEXT NOT NULL,
    PRIMARY KEY (sid, client_id)
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    sub TEXT NOT NULL,
    scope TEXT NOT NULL,
    sid TEXT,
    auth_time INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    family_expires_at INTEGER NOT NULL,
    rotated_at INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id);
CREATE TABLE IF NOT EXISTS access_tokens (
    jti TEXT PRIMARY KEY,
    family_id TEXT,
    client_id TEXT NOT NULL,
    sub TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    token_hash TEXT,
    scope TEXT,
    issued_at INTEGER
);
CREATE INDEX IF NOT EXISTS access_tokens_family ON access_tokens (family_id);
"#;

/// The IdP's database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

/// A user account.
/// No `Debug`: it holds the password hash.
#[derive(Clone)]
pub struct User {
    pub sub: String,
    pub username: String,
    pub password_hash: String,
    pub name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Whether the IdP knows the email address is the user's: true for the
    /// configured users, false for self-registered ones (nobody checked).
    pub email_verified: bool,
    /// When the profile (name, email verification) last changed, Unix
    /// seconds (OIDC Core 5.1 `updated_at`).
    pub updated_at: i64,
}

/// An access token to record.
pub struct NewAccessToken<'a> {
    pub jti: &'a str,
    pub token_hash: &'a str,
    pub family_id: Option<&'a str>,
    pub client_id: &'a str,
    pub sub: &'a str,
    pub scope: &'a str,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// An access token the IdP issued and has not revoked.
#[derive(Debug, Clone)]
pub struct IssuedAccessToken {
    /// The IdP's own id of the token (its `jti` where it has one).
    pub jti: String,
    pub client_id: String,
    pub sub: String,
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl IssuedAccessToken {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }
}

/// A signing key as stored.
pub struct StoredKey {
    pub alg: String,
    pub private_pem: String,
    pub retired_at: Option<i64>,
}

/// A browser session at the IdP.
#[derive(Clone, Debug)]
pub struct Session {
    pub sid: String,
    pub sub: String,
    pub auth_time: i64,
}

/// A refresh token as stored (its digest is the key).
#[derive(Clone, Debug)]
pub struct RefreshToken {
    pub family_id: String,
    pub client_id: String,
    pub sub: String,
    pub scope: String,
    pub sid: Option<String>,
    pub auth_time: i64,
    pub expires_at: i64,
    pub family_expires_at: i64,
    pub rotated_at: Option<i64>,
    pub revoked: bool,
}

/// A new refresh token to store.
pub struct NewRefreshToken<'a> {
    pub token_hash: &'a str,
    pub family_id: &'a str,
    pub client_id: &'a str,
    pub sub: &'a str,
    pub scope: &'a str,
    pub sid: Option<&'a str>,
    pub auth_time: i64,
    pub expires_at: i64,
    pub family_expires_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("that username is taken")]
    UsernameTaken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A column added since a database was made: added to it, empty.
async fn add_column_if_missing(
    pool: &SqlitePool,
    table: &str,
    column: &str,
    definition: &str,
) -> anyhow::Result<()> {
    let present: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pragma_table_info(?) WHERE name = ?")
            .bind(table)
            .bind(column)
            .fetch_one(pool)
            .await?;
    if present == 0 {
        sqlx::raw_sql(&format!(
            "ALTER TABLE {table} ADD COLUMN {column} {definition}"
        ))
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// A database from before usernames were unique whatever their letter case
/// may hold two accounts for one address. Which one is the person's is not
/// for the IdP to guess, nor to delete: it refuses to start and says which.
async fn refuse_case_twins(pool: &SqlitePool, url: &str) -> anyhow::Result<()> {
    let twins: Option<String> = sqlx::query_scalar(
        "SELECT group_concat(username, ', ') FROM users
         GROUP BY username COLLATE NOCASE HAVING count(*) > 1 LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    match twins {
        Some(twins) => anyhow::bail!(
            "--database-url {url}: the accounts {twins} differ only in letter case; \
             usernames are now unique whatever their case: delete all but one \
             (DELETE FROM users WHERE username = '…') and start again"
        ),
        None => Ok(()),
    }
}

impl Store {
    /// Opens (creating if needed) the database at `url`.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        let in_memory = url.contains(":memory:");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("--database-url {url}: {e}"))?
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(5));
        let options = if in_memory {
            options
        } else {
            if let Some(dir) = Path::new(options.get_filename()).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    anyhow::anyhow!("--database-url {url}: cannot create {}: {e}", dir.display())
                })?;
            }
            // WAL with `synchronous = NORMAL`: a commit is a write to the
            // log, not an fsync; a process that dies loses nothing, a
            // machine that loses power may lose the last commits (sessions
            // and grants of the last moment: people sign in again).
            options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        };
        // An in-memory database lives as long as its one connection.
        let pool = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(4)
        }
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("--database-url {url}: {e}"))?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        add_column_if_missing(&pool, "users", "updated_at", "INTEGER").await?;
        for column in ["token_hash TEXT", "scope TEXT", "issued_at INTEGER"] {
            let (name, definition) = column.split_once(' ').unwrap_or((column, ""));
            add_column_if_missing(&pool, "access_tokens", name, definition).await?;
        }
        sqlx::query(
            "CREATE UNIQUE INDEX IF NOT EXISTS access_tokens_hash ON access_tokens (token_hash)",
        )
        .execute(&pool)
        .await?;
        refuse_case_twins(&pool, url).await?;
        sqlx::query(ONE_ACCOUNT_PER_ADDRESS).execute(&pool).await?;
        Ok(Store { pool })
    }

    /// Closes the pool (on shutdown), checkpointing the write-ahead log.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- users -------------------------------------------------------

    /// Users from the config file: inserted, or updated to match the file.
    /// A registered account whose email differs only in letter case is the
    /// same account: the file's values win, its `sub` included (the grants
    /// of the registered account name the old `sub`, and lapse).
    pub async fn upsert_user(&self, user: &User, now: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE users SET
                 updated_at = CASE WHEN name IS ? AND given_name IS ? AND family_name IS ?
                     AND email_verified = ? THEN updated_at ELSE ? END,
                 sub = ?, username = ?, password_hash = ?, name = ?, given_name = ?,
                 family_name = ?, email_verified = ?
             WHERE username = ? COLLATE NOCASE",
        )
        .bind(&user.name)
        .bind(&user.given_name)
        .bind(&user.family_name)
        .bind(user.email_verified)
        .bind(user.updated_at)
        .bind(&user.sub)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.name)
        .bind(&user.given_name)
        .bind(&user.family_name)
        .bind(user.email_verified)
        .bind(&user.username)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO users (sub, username, password_hash, name, given_name, family_name,
                     email_verified, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&user.sub)
            .bind(&user.username)
            .bind(&user.password_hash)
            .bind(&user.name)
            .bind(&user.given_name)
            .bind(&user.family_name)
            .bind(user.email_verified)
            .bind(now)
            .bind(user.updated_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Self-service registration: a new user, never overwriting one.
    ///
    /// An email that differs from a taken one only by letter case is taken
    /// too: in practice it is the same mailbox, and an account for it would
    /// pass for the other with any client that matches users by `email`
    /// (which OIDC Core 5.7 warns against, and many clients still do).
    pub async fn insert_user(&self, user: &User, now: i64) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO users (sub, username, password_hash, name, given_name, family_name,
                 email_verified, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(&user.sub)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.name)
        .bind(&user.given_name)
        .bind(&user.family_name)
        .bind(user.email_verified)
        .bind(now)
        .bind(user.updated_at)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::UsernameTaken);
        }
        Ok(())
    }

    /// Usernames are email addresses: compared ignoring case, as
    /// registration does.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.user_where("username", username, "COLLATE NOCASE")
            .await
    }

    pub async fn user_by_sub(&self, sub: &str) -> Result<Option<User>, StoreError> {
        self.user_where("sub", sub, "").await
    }

    async fn user_where(
        &self,
        column: &str,
        value: &str,
        collation: &str,
    ) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "SELECT sub, username, password_hash, name, given_name, family_name, email_verified,
                 COALESCE(updated_at, created_at)
             FROM users WHERE {column} = ? {collation}"
        );
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| User {
            sub: r.get(0),
            username: r.get(1),
            password_hash: r.get(2),
            name: r.get(3),
            given_name: r.get(4),
            family_name: r.get(5),
            email_verified: r.get::<i64, _>(6) != 0,
            updated_at: r.get(7),
        }))
    }

    // ---- consents ----------------------------------------------------

    /// The scopes this user has already granted this client.
    pub async fn consented_scopes(
        &self,
        sub: &str,
        client_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let row = sqlx::query("SELECT scopes FROM consents WHERE sub = ? AND client_id = ?")
            .bind(sub)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.get::<String, _>(0))
            .map(|s| s.split(' ').map(str::to_owned).collect())
            .unwrap_or_default())
    }

    /// Remembers a consent: the union of what was granted before and now.
    pub async fn grant_consent(
        &self,
        sub: &str,
        client_id: &str,
        scopes: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut all = self.consented_scopes(sub, client_id).await?;
        for s in scopes {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        sqlx::query(
            "INSERT INTO consents (sub, client_id, scopes, granted_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (sub, client_id) DO UPDATE SET scopes = excluded.scopes",
        )
        .bind(sub)
        .bind(client_id)
        .bind(all.join(" "))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every consent of a user: (client_id, scopes, granted_at).
    pub async fn consents_of(&self, sub: &str) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT client_id, scopes, granted_at FROM consents WHERE sub = ? ORDER BY client_id",
        )
        .bind(sub)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    // ---- signing keys ------------------------------------------------

    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT alg, private_pem, retired_at FROM signing_keys ORDER BY created_at, rowid",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| StoredKey {
                alg: r.get(0),
                private_pem: r.get(1),
                retired_at: r.get(2),
            })
            .collect())
    }

    pub async fn insert_signing_key(
        &self,
        kid: &str,
        alg: &str,
        pem: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_pem, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(kid)
        .bind(alg)
        .bind(pem)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Retires the active key and adds a new one, in one transaction.
    pub async fn rotate_signing_key(
        &self,
        kid: &str,
        alg: &str,
        pem: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_pem, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(kid)
        .bind(alg)
        .bind(pem)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- browser sessions ---------------------------------------------

    pub async fn insert_session(
        &self,
        cookie_hash: &str,
        session: &Session,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO sessions (cookie_hash, sid, sub, auth_time, expires_at) VALUES (?, ?, ?, ?, ?)")
            .bind(cookie_hash)
            .bind(&session.sid)
            .bind(&session.sub)
            .bind(session.auth_time)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A session signed in to again: a new cookie, a new `auth_time`, the
    /// same `sid`.
    pub async fn renew_session(
        &self,
        session: &Session,
        cookie_hash: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sessions SET cookie_hash = ?, auth_time = ?, expires_at = ? WHERE sid = ?",
        )
        .bind(cookie_hash)
        .bind(session.auth_time)
        .bind(expires_at)
        .bind(&session.sid)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn session(
        &self,
        cookie_hash: &str,
        now: i64,
    ) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT sid, sub, auth_time FROM sessions WHERE cookie_hash = ? AND expires_at > ?",
        )
        .bind(cookie_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Session {
            sid: r.get(0),
            sub: r.get(1),
            auth_time: r.get(2),
        }))
    }

    /// Ends a session; returns the clients it had signed in to. One
    /// transaction: a session is gone with its list of clients, or not at all.
    pub async fn delete_session(&self, sid: &str) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let clients = sqlx::query("DELETE FROM session_clients WHERE sid = ? RETURNING client_id")
            .bind(sid)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        sqlx::query("DELETE FROM sessions WHERE sid = ?")
            .bind(sid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(clients)
    }

    /// Records that a session signed in to a client (for back-channel logout).
    pub async fn add_session_client(&self, sid: &str, client_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO session_clients (sid, client_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(sid)
        .bind(client_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- refresh and access tokens ------------------------------------

    pub async fn insert_refresh_token(
        &self,
        t: &NewRefreshToken<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, client_id, sub, scope, sid, auth_time,
                 created_at, expires_at, family_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(t.token_hash)
        .bind(t.family_id)
        .bind(t.client_id)
        .bind(t.sub)
        .bind(t.scope)
        .bind(t.sid)
        .bind(t.auth_time)
        .bind(now)
        .bind(t.expires_at)
        .bind(t.family_expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshToken>, StoreError> {
        let row = sqlx::query(
            "SELECT family_id, client_id, sub, scope, sid, auth_time, expires_at, family_expires_at,
                    rotated_at, revoked FROM refresh_tokens WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| RefreshToken {
            family_id: r.get(0),
            client_id: r.get(1),
            sub: r.get(2),
            scope: r.get(3),
            sid: r.get(4),
            auth_time: r.get(5),
            expires_at: r.get(6),
            family_expires_at: r.get(7),
            rotated_at: r.get(8),
            revoked: r.get::<i64, _>(9) != 0,
        }))
    }

    /// Marks a refresh token as used, once: `false` if it already was, so
    /// two racing requests cannot both rotate it.
    pub async fn mark_rotated(&self, token_hash: &str, now: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ? AND rotated_at IS NULL AND revoked = 0",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Revokes a whole refresh token family and every access token issued
    /// from it, in one transaction.
    pub async fn revoke_family(&self, family_id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = ?")
            .bind(family_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE access_tokens SET revoked = 1 WHERE family_id = ?")
            .bind(family_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records an access token by its digest: however the profile shapes it
    /// (a JWT of any provider's claims, or opaque), the IdP knows it again
    /// by the digest alone.
    pub async fn insert_access_token(&self, token: &NewAccessToken<'_>) -> Result<(), StoreError> {
        // A row already there was revoked before it was recorded (a replayed
        // code racing its first exchange): it stays revoked. The same token
        // twice (a profile without `jti`, in the same second) is one token.
        sqlx::query(
            "INSERT INTO access_tokens (jti, family_id, client_id, sub, expires_at, token_hash,
                 scope, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (jti) DO UPDATE SET token_hash = excluded.token_hash,
                 client_id = excluded.client_id, sub = excluded.sub, scope = excluded.scope,
                 issued_at = excluded.issued_at, expires_at = excluded.expires_at
             ON CONFLICT DO NOTHING",
        )
        .bind(token.jti)
        .bind(token.family_id)
        .bind(token.client_id)
        .bind(token.sub)
        .bind(token.expires_at)
        .bind(token.token_hash)
        .bind(token.scope)
        .bind(token.issued_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unrevoked, unexpired access token whose digest is `token_hash`.
    pub async fn access_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<IssuedAccessToken>, StoreError> {
        let row = sqlx::query(
            "SELECT jti, client_id, sub, COALESCE(scope, ''), COALESCE(issued_at, 0), expires_at
             FROM access_tokens WHERE token_hash = ? AND revoked = 0 AND expires_at > ?",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| IssuedAccessToken {
            jti: r.get(0),
            client_id: r.get(1),
            sub: r.get(2),
            scope: r.get(3),
            issued_at: r.get(4),
            expires_at: r.get(5),
        }))
    }

    pub async fn revoke_access_token(&self, jti: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO access_tokens (jti, client_id, sub, expires_at, revoked) VALUES (?, '', '', ?, 1)
             ON CONFLICT (jti) DO UPDATE SET revoked = 1",
        )
        .bind(jti)
        .bind(now + 86_400)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes back a user's grant to a client: the consent, and every refresh
    /// and access token it holds, in one transaction.
    pub async fn revoke_grant(&self, sub: &str, client_id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM consents WHERE sub = ? AND client_id = ?",
            "UPDATE refresh_tokens SET revoked = 1 WHERE sub = ? AND client_id = ?",
            "UPDATE access_tokens SET revoked = 1 WHERE sub = ? AND client_id = ?",
        ] {
            sqlx::query(sql)
                .bind(sub)
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Drops rows nobody can use any more.
    pub async fn prune(&self, now: i64) -> Result<(), StoreError> {
        for sql in [
            "DELETE FROM sessions WHERE expires_at <= ?",
            "DELETE FROM access_tokens WHERE expires_at <= ?",
            "DELETE FROM refresh_tokens WHERE family_expires_at <= ?",
        ] {
            sqlx::query(sql).bind(now).execute(&self.pool).await?;
        }
        Ok(())
    }
}

/// A stable subject id for a configured user (Okta's look: `00u…`).
pub fn subject_for(username: &str) -> String {
    use sha2::{Digest, Sha256};
    let hex: String = Sha256::digest(username.as_bytes())
        .iter()
        .take(9)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("00u{}", &hex[..17])
}

/// A fresh subject id for a registered user.
pub fn new_subject() -> String {
    subject_for(&crate::secret::random_token())
}
