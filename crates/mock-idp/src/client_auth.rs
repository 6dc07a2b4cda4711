//! Client authentication at the token, revocation and introspection
//! endpoints: who is calling, by the one method the client registered.
//!
//! - RFC 6749 2.3.1: `client_secret_basic` (HTTP Basic, each part
//!   form-urlencoded) and `client_secret_post`; a client uses one method only
//!   (RFC 6749 2.3).
//! - RFC 7523 2.2 and 3, OIDC Core 9: `private_key_jwt`, a JWT the client
//!   signs with its own key: `iss` and `sub` its `client_id`, `aud` this
//!   server, a near `exp`, and a `jti` used once. No shared secret crosses
//!   the wire, which is why Okta and Entra ID recommend it for confidential
//!   clients.
//! - RFC 6749 2.1 / RFC 8252: public clients (`none`) prove nothing but their
//!   `client_id`; PKCE is what protects their codes.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::http::{HeaderMap, header};
use base64::{Engine, engine::general_purpose::STANDARD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::{
    AppState,
    clients::{AuthMethod, Client},
    form::Form,
};

/// RFC 7523 2.2: the `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Algorithms a client assertion may be signed with: the client's own
/// asymmetric key, never `none`, never HMAC (that would be
/// `client_secret_jwt`, a shared secret again).
pub const ASSERTION_ALGS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256];

/// The longest an assertion may live (its `exp` from now): it is made for
/// one request, and its `jti` is remembered that long.
const MAX_ASSERTION_LIFETIME: i64 = 300;

/// Why a client could not be authenticated.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    #[error("{0}")]
    Malformed(&'static str),
    #[error("client authentication is required")]
    Unauthenticated,
    #[error("client authentication failed")]
    Failed,
}

/// What a request presents, by the method it implies.
enum Presented<'a> {
    Secret {
        client_id: String,
        secret: String,
        method: AuthMethod,
    },
    Assertion {
        client_id: Option<&'a str>,
        jwt: &'a str,
    },
    Nothing {
        client_id: &'a str,
    },
}

/// Authenticates the client of a back-channel request (token, revoke,
/// introspect) from its headers and form, by the one method it registered.
/// An assertion names the token endpoint or the issuer as its audience,
/// whichever endpoint it is sent to (as the profile's provider wants).
pub fn authenticate<'s>(
    state: &'s AppState,
    headers: &HeaderMap,
    form: &Form,
) -> Result<&'s Client, ClientAuthError> {
    let presented = presented(headers, form)?;
    let client_id = match &presented {
        Presented::Secret { client_id, .. } => client_id.clone(),
        Presented::Nothing { client_id } => (*client_id).to_owned(),
        // RFC 7523 3: `client_id` may be left out; the assertion's subject
        // names the client, and its signature proves it below.
        Presented::Assertion { client_id, jwt } => match client_id {
            Some(id) => (*id).to_owned(),
            None => unverified_subject(jwt).ok_or(ClientAuthError::Failed)?,
        },
    };
    let client = state
        .clients
        .get(&client_id)
        .ok_or(ClientAuthError::Failed)?;
    let method = match &presented {
        Presented::Secret { method, .. } => *method,
        Presented::Assertion { .. } => AuthMethod::PrivateKeyJwt,
        Presented::Nothing { .. } => AuthMethod::None,
    };
    // Only the method the client registered is accepted.
    if client.auth_method != method {
        return Err(ClientAuthError::Failed);
    }
    match presented {
        Presented::Secret { secret, .. } if !client.secret_matches(&secret) => {
            Err(ClientAuthError::Failed)
        }
        Presented::Assertion { jwt, .. } => {
            let token_endpoint = state.endpoint(crate::paths::TOKEN);
            let audiences =
                (state.settings.profile).assertion_audiences(&state.issuer, &token_endpoint);
            check_assertion(state, client, jwt, &audiences)?;
            Ok(client)
        }
        _ => Ok(client),
    }
}

