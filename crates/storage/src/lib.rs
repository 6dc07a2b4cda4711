//! Opens the database a `--database-url` names, alike for the IdP and the
//! API (each creates its own tables):
//!
//! - `sqlite://path/to/file.db`: embedded, the default. The file and its
//!   directory are made when missing; write-ahead log, `synchronous = NORMAL`.
//! - `sqlite::memory:`: in memory, for tests. It lives exactly as long as
//!   the [`Database`] value, whatever its pool does with its connections.
//! - `postgres://user:password@host/database`: beyond one machine.
//!
//! sqlx's `Any` driver serves both engines with the same queries (`$1`
//! placeholders); it reads SQLite's options from the URL alone, and sqlx's
//! defaults for a URL give each SQLite connection a 5 s busy timeout and
//! foreign keys.

use std::{
    path::Path,
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use sqlx::{
    AnyConnection, AnyPool, Connection, Executor, any::AnyPoolOptions, sqlite::SqliteConnectOptions,
};

/// The databases a server keeps its state in, told apart by the URL's scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// `sqlite://path/to/file.db` or `sqlite::memory:`: embedded, the default.
    Sqlite,
    /// `postgres://user:password@host/database` (or `postgresql://`).
    Postgres,
}

impl Engine {
    /// The engine `url` names, or what is wrong with it (the caller adds
    /// an example of its own).
    pub fn of(url: &str) -> Result<Engine, String> {
        if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else {
            Err("must start with sqlite: or postgres://".into())
        }
    }
}

/// A pool on one database; cheap to clone, all clones share it.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    engine: Engine,
    /// For an in-memory database, the connection that keeps it: SQLite
    /// drops such a database with its last connection, and a pool closes
    /// connections when it sees fit (one dropped in the middle of a query,
    /// when the request that ran it was cancelled, is closed, not reused).
    /// This one runs no query and lives as long as the last clone.
    _keeper: Option<Arc<Keeper>>,
}

struct Keeper(#[allow(dead_code)] Mutex<AnyConnection>);

impl std::fmt::Debug for Keeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keeper")
    }
}

impl Database {
    /// Opens the database `url` names (creating a SQLite file if needed);
    /// the error names the URL without its password.
    pub async fn open(url: &str) -> anyhow::Result<Database> {
        let context = |e: anyhow::Error| anyhow::anyhow!("--database-url {}: {e}", redacted(url));
        sqlx::any::install_default_drivers();
        let engine = Engine::of(url).map_err(|e| context(anyhow::anyhow!(e)))?;
        match engine {
            Engine::Sqlite if in_memory(url) => open_in_memory(url).await,
            Engine::Sqlite => open_file(url).await,
            // PostgreSQL serves many writers at once; SQLite one at a time.
            Engine::Postgres => Ok(Database {
                pool: AnyPoolOptions::new()
                    .max_connections(8)
                    .connect(url)
                    .await?,
                engine,
                _keeper: None,
            }),
        }
        .map_err(context)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Waits for the queries under way, then closes every connection (for
    /// SQLite, which folds its write-ahead log into the file).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn in_memory(url: &str) -> bool {
    url.contains(":memory:")
        || url.split_once('?').is_some_and(|(_, query)| {
            url::form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "mode" && v == "memory")
        })
}

/// An in-memory database of its own, shared by name between the keeper and
/// the pool's connection (each would otherwise open a database of its own).
async fn open_in_memory(url: &str) -> anyhow::Result<Database> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let url = if url.contains(":memory:") {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        format!("sqlite:file:memory-{pid}-{n}?mode=memory&cache=shared")
    } else {
        url.to_owned()
    };
    let keeper = AnyConnection::connect(&url).await?;
    // One connection: SQLite writes one at a time anyway, and in memory a
    // second connection would only wait on the first's table locks.
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false) // see `open_file`
        .idle_timeout(None)
        .max_lifetime(None)
        .connect(&url)
        .await?;
    Ok(Database {
        pool,
        engine: Engine::Sqlite,
        _keeper: Some(Arc::new(Keeper(Mutex::new(keeper)))),
    })
}

async fn open_file(url: &str) -> anyhow::Result<Database> {
    let options = SqliteConnectOptions::from_str(url)?;
    if let Some(dir) = Path::new(options.get_filename()).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    // WAL with `synchronous = NORMAL`: a commit is a write to the log, not
    // an fsync; a process that dies loses nothing, a machine that loses
    // power may lose the last commits (sessions and grants of the last
    // moment: people sign in again).
    //
    // No ping before each use of a connection (sqlx's default): a SQLite
    // connection is a thread of this process, not a socket that can die,
    // and the ping is a hop to that thread and back for every statement.
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .after_connect(|connection, _| {
            Box::pin(async move {
                connection
                    .execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL")
                    .await?;
                Ok(())
            })
        })
        .connect(&create_if_missing(url))
        .await?;
    Ok(Database {
        pool,
        engine: Engine::Sqlite,
        _keeper: None,
    })
}

/// `url` asking SQLite to create the file when missing (`mode=rwc`), unless
/// it names a mode of its own.
fn create_if_missing(url: &str) -> String {
    match url.split_once('?') {
        None => format!("{url}?mode=rwc"),
        Some((_, query))
            if url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "mode") =>
        {
            url.to_owned()
        }
        Some(_) => format!("{url}&mode=rwc"),
    }
}

/// A URL fit for an error message: any password in it replaced by `***`.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn count(db: &Database) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(db.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_in_memory_database_outlives_the_connection_that_wrote_it() {
        let db = Database::open("sqlite::memory:").await.unwrap();
        sqlx::raw_sql("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)")
            .execute(db.pool())
            .await
            .unwrap();
        // The pool's only connection closed, as a cancelled query's is.
        db.pool().acquire().await.unwrap().close().await.unwrap();
        assert_eq!(count(&db).await, 1, "the data is still there");
    }

    #[tokio::test]
    async fn each_in_memory_database_is_its_own() {
        let one = Database::open("sqlite::memory:").await.unwrap();
        let two = Database::open("sqlite::memory:").await.unwrap();
        sqlx::raw_sql("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)")
            .execute(one.pool())
            .await
            .unwrap();
        sqlx::raw_sql("CREATE TABLE t (x INTEGER)")
            .execute(two.pool())
            .await
            .unwrap();
        assert_eq!((count(&one).await, count(&two).await), (1, 0));
    }

    #[test]
    fn the_engine_is_the_scheme() {
        assert_eq!(Engine::of("sqlite::memory:"), Ok(Engine::Sqlite));
        assert_eq!(Engine::of("sqlite://data/x.db"), Ok(Engine::Sqlite));
        assert_eq!(Engine::of("postgresql://u@h/d"), Ok(Engine::Postgres));
        assert!(Engine::of("mysql://u@h/d").is_err());
        assert!(Engine::of("data/x.db").is_err());
    }

    #[test]
    fn a_file_url_asks_for_the_file_to_be_made_unless_it_names_a_mode() {
        assert_eq!(create_if_missing("sqlite://a.db"), "sqlite://a.db?mode=rwc");
        assert_eq!(
            create_if_missing("sqlite://a.db?x=1"),
            "sqlite://a.db?x=1&mode=rwc"
        );
        assert_eq!(
            create_if_missing("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
    }

    #[test]
    fn a_password_is_never_shown() {
        assert_eq!(
            redacted("postgres://me:secret@db/x"),
            "postgres://me:***@db/x"
        );
        assert_eq!(redacted("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
