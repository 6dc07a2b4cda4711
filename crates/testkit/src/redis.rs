//! Redis for the tests that need one: the server at `REDIS_URL`
//! (127.0.0.1:6379 by default), each test under a key prefix of its own.
//! When none answers and `redis-server` is installed, the tests start one
//! of their own on a free port (it stops when they end). Without either,
//! such a test says once that it was skipped and passes; with
//! `REQUIRE_REDIS=1` (CI) it fails instead.

use std::{
    io::Write,
    process::{Child, Command, Stdio},
    sync::{Mutex, Once},
    time::Duration,
};

use fred::prelude::{ClientLike, Config, KeysInterface};
use tokio::sync::OnceCell;

/// The URL of a Redis that answers, or `None` (after saying so once).
pub async fn available() -> Option<String> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if ping(&url).await {
        return Some(url);
    }
    if let Some(own) = own_server().await {
        return Some(own);
    }
    if std::env::var("REQUIRE_REDIS").is_ok_and(|v| v == "1") {
        panic!("no Redis answers at {url}, and REQUIRE_REDIS=1");
    }
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "Redis tests skipped: no Redis answers at {url} and redis-server is not installed (apt-get install redis-server, or set REDIS_URL)"
        );
    });
    None
}

/// A `redis-server` of the tests' own, started once per test process, or
/// `None` when it is not installed. It is started by a shell that waits on
/// its standard input and stops it at end of input: when this process
/// ends, however it ends, the pipe closes and the server goes with it.
async fn own_server() -> Option<String> {
    static SERVER: OnceCell<Option<String>> = OnceCell::const_new();
    static SHELL: Mutex<Option<Child>> = Mutex::new(None);
    SERVER
        .get_or_init(|| async {
            let installed = Command::new("sh")
                .args(["-c", "command -v redis-server"])
                .output()
                .is_ok_and(|o| o.status.success());
            if !installed {
                return None;
            }
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .ok()?
                .port();
            let script = format!(
                "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no & \
                 server=$!; read -r _; kill $server"
            );
            let shell = Command::new("sh")
                .args(["-c", &script])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            *SHELL.lock().unwrap_or_else(|e| e.into_inner()) = Some(shell);
            let url = format!("redis://127.0.0.1:{port}");
            for _ in 0..50 {
                if ping(&url).await {
                    return Some(url);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None
        })
        .await
        .clone()
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

/// The memory Redis holds now, in bytes (`INFO memory`'s `used_memory`).
pub async fn used_memory(url: &str) -> Result<u64, fred::prelude::Error> {
    let client = fred::prelude::Client::new(Config::from_url(url)?, None, None, None);
    client.init().await?;
    let info: String = client.info(Some(fred::types::InfoKind::Memory)).await?;
    let _ = client.quit().await;
    Ok(info
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|bytes| bytes.trim().parse().ok())
        .unwrap_or(0))
}

/// Deletes every key under `prefix`; returns how many there were.
pub async fn forget(url: &str, prefix: &str) -> Result<usize, fred::prelude::Error> {
    let client = fred::prelude::Client::new(Config::from_url(url)?, None, None, None);
    client.init().await?;
    let mut cursor = "0".to_owned();
    let mut deleted = 0;
    loop {
        let (next, keys): (String, Vec<String>) = client
            .scan_page(cursor, format!("{prefix}*"), Some(1000), None)
            .await?;
        if !keys.is_empty() {
            deleted += keys.len();
            let _: u64 = client.unlink(keys).await?;
        }
        if next == "0" {
            break;
        }
        cursor = next;
    }
    let _ = client.quit().await;
    Ok(deleted)
}

/// A `redis-server` that a test stops and starts again: its own port and
/// folder, with an append-only file, so that what it kept before a stop is
/// there after the start (as a production Redis with persistence does).
/// Stopped for good when dropped.
pub struct RestartableRedis {
    pub url: String,
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl RestartableRedis {
    /// `None` when `redis-server` is not installed (said once), or a
    /// failure under `REQUIRE_REDIS=1`.
    pub async fn start() -> Option<RestartableRedis> {
        let installed = Command::new("sh")
            .args(["-c", "command -v redis-server"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            if std::env::var("REQUIRE_REDIS").is_ok_and(|v| v == "1") {
                panic!("redis-server is not installed, and REQUIRE_REDIS=1");
            }
            eprintln!("Redis restart test skipped: redis-server is not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("redis-{}", crate::random_string()));
        std::fs::create_dir_all(&dir).expect("a folder for Redis");
        let mut redis = RestartableRedis {
            url: format!("redis://127.0.0.1:{port}"),
            port,
            dir,
            child: None,
        };
        redis.start_again().await;
        Some(redis)
    }

    /// Starts the server (again) on the same port and folder.
    pub async fn start_again(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        for _ in 0..100 {
            if ping(&self.url).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {} does not answer", self.port);
    }

    /// Stops the server abruptly (SIGKILL): no chance to save anything
    /// beyond what it already wrote to its append-only file.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RestartableRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
