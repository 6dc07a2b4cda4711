//! What the IdP's tests check its answers against: a page for the person,
//! a redirect for the client, JSON for the back channel.

use serde_json::Value;
use testkit::idp::Idp;

/// RFC 6749 4.1.2.1: an untrusted client or redirect URI gets a page for the
/// person and no redirect at all. Returns the page.
pub async fn assert_error_page(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status, "status of the error page");
    assert!(
        response.headers().get("location").is_none(),
        "an error page must not redirect, got Location {:?}",
        response.headers().get("location")
    );
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/html"),
        "content type {content_type}"
    );
    response.text().await.expect("page")
}

/// RFC 6749 4.1.2.1 and RFC 9207 2: an error sent back to the client's
/// redirect URI with `error`, `error_description`, `state` and `iss`, and no
/// code. Returns the redirect's query.
pub fn assert_redirect_error(
    idp: &Idp,
    response: &reqwest::Response,
    redirect_uri: &str,
    error: &str,
    state: &str,
) -> std::collections::HashMap<String, String> {
    assert!(
        response.status().is_redirection(),
        "expected a redirect, got {}",
        response.status()
    );
    let location = testkit::location(response);
    assert!(
        location.starts_with(&format!("{redirect_uri}?")),
        "redirected to {location}, not to the redirect URI"
    );
    let query = testkit::query_of(&location);
    assert_eq!(
        query.get("error").map(String::as_str),
        Some(error),
        "error in {location}"
    );
    assert!(
        query
            .get("error_description")
            .is_some_and(|d| !d.is_empty()),
        "error_description in {location}"
    );
    assert_eq!(
        query.get("state").map(String::as_str),
        Some(state),
        "state in {location}"
    );
    assert_eq!(query.get("iss"), Some(&idp.issuer), "iss in {location}");
    assert!(!query.contains_key("code"), "no code with an error");
    query
}

/// RFC 6749 5.2: a JSON error with its code and `Cache-Control: no-store`
/// (RFC 6749 5.1). Returns the body.
pub async fn assert_token_error(response: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "errors are not cached either"
    );
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type}"
    );
    let body: Value = response.json().await.expect("JSON error");
    assert_eq!(body["error"], error, "error code in {body}");
    body
}
