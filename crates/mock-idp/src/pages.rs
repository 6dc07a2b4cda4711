//! What every page a person sees at the IdP shares: the one error type of
//! the pages ([`PageError`]) and its page, the stylesheet, and the headers
//! that keep pages from being framed or cached (RFC 9700 4.16, RFC 6749
//! 10.13 clickjacking).
//!
//! A handler of a page returns `Result<Response, PageError>` and uses `?`:
//! whatever went wrong becomes a page in one place, [`PageError::into_response`].

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{FromRequest, FromRequestParts, Query, Request},
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};

use crate::store::StoreError;

/// An error told to a person, never to a client.
#[derive(Template, WebTemplate)]
#[template(path = "mock-idp/error.html")]
pub struct ErrorPage {
    pub title: String,
    pub message: String,
    pub code: Option<String>,
    /// Where the person can go on from here, if anywhere.
    pub link: Option<Link>,
}

pub struct Link {
    pub href: String,
    pub text: String,
}

/// Why a page could not be shown, or a form not accepted.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The request is not one the IdP can go on with (400).
    #[error("{message}")]
    BadRequest {
        title: &'static str,
        message: String,
        code: &'static str,
    },
    /// A form that the page the IdP served this browser did not send
    /// (RFC 6749 10.12): another site's, another browser's, or a stale one.
    #[error("the form was not sent by the page the identity provider showed this browser")]
    Forged,
    /// The pending sign-in expired or never existed.
    #[error("this sign-in request has expired or is unknown")]
    UnknownRequest,
    /// The pending sign-in was answered already: the browser's back button.
    /// Back to the application's home (its registered `client_uri`), where
    /// the person already is signed in.
    #[error("this sign-in request is already complete")]
    Finished { home: Option<String> },
    /// The page is the signed-in person's own.
    #[error("not signed in")]
    NotSignedIn,
    /// No such page.
    #[error("no such page")]
    NotFound,
    /// A page or form that takes another method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Too many wrong passwords for this sign-in.
    #[error("too many wrong passwords")]
    TooManyAttempts,
    /// Password hashing is at capacity and this request waited too long.
    #[error("too many sign-ins under way")]
    Busy,
    /// The store failed: logged, and a generic page for the person.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Anything else that is the server's fault.
    #[error("{0}")]
    Server(String),
}

impl PageError {
    /// A 400 page with the protocol's error code.
    pub fn bad_request(
        title: &'static str,
        message: impl Into<String>,
        code: &'static str,
    ) -> PageError {
        PageError::BadRequest {
            title,
            message: message.into(),
            code,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = |status: StatusCode, title: &str, message: &str, code: Option<&str>| {
            let page = ErrorPage {
                title: title.to_owned(),
                message: message.to_owned(),
                code: code.map(str::to_owned),
                link: None,
            };
            (status, page).into_response()
        };
        match self {
            PageError::BadRequest {
                title,
                message,
                code,
            } => page(StatusCode::BAD_REQUEST, title, &message, Some(code)),
            PageError::Forged => page(
                StatusCode::BAD_REQUEST,
                "This form is no longer valid",
                "It was not sent by the page the identity provider showed this browser. Go back to the application and start again.",
                Some("invalid_request"),
            ),
            PageError::UnknownRequest => page(
                StatusCode::BAD_REQUEST,
                "This sign-in request is no longer valid",
                "It has expired or is unknown. Go back to the application and sign in again.",
                Some("invalid_request"),
            ),
            PageError::Finished { home: Some(home) } => Redirect::to(&home).into_response(),
            PageError::Finished { home: None } => page(
                StatusCode::BAD_REQUEST,
                "You have already signed in",
                "This sign-in is complete. Go back to the application.",
                None,
            ),
            PageError::NotSignedIn => {
                let page = ErrorPage {
                    title: "You are not signed in".into(),
                    message: "This page shows your own account at this identity provider.".into(),
                    code: Some("login_required".into()),
                    link: Some(Link {
                        href: crate::paths::GRANTS_SIGN_IN.into(),
                        text: "Sign in".into(),
                    }),
                };
                (StatusCode::UNAUTHORIZED, page).into_response()
            }
            PageError::NotFound => {
                let page = ErrorPage {
                    title: "There is no such page".into(),
                    message: "The identity provider has no page at this address.".into(),
                    code: None,
                    link: Some(Link {
                        href: "/".into(),
                        text: "The identity provider's home".into(),
                    }),
                };
                (StatusCode::NOT_FOUND, page).into_response()
            }
            PageError::MethodNotAllowed => page(
                StatusCode::METHOD_NOT_ALLOWED,
                "This address does not take that request",
                "The page or endpoint is here, but not for this method.",
                Some("invalid_request"),
            ),
            PageError::TooManyAttempts => page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "This sign-in was stopped after too many wrong passwords. Go back to the application to start again.",
                Some("access_denied"),
            ),
            PageError::Busy => {
                let mut response = page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The identity provider is busy",
                    "Too many sign-ins are under way. Please try again in a few seconds.",
                    Some("temporarily_unavailable"),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                response
            }
            PageError::Store(error) => {
                tracing::error!(%error, "the store failed");
                server_error()
            }
            PageError::Server(error) => {
                tracing::error!(%error, "could not finish a page's request");
                server_error()
            }
        }
    }
}

