//! The flow inspector: each step of this session's login as it happened,
//! recorded by the code that performs it, shown at `/flow` as the sequence
//! diagram with the real values (every secret masked, every token decoded
//! and never shown whole), and the attack lab at `/flow/lab`.
//!
//! - The trace belongs to the browser session (which holds its id under
//!   [`TRACE_KEY`]; the trace itself is a record of the store beside it, so
//!   that the session every request loads stays small), so it is this
//!   session's alone; it is bounded ([`MAX_EVENTS`]).
//! - Steps 1-2 travel with the login attempt ([`crate::session::PendingLogin`]);
//!   the callback adds 3-10 (it calls the API's `/api/me` once to show what
//!   the API checks); refreshes, keys fetched again and the sign-out add
//!   events after them.
//! - What a step is, who talks to whom and the rule it follows come from
//!   [`Kind`]; a step records only what happened.

pub mod lab;
pub mod page;
pub mod view;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower_sessions::Session;

use view::Actor;

/// Where a session keeps its trace's id.
pub const TRACE_KEY: &str = "flow";
/// The kind of the store's records that hold traces.
const TRACE_RECORD: &str = "flow_trace";

/// Events kept after the ten steps of the login; the oldest go first.
pub const MAX_EVENTS: usize = 30;

/// What a step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Verifier,
    Authorize,
    AtIdp,
    Callback,
    TokenRequest,
    PkceCheck,
    Tokens,
    ApiCall,
    ApiAnswer,
    Refresh,
    KeysFetched,
    SignOut,
}

/// A step of the trace, as recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    pub kind: Kind,
    /// When, Unix seconds by the BFF's clock.
    pub at: i64,
    pub request: Option<Request>,
    pub outcome: String,
    pub details: Vec<(String, String)>,
    pub tokens: Vec<Decoded>,
    pub source: Source,
}

/// An HTTP request, its secrets already masked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub params: Vec<(String, String)>,
}

/// A JWT's header and claims; never the token or its signature.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Decoded {
    pub name: String,
    pub header: Value,
    pub claims: Value,
}

/// The code that performed a step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Source {
    pub path: String,
    pub function: String,
    /// Known for the BFF's own steps (recorded where they happen).
    pub line: Option<u32>,
}

/// The source of a step: this file, this line, and the function named.
#[macro_export]
macro_rules! here {
    ($function:expr) => {
        $crate::flow::Source {
            path: file!().to_owned(),
            function: $function.to_owned(),
            line: Some(line!()),
        }
    };
}

impl Source {
    /// Code of another crate of this repository (the mock IdP, the API),
    /// which does the step when the provider is this project's own.
    pub fn elsewhere(path: &str, function: &str) -> Source {
        Source {
            path: path.to_owned(),
            function: function.to_owned(),
            line: None,
        }
    }
}

impl Step {
    pub fn new(kind: Kind, at: i64, source: Source) -> Step {
        Step {
            kind,
            at,
            request: None,
            outcome: String::new(),
            details: Vec::new(),
            tokens: Vec::new(),
            source,
        }
    }

    pub fn request(mut self, method: &str, url: &str, params: Vec<(String, String)>) -> Step {
        self.request = Some(Request {
            method: method.to_owned(),
            url: url.to_owned(),
            params,
        });
        self
    }

    pub fn outcome(mut self, outcome: impl Into<String>) -> Step {
        self.outcome = outcome.into();
        self
    }

    pub fn detail(mut self, label: &str, value: impl Into<String>) -> Step {
        self.details.push((label.to_owned(), value.into()));
        self
    }

    /// A token, decoded when it is a JWT; else only that it is opaque.
    pub fn token(mut self, name: &str, token: &str) -> Step {
        match decode(name, token) {
            Some(decoded) => self.tokens.push(decoded),
            None => {
                let shape = format!("opaque, {} characters", token.len());
                self.details.push((name.to_owned(), shape));
            }
        }
        self
    }
}

