//! A mock OpenID Provider shaped like an Okta custom authorization server:
//! the authorization server of the sequence diagram (steps 2-8).
//!
//! Paths hang below the issuer (`http://localhost:9000/oauth2/default` by
//! default), as Okta lays them out; the pages a person sees (sign-in,
//! registration, consent, and the list of apps they let in) live at the
//! root. Every path is named once, in [`paths`]. See `ARCHITECTURE.md` for
//! the map of modules and the invariants they keep.

pub mod auth_request;
pub mod authorize;
pub mod backchannel;
pub mod client_auth;
pub mod clients;
pub mod codes;
pub mod config;
pub mod consent;
pub mod csrf;
pub mod discovery;
pub mod form;
pub mod grants;
pub mod interaction;
pub mod introspect;
pub mod keys;
pub mod logout;
pub mod metrics;
pub mod pages;
pub mod passwords;
pub mod paths;
pub mod pkce;
pub mod profile;
pub mod refresh;
pub mod revoke;
pub mod secret;
pub mod session;
pub mod signin;
pub mod signup;
pub mod store;
pub mod throttle;
pub mod token;
pub mod token_error;
pub mod tokens;
pub mod userinfo;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    http::{HeaderValue, header},
    routing::{get, post},
};
use clock::Clock;
use tower_http::set_header::SetResponseHeaderLayer;

pub use config::{Cli, Command, Config, Settings};

use crate::{
    clients::Clients, codes::Codes, interaction::Interactions, keys::Keys, passwords::Hasher,
    refresh::RecentRotations, store::Store, throttle::Throttle,
};

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub issuer: String,
    pub settings: Arc<Settings>,
    pub clients: Clients,
    pub store: Store,
    pub keys: Keys,
    pub codes: Codes,
    pub interactions: Interactions,
    pub rotations: RecentRotations,
    /// Sign-in attempts per account and per address.
    pub throttle: Arc<Throttle>,
    /// Password checks, one per core at a time.
    pub hasher: Hasher,
    /// What "now" is: the system's clock, or a test's.
    pub clock: Clock,
    /// For back-channel logout deliveries.
    pub http: reqwest::Client,
    /// Client assertions (`private_key_jwt`) already used.
    pub assertions: client_auth::SeenAssertions,
    /// Signs what only this IdP reads (the Keycloak profile's refresh
    /// tokens); made at start, never published.
    pub internal_key: Arc<[u8]>,
    /// What `/metrics` shows.
    pub metrics: metrics::Metrics,
}

impl AppState {
    /// Builds the IdP's state: opens the store, loads the config's users into
    /// it, and loads (or makes) the signing keys.
    pub async fn new(
        issuer: String,
        settings: Settings,
        database_url: &str,
        signing_alg: &str,
        clock: Clock,
    ) -> anyhow::Result<AppState> {
        url::Url::parse(&issuer).map_err(|e| anyhow::anyhow!("--issuer {issuer}: {e}"))?;
        let store = Store::open(database_url).await?;
        for user in &settings.users {
            store
                .upsert_user(
                    &store::User {
                        sub: store::subject_for(&user.username),
                        username: user.username.clone(),
                        password_hash: user.password_hash.clone(),
                        name: user.name.clone(),
                        given_name: user.given_name.clone(),
                        family_name: user.family_name.clone(),
                        email_verified: true,
                        updated_at: clock.now(),
                    },
                    clock.now(),
                )
                .await?;
        }
        let lifetimes = settings.tokens;
        let lifetimes_throttle = settings.throttle;
        let longest_token = lifetimes
            .access_token_seconds
            .max(lifetimes.id_token_seconds)
            .max(
                settings
                    .clients
                    .iter()
                    .filter_map(|c| c.access_token_seconds)
                    .max()
                    .unwrap_or(0),
            );
        let published_after_retirement = longest_token + lifetimes.key_retirement_margin_seconds;
        let keys = Keys::load(
            &store,
            signing_alg,
            published_after_retirement as i64,
            clock.clone(),
        )
        .await?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()?;
        let account_page = format!("{}{}", origin(&issuer), paths::GRANTS);
        Ok(AppState {
            issuer,
            clients: Clients::from_config(&settings.clients).with_account_page(&account_page),
            codes: Codes::new(lifetimes.code_seconds as i64),
            settings: Arc::new(settings),
            store,
            keys,
            interactions: Interactions::default(),
            rotations: RecentRotations::default(),
            throttle: Arc::new(Throttle::new(lifetimes_throttle, clock.clone())),
            hasher: Hasher::per_core(),
            clock,
            http,
            assertions: client_auth::SeenAssertions::default(),
            internal_key: secret::random_token().into_bytes().into(),
            metrics: metrics::Metrics::default(),
        })
    }

