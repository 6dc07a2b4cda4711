//! What the flow inspector's pages show: plain values, ready for the
//! templates (`templates/bff/flow.html`, `templates/bff/lab.html`).

use askama::Template;
use askama_web::WebTemplate;

/// One of the four actors of the sequence diagram: `user`, `bff`, `idp`,
/// `api` (the CSS class of its lifeline), and its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    User,
    Bff,
    Idp,
    Api,
}

impl Actor {
    /// The lifeline's CSS class and column: `user`, `bff`, `idp`, `api`.
    pub fn class(self) -> &'static str {
        match self {
            Actor::User => "user",
            Actor::Bff => "bff",
            Actor::Idp => "idp",
            Actor::Api => "api",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Actor::User => "Browser",
            Actor::Bff => "BFF",
            Actor::Idp => "IdP",
            Actor::Api => "API",
        }
    }

    /// 1-4, left to right.
    pub fn column(self) -> u8 {
        match self {
            Actor::User => 1,
            Actor::Bff => 2,
            Actor::Idp => 3,
            Actor::Api => 4,
        }
    }
}

/// An HTTP request as shown: every secret masked.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RequestView {
    pub method: String,
    pub url: String,
    /// Query or form parameters, and the headers that matter.
    pub params: Vec<(String, String)>,
}

/// A token as shown: its decoded header and claims, pretty JSON; never the
/// token itself or its signature.
#[derive(Clone, Debug)]
pub struct TokenView {
    pub name: String,
    pub header: String,
    pub claims: String,
}

/// Where in the code a step happens.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SourceView {
    /// `crates/bff/src/login.rs`
    pub path: String,
    /// `login`
    pub function: String,
    /// A link to the line in the repository, when `--source-url` is set.
    pub href: Option<String>,
}

/// One arrow of the diagram.
#[derive(Clone, Debug)]
pub struct StepView {
    /// `1`, `2`, `3-4`, …; empty for the events after the login.
    pub number: String,
    /// An id for the page's anchors: `step-1`, `event-3`.
    pub anchor: String,
    /// Short: "The client makes a code verifier and challenge".
    pub title: String,
    pub from: Actor,
    pub to: Actor,
    /// One line of what happened: "GET /v1/authorize → 303".
    pub summary: String,
    /// When, as people read it ("08:41:02 UTC"); empty when signed out.
    pub at: String,
    /// What the step is, from the specification, with values or without.
    pub explanation: String,
    /// The rule it follows or enforces: "RFC 7636 4.2".
    pub rule: String,
    pub request: Option<RequestView>,
    /// The answer, or what was checked.
    pub outcome: String,
    pub details: Vec<(String, String)>,
    pub tokens: Vec<TokenView>,
    pub source: SourceView,
}

/// `GET /flow`.
#[derive(Template, WebTemplate)]
#[template(path = "bff/flow.html")]
pub struct FlowPage {
    /// Whose login this is; `None` when the page explains the flow without
    /// values (signed out, or no trace).
    pub user_name: Option<String>,
    /// The ten steps, in order.
    pub steps: Vec<StepView>,
    /// What happened since: refreshes, keys fetched again, the sign-out.
    pub events: Vec<StepView>,
    /// Every step's details open (`?expand=all`, for printing).
    pub expand_all: bool,
}

/// One attack of the lab, and what happened when it was tried.
#[derive(Clone, Debug)]
pub struct AttackView {
    /// The path segment: `/flow/lab/{id}`.
    pub id: &'static str,
    pub title: &'static str,
    /// What the attacker tries, in a sentence or two.
    pub description: &'static str,
    /// The rule that stops it: "RFC 7636 4.6".
    pub rule: &'static str,
    pub result: Option<AttackResult>,
}

/// The outcome of one attack, carried out by the BFF for the person.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AttackResult {
    pub request: RequestView,
    /// "400 Bad Request".
    pub status: String,
    /// The answer's body, masked and shortened.
    pub answer: String,
    /// Whether the attack failed, as it must.
    pub stopped: bool,
    /// Why it failed, in words.
    pub verdict: String,
    /// The code that stopped it.
    pub stopped_by: SourceView,
    /// What the person should know now (e.g. "the IdP revoked this
    /// login's tokens: sign in again").
    pub note: Option<String>,
}

/// `GET /flow/lab`, and the page after an attack.
#[derive(Template, WebTemplate)]
#[template(path = "bff/lab.html")]
pub struct LabPage {
    pub signed_in: bool,
    /// The anti-CSRF token the attack forms carry.
    pub csrf: String,
    pub attacks: Vec<AttackView>,
    /// The attack just tried, to scroll to: its id.
    pub tried: Option<&'static str>,
    /// Set when the person tried too many attacks too fast.
    pub limited: Option<String>,
}
