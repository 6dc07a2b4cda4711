//! `/flow/lab`: the attack lab. Each button is a real attack that the BFF
//! carries out for the person, with this session's own login, against the
//! running IdP and API (or the BFF itself), and shows the request, the
//! answer and the rule that stopped it.
//!
//! - Every attack is a `POST` with the page's anti-CSRF token (or
//!   `X-CSRF: 1` from a script), and at most [`PER_MINUTE`] a minute per
//!   session.
//! - An attack uses only this session's tokens and codes: no other session
//!   can be touched. Replaying this login's code makes the IdP revoke what
//!   it issued for it, so the page then says to sign in again.
//! - Results live in the session, one per attack (the latest), and the page
//!   is shown again after each (post, redirect, get).

use std::{collections::HashMap, num::NonZeroU32, sync::Arc};

use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::{
    Source, mask,
    page::source_view,
    view::{AttackResult, AttackView, LabPage, RequestView},
};
use crate::{
    AppState, csrf, login,
    session::{Purpose, SignedIn},
};

/// Attacks a session may try in a minute.
pub const PER_MINUTE: u32 = 10;

/// Where the lab keeps its results (the id of a record of the store), and
/// this login's spent code.
const RESULTS_KEY: &str = "lab_results";
const RESULTS_RECORD: &str = "lab_results";
const SPENT_KEY: &str = "lab_spent_code";

/// The attacks per session, counted (governor's keyed GCRA).
pub struct Limiter(DefaultKeyedRateLimiter<String>);

impl Default for Limiter {
    fn default() -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(PER_MINUTE).unwrap_or(NonZeroU32::MIN));
        Limiter(RateLimiter::keyed(quota))
    }
}

/// An attack of the lab.
struct Attack {
    id: &'static str,
    title: &'static str,
    description: &'static str,
    rule: &'static str,
}

const ATTACKS: [Attack; 9] = [
    Attack {
        id: "wrong-verifier",
        title: "Redeem a fresh code with the wrong verifier",
        description: "The BFF gets a fresh code for you (your IdP session answers at once), then sends it to /token with a code_verifier of its own making, as a thief who caught the code would.",
        rule: "RFC 7636 4.6",
    },
    Attack {
        id: "replay-code",
        title: "Replay this login's code",
        description: "The code of your sign-in, already redeemed, sent to /token again with its own verifier.",
        rule: "RFC 6749 4.1.2, 10.5",
    },
    Attack {
        id: "no-pkce",
        title: "Ask /authorize without PKCE",
        description: "An authorization request with no code_challenge: a code anyone who intercepts it could redeem.",
        rule: "RFC 9700 2.1.1; RFC 7636 4.4.1",
    },
    Attack {
        id: "plain-pkce",
        title: "Ask /authorize with the plain method",
        description: "code_challenge_method=plain: the challenge is the verifier itself, readable by anyone who sees the request.",
        rule: "RFC 9700 2.1.1; RFC 7636 4.2",
    },
    Attack {
        id: "altered-signature",
        title: "Call the API with the access token's signature altered",
        description: "Your access token with one character of its signature changed, as a forger would make it.",
        rule: "RFC 7515 5.2; RFC 9068 4",
    },
    Attack {
        id: "alg-none",
        title: "Call the API with alg: none",
        description: "Your access token's claims under a header that says alg: none, and no signature at all.",
        rule: "RFC 8725 3.1",
    },
    Attack {
        id: "id-token",
        title: "Call the API with the ID token",
        description: "Your ID token, signed by the same key, sent where an access token belongs.",
        rule: "RFC 8725 3.11; RFC 9068 4",
    },
    Attack {
        id: "token-in-query",
        title: "Put the access token in the query string",
        description: "GET /api/me?access_token=…: a token in a URL ends up in logs, history and Referer headers.",
        rule: "RFC 6750 2.3; RFC 9700 4.3.2",
    },
    Attack {
        id: "forged-state",
        title: "Send the callback a state that was never issued",
        description: "GET /bff/callback with a code and a state no browser was given, as a login CSRF would.",
        rule: "RFC 6749 10.12; RFC 9700 4.7",
    },
];

