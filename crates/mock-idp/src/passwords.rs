//! Password hashing (argon2id, PHC strings) for sign-in and registration.
//!
//! Hashing costs ~20 ms of CPU by design, so it runs on the blocking pool and
//! never stalls the async workers.

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};

/// A hash made once at start, checked against when the username is unknown,
/// so a wrong username costs as much time as a wrong password (no user
/// enumeration by timing).
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The argon2id PHC string of a password, with a fresh salt.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Checks a password against a PHC hash, off the async workers. With no
/// user (`None`) it checks against a dummy hash and answers `false`.
pub async fn verify(password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || match phc {
        Some(phc) => check(&password, &phc),
        None => {
            let dummy = DUMMY_HASH.get_or_init(|| hash("not a password").unwrap_or_default());
            let _ = check(&password, dummy);
            false
        }
    })
    .await
    .unwrap_or(false)
}

fn check(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// `hash` off the async workers.
pub async fn hash_blocking(password: String) -> Option<String> {
    tokio::task::spawn_blocking(move || hash(&password).ok())
        .await
        .ok()
        .flatten()
}
