//! Step 10 of the flow: the resource server validates the access token
//! before it answers.
//!
//! Every check an access token must pass is in this file, top to bottom, in
//! the order they run. Cheap, structural checks come first, before any key is
//! looked up or any signature verified; the claims are read only once the
//! signature has been verified.
//!
//! | check | what | rule |
//! | --- | --- | --- |
//! | 1 | `Authorization: Bearer` only; a token in the query string is refused | RFC 6750 2.1, 2.3; RFC 9700 4.3.2 |
//! | 2 | token size limit, before parsing | this API's bound on work; too large is malformed (RFC 6750 3.1) |
//! | 3 | JWS compact form: three base64url parts, signature present | RFC 7515 7.1 |
//! | 4 | header size limit, then parsed as JSON | RFC 7515 4 |
//! | 5 | `typ` is the token profile's: `at+jwt` under RFC 9068, so an ID token is not an access token | RFC 9068 4; RFC 8725 3.11 |
//! | 6 | no `jku`, `x5u`, `jwk`, `x5c` (keys named by the token) and no `crit` | RFC 8725 3.10; RFC 7515 4.1.11 |
//! | 7 | `kid` present, short, of a safe alphabet | RFC 8725 3.10 |
//! | 8 | the key comes from the issuer's JWKS, never from the token | RFC 8725 3.10 |
//! | 9 | `alg` is the key's own algorithm, from an allow-list (no `none`, no HMAC) | RFC 8725 2.1, 3.1, 3.2 |
//! | 10 | signature | RFC 7515 5.2 |
//! | 11 | `iss` exact, `aud` contains this API; `exp`, `nbf` with leeway, by the API's clock | RFC 9068 4; RFC 7519 4.1 |
//! | 12 | `iat` not in the future; `sub` present; the client and scopes where the token profile reads them; no ID-token claims in an untyped token | RFC 9068 2.2; RFC 8725 3.11 |
//!
//! Checks 5 and 12 follow the token profile (`--token-profile`,
//! [`crate::token_profile`]): RFC 9068 by default, or the access tokens
//! Okta, Entra ID, Auth0 and Keycloak really issue.
//!
//! Whatever fails, the client sees the same `invalid_token` (RFC 6750 3.1,
//! see `error.rs`); the reason is logged with a short SHA-256 prefix of the
//! token, never the token.
//!
//! The other half of step 10, scopes per route (RFC 6750 3.1, RFC 9700
//! 2.3), is [`crate::caller::Caller::require_scope`].

use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clock::Clock;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;
use crate::jwks::{JwksCache, KeyLookupError};
use crate::token_profile::{ProfileRefusal, TokenProfile};

/// Check 2: longest token read at all. Real access tokens are 1-2 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Check 4: longest decoded JOSE header parsed.
const MAX_HEADER_BYTES: usize = 1024;
/// Check 7: longest `kid` looked up.
const MAX_KID_CHARS: usize = 128;

/// An access token that passed every check, and what it says.
#[derive(Debug)]
pub struct VerifiedToken {
    pub issuer: String,
    pub sub: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: u64,
    /// The checks the token passed, in order, for people to read (`/api/me`).
    pub checks: Vec<String>,
}

/// Why a token was refused. Logged; never sent to the client.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("token larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("not a JWS in compact serialization")]
    NotCompactJws,
    #[error("header is not valid base64url JSON of at most {MAX_HEADER_BYTES} bytes")]
    BadHeader,
    #[error("not this profile's access token: {0}")]
    Profile(#[from] ProfileRefusal),
    #[error("header {0} is never trusted")]
    UntrustedHeader(&'static str),
    #[error("kid missing or malformed")]
    BadKid,
    #[error("key lookup: {0}")]
    Key(#[from] KeyLookupError),
    #[error("alg differs from the key's algorithm")]
    AlgorithmMismatch,
    #[error("signature or registered claims: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("iss is not exactly the issuer")]
    Issuer,
    #[error("expired")]
    Expired,
    #[error("not valid yet (nbf)")]
    NotYetValid,
    #[error("iat is in the future")]
    IssuedInTheFuture,
    #[error("sub is missing or empty")]
    EmptyClaim,
}

impl Refusal {
    /// The reason as a metric label: one of a fixed set.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::TooLarge => "too_large",
            Refusal::NotCompactJws => "not_compact_jws",
            Refusal::BadHeader => "bad_header",
            Refusal::Profile(_) => "not_this_profile",
            Refusal::UntrustedHeader(_) => "untrusted_header",
            Refusal::BadKid => "bad_kid",
            Refusal::Key(_) => "unknown_key",
            Refusal::AlgorithmMismatch => "alg_mismatch",
            Refusal::Jwt(_) => "signature_or_claims",
            Refusal::Issuer => "issuer",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::IssuedInTheFuture => "issued_in_the_future",
            Refusal::EmptyClaim => "empty_claim",
        }
    }
}

