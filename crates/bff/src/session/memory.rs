//! The in-process session backend: for tests and a single instance that
//! may forget every session when it restarts. Expired entries are swept.

use std::{collections::HashMap, sync::Mutex};

use async_trait::async_trait;

use super::backend::{Backend, Index, LoginIndex, Result, real_now_ms};

#[derive(Default)]
pub struct Memory(Mutex<Maps>);

#[derive(Default)]
struct Maps {
    sessions: HashMap<String, (Vec<u8>, i64)>,
    logins: HashMap<String, Login>,
    once: HashMap<String, i64>,
    leases: HashMap<String, (String, i64)>,
}

struct Login {
    version: u64,
    sid: Option<String>,
    sub: String,
    value: Vec<u8>,
    expires_at: i64,
}

impl Memory {
    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Backend for Memory {
    async fn create_session(&self, key: &str, value: &[u8], expires_at: i64) -> Result<bool> {
        let mut maps = self.maps();
        if maps.sessions.contains_key(key) {
            return Ok(false);
        }
        maps.sessions
            .insert(key.to_owned(), (value.to_vec(), expires_at));
        Ok(true)
    }

    async fn update_session(&self, key: &str, value: &[u8], expires_at: i64) -> Result<()> {
        if let Some(entry) = self.maps().sessions.get_mut(key) {
            *entry = (value.to_vec(), expires_at);
        }
        Ok(())
    }

    async fn load_session(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .maps()
            .sessions
            .get(key)
            .filter(|(_, expires_at)| now < *expires_at)
            .map(|(value, _)| value.clone()))
    }

    async fn delete_session(&self, key: &str) -> Result<()> {
        self.maps().sessions.remove(key);
        Ok(())
    }

    async fn insert_login(
        &self,
        key: &str,
        index: &LoginIndex<'_>,
        value: &[u8],
        expires_at: i64,
    ) -> Result<()> {
        let login = Login {
            version: 0,
            sid: index.sid.map(str::to_owned),
            sub: index.sub.to_owned(),
            value: value.to_vec(),
            expires_at,
        };
        self.maps().logins.insert(key.to_owned(), login);
        Ok(())
    }

    async fn load_login(&self, key: &str, now: i64) -> Result<Option<(u64, Vec<u8>)>> {
        Ok(self
            .maps()
            .logins
            .get(key)
            .filter(|l| now < l.expires_at)
            .map(|l| (l.version, l.value.clone())))
    }

    async fn replace_login(&self, key: &str, version: u64, value: &[u8]) -> Result<bool> {
        let mut maps = self.maps();
        match maps.logins.get_mut(key) {
            Some(login) if login.version == version => {
                login.version += 1;
                login.value = value.to_vec();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_login(&self, key: &str) -> Result<()> {
        self.maps().logins.remove(key);
        Ok(())
    }

    async fn delete_logins(&self, index: Index<'_>) -> Result<usize> {
        let mut maps = self.maps();
        let before = maps.logins.len();
        maps.logins.retain(|_, login| match index {
            Index::Sid(sid) => login.sid.as_deref() != Some(sid),
            Index::Sub(sub) => login.sub != sub,
        });
        Ok(before - maps.logins.len())
    }

    async fn first_use(&self, key: &str, expires_at: i64, now: i64) -> Result<bool> {
        let mut maps = self.maps();
        match maps.once.get(key) {
            Some(until) if now < *until => Ok(false),
            _ => {
                maps.once.insert(key.to_owned(), expires_at);
                Ok(true)
            }
        }
    }

    async fn acquire(&self, key: &str, owner: &str, until_ms: i64) -> Result<bool> {
        let mut maps = self.maps();
        let now_ms = real_now_ms();
        match maps.leases.get(key) {
            Some((holder, until)) if holder != owner && now_ms < *until => Ok(false),
            _ => {
                maps.leases
                    .insert(key.to_owned(), (owner.to_owned(), until_ms));
                Ok(true)
            }
        }
    }

    async fn renew(&self, key: &str, owner: &str, until_ms: i64) -> Result<bool> {
        match self.maps().leases.get_mut(key) {
            Some((holder, until)) if holder == owner => {
                *until = until_ms;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, key: &str, owner: &str) -> Result<()> {
        let mut maps = self.maps();
        if maps
            .leases
            .get(key)
            .is_some_and(|(holder, _)| holder == owner)
        {
            maps.leases.remove(key);
        }
        Ok(())
    }

    async fn sweep(&self, now: i64) -> Result<()> {
        let now_ms = real_now_ms();
        let mut maps = self.maps();
        maps.sessions.retain(|_, (_, expires_at)| now < *expires_at);
        maps.logins.retain(|_, login| now < login.expires_at);
        maps.once.retain(|_, until| now < *until);
        maps.leases.retain(|_, (_, until)| now_ms < *until);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expired_entries_are_swept_and_live_ones_kept() {
        let memory = Memory::default();
        memory.create_session("old", b"a", 100).await.unwrap();
        memory.create_session("new", b"b", 300).await.unwrap();
        let index = LoginIndex {
            sid: Some("s"),
            sub: "u",
        };
        memory
            .insert_login("gone", &index, b"c", 100)
            .await
            .unwrap();
        memory.first_use("jti", 100, 50).await.unwrap();
        memory.sweep(200).await.unwrap();
        assert_eq!(memory.maps().sessions.len(), 1);
        assert!(memory.maps().logins.is_empty());
        assert!(memory.maps().once.is_empty());
        assert_eq!(
            memory.load_session("new", 200).await.unwrap(),
            Some(b"b".to_vec())
        );
    }

    #[tokio::test]
    async fn a_login_is_replaced_only_over_the_version_it_was_read_at() {
        let memory = Memory::default();
        let index = LoginIndex {
            sid: None,
            sub: "u",
        };
        memory.insert_login("l", &index, b"v0", 100).await.unwrap();
        assert!(memory.replace_login("l", 0, b"v1").await.unwrap());
        // An older copy (read at version 0) cannot come back.
        assert!(!memory.replace_login("l", 0, b"stale").await.unwrap());
        assert_eq!(
            memory.load_login("l", 0).await.unwrap(),
            Some((1, b"v1".to_vec()))
        );
    }
}
