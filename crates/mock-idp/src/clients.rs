//! Registered clients: their redirect URIs, scopes, grants and how each
//! authenticates (checked in [`crate::client_auth`]).
//!
//! - RFC 9700 2.1 / 4.1.3: redirect URIs are compared by exact string match.

use std::{collections::HashMap, fmt, sync::Arc};

use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How a client authenticates at the token endpoint (RFC 7591 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523 2.2 / OIDC Core 9: a JWT signed with the client's own key.
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }
}

/// A redirect URI as registered: an absolute URL without a fragment
/// (RFC 6749 3.1.2). Compared with the request's by exact string equality.
#[derive(Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub fn parse(value: &str) -> Result<RedirectUri, String> {
        let url = url::Url::parse(value).map_err(|e| format!("{value}: {e}"))?;
        if url.fragment().is_some() {
            return Err(format!("{value}: a redirect URI must not have a fragment"));
        }
        match url.scheme() {
            "https" => {}
            // RFC 9700 2.6: plain http only to this very machine.
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(format!(
                    "{value}: http redirect URIs are allowed only for localhost and loopback addresses"
                ));
            }
            _ => return Err(format!("{value}: only http(s) redirect URIs are supported")),
        }
        Ok(RedirectUri(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl fmt::Debug for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RedirectUri {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        RedirectUri::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The client id of the IdP's own account page (`/grants`).
pub const ACCOUNT_CLIENT: &str = "mock-idp-account";

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub client_uri: Option<String>,
    secret_digest: Option<[u8; 32]>,
    pub auth_method: AuthMethod,
    /// The public keys of a `private_key_jwt` client.
    pub jwks: Option<JwkSet>,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub backchannel_logout_uri: Option<String>,
    pub allowed_scopes: Vec<String>,
    pub consent_required: bool,
    pub access_token_seconds: Option<u64>,
    pub grant_types: Vec<String>,
    /// Whether a consent given once counts for the next requests.
    pub remembers_consent: bool,
}

impl Client {
    /// RFC 9700 4.1.3: the redirect URI must be one registered, to the letter.
    pub fn has_redirect_uri(&self, candidate: &str) -> bool {
        self.redirect_uris.iter().any(|r| r.as_str() == candidate)
    }

    pub fn has_post_logout_redirect_uri(&self, candidate: &str) -> bool {
        self.post_logout_redirect_uris
            .iter()
            .any(|r| r.as_str() == candidate)
    }

    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }

    pub fn allows_scope(&self, scope: &str) -> bool {
        self.allowed_scopes.iter().any(|s| s == scope)
    }

    /// Compares secrets in constant time; comparing their digests also hides
    /// the length of the real secret.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.secret_digest {
            Some(expected) => bool::from(expected.ct_eq(&digest(presented))),
            None => false,
        }
    }
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// The registry of clients, read from the configuration at start.
#[derive(Debug, Clone, Default)]
pub struct Clients(Arc<HashMap<String, Client>>);

impl Clients {
    pub fn from_config(configs: &[ClientConfig]) -> Clients {
        let map = configs
            .iter()
            .map(|c| {
                let client = Client {
                    id: c.client_id.clone(),
                    name: c.client_name.clone(),
                    client_uri: c.client_uri.clone(),
                    secret_digest: c.client_secret.as_deref().map(digest),
                    auth_method: c.token_endpoint_auth_method,
                    jwks: c.jwks.clone(),
                    redirect_uris: c.redirect_uris.clone(),
                    post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
                    backchannel_logout_uri: c.backchannel_logout_uri.clone(),
                    allowed_scopes: c.allowed_scopes.clone(),
                    consent_required: c.consent_required,
                    access_token_seconds: c.access_token_seconds,
                    grant_types: c.grant_types.clone(),
                    remembers_consent: c.remembers_consent(),
                };
                (client.id.clone(), client)
            })
            .collect();
        Clients(Arc::new(map))
    }

