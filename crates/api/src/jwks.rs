//! The issuer's signing keys, as step 10 needs them to verify an access token.
//!
//! Where the keys come from, and nothing else: the issuer's discovery
//! document (OpenID Connect Discovery 1.0 section 4; RFC 8414 section 3)
//! names its `jwks_uri`, whose JWK Set (RFC 7517 section 5) lists the public
//! keys. The token never says where its key lives: `jku`, `x5u` and embedded
//! `jwk` headers are refused in `validate.rs` (RFC 8725 section 3.10).
//!
//! Cache behaviour, in the order a request meets it:
//! - nothing is fetched when the service starts; the first token triggers the
//!   first fetch, so the API can start before the IdP;
//! - keys are reused for `--jwks-ttl-seconds`, then fetched again by the
//!   first request that notices, while concurrent requests keep using the
//!   old keys;
//! - an unknown `kid` triggers one fetch (the IdP rotated its key), but at
//!   most one fetch happens per `--jwks-min-refetch-seconds`, whatever the
//!   reason, so a flood of made-up `kid`s cannot hammer the IdP;
//! - a failed fetch keeps the keys already held: the IdP being down does not
//!   take the API down with it.
//!
//! Only asymmetric keys of an allow-listed (`kty`, `crv`, `alg`) triple are
//! kept, each bound to its one algorithm (RFC 8725 sections 3.1 and 3.2).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clock::Clock;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

/// Largest discovery document or JWK Set we read; a real one is a few KiB.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// RFC 7518 section 3.3: RSA keys of 2048 bits or larger MUST be used.
const MIN_RSA_MODULUS_BITS: usize = 2048;

