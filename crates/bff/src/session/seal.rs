//! Sealing: what the session store writes is encrypted and authenticated
//! (XChaCha20-Poly1305, an AEAD), so a copy of the database or of Redis
//! holds no usable token, verifier or cookie.
//!
//! - Keys come from configuration, newest first: the newest seals, every
//!   one opens, so a key can be rotated by putting a new one in front and
//!   dropping the old one once the sessions it sealed have expired.
//! - Each sealed value names its key by a short fingerprint, carries a fresh
//!   random nonce, and is bound to the slot it is stored under (the
//!   associated data), so a value copied to another slot does not open.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, AeadCore, OsRng, Payload},
};
use sha2::{Digest, Sha256};

/// Format version of a sealed value.
const VERSION: u8 = 1;
const FINGERPRINT_LEN: usize = 4;
const NONCE_LEN: usize = 24;

/// One key, named by the first bytes of its SHA-256.
struct Key {
    fingerprint: [u8; FINGERPRINT_LEN],
    cipher: XChaCha20Poly1305,
}

/// The session store's keys, newest first. No `Debug`: it holds keys.
pub struct Sealer {
    keys: Vec<Key>,
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("a session key must be 32 bytes, base64url-encoded (43 characters)")]
    BadKey,
    #[error("at least one session key is needed")]
    NoKey,
    #[error("a stored value could not be opened (another key, or tampered with)")]
    Unopenable,
}

impl Sealer {
    /// Keys as configured: base64url (or standard base64) of 32 bytes each,
    /// newest first.
    pub fn from_encoded(encoded: &[String]) -> Result<Sealer, SealError> {
        let keys = encoded
            .iter()
            .map(|text| {
                let text = text.trim().trim_end_matches('=');
                let bytes = URL_SAFE_NO_PAD
                    .decode(text.replace('+', "-").replace('/', "_"))
                    .map_err(|_| SealError::BadKey)?;
                let bytes: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
                Ok(Key::new(&bytes))
            })
            .collect::<Result<Vec<_>, SealError>>()?;
        if keys.is_empty() {
            return Err(SealError::NoKey);
        }
        Ok(Sealer { keys })
    }

    /// A fresh random key, base64url: for a new key file, or for a store
    /// that lives only as long as the process.
    pub fn new_key() -> String {
        URL_SAFE_NO_PAD.encode(XChaCha20Poly1305::generate_key(&mut OsRng))
    }

    /// Encrypts `plain` for the slot `slot`, with the newest key.
    pub fn seal(&self, slot: &str, plain: &[u8]) -> Vec<u8> {
        let key = &self.keys[0];
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption with a valid key and nonce cannot fail.
        let sealed = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: slot.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + FINGERPRINT_LEN + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&key.fingerprint);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts a value sealed for `slot` by any of the keys.
    pub fn open(&self, slot: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let header = 1 + FINGERPRINT_LEN + NONCE_LEN;
        if sealed.len() < header || sealed[0] != VERSION {
            return Err(SealError::Unopenable);
        }
        let fingerprint = &sealed[1..1 + FINGERPRINT_LEN];
        let key = self
            .keys
            .iter()
            .find(|k| k.fingerprint == fingerprint)
            .ok_or(SealError::Unopenable)?;
        let nonce: [u8; NONCE_LEN] = sealed[1 + FINGERPRINT_LEN..header]
            .try_into()
            .map_err(|_| SealError::Unopenable)?;
        key.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &sealed[header..],
                    aad: slot.as_bytes(),
                },
            )
            .map_err(|_| SealError::Unopenable)
    }
}

impl Key {
    fn new(bytes: &[u8; 32]) -> Key {
        let digest = Sha256::digest(bytes);
        let mut fingerprint = [0u8; FINGERPRINT_LEN];
        fingerprint.copy_from_slice(&digest[..FINGERPRINT_LEN]);
        Key {
            fingerprint,
            cipher: XChaCha20Poly1305::new(bytes.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_any_listed_key_and_only_in_their_slot() {
        let old = Sealer::new_key();
        let new = Sealer::new_key();
        let before = Sealer::from_encoded(std::slice::from_ref(&old)).unwrap();
        let sealed = before.seal("slot-a", b"refresh token");
        assert!(!sealed.windows(13).any(|w| w == b"refresh token"));
        // Rotation: the new key in front, the old one still opens.
        let after = Sealer::from_encoded(&[new.clone(), old]).unwrap();
        assert_eq!(after.open("slot-a", &sealed).unwrap(), b"refresh token");
        // Moved to another slot, or the old key dropped: unopenable.
        assert!(after.open("slot-b", &sealed).is_err());
        let only_new = Sealer::from_encoded(&[new]).unwrap();
        assert!(only_new.open("slot-a", &sealed).is_err());
        // Tampered with: unopenable.
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(after.open("slot-a", &tampered).is_err());
    }

    #[test]
    fn a_key_must_be_32_bytes() {
        assert!(Sealer::from_encoded(&["c2hvcnQ".into()]).is_err());
        assert!(Sealer::from_encoded(&[]).is_err());
    }
}
