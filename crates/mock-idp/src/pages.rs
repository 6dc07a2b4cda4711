//! What every page a person sees at the IdP shares: the error page, and the
//! headers that keep the pages from being framed or cached (RFC 9700 4.16,
//! RFC 6749 10.13 clickjacking).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};

use crate::interaction::InteractionError;

/// An error told to a person, never to a client.
#[derive(Template, WebTemplate)]
#[template(path = "mock-idp/error.html")]
pub struct ErrorPage {
    pub title: String,
    pub message: String,
    pub code: Option<String>,
}

impl ErrorPage {
    pub fn response(
        status: StatusCode,
        title: &str,
        message: &str,
        code: Option<&str>,
    ) -> Response {
        let page = ErrorPage {
            title: title.to_owned(),
            message: message.to_owned(),
            code: code.map(str::to_owned),
        };
        (status, page).into_response()
    }

    pub fn bad_request(title: &str, message: &str, code: Option<&str>) -> Response {
        ErrorPage::response(StatusCode::BAD_REQUEST, title, message, code)
    }

    pub fn busy() -> Response {
        ErrorPage::response(
            StatusCode::SERVICE_UNAVAILABLE,
            "The identity provider is busy",
            "Too many sign-ins are under way. Please try again in a few minutes.",
            Some("temporarily_unavailable"),
        )
    }

    pub fn server_error() -> Response {
        ErrorPage::response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The identity provider could not finish this request. Please try again.",
            Some("server_error"),
        )
    }

    /// An expired, unknown, forged or finished interaction. A finished one
    /// is the back button after sign-in: back to the application's home
    /// (its registered `client_uri`), where the person already is signed in.
    pub fn interaction(state: &crate::AppState, error: &InteractionError) -> Response {
        if let InteractionError::Finished { client_id } = error {
            if let Some(home) = state
                .clients
                .get(client_id)
                .and_then(|c| c.client_uri.clone())
            {
                return Redirect::to(&home).into_response();
            }
            return ErrorPage::bad_request(
                "You have already signed in",
                "This sign-in is complete. Go back to the application.",
                None,
            );
        }
        ErrorPage::bad_request(
            "This sign-in request is no longer valid",
            &format!("{error}. Go back to the application and sign in again."),
            Some("invalid_request"),
        )
    }
}

/// Content-Security-Policy of every IdP response: only our own CSS, no
/// script, and no framing by anyone.
pub const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The IdP's stylesheet, compiled in so the binary runs from any directory.
pub async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        include_str!("../../../static/idp.css"),
    )
        .into_response()
}
