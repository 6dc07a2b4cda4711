//! `GET /bff/user`: who is signed in, for the page's script: the ID token's
//! claims and when the session ends. Never a token. Requires `X-CSRF: 1`.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;
use tower_sessions::Session;

use crate::{AppState, session::Sessions};

pub async fn user(State(state): State<AppState>, session: Session) -> Response {
    let absolute = state.config.session_absolute_seconds;
    let Some(signed_in) = Sessions::signed_in(&session, absolute).await else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "not_signed_in"})),
        )
            .into_response();
    };
    let idle_end = session.expiry_date().unix_timestamp();
    let absolute_end = signed_in.signed_in_at + absolute;
    Json(json!({
        "sub": signed_in.user.sub,
        "name": signed_in.user.name,
        "email": signed_in.user.email,
        "claims": signed_in.user.claims,
        "session_expires_at": idle_end.min(absolute_end),
    }))
    .into_response()
}
