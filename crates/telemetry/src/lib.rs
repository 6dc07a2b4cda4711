//! What the three services share about being observed: log set-up, a request
//! id on every request, and graceful shutdown.
//!
//! - `RUST_LOG` filters (default `info`); `--log-format json` for machines;
//!   colour only on a terminal, never with `NO_COLOR`.
//! - Every request gets an `x-request-id` (kept if the caller sent one, as
//!   the BFF does when it calls the API), in its span and its response.
//! - A request's span records the method and the *path* only: query strings
//!   carry codes, states and interaction ids, and never reach a log line.

pub mod metrics;

use axum::{Router, extract::Request};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: text for people, JSON for machines.
/// Colour only on a terminal, and never with `NO_COLOR` (no-color.org): a
/// log written to a file or a pipe holds no escape codes.
pub fn init(format: &str) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Wraps a router with request ids and a request span.
pub fn layer(router: Router) -> Router {
    // Layers run outside-in: set the id, then trace with it, then copy it
    // onto the response.
    router
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}

/// Resolves on Ctrl-C or SIGTERM; in-flight requests then finish.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
