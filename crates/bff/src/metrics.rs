//! What the BFF counts, for `/metrics` (`--metrics`): logins by outcome,
//! proxied calls by the API's status class and their latency, refreshes
//! (made, shared with a request that was already refreshing, failed,
//! provider unavailable), and sessions ended by cause. No label names a
//! user, a session, a path or a token.

use std::sync::Arc;

use prometheus_client::{encoding::EncodeLabelSet, metrics::histogram::exponential_buckets};
use telemetry::metrics::{Counter, Family, Histogram, Outcome, Registry, outcomes};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Upstream {
    /// `2xx`, `4xx`, `5xx`, or `unreachable`.
    pub status: String,
}

#[derive(Clone)]
pub struct Metrics {
    pub registry: Arc<Registry>,
    logins: Family<Outcome, Counter>,
    proxied: Family<Upstream, Counter>,
    proxy_seconds: Histogram,
    refreshes: Family<Outcome, Counter>,
    sessions_ended: Family<Outcome, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let logins = outcomes(
            &mut registry,
            "bff_logins",
            "Callbacks by outcome (signed_in, or the error code the person saw)",
        );
        let proxied = Family::<Upstream, Counter>::default();
        registry.register(
            "bff_proxied_calls",
            "Calls proxied to the API, by the class of its status",
            proxied.clone(),
        );
        // 0.5 ms to ~4 s.
        let proxy_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "bff_proxy_seconds",
            "Time from the browser's call to the API's answer headers",
            proxy_seconds.clone(),
        );
        let refreshes = outcomes(
            &mut registry,
            "bff_refreshes",
            "Access tokens due: refreshed (made), taken from another request's refresh (shared), refused (failed), or provider unavailable",
        );
        let sessions_ended = outcomes(
            &mut registry,
            "bff_sessions_ended",
            "Sessions ended, by cause (sign_out, idle, absolute, backchannel, refresh_refused)",
        );
        Metrics {
            registry: Arc::new(registry),
            logins,
            proxied,
            proxy_seconds,
            refreshes,
            sessions_ended,
        }
    }
}

impl Metrics {
    pub fn login(&self, outcome: &str) {
        self.logins.get_or_create(&Outcome::of(outcome)).inc();
    }

    /// A proxied call: the API's status (`None`: unreachable), and how long.
    pub fn proxied(&self, status: Option<u16>, seconds: f64) {
        let status = match status {
            Some(s) => format!("{}xx", s / 100),
            None => "unreachable".to_owned(),
        };
        self.proxied.get_or_create(&Upstream { status }).inc();
        self.proxy_seconds.observe(seconds);
    }

    pub fn refresh(&self, outcome: &str) {
        self.refreshes.get_or_create(&Outcome::of(outcome)).inc();
    }

    pub fn sessions_ended(&self, cause: &str, count: u64) {
        self.sessions_ended
            .get_or_create(&Outcome::of(cause))
            .inc_by(count);
    }
}
