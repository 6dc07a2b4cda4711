//! OIDC Back-Channel Logout 1.0, the OP's side: when an IdP session ends,
//! every client it signed in to that registered a `backchannel_logout_uri`
//! gets a signed logout token (2.4), POSTed in the background (2.5) with
//! bounded retries, so a slow or dead client never holds up the person.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::{AppState, secret};

/// How many times a logout token is offered to a client.
const DELIVERY_ATTEMPTS: u32 = 3;
/// How long a logout token is good for.
const LOGOUT_TOKEN_SECONDS: i64 = 120;

/// 2.4: the logout token's claims: never a `nonce`.
#[derive(Serialize)]
struct LogoutClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    sub: &'a str,
    sid: &'a str,
    events: serde_json::Value,
}

/// Signs a logout token for each client of the ended session `sid` that
/// has a back-channel logout URI, and delivers it in the background.
pub fn notify(state: &AppState, sid: &str, sub: &str, client_ids: &[String]) {
    // Not every provider has back-channel logout ([`crate::profile`]).
    if !state.settings.profile.sends_backchannel_logout() {
        return;
    }
    for client_id in client_ids {
        let Some(uri) = state
            .clients
            .get(client_id)
            .and_then(|c| c.backchannel_logout_uri.clone())
        else {
            continue;
        };
        let now = state.clock.now();
        let claims = LogoutClaims {
            iss: &state.issuer,
            aud: client_id,
            iat: now,
            exp: now + LOGOUT_TOKEN_SECONDS,
            jti: secret::random_id(),
            sub,
            sid,
            events: json!({"http://schemas.openid.net/event/backchannel-logout": {}}),
        };
        // 2.4: explicitly typed.
        let token = match state.keys.sign("logout+jwt", &claims) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "could not sign a logout token");
                continue;
            }
        };
        tokio::spawn(deliver(state.http.clone(), uri, client_id.clone(), token));
    }
}

/// POSTs a logout token (2.5), retrying a bounded number of times.
async fn deliver(http: reqwest::Client, uri: String, client_id: String, token: String) {
    for attempt in 1..=DELIVERY_ATTEMPTS {
        let result = http
            .post(&uri)
            .form(&[("logout_token", token.as_str())])
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => {
                tracing::info!(%client_id, "back-channel logout delivered");
                return;
            }
            Ok(r) => {
                tracing::warn!(%client_id, status = %r.status(), attempt, "back-channel logout refused")
            }
            Err(e) => {
                tracing::warn!(%client_id, error = %e.without_url(), attempt, "back-channel logout failed")
            }
        }
        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
    }
    tracing::error!(%client_id, "back-channel logout gave up");
}
