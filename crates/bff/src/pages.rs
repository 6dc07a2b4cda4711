//! The pages a person sees at the BFF (askama templates under
//! `templates/bff/`), the static files, and the headers every response
//! carries: a strict Content-Security-Policy (no inline script), no framing.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tower_sessions::Session;

use crate::{
    AppState,
    session::{self, SignedIn},
};

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
    /// A line to tell the person, e.g. after signing out.
    pub notice: Option<String>,
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

/// What the home page may be told in its query.
#[derive(Deserialize)]
pub struct HomeQuery {
    /// The `state` of an RP-initiated logout, coming back from the provider.
    state: Option<String>,
    /// Set by a local sign-out at a provider that has no end-session endpoint.
    signed_out: Option<String>,
}

/// `GET /`: signed out, a sign-in button; signed in, who you are and your
/// notes. Also the post-logout redirect URI: the provider sends the browser
/// back here with the logout's `state`.
pub async fn home(
    State(state): State<AppState>,
    session: Session,
    signed_in: Option<SignedIn>,
    crate::reply::PageQuery(q): crate::reply::PageQuery<HomeQuery>,
) -> Response {
    let Some(signed_in) = signed_in else {
        let notice = match (&q.state, &q.signed_out) {
            // OIDC RP-Initiated Logout 1.0 3: the state this BFF sent.
            (Some(returned), _) if session::logout_returned(&session, returned).await => {
                Some("You have signed out of this app and of the identity provider.".to_owned())
            }
            (_, Some(_)) => Some(
                "You have signed out of this app. The identity provider offers no sign-out, so you may still be signed in there."
                    .to_owned(),
            ),
            _ => None,
        };
        return HomePage {
            user: None,
            csrf: String::new(),
            notice,
        }
        .into_response();
    };
    let ends = signed_in.ends_at(&state);
    let user = &signed_in.login.user;
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
        notice: None,
    }
    .into_response()
}

/// CSP of every BFF response: our own script and CSS only, no inline code,
/// `fetch` to ourselves only, no framing. (`form-action` is left open: the
/// sign-out form posts to the provider.)
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