/// Checks tokens against one issuer and one audience.
pub struct Validator {
    issuer: String,
    audience: String,
    profile: TokenProfile,
    leeway_seconds: u64,
    jwks: JwksCache,
    clock: Clock,
}

impl Validator {
    pub fn new(
        issuer: &str,
        audience: &str,
        profile: TokenProfile,
        leeway_seconds: u64,
        jwks: JwksCache,
        clock: Clock,
    ) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            profile,
            leeway_seconds,
            jwks,
            clock,
        }
    }

    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    /// Checks 2-12. `token` came from the Authorization header (check 1).
    pub async fn validate(&self, token: BearerToken<'_>) -> Result<VerifiedToken, Refusal> {
        let token = token.0;
        let mut checks =
            vec!["sent as a Bearer token in the Authorization header (RFC 6750 2.1)".to_owned()];

        // Check 2: bound the work an attacker can cause before parsing anything.
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Refusal::TooLarge);
        }
        checks.push(format!(
            "size {} bytes, within the {MAX_TOKEN_BYTES}-byte limit",
            token.len()
        ));

        // Check 3: three base64url parts; a JWE (five parts) or a stripped
        // signature ("header.payload.") stops here.
        let header_b64 = compact_jws_header(token)?;

        // Check 4: the header, small and strictly parsed.
        let header = parse_header(header_b64)?;

        // Check 5 (RFC 9068 4, RFC 8725 3.11): explicit typing. An ID token,
        // signed by the same key for the same client, must not pass here;
        // under a profile whose provider does not type its tokens, check 12
        // catches it by its content.
        self.profile.check_typ(header.typ.as_deref())?;
        checks.push(match self.profile.is_typed() {
            true => "typ is at+jwt: an access token, not an ID token (RFC 9068 4)".to_owned(),
            false => format!(
                "typ {} is the {} profile's (untyped: check 12 looks for ID-token claims)",
                header.typ.as_deref().unwrap_or("absent"),
                self.profile.name()
            ),
        });

        // Check 6 (RFC 8725 3.10): the token does not get to say which key
        // verifies it or where to fetch one. `crit` names extensions we would
        // have to understand (RFC 7515 4.1.11); we understand none.
        refuse_untrusted_headers(&header)?;
        checks.push(
            "no jku, x5u, jwk, x5c or crit header: keys come only from the issuer (RFC 8725 3.10)"
                .to_owned(),
        );

        // Check 7 (RFC 8725 3.10): the kid is attacker input; keep it boring.
        let kid = header
            .kid
            .as_deref()
            .filter(|kid| is_safe_kid(kid))
            .ok_or(Refusal::BadKid)?;

        // Check 8: the key, from the issuer's JWKS only.
        let key = self.jwks.key(kid).await?;
        checks.push(format!("kid={kid} is a key in the issuer's JWKS"));

        // Check 9 (RFC 8725 3.1): the algorithm is the key's, from the JWKS
        // allow-list (see jwks.rs); the header must agree. `none`, HS256
        // signed with the public key, or any other mismatch stops here.
        if header.alg != algorithm_name(key.alg) {
            return Err(Refusal::AlgorithmMismatch);
        }
        checks.push(format!(
            "alg {} is the key's own algorithm (RFC 8725 3.1)",
            header.alg
        ));

        // Checks 10-11: signature, then the registered claims, by the JOSE
        // library configured in `registered_claim_rules`.
        let claims = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key.key,
            &self.registered_claim_rules(key.alg),
        )?
        .claims;
        checks.push(format!(
            "signature verified with {} key kid={}",
            header.alg, key.kid
        ));
        // RFC 9068 4: `iss` is one string, exactly the issuer (the library
        // would take an array holding it).
        if claims.get("iss").and_then(serde_json::Value::as_str) != Some(self.issuer.as_str()) {
            return Err(Refusal::Issuer);
        }
        let times = Times::of(&claims)?;
        checks.push(format!("iss is {} (RFC 9068 4)", self.issuer));
        checks.push(format!("aud contains {} (RFC 9068 4)", self.audience));
        // Check 11, by the API's own clock (RFC 7519 4.1.4, 4.1.5).
        let now = u64::try_from(self.clock.now()).unwrap_or(0);
        if now > times.exp.saturating_add(self.leeway_seconds) {
            return Err(Refusal::Expired);
        }
        checks.push(format!(
            "not expired (exp {}, leeway {} s)",
            times.exp, self.leeway_seconds
        ));
        if let Some(nbf) = times.nbf {
            if nbf > now.saturating_add(self.leeway_seconds) {
                return Err(Refusal::NotYetValid);
            }
            checks.push(format!("already valid (nbf {nbf})"));
        }

        // Check 12 (RFC 9068 2.2): iat is required and not in the future;
        // sub names whose notes these are, so it cannot be empty; the client
        // and the scopes are where the profile's provider puts them.
        if times.iat > now.saturating_add(self.leeway_seconds) {
            return Err(Refusal::IssuedInTheFuture);
        }
        checks.push(format!("issued in the past (iat {})", times.iat));
        let sub = claims
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .filter(|sub| !sub.is_empty())
            .ok_or(Refusal::EmptyClaim)?
            .to_owned();
        let caller = self.profile.read(&claims)?;
        checks.push(format!("sub present; {}", self.profile.reads()));

        Ok(VerifiedToken {
            issuer: self.issuer.clone(),
            sub,
            client_id: caller.client_id,
            scopes: caller.scopes,
            expires_at: times.exp,
            checks,
        })
    }

    /// Checks 10-11 as the JOSE library runs them: signature with exactly the
    /// key's algorithm, then `iss` and `aud`. The times are checked after
    /// it, with the API's clock.
    fn registered_claim_rules(&self, alg: Algorithm) -> Validation {
        let mut rules = Validation::new(alg); // RFC 8725 3.1: this algorithm only
        rules.set_issuer(&[&self.issuer]); // RFC 9068 4: iss exactly the issuer
        rules.set_audience(&[&self.audience]); // RFC 9068 4: aud contains this API
        rules.validate_exp = false; // checked with the API's clock, below
        rules.validate_nbf = false; // likewise
        rules.set_required_spec_claims(&["exp", "iss", "aud", "sub"]); // RFC 9068 2.2
        rules
    }
}

