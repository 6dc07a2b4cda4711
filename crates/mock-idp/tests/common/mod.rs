//! Helpers for the IdP's attack and lifecycle tests, read like the flow: get
//! a code, exchange it, refresh, introspect, revoke, and look at what the
//! IdP answered (a page for the person, a redirect for the client, JSON for
//! the back channel).
#![allow(dead_code)] // each test binary uses its own subset

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use serde_json::Value;
use testkit::{
    ALICE, Account, AuthorizeParams, CLIENT_ID, CLIENT_SECRET, Idp, REDIRECT_URI, Tokens,
    browse_to_callback, http_client, query_of,
};

/// The demo public client (config/default.toml).
pub const NATIVE_ID: &str = "native-demo";
pub const NATIVE_REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";

/// An authorization request as an ordered list of query parameters, so a
/// test can drop, change or repeat any one of them.
#[derive(Clone)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    /// A good request of the demo client (PKCE S256, state, nonce).
    pub fn demo(scope: &str) -> Query {
        let pkce = testkit::pkce();
        Query(
            [
                ("response_type", "code"),
                ("client_id", CLIENT_ID),
                ("redirect_uri", REDIRECT_URI),
                ("scope", scope),
                ("state", &testkit::random_string()),
                ("nonce", &testkit::random_string()),
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        )
    }

    /// Replaces every value of `name` (or adds it).
    pub fn set(mut self, name: &str, value: &str) -> Query {
        self = self.without(name);
        self.0.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn without(mut self, name: &str) -> Query {
        self.0.retain(|(n, _)| n != name);
        self
    }

    /// Adds one more `name` (a repeated parameter).
    pub fn also(mut self, name: &str, value: &str) -> Query {
        self.0.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn url(&self, idp: &Idp) -> String {
        let mut url = url::Url::parse(&idp.url("/v1/authorize")).expect("URL");
        url.query_pairs_mut().extend_pairs(&self.0);
        url.to_string()
    }
}

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
    let query = query_of(&location);
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

/// Steps 2-5 in a fresh browser as `account`: the code for this request.
pub async fn code_as(idp: &Idp, query: &Query, account: &Account) -> String {
    let callback = browse_to_callback(&http_client(), idp, &query.url(idp), account).await;
    query_of(&callback)
        .remove("code")
        .unwrap_or_else(|| panic!("no code in {callback}"))
}

/// Steps 2-5 for the demo client as Alice, with testkit's parameters.
pub async fn code_for(idp: &Idp, params: &AuthorizeParams) -> String {
    let callback = browse_to_callback(&http_client(), idp, &params.url(idp), &ALICE).await;
    query_of(&callback)
        .remove("code")
        .unwrap_or_else(|| panic!("no code in {callback}"))
}

/// A back-channel request (token, revoke, introspect) as `bff-demo` with
/// `client_secret_basic`.
pub async fn post_as_bff(idp: &Idp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(idp.url(path))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(form)
        .send()
        .await
        .expect("IdP answers")
}

/// The same as the public client `native-demo` (its `client_id` only).
pub async fn post_as_native(idp: &Idp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let mut form = form.to_vec();
    form.push(("client_id", NATIVE_ID));
    reqwest::Client::new()
        .post(idp.url(path))
        .form(&form)
        .send()
        .await
        .expect("IdP answers")
}

/// RFC 6749 6: the refresh grant as `bff-demo`.
pub async fn refresh(idp: &Idp, refresh_token: &str) -> reqwest::Response {
    post_as_bff(
        idp,
        "/v1/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// A refresh that must succeed: the new tokens.
pub async fn refreshed(idp: &Idp, refresh_token: &str) -> Tokens {
    let response = refresh(idp, refresh_token).await;
    assert_eq!(response.status(), 200, "refresh");
    response.json().await.expect("token JSON")
}

/// RFC 7662 as `bff-demo`: the introspection answer.
pub async fn introspect(idp: &Idp, token: &str) -> Value {
    let response = post_as_bff(idp, "/v1/introspect", &[("token", token)]).await;
    assert_eq!(response.status(), 200, "introspection");
    response.json().await.expect("introspection JSON")
}

/// Whether introspection says the token is active; an inactive answer must
/// be `{"active": false}` and nothing else (RFC 7662 2.2).
pub async fn is_active(idp: &Idp, token: &str) -> bool {
    let answer = introspect(idp, token).await;
    match answer["active"].as_bool() {
        Some(true) => true,
        Some(false) => {
            assert_eq!(
                answer,
                serde_json::json!({"active": false}),
                "an inactive token says nothing more"
            );
            false
        }
        None => panic!("no active member in {answer}"),
    }
}

/// RFC 7009 as `bff-demo`.
pub async fn revoke(idp: &Idp, token: &str) -> reqwest::Response {
    post_as_bff(idp, "/v1/revoke", &[("token", token)]).await
}

/// The status of `GET /v1/userinfo` with this access token.
pub async fn userinfo_status(idp: &Idp, access_token: &str) -> u16 {
    reqwest::Client::new()
        .get(idp.url("/v1/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo")
        .status()
        .as_u16()
}

/// The IdP's JWKS, fetched over HTTP.
pub async fn jwks(idp: &Idp) -> JwkSet {
    reqwest::get(idp.url("/v1/keys"))
        .await
        .expect("JWKS")
        .json()
        .await
        .expect("JWKS JSON")
}

/// The `kid`s the JWKS publishes.
pub async fn published_kids(idp: &Idp) -> Vec<String> {
    jwks(idp)
        .await
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect()
}

/// Verifies a JWT against the IdP's JWKS over HTTP (signature, `iss`, `aud`,
/// `exp`), and returns its header and claims.
pub async fn verify_with_jwks(
    idp: &Idp,
    token: &str,
    audience: &str,
) -> (jsonwebtoken::Header, Value) {
    try_verify_with_jwks(idp, token, audience)
        .await
        .expect("signature and claims verify against the JWKS")
}

/// The same, `None` when it does not verify.
pub async fn try_verify_with_jwks(
    idp: &Idp,
    token: &str,
    audience: &str,
) -> Option<(jsonwebtoken::Header, Value)> {
    let jwks = jwks(idp).await;
    let header = jsonwebtoken::decode_header(token).ok()?;
    let jwk = jwks.find(header.kid.as_deref()?)?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[&idp.issuer]);
    validation.set_audience(&[audience]);
    let data = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).ok()?, &validation)
        .ok()?;
    Some((header, data.claims))
}

/// The claims of a JWT, unverified (to read what the IdP put in it).
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

/// The `Set-Cookie` header that sets `name`, if the response has one.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value a `Set-Cookie` line sets.
pub fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap_or("");
    pair.split_once('=')
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

/// A unique path for a SQLite file under the system's temp directory.
pub fn temp_db_path(label: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mock-idp-{label}-{}.db", testkit::random_string()))
}
