//! The resource server: the real API in-process, pointed at an IdP, with
//! its state in hand (a test reads its JWKS fetch counter there).

use clap::Parser;
use serde_json::{Value, json};

use crate::{
    AUDIENCE, ManualClock,
    idp::Idp,
    server::{Faults, Running, listen},
};

pub struct Api {
    pub base_url: String,
    /// The API's own state, shared with the running server.
    pub state: api::AppState,
    pub faults: Faults,
    router: axum::Router,
    server: Running,
}

impl Api {
    /// The API for `idp`'s issuer, on `idp`'s clock.
    pub async fn start(idp: &Idp) -> Api {
        Api::start_with_args(idp, &[]).await
    }

    /// The API with extra command-line options appended. It takes the
    /// access tokens of the IdP's profile, for the audience that profile's
    /// provider gives the demo API.
    pub async fn start_with_args(idp: &Idp, extra: &[&str]) -> Api {
        let profile = idp.state.settings.profile;
        let mut args = vec![
            "--token-profile",
            token_profile(profile),
            "--audience",
            profile.api_audience(),
        ];
        args.extend_from_slice(extra);
        Api::start_for(&idp.issuer, &idp.time, &args).await
    }

    /// The API for any issuer, on a given clock.
    pub async fn start_for(issuer: &str, time: &ManualClock, extra: &[&str]) -> Api {
        let (listener, addr) = listen().await;
        let mut args = vec![
            "api",
            "--issuer",
            issuer,
            "--database-url",
            "sqlite::memory:",
            "--port",
            "0",
        ];
        args.extend_from_slice(extra);
        let config = api::Config::parse_from(args);
        let state = api::AppState::new(&config, time.clock())
            .await
            .expect("the API builds");
        let faults = Faults::default();
        let router = api::router(state.clone()).merge(api::metrics_route(&state));
        let server = Running::serve(listener, faults.around(router.clone())).await;
        Api {
            base_url: format!("http://{addr}"),
            state,
            faults,
            router,
            server,
        }
    }

    pub async fn shutdown(&mut self) {
        self.server.stop().await;
    }

    /// Serves the same state again on the same address, after
    /// [`Api::shutdown`]: the API is back.
    pub async fn start_again(&mut self) {
        let addr: std::net::SocketAddr = self
            .base_url
            .trim_start_matches("http://")
            .parse()
            .expect("API address");
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("rebind the API port");
        self.server = Running::serve(listener, self.faults.around(self.router.clone())).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `GET /api/me` with `Authorization: Bearer {token}`.
    pub async fn me(&self, token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(self.url("/api/me"))
            .bearer_auth(token)
            .send()
            .await
            .expect("the API answers")
    }
}

/// The claims of a good RFC 9068 access token from `idp`: what an attack
/// test changes one thing in.
pub fn access_claims(idp: &Idp) -> Value {
    let now = idp.time.now();
    json!({
        "iss": idp.issuer,
        "sub": "attacker-test-subject",
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "jti": format!("jti-{now}-{}", crate::random_string()),
        "client_id": "bff-demo",
        "scope": "notes:read notes:write",
    })
}

/// The API's `--token-profile` for tokens of a mock IdP profile. Google's
/// access tokens are opaque: no profile takes them.
pub fn token_profile(profile: mock_idp::profile::Profile) -> &'static str {
    use mock_idp::profile::Profile;
    match profile {
        Profile::Plain | Profile::Google => "rfc9068",
        Profile::Okta => "okta",
        Profile::Entra => "entra",
        Profile::Auth0 => "auth0",
        Profile::Keycloak => "keycloak",
    }
}