impl Kind {
    /// The step's number in the diagram (`3-4` is one arrow: the person at
    /// the IdP); empty for the events after the login.
    pub fn number(self) -> &'static str {
        match self {
            Kind::Verifier => "1",
            Kind::Authorize => "2",
            Kind::AtIdp => "3-4",
            Kind::Callback => "5",
            Kind::TokenRequest => "6",
            Kind::PkceCheck => "7",
            Kind::Tokens => "8",
            Kind::ApiCall => "9",
            Kind::ApiAnswer => "10",
            Kind::Refresh | Kind::KeysFetched | Kind::SignOut => "",
        }
    }

    /// Who talks to whom.
    pub fn actors(self) -> (Actor, Actor) {
        match self {
            Kind::Verifier => (Actor::Bff, Actor::Bff),
            Kind::Authorize => (Actor::Bff, Actor::Idp),
            Kind::AtIdp => (Actor::User, Actor::Idp),
            Kind::Callback => (Actor::Idp, Actor::Bff),
            Kind::TokenRequest => (Actor::Bff, Actor::Idp),
            Kind::PkceCheck => (Actor::Idp, Actor::Idp),
            Kind::Tokens => (Actor::Idp, Actor::Bff),
            Kind::ApiCall => (Actor::Bff, Actor::Api),
            Kind::ApiAnswer => (Actor::Api, Actor::Bff),
            Kind::Refresh => (Actor::Bff, Actor::Idp),
            Kind::KeysFetched => (Actor::Bff, Actor::Idp),
            Kind::SignOut => (Actor::User, Actor::Idp),
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Kind::Verifier => "The BFF makes a code verifier and its challenge",
            Kind::Authorize => "The browser is sent to /authorize with the challenge",
            Kind::AtIdp => "The person signs in and consents at the IdP",
            Kind::Callback => "The code comes back to the redirect URI",
            Kind::TokenRequest => "The BFF sends the code and the verifier to /token",
            Kind::PkceCheck => "The IdP checks PKCE",
            Kind::Tokens => "The IdP answers with access, ID and refresh tokens",
            Kind::ApiCall => "The BFF calls the API with the access token",
            Kind::ApiAnswer => "The API validates the token and answers",
            Kind::Refresh => "The BFF refreshes the access token",
            Kind::KeysFetched => "The BFF fetches the provider's keys again",
            Kind::SignOut => "The person signs out",
        }
    }

    /// What the step is, as the specifications say.
    pub fn explanation(self) -> &'static str {
        match self {
            Kind::Verifier => {
                "A fresh, high-entropy code_verifier for this one login, and its code_challenge = BASE64URL(SHA-256(code_verifier)). The verifier stays on the server; only the challenge will travel. With it a state (against forged callbacks) and a nonce (binding the ID token to this login)."
            }
            Kind::Authorize => {
                "The BFF answers the browser with a redirect to the provider's authorization endpoint, carrying the client id, the redirect URI, the scopes, state, nonce and the S256 challenge."
            }
            Kind::AtIdp => {
                "The browser is at the identity provider: the person signs in (or already is) and allows what the app asks for. The app sees none of it: not the password, not the session."
            }
            Kind::Callback => {
                "The provider sends the browser back to the registered redirect URI with a one-time code, the state and the issuer. The BFF accepts only a state this browser started, once, from the issuer it expects."
            }
            Kind::TokenRequest => {
                "Server to server: the code, the redirect URI and the code_verifier, with the client's own authentication. Whoever stole the code on its way has no verifier."
            }
            Kind::PkceCheck => {
                "The provider computes BASE64URL(SHA-256(code_verifier)) and compares it with the code_challenge it kept with the code: only the client that made the challenge can redeem the code."
            }
            Kind::Tokens => {
                "Access token (for the API), ID token (for the BFF: who signed in) and refresh token. The BFF verifies the ID token (signature by the provider's key, issuer, audience, expiry, nonce, at_hash) and keeps all three on the server."
            }
            Kind::ApiCall => {
                "The BFF calls the API with the access token in the Authorization header. The browser only ever sends its session cookie to the BFF."
            }
            Kind::ApiAnswer => {
                "The API validates the access token by itself (the provider's published keys, the token's type, algorithm, issuer, audience, times and scopes) before it answers."
            }
            Kind::Refresh => {
                "The access token was about to expire: the BFF used the refresh token once, and kept what came back (a rotated refresh token, where the provider rotates them)."
            }
            Kind::KeysFetched => {
                "A token arrived signed by a key the BFF had not seen: the provider rotated its keys, so the BFF fetched its discovery document and keys again."
            }
            Kind::SignOut => {
                "The BFF ended the session, gave the refresh token back (RFC 7009), and sent the browser to the provider's end-session endpoint with the ID token as hint and a state it checks on return."
            }
        }
    }

    pub fn rule(self) -> &'static str {
        match self {
            Kind::Verifier => "RFC 7636 4.1-4.2; RFC 9700 2.1.1",
            Kind::Authorize => "RFC 6749 4.1.1; RFC 7636 4.3",
            Kind::AtIdp => "RFC 6749 4.1.1; OIDC Core 3.1.2.3-4",
            Kind::Callback => "RFC 6749 4.1.2, 10.12; RFC 9207",
            Kind::TokenRequest => "RFC 6749 4.1.3; RFC 7636 4.5",
            Kind::PkceCheck => "RFC 7636 4.6",
            Kind::Tokens => "RFC 6749 4.1.4, 5.1; OIDC Core 3.1.3.7",
            Kind::ApiCall => "RFC 6750 2.1",
            Kind::ApiAnswer => "RFC 9068 4; RFC 8725",
            Kind::Refresh => "RFC 6749 6; RFC 9700 4.14.2",
            Kind::KeysFetched => "OIDC Core 10.1.1",
            Kind::SignOut => "OIDC RP-Initiated Logout 1.0; RFC 7009",
        }
    }

    /// Where a step the BFF does not perform itself happens, when the
    /// provider is this project's mock IdP (or the API is this one).
    pub fn source_elsewhere(self) -> Option<Source> {
        let (path, function) = match self {
            Kind::AtIdp => ("crates/mock-idp/src/signin.rs", "submit"),
            Kind::PkceCheck => (
                "crates/mock-idp/src/pkce.rs",
                "CodeChallenge::is_satisfied_by",
            ),
            Kind::ApiAnswer => ("crates/api/src/validate.rs", "Validator::validate"),
            _ => return None,
        };
        Some(Source::elsewhere(path, function))
    }
}

