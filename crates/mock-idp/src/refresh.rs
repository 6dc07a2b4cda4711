//! The `refresh_token` grant at `POST /v1/token` (RFC 6749 6), with rotation
//! and reuse detection (RFC 9700 4.14.2): every use of a refresh token
//! returns a new one, and a rotated token presented again revokes its whole
//! family, access tokens included. (A provider profile may rotate without
//! reuse detection, or not rotate: [`crate::profile::Rotation`].)
//!
//! Every check of a request is in [`check`], top to bottom, in the order of
//! RFC 6749 6 and 10.4; it takes the stored token, the client, the asked
//! scope and the time, and answers what to do. [`grant`] does the rest.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::watch;
use tracing::instrument;

use crate::{
    AppState,
    clients::Client,
    form::Form,
    profile::Rotation,
    secret,
    store::RefreshToken,
    token_error::TokenError,
    tokens::{Family, Refresh, Subject, TokenResponse, mint},
};

/// What a valid refresh request may get.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// A rotation: tokens for `scopes`, within everything `granted`.
    Rotate {
        scopes: Vec<String>,
        granted: Vec<String>,
    },
    /// The token was rotated already: a reuse.
    Reused,
}

/// Every check of a refresh request, in order.
pub fn check(
    stored: &RefreshToken,
    client: &Client,
    asked_scope: Option<&str>,
    now: i64,
) -> Result<Checked, TokenError> {
    // RFC 6749 10.4: a refresh token is bound to the client it was issued to.
    if stored.client_id != client.id {
        return Err(TokenError::InvalidGrant(
            "the refresh token was issued to another client",
        ));
    }
    if stored.revoked {
        return Err(TokenError::InvalidGrant(
            "the refresh token has been revoked",
        ));
    }
    // RFC 9700 4.14.2: used before.
    if stored.rotated_at.is_some() {
        return Ok(Checked::Reused);
    }
    // Idle and absolute lifetimes.
    if now >= stored.expires_at || now >= stored.family_expires_at {
        return Err(TokenError::InvalidGrant("the refresh token has expired"));
    }
    // RFC 6749 6: the scope may be narrowed, never widened.
    let granted: Vec<String> = stored.scope.split(' ').map(str::to_owned).collect();
    let scopes = match asked_scope {
        None => granted.clone(),
        Some(asked) => {
            let asked: Vec<String> = asked.split_whitespace().map(str::to_owned).collect();
            if asked.is_empty() || asked.iter().any(|s| !granted.contains(s)) {
                return Err(TokenError::InvalidScope(
                    "the scope is wider than the grant",
                ));
            }
            asked
        }
    };
    Ok(Checked::Rotate { scopes, granted })
}

/// The refresh grant.
#[instrument(name = "refresh_grant", skip_all, fields(client_id = %client.id))]
pub async fn grant(
    state: &AppState,
    client: &Client,
    form: &Form,
) -> Result<TokenResponse, TokenError> {
    let token = form
        .get("refresh_token")
        .ok_or_else(|| TokenError::InvalidRequest("refresh_token is missing".into()))?;
    let hash = secret::digest(token);
    let now = state.clock.now();
    let (stored, user) = state
        .store
        .refresh_token_and_user(&hash)
        .await?
        .ok_or(TokenError::InvalidGrant("the refresh token is invalid"))?;
    let profile = state.settings.profile;
    if profile.refresh_needs_scope() && form.get("scope").is_none() {
        return Err(TokenError::InvalidRequest(
            "AADSTS90023: the scope parameter is not specified".into(),
        ));
    }
    let (scopes, granted) = match check(&stored, client, form.get("scope"), now)? {
        Checked::Rotate { scopes, granted } => (scopes, granted),
        Checked::Reused => return reused(state, &hash, &stored.family_id).await,
    };
    let rotation = profile.rotation();
    let detects_reuse = rotation == Rotation::WithReuseDetection;
    // Within a grace period, a request racing this one waits for its answer.
    let grace = state.settings.tokens.refresh_token_reuse_grace_seconds as i64;
    let claim = match grace {
        _ if !detects_reuse => None,
        0 => None,
        _ => match state.rotations.claim(&hash, now + grace, now) {
            Some(claim) => Some(claim),
            None => return reused(state, &hash, &stored.family_id).await,
        },
    };
    // One rotation per token, even under a race.
    if detects_reuse && !state.store.mark_rotated(&hash, now).await? {
        drop(claim); // rotated elsewhere: nobody may wait for our answer
        return reused(state, &hash, &stored.family_id).await;
    }
    let refresh = match rotation {
        Rotation::WithReuseDetection | Rotation::WithoutReuseDetection => Refresh::New,
        Rotation::SameToken => Refresh::Same(token.to_owned()),
        Rotation::Omitted => Refresh::None,
    };
    let user = user.ok_or(TokenError::InvalidGrant("the user no longer exists"))?;
    let tokens = mint(
        state,
        &Subject {
            user: &user,
            client,
            scopes: &scopes,
            granted: &granted,
            auth_time: stored.auth_time,
            sid: stored.sid.as_deref(),
            nonce: None,
            refresh,
        },
        &secret::random_id(),
        &Family {
            id: &stored.family_id,
            expires_at: stored.family_expires_at,
        },
    )
    .await?;
    // RFC 9700 4.14.2: a reuse that raced this rotation may have revoked the
    // family before the new tokens were stored; revoke them too, now that
    // they are. (The family's mark orders the two: see `revoke_family`.)
    if detects_reuse && state.store.family_revoked(&stored.family_id).await? {
        tracing::warn!("refresh token reused during its rotation; revoking its family");
        state.store.revoke_family(&stored.family_id).await?;
        return Err(TokenError::InvalidGrant(
            "the refresh token has already been used",
        ));
    }
    if let Some(claim) = claim {
        claim.answer(&tokens);
    }
    Ok(tokens)
}