fn server_error() -> Response {
    let page = ErrorPage {
        title: "Something went wrong".into(),
        message: "The identity provider could not finish this request. Please try again.".into(),
        code: Some("server_error".into()),
        link: None,
    };
    (StatusCode::INTERNAL_SERVER_ERROR, page).into_response()
}

/// The query of a page, or the error page when it cannot be read (a
/// repeated or malformed parameter) instead of the framework's plain text.
pub struct PageQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for PageQuery<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PageError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(PageQuery(value)),
            Err(_) => Err(PageError::bad_request(
                "This address is not valid",
                "Its parameters are malformed or repeated. Go back to the application and start again.",
                "invalid_request",
            )),
        }
    }
}

/// A page's form, or the error page when it cannot be read.
pub struct PageForm<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &S) -> Result<Self, PageError> {
        match Form::<T>::from_request(request, state).await {
            Ok(Form(value)) => Ok(PageForm(value)),
            Err(_) => Err(PageError::bad_request(
                "This form could not be read",
                "It is malformed or incomplete. Go back to the page and send it again.",
                "invalid_request",
            )),
        }
    }
}

/// The IdP's home page: what it is, where its discovery document is, and
/// the applications registered with it.
#[derive(Template, WebTemplate)]
#[template(path = "mock-idp/home.html")]
pub struct HomePage {
    pub profile: &'static str,
    pub issuer: String,
    pub discovery: String,
    pub jwks: String,
    pub grants: &'static str,
    /// The registered applications that have a home page.
    pub apps: Vec<Link>,
}

/// `GET /`.
pub async fn home(axum::extract::State(state): axum::extract::State<crate::AppState>) -> Response {
    let mut apps: Vec<Link> = (state.clients.iter())
        .filter_map(|client| {
            let href = client.client_uri.clone()?;
            Some(Link {
                text: format!("{} ({href})", client.name),
                href,
            })
        })
        .filter(|link| !link.href.ends_with(crate::paths::GRANTS))
        .collect();
    apps.sort_by(|a, b| a.text.cmp(&b.text));
    HomePage {
        profile: state.settings.profile.name(),
        issuer: state.issuer.clone(),
        discovery: state.endpoint(crate::paths::OPENID_CONFIGURATION),
        jwks: state.endpoint(crate::paths::KEYS),
        grants: crate::paths::GRANTS,
        apps,
    }
    .into_response()
}

/// Any address the IdP has no page for.
pub async fn not_found() -> PageError {
    PageError::NotFound
}

/// A known address asked with a method it does not take: a page, or, at
/// an endpoint only programs call, an RFC 6749 5.2 error object.
pub async fn method_not_allowed(uri: axum::http::Uri) -> Response {
    let path = uri.path();
    let for_programs = [
        crate::paths::TOKEN,
        crate::paths::REVOKE,
        crate::paths::INTROSPECT,
        crate::paths::USERINFO,
        crate::paths::KEYS,
    ];
    if path.contains("/.well-known/") || for_programs.iter().any(|p| path.ends_with(p)) {
        let error = serde_json::json!({
            "error": "invalid_request",
            "error_description": "this endpoint does not take this method",
        });
        return (StatusCode::METHOD_NOT_ALLOWED, axum::Json(error)).into_response();
    }
    PageError::MethodNotAllowed.into_response()
}

/// Content-Security-Policy of every IdP response: only our own CSS, no
/// script, no form, and no framing by anyone. A page with a form says where
/// it may send the browser ([`csp_with_forms_to`]).
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The CSP of a page whose forms post to the IdP itself, which then
/// redirects the browser to `targets` (a client's redirect URI, say):
/// browsers apply `form-action` to the redirects that follow a form post,
/// so those origins are named too, and nothing else.
pub fn csp_with_forms_to(targets: &[&str]) -> (header::HeaderName, HeaderValue) {
    let origins: Vec<String> = targets
        .iter()
        .filter_map(|t| url::Url::parse(t).ok())
        .map(|url| url.origin().ascii_serialization())
        .filter(|origin| origin != "null")
        .collect();
    let policy = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self' {}; frame-ancestors 'none'",
        origins.join(" ")
    );
    let value = HeaderValue::from_str(policy.trim_end()).unwrap_or(HeaderValue::from_static(CSP));
    (header::CONTENT_SECURITY_POLICY, value)
}

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
