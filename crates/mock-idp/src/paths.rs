//! Every path the IdP serves, named once: the router, discovery, the pages'
//! forms and the redirects between them all use these constants.

// Protocol endpoints, below the issuer's path (as Okta lays them out).
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
pub const KEYS: &str = "/v1/keys";
pub const AUTHORIZE: &str = "/v1/authorize";
pub const TOKEN: &str = "/v1/token";
pub const USERINFO: &str = "/v1/userinfo";
pub const REVOKE: &str = "/v1/revoke";
pub const INTROSPECT: &str = "/v1/introspect";
pub const LOGOUT: &str = "/v1/logout";

// Pages a person sees, at the root.
pub const SIGN_IN: &str = "/signin";
pub const SIGN_UP: &str = "/signup";
pub const CONSENT: &str = "/consent";
pub const GRANTS: &str = "/grants";
pub const GRANTS_REVOKE: &str = "/grants/revoke";
pub const GRANTS_SIGN_IN: &str = "/grants/signin";
pub const HOME: &str = "/";
pub const LOGOUT_CONFIRM: &str = "/logout/confirm";
pub const STYLESHEET: &str = "/static/idp.css";
pub const HEALTHZ: &str = "/healthz";

/// A page of a pending sign-in: `/signin?tx=…`.
pub fn with_tx(page: &str, tx: &str) -> String {
    format!("{page}?tx={tx}")
}
