//! Signing keys: the IdP signs ID tokens (step 8), access tokens (RFC 9068)
//! and logout tokens with them, and publishes their public halves at
//! `/v1/keys` (the JWKS) for the BFF and the API to verify with.
//!
//! - Keys live in the store (SQLite under `data/`), so a restart keeps every
//!   issued token valid.
//! - Each key has a `kid`: its RFC 7638 JWK thumbprint.
//! - Rotation adds a new key and makes it the signing key; the old one stays
//!   in the JWKS until every token it signed has expired, then leaves it.

use std::sync::{Arc, RwLock};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use clock::Clock;

use crate::store::{Store, StoredKey};

/// One signing key pair.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    signer: Signer,
    decoding: DecodingKey,
    /// The public JWK, as published.
    pub jwk: Value,
}

/// The private key, parsed and checked once, when it is loaded or made.
/// (`jsonwebtoken::encode` parses and checks the key on every call: with
/// RSA-2048 that is about half of each signature's cost, and the IdP signs
/// two tokens a login.)
enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl Signer {
    /// The JWS signature of `message` (RFC 7515 5.1): RSASSA-PKCS1-v1_5 with
    /// SHA-256 (RS256), or ECDSA P-256 with SHA-256 as R || S (ES256,
    /// RFC 7518 3.4).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match self {
            Signer::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| KeyError::Signing)?;
                Ok(signature)
            }
            Signer::Ec(key) => Ok(key
                .sign(&rng, message)
                .map_err(|_| KeyError::Signing)?
                .as_ref()
                .to_vec()),
        }
    }
}

/// A key as the IdP holds it: retired once a newer key took over signing.
#[derive(Clone)]
struct Entry {
    key: Arc<SigningKey>,
    retired_at: Option<i64>,
}

impl SigningKey {
    /// Makes a fresh key pair for `alg` (RS256: RSA-2048; ES256: P-256).
    pub fn generate(alg: &str) -> anyhow::Result<(SigningKey, String)> {
        let pem = match alg {
            "RS256" => {
                use rsa::pkcs8::EncodePrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
                key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)?.to_string()
            }
            "ES256" => {
                use p256::pkcs8::EncodePrivateKey;
                let key = p256::SecretKey::random(&mut rand::thread_rng());
                key.to_pkcs8_pem(p256::pkcs8::LineEnding::LF)?.to_string()
            }
            other => anyhow::bail!("unsupported signing algorithm {other}"),
        };
        let key = SigningKey::from_pem(alg, &pem)?;
        Ok((key, pem))
    }

    /// Rebuilds a key from its stored PKCS#8 PEM.
    pub fn from_pem(alg: &str, pem: &str) -> anyhow::Result<SigningKey> {
        let (alg, signer, decoding, mut jwk) = match alg {
            "RS256" => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                use rsa::pkcs8::DecodePrivateKey;
                use rsa::traits::PublicKeyParts;
                let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)?;
                let n = key.n().to_bytes_be();
                let e = key.e().to_bytes_be();
                let signer = RsaKeyPair::from_der(key.to_pkcs1_der()?.as_bytes())
                    .map(Signer::Rsa)
                    .map_err(|e| anyhow::anyhow!("RSA key: {e}"))?;
                let decoding = DecodingKey::from_rsa_raw_components(&n, &e);
                // RFC 7638 3.2: members in lexicographic order.
                let jwk = json!({"e": b64(&e), "kty": "RSA", "n": b64(&n)});
                (Algorithm::RS256, signer, decoding, jwk)
            }
            "ES256" => {
                use p256::elliptic_curve::sec1::ToEncodedPoint;
                use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
                let key = p256::SecretKey::from_pkcs8_pem(pem)?;
                let point = key.public_key().to_encoded_point(false);
                let (Some(x), Some(y)) = (point.x(), point.y()) else {
                    anyhow::bail!("P-256 public key has no coordinates");
                };
                let (x, y) = (b64(x), b64(y));
                let signer = EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    key.to_pkcs8_der()?.as_bytes(),
                )
                .map(Signer::Ec)
                .map_err(|e| anyhow::anyhow!("P-256 key: {e}"))?;
                let decoding = DecodingKey::from_ec_components(&x, &y)?;
                let jwk = json!({"crv": "P-256", "kty": "EC", "x": x, "y": y});
                (Algorithm::ES256, signer, decoding, jwk)
            }
            other => anyhow::bail!("unsupported signing algorithm {other}"),
        };
        // RFC 7638: the thumbprint is the SHA-256 of the canonical JSON above.
        let kid = b64(&Sha256::digest(jwk.to_string().as_bytes()));
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg_name(alg));
        jwk["use"] = json!("sig");
        Ok(SigningKey {
            kid,
            alg,
            signer,
            decoding,
            jwk,
        })
    }
}

impl SigningKey {
    /// A JWS in compact serialization (RFC 7515 7.1):
    /// BASE64URL(header) . BASE64URL(claims) . BASE64URL(signature).
    fn sign<T: Serialize>(&self, header: &Header, claims: &T) -> Result<String, KeyError> {
        let header = serde_json::to_vec(header).map_err(|_| KeyError::Signing)?;
        let claims = serde_json::to_vec(claims).map_err(|_| KeyError::Signing)?;
        let mut token = format!("{}.{}", b64(&header), b64(&claims));
        let signature = self.signer.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&b64(&signature));
        Ok(token)
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        _ => "unsupported",
    }
}

