//! `GET /flow`: the sequence diagram filled with this session's login, and
//! `GET /flow.json` (with `X-CSRF: 1`), the same trace for scripts. Without
//! a trace (never signed in here), the page explains the flow without
//! values.

use axum::{
    Json,
    extract::State,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_sessions::Session;

use super::{
    Kind, Source, Step,
    view::{FlowPage, RequestView, SourceView, StepView, TokenView},
};
use crate::{AppState, session::SignedIn};

/// The ten steps, in order: what the page explains when it has no values.
const LOGIN: [Kind; 9] = [
    Kind::Verifier,
    Kind::Authorize,
    Kind::AtIdp,
    Kind::Callback,
    Kind::TokenRequest,
    Kind::PkceCheck,
    Kind::Tokens,
    Kind::ApiCall,
    Kind::ApiAnswer,
];

#[derive(Deserialize)]
pub struct FlowQuery {
    /// `all`: every step open, for printing.
    expand: Option<String>,
}

/// `GET /flow`.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    signed_in: Option<SignedIn>,
    crate::reply::PageQuery(q): crate::reply::PageQuery<FlowQuery>,
) -> Response {
    let trace = super::load(&state, &session).await;
    let (login, events): (Vec<&Step>, Vec<&Step>) =
        trace.iter().partition(|s| !s.kind.number().is_empty());
    let user_name = match (&signed_in, trace.is_empty()) {
        (_, true) => None,
        (Some(signed_in), false) => Some(
            (signed_in.login.user.name.clone()).unwrap_or_else(|| signed_in.login.user.sub.clone()),
        ),
        (None, false) => Some("you (signed out since)".to_owned()),
    };
    let steps = if login.is_empty() {
        LOGIN.iter().map(|kind| explained(&state, *kind)).collect()
    } else {
        login.iter().map(|s| view(&state, s, "step")).collect()
    };
    FlowPage {
        user_name,
        steps,
        events: events.iter().map(|s| view(&state, s, "event")).collect(),
        expand_all: q.expand.as_deref() == Some("all"),
    }
    .into_response()
}

/// `GET /flow.json`: the trace, each step with what it is.
pub async fn json(
    State(state): State<AppState>,
    session: Session,
    signed_in: Option<SignedIn>,
) -> Json<Value> {
    let trace = super::load(&state, &session).await;
    let steps: Vec<Value> = trace
        .iter()
        .map(|step| {
            let (from, to) = step.kind.actors();
            json!({
                "number": step.kind.number(),
                "kind": step.kind,
                "title": step.kind.title(),
                "from": from,
                "to": to,
                "rule": step.kind.rule(),
                "at": step.at,
                "request": step.request,
                "outcome": step.outcome,
                "details": step.details,
                "tokens": step.tokens,
                "source": step.source,
            })
        })
        .collect();
    Json(json!({ "signed_in": signed_in.is_some(), "steps": steps }))
}

/// A step of the login without values: what it is, who does it.
fn explained(state: &AppState, kind: Kind) -> StepView {
    let source = kind.source_elsewhere().unwrap_or_else(|| bff_source(kind));
    let (from, to) = kind.actors();
    StepView {
        number: kind.number().to_owned(),
        anchor: format!("step-{}", kind.number()),
        title: kind.title().to_owned(),
        from,
        to,
        summary: String::new(),
        at: String::new(),
        explanation: kind.explanation().to_owned(),
        rule: kind.rule().to_owned(),
        request: None,
        outcome: String::new(),
        details: Vec::new(),
        tokens: Vec::new(),
        source: source_view(state, &source),
    }
}

/// Where the BFF does a step it has not done yet in this session.
fn bff_source(kind: Kind) -> Source {
    let (path, function) = match kind {
        Kind::Verifier | Kind::Authorize => ("crates/bff/src/login.rs", "login"),
        Kind::Callback => ("crates/bff/src/callback.rs", "handle"),
        Kind::TokenRequest => ("crates/bff/src/callback.rs", "exchange"),
        Kind::Tokens => ("crates/bff/src/id_token.rs", "verify_login"),
        Kind::ApiCall => ("crates/bff/src/proxy.rs", "proxy"),
        Kind::Refresh => ("crates/bff/src/refresh.rs", "refresh_and_store"),
        Kind::KeysFetched => ("crates/bff/src/provider.rs", "Providers::refresh"),
        Kind::SignOut => ("crates/bff/src/logout.rs", "logout"),
        Kind::AtIdp | Kind::PkceCheck | Kind::ApiAnswer => ("", ""),
    };
    Source::elsewhere(path, function)
}

/// A recorded step, for the page.
fn view(state: &AppState, step: &Step, prefix: &str) -> StepView {
    let (from, to) = step.kind.actors();
    let summary = match &step.request {
        Some(request) => {
            let path = url::Url::parse(&request.url)
                .map(|u| u.path().to_owned())
                .unwrap_or_else(|_| request.url.clone());
            format!("{} {path}", request.method)
        }
        None => String::new(),
    };
    let anchor = match step.kind.number() {
        "" => format!("{prefix}-{}", step.at),
        number => format!("step-{number}"),
    };
    StepView {
        number: step.kind.number().to_owned(),
        anchor,
        title: step.kind.title().to_owned(),
        from,
        to,
        summary,
        at: super::when(step.at),
        explanation: step.kind.explanation().to_owned(),
        rule: step.kind.rule().to_owned(),
        request: step.request.as_ref().map(|r| RequestView {
            method: r.method.clone(),
            url: r.url.clone(),
            params: r.params.clone(),
        }),
        outcome: step.outcome.clone(),
        details: step.details.clone(),
        tokens: step
            .tokens
            .iter()
            .map(|t| TokenView {
                name: t.name.clone(),
                header: pretty(&t.header),
                claims: pretty(&t.claims),
            })
            .collect(),
        source: source_view(state, &step.source),
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// The source, linked to its line when `--source-url` is set.
pub fn source_view(state: &AppState, source: &Source) -> SourceView {
    let href = state.config.source_url.as_deref().map(|base| {
        let base = base.trim_end_matches('/');
        match source.line {
            Some(line) => format!("{base}/{}#L{line}", source.path),
            None => format!("{base}/{}", source.path),
        }
    });
    SourceView {
        path: source.path.clone(),
        function: source.function.clone(),
        href: href.filter(|_| !source.path.is_empty()),
    }
}
