//! Keeping the access token usable: before the proxy calls the API (step 9),
//! an access token that expires within [`SKEW`] is exchanged for a new one
//! with the refresh token (RFC 6749 6), and the rotated pair is stored in the
//! session (RFC 9700 4.14.2: the provider rotates refresh tokens, and reuse
//! of an old one revokes the whole family).
//!
//! Because reuse kills the family, two requests of one session must never
//! refresh with the same refresh token. Within this BFF instance, refreshes
//! of one refresh token are single-flight: the first does it, the others
//! wait and take its result. (Across several instances sharing Redis, the
//! same needs a lock in Redis: a later step.)

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use openidconnect::{Nonce, OAuth2TokenResponse, RefreshToken, TokenResponse};
use sha2::{Digest, Sha256};
use tower_sessions::Session;
use tracing::instrument;

use crate::{
    AppState,
    oidc::ID_TOKEN_ALGS,
    session::{Sessions, SignedIn, Tokens},
};

/// Refresh this long before the access token expires.
pub const SKEW: i64 = 30;
/// How long the result of a refresh is handed to requests that waited on it.
const SHARE_RESULT_FOR: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the access token expired and there is no refresh token")]
    NoRefreshToken,
    #[error("the provider refused the refresh: {0}")]
    Refused(String),
    #[error("the refreshed ID token is not valid: {0}")]
    IdToken(String),
}

type Slot = Arc<tokio::sync::Mutex<Option<(Tokens, Instant)>>>;

/// In-flight and recent refreshes, by the digest of the refresh token used.
#[derive(Default)]
pub struct Refreshes(Mutex<HashMap<[u8; 32], Slot>>);

impl Refreshes {
    fn slot(&self, refresh_token: &str) -> Slot {
        let key: [u8; 32] = Sha256::digest(refresh_token.as_bytes()).into();
        let mut slots = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Forget slots nobody holds whose result is old.
        slots.retain(|_, slot| {
            Arc::strong_count(slot) > 1
                || slot
                    .try_lock()
                    .map(|done| {
                        done.as_ref()
                            .is_some_and(|(_, at)| at.elapsed() < SHARE_RESULT_FOR)
                    })
                    .unwrap_or(true)
        });
        slots.entry(key).or_default().clone()
    }
}

/// Makes sure `signed_in` holds an access token that is not about to
/// expire, refreshing (once per refresh token) if needed, and stores the
/// result in the session.
#[instrument(name = "refresh_tokens", skip_all)]
pub async fn ensure_fresh(
    state: &AppState,
    session: &Session,
    signed_in: &mut SignedIn,
) -> Result<(), RefreshError> {
    if crate::now() < signed_in.tokens.access_expires_at - SKEW {
        return Ok(());
    }
    let refresh_token = signed_in
        .tokens
        .refresh_token
        .clone()
        .ok_or(RefreshError::NoRefreshToken)?;
    let slot = state.refreshes.slot(&refresh_token);
    let mut done = slot.lock().await;
    let tokens = match done.as_ref() {
        // Another request of this session refreshed while we waited.
        Some((tokens, at)) if at.elapsed() < SHARE_RESULT_FOR => tokens.clone(),
        _ => {
            let tokens = refresh(state, signed_in, &refresh_token).await?;
            *done = Some((tokens.clone(), Instant::now()));
            tokens
        }
    };
    signed_in.tokens = tokens;
    // A session that a logout deleted meanwhile is not written back (see
    // `session::Store::save`).
    if let Err(e) = Sessions::sign_in(session, signed_in).await {
        tracing::warn!(error = %e, "could not store refreshed tokens");
    }
    Ok(())
}

/// The refresh grant itself.
async fn refresh(
    state: &AppState,
    signed_in: &SignedIn,
    refresh_token: &str,
) -> Result<Tokens, RefreshError> {
    let provider = state.provider.get();
    let refresh_token = RefreshToken::new(refresh_token.to_owned());
    let response = provider
        .client
        .exchange_refresh_token(&refresh_token)
        .map_err(|e| RefreshError::Refused(e.to_string()))?
        .request_async(&state.http)
        .await
        .map_err(|e| RefreshError::Refused(e.to_string()))?;
    // OIDC Core 12.2: a new ID token must be about the same person; it has
    // no nonce.
    let id_token = match response.id_token() {
        Some(id_token) => {
            let verifier = provider
                .client
                .id_token_verifier()
                .set_allowed_algs(ID_TOKEN_ALGS.to_vec());
            let no_nonce = |_: Option<&Nonce>| Ok(());
            let claims = id_token
                .claims(&verifier, no_nonce)
                .map_err(|e| RefreshError::IdToken(e.to_string()))?;
            if claims.subject().as_str() != signed_in.user.sub {
                return Err(RefreshError::IdToken("it names another subject".into()));
            }
            id_token.to_string()
        }
        None => signed_in.tokens.id_token.clone(),
    };
    let expires_in = response
        .expires_in()
        .map(|d| d.as_secs() as i64)
        .unwrap_or(300);
    tracing::info!("access token refreshed");
    Ok(Tokens {
        access_token: response.access_token().secret().clone(),
        access_expires_at: crate::now() + expires_in,
        // Rotation: the new refresh token, or the old one if none was sent.
        refresh_token: response
            .refresh_token()
            .map(|t| t.secret().clone())
            .or_else(|| signed_in.tokens.refresh_token.clone()),
        id_token,
    })
}
