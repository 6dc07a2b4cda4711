//! The pages a person sees at the BFF (askama templates under
//! `templates/bff/`), the static files, and the headers every response
//! carries: a strict Content-Security-Policy (no inline script), no framing.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use tower_sessions::Session;

use crate::{AppState, session::Sessions};

pub struct ClaimLine {
    pub name: String,
    pub value: String,
}

pub struct UserView {
    pub name: String,
    pub email: String,
    pub sub: String,
    pub session_expires: String,
    pub claims: Vec<ClaimLine>,
}

#[derive(Template, WebTemplate)]
#[template(path = "bff/home.html")]
pub struct HomePage {
    pub user: Option<UserView>,
    pub csrf: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "bff/error.html")]
pub struct ErrorPage {
    pub title: String,
    pub message: String,
    pub retry: bool,
}

impl ErrorPage {
    pub fn response(status: StatusCode, title: &str, message: &str, retry: bool) -> Response {
        let page = ErrorPage {
            title: title.to_owned(),
            message: message.to_owned(),
            retry,
        };
        (status, page).into_response()
    }

    pub fn unavailable() -> Response {
        ErrorPage::response(
            StatusCode::SERVICE_UNAVAILABLE,
            "Something went wrong",
            "The app could not finish this request. Please try again.",
            true,
        )
    }
}

/// A Unix time as people read it.
fn when(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// `GET /`: signed out, a sign-in button; signed in, who you are and your notes.
pub async fn home(State(state): State<AppState>, session: Session) -> Response {
    let absolute = state.config.session_absolute_seconds;
    let Some(signed_in) = Sessions::signed_in(&session, absolute).await else {
        return HomePage {
            user: None,
            csrf: String::new(),
        }
        .into_response();
    };
    let user = &signed_in.user;
    let ends = session
        .expiry_date()
        .unix_timestamp()
        .min(signed_in.signed_in_at + absolute);
    let claims = user
        .claims
        .iter()
        .map(|(name, value)| ClaimLine {
            name: name.clone(),
            value: match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        })
        .collect();
    HomePage {
        user: Some(UserView {
            name: user.name.clone().unwrap_or_else(|| user.sub.clone()),
            email: user.email.clone().unwrap_or_default(),
            sub: user.sub.clone(),
            session_expires: when(ends),
            claims,
        }),
        csrf: signed_in.csrf.clone(),
    }
    .into_response()
}

/// CSP of every BFF response: our own script and CSS only, no inline code,
/// `fetch` to ourselves only, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

pub async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../../static/app.css"),
    )
}

pub async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../../static/app.js"),
    )
}