#[derive(Deserialize)]
pub struct LabQuery {
    tried: Option<String>,
}

/// `GET /flow/lab`.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    signed_in: Option<SignedIn>,
    crate::reply::PageQuery(q): crate::reply::PageQuery<LabQuery>,
) -> Response {
    page(
        &state,
        &session,
        signed_in.as_ref(),
        q.tried.as_deref(),
        None,
    )
    .await
}

async fn page(
    state: &AppState,
    session: &Session,
    signed_in: Option<&SignedIn>,
    tried: Option<&str>,
    limited: Option<String>,
) -> Response {
    let mut results = results(state, session).await;
    let attacks = ATTACKS
        .iter()
        .map(|a| AttackView {
            id: a.id,
            title: a.title,
            description: a.description,
            rule: a.rule,
            result: results.remove(a.id),
        })
        .collect();
    LabPage {
        signed_in: signed_in.is_some(),
        csrf: signed_in.map(|s| s.csrf.clone()).unwrap_or_default(),
        attacks,
        tried: ATTACKS.iter().map(|a| a.id).find(|id| Some(*id) == tried),
        limited,
    }
    .into_response()
}

async fn results(state: &AppState, session: &Session) -> HashMap<String, AttackResult> {
    super::load_record(state, session, RESULTS_KEY, RESULTS_RECORD).await
}

async fn keep(state: &AppState, session: &Session, id: &str, result: AttackResult) {
    let mut all = results(state, session).await;
    all.insert(id.to_owned(), result);
    super::store_record(state, session, RESULTS_KEY, RESULTS_RECORD, &all).await;
}

fn back_to(id: &str) -> String {
    format!("/flow/lab?tried={id}#attack-{id}")
}

/// `POST /flow/lab/{id}`: carries out one attack.
pub async fn attack(
    State(state): State<AppState>,
    session: Session,
    signed_in: Option<SignedIn>,
    Path(id): Path<String>,
    headers: HeaderMap,
    crate::reply::PageBody(body): crate::reply::PageBody,
) -> Response {
    let Some(signed_in) = signed_in else {
        return Redirect::to("/flow/lab").into_response();
    };
    if !csrf::form_or_header(&body, &headers, &signed_in.csrf) {
        return crate::reply::ErrorPage::response(
            axum::http::StatusCode::UNAUTHORIZED,
            "This attack was not sent from the lab's page",
            "The lab only carries out attacks its own page asks for.",
            false,
        );
    }
    let Some(attack) = ATTACKS.iter().find(|a| a.id == id) else {
        return Redirect::to("/flow/lab").into_response();
    };
    if state.lab_limiter.0.check_key(&signed_in.id).is_err() {
        let limited =
            format!("At most {PER_MINUTE} attacks a minute: wait a little before the next one.");
        let mut response = page(&state, &session, Some(&signed_in), None, Some(limited)).await;
        *response.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
        return response;
    }
    tracing::info!(attack = attack.id, "attack lab");
    let result = match attack.id {
        "wrong-verifier" => {
            // A fresh code first: the browser goes to the IdP and back to
            // the callback, which finishes the attack (`wrong_verifier`).
            let extra = [("prompt", "none")];
            let start = login::begin(
                &state,
                &session,
                back_to(attack.id),
                Purpose::LabWrongVerifier,
                &extra,
            )
            .await;
            return match start {
                Ok(url) => Redirect::to(&url).into_response(),
                Err(e) => {
                    tracing::error!(error = %e, "could not start the lab's login");
                    crate::reply::unavailable_page()
                }
            };
        }
        "replay-code" => replay_code(&state, &session).await,
        "no-pkce" => authorize_without(&state, None).await,
        "plain-pkce" => authorize_without(&state, Some("plain")).await,
        "altered-signature" => {
            let token = altered_signature(&signed_in.login.tokens.access_token);
            call_api(
                &state,
                Bearer::Header(token),
                "the signature does not verify",
            )
            .await
        }
        "alg-none" => {
            let token = alg_none(&signed_in.login.tokens.access_token);
            call_api(&state, Bearer::Header(token), "alg none is never accepted").await
        }
        "id-token" => {
            let token = signed_in.login.tokens.id_token.clone();
            call_api(
                &state,
                Bearer::Header(token),
                "an ID token is not an access token",
            )
            .await
        }
        "token-in-query" => {
            let token = signed_in.login.tokens.access_token.clone();
            call_api(
                &state,
                Bearer::Query(token),
                "a token in the URL is refused",
            )
            .await
        }
        _ => forged_state(&state).await,
    };
    keep(&state, &session, attack.id, result).await;
    Redirect::to(&back_to(attack.id)).into_response()
}

