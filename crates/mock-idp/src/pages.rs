//! What every page a person sees at the IdP shares: the error page, and the
//! headers that keep the pages from being framed or cached (RFC 9700 4.16,
//! RFC 6749 10.13 clickjacking).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

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

    pub fn server_error() -> Response {
        ErrorPage::response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The identity provider could not finish this request. Please try again.",
            Some("server_error"),
        )
    }

    /// An expired, unknown or forged interaction.
    pub fn interaction(error: &crate::interaction::InteractionError) -> Response {
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
