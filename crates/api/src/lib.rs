//! The resource server: steps 9 and 10 of the Authorization Code + PKCE flow.
//!
//! Step 9: the BFF calls this API with the access token it holds for the
//! user (`Authorization: Bearer`, RFC 6750 2.1). Step 10: the API validates
//! the token itself, against the issuer's published keys, without asking the
//! IdP (RFC 9068 4), and answers: the user's notes, scoped to the token's
//! subject and limited by the token's scopes.
//!
//! | module | what it does |
//! | --- | --- |
//! | [`config`] | the issuer, the audience, limits; every option has an env var |
//! | `validate` | step 10, every check of a token in one file, top to bottom |
//! | `caller` | the `Caller` extractor every protected route takes; scopes |
//! | `jwks` | the issuer's keys: discovery, JWKS, TTL cache, rate-limited refetch |
//! | `token_cache` | tokens already verified, keyed by their SHA-256, until `exp` |
//! | `notes` | step 10: `GET/POST /api/notes`, `DELETE /api/notes/{id}` |
//! | `me` | step 10 shown: `GET /api/me`, the subject and the checks passed |
//! | `error` | RFC 6750 3 challenges and JSON errors, in one `IntoResponse` |

mod caller;
pub mod config;
mod error;
mod jwks;
mod me;
pub mod metrics;
mod notes;
mod token_cache;
pub mod token_profile;
mod validate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use clock::Clock;
use tower_http::set_header::SetResponseHeaderLayer;

pub use config::{Config, LogFormat};

use jwks::JwksCache;
use token_cache::TokenCache;
use validate::Validator;

/// Largest request body read (a note is at most 1000 characters).
const MAX_BODY_BYTES: usize = 16 * 1024;

/// Everything the handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    validator: Arc<Validator>,
    verified_tokens: Arc<TokenCache>,
    db: storage::Database,
    clock: Clock,
    /// What `/metrics` shows.
    pub metrics: metrics::Metrics,
}

impl AppState {
    /// Open the database and set up validation. Does not contact the IdP:
    /// its keys are fetched when the first token arrives.
    pub async fn new(config: &Config, clock: Clock) -> anyhow::Result<Self> {
        let db = notes::connect(&config.database_url).await?;
        let jwks = JwksCache::new(
            &config.issuer,
            Duration::from_secs(config.jwks_ttl_seconds),
            Duration::from_secs(config.jwks_min_refetch_seconds),
            clock.clone(),
        )?;
        let validator = Validator::new(
            &config.issuer,
            &config.audience,
            config.token_profile,
            config.leeway_seconds,
            jwks,
            clock.clone(),
        );
        Ok(Self {
            validator: Arc::new(validator),
            verified_tokens: Arc::new(TokenCache::new(config.token_cache_entries)),
            db,
            clock,
            metrics: metrics::Metrics::default(),
        })
    }

    /// How many times the issuer's JWKS has been fetched: for tests that
    /// prove the refetch rate limit, and for operators.
    pub fn jwks_fetch_count(&self) -> u64 {
        self.validator.jwks().fetch_count()
    }
}

/// `GET /metrics` of this state's counters (for `--metrics`).
pub fn metrics_route(state: &AppState) -> Router {
    telemetry::metrics::route(state.metrics.registry.clone())
}

/// The whole service, ready to serve (with `/metrics` when `--metrics`).
pub async fn app(config: &Config, clock: Clock) -> anyhow::Result<Router> {
    let state = AppState::new(config, clock).await?;
    let registry = state.metrics.registry.clone();
    let router = router(state);
    Ok(match config.metrics {
        true => router.merge(telemetry::metrics::route(registry)),
        false => router,
    })
}

/// The routes and middleware around a given state.
pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/me", get(me::me))
        .merge(notes::routes())
        .fallback(|| async { error::ApiError::NotFound })
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Per-user data: no shared cache may keep a copy.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    // Keep the caller's x-request-id (the BFF sends its own), or make one; it
    // is in every log line of the request and echoed in the response. The
    // span has the path only, never the query string: a client that wrongly
    // puts `access_token=` in the URL must not get its token into our logs.
    telemetry::layer(router)
}

/// Bind, serve, and stop gracefully on Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let app = app(&config, Clock::system()).await?;
    let address = SocketAddr::new(config.bind, config.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("--port {}: cannot listen on {address}: {e}", config.port))?;
    tracing::info!(address = %listener.local_addr()?, issuer = %config.issuer, audience = %config.audience, "api listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(telemetry::shutdown_signal())
        .await?;
    tracing::info!("api stopped");
    Ok(())
}
