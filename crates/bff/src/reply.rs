//! How the BFF says that something went wrong: a page for a person, JSON
//! for a script, both in one place so that every handler answers alike.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Json,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

/// How long a caller should wait before trying again after a 503.
pub const RETRY_AFTER_SECONDS: &str = "5";

#[derive(Template, WebTemplate)]
#[template(path = "bff/error.html")]
pub struct ErrorPage {
    pub title: String,
    pub message: String,
    /// Offer to start a fresh sign-in.
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
}

/// A JSON error: `{"error": …, "error_description": …}`.
pub fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// 503 with `Retry-After`, as JSON: the session is kept; try again soon.
pub fn unavailable_json(description: &str) -> Response {
    with_retry_after(json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        description,
    ))
}

/// 503 with `Retry-After`, as a page a person can act on.
pub fn unavailable_page() -> Response {
    with_retry_after(ErrorPage::response(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again in a moment",
        "The app could not finish this request just now. You are still signed in if you were; try again in a few seconds.",
        false,
    ))
}

fn with_retry_after(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response
}

/// Whether the caller is a script (it asked for JSON) rather than a person.
pub fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}
