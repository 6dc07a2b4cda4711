//! How the IdP makes, keeps and compares secrets: codes, cookies, refresh
//! tokens and anti-CSRF tokens.
//!
//! - RFC 6749 10.10: at least 128 bits from a CSPRNG; bearer secrets here
//!   carry 256.
//! - Secrets that act as bearer credentials are stored as SHA-256 digests:
//!   a copy of the database signs no one in.
//! - Secrets are compared in constant time.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 256 bits from the OS's CSPRNG, base64url: codes, cookies, refresh tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// 128 random bits, for identifiers that are not secrets (`jti`, `sid`).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256, base64url: how bearer secrets are stored and compared.
pub fn digest(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

/// Whether two secrets are equal, in time that does not depend on where
/// they differ.
pub fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