/// What a token must be for [`Keys::verify`] to accept it.
pub struct Expect<'a> {
    /// The header `typ` (RFC 8725 3.11 explicit typing).
    pub typ: &'a str,
    pub issuer: &'a str,
    /// Required audience, if any.
    pub audience: Option<&'a str>,
    /// The time by which `exp` must not have come; `None` only for an
    /// `id_token_hint`, which may have expired (OIDC RP-Initiated Logout
    /// 1.0, 2).
    pub unexpired_at: Option<i64>,
}

/// The IdP's keys: the active one signs; all published ones verify.
#[derive(Clone)]
pub struct Keys {
    inner: Arc<RwLock<Vec<Entry>>>,
    /// How long a retired key stays published: the longest token lifetime.
    publish_after_retirement: i64,
    clock: Clock,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no signing key")]
    NoKey,
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error("signing failed")]
    Signing,
}

impl Keys {
    /// Loads the stored keys, making the first one if the store has none.
    pub async fn load(
        store: &Store,
        alg: &str,
        publish_after_retirement: i64,
        clock: Clock,
    ) -> anyhow::Result<Keys> {
        let mut stored = store.signing_keys().await?;
        if stored.is_empty() {
            let now = clock.now();
            let (key, pem) = SigningKey::generate(alg)?;
            store
                .insert_signing_key(&key.kid, alg_name(key.alg), &pem, now)
                .await?;
            stored = store.signing_keys().await?;
        }
        let keys = stored
            .iter()
            .map(|k: &StoredKey| {
                Ok(Entry {
                    key: Arc::new(SigningKey::from_pem(&k.alg, &k.private_pem)?),
                    retired_at: k.retired_at,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        // The store's key signs, whatever --signing-alg says: say so.
        if let Some(active) = keys.iter().rev().find(|e| e.retired_at.is_none())
            && alg_name(active.key.alg) != alg
        {
            tracing::warn!(
                "--signing-alg {alg} is not used: the stored key {} signs with {}; \
                 `mock-idp rotate-keys --signing-alg {alg}` adds an {alg} key",
                active.key.kid,
                alg_name(active.key.alg)
            );
        }
        Ok(Keys {
            inner: Arc::new(RwLock::new(keys)),
            publish_after_retirement,
            clock,
        })
    }

    /// Adds a new key, makes it the signing key and retires the old one.
    pub async fn rotate(&self, store: &Store, alg: &str) -> anyhow::Result<String> {
        let now = self.clock.now();
        let (key, pem) = SigningKey::generate(alg)?;
        let kid = key.kid.clone();
        store.rotate_signing_key(&kid, alg, &pem, now).await?;
        let mut keys = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for entry in keys.iter_mut() {
            entry.retired_at.get_or_insert(now);
        }
        keys.push(Entry {
            key: Arc::new(key),
            retired_at: None,
        });
        Ok(kid)
    }

    fn snapshot(&self) -> Vec<Entry> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The key that signs now: the newest one not retired.
    pub fn active(&self) -> Result<Arc<SigningKey>, KeyError> {
        self.snapshot()
            .into_iter()
            .rev()
            .find(|e| e.retired_at.is_none())
            .map(|e| e.key)
            .ok_or(KeyError::NoKey)
    }

    /// Keys still published: the active one and those retired less than
    /// a token lifetime ago.
    fn published(&self) -> Vec<Arc<SigningKey>> {
        let now = self.clock.now();
        self.snapshot()
            .into_iter()
            .filter(|e| {
                e.retired_at
                    .is_none_or(|at| now < at + self.publish_after_retirement)
            })
            .map(|e| e.key)
            .collect()
    }

    /// The JWKS document: public parts only.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.published().iter().map(|k| k.jwk.clone()).collect();
        json!({ "keys": keys })
    }

    /// Signs claims with the active key, with header `typ` and `kid`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let key = self.active()?;
        let mut header = Header::new(key.alg);
        header.typ = Some(typ.to_owned());
        header.kid = Some(key.kid.clone());
        key.sign(&header, claims)
    }

    /// Signs with a header of `alg` and `kid` only, as Okta's access tokens
    /// are.
    pub fn sign_untyped<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let key = self.active()?;
        let mut header = Header::new(key.alg);
        header.typ = None;
        self.sign_with_header(header, claims)
    }

    /// Signs with a caller-made header (tests forge tokens with it); `alg`
    /// and `kid` always come from the active key.
    pub fn sign_with_header<T: Serialize>(
        &self,
        mut header: Header,
        claims: &T,
    ) -> Result<String, KeyError> {
        let key = self.active()?;
        header.alg = key.alg;
        header.kid = Some(key.kid.clone());
        key.sign(&header, claims)
    }

    /// Verifies a token this IdP signed: known `kid`, the key's own
    /// algorithm (RFC 8725 3.1), signature, `typ`, `iss`, `aud`, and `exp`
    /// against the IdP's clock.
    pub fn verify<T: DeserializeOwned>(&self, token: &str, expect: &Expect<'_>) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.typ.as_deref() != Some(expect.typ) {
            return None;
        }
        let kid = header.kid?;
        let key = self.published().into_iter().find(|k| k.kid == kid)?;
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[expect.issuer]);
        validation.set_required_spec_claims(&["iss", "exp"]);
        // `exp` is compared below, with the IdP's clock.
        validation.validate_exp = false;
        match expect.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let claims = jsonwebtoken::decode::<Value>(token, &key.decoding, &validation)
            .ok()?
            .claims;
        let exp = claims.get("exp")?.as_i64()?;
        if expect.unexpired_at.is_some_and(|now| now >= exp) {
            return None;
        }
        serde_json::from_value(claims).ok()
    }
}
