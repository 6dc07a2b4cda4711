//! Step 2, checked: the authorization request that arrives at
//! `GET /v1/authorize`, and every check of it.
//!
//! The checks run top to bottom in [`AuthRequest::parse`], in the order the
//! RFCs give them:
//!
//! 1. `client_id` and `redirect_uri` first (RFC 6749 4.1.2.1): until both are
//!    known good, nothing may be sent to the redirect URI, so any failure is
//!    an error page for the person, never a redirect.
//! 2. Then every other error goes back to the client's redirect URI with
//!    `error`, `error_description`, `state` and `iss` (RFC 6749 4.1.2.1,
//!    RFC 9207 2).
//!
//! Parsing takes the request's query and the registered clients only; what
//! the IdP then does with a valid request is [`crate::authorize`]'s.

use axum::response::{IntoResponse, Redirect, Response};

use crate::{clients::Clients, form::Form, pages::PageError, pkce::CodeChallenge, store::Session};

/// Longest `state` and `nonce` we carry.
const MAX_STATE_LEN: usize = 1024;

/// OIDC Core 3.1.2.1 `prompt`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// An authorization request that passed every check.
/// No `Debug`: `state` and `nonce` are the client's secrets.
#[derive(Clone)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub scopes: Vec<String>,
    pub challenge: CodeChallenge,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    /// `access_type=offline`: Google's way of asking for a refresh token.
    pub offline: bool,
}

/// Why a request was refused.
pub enum AuthorizeError {
    /// The client or redirect URI can't be trusted: tell the person.
    Untrusted(&'static str, String),
    /// The redirect URI is trusted: tell the client, through it.
    Redirect(Reply, &'static str, String),
}

impl AuthorizeError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthorizeError::Untrusted(code, _) | AuthorizeError::Redirect(_, code, _) => code,
        }
    }
}

/// Where and how to answer once the redirect URI is trusted.
#[derive(Clone)]
pub struct Reply {
    pub redirect_uri: String,
    pub state: Option<String>,
}

