//! The Redis session backend: for several BFF instances sharing sessions.
//! Redis expires what has lapsed by itself (`EXAT`); the writes that must
//! not race are single commands or Lua scripts, which Redis runs whole.
//!
//! Keys, all under the configured prefix (`bff:` by default):
//! `s:{digest}` a browser session, `l:{digest}` a login (8 bytes of
//! version, then the sealed value), `sid:`/`sub:{digest}` the logins of a
//! provider session or user, `once:{digest}` a value seen once,
//! `lease:{digest}` a lease. Each script touches one key, so a Redis Cluster
//! needs nothing more.

use async_trait::async_trait;
use fred::{
    bytes::Bytes,
    prelude::{
        ClientLike, Config as RedisConfig, KeysInterface, LuaInterface, Pool, SetsInterface,
    },
    types::{
        Expiration, SetOptions,
        config::{ConnectionConfig, PerformanceConfig, ReconnectPolicy},
    },
};

use super::backend::{Backend, BackendError, Index, LoginIndex, Result};

/// How long one Redis command may take before the request that needs it
/// is answered 503.
const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub struct Redis {
    pool: Pool,
    prefix: String,
}

fn failed(e: fred::error::Error) -> BackendError {
    BackendError::from(e)
}

/// Replaces a login if its version (its first 8 bytes) is still ARGV[1].
const REPLACE_LOGIN: &str = r#"
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, 8) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
"#;

/// Adds a login to an index set, which lives as long as its last login.
const INDEX_LOGIN: &str = r#"
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) == -1 then
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
else
  redis.call('EXPIREAT', KEYS[1], ARGV[2], 'GT')
end
return 1
"#;

/// Extends a lease, if its owner still holds it.
const RENEW_LEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// Gives a lease back, if its owner still holds it.
const RELEASE_LEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 1
"#;

impl Redis {
    /// Connects to the server(s) a URL names: `redis://` (one node),
    /// `redis-sentinel://` or `redis-cluster://`, as the Redis client reads
    /// them.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Redis> {
        let config = RedisConfig::from_url(url)?;
        // Redis gone for a while (a restart, a failover): each command
        // fails within the timeout, so that the BFF answers 503 instead of
        // waiting, and the pool reconnects in the background, without end,
        // backing off from 100 ms to 2 s, so that the sessions Redis kept
        // are there again when it is back.
        let performance = PerformanceConfig {
            default_command_timeout: COMMAND_TIMEOUT,
            ..PerformanceConfig::default()
        };
        let connection = ConnectionConfig {
            connection_timeout: COMMAND_TIMEOUT,
            internal_command_timeout: COMMAND_TIMEOUT,
            ..ConnectionConfig::default()
        };
        let reconnect = ReconnectPolicy::new_exponential(0, 100, 2_000, 2);
        let pool = Pool::new(
            config,
            Some(performance),
            Some(connection),
            Some(reconnect),
            4,
        )?;
        // fred's pool does not connect until told to.
        pool.init().await?;
        Ok(Redis {
            pool,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, kind: &str, key: &str) -> String {
        format!("{}{kind}:{key}", self.prefix)
    }

    async fn set(
        &self,
        key: String,
        value: Bytes,
        expires_at: i64,
        condition: SetOptions,
    ) -> Result<bool> {
        let set: Option<String> = self
            .pool
            .set(
                key,
                value,
                Some(Expiration::EXAT(expires_at)),
                Some(condition),
                false,
            )
            .await
            .map_err(failed)?;
        Ok(set.is_some())
    }
}

#[async_trait]
impl Backend for Redis {
    async fn create_session(&self, key: &str, value: &[u8], expires_at: i64) -> Result<bool> {
        let value = Bytes::copy_from_slice(value);
        self.set(self.key("s", key), value, expires_at, SetOptions::NX)
            .await
    }

    async fn update_session(&self, key: &str, value: &[u8], expires_at: i64) -> Result<()> {
        // `XX`: only a key that is still there; a deleted session stays deleted.
        let value = Bytes::copy_from_slice(value);
        self.set(self.key("s", key), value, expires_at, SetOptions::XX)
            .await?;
        Ok(())
    }

    async fn load_session(&self, key: &str, _now: i64) -> Result<Option<Vec<u8>>> {
        self.pool.get(self.key("s", key)).await.map_err(failed)
    }

    async fn delete_session(&self, key: &str) -> Result<()> {
        let _: i64 = self.pool.del(self.key("s", key)).await.map_err(failed)?;
        Ok(())
    }