    /// The URL of an endpoint below the issuer (whose own URL may end in a
    /// slash, as Auth0's does).
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer.trim_end_matches('/'))
    }

    /// Adds a new signing key and makes it the active one.
    pub async fn rotate_keys(&self, alg: &str) -> anyhow::Result<String> {
        self.keys.rotate(&self.store, alg).await
    }
}

/// The scheme, host and port of a URL: where the IdP's pages are.
fn origin(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// The whole IdP as a router: protocol endpoints below the issuer's path,
/// pages at the root (sign-in, registration, consent, the person's grants).
pub fn app(state: AppState) -> Router {
    let issuer_path = url::Url::parse(&state.issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let protocol = Router::new()
        .route(
            paths::OPENID_CONFIGURATION,
            get(discovery::openid_configuration),
        )
        .route(
            paths::OAUTH_AUTHORIZATION_SERVER,
            get(discovery::openid_configuration),
        )
        .route(paths::KEYS, get(discovery::jwks))
        .route(paths::AUTHORIZE, get(authorize::authorize))
        .route(paths::TOKEN, post(token::token))
        .route(
            paths::USERINFO,
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route(paths::REVOKE, post(revoke::revoke))
        .route(paths::INTROSPECT, post(introspect::introspect))
        .route(paths::LOGOUT, get(logout::logout).post(logout::logout));
    let protocol = if issuer_path.is_empty() {
        protocol
    } else {
        Router::new().nest(&issuer_path, protocol).route(
            // RFC 8414 3: the well-known URI with the issuer's path appended.
            &format!("{}{issuer_path}", paths::OAUTH_AUTHORIZATION_SERVER),
            get(discovery::openid_configuration),
        )
    };
    let router = Router::new()
        .merge(protocol)
        .route(paths::SIGN_IN, get(signin::show).post(signin::submit))
        .route(paths::SIGN_UP, get(signup::show).post(signup::submit))
        .route(paths::CONSENT, get(consent::show).post(consent::submit))
        .route(paths::HOME, get(pages::home))
        .route(paths::GRANTS, get(grants::show))
        .route(paths::GRANTS_SIGN_IN, get(grants::sign_in))
        .route(paths::GRANTS_REVOKE, post(grants::revoke))
        .route(paths::LOGOUT_CONFIRM, post(logout::confirm))
        .route(paths::STYLESHEET, get(pages::stylesheet))
        .route(paths::HEALTHZ, get(|| async { "ok" }))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(pages::method_not_allowed)
        .with_state(state)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(pages::CSP),
        ))
        // RFC 9700 4.16 / RFC 6749 10.13: no page of the IdP may be framed.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // Page URLs carry interaction ids; don't hand them to other sites.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    telemetry::layer(router)
}

/// [`app`], with `/metrics` when `metrics` is on.
pub fn app_with_metrics(state: AppState, metrics: bool) -> Router {
    let registry = state.metrics.registry.clone();
    let router = app(state);
    if metrics {
        router.merge(telemetry::metrics::route(registry))
    } else {
        router
    }
}

/// Binds, builds and serves the IdP until Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let settings = config.settings()?;
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
    let port = listener.local_addr()?.port();
    let issuer = config.issuer(port, settings.profile);
    let state = AppState::new(
        issuer.clone(),
        settings,
        &config.database_url,
        &config.signing_alg,
        Clock::system(),
    )
    .await?;
    tokio::spawn(prune_forever(state.clone()));
    let profile = state.settings.profile.name();
    tracing::info!(%issuer, profile, "mock IdP listening on http://{}:{port}", config.bind);
    let store = state.store.clone();
    // The client's address reaches the handlers (the sign-in throttle).
    let app = app_with_metrics(state, config.metrics)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(telemetry::shutdown_signal())
        .await?;
    // In-flight requests are done: flush SQLite's write-ahead log.
    store.close().await;
    Ok(())
}

/// Every five minutes: rows nobody can use any more, and sign-in counters
/// that are full again.
async fn prune_forever(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tick.tick().await;
        if let Err(e) = state.store.prune(state.clock.now()).await {
            tracing::warn!(error = %e, "pruning the store failed");
        }
        state.throttle.forget_idle();
    }
}
