//! Provider profiles (`--profile`): the mock IdP behaving as a big provider
//! is documented (or, where its documents are silent, observed) to behave,
//! where that breaks clients written against the specifications alone. The
//! BFF's tests run the whole lifecycle against each, and the README's
//! provider matrix comes from them.
//!
//! `plain` (the default) is the Okta-shaped IdP the specifications describe:
//! every optional feature on, refresh tokens rotated with reuse detection.
//! Each quirk below cites where it comes from.

use serde::Deserialize;

/// The provider the IdP imitates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Plain,
    Okta,
    Entra,
    Auth0,
    Keycloak,
    Google,
}

/// The tenant id of the Entra ID profile's issuer.
pub const ENTRA_TENANT: &str = "9b4f3c6e-2d1a-4e8b-a0c7-5f6e7d8c9b0a";

/// The application id of the demo API in the Entra ID profile: Entra's
/// v2.0 access tokens carry it as their `aud` ("In v2.0 tokens, this value
/// is always the client ID of the API").
pub const ENTRA_API_ID: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";

/// The shape of an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessToken {
    /// RFC 9068: `typ: at+jwt`, `client_id`, `scope`, `jti`.
    Rfc9068,
    /// Okta: no `typ`; `ver: 1`, `cid`, `uid`, `scp` as an array, `jti`
    /// (developer.okta.com/docs/api/openapi/okta-oauth/guides/overview/).
    Okta,
    /// Entra ID v2.0: `typ: JWT`; `aud` the API's application id, `azp`,
    /// `scp` as a string, `ver: "2.0"`, `oid`, `tid`, `uti` (access token
    /// claims reference, learn.microsoft.com).
    Entra,
    /// Auth0's default profile: `typ: JWT`; `azp`, `scope`, `aud` the API and
    /// the userinfo endpoint, no `jti` (access-token-profiles).
    Auth0,
    /// Keycloak: `typ: JWT`; `azp`, `scope`, `jti`, `typ: "Bearer"`, `aud`
    /// the API (Audience mapper) and `account` (Audience Resolve).
    Keycloak,
    /// Google: opaque, for Google's own APIs; a resource server of yours
    /// cannot validate it.
    Opaque,
}