/// A Unix time as people read it: `2026-12-02 08:41:02 UTC`.
pub fn when(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// How the BFF authenticated at the token endpoint, as the trace shows it:
/// the method, never the secret or the assertion.
pub fn client_authentication(state: &crate::AppState) -> Vec<(String, String)> {
    let client_id = state.config.client_id.clone();
    let hidden = |what: &str| format!("({what}, not shown)");
    match state.config.client_auth_method.as_str() {
        "client_secret_post" => vec![
            ("client_id".into(), client_id),
            ("client_secret".into(), hidden("the client secret")),
        ],
        "private_key_jwt" => vec![
            ("client_id".into(), client_id),
            (
                "client_assertion_type".into(),
                crate::client_auth::JWT_BEARER.into(),
            ),
            (
                "client_assertion".into(),
                hidden("a JWT signed with the BFF's own key, RFC 7523"),
            ),
        ],
        _ => vec![(
            "Authorization".into(),
            format!("Basic {}", hidden("client id and secret, RFC 6749 2.3.1")),
        )],
    }
}

/// Steps 9-10 of the trace: the BFF calls the API's `/api/me` with the
/// access token, and the API says what it checked. A login does not fail
/// when the API does: the step says so.
pub async fn api_steps(state: &crate::AppState, access_token: &str) -> Vec<Step> {
    let now = state.clock.now();
    let mut url = state.api_url.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(["api", "me"]);
    }
    let call = Step::new(Kind::ApiCall, now, crate::here!("api_steps")).request(
        "GET",
        url.as_str(),
        vec![(
            "Authorization".to_owned(),
            format!("Bearer {}", mask(access_token)),
        )],
    );
    let source = Kind::ApiAnswer
        .source_elsewhere()
        .unwrap_or_else(|| crate::here!("api_steps"));
    let answer = Step::new(Kind::ApiAnswer, now, source);
    let response = state
        .api_http
        .get(url)
        .bearer_auth(access_token)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await;
    let (call, answer) = match response {
        Ok(response) => {
            let status = response.status();
            let body: Value = response.json().await.unwrap_or_default();
            let mut answer = answer.outcome(format!(
                "{status}: sub {}, client {}, scopes {}",
                body["sub"].as_str().unwrap_or("-"),
                body["client_id"].as_str().unwrap_or("-"),
                body["scopes"]
                    .as_array()
                    .map(|s| s
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" "))
                    .unwrap_or_default()
            ));
            for (n, check) in (body["checks"].as_array().into_iter().flatten()).enumerate() {
                answer = answer.detail(&format!("check {}", n + 1), check.as_str().unwrap_or(""));
            }
            (call.outcome(format!("{status}")), answer)
        }
        Err(e) => {
            let why = format!("the API did not answer: {}", e.without_url());
            (call.outcome(why.clone()), answer.outcome(why))
        }
    };
    vec![call, answer]
}

/// A secret as shown: its first four characters and its length.
pub fn mask(secret: &str) -> String {
    let shown: String = secret.chars().take(4).collect();
    format!("{shown}… ({} characters)", secret.chars().count())
}

/// BASE64URL(SHA-256(verifier)): the S256 challenge (RFC 7636 4.2).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A JWT's header and claims, if `token` is one.
pub fn decode(name: &str, token: &str) -> Option<Decoded> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let part = |b64: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(b64).ok()?).ok()
    };
    Some(Decoded {
        name: name.to_owned(),
        header: part(header)?,
        claims: part(payload)?,
    })
}