/// A refresh token presented after it was rotated: within the grace period,
/// the same answer again; after it, a stolen token is assumed and the whole
/// family dies (RFC 9700 4.14.2).
async fn reused(
    state: &AppState,
    hash: &str,
    family_id: &str,
) -> Result<TokenResponse, TokenError> {
    if let Some(same) = state.rotations.replay(hash, state.clock.now()).await {
        return Ok(same);
    }
    tracing::warn!("rotated refresh token reused; revoking its family");
    state.store.revoke_family(family_id).await?;
    Err(TokenError::InvalidGrant(
        "the refresh token has already been used",
    ))
}

/// Recent rotations, for the reuse grace period: within it, the same old
/// refresh token gets the same new pair back (two racing requests of one
/// client do not log the user out), and nothing more.
///
/// The first request claims the rotation before it starts; one that races
/// it waits for that answer rather than taking the token for stolen.
#[derive(Clone, Default)]
pub struct RecentRotations(Arc<Mutex<Rotations>>);

#[derive(Default)]
struct Rotations {
    by_token: HashMap<String, Rotated>,
    /// When rotations past their grace period were last dropped.
    swept_at: i64,
}

struct Rotated {
    answer: watch::Receiver<Option<TokenResponse>>,
    /// End of the grace period (Unix seconds).
    until: i64,
}

/// The right to rotate one refresh token, held by the request that got it.
struct Claim(watch::Sender<Option<TokenResponse>>);

impl Claim {
    fn answer(self, response: &TokenResponse) {
        let _ = self.0.send(Some(response.clone()));
    }
}

/// How long a racing request waits for the rotation it lost to.
const WAIT_FOR_ROTATION: Duration = Duration::from_secs(5);

impl RecentRotations {
    fn lock(&self) -> std::sync::MutexGuard<'_, Rotations> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the rotation of a token; `None` if another request has.
    fn claim(&self, token_hash: &str, until: i64, now: i64) -> Option<Claim> {
        let mut rotations = self.lock();
        // Forget rotations past their grace period, at most once a second:
        // not a scan of every rotation for every refresh.
        if rotations.swept_at < now {
            rotations.swept_at = now;
            rotations.by_token.retain(|_, r| now < r.until);
        }
        let map = &mut rotations.by_token;
        if map.get(token_hash).is_some_and(|r| now < r.until) {
            return None;
        }
        let (sender, answer) = watch::channel(None);
        map.insert(token_hash.to_owned(), Rotated { answer, until });
        Some(Claim(sender))
    }

    /// The answer of this token's rotation, if it is within its grace
    /// period; waits for it while it is being made.
    async fn replay(&self, token_hash: &str, now: i64) -> Option<TokenResponse> {
        let mut answer = {
            let rotations = self.lock();
            let rotation = rotations
                .by_token
                .get(token_hash)
                .filter(|r| now < r.until)?;
            rotation.answer.clone()
        };
        let made = tokio::time::timeout(WAIT_FOR_ROTATION, answer.wait_for(Option::is_some)).await;
        match made {
            Ok(Ok(response)) => response.clone(),
            _ => None,
        }
    }
}