/// One verification key from the issuer's JWKS, bound to the single
/// algorithm its JWK declares.
pub struct VerificationKey {
    pub kid: String,
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// Why no key could be found for a token.
#[derive(Debug, thiserror::Error)]
pub enum KeyLookupError {
    /// The issuer's current key set has no key with this `kid`.
    #[error("no key with this kid in the issuer's JWKS")]
    UnknownKid,
    /// No key set has ever been fetched (the IdP has been unreachable so far).
    #[error("the issuer's JWKS could not be fetched yet")]
    Unavailable,
}

/// The issuer's keys, fetched lazily and cached (see the module docs).
pub struct JwksCache {
    http: reqwest::Client,
    issuer: String,
    /// Seconds fetched keys are trusted.
    ttl: i64,
    /// Seconds between two fetches at the least.
    min_refetch: i64,
    clock: Clock,
    /// The keys requests read; replaced whole after each successful fetch.
    current: RwLock<Arc<KeySet>>,
    /// Held while fetching, so concurrent requests wait for one fetch
    /// instead of starting their own.
    fetcher: tokio::sync::Mutex<FetchState>,
    /// How many times the JWK Set document was requested.
    fetches: AtomicU64,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<VerificationKey>>,
    /// `None` until the first successful fetch (Unix seconds).
    fetched_at: Option<i64>,
}

#[derive(Default)]
struct FetchState {
    /// Start of the last fetch attempt, successful or not: the rate limit.
    last_attempt: Option<i64>,
    /// From discovery; forgotten after a failed fetch so discovery is read again.
    jwks_uri: Option<String>,
}

impl JwksCache {
    pub fn new(
        issuer: &str,
        ttl: Duration,
        min_refetch: Duration,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            // Keys come from where discovery says, never from where a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            http,
            issuer: issuer.to_owned(),
            ttl: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
            min_refetch: i64::try_from(min_refetch.as_secs()).unwrap_or(i64::MAX),
            clock,
            current: RwLock::new(Arc::new(KeySet::default())),
            fetcher: tokio::sync::Mutex::new(FetchState::default()),
            fetches: AtomicU64::new(0),
        })
    }

    /// How many times the JWK Set has been requested from the IdP since
    /// start. Public so that tests can prove the rate limit holds.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The key the issuer publishes under `kid`.
    pub async fn key(&self, kid: &str) -> Result<Arc<VerificationKey>, KeyLookupError> {
        let set = self.snapshot();
        match set.keys.get(kid) {
            Some(key) if !self.is_stale(&set) => return Ok(key.clone()),
            // Stale: one request refreshes; the others carry on with the old
            // keys rather than queue behind it.
            Some(_) => self.refresh(Wait::No).await,
            // Unknown: perhaps the IdP rotated its key. Wait for (or make) one
            // rate-limited fetch, then look again.
            None => self.refresh(Wait::Yes).await,
        }
        let set = self.snapshot();
        if set.fetched_at.is_none() {
            return Err(KeyLookupError::Unavailable);
        }
        set.keys.get(kid).cloned().ok_or(KeyLookupError::UnknownKid)
    }

    fn snapshot(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn is_stale(&self, set: &KeySet) -> bool {
        set.fetched_at
            .is_none_or(|at| self.clock.now() - at >= self.ttl)
    }

    /// Fetch the key set again unless a fetch started less than
    /// `min_refetch` ago. A failure is logged and leaves the keys held.
    async fn refresh(&self, wait: Wait) {
        let mut state = match wait {
            Wait::Yes => self.fetcher.lock().await,
            Wait::No => match self.fetcher.try_lock() {
                Ok(state) => state,
                Err(_) => return,
            },
        };
        let now = self.clock.now();
        if state
            .last_attempt
            .is_some_and(|at| now - at < self.min_refetch)
        {
            return;
        }
        state.last_attempt = Some(now);
        match self.fetch(&mut state).await {
            Ok(set) => {
                tracing::info!(keys = set.keys.len(), "fetched the issuer's JWKS");
                let set = Arc::new(set);
                match self.current.write() {
                    Ok(mut guard) => *guard = set,
                    Err(poisoned) => *poisoned.into_inner() = set,
                }
            }
            Err(error) => {
                state.jwks_uri = None;
                tracing::warn!(%error, "could not fetch the issuer's JWKS; keeping the keys held");
            }
        }
    }

    async fn fetch(&self, state: &mut FetchState) -> anyhow::Result<KeySet> {
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => self.discover_jwks_uri().await?,
        };
        state.jwks_uri = Some(jwks_uri.clone());

        self.fetches.fetch_add(1, Ordering::Relaxed);
        let body = self.get_json(&jwks_uri).await?;
        let document: JwkSetDocument = serde_json::from_slice(&body)?;
        let mut keys = HashMap::new();
        for raw in document.keys {
            match PublishedKey::deserialize(raw)
                .map_err(anyhow::Error::from)
                .and_then(usable_key)
            {
                Ok(key) => {
                    keys.insert(key.kid.clone(), Arc::new(key));
                }
                Err(reason) => tracing::debug!(%reason, "skipping a JWKS entry"),
            }
        }
        Ok(KeySet {
            keys,
            fetched_at: Some(self.clock.now()),
        })
    }

    /// OpenID Connect Discovery 1.0 section 4: the document lives at
    /// `{issuer}/.well-known/openid-configuration`, and (section 4.3) its
    /// `issuer` must be identical to the issuer it was fetched for.
    async fn discover_jwks_uri(&self) -> anyhow::Result<String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let body = self.get_json(&url).await?;
        let discovery: DiscoveryDocument = serde_json::from_slice(&body)?;
        anyhow::ensure!(
            discovery.issuer == self.issuer,
            "discovery names another issuer"
        );
        Ok(discovery.jwks_uri)
    }

    async fn get_json(&self, url: &str) -> anyhow::Result<Vec<u8>> {
        let mut response = self.http.get(url).send().await?.error_for_status()?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            anyhow::ensure!(
                body.len() + chunk.len() <= MAX_DOCUMENT_BYTES,
                "{url} is too large"
            );
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[derive(Clone, Copy)]
enum Wait {
    Yes,
    No,
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct JwkSetDocument {
    keys: Vec<serde_json::Value>,
}

/// The members of a JWK (RFC 7517 section 4, RFC 7518 section 6) this API
/// reads; anything else in the entry is ignored.
#[derive(Deserialize)]
struct PublishedKey {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    /// A private or symmetric key has no place in a JWKS; its presence says
    /// the set is broken, so the entry is skipped.
    d: Option<serde_json::Value>,
    k: Option<serde_json::Value>,
}

/// Turn a published JWK into a verification key, or say why it is unusable.
fn usable_key(jwk: PublishedKey) -> anyhow::Result<VerificationKey> {
    // RFC 7517 section 4.5: tokens pick their key by `kid`; a key without one
    // could never be selected.
    let kid = jwk.kid.clone().ok_or_else(|| anyhow::anyhow!("no kid"))?;
    // RFC 7517 section 4.2: a key published for encryption is not for signatures.
    anyhow::ensure!(
        jwk.use_.as_deref().is_none_or(|u| u == "sig"),
        "use is not sig"
    );
    // RFC 7517 section 4.3: if operations are listed, verification must be one.
    anyhow::ensure!(
        jwk.key_ops
            .as_ref()
            .is_none_or(|ops| ops.iter().any(|op| op == "verify")),
        "key_ops lacks verify"
    );
    anyhow::ensure!(
        jwk.d.is_none() && jwk.k.is_none(),
        "private or symmetric key material"
    );
    let alg = allowed_algorithm(&jwk).ok_or_else(|| anyhow::anyhow!("kty/crv/alg not allowed"))?;
    let key = match (alg, &jwk) {
        (
            Algorithm::ES256 | Algorithm::ES384,
            PublishedKey {
                x: Some(x),
                y: Some(y),
                ..
            },
        ) => DecodingKey::from_ec_components(x, y)?,
        (Algorithm::EdDSA, PublishedKey { x: Some(x), .. }) => DecodingKey::from_ed_components(x)?,
        (
            _,
            PublishedKey {
                n: Some(n),
                e: Some(e),
                ..
            },
        ) => {
            anyhow::ensure!(
                rsa_modulus_bits(n)? >= MIN_RSA_MODULUS_BITS,
                "RSA key too short"
            );
            DecodingKey::from_rsa_components(n, e)?
        }
        _ => anyhow::bail!("missing key parameters"),
    };
    Ok(VerificationKey { kid, alg, key })
}

/// The algorithm allow-list (RFC 8725 sections 3.1, 3.2). The JWK's own
/// `alg` names the one algorithm the key may verify, and the key type must
/// be the one that algorithm uses. Never `none`, never HMAC (`oct` keys),
/// never a JWK without `alg`.
fn allowed_algorithm(jwk: &PublishedKey) -> Option<Algorithm> {
    let alg = match (jwk.kty.as_str(), jwk.crv.as_deref(), jwk.alg.as_deref()?) {
        ("RSA", None, "RS256") => Algorithm::RS256,
        ("RSA", None, "RS384") => Algorithm::RS384,
        ("RSA", None, "RS512") => Algorithm::RS512,
        ("RSA", None, "PS256") => Algorithm::PS256,
        ("RSA", None, "PS384") => Algorithm::PS384,
        ("RSA", None, "PS512") => Algorithm::PS512,
        ("EC", Some("P-256"), "ES256") => Algorithm::ES256,
        ("EC", Some("P-384"), "ES384") => Algorithm::ES384,
        ("OKP", Some("Ed25519"), "EdDSA") => Algorithm::EdDSA,
        _ => return None,
    };
    Some(alg)
}

fn rsa_modulus_bits(n: &str) -> anyhow::Result<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(n)?;
    let significant = bytes.iter().skip_while(|b| **b == 0).count();
    Ok(significant * 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(value: serde_json::Value) -> PublishedKey {
        PublishedKey::deserialize(value).expect("a JWK shape")
    }

    #[test]
    fn hmac_and_none_keys_are_never_usable_rfc8725_3_2() {
        let oct = published(
            serde_json::json!({"kty": "oct", "kid": "a", "alg": "HS256", "k": "c2VjcmV0"}),
        );
        assert!(usable_key(oct).is_err());
        let none = published(
            serde_json::json!({"kty": "RSA", "kid": "a", "alg": "none", "n": "AQAB", "e": "AQAB"}),
        );
        assert!(usable_key(none).is_err());
    }

    #[test]
    fn key_type_must_match_its_alg_rfc8725_3_1() {
        let rsa_as_ec = published(
            serde_json::json!({"kty": "RSA", "kid": "a", "alg": "ES256", "n": "AQAB", "e": "AQAB"}),
        );
        assert!(allowed_algorithm(&rsa_as_ec).is_none());
        let p384_as_es256 =
            published(serde_json::json!({"kty": "EC", "crv": "P-384", "kid": "a", "alg": "ES256"}));
        assert!(allowed_algorithm(&p384_as_es256).is_none());
        let no_alg =
            published(serde_json::json!({"kty": "RSA", "kid": "a", "n": "AQAB", "e": "AQAB"}));
        assert!(allowed_algorithm(&no_alg).is_none());
    }

    #[test]
    fn short_rsa_keys_are_not_usable_rfc7518_3_3() {
        let n = URL_SAFE_NO_PAD.encode([0xffu8; 128]); // 1024 bits
        let short = published(
            serde_json::json!({"kty": "RSA", "kid": "a", "alg": "RS256", "n": n, "e": "AQAB"}),
        );
        assert!(usable_key(short).is_err());
    }
}
