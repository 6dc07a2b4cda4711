//! Step 10, shown: `GET /api/me` answers who the token says the caller is,
//! and which checks of step 10 it passed, in order.
//!
//! The flow inspector shows this to the user, so they can see what a
//! resource server verified before trusting an access token (RFC 9068 4).
//! Any valid token may call it: it reveals only what the token itself
//! carries, to its bearer.

use axum::Json;
use serde::Serialize;

use crate::caller::Caller;

#[derive(Serialize)]
pub struct Me {
    sub: String,
    client_id: String,
    scopes: Vec<String>,
    /// The token's `exp`, seconds since the Unix epoch.
    expires_at: u64,
    checks: Vec<String>,
}

/// `GET /api/me`.
#[tracing::instrument(name = "step10_me", skip_all, fields(sub = %caller.0.sub))]
pub async fn me(caller: Caller) -> Json<Me> {
    let token = &caller.0;
    Json(Me {
        sub: token.sub.clone(),
        client_id: token.client_id.clone(),
        scopes: token.scopes.clone(),
        expires_at: token.expires_at,
        checks: token.checks.clone(),
    })
}
