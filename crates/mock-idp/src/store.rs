//! What the IdP must remember across a restart: registered users,
//! consents, browser sessions, refresh tokens, issued access tokens (so they
//! can be revoked) and signing keys.
//!
//! In SQLite (`sqlite://data/mock-idp.db` by default, `sqlite::memory:` in
//! tests) or in PostgreSQL (`postgres://…`), told apart by the URL. Both go
//! through sqlx's `Any` driver, so each query below is written once, with
//! `$1`-style placeholders that both databases bind by number; only the
//! schema differs (`schema/sqlite.sql`, `schema/postgres.sql`).
//!
//! Secrets that act as bearer credentials (session cookies, refresh tokens)
//! are stored only as SHA-256 digests: a copy of the database signs no one in.

use sqlx::{AnyPool, Row, any::AnyRow};
use storage::Database;

const SQLITE_SCHEMA: &str = include_str!("../schema/sqlite.sql");
const POSTGRES_SCHEMA: &str = include_str!("../schema/postgres.sql");

/// One account per email address, whatever its letter case (created on
/// SQLite after [`refuse_case_twins`] looked at a database made before it).
/// `lower()`, not SQLite's `COLLATE NOCASE`, so that PostgreSQL has the same
/// index and the queries that use it are the same on both.
const ONE_ACCOUNT_PER_ADDRESS: &str =
    "CREATE UNIQUE INDEX IF NOT EXISTS users_username_lower ON users (lower(username))";

pub use storage::Engine;

/// The IdP's database.
#[derive(Clone, Debug)]
pub struct Store {
    db: Database,
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

/// A column added since a SQLite file was made: added to it, empty.
async fn add_column_if_missing(
    pool: &AnyPool,
    table: &str,
    column: &str,
    definition: &str,
) -> anyhow::Result<()> {
    let present: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pragma_table_info($1) WHERE name = $2")
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
async fn refuse_case_twins(pool: &AnyPool, url: &str) -> anyhow::Result<()> {
    let twins: Option<String> = sqlx::query_scalar(
        "SELECT group_concat(username, ', ') FROM users
         GROUP BY lower(username) HAVING count(*) > 1 LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    match twins {
        Some(twins) => anyhow::bail!(
            "--database-url {}: the accounts {twins} differ only in letter case; \
             usernames are now unique whatever their case: delete all but one \
             (DELETE FROM users WHERE username = '…') and start again",
            storage::redacted(url)
        ),
        None => Ok(()),
    }
}

/// Brings a SQLite file of an earlier release up to today's tables, then
/// adds the indexes on what it may have lacked. (A PostgreSQL database is
/// never older than its schema file.)
async fn upgrade_sqlite(pool: &AnyPool, url: &str) -> anyhow::Result<()> {
    add_column_if_missing(pool, "users", "updated_at", "INTEGER").await?;
    for column in ["token_hash TEXT", "scope TEXT", "issued_at INTEGER"] {
        let (name, definition) = column.split_once(' ').unwrap_or((column, ""));
        add_column_if_missing(pool, "access_tokens", name, definition).await?;
    }
    sqlx::query(
        "CREATE UNIQUE INDEX IF NOT EXISTS access_tokens_hash ON access_tokens (token_hash)",
    )
    .execute(pool)
    .await?;
    refuse_case_twins(pool, url).await?;
    sqlx::query(ONE_ACCOUNT_PER_ADDRESS).execute(pool).await?;
    // Its `COLLATE NOCASE` forerunner, which no query uses any more.
    sqlx::query("DROP INDEX IF EXISTS users_username_nocase")
        .execute(pool)
        .await?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database at `url`: `sqlite:…` or
    /// `postgres://…`.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        let db = Database::open(url).await.map_err(|e| {
            anyhow::anyhow!(
                "{e} (e.g. sqlite://data/mock-idp.db, sqlite::memory: or \
                 postgres://user@localhost/mock_idp)"
            )
        })?;
        match db.engine() {
            Engine::Sqlite => {
                sqlx::raw_sql(SQLITE_SCHEMA).execute(db.pool()).await?;
                upgrade_sqlite(db.pool(), url).await?;
            }
            Engine::Postgres => {
                sqlx::raw_sql(POSTGRES_SCHEMA).execute(db.pool()).await?;
            }
        }
        Ok(Store { db })
    }

