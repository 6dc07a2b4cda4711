//! The OpenID Provider as the BFF knows it: only through discovery, so the
//! same binary signs in against the mock IdP, Okta, Entra ID, Auth0,
//! Keycloak or node-oidc-provider.
//!
//! Built on the `openidconnect` crate: discovery, the authorization URL
//! (step 2), the code exchange (step 6); ID tokens are checked in
//! [`crate::id_token`]. Three metadata fields the crate's core type lacks
//! are read here: `end_session_endpoint` (RP-Initiated Logout),
//! `revocation_endpoint` (RFC 7009) and
//! `authorization_response_iss_parameter_supported` (RFC 9207). The
//! provider's signing keys are kept twice: as openidconnect reads them, for
//! ID tokens, and as jsonwebtoken reads them, for logout tokens.

use std::{
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use openidconnect::{
    AdditionalProviderMetadata, ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, ProviderMetadata, RedirectUrl,
    core::{
        CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
        CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
        CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType,
        CoreSubjectIdentifierType,
    },
};
use serde::{Deserialize, Serialize};

use crate::{client_auth::ClientAuth, config::Config};

/// Discovery fields beyond OIDC Discovery 1.0's core set.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraMetadata {
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}

impl AdditionalProviderMetadata for ExtraMetadata {}

pub type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The client after discovery: an authorization endpoint for sure; token and
/// userinfo endpoints if the provider has them.
pub type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What the BFF knows of its provider.
pub struct Provider {
    pub client: OidcClient,
    /// The issuer exactly as the provider publishes it (a trailing slash
    /// and all): `iss` values are compared with it as strings.
    pub issuer: String,
    pub extra: ExtraMetadata,
    /// The provider's JWKS, for logout tokens (`crate::backchannel`).
    pub keys: jsonwebtoken::jwk::JwkSet,
    /// The token endpoint's URL, the audience of client assertions.
    pub token_endpoint: Option<String>,
}

/// Algorithms an ID token may be signed with (openidconnect accepts only
/// RS256 unless told otherwise). Never `none`, never HMAC with a secret the
/// BFF shares.
pub const ID_TOKEN_ALGS: [CoreJwsSigningAlgorithm; 3] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
];

/// An HTTP client for talking to the provider: no redirects followed
/// (openidconnect's advice against SSRF), bounded time.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()?)
}

impl Provider {
    /// Fetches the discovery document (and JWKS) and builds the client.
    pub async fn discover(config: &Config, http: &reqwest::Client) -> anyhow::Result<Provider> {
        let issuer = IssuerUrl::new(config.issuer.clone())
            .map_err(|e| anyhow::anyhow!("--issuer {}: {e}", config.issuer))?;
        let metadata = Metadata::discover_async(issuer, http)
            .await
            .map_err(|e| anyhow::anyhow!("--issuer {}: discovery failed: {e}", config.issuer))?;
        let redirect = RedirectUrl::new(config.redirect_uri())
            .map_err(|e| anyhow::anyhow!("--redirect-uri {}: {e}", config.redirect_uri()))?;
        let extra = metadata.additional_metadata().clone();
        let token_endpoint = metadata.token_endpoint().map(|url| url.to_string());
        let issuer = metadata.issuer().to_string();
        // The same JWKS, read by jsonwebtoken (keys it cannot read, such as
        // encryption keys, are left out).
        let keys = serde_json::to_value(metadata.jwks())
            .ok()
            .and_then(|jwks| jwks.get("keys").cloned())
            .and_then(|keys| keys.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|jwk| serde_json::from_value(jwk).ok())
            .collect();
        let keys = jsonwebtoken::jwk::JwkSet { keys };
        let auth = ClientAuth::from_config(config)?;
        let secret = auth
            .secret()
            .map(|secret| ClientSecret::new(secret.expose().to_owned()));
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(config.client_id.clone()),
            secret,
        )
        .set_redirect_uri(redirect)
        // client_secret_post, and the client_id a private_key_jwt
        // request carries beside its assertion.
        .set_auth_type(match auth {
            ClientAuth::SecretBasic(_) => oauth2::AuthType::BasicAuth,
            _ => oauth2::AuthType::RequestBody,
        });
        Ok(Provider {
            client,
            issuer,
            extra,
            keys,
            token_endpoint,
        })
    }

    /// Discovery, retried for a few seconds (the IdP may still be starting).
    pub async fn discover_with_retry(
        config: &Config,
        http: &reqwest::Client,
    ) -> anyhow::Result<Provider> {
        let mut last = None;
        for _ in 0..20 {
            match Provider::discover(config, http).await {
                Ok(p) => return Ok(p),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("discovery failed")))
    }
}

/// The provider as currently known, re-discovered when its keys change.
///
/// A provider rotates its signing keys (OIDC Core 10.1.1); an ID token signed
/// with a key the BFF has not seen makes it fetch discovery and the JWKS
/// again, at most once per [`REFRESH_INTERVAL`], so a flood of tokens with
/// made-up `kid`s cannot make it hammer the provider.
pub struct Providers {
    current: RwLock<Arc<Provider>>,
    last_refresh: Mutex<Option<Instant>>,
    config: Config,
    http: reqwest::Client,
}

pub const REFRESH_INTERVAL: Duration = Duration::from_secs(10);

impl Providers {
    pub fn new(provider: Provider, config: Config, http: reqwest::Client) -> Providers {
        Providers {
            current: RwLock::new(Arc::new(provider)),
            last_refresh: Mutex::new(None),
            config,
            http,
        }
    }

    pub fn get(&self) -> Arc<Provider> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Fetches discovery and keys again, unless that was done less than
    /// [`REFRESH_INTERVAL`] ago; returns the new provider if it did. (Real
    /// time: it bounds the load on the provider.)
    pub async fn refresh(&self) -> Option<Arc<Provider>> {
        {
            let mut last = self.last_refresh.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < REFRESH_INTERVAL) {
                return None;
            }
            *last = Some(Instant::now());
        }
        match Provider::discover(&self.config, &self.http).await {
            Ok(provider) => {
                let provider = Arc::new(provider);
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = provider.clone();
                tracing::info!("provider metadata and keys refreshed");
                Some(provider)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh the provider's metadata");
                None
            }
        }
    }
}