/// What a refresh grant gives back in place of the refresh token it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// A new refresh token; the old one, used again, revokes the family
    /// (RFC 9700 4.14.2).
    WithReuseDetection,
    /// A new refresh token; the old one stays valid.
    WithoutReuseDetection,
    /// The same refresh token again, in the response.
    SameToken,
    /// No refresh token in the response: the client keeps the one it has.
    Omitted,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Plain => "plain",
            Profile::Okta => "okta",
            Profile::Entra => "entra",
            Profile::Auth0 => "auth0",
            Profile::Keycloak => "keycloak",
            Profile::Google => "google",
        }
    }

    /// The issuer at `base_url` (scheme, host and port), shaped as the
    /// provider's.
    pub fn issuer(self, base_url: &str) -> String {
        let base = base_url.trim_end_matches('/');
        match self {
            // https://{yourOktaDomain}/oauth2/{authServerId}
            Profile::Plain | Profile::Okta => format!("{base}/oauth2/default"),
            // https://login.microsoftonline.com/{tenant}/v2.0 (Microsoft
            // identity platform, access-tokens: "the iss claim is of the form
            // https://login.microsoftonline.com/{tid}/v2.0").
            Profile::Entra => format!("{base}/{ENTRA_TENANT}/v2.0"),
            // https://{tenant}.auth0.com/, the trailing slash included
            // (auth0.com/docs/secure/tokens/access-tokens/access-token-profiles:
            // "iss": "https://my-domain.auth0.com/").
            Profile::Auth0 => format!("{base}/"),
            // https://{host}/realms/{realm}
            Profile::Keycloak => format!("{base}/realms/demo"),
            // https://accounts.google.com: no path at all.
            Profile::Google => base.to_owned(),
        }
    }

    /// The shape of the access tokens.
    pub fn access_token(self) -> AccessToken {
        match self {
            Profile::Plain => AccessToken::Rfc9068,
            Profile::Okta => AccessToken::Okta,
            Profile::Entra => AccessToken::Entra,
            Profile::Auth0 => AccessToken::Auth0,
            Profile::Keycloak => AccessToken::Keycloak,
            Profile::Google => AccessToken::Opaque,
        }
    }

    /// The audience of access tokens for the demo API, as the provider names
    /// an API: Okta's default authorization server `api://default`, Entra's
    /// application id, Keycloak's API client.
    pub fn api_audience(self) -> &'static str {
        match self {
            Profile::Entra => ENTRA_API_ID,
            Profile::Keycloak => "notes-api",
            _ => "api://default",
        }
    }

    /// Seconds `iat` (and `nbf`) of the tokens are set before the time of
    /// issue. Entra ID: about five minutes. Microsoft documents no offset,
    /// but its tokens show it (nbf = iat, both ~5 min in the past:
    /// github.com/keycloakify/oidc-spa/issues/162,
    /// github.com/jenkinsci/azure-ad-plugin/issues/181).
    pub fn backdated_by(self) -> i64 {
        match self {
            Profile::Entra => 300,
            _ => 0,
        }
    }

    /// Whether discovery has an `end_session_endpoint` (RP-Initiated
    /// Logout). Google has none
    /// (developers.google.com/identity/openid-connect/reference lists every
    /// discovery field, and not that one).
    pub fn has_end_session(self) -> bool {
        !matches!(self, Profile::Google)
    }

    /// Whether the end-session endpoint refuses a request without
    /// `id_token_hint`. Okta: "id_token_hint string required"
    /// (developer.okta.com/docs/api/openapi/okta-oauth/oauth/customas/logoutcustomas).
    pub fn logout_needs_id_token_hint(self) -> bool {
        matches!(self, Profile::Okta)
    }

    /// Whether the provider sends OIDC back-channel logout tokens. Okta
    /// (whose Universal Logout is another protocol), Entra ID (front-channel
    /// only: v2-protocols-oidc, "sends an HTTP GET request to the registered
    /// LogoutUrl") and Google do not; Auth0 does (Enterprise plan:
    /// auth0.com/docs/authenticate/login/logout/back-channel-logout), and
    /// so does Keycloak (per client "Backchannel logout URL").
    pub fn sends_backchannel_logout(self) -> bool {
        matches!(self, Profile::Plain | Profile::Auth0 | Profile::Keycloak)
    }

    /// Whether a refresh request must name its `scope` again. Entra ID:
    /// "scope | required" in earlier revisions of its auth code flow page,
    /// and still AADSTS90023 ("the scope parameter is not specified")
    /// where a policy applies; the client that always sends it works
    /// everywhere.
    pub fn refresh_needs_scope(self) -> bool {
        matches!(self, Profile::Entra)
    }

    /// What a refresh grant does with the refresh token.
    pub fn rotation(self) -> Rotation {
        match self {
            Profile::Plain => Rotation::WithReuseDetection,
            // Web apps: "persistent refresh token behavior as the default"
            // (developer.okta.com/docs/guides/refresh-tokens/main/).
            Profile::Okta => Rotation::SameToken,
            // "Refresh tokens replace themselves with a fresh token upon
            // every use. The Microsoft identity platform doesn't revoke old
            // refresh tokens" (learn.microsoft.com, refresh-tokens). Keycloak:
            // a new one each time, the old revoked only with the realm's
            // "Revoke Refresh Token", off by default.
            Profile::Entra | Profile::Keycloak => Rotation::WithoutReuseDetection,
            // Rotation is opt-in per application
            // (auth0.com/docs/secure/tokens/refresh-tokens/configure-refresh-token-rotation);
            // Google answers a refresh with a new access token only.
            Profile::Auth0 | Profile::Google => Rotation::Omitted,
        }
    }

    /// Whether refresh tokens are JWTs. Keycloak signs them with a realm
    /// key it does not publish (HS256/HS512, `typ` "Refresh"; maintainers
    /// in github.com/keycloak/keycloak/issues/15390 and 10659): a client
    /// must treat them as opaque.
    pub fn jwt_refresh_tokens(self) -> bool {
        matches!(self, Profile::Keycloak)
    }

    /// Whether a refresh token needs `access_type=offline` at the
    /// authorization endpoint (and not the `offline_access` scope). Google:
    /// "Set the value to 'offline' if your application needs to refresh
    /// access tokens" (google-auth-library reference).
    pub fn refresh_needs_access_type_offline(self) -> bool {
        matches!(self, Profile::Google)
    }

    /// Whether `updated_at` is an ISO 8601 string rather than the number of
    /// seconds OIDC Core 5.1 asks for. Auth0 types it "date time" in its
    /// user profile, its SDK reads a string, and its tokens carry one
    /// (github.com/CZ-NIC/pyoidc/issues/417).
    pub fn updated_at_as_string(self) -> bool {
        matches!(self, Profile::Auth0)
    }

    /// Whether `private_key_jwt` is offered. Google: its discovery lists
    /// `client_secret_post` and `client_secret_basic` only.
    pub fn offers_private_key_jwt(self) -> bool {
        !matches!(self, Profile::Google)
    }

    /// The audiences a client assertion may name. RFC 7523 3 lets the
    /// server choose; Auth0 wants its tenant URL, trailing slash included
    /// (auth0.com/docs/get-started/authentication-and-authorization-flow/authenticate-with-private-key-jwt),
    /// the others take the token endpoint (Okta and Entra ID document only
    /// that).
    pub fn assertion_audiences(self, issuer: &str, token_endpoint: &str) -> Vec<String> {
        match self {
            Profile::Auth0 => vec![issuer.to_owned()],
            Profile::Okta | Profile::Entra => vec![token_endpoint.to_owned()],
            _ => vec![issuer.to_owned(), token_endpoint.to_owned()],
        }
    }
}
