//! What the IdP counts, for `/metrics` (`--metrics`): sign-ins by outcome
//! and token grants by type and outcome (`ok` or the RFC 6749 5.2 error).
//! No label names a user, a client or a token.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use telemetry::metrics::{Counter, Family, Outcome, Registry, outcomes};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Grant {
    pub grant_type: String,
    pub outcome: String,
}

#[derive(Clone)]
pub struct Metrics {
    pub registry: Arc<Registry>,
    /// `signed_in`, `wrong_password`, `throttled`, `busy`.
    pub sign_ins: Family<Outcome, Counter>,
    pub grants: Family<Grant, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let sign_ins = outcomes(
            &mut registry,
            "idp_sign_ins",
            "Password sign-ins at the IdP's page, by outcome",
        );
        let grants = Family::<Grant, Counter>::default();
        registry.register(
            "idp_token_grants",
            "Token requests by grant type and outcome (ok, or the RFC 6749 error code)",
            grants.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            sign_ins,
            grants,
        }
    }
}

impl Metrics {
    pub fn sign_in(&self, outcome: &str) {
        self.sign_ins.get_or_create(&Outcome::of(outcome)).inc();
    }

    /// A token request: its grant type (only the two this IdP knows, else
    /// `other`) and its outcome.
    pub fn grant(&self, grant_type: Option<&str>, outcome: &str) {
        let grant_type = grant_type
            .filter(|g| matches!(*g, "authorization_code" | "refresh_token"))
            .unwrap_or("other");
        self.grants
            .get_or_create(&Grant {
                grant_type: grant_type.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}