    /// Closes the pool (on shutdown), checkpointing SQLite's write-ahead log.
    pub async fn close(&self) {
        self.db.close().await;
    }

    // ---- users -------------------------------------------------------

    /// Users from the config file: inserted, or updated to match the file.
    /// A registered account whose email differs only in letter case is the
    /// same account: the file's values win, its `sub` included (the grants
    /// of the registered account name the old `sub`, and lapse).
    pub async fn upsert_user(&self, user: &User, now: i64) -> Result<(), StoreError> {
        let mut tx = self.db.pool().begin().await?;
        // `$N` names one value wherever it stands: each is bound once.
        let updated = sqlx::query(
            "UPDATE users SET
                 updated_at = CASE WHEN name IS NOT DISTINCT FROM $4
                     AND given_name IS NOT DISTINCT FROM $5
                     AND family_name IS NOT DISTINCT FROM $6
                     AND email_verified = $7 THEN updated_at ELSE $8 END,
                 sub = $1, username = $2, password_hash = $3, name = $4, given_name = $5,
                 family_name = $6, email_verified = $7
             WHERE lower(username) = lower($2)",
        )
        .bind(&user.sub)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.name)
        .bind(&user.given_name)
        .bind(&user.family_name)
        .bind(i64::from(user.email_verified))
        .bind(user.updated_at)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO users (sub, username, password_hash, name, given_name, family_name,
                     email_verified, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&user.sub)
            .bind(&user.username)
            .bind(&user.password_hash)
            .bind(&user.name)
            .bind(&user.given_name)
            .bind(&user.family_name)
            .bind(i64::from(user.email_verified))
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
                 email_verified, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT DO NOTHING",
        )
        .bind(&user.sub)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.name)
        .bind(&user.given_name)
        .bind(&user.family_name)
        .bind(i64::from(user.email_verified))
        .bind(now)
        .bind(user.updated_at)
        .execute(self.db.pool())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::UsernameTaken);
        }
        Ok(())
    }

    /// Usernames are email addresses: compared ignoring case, as
    /// registration does.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.user_where("lower(username) = lower($1)", username)
            .await
    }

    pub async fn user_by_sub(&self, sub: &str) -> Result<Option<User>, StoreError> {
        self.user_where("sub = $1", sub).await
    }

    async fn user_where(&self, condition: &str, value: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE {condition}");
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.map(|r| user_from(&r, 0)))
    }

    // ---- consents ----------------------------------------------------

    /// The scopes this user has already granted this client.
    pub async fn consented_scopes(
        &self,
        sub: &str,
        client_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let row = sqlx::query("SELECT scopes FROM consents WHERE sub = $1 AND client_id = $2")
            .bind(sub)
            .bind(client_id)
            .fetch_optional(self.db.pool())
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
            "INSERT INTO consents (sub, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (sub, client_id) DO UPDATE SET scopes = excluded.scopes",
        )
        .bind(sub)
        .bind(client_id)
        .bind(all.join(" "))
        .bind(now)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Every consent of a user: (client_id, scopes, granted_at).
    pub async fn consents_of(&self, sub: &str) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT client_id, scopes, granted_at FROM consents WHERE sub = $1 ORDER BY client_id",
        )
        .bind(sub)
        .fetch_all(self.db.pool())
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
        .fetch_all(self.db.pool())
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
            "INSERT INTO signing_keys (kid, alg, private_pem, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(kid)
        .bind(alg)
        .bind(pem)
        .bind(now)
        .execute(self.db.pool())
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
        let mut tx = self.db.pool().begin().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_pem, created_at) VALUES ($1, $2, $3, $4)",
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
        sqlx::query("INSERT INTO sessions (cookie_hash, sid, sub, auth_time, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(cookie_hash)
            .bind(&session.sid)
            .bind(&session.sub)
            .bind(session.auth_time)
            .bind(expires_at)
            .execute(self.db.pool())
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
            "UPDATE sessions SET cookie_hash = $1, auth_time = $2, expires_at = $3 WHERE sid = $4",
        )
        .bind(cookie_hash)
        .bind(session.auth_time)
        .bind(expires_at)
        .bind(&session.sid)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    pub async fn session(
        &self,
        cookie_hash: &str,
        now: i64,
    ) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT sid, sub, auth_time FROM sessions WHERE cookie_hash = $1 AND expires_at > $2",
        )
        .bind(cookie_hash)
        .bind(now)
        .fetch_optional(self.db.pool())
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
        let mut tx = self.db.pool().begin().await?;
        let clients = sqlx::query("DELETE FROM session_clients WHERE sid = $1 RETURNING client_id")
            .bind(sid)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        sqlx::query("DELETE FROM sessions WHERE sid = $1")
            .bind(sid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(clients)
    }

    /// Records that a session signed in to a client (for back-channel logout).
    pub async fn add_session_client(&self, sid: &str, client_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO session_clients (sid, client_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(sid)
        .bind(client_id)
        .execute(self.db.pool())
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
                 created_at, expires_at, family_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    pub async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshToken>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REFRESH_COLUMNS} FROM refresh_tokens t WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(|r| refresh_token_from(&r)))
    }

    /// The refresh token, with its user if that still exists: one query,
    /// for the refresh grant, which needs both.
    pub async fn refresh_token_and_user(
        &self,
        token_hash: &str,
    ) -> Result<Option<(RefreshToken, Option<User>)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REFRESH_COLUMNS}, {USER_COLUMNS}
             FROM refresh_tokens t LEFT JOIN users u ON u.sub = t.sub
             WHERE t.token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(|r| {
            let user = r
                .get::<Option<String>, _>(REFRESH_COLUMN_COUNT)
                .map(|_| user_from(&r, REFRESH_COLUMN_COUNT));
            (refresh_token_from(&r), user)
        }))
    }

    /// Marks a refresh token as used, once: `false` if it already was, so
    /// two racing requests cannot both rotate it.
    pub async fn mark_rotated(&self, token_hash: &str, now: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2 AND rotated_at IS NULL AND revoked = 0",
        )
        .bind(now)
        .bind(token_hash)
        .execute(self.db.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Revokes a whole refresh token family and every access token issued
    /// from it, in one transaction.
    ///
    /// Its first write marks the family, which locks the mark until the
    /// commit: a rotation of the family that stored its new tokens and then
    /// reads the mark ([`Store::family_revoked`]) either waits for this
    /// revocation and sees it, or read it before, and then its new tokens
    /// were stored before the statements below, which revoke them too. (On
    /// PostgreSQL, without the lock, a statement here could miss tokens
    /// stored while it ran, and the rotation miss a revocation not yet
    /// committed.)
    pub async fn revoke_family(&self, family_id: &str) -> Result<(), StoreError> {
        let mut tx = self.db.pool().begin().await?;
        sqlx::query(
            "INSERT INTO refresh_families (family_id, revoked) VALUES ($1, 1)
             ON CONFLICT (family_id) DO UPDATE SET revoked = 1",
        )
        .bind(family_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = $1")
            .bind(family_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE access_tokens SET revoked = 1 WHERE family_id = $1")
            .bind(family_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the family was revoked, read by a rotation after it stored
    /// its new tokens: a revocation either revoked them too or is seen here
    /// (see [`Store::revoke_family`]).
    ///
    /// On PostgreSQL the read is a write that changes nothing, so that it
    /// waits for a revocation under way (which holds the mark's lock).
    /// SQLite needs no lock: it commits one writer at a time, and a read
    /// sees every commit made before it, so a plain read does.
    pub async fn family_revoked(&self, family_id: &str) -> Result<bool, StoreError> {
        if self.db.engine() == Engine::Sqlite {
            let revoked: Option<i64> =
                sqlx::query_scalar("SELECT revoked FROM refresh_families WHERE family_id = $1")
                    .bind(family_id)
                    .fetch_optional(self.db.pool())
                    .await?;
            return Ok(revoked.unwrap_or(0) != 0);
        }
        let revoked: i64 = sqlx::query_scalar(
            "INSERT INTO refresh_families (family_id, revoked) VALUES ($1, 0)
             ON CONFLICT (family_id) DO UPDATE SET revoked = refresh_families.revoked
             RETURNING revoked",
        )
        .bind(family_id)
        .fetch_one(self.db.pool())
        .await?;
        Ok(revoked != 0)
    }

    /// Records an access token by its digest: however the profile shapes it
    /// (a JWT of any provider's claims, or opaque), the IdP knows it again
    /// by the digest alone.
    pub async fn insert_access_token(&self, token: &NewAccessToken<'_>) -> Result<(), StoreError> {
        // A row already there was revoked before it was recorded (a replayed
        // code racing its first exchange): it stays revoked, and gets the
        // token's details. The same token twice (a profile without `jti`, in
        // the same second) is one token: nothing more is recorded.
        // Two statements: PostgreSQL takes one ON CONFLICT clause, not two.
        let inserted = sqlx::query(
            "INSERT INTO access_tokens (jti, token_hash, client_id, sub, scope, issued_at,
                 expires_at, family_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT DO NOTHING",
        )
        .bind(token.jti)
        .bind(token.token_hash)
        .bind(token.client_id)
        .bind(token.sub)
        .bind(token.scope)
        .bind(token.issued_at)
        .bind(token.expires_at)
        .bind(token.family_id)
        .execute(self.db.pool())
        .await?;
        if inserted.rows_affected() == 0 {
            sqlx::query(
                "UPDATE access_tokens SET token_hash = $2, client_id = $3, sub = $4, scope = $5,
                     issued_at = $6, expires_at = $7
                 WHERE jti = $1",
            )
            .bind(token.jti)
            .bind(token.token_hash)
            .bind(token.client_id)
            .bind(token.sub)
            .bind(token.scope)
            .bind(token.issued_at)
            .bind(token.expires_at)
            .execute(self.db.pool())
            .await?;
        }
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
             FROM access_tokens WHERE token_hash = $1 AND revoked = 0 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.db.pool())
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
            "INSERT INTO access_tokens (jti, client_id, sub, expires_at, revoked) VALUES ($1, '', '', $2, 1)
             ON CONFLICT (jti) DO UPDATE SET revoked = 1",
        )
        .bind(jti)
        .bind(now + 86_400)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Takes back a user's grant to a client: the consent, and every refresh
    /// and access token it holds, in one transaction.
    ///
    /// Its first write marks each refresh token family of the grant, as
    /// [`Store::revoke_family`] does, so that a rotation racing it reads the
    /// mark once it has stored its new tokens, and refuses them.
    pub async fn revoke_grant(&self, sub: &str, client_id: &str) -> Result<(), StoreError> {
        let mut tx = self.db.pool().begin().await?;
        for sql in [
            "INSERT INTO refresh_families (family_id, revoked)
                 SELECT DISTINCT family_id, 1 FROM refresh_tokens WHERE sub = $1 AND client_id = $2
             ON CONFLICT (family_id) DO UPDATE SET revoked = 1",
            "DELETE FROM consents WHERE sub = $1 AND client_id = $2",
            "UPDATE refresh_tokens SET revoked = 1 WHERE sub = $1 AND client_id = $2",
            "UPDATE access_tokens SET revoked = 1 WHERE sub = $1 AND client_id = $2",
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
            "DELETE FROM sessions WHERE expires_at <= $1",
            "DELETE FROM access_tokens WHERE expires_at <= $1",
            "DELETE FROM refresh_tokens WHERE family_expires_at <= $1",
        ] {
            sqlx::query(sql).bind(now).execute(self.db.pool()).await?;
        }
        // A family's mark goes with its last refresh token.
        sqlx::query(
            "DELETE FROM refresh_families WHERE NOT EXISTS
                 (SELECT 1 FROM refresh_tokens t WHERE t.family_id = refresh_families.family_id)",
        )
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}

/// A user's columns, in the order [`user_from`] reads them.
const USER_COLUMNS: &str = "u.sub, u.username, u.password_hash, u.name, u.given_name, \
     u.family_name, u.email_verified, COALESCE(u.updated_at, u.created_at)";

/// The user in `row`'s [`USER_COLUMNS`], from column `at` on.
fn user_from(row: &AnyRow, at: usize) -> User {
    User {
        sub: row.get(at),
        username: row.get(at + 1),
        password_hash: row.get(at + 2),
        name: row.get(at + 3),
        given_name: row.get(at + 4),
        family_name: row.get(at + 5),
        email_verified: row.get::<i64, _>(at + 6) != 0,
        updated_at: row.get(at + 7),
    }
}

/// A refresh token's columns, in the order [`refresh_token_from`] reads
/// them; [`REFRESH_COLUMN_COUNT`] of them.
const REFRESH_COLUMNS: &str = "t.family_id, t.client_id, t.sub, t.scope, t.sid, t.auth_time, \
     t.expires_at, t.family_expires_at, t.rotated_at, t.revoked";
const REFRESH_COLUMN_COUNT: usize = 10;

fn refresh_token_from(row: &AnyRow) -> RefreshToken {
    RefreshToken {
        family_id: row.get(0),
        client_id: row.get(1),
        sub: row.get(2),
        scope: row.get(3),
        sid: row.get(4),
        auth_time: row.get(5),
        expires_at: row.get(6),
        family_expires_at: row.get(7),
        rotated_at: row.get(8),
        revoked: row.get::<i64, _>(9) != 0,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A SQLite file of this test's own, removed (with its WAL) at the end.
    struct TempDb(std::path::PathBuf);

    impl TempDb {
        fn new() -> TempDb {
            TempDb(std::env::temp_dir().join(format!(
                "mock-idp-store-{}-{:x}.db",
                std::process::id(),
                rand::random::<u64>()
            )))
        }
        fn url(&self) -> String {
            format!("sqlite://{}", self.0.display())
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = self.0.clone().into_os_string();
                path.push(suffix);
                let _ = std::fs::remove_file(path);
            }
        }
    }

    #[tokio::test]
    async fn sqlite_binds_dollar_placeholders_by_number_not_by_position() {
        // Every query of the store counts on it (PostgreSQL's own syntax).
        let store = Store::open("sqlite::memory:").await.unwrap();
        let row = sqlx::query("SELECT $2, $1, $2")
            .bind("one")
            .bind("two")
            .fetch_one(store.db.pool())
            .await
            .unwrap();
        let values: Vec<String> = (0..3).map(|i| row.get(i)).collect();
        assert_eq!(values, ["two", "one", "two"]);
    }

    #[tokio::test]
    async fn a_sqlite_file_is_created_in_wal_mode_with_synchronous_normal() {
        let db = TempDb::new();
        let store = Store::open(&db.url()).await.unwrap();
        assert!(db.0.exists(), "the file is created");
        let mut connection = store.db.pool().acquire().await.unwrap();
        for (pragma, expected) in [
            ("journal_mode", "wal"),
            // 1: NORMAL
            ("synchronous", "1"),
            ("busy_timeout", "5000"),
            ("foreign_keys", "1"),
        ] {
            let row = sqlx::query(&format!("PRAGMA {pragma}"))
                .fetch_one(&mut *connection)
                .await
                .unwrap();
            let value = row
                .try_get::<String, _>(0)
                .or_else(|_| row.try_get::<i64, _>(0).map(|v| v.to_string()))
                .unwrap();
            assert_eq!(value, expected, "PRAGMA {pragma}");
        }
    }

    #[tokio::test]
    async fn a_database_url_is_shown_in_errors_without_its_password() {
        let Err(error) = Store::open("mysql://idp:hunter2@127.0.0.1/idp").await else {
            panic!("a store opened on MySQL");
        };
        let error = error.to_string();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.contains("mysql://idp:***@127.0.0.1/idp"), "{error}");
    }
}
