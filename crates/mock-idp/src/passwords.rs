//! Password hashing (argon2id, PHC strings) for sign-in and registration.
//!
//! A check costs ~20 ms of CPU and 19 MiB of memory by design (argon2id at
//! its defaults: m = 19 MiB, t = 2, p = 1), so checks run on the blocking
//! pool, never on the async workers, and at most one per core at a time
//! ([`Hasher`]). Each turn keeps its 19 MiB of working memory and hands it
//! to the next check, so hashing holds at most `cores × 19 MiB` however many
//! sign-ins arrive, and whatever the allocator does with freed memory (with
//! a fresh 19 MiB per check, glibc kept the freed blocks: 500 concurrent
//! sign-ups left the process at 870 MiB). A request that waits too long for
//! its turn gets "busy, try again" rather than a queue that grows without
//! bound.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{Output, ParamsString, Salt, SaltString, rand_core::OsRng},
};
use tokio::sync::Semaphore;

/// How long a request may wait for a turn at hashing.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// The working memory of one argon2 computation, kept for the next one.
type Memory = Vec<Block>;

/// The argon2id PHC string of a password, with a fresh salt.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    hash_in(&mut Memory::new(), password)
}

fn hash_in(memory: &mut Memory, password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::default();
    let mut out = [0; Params::DEFAULT_OUTPUT_LEN];
    compute(memory, &params, password, salt.as_salt(), &mut out)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` is the one `phc` was made from: the same computation
/// with the hash's own algorithm, parameters and salt, compared in constant
/// time. A hash this module cannot read matches nothing.
fn check_in(memory: &mut Memory, password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    if Algorithm::try_from(parsed.algorithm) != Ok(Algorithm::Argon2id)
        || parsed
            .version
            .is_some_and(|v| v != u32::from(Version::V0x13))
    {
        return false;
    }
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut out = vec![0; expected.len()];
    compute(memory, &params, password, salt, &mut out).is_ok()
        && Output::new(&out).is_ok_and(|actual| actual == expected)
}

/// argon2id over `memory`, grown to what `params` need and kept.
fn compute(
    memory: &mut Memory,
    params: &Params,
    password: &str,
    salt: Salt<'_>,
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut salt_bytes = [0; Salt::MAX_LENGTH];
    let salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|_| argon2::Error::SaltTooShort)?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone()).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        out,
        &mut memory[..],
    )
}

/// No turn at hashing came in time: the IdP is busy.
#[derive(Debug, thiserror::Error)]
#[error("password hashing is busy")]
pub struct Busy;

/// Password checks and hashes, a bounded number at a time.
#[derive(Clone)]
pub struct Hasher {
    turns: Arc<Semaphore>,
    /// The working memory of the turns not running: taken with a turn,
    /// given back before it, so there are never more than `turns` of them.
    memories: Arc<Mutex<Vec<Memory>>>,
    /// Checked against when the username is unknown, so a wrong username
    /// costs as much time as a wrong password (no user enumeration by
    /// timing).
    dummy: Arc<str>,
}

impl Hasher {
    /// One turn per core of this machine.
    pub fn per_core() -> Hasher {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Hasher::new(cores)
    }

    pub fn new(turns: usize) -> Hasher {
        Hasher {
            turns: Arc::new(Semaphore::new(turns.max(1))),
            memories: Arc::default(),
            dummy: hash("not a password").unwrap_or_default().into(),
        }
    }

    /// How many turns are free right now.
    pub fn turns(&self) -> usize {
        self.turns.available_permits()
    }

    /// Runs `work` on the blocking pool when a turn comes, with the turn's
    /// working memory.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let turn = tokio::time::timeout(MAX_WAIT, self.turns.clone().acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        let memories = self.memories.clone();
        tokio::task::spawn_blocking(move || {
            let mut memory = memories
                .lock()
                .map(|mut m| m.pop())
                .ok()
                .flatten()
                .unwrap_or_default();
            let answer = work(&mut memory);
            if let Ok(mut kept) = memories.lock() {
                kept.push(memory);
            }
            drop(turn);
            answer
        })
        .await
        .map_err(|_| Busy)
    }

    /// Checks a password against a PHC hash. With no user (`None`) it
    /// checks against a dummy hash and answers `false`.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, Busy> {
        let dummy = self.dummy.clone();
        self.run(move |memory| match phc {
            Some(phc) => check_in(memory, &password, &phc),
            None => {
                let _ = check_in(memory, &password, &dummy);
                false
            }
        })
        .await
    }

    /// The hash of a new password.
    pub async fn hash(&self, password: String) -> Result<Option<String>, Busy> {
        self.run(move |memory| hash_in(memory, &password).ok())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hasher = Hasher::new(1);
        let phc = hasher.hash("correct horse".into()).await.unwrap().unwrap();
        assert!(
            hasher
                .verify("correct horse".into(), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("wrong".into(), Some(phc)).await.unwrap());
        assert!(!hasher.verify("anything".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn a_hash_from_the_argon2_crate_itself_verifies() {
        use argon2::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        let hasher = Hasher::new(1);
        assert!(
            hasher
                .verify("correct horse".into(), Some(theirs.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("Correct horse".into(), Some(theirs))
                .await
                .unwrap()
        );
        // And ours verifies with the crate's own verifier.
        use argon2::PasswordVerifier;
        let ours = hash("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_hash_of_another_algorithm_or_a_broken_one_matches_nothing() {
        let hasher = Hasher::new(1);
        let argon2i = hash("pw").unwrap().replace("$argon2id$", "$argon2i$");
        for phc in [argon2i, "not a hash".to_owned(), String::new()] {
            assert!(
                !hasher.verify("pw".into(), Some(phc.clone())).await.unwrap(),
                "{phc}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_checks_run_at_once_than_there_are_turns_and_they_share_their_memory() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let hasher = Hasher::new(2);
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut checks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (hasher, running, most) = (hasher.clone(), running.clone(), most.clone());
            checks.spawn(async move {
                hasher
                    .run(move |memory| {
                        let now = running.fetch_add(1, SeqCst) + 1;
                        most.fetch_max(now, SeqCst);
                        let _ = check_in(memory, "x", &hash("y").unwrap());
                        running.fetch_sub(1, SeqCst);
                    })
                    .await
            });
        }
        while let Some(answer) = checks.join_next().await {
            assert!(matches!(answer, Ok(Ok(()))));
        }
        assert_eq!(most.load(SeqCst), 2, "two at once at most, and two did run");
        assert_eq!(hasher.turns(), 2, "every turn given back");
        let kept = hasher.memories.lock().unwrap();
        assert!(
            kept.len() <= 2,
            "{} working memories for two turns",
            kept.len()
        );
        let block_count = Params::default().block_count();
        assert!(kept.iter().all(|m| m.len() == block_count));
    }
}
