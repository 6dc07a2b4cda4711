//! Registered clients, their redirect URIs, and client authentication at the
//! token, revocation and introspection endpoints.
//!
//! - RFC 6749 2.3.1: `client_secret_basic` (HTTP Basic, each part
//!   form-urlencoded) and `client_secret_post`; a client uses one method only.
//! - RFC 6749 2.1 / RFC 8252: public clients (`none`) prove nothing but their
//!   `client_id`; PKCE is what protects their codes.
//! - RFC 9700 2.1 / 4.1.3: redirect URIs are compared by exact string match.

use std::{collections::HashMap, fmt, sync::Arc};

use axum::http::{HeaderMap, header};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::form::Form;

/// How a client authenticates at the token endpoint (RFC 7591 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
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

/// A registered client.
#[derive(Debug)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub client_uri: Option<String>,
    secret_digest: Option<[u8; 32]>,
    pub auth_method: AuthMethod,
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
    fn secret_matches(&self, presented: &str) -> bool {
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

    pub fn get(&self, id: &str) -> Option<&Client> {
        self.0.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Client> {
        self.0.values()
    }

    /// Authenticates the client of a back-channel request (token, revoke,
    /// introspect) from its headers and form, by the one method it
    /// registered.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        form: &Form,
    ) -> Result<&Client, ClientAuthError> {
        let basic = basic_credentials(headers)?;
        let form_secret = form.get("client_secret");
        // RFC 6749 2.3: a client MUST NOT use more than one method per request.
        if basic.is_some() && form_secret.is_some() {
            return Err(ClientAuthError::Malformed(
                "use one client authentication method, not two",
            ));
        }
        let (client_id, secret, method) = match (&basic, form_secret) {
            (Some((id, secret)), _) => {
                // A client_id in the body too must name the same client.
                if form.get("client_id").is_some_and(|f| f != id) {
                    return Err(ClientAuthError::Malformed("client_id does not match"));
                }
                (
                    id.as_str(),
                    Some(secret.as_str()),
                    AuthMethod::ClientSecretBasic,
                )
            }
            (None, Some(secret)) => {
                let id = form
                    .get("client_id")
                    .ok_or(ClientAuthError::Malformed("client_id is missing"))?;
                (id, Some(secret), AuthMethod::ClientSecretPost)
            }
            (None, None) => {
                let id = form
                    .get("client_id")
                    .ok_or(ClientAuthError::Unauthenticated)?;
                (id, None, AuthMethod::None)
            }
        };
        let client = self.get(client_id).ok_or(ClientAuthError::Failed)?;
        // Only the method the client registered is accepted.
        if client.auth_method != method {
            return Err(ClientAuthError::Failed);
        }
        if let Some(secret) = secret
            && !client.secret_matches(secret)
        {
            return Err(ClientAuthError::Failed);
        }
        Ok(client)
    }
}

/// Why a client could not be authenticated.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    #[error("{0}")]
    Malformed(&'static str),
    #[error("client authentication is required")]
    Unauthenticated,
    #[error("client authentication failed")]
    Failed,
}

/// RFC 6749 2.3.1: `Authorization: Basic base64(urlencode(id):urlencode(secret))`.
/// A header that is there but not that is a failed authentication
/// (RFC 6749 5.2: `invalid_client`, "unsupported authentication method").
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ClientAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    parse_basic(value.as_bytes())
        .map(Some)
        .ok_or(ClientAuthError::Failed)
}

fn parse_basic(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a
/// space, `%XX` a byte; nothing else is special (a raw `&` stays).
fn form_decode(value: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&value.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|v| v.into_owned())
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
        let needs_secret = self.token_endpoint_auth_method != AuthMethod::None;
        if needs_secret != self.client_secret.is_some() {
            anyhow::bail!(
                "config file: client {id}: client_secret must be set exactly when token_endpoint_auth_method is not \"none\""
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
    use super::{RedirectUri, parse_basic};

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

    #[test]
    fn basic_credentials_are_form_decoded_rfc6749_2_3_1() {
        use base64::{Engine, engine::general_purpose::STANDARD};
        let header = format!("Basic {}", STANDARD.encode("my%20app:s%26cret+x&y"));
        assert_eq!(
            parse_basic(header.as_bytes()),
            Some(("my app".to_owned(), "s&cret x&y".to_owned()))
        );
        assert_eq!(parse_basic(b"Bearer abc"), None);
        assert_eq!(parse_basic(b"Basic !!!"), None);
    }
}
