//! Who is calling: the extractor every protected route takes. It reads the
//! bearer token (check 1 of `validate.rs`), answers from the verified-token
//! cache when this exact token passed before, and otherwise runs every
//! check of [`crate::validate`]. A route then asks for its scope with
//! [`Caller::require_scope`] (RFC 6750 3.1, RFC 9700 2.3).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::AppState;
use crate::error::ApiError;
use crate::jwks::KeyLookupError;
use crate::token_cache::TokenHash;
use crate::validate::{BearerToken, Refusal, VerifiedToken};

/// The caller of a protected route: an access token that passed
/// [`Validator::validate`](crate::validate::Validator::validate).
pub struct Caller(pub Arc<VerifiedToken>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = BearerToken::from_request(parts)?.ok_or(ApiError::MissingToken)?;
        let hash = TokenHash::of(token.as_str());
        let now = u64::try_from(state.clock.now()).unwrap_or(0);

        // The hot path: this exact token was verified before and has not expired.
        if let Some(verified) = state.verified_tokens.get(&hash, now) {
            state.metrics.validation("cached", "");
            return Ok(Caller(verified));
        }

        match state.validator.validate(token).await {
            Ok(verified) => {
                state.metrics.validation("valid", "");
                let verified = Arc::new(verified);
                state.verified_tokens.insert(hash, verified.clone(), now);
                tracing::debug!(token = %hash.short(), sub = %verified.sub, "access token verified");
                Ok(Caller(verified))
            }
            Err(Refusal::Key(KeyLookupError::Unavailable)) => {
                state.metrics.validation("unavailable", "keys_unavailable");
                tracing::warn!(token = %hash.short(), "cannot validate: the issuer's keys were never fetched");
                Err(ApiError::KeysUnavailable)
            }
            Err(reason) => {
                state.metrics.validation("refused", reason.kind());
                tracing::info!(token = %hash.short(), %reason, "access token refused");
                Err(ApiError::InvalidToken)
            }
        }
    }
}

impl Caller {
    /// RFC 6750 3.1, RFC 9700 2.3: each route needs one scope, and says which.
    pub fn require_scope(&self, scope: &'static str) -> Result<(), ApiError> {
        if self.0.scopes.iter().any(|granted| granted == scope) {
            Ok(())
        } else {
            Err(ApiError::InsufficientScope(scope))
        }
    }
}