/// The attack's request, and the answer it got.
fn result(
    request: RequestView,
    answer: Result<(reqwest::StatusCode, String), String>,
    refused_if: impl Fn(reqwest::StatusCode, &str) -> bool,
    verdict: &str,
    stopped_by: Source,
    state: &AppState,
) -> AttackResult {
    let (status, body, stopped) = match answer {
        Ok((status, body)) => {
            let stopped = refused_if(status, &body);
            (status.to_string(), body, stopped)
        }
        Err(error) => ("no answer".to_owned(), error, false),
    };
    AttackResult {
        request,
        status,
        answer: body.chars().take(600).collect(),
        stopped,
        verdict: if stopped {
            format!("Refused: {verdict}.")
        } else {
            "Not refused as expected: look at the answer.".to_owned()
        },
        stopped_by: source_view(state, &stopped_by),
        note: None,
    }
}

/// Where the lab keeps this login's code, redeemed at the callback, for
/// the replay attack (a used code opens nothing: replaying it only makes
/// the IdP revoke what it issued).
#[derive(Serialize, Deserialize)]
struct Spent {
    code: String,
    verifier: String,
}

/// Called by the callback once the login's code is redeemed.
pub async fn remember_spent_code(session: &Session, code: &str, verifier: &str) {
    let spent = Spent {
        code: code.to_owned(),
        verifier: verifier.to_owned(),
    };
    if let Err(e) = session.insert(SPENT_KEY, spent).await {
        tracing::warn!(error = %e, "could not keep the spent code for the lab");
    }
}

/// A token request for `code` with `verifier`, as the BFF makes it.
async fn token_request(
    state: &AppState,
    code: &str,
    verifier: &str,
) -> (RequestView, Result<(reqwest::StatusCode, String), String>) {
    let provider = state.provider.get();
    let endpoint = provider.token_endpoint.clone().unwrap_or_default();
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", state.config.redirect_uri()),
        ("code_verifier", verifier.to_owned()),
    ];
    let mut params = vec![
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("code".to_owned(), mask(code)),
        ("redirect_uri".to_owned(), state.config.redirect_uri()),
        ("code_verifier".to_owned(), mask(verifier)),
    ];
    params.extend(super::client_authentication(state));
    let request = RequestView {
        method: "POST".into(),
        url: endpoint.clone(),
        params,
    };
    let audience = state.assertion_audience(&provider);
    let sent = state.client_auth.authenticate(
        state.http.post(&endpoint),
        &mut form,
        &state.config.client_id,
        audience,
        state.clock.now(),
    );
    let answer = match sent {
        Ok(builder) => send(builder.form(&form)).await,
        Err(e) => Err(e.to_string()),
    };
    (request, answer)
}