    /// The registry with the IdP's own account page as a client: a person
    /// who opens `/grants` without a session signs in through an ordinary
    /// authorization request of it, whose code goes unused. It may not
    /// use the token endpoint (no grant types) and asks for no consent.
    pub fn with_account_page(self, grants_url: &str) -> Clients {
        let Ok(redirect) = RedirectUri::parse(grants_url) else {
            // An http IdP that is not on this machine: no account sign-in.
            return self;
        };
        let mut map = (*self.0).clone();
        map.insert(
            ACCOUNT_CLIENT.to_owned(),
            Client {
                id: ACCOUNT_CLIENT.to_owned(),
                name: "Your account at this identity provider".to_owned(),
                client_uri: Some(grants_url.to_owned()),
                secret_digest: None,
                auth_method: AuthMethod::None,
                jwks: None,
                redirect_uris: vec![redirect],
                post_logout_redirect_uris: Vec::new(),
                backchannel_logout_uri: None,
                allowed_scopes: vec!["openid".to_owned()],
                consent_required: false,
                access_token_seconds: None,
                grant_types: Vec::new(),
                remembers_consent: true,
            },
        );
        Clients(Arc::new(map))
    }

    pub fn get(&self, id: &str) -> Option<&Client> {
        self.0.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Client> {
        self.0.values()
    }
}

/// No `Debug`: it holds the client secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    pub client_name: String,
    /// The application's home page (RFC 7591 2 `client_uri`): where the
    /// back button lands after a finished sign-in.
    #[serde(default)]
    pub client_uri: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    pub token_endpoint_auth_method: AuthMethod,
    /// The public keys of a `private_key_jwt` client, as a JWK Set
    /// (`jwks = { keys = [{ kty = "RSA", kid = "…", n = "…", e = "AQAB" }] }`).
    #[serde(default)]
    pub jwks: Option<JwkSet>,
    pub redirect_uris: Vec<RedirectUri>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    pub allowed_scopes: Vec<String>,
    /// Show the consent page (remembered per user and client). Okta's
    /// first-party apps usually skip it; the demo shows it.
    #[serde(default = "yes")]
    pub consent_required: bool,
    /// Per-client override of the access token lifetime, in seconds.
    #[serde(default)]
    pub access_token_seconds: Option<u64>,
    /// Grants this client may use at the token endpoint; others get
    /// `unauthorized_client` (RFC 6749 5.2).
    #[serde(default = "both_grants")]
    pub grant_types: Vec<String>,
    /// Whether a consent given once counts for the next requests. Default:
    /// yes, except for a public client with a loopback redirect URI, whose
    /// requests any program on the machine can make (RFC 8252 8.6, RFC
    /// 6749 10.2): the person is asked every time.
    #[serde(default)]
    pub remember_consent: Option<bool>,
}

fn both_grants() -> Vec<String> {
    vec!["authorization_code".into(), "refresh_token".into()]
}

fn yes() -> bool {
    true
}

impl ClientConfig {
    /// [`ClientConfig::remember_consent`], with its default.
    pub fn remembers_consent(&self) -> bool {
        self.remember_consent.unwrap_or_else(|| {
            let public = self.token_endpoint_auth_method == AuthMethod::None;
            let loopback = self
                .redirect_uris
                .iter()
                .any(|uri| url::Url::parse(uri.as_str()).is_ok_and(|url| is_loopback(&url)));
            !(public && loopback)
        })
    }

    pub fn check(&self) -> anyhow::Result<()> {
        let id = &self.client_id;
        let method = self.token_endpoint_auth_method;
        let needs_secret = matches!(
            method,
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        );
        if needs_secret != self.client_secret.is_some() {
            anyhow::bail!(
                "config file: client {id}: client_secret must be set exactly when token_endpoint_auth_method is client_secret_basic or client_secret_post"
            );
        }
        if (method == AuthMethod::PrivateKeyJwt) != self.jwks.is_some() {
            anyhow::bail!(
                "config file: client {id}: jwks must be set exactly when token_endpoint_auth_method is private_key_jwt"
            );
        }
        if self.redirect_uris.is_empty() {
            anyhow::bail!("config file: client {id}: at least one redirect_uri is needed");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::RedirectUri;

    #[test]
    fn plain_http_redirect_uris_only_for_loopback_rfc9700_2_6() {
        for ok in [
            "https://app.example/cb",
            "http://localhost:3000/cb",
            "http://127.0.0.1:8765/cb",
            "http://[::1]/cb",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example/cb",
            "https://app.example/cb#frag",
            "custom:cb",
            "not a url",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }
}
