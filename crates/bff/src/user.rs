//! `GET /bff/user`: who is signed in, for the page's script: the ID token's
//! claims and when the session ends. Never a token. Requires `X-CSRF: 1`.

use axum::{Json, extract::State};
use serde_json::{Value, json};

use crate::{AppState, session::SignedIn};

pub async fn user(State(state): State<AppState>, signed_in: SignedIn) -> Json<Value> {
    let user = &signed_in.login.user;
    Json(json!({
        "sub": user.sub,
        "name": user.name,
        "email": user.email,
        "claims": user.claims,
        "session_expires_at": signed_in.ends_at(&state),
    }))
}
