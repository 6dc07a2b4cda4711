//! PostgreSQL for the tests that run a store on it: the server at
//! `DATABASE_URL_POSTGRES` (`postgres://postgres@127.0.0.1:5432/postgres`
//! by default), each test in a fresh database of its own, dropped when the
//! test ends. When no server answers, such a test says once that it was
//! skipped and passes; with `REQUIRE_POSTGRES=1` (CI) it fails instead.

use std::{io::Write, sync::Once, time::Duration};

use sqlx::{Connection, Executor, postgres::PgConnection};

const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database made for one test; dropped (connections and all) with it.
pub struct Database {
    /// `postgres://…/testkit_…`: what the IdP's or the API's
    /// `--database-url` takes.
    pub url: String,
    server: String,
    name: String,
}

/// A fresh, empty database on the server, or `None` when none answers
/// (after saying so once).
pub async fn database() -> Option<Database> {
    let server = std::env::var("DATABASE_URL_POSTGRES").unwrap_or_else(|_| DEFAULT_SERVER.into());
    let mut admin = match connect(&server).await {
        Ok(admin) => admin,
        Err(e) => {
            skipped(&server, &e);
            return None;
        }
    };
    // Lower-case letters and digits: a name that needs no quoting.
    let name = format!("testkit_{:016x}", rand::random::<u64>());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name} at {server}: {e}"));
    let _ = admin.close().await;
    let mut url = url::Url::parse(&server).expect("DATABASE_URL_POSTGRES is a URL");
    url.set_path(&name);
    Some(Database {
        url: url.to_string(),
        server,
        name,
    })
}

async fn connect(server: &str) -> Result<PgConnection, String> {
    match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(server)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer in 5 s".into()),
    }
}

fn skipped(server: &str, error: &str) {
    let server = without_password(server);
    if std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        panic!("no PostgreSQL at {server} ({error}), and REQUIRE_POSTGRES=1");
    }
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Past the test harness's capture: the line shows even when the
        // test passes.
        let _ = writeln!(
            std::io::stderr(),
            "PostgreSQL tests skipped: no PostgreSQL at {server} ({error}); \
             apt-get install postgresql, or set DATABASE_URL_POSTGRES"
        );
    });
}

/// The server's URL as it may be printed.
fn without_password(server: &str) -> String {
    match url::Url::parse(server) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => server.to_owned(),
    }
}

impl Drop for Database {
    /// Drops the database, closing what the test's servers left open
    /// (`WITH (FORCE)`). `drop` cannot await, so this runs on a thread of
    /// its own with a runtime of its own, and waits for it.
    fn drop(&mut self) {
        let server = self.server.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = connect(&server).await.ok()?;
                let dropped = admin.execute(statement.as_str()).await.ok();
                let _ = admin.close().await;
                dropped
            })
        });
        let _ = dropping.join();
    }
}
