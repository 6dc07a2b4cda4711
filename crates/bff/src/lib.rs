//! The backend-for-frontend: the OAuth client of the sequence diagram
//! (steps 1, 2, 5, 6, 9). It performs the Authorization Code + PKCE login,
//! keeps every token in a server-side session, and proxies the page's API
//! calls with the access token attached. The browser holds only an
//! `HttpOnly` session cookie.
//!
//! | path | module |
//! | --- | --- |
//! | `GET /` | `pages` |
//! | `GET /bff/login` | `login` (steps 1-2) |
//! | `GET /bff/callback` | `callback` (steps 5-8; the ID token in `id_token`) |
//! | `GET /bff/user` | `user` |
//! | `ANY /bff/api/{*path}` | `proxy` (step 9), after `refresh` |
//! | `POST /bff/logout` | `logout` (RP-initiated logout) |
//! | `POST /bff/backchannel` | `backchannel` (back-channel logout) |
//! | `GET /flow`, `GET /flow.json`, `/flow/lab` | `flow` (the flow inspector and the attack lab) |
//!
//! Sessions and their store are `session`; the provider as discovery
//! describes it is `provider`.

pub mod backchannel;
pub mod callback;
pub mod client_auth;
pub mod config;
pub mod csrf;
pub mod flow;
pub mod id_token;
pub mod login;
pub mod logout;
pub mod metrics;
pub mod pages;
pub mod provider;
pub mod proxy;
pub mod refresh;
pub mod reply;
pub mod session;
pub mod user;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    http::{HeaderValue, header},
    middleware,
    routing::{any, get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use clock::Clock;
use rand::RngCore;
use subtle::ConstantTimeEq;
use tower_http::set_header::SetResponseHeaderLayer;

pub use config::Config;

use crate::{
    provider::{Provider, Providers},
    session::Store,
};

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub provider: Arc<Providers>,
    /// For the provider: no redirects, short timeouts.
    pub http: reqwest::Client,
    /// For the API: no redirects, streaming bodies.
    pub api_http: reqwest::Client,
    /// The API's base URL, parsed once at start.
    pub api_url: url::Url,
    /// Sessions and logins, in memory, SQLite or Redis.
    pub store: Store,
    /// Refreshes under way in this instance, so that one refresh token is
    /// used once.
    pub refreshes: Arc<refresh::InFlight>,
    /// What "now" is: the system's clock, or a test's.
    pub clock: Clock,
    /// How the BFF proves it is the client.
    pub client_auth: Arc<client_auth::ClientAuth>,
    /// The attack lab's attacks per session.
    pub lab_limiter: Arc<flow::lab::Limiter>,
    /// What `/metrics` shows.
    pub metrics: metrics::Metrics,
}

impl AppState {
    /// What a token request carries beyond what the oauth2 client adds: the
    /// client assertion under `private_key_jwt`, nothing otherwise.
    pub fn token_request_params(
        &self,
        provider: &Provider,
    ) -> anyhow::Result<Vec<(&'static str, String)>> {
        self.client_auth.extra_params(
            &self.config.client_id,
            self.assertion_audience(provider),
            self.clock.now(),
        )
    }

    /// What a client assertion names as its audience
    /// (`--client-assertion-audience`).
    pub fn assertion_audience<'p>(&self, provider: &'p Provider) -> &'p str {
        match self.config.client_assertion_audience.as_str() {
            "issuer" => &provider.issuer,
            _ => provider
                .token_endpoint
                .as_deref()
                .unwrap_or(&provider.issuer),
        }
    }
}

/// Builds the whole BFF: discovery at the provider, the session store, the
/// routes.
pub async fn app(config: &Config, clock: Clock) -> anyhow::Result<Router> {
    let api_url = url::Url::parse(&config.api_url)
        .map_err(|e| anyhow::anyhow!("--api-url {}: {e}", config.api_url))?;
    let http = provider::http_client()?;
    let provider = Provider::discover_with_retry(config, &http).await?;
    let store = Store::open(config, clock.clone()).await?;
    let api_http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        // Small requests, answered at once: no Nagle delay on them.
        .tcp_nodelay(true)
        .build()?;
    let state = AppState {
        config: Arc::new(config.clone()),
        provider: Arc::new(Providers::new(provider, config.clone(), http.clone())),
        http,
        api_http,
        api_url,
        store,
        refreshes: Arc::default(),
        clock,
        client_auth: Arc::new(client_auth::ClientAuth::from_config(config)?),
        lab_limiter: flow::lab::limiter(),
        metrics: metrics::Metrics::default(),
    };
    let registry = state.metrics.registry.clone();
    let router = router(state);
    Ok(match config.metrics {
        true => router.merge(telemetry::metrics::route(registry)),
        false => router,
    })
}

fn router(state: AppState) -> Router {
    let json_api = Router::new()
        .route("/bff/user", get(user::user))
        .route("/flow.json", get(flow::page::json))
        .route("/bff/api/{*path}", any(proxy::proxy))
        .route_layer(middleware::from_fn(csrf::require_header));
    let session_layer = state.store.layer();
    let router = Router::new()
        .route("/", get(pages::home))
        .route("/bff/login", get(login::login))
        .route("/bff/callback", get(callback::callback))
        .route("/bff/logout", post(logout::logout))
        .route("/flow", get(flow::page::show))
        .route("/flow/lab", get(flow::lab::show))
        .route("/flow/lab/{id}", post(flow::lab::attack))
        .merge(json_api)
        .route("/static/app.css", get(pages::stylesheet))
        .route("/static/app.js", get(pages::script))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(reply::not_found)
        .method_not_allowed_fallback(reply::method_not_allowed)
        .with_state(state.clone())
        .layer(session_layer)
        .layer(middleware::from_fn(reply::unsaved_session_as_unavailable))
        // Server to server: no browser session, no cookie.
        .route(
            "/bff/backchannel",
            post(backchannel::backchannel)
                .fallback(reply::method_not_allowed)
                .with_state(state),
        )
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(pages::CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    telemetry::layer(router)
}

/// Binds, builds and serves until Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind((config.bind, config.port))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "--port {}: cannot listen on {}:{}: {e}",
                config.port,
                config.bind,
                config.port
            )
        })?;
    let router = app(&config, Clock::system()).await?;
    tracing::info!(
        "BFF listening on {} (http://{}:{})",
        config.public_url(),
        config.bind,
        config.port
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(telemetry::shutdown_signal())
        .await?;
    Ok(())
}

/// 256 random bits, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether two secrets are equal, in time that does not depend on where
/// they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