impl AuthRequest {
    /// Every check of an authorization request, in order.
    pub fn parse(clients: &Clients, raw: &str) -> Result<AuthRequest, AuthorizeError> {
        let untrusted = |desc: &str| AuthorizeError::Untrusted("invalid_request", desc.to_owned());
        // 1. The client and its redirect URI, before anything is redirected.
        if Form::has_duplicate_of(raw, "client_id") || Form::has_duplicate_of(raw, "redirect_uri") {
            return Err(untrusted("client_id or redirect_uri is repeated"));
        }
        let loose: Vec<(String, String)> = serde_urlencoded::from_str(raw)
            .map_err(|_| untrusted("the request is not valid URL encoding"))?;
        let find = |name: &str| {
            loose
                .iter()
                .find(|(n, v)| n == name && !v.is_empty())
                .map(|(_, v)| v.clone())
        };
        let client_id = find("client_id").ok_or_else(|| untrusted("client_id is missing"))?;
        let client = clients.get(&client_id).ok_or_else(|| {
            AuthorizeError::Untrusted(
                "invalid_client",
                "this application is not registered".into(),
            )
        })?;
        // OIDC Core 3.1.2.1: redirect_uri is required.
        let redirect_uri =
            find("redirect_uri").ok_or_else(|| untrusted("redirect_uri is missing"))?;
        // RFC 9700 4.1.3: exact string match against the registered URIs.
        if !client.has_redirect_uri(&redirect_uri) {
            return Err(untrusted(
                "redirect_uri is not registered for this application",
            ));
        }

        // 2. From here on, errors go back to the client.
        let state_param = find("state");
        let reply = Reply {
            redirect_uri: redirect_uri.clone(),
            state: state_param.clone().filter(|s| s.len() <= MAX_STATE_LEN),
        };
        let fail = |error: &'static str, desc: &str| {
            AuthorizeError::Redirect(reply.clone(), error, desc.to_owned())
        };
        // RFC 6749 3.1: no parameter twice.
        let form = Form::parse(raw).map_err(|e| fail("invalid_request", &e.to_string()))?;
        if state_param
            .as_ref()
            .is_some_and(|s| s.len() > MAX_STATE_LEN)
        {
            return Err(fail("invalid_request", "state is too long"));
        }
        // RFC 6749 4.1.1: response_type=code, the only one supported.
        match form.get("response_type") {
            None => return Err(fail("invalid_request", "response_type is missing")),
            Some("code") => {}
            Some(_) => {
                return Err(fail(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ));
            }
        }
        if form.get("response_mode").is_some_and(|m| m != "query") {
            return Err(fail(
                "invalid_request",
                "only response_mode=query is supported",
            ));
        }
        // OIDC Core 6: request objects are not supported.
        if form.get("request").is_some() {
            return Err(fail(
                "request_not_supported",
                "request objects are not supported",
            ));
        }
        if form.get("request_uri").is_some() {
            return Err(fail(
                "request_uri_not_supported",
                "request_uri is not supported",
            ));
        }
        // RFC 7636 4.4.1, RFC 9700 2.1.1: PKCE with S256, required.
        let challenge = CodeChallenge::from_request(
            form.get("code_challenge"),
            form.get("code_challenge_method"),
        )
        .map_err(|e| fail("invalid_request", &e.to_string()))?;
        // RFC 6749 3.3: every scope must be one the client may ask for.
        let scopes: Vec<String> = form
            .get("scope")
            .ok_or_else(|| fail("invalid_scope", "scope is missing"))?
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        // A scope said twice is one scope (and no way to make the request
        // the IdP keeps for the sign-in pages large).
        let mut seen = std::collections::HashSet::new();
        let scopes: Vec<String> = scopes
            .into_iter()
            .filter(|s| seen.insert(s.clone()))
            .collect();
        // A scope of only spaces asks for nothing, which no consent covers.
        if scopes.is_empty() {
            return Err(fail("invalid_scope", "scope is empty"));
        }
        if let Some(bad) = scopes.iter().find(|s| !client.allows_scope(s)) {
            return Err(fail(
                "invalid_scope",
                &format!("scope {bad} is not allowed for this application"),
            ));
        }
        let nonce = form.get("nonce").map(str::to_owned);
        if nonce.as_ref().is_some_and(|n| n.len() > MAX_STATE_LEN) {
            return Err(fail("invalid_request", "nonce is too long"));
        }
        // OIDC Core 3.1.2.1: prompt and max_age.
        let prompt = parse_prompt(form.get("prompt")).map_err(|d| fail("invalid_request", d))?;
        let max_age =
            match form.get("max_age") {
                None => None,
                Some(v) => Some(v.parse::<u32>().map_err(|_| {
                    fail("invalid_request", "max_age must be a non-negative integer")
                })? as i64),
            };
        Ok(AuthRequest {
            client_id,
            redirect_uri,
            state: state_param,
            nonce,
            scopes,
            challenge,
            prompt,
            max_age,
            offline: form.get("access_type") == Some("offline"),
        })
    }

    pub fn reply(&self) -> Reply {
        Reply {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
        }
    }

    /// Whether the person is signed in as this request demands (OIDC Core
    /// 3.1.2.1): `prompt=login` wants a sign-in during this very request
    /// (`signed_in_here`), `max_age` one no older than it says.
    pub fn is_satisfied_by(&self, session: &Session, signed_in_here: bool, now: i64) -> bool {
        if self.prompt.login && !signed_in_here {
            return false;
        }
        self.max_age
            .is_none_or(|max| now - session.auth_time <= max)
    }
}

fn parse_prompt(value: Option<&str>) -> Result<Prompt, &'static str> {
    let mut prompt = Prompt::default();
    for word in value.unwrap_or("").split(' ').filter(|w| !w.is_empty()) {
        match word {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => {}
            _ => return Err("prompt has an unknown value"),
        }
    }
    // OIDC Core 3.1.2.1: none with any other value is an error.
    if prompt.none && (prompt.login || prompt.consent) {
        return Err("prompt=none cannot be combined with other values");
    }
    Ok(prompt)
}

impl Reply {
    /// The client's redirect URI with the response parameters added to its
    /// query (RFC 6749 3.1.2: any query it already has is kept).
    fn url(&self, issuer: &str, params: &[(&str, &str)]) -> String {
        let Ok(mut url) = url::Url::parse(&self.redirect_uri) else {
            return self.redirect_uri.clone();
        };
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
            // RFC 9207 2: the issuer identifies who answered (mix-up defence).
            query.append_pair("iss", issuer);
        }
        url.to_string()
    }

    /// An error for the client, through its redirect URI.
    pub fn error(&self, issuer: &str, error: &str, description: &str) -> Response {
        let url = self.url(
            issuer,
            &[("error", error), ("error_description", description)],
        );
        Redirect::to(&url).into_response()
    }

    /// Step 5: the code, through the redirect URI.
    pub fn code(&self, issuer: &str, code: &str) -> Response {
        Redirect::to(&self.url(issuer, &[("code", code)])).into_response()
    }
}

impl AuthorizeError {
    /// The answer: a page for the person, or a redirect to the client.
    pub fn into_response(self, issuer: &str) -> Response {
        match self {
            AuthorizeError::Untrusted(code, description) => {
                PageError::bad_request("This sign-in request is not valid", description, code)
                    .into_response()
            }
            AuthorizeError::Redirect(reply, error, description) => {
                reply.error(issuer, error, &description)
            }
        }
    }
}