async fn send(request: reqwest::RequestBuilder) -> Result<(reqwest::StatusCode, String), String> {
    let response = request
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = response.status();
    let location = response
        .headers()
        .get(axum::http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    Ok((status, location.map_or(body, |l| format!("Location: {l}"))))
}

fn is_error(code: &'static str) -> impl Fn(reqwest::StatusCode, &str) -> bool {
    move |status, body| status.is_client_error() && body.contains(code)
}

/// Finishes "wrong verifier" at the callback, with the fresh code; returns
/// where the browser goes next.
pub async fn wrong_verifier(state: &AppState, session: &Session, code: &str) -> String {
    // Well formed (RFC 7636 4.1), but not the one the challenge came from.
    let wrong = crate::random_token();
    let (request, answer) = token_request(state, code, &wrong).await;
    let result = result(
        request,
        answer,
        is_error("invalid_grant"),
        "invalid_grant, for S256(code_verifier) is not the code_challenge of the request",
        Source::elsewhere("crates/mock-idp/src/token.rs", "check_grant"),
        state,
    );
    keep(state, session, "wrong-verifier", result).await;
    back_to("wrong-verifier")
}

/// "Wrong verifier" could not get its fresh code: the IdP answered the
/// authorization request with `error` (no IdP session any more, say).
pub async fn no_fresh_code(state: &AppState, session: &Session, error: &str) -> String {
    let mut result = result(
        RequestView {
            method: "GET".into(),
            url: "the authorization endpoint (prompt=none)".into(),
            params: Vec::new(),
        },
        Err(format!("the IdP gave no code: {error}")),
        |_, _| false,
        "",
        Source::elsewhere("crates/bff/src/flow/lab.rs", "attack"),
        state,
    );
    result.verdict = "Not carried out: the IdP gave no fresh code without asking you.".into();
    result.note = Some("Sign in again, then try it.".into());
    keep(state, session, "wrong-verifier", result).await;
    back_to("wrong-verifier")
}

async fn replay_code(state: &AppState, session: &Session) -> AttackResult {
    let Ok(Some(spent)) = session.get::<Spent>(SPENT_KEY).await else {
        let mut result = result(
            RequestView {
                method: "POST".into(),
                url: "the token endpoint".into(),
                params: Vec::new(),
            },
            Err("no code of this login is known".into()),
            |_, _| false,
            "",
            Source::elsewhere("crates/bff/src/flow/lab.rs", "replay_code"),
            state,
        );
        result.verdict = "Not carried out: this session holds no code of its login.".into();
        result.note = Some("Sign in again, then try it.".into());
        return result;
    };
    let (request, answer) = token_request(state, &spent.code, &spent.verifier).await;
    let mut result = result(
        request,
        answer,
        is_error("invalid_grant"),
        "invalid_grant, for a code is good for one use; and the IdP revoked the tokens it had issued for it",
        Source::elsewhere("crates/mock-idp/src/token.rs", "exchange_code"),
        state,
    );
    if result.stopped {
        result.note = Some(
            "The IdP took the replay for a stolen code and revoked this login's refresh token (RFC 6749 4.1.2): the session ends at its next refresh. Sign in again to go on."
                .into(),
        );
    }
    result
}

/// An authorization request without PKCE (`method` None) or with another
/// method, sent as a browser would, without the person's cookies.
async fn authorize_without(state: &AppState, method: Option<&str>) -> AttackResult {
    let provider = state.provider.get();
    let endpoint = provider.client.auth_uri().to_string();
    let mut params = vec![
        ("response_type", "code".to_owned()),
        ("client_id", state.config.client_id.clone()),
        ("redirect_uri", state.config.redirect_uri()),
        ("scope", "openid".to_owned()),
        ("state", crate::random_token()),
    ];
    if let Some(method) = method {
        params.push(("code_challenge", crate::random_token()));
        params.push(("code_challenge_method", method.to_owned()));
    }
    let request = RequestView {
        method: "GET".into(),
        url: endpoint.clone(),
        params: params
            .iter()
            .map(|(k, v)| {
                let v = if *k == "state" { mask(v) } else { v.clone() };
                ((*k).to_owned(), v)
            })
            .collect(),
    };
    let answer = send(state.http.get(&endpoint).query(&params)).await;
    let verdict = match method {
        None => "invalid_request, for PKCE is required of every authorization request",
        Some(_) => "invalid_request, for only the S256 method is accepted",
    };
    let refused = |status: reqwest::StatusCode, body: &str| {
        (status.is_redirection() || status.is_client_error())
            && body.contains("error=invalid_request")
    };
    result(
        request,
        answer,
        refused,
        verdict,
        Source::elsewhere("crates/mock-idp/src/pkce.rs", "CodeChallenge::from_request"),
        state,
    )
}

/// How a token reaches the API.
enum Bearer {
    Header(String),
    Query(String),
}

async fn call_api(state: &AppState, bearer: Bearer, verdict: &str) -> AttackResult {
    let mut url = state.api_url.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(["api", "me"]);
    }
    let (builder, params) = match &bearer {
        Bearer::Header(token) => (
            state.api_http.get(url.clone()).bearer_auth(token),
            vec![(
                "Authorization".to_owned(),
                format!("Bearer {}", mask(token)),
            )],
        ),
        Bearer::Query(token) => {
            let mut with_query = url.clone();
            with_query
                .query_pairs_mut()
                .append_pair("access_token", token);
            (
                state.api_http.get(with_query),
                vec![("access_token (in the URL)".to_owned(), mask(token))],
            )
        }
    };
    let request = RequestView {
        method: "GET".into(),
        url: url.to_string(),
        params,
    };
    let answer = send(builder.timeout(std::time::Duration::from_secs(5))).await;
    let refused = |status: reqwest::StatusCode, body: &str| {
        status == reqwest::StatusCode::UNAUTHORIZED && body.contains("invalid_token")
    };
    result(
        request,
        answer,
        refused,
        &format!("401 invalid_token: {verdict}"),
        Source::elsewhere("crates/api/src/validate.rs", "Validator::validate"),
        state,
    )
}