/// Sorts out which method the request uses; two at once is malformed.
fn presented<'a>(headers: &HeaderMap, form: &'a Form) -> Result<Presented<'a>, ClientAuthError> {
    let basic = basic_credentials(headers)?;
    let form_secret = form.get("client_secret");
    let assertion = match (
        form.get("client_assertion_type"),
        form.get("client_assertion"),
    ) {
        (Some(JWT_BEARER), Some(jwt)) => Some(jwt),
        (None, None) => None,
        _ => {
            return Err(ClientAuthError::Malformed(
                "client_assertion_type must be jwt-bearer, with a client_assertion",
            ));
        }
    };
    // RFC 6749 2.3: a client MUST NOT use more than one method per request.
    let methods = [basic.is_some(), form_secret.is_some(), assertion.is_some()];
    if methods.iter().filter(|used| **used).count() > 1 {
        return Err(ClientAuthError::Malformed(
            "use one client authentication method, not two",
        ));
    }
    let form_id = form.get("client_id");
    Ok(match (basic, form_secret, assertion) {
        (Some((id, secret)), _, _) => {
            // A client_id in the body too must name the same client.
            if form_id.is_some_and(|f| f != id) {
                return Err(ClientAuthError::Malformed("client_id does not match"));
            }
            Presented::Secret {
                client_id: id,
                secret,
                method: AuthMethod::ClientSecretBasic,
            }
        }
        (None, Some(secret), _) => Presented::Secret {
            client_id: form_id
                .ok_or(ClientAuthError::Malformed("client_id is missing"))?
                .to_owned(),
            secret: secret.to_owned(),
            method: AuthMethod::ClientSecretPost,
        },
        (None, None, Some(jwt)) => Presented::Assertion {
            client_id: form_id,
            jwt,
        },
        (None, None, None) => Presented::Nothing {
            client_id: form_id.ok_or(ClientAuthError::Unauthenticated)?,
        },
    })
}

/// RFC 6749 2.3.1: `Authorization: Basic base64(urlencode(id):urlencode(secret))`.
/// A header that is there but not that is a failed authentication
/// (RFC 6749 5.2: `invalid_client`, "unsupported authentication method").
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ClientAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    parse_basic(value.as_bytes())
        .map(Some)
        .ok_or(ClientAuthError::Failed)
}

fn parse_basic(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a
/// space, `%XX` a byte; nothing else is special (a raw `&` stays).
fn form_decode(value: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&value.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|v| v.into_owned())
}

/// The claims of a client assertion that are checked (OIDC Core 9).
#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    jti: String,
}

/// Whose assertion this says it is, before anything is verified: only to
/// find the keys to verify it with, which is what trusts it.
fn unverified_subject(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    Some(claims.get("sub")?.as_str()?.to_owned())
}

/// RFC 7523 3 and OIDC Core 9, every check of a client assertion.
fn check_assertion(
    state: &AppState,
    client: &Client,
    jwt: &str,
    audiences: &[String],
) -> Result<(), ClientAuthError> {
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| ClientAuthError::Failed)?;
    if !ASSERTION_ALGS.contains(&header.alg) {
        return Err(ClientAuthError::Failed);
    }
    let keys = client.jwks.as_ref().ok_or(ClientAuthError::Failed)?;
    let candidates: Vec<_> = keys
        .keys
        .iter()
        .filter(|k| header.kid.is_none() || k.common.key_id == header.kid)
        .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok())
        .collect();
    let now = state.clock.now();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(audiences);
    validation.set_issuer(&[client.id.as_str()]);
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
    // `exp` is judged below, by the IdP's clock.
    validation.validate_exp = false;
    let claims = candidates
        .iter()
        .find_map(|key| jsonwebtoken::decode::<AssertionClaims>(jwt, key, &validation).ok())
        .ok_or(ClientAuthError::Failed)?
        .claims;
    if claims.iss != client.id || claims.sub != client.id {
        return Err(ClientAuthError::Failed);
    }
    if claims.exp <= now || claims.exp > now + MAX_ASSERTION_LIFETIME {
        return Err(ClientAuthError::Failed);
    }
    // OIDC Core 9: a `jti` the server has seen is a replay.
    if !state
        .assertions
        .first_use(&client.id, &claims.jti, claims.exp, now)
    {
        return Err(ClientAuthError::Failed);
    }
    Ok(())
}

/// The `jti`s of the client assertions seen and not yet expired.
#[derive(Clone, Default)]
pub struct SeenAssertions(Arc<Mutex<Seen>>);

#[derive(Default)]
struct Seen {
    /// `(client_id, jti)` → when the assertion expires.
    until: HashMap<(String, String), i64>,
    /// When expired ones were last dropped.
    swept_at: i64,
}

impl SeenAssertions {
    /// Records `(client, jti)` until `expires_at`; `false` if it was there.
    fn first_use(&self, client_id: &str, jti: &str, expires_at: i64, now: i64) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // At most once a second, not a scan per request.
        if seen.swept_at < now {
            seen.swept_at = now;
            seen.until.retain(|_, until| now < *until);
        }
        let key = (client_id.to_owned(), jti.to_owned());
        match seen.until.get(&key) {
            Some(until) if now < *until => false,
            _ => {
                seen.until.insert(key, expires_at);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_basic;

    #[test]
    fn basic_credentials_are_form_decoded_rfc6749_2_3_1() {
        use base64::{Engine, engine::general_purpose::STANDARD};
        let header = format!("Basic {}", STANDARD.encode("my%20app:s%26cret+x&y"));
        assert_eq!(
            parse_basic(header.as_bytes()),
            Some(("my app".to_owned(), "s&cret x&y".to_owned()))
        );
        assert_eq!(parse_basic(b"Bearer abc"), None);
        assert_eq!(parse_basic(b"Basic !!!"), None);
    }
}