    async fn insert_login(
        &self,
        key: &str,
        index: &LoginIndex<'_>,
        value: &[u8],
        expires_at: i64,
    ) -> Result<()> {
        let login_key = self.key("l", key);
        // The indexes first: one left behind by a failure points at nothing.
        let mut indexes = vec![self.key("sub", index.sub)];
        if let Some(sid) = index.sid {
            indexes.push(self.key("sid", sid));
        }
        for index in indexes {
            let _: i64 = self
                .pool
                .eval(
                    INDEX_LOGIN,
                    vec![index],
                    vec![login_key.clone(), expires_at.to_string()],
                )
                .await
                .map_err(failed)?;
        }
        let mut stored = Vec::with_capacity(8 + value.len());
        stored.extend_from_slice(&0u64.to_be_bytes());
        stored.extend_from_slice(value);
        self.set(login_key, Bytes::from(stored), expires_at, SetOptions::NX)
            .await?;
        Ok(())
    }

    async fn load_login(&self, key: &str, _now: i64) -> Result<Option<(u64, Vec<u8>)>> {
        let stored: Option<Vec<u8>> = self.pool.get(self.key("l", key)).await.map_err(failed)?;
        Ok(stored.filter(|s| s.len() >= 8).map(|mut s| {
            let value = s.split_off(8);
            let version = u64::from_be_bytes(s.try_into().unwrap_or_default());
            (version, value)
        }))
    }

    async fn replace_login(&self, key: &str, version: u64, value: &[u8]) -> Result<bool> {
        let mut stored = Vec::with_capacity(8 + value.len());
        stored.extend_from_slice(&(version + 1).to_be_bytes());
        stored.extend_from_slice(value);
        let replaced: i64 = self
            .pool
            .eval(
                REPLACE_LOGIN,
                vec![self.key("l", key)],
                vec![
                    Bytes::copy_from_slice(&version.to_be_bytes()),
                    Bytes::from(stored),
                ],
            )
            .await
            .map_err(failed)?;
        Ok(replaced == 1)
    }

    async fn delete_login(&self, key: &str) -> Result<()> {
        let _: i64 = self.pool.del(self.key("l", key)).await.map_err(failed)?;
        Ok(())
    }

    async fn delete_logins(&self, index: Index<'_>) -> Result<usize> {
        let index = match index {
            Index::Sid(sid) => self.key("sid", sid),
            Index::Sub(sub) => self.key("sub", sub),
        };
        let logins: Vec<String> = self.pool.smembers(&index).await.map_err(failed)?;
        let mut deleted = 0;
        for login in logins {
            let n: i64 = self.pool.del(login).await.map_err(failed)?;
            deleted += n as usize;
        }
        let _: i64 = self.pool.del(index).await.map_err(failed)?;
        Ok(deleted)
    }

    async fn first_use(&self, key: &str, expires_at: i64, _now: i64) -> Result<bool> {
        self.set(
            self.key("once", key),
            Bytes::from_static(b"1"),
            expires_at,
            SetOptions::NX,
        )
        .await
    }

    async fn acquire(&self, key: &str, owner: &str, until_ms: i64) -> Result<bool> {
        let set: Option<String> = self
            .pool
            .set(
                self.key("lease", key),
                owner,
                Some(Expiration::PXAT(until_ms)),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(failed)?;
        Ok(set.is_some())
    }

    async fn renew(&self, key: &str, owner: &str, until_ms: i64) -> Result<bool> {
        let renewed: i64 = self
            .pool
            .eval(
                RENEW_LEASE,
                vec![self.key("lease", key)],
                vec![owner.to_owned(), until_ms.to_string()],
            )
            .await
            .map_err(failed)?;
        Ok(renewed == 1)
    }

    async fn release(&self, key: &str, owner: &str) -> Result<()> {
        let _: i64 = self
            .pool
            .eval(
                RELEASE_LEASE,
                vec![self.key("lease", key)],
                vec![owner.to_owned()],
            )
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn sweep(&self, _now: i64) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use fred::types::config::ServerConfig;

    use super::RedisConfig;

    #[test]
    fn a_single_node_sentinel_and_cluster_are_all_urls_the_store_takes() {
        let node = RedisConfig::from_url("redis://127.0.0.1:6379").unwrap();
        assert!(matches!(node.server, ServerConfig::Centralized { .. }));
        let sentinel = RedisConfig::from_url(
            "redis-sentinel://10.0.0.1:26379/0?sentinelServiceName=bff&node=10.0.0.2:26379",
        )
        .unwrap();
        assert!(matches!(sentinel.server, ServerConfig::Sentinel { .. }));
        let cluster =
            RedisConfig::from_url("redis-cluster://10.0.0.1:30001?node=10.0.0.2:30002").unwrap();
        assert!(matches!(cluster.server, ServerConfig::Clustered { .. }));
    }
}
