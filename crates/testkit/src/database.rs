//! The databases the IdP and the API keep their state in, for the tests
//! that run once on each: SQLite (the embedded default) and PostgreSQL.
//!
//! ```ignore
//! #[test_case(Engine::Sqlite ; "sqlite")]
//! #[test_case(Engine::Postgres ; "postgres")]
//! #[tokio::test]
//! async fn keys_survive_a_restart(engine: Engine) {
//!     let Some(db) = engine.database().await else { return };
//!     let idp = Idp::start_on_store(mock_idp::Settings::demo(), db.url()).await;
//! ```

use crate::{TempFile, postgres};

#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A fresh, empty database of one test, gone when dropped.
pub enum Database {
    /// A file, so that a server can be restarted on it.
    Sqlite {
        file: TempFile,
        url: String,
    },
    Postgres(postgres::Database),
}

impl Engine {
    /// A fresh database on this engine, or `None` when PostgreSQL is not
    /// there (the test is then skipped, and says so once; see
    /// [`postgres::database`]).
    pub async fn database(self) -> Option<Database> {
        match self {
            Engine::Sqlite => {
                let file = TempFile::new("test.db");
                let url = file.sqlite_url();
                Some(Database::Sqlite { file, url })
            }
            Engine::Postgres => postgres::database().await.map(Database::Postgres),
        }
    }
}

impl Database {
    /// The URL a server's `--database-url` takes.
    pub fn url(&self) -> &str {
        match self {
            Database::Sqlite { url, .. } => url,
            Database::Postgres(db) => &db.url,
        }
    }
}
