//! The SQLite session backend: the embedded default (`data/`), for one BFF
//! instance, or several on one machine sharing the file. Every write that
//! must not race is one SQL statement: SQLite runs each atomically.

use std::{path::Path, str::FromStr, time::Duration};

use async_trait::async_trait;
use sqlx::{
    Connection, Row, SqliteConnection, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
};

use super::backend::{Backend, BackendError, Index, LoginIndex, Result, real_now_ms};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS bff_sessions (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bff_logins (
    key TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    sid TEXT,
    sub TEXT NOT NULL,
    value BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS bff_logins_sid ON bff_logins (sid);
CREATE INDEX IF NOT EXISTS bff_logins_sub ON bff_logins (sub);
CREATE TABLE IF NOT EXISTS bff_once (
    key TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bff_leases (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until_ms INTEGER NOT NULL
);
"#;

pub struct Sqlite {
    pool: SqlitePool,
    /// For `sqlite::memory:`, the connection that keeps the database:
    /// SQLite drops an in-memory database with its last connection, and
    /// the pool closes its connection when it sees fit (one dropped in the
    /// middle of a query, say). This one runs no query.
    _keeper: Option<std::sync::Mutex<SqliteConnection>>,
}

fn failed(e: sqlx::Error) -> BackendError {
    BackendError::from(e)
}

impl Sqlite {
    /// Opens (creating if needed) the database a `sqlite:` URL names.
    pub async fn open(url: &str) -> anyhow::Result<Sqlite> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:");
        let options = if in_memory {
            options
        } else {
            if let Some(dir) = Path::new(options.get_filename()).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)?;
            }
            options.journal_mode(SqliteJournalMode::Wal)
        };
        // The options name one in-memory database (sqlx gives `:memory:` a
        // name of its own, shared by every connection made from them).
        let keeper = match in_memory {
            true => Some(std::sync::Mutex::new(
                SqliteConnection::connect_with(&options).await?,
            )),
            false => None,
        };
        // No ping before each use of a connection (sqlx's default): a
        // SQLite connection is a thread of this process, and the ping a hop
        // to it and back before every statement.
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { 4 })
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Sqlite {
            pool,
            _keeper: keeper,
        })
    }
}

#[async_trait]
impl Backend for Sqlite {
    async fn create_session(&self, key: &str, value: &[u8], expires_at: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO bff_sessions (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(failed)?;
        Ok(done.rows_affected() == 1)
    }

    async fn update_session(&self, key: &str, value: &[u8], expires_at: i64) -> Result<()> {
        // One statement: it changes a row that is there, or nothing.
        sqlx::query("UPDATE bff_sessions SET value = ?, expires_at = ? WHERE key = ?")
            .bind(value)
            .bind(expires_at)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn load_session(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value FROM bff_sessions WHERE key = ? AND expires_at > ?")
            .bind(key)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn delete_session(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM bff_sessions WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn insert_login(
        &self,
        key: &str,
        index: &LoginIndex<'_>,
        value: &[u8],
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO bff_logins (key, version, sid, sub, value, expires_at) VALUES (?, 0, ?, ?, ?, ?)",
        )
        .bind(key)
        .bind(index.sid)
        .bind(index.sub)
        .bind(value)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(failed)?;
        Ok(())
    }

    async fn load_login(&self, key: &str, now: i64) -> Result<Option<(u64, Vec<u8>)>> {
        let row =
            sqlx::query("SELECT version, value FROM bff_logins WHERE key = ? AND expires_at > ?")
                .bind(key)
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(failed)?;
        Ok(row.map(|r| (r.get::<i64, _>(0) as u64, r.get(1))))
    }

    async fn replace_login(&self, key: &str, version: u64, value: &[u8]) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE bff_logins SET version = version + 1, value = ? WHERE key = ? AND version = ?",
        )
        .bind(value)
        .bind(key)
        .bind(version as i64)
        .execute(&self.pool)
        .await
        .map_err(failed)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_login(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM bff_logins WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn delete_logins(&self, index: Index<'_>) -> Result<usize> {
        let (sql, value) = match index {
            Index::Sid(sid) => ("DELETE FROM bff_logins WHERE sid = ?", sid),
            Index::Sub(sub) => ("DELETE FROM bff_logins WHERE sub = ?", sub),
        };
        let done = sqlx::query(sql)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        Ok(done.rows_affected() as usize)
    }

    async fn first_use(&self, key: &str, expires_at: i64, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO bff_once (key, expires_at) VALUES (?, ?)
             ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
             WHERE bff_once.expires_at <= ?",
        )
        .bind(key)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(failed)?;
        Ok(done.rows_affected() == 1)
    }

    async fn acquire(&self, key: &str, owner: &str, until_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO bff_leases (key, owner, until_ms) VALUES (?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
             WHERE bff_leases.until_ms <= ? OR bff_leases.owner = excluded.owner",
        )
        .bind(key)
        .bind(owner)
        .bind(until_ms)
        .bind(real_now_ms())
        .execute(&self.pool)
        .await
        .map_err(failed)?;
        Ok(done.rows_affected() == 1)
    }

    async fn renew(&self, key: &str, owner: &str, until_ms: i64) -> Result<bool> {
        let done = sqlx::query("UPDATE bff_leases SET until_ms = ? WHERE key = ? AND owner = ?")
            .bind(until_ms)
            .bind(key)
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, key: &str, owner: &str) -> Result<()> {
        sqlx::query("DELETE FROM bff_leases WHERE key = ? AND owner = ?")
            .bind(key)
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn sweep(&self, now: i64) -> Result<()> {
        for sql in [
            "DELETE FROM bff_sessions WHERE expires_at <= ?",
            "DELETE FROM bff_logins WHERE expires_at <= ?",
            "DELETE FROM bff_once WHERE expires_at <= ?",
        ] {
            sqlx::query(sql)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(failed)?;
        }
        sqlx::query("DELETE FROM bff_leases WHERE until_ms <= ?")
            .bind(real_now_ms())
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_in_memory_store_outlives_the_connection_that_wrote_it() {
        let store = Sqlite::open("sqlite::memory:").await.unwrap();
        assert!(store.create_session("k", b"v", i64::MAX).await.unwrap());
        // The pool's only connection closed, as a cancelled query's is.
        store.pool.acquire().await.unwrap().close().await.unwrap();
        let kept = store.load_session("k", 0).await.unwrap();
        assert_eq!(
            kept.as_deref(),
            Some(&b"v"[..]),
            "the session is still there"
        );
    }
}
