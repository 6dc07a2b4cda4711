//! `/metrics` in the Prometheus text format, the same way in the three
//! services: each registers its counters in a [`Registry`] at start (no
//! global recorder), and [`route`] serves them. Labels take values from
//! small fixed sets only (an outcome, a grant type, an error code): never a
//! user, a token, a path or anything else that grows.
//!
//! Off by default: `--metrics` turns the route on; keep it off the public
//! network (a reverse proxy that does not forward `/metrics`, say).

use std::sync::Arc;

use axum::{
    Router,
    http::{HeaderValue, header},
    response::IntoResponse,
    routing::get,
};
pub use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

/// One label, `name`, from a fixed set of values.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: String,
}

impl Outcome {
    pub fn of(outcome: &str) -> Outcome {
        Outcome {
            outcome: outcome.to_owned(),
        }
    }
}

/// A counter per outcome, registered under `name`.
pub fn outcomes(registry: &mut Registry, name: &str, help: &str) -> Family<Outcome, Counter> {
    let family = Family::<Outcome, Counter>::default();
    registry.register(name, help, family.clone());
    family
}

/// `GET /metrics` serving `registry`, merged into a router.
pub fn route<S: Clone + Send + Sync + 'static>(registry: Arc<Registry>) -> Router<S> {
    Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                let mut text = String::new();
                if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
                    text.clear();
                }
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        ),
                    )],
                    text,
                )
                    .into_response()
            }
        }),
    )
}