/// Query parameters of a URL, with the values named in `secret` masked.
pub fn params_of(url: &str, secret: &[&str]) -> Vec<(String, String)> {
    url::Url::parse(url)
        .map(|u| {
            u.query_pairs()
                .map(|(name, value)| {
                    let value = if secret.contains(&name.as_ref()) {
                        mask(&value)
                    } else {
                        value.into_owned()
                    };
                    (name.into_owned(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A URL without its query.
pub fn without_query(url: &str) -> String {
    url::Url::parse(url)
        .map(|mut u| {
            u.set_query(None);
            u.to_string()
        })
        .unwrap_or_default()
}

/// This session's trace.
pub async fn load(state: &crate::AppState, session: &Session) -> Vec<Step> {
    load_record(state, session, TRACE_KEY, TRACE_RECORD).await
}

/// Replaces this session's trace (a new login starts a new one).
pub async fn store(state: &crate::AppState, session: &Session, steps: Vec<Step>) {
    store_record(state, session, TRACE_KEY, TRACE_RECORD, &bounded(steps)).await;
}

/// A record of the store that belongs to this session, which holds its id
/// under `key` (the trace, the lab's results): kept beside the session, not
/// in it, as every request loads the session.
pub async fn load_record<T: serde::de::DeserializeOwned + Default>(
    state: &crate::AppState,
    session: &Session,
    key: &str,
    kind: &str,
) -> T {
    let Ok(Some(id)) = session.get::<String>(key).await else {
        return T::default();
    };
    match state.store.record::<T>(kind, &id).await {
        Ok(value) => value.unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, kind, "could not read a record of the session");
            T::default()
        }
    }
}

/// Keeps `value` as this session's record under `key`, as long as a
/// session may live.
pub async fn store_record<T: Serialize>(
    state: &crate::AppState,
    session: &Session,
    key: &str,
    kind: &str,
    value: &T,
) {
    let id = match session.get::<String>(key).await {
        Ok(Some(id)) => id,
        _ => crate::random_token(),
    };
    let until = state.clock.now() + state.config.session_absolute_seconds;
    if let Err(e) = state.store.put_record(kind, &id, value, until).await {
        tracing::warn!(error = %e, kind, "could not keep a record of the session");
        return;
    }
    if let Err(e) = session.insert(key, id).await {
        tracing::warn!(error = %e, kind, "could not keep a record's id");
    }
}

/// Adds events to this session's trace.
pub async fn append(state: &crate::AppState, session: &Session, events: Vec<Step>) {
    if events.is_empty() {
        return;
    }
    let mut steps = load(state, session).await;
    steps.extend(events);
    store(state, session, steps).await;
}

/// The login's steps, then the newest [`MAX_EVENTS`] events.
fn bounded(mut steps: Vec<Step>) -> Vec<Step> {
    let login = steps.iter().filter(|s| !s.kind.number().is_empty()).count();
    let events = steps.len() - login;
    if events > MAX_EVENTS {
        let mut dropped = events - MAX_EVENTS;
        steps.retain(|s| {
            let drop = dropped > 0 && s.kind.number().is_empty();
            if drop {
                dropped -= 1;
            }
            !drop
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_is_the_rfc7636_appendix_b_example() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_masked_secret_shows_four_characters_and_its_length() {
        let masked = mask("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(masked, "dBjf… (43 characters)");
    }

    #[test]
    fn a_decoded_token_has_no_signature_and_opaque_tokens_are_not_decoded() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
        let decoded = decode("access token", jwt).unwrap();
        assert_eq!(decoded.header["alg"], "RS256");
        assert_eq!(decoded.claims["sub"], "a");
        assert!(
            !serde_json::to_string(&decoded)
                .unwrap()
                .contains("c2lnbmF0dXJl")
        );
        assert!(decode("x", "opaque-token").is_none());
    }

    #[test]
    fn the_trace_keeps_the_login_and_the_newest_events() {
        let step = |kind| Step::new(kind, 0, Source::elsewhere("f", "g"));
        let mut steps = vec![step(Kind::Verifier), step(Kind::Authorize)];
        for n in 0..(MAX_EVENTS + 5) {
            steps.push(step(Kind::Refresh).outcome(n.to_string()));
        }
        let kept = bounded(steps);
        assert_eq!(kept.len(), 2 + MAX_EVENTS);
        assert_eq!(kept[0].kind, Kind::Verifier);
        assert_eq!(kept[2].outcome, "5", "the oldest events went first");
    }
}
