//! Redis for the tests that need one: the server at `REDIS_URL`
//! (127.0.0.1:6379 by default), each test under a key prefix of its own.
//! Without one, such a test says once that it was skipped and passes; with
//! `REQUIRE_REDIS=1` (CI) it fails instead.

use std::{io::Write, sync::Once};

use fred::prelude::{ClientLike, Config, KeysInterface};

/// The URL of a Redis that answers, or `None` (after saying so once).
pub async fn available() -> Option<String> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if ping(&url).await {
        return Some(url);
    }
    if std::env::var("REQUIRE_REDIS").is_ok_and(|v| v == "1") {
        panic!("no Redis answers at {url}, and REQUIRE_REDIS=1");
    }
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "Redis tests skipped: no Redis answers at {url} (start redis-server, or set REDIS_URL)"
        );
    });
    None
}

async fn ping(url: &str) -> bool {
    let Ok(config) = Config::from_url(url) else {
        return false;
    };
    let client = fred::prelude::Client::new(config, None, None, None);
    let connected = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        client.init().await.is_ok() && client.ping::<String>(None).await.is_ok()
    })
    .await
    .unwrap_or(false);
    let _ = client.quit().await;
    connected
}

/// A key prefix no other test uses.
pub fn prefix() -> String {
    format!("test:{}:", crate::random_string())
}

/// Every value stored under `prefix`, as raw bytes: what a dump of Redis
/// would show of this test's keys.
pub async fn dump(url: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let client = fred::prelude::Client::new(Config::from_url(url).expect("URL"), None, None, None);
    client.init().await.expect("Redis");
    let mut cursor = "0".to_owned();
    let mut entries = Vec::new();
    loop {
        let (next, keys): (String, Vec<String>) = client
            .scan_page(cursor, format!("{prefix}*"), Some(1000), None)
            .await
            .expect("SCAN");
        for key in keys {
            let kind: String = client.r#type(&key).await.expect("TYPE");
            let value: Vec<u8> = if kind == "string" {
                client.get(&key).await.expect("GET")
            } else {
                let members: Vec<String> = fred::prelude::SetsInterface::smembers(&client, &key)
                    .await
                    .expect("SMEMBERS");
                members.join("\n").into_bytes()
            };
            entries.push((key, value));
        }
        if next == "0" {
            break;
        }
        cursor = next;
    }
    let _ = client.quit().await;
    entries
}
