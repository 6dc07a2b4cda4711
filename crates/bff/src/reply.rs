//! How the BFF says that something went wrong: a page for a person, JSON
//! for a script, both in one place so that every handler answers alike.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Query, Request},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header, request::Parts},
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

/// A page's query string, or the error page when it cannot be read
/// (malformed encoding, a repeated parameter): a person gets a page, not
/// axum's plain-text rejection.
pub struct PageQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for PageQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(PageQuery(value)),
            Err(_) => Err(ErrorPage::response(
                StatusCode::BAD_REQUEST,
                "This address is not valid",
                "Its parameters are malformed or repeated. Go back to the app and start again.",
                true,
            )),
        }
    }
}

/// A page's form body, or the error page when it cannot be read (larger
/// than the limit, a broken stream), not axum's plain-text rejection.
pub struct PageBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for PageBody {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        Bytes::from_request(request, state)
            .await
            .map(PageBody)
            .map_err(|e| {
                ErrorPage::response(
                    e.status(),
                    "This request could not be read",
                    "It is too large or was cut off. Go back to the app and try again.",
                    false,
                )
            })
    }
}

/// The routes that answer scripts and servers in JSON; every other route
/// answers a person with a page.
pub fn is_json_route(path: &str) -> bool {
    ["/bff/user", "/flow.json", "/bff/backchannel", "/metrics"].contains(&path)
        || path.starts_with("/bff/api/")
}

/// No route at this address: JSON or a page, as the address's neighbours
/// answer.
pub async fn not_found(uri: Uri) -> Response {
    if is_json_route(uri.path()) {
        return json_error(StatusCode::NOT_FOUND, "not_found", "no such endpoint");
    }
    ErrorPage::response(
        StatusCode::NOT_FOUND,
        "There is no such page",
        "This app has no page at this address.",
        false,
    )
}

/// A route asked with a method it does not take.
pub async fn method_not_allowed(uri: Uri) -> Response {
    if is_json_route(uri.path()) {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "this endpoint does not take this method",
        );
    }
    ErrorPage::response(
        StatusCode::METHOD_NOT_ALLOWED,
        "This address does not take that request",
        "The page is here, but not for this kind of request.",
        false,
    )
}

/// tower-sessions answers a bare 500 when it cannot save the session at the
/// end of a request (the store down, its disk read-only). Nothing of that
/// request took effect: it is answered as every other store failure is, a
/// 503 with `Retry-After`, as a page or as JSON.
pub async fn unsaved_session_as_unavailable(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let json = wants_json(request.headers()) || is_json_route(request.uri().path());
    let response = next.run(request).await;
    let bare_500 = response.status() == StatusCode::INTERNAL_SERVER_ERROR
        && !response.headers().contains_key(header::CONTENT_TYPE);
    match (bare_500, json) {
        (false, _) => response,
        (true, true) => unavailable_json("the session store is unavailable"),
        (true, false) => unavailable_page(),
    }
}