/// Check 1: the token, taken from `Authorization: Bearer` and nowhere else.
#[derive(Clone, Copy)]
pub struct BearerToken<'a>(&'a str);

impl BearerToken<'_> {
    pub fn as_str(&self) -> &str {
        self.0
    }
}

impl<'a> BearerToken<'a> {
    /// `Ok(None)` when the request carries no bearer credentials at all.
    pub fn from_request(parts: &'a Parts) -> Result<Option<Self>, ApiError> {
        // RFC 6750 2.3, RFC 9700 4.3.2: a token in the URL leaks into logs,
        // history and Referer headers. This API does not support that method,
        // and it refuses such a request outright (even with a valid header
        // beside it) rather than ignore the parameter, so a client learns at
        // once that its token was exposed: 401 `invalid_token`, the answer
        // RFC 6750 3.1 gives for a token that cannot be accepted.
        let query = parts.uri.query().unwrap_or_default();
        if url::form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name == "access_token") {
            tracing::info!("access token in the query string refused (RFC 6750 2.3)");
            return Err(ApiError::InvalidToken);
        }

        let mut values = parts.headers.get_all(AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        // Two Authorization headers: which one would a proxy have checked?
        if values.next().is_some() {
            return Err(ApiError::InvalidToken);
        }
        let value = value.to_str().map_err(|_| ApiError::InvalidToken)?;
        // RFC 6750 2.1: credentials = "Bearer" 1*SP b64token; the scheme is
        // case-insensitive (RFC 9110 11.1). Another scheme is no bearer token.
        let Some((scheme, token)) = value.split_once(' ') else {
            return Ok(None);
        };
        if !scheme.eq_ignore_ascii_case("Bearer") {
            return Ok(None);
        }
        let token = token.trim_start_matches(' ');
        if token.is_empty() {
            return Err(ApiError::InvalidToken);
        }
        Ok(Some(Self(token)))
    }
}

