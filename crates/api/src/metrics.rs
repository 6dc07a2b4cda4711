//! What the API counts, for `/metrics` (`--metrics`): token validations by
//! outcome (`valid`, `cached`, `refused`) and, when refused, the reason
//! (one of the fixed [`crate::validate::Refusal`] kinds). No label names a
//! user, a client or a token.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use telemetry::metrics::{Counter, Family, Registry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Validation {
    pub outcome: String,
    pub reason: String,
}

#[derive(Clone)]
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub validations: Family<Validation, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let validations = Family::<Validation, Counter>::default();
        registry.register(
            "api_token_validations",
            "Access tokens presented, by outcome and (refused) reason",
            validations.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            validations,
        }
    }
}

impl Metrics {
    pub fn validation(&self, outcome: &str, reason: &str) {
        self.validations
            .get_or_create(&Validation {
                outcome: outcome.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }
}