/// The token with one character in the middle of its signature changed.
fn altered_signature(token: &str) -> String {
    let Some((signed, signature)) = token.rsplit_once('.') else {
        return token.to_owned();
    };
    let mut chars: Vec<char> = signature.chars().collect();
    if let Some(c) = chars.get_mut(signature.len() / 2) {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    format!("{signed}.{}", chars.into_iter().collect::<String>())
}

/// The token's claims under `alg: none`, unsigned.
fn alg_none(token: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let mut parts = token.split('.');
    let header = parts
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .unwrap_or_default();
    let payload = parts.next().unwrap_or_default();
    let mut forged = serde_json::json!({ "alg": "none" });
    if let Some(typ) = header.get("typ") {
        forged["typ"] = typ.clone();
    }
    format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(forged.to_string()))
}

/// The BFF's own callback, sent a state no browser was given.
async fn forged_state(state: &AppState) -> AttackResult {
    let callback = state.config.redirect_uri();
    let forged = crate::random_token();
    let request = RequestView {
        method: "GET".into(),
        url: callback.clone(),
        params: vec![
            ("code".into(), "forged".into()),
            ("state".into(), mask(&forged)),
        ],
    };
    let answer = send(
        state
            .http
            .get(&callback)
            .query(&[("code", "forged"), ("state", forged.as_str())])
            .header("accept", "application/json"),
    )
    .await;
    result(
        request,
        answer,
        |status, body| status == reqwest::StatusCode::BAD_REQUEST && body.contains("state"),
        "400, for the state is not one this browser started",
        Source::elsewhere("crates/bff/src/callback.rs", "handle"),
        state,
    )
}

/// The limiter, shared by the BFF's handlers.
pub fn limiter() -> Arc<Limiter> {
    Arc::new(Limiter::default())
}