/// Check 3: split `header.payload.signature`, each part non-empty base64url.
fn compact_jws_header(token: &str) -> Result<&str, Refusal> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::NotCompactJws);
    };
    let is_base64url = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !(is_base64url(header) && is_base64url(payload) && is_base64url(signature)) {
        return Err(Refusal::NotCompactJws);
    }
    Ok(header)
}

/// The JOSE header fields this API reads. Unknown fields are ignored; the
/// dangerous ones are recorded as present so check 6 can refuse them.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    #[serde(default, deserialize_with = "present")]
    jku: bool,
    #[serde(default, deserialize_with = "present")]
    x5u: bool,
    #[serde(default, deserialize_with = "present")]
    jwk: bool,
    #[serde(default, deserialize_with = "present")]
    x5c: bool,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// Check 4: decode and parse the header, bounded in size. serde_json also
/// bounds nesting depth (128), and a duplicated field is an error.
fn parse_header(header_b64: &str) -> Result<JoseHeader, Refusal> {
    if header_b64.len() > MAX_HEADER_BYTES * 4 / 3 + 4 {
        return Err(Refusal::BadHeader);
    }
    let json = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| Refusal::BadHeader)?;
    if json.len() > MAX_HEADER_BYTES {
        return Err(Refusal::BadHeader);
    }
    serde_json::from_slice(&json).map_err(|_| Refusal::BadHeader)
}

/// Check 6.
fn refuse_untrusted_headers(header: &JoseHeader) -> Result<(), Refusal> {
    let untrusted = [
        ("jku", header.jku),
        ("x5u", header.x5u),
        ("jwk", header.jwk),
        ("x5c", header.x5c),
        ("crit", header.crit),
    ];
    match untrusted.into_iter().find(|(_, present)| *present) {
        Some((name, _)) => Err(Refusal::UntrustedHeader(name)),
        None => Ok(()),
    }
}

/// Check 7: 1-128 characters of `[A-Za-z0-9._-]`. Real kids (thumbprints,
/// UUIDs, Okta's) fit; paths (`/`, `\`), SQL, URLs and control characters do not.
fn is_safe_kid(kid: &str) -> bool {
    (1..=MAX_KID_CHARS).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        // A variant added to the library later: it matches no header value.
        _ => "",
    }
}

/// The times of a token (RFC 7519 4.1.4-4.1.6), each a number of seconds:
/// `exp` and `iat` required, `nbf` optional.
struct Times {
    exp: u64,
    iat: u64,
    nbf: Option<u64>,
}

impl Times {
    fn of(claims: &serde_json::Map<String, serde_json::Value>) -> Result<Times, Refusal> {
        let seconds = |name: &str| claims.get(name).and_then(serde_json::Value::as_u64);
        let malformed = || Refusal::Jwt(jsonwebtoken::errors::ErrorKind::InvalidToken.into());
        if claims.get("nbf").is_some() && seconds("nbf").is_none() {
            return Err(malformed());
        }
        Ok(Times {
            exp: seconds("exp").ok_or_else(malformed)?,
            iat: seconds("iat").ok_or_else(malformed)?,
            nbf: seconds("nbf"),
        })
    }
}

/// `true` when the field is there, whatever its value (even `null`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_with_path_characters_is_unsafe_rfc8725_3_10() {
        for kid in [
            "../../etc/passwd",
            "a/b",
            "a\\b",
            "",
            "k' OR 1=1 --",
            "http://x",
            &"a".repeat(129),
        ] {
            assert!(!is_safe_kid(kid), "{kid:?}");
        }
        for kid in ["abc", "key-1", "2026.11_x", "Zx9-_"] {
            assert!(is_safe_kid(kid), "{kid:?}");
        }
    }

    #[test]
    fn compact_jws_needs_three_nonempty_base64url_parts_rfc7515_7_1() {
        assert!(compact_jws_header("a.b.c").is_ok());
        for token in ["a.b", "a.b.", "a.b.c.d.e", "a.b+.c", "a=.b.c", ".b.c"] {
            assert!(compact_jws_header(token).is_err(), "{token}");
        }
    }
}
