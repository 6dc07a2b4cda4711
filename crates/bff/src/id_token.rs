//! The ID token, checked in one place for the callback (step 8) and for
//! every refresh (OIDC Core 12.2).
//!
//! OIDC Core 3.1.3.7, through `openidconnect`'s verifier configured here:
//! the signature by a key the provider publishes, with an allowed algorithm
//! (never `none`, never HMAC); `iss` exactly the provider's; `aud` lists this
//! client; `exp` by the BFF's clock; `iat` no older than
//! `--id-token-max-age-seconds` and no further ahead than
//! `--clock-skew-seconds`; the `nonce` of this login. Then, here:
//! several audiences only with `azp` naming this client (items 3-5), and
//! `at_hash` binding the access token (3.1.3.8). A token signed with a key
//! the BFF has not seen makes it fetch the provider's keys again (OIDC Core
//! 10.1.1), at most every few seconds.

use chrono::{DateTime, Utc};
use oauth2::TokenResponse as _;
use openidconnect::{
    AccessTokenHash, ClaimsVerificationError, Nonce, SignatureVerificationError,
    TokenResponse as _,
    core::{CoreIdTokenClaims, CoreIdTokenVerifier, CoreTokenResponse},
};

use crate::{
    AppState,
    provider::{ID_TOKEN_ALGS, Provider},
};

#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    #[error("the token response has no id_token")]
    Missing,
    #[error("signed with a key the provider does not publish")]
    UnknownKey,
    #[error("{0}")]
    Invalid(String),
}

/// An ID token that passed every check.
pub struct Verified {
    pub claims: CoreIdTokenClaims,
    /// Every claim it carries, as JSON: also those openidconnect's core
    /// type has no field for (`sid`, a provider's own).
    pub all_claims: serde_json::Map<String, serde_json::Value>,
    pub raw: String,
    /// The provider's keys had to be fetched again to verify it (a new
    /// `kid`: the provider rotated its keys).
    pub fetched_keys: bool,
}

/// The claims of a JWT whose signature has been verified.
fn payload(raw: &str) -> serde_json::Map<String, serde_json::Value> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    raw.split('.')
        .nth(1)
        .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or_default()
}

/// The one verifier of this BFF's ID tokens.
fn verifier<'a>(state: &'a AppState, provider: &'a Provider) -> CoreIdTokenVerifier<'a> {
    let clock = state.clock.clone();
    let skew = state.config.clock_skew_seconds;
    let max_age = state.config.id_token_max_age_seconds;
    let iat_clock = state.clock.clone();
    provider
        .client
        .id_token_verifier()
        .set_allowed_algs(ID_TOKEN_ALGS.to_vec())
        .set_time_fn(move || at(clock.now()))
        // 3.1.3.7 item 10: a token just issued has an `iat` of about now.
        .set_issue_time_verifier_fn(move |iat: DateTime<Utc>| {
            let age = iat_clock.now() - iat.timestamp();
            if (-skew..=max_age).contains(&age) {
                Ok(())
            } else {
                Err(format!("iat is {age} s from now"))
            }
        })
        // Items 3-5: other audiences are judged by `azp`, in `check` below.
        .set_other_audience_verifier_fn(|_| true)
}

fn at(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap_or_default()
}

/// Every check of the ID token in `response`; `nonce` for a login, `None`
/// for a refresh (a refreshed ID token has none to check, 12.2).
fn check(
    state: &AppState,
    provider: &Provider,
    response: &CoreTokenResponse,
    nonce: Option<&Nonce>,
) -> Result<Verified, IdTokenError> {
    let id_token = response.id_token().ok_or(IdTokenError::Missing)?;
    let verifier = verifier(state, provider);
    let claims = match nonce {
        Some(nonce) => id_token.claims(&verifier, nonce),
        None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
    }
    .map_err(|e| match e {
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        ) => IdTokenError::UnknownKey,
        other => IdTokenError::Invalid(other.to_string()),
    })?;
    // 3.1.3.7 items 3-5: with several audiences, `azp` must be present; when
    // present, it must be this client.
    let client_id = state.config.client_id.as_str();
    match claims.authorized_party() {
        Some(azp) if azp.as_str() != client_id => {
            return Err(IdTokenError::Invalid("azp is another client".into()));
        }
        None if claims.audiences().len() > 1 => {
            return Err(IdTokenError::Invalid("several audiences and no azp".into()));
        }
        _ => {}
    }
    // 3.1.3.8: `at_hash` binds the access token to this ID token.
    if let Some(expected) = claims.access_token_hash() {
        let invalid = |e: &dyn std::fmt::Display| IdTokenError::Invalid(e.to_string());
        let alg = id_token.signing_alg().map_err(|e| invalid(&e))?;
        let key = id_token.signing_key(&verifier).map_err(|e| invalid(&e))?;
        let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
            .map_err(|e| invalid(&e))?;
        if actual != *expected {
            return Err(IdTokenError::Invalid(
                "at_hash does not match the access token".into(),
            ));
        }
    }
    let raw = id_token.to_string();
    Ok(Verified {
        claims: claims.clone(),
        all_claims: payload(&raw),
        raw,
        fetched_keys: false,
    })
}

/// [`check`], and once more with the provider's keys fetched again if the
/// token names a key the BFF has not seen.
async fn check_with_fresh_keys(
    state: &AppState,
    response: &CoreTokenResponse,
    nonce: Option<&Nonce>,
) -> Result<Verified, IdTokenError> {
    let provider = state.provider.get();
    match check(state, &provider, response, nonce) {
        Err(IdTokenError::UnknownKey) => match state.provider.refresh().await {
            Some(fresh) => check(state, &fresh, response, nonce).map(|verified| Verified {
                fetched_keys: true,
                ..verified
            }),
            None => Err(IdTokenError::UnknownKey),
        },
        other => other,
    }
}

/// Step 8: the ID token of a code exchange, with this login's nonce.
pub async fn verify_login(
    state: &AppState,
    response: &CoreTokenResponse,
    nonce: &Nonce,
) -> Result<Verified, IdTokenError> {
    check_with_fresh_keys(state, response, Some(nonce)).await
}

/// OIDC Core 12.2: the ID token of a refresh, if the provider sent one
/// (it need not); it must be about the same person.
pub async fn verify_refreshed(
    state: &AppState,
    response: &CoreTokenResponse,
    sub: &str,
) -> Result<Option<Verified>, IdTokenError> {
    if response.id_token().is_none() {
        return Ok(None);
    }
    let verified = check_with_fresh_keys(state, response, None).await?;
    if verified.claims.subject().as_str() != sub {
        return Err(IdTokenError::Invalid("it names another subject".into()));
    }
    Ok(Some(verified))
}
