//! The BFF's configuration: one `Config`, every option a `--flag` with an
//! environment variable beside it (`bff --help`).
//!
//! To sign in against your own OpenID Provider (Okta, Keycloak,
//! node-oidc-provider…), set the issuer, client id and secret, and register
//! `{public_url}/bff/callback` as a redirect URI there. Everything else comes
//! from the provider's discovery document.

use std::net::IpAddr;

/// The `bff` command line: a subcommand (serving by default) and the options.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "bff",
    version,
    about = "Backend-for-frontend: the OAuth client of the Authorization Code + PKCE flow",
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Serve the BFF (the default).
    Serve,
    /// Print the public JWK of --client-key-file, to register at the
    /// provider for private_key_jwt.
    ClientJwk,
}

/// Every option, also after a subcommand (`global`).
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "bff", args_override_self = true)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, global = true, env = "BFF_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, global = true, env = "BFF_PORT", default_value_t = 3000)]
    pub port: u16,
    /// The URL the browser uses to reach this BFF.
    #[arg(
        long,
        global = true,
        env = "BFF_PUBLIC_URL",
        default_value = "http://localhost:3000"
    )]
    pub public_url: String,
    /// The OpenID Provider's issuer URL (discovery is fetched from it).
    #[arg(
        long,
        global = true,
        env = "BFF_ISSUER",
        default_value = "http://localhost:9000/oauth2/default"
    )]
    pub issuer: String,
    /// This client's id at the provider.
    #[arg(long, global = true, env = "BFF_CLIENT_ID", default_value = "bff-demo")]
    pub client_id: String,
    /// This client's secret at the provider (for client_secret_basic and
    /// client_secret_post).
    #[arg(
        long,
        global = true,
        env = "BFF_CLIENT_SECRET",
        default_value = "bff-demo-secret",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub client_secret: Secret,
    /// How the BFF authenticates at the provider's token and revocation
    /// endpoints: client_secret_basic, client_secret_post, or
    /// private_key_jwt (RFC 7523, with --client-key-file).
    #[arg(long, global = true, env = "BFF_CLIENT_AUTH_METHOD", default_value = "client_secret_basic", value_parser = ["client_secret_basic", "client_secret_post", "private_key_jwt"])]
    pub client_auth_method: String,
    /// For private_key_jwt: the BFF's private key, PEM (PKCS#8 RSA, or EC
    /// P-256). Register its public half at the provider
    /// (`bff client-jwk` prints it).
    #[arg(long, global = true, env = "BFF_CLIENT_KEY_FILE")]
    pub client_key_file: Option<std::path::PathBuf>,
    /// For private_key_jwt: the `kid` the provider knows the key by.
    /// Default: the key's RFC 7638 thumbprint.
    #[arg(long, global = true, env = "BFF_CLIENT_KEY_ID")]
    pub client_key_id: Option<String>,
    /// For private_key_jwt: the algorithm the key signs with: RS256 or
    /// PS256 for an RSA key (Entra ID asks for PS256), ES256 for P-256.
    /// Default: RS256 or ES256, by the key.
    #[arg(long, global = true, env = "BFF_CLIENT_KEY_ALG", value_parser = ["RS256", "PS256", "ES256"])]
    pub client_key_alg: Option<String>,
    /// For private_key_jwt: what the assertion names as its audience:
    /// `token_endpoint` (Okta, Entra ID, Keycloak, node-oidc-provider) or
    /// `issuer` (Auth0, which wants its tenant URL).
    #[arg(long, global = true, env = "BFF_CLIENT_ASSERTION_AUDIENCE", default_value = "token_endpoint", value_parser = ["token_endpoint", "issuer"])]
    pub client_assertion_audience: String,
    /// For private_key_jwt at a provider that registers certificates
    /// (Entra ID): the key's certificate, PEM; its SHA-256 thumbprint goes in
    /// the assertion's `x5t#S256` header.
    #[arg(long, global = true, env = "BFF_CLIENT_CERTIFICATE_FILE")]
    pub client_certificate_file: Option<std::path::PathBuf>,
    /// The redirect URI registered at the provider. Default: {public_url}/bff/callback
    #[arg(long, global = true, env = "BFF_REDIRECT_URI")]
    pub redirect_uri: Option<String>,
    /// Where the provider sends the browser after logout. Default: {public_url}/
    #[arg(long, global = true, env = "BFF_POST_LOGOUT_REDIRECT_URI")]
    pub post_logout_redirect_uri: Option<String>,
    /// Scopes to ask for, space-separated.
    #[arg(
        long,
        global = true,
        env = "BFF_SCOPES",
        default_value = "openid profile email offline_access notes:read notes:write"
    )]
    pub scopes: String,
    /// Extra authorization request parameters some providers need, as
    /// `name=value` (repeatable; e.g. `audience=api://default`).
    #[arg(long = "authorize-param", global = true, env = "BFF_AUTHORIZE_PARAMS", value_delimiter = ',', value_parser = parse_param)]
    pub authorize_params: Vec<(String, String)>,
    /// Extra refresh request parameters some providers need, as
    /// `name=value` (repeatable; e.g. `scope=openid offline_access
    /// api://notes/notes.read` for Entra ID).
    #[arg(long = "refresh-param", global = true, env = "BFF_REFRESH_PARAMS", value_delimiter = ',', value_parser = parse_param)]
    pub refresh_params: Vec<(String, String)>,
    /// The API's base URL; `/bff/api/{path}` goes to `{api_url}/api/{path}`.
    #[arg(
        long,
        global = true,
        env = "BFF_API_URL",
        default_value = "http://localhost:4000"
    )]
    pub api_url: String,
    /// Session store: `sqlite://path.db`, `memory`, or `redis://host:port`
    /// (several BFF instances share sessions through Redis).
    #[arg(
        long,
        global = true,
        env = "BFF_SESSION_STORE",
        default_value = "sqlite://data/bff-sessions.db"
    )]
    pub session_store: String,
    /// Key prefix of everything the BFF keeps in Redis.
    #[arg(
        long,
        global = true,
        env = "BFF_REDIS_KEY_PREFIX",
        default_value = "bff:"
    )]
    pub redis_key_prefix: String,
    /// Keys that seal the session store (tokens and PKCE verifiers are
    /// encrypted at rest): 32 random bytes each, base64url, comma-separated,
    /// newest first (the newest seals, all open). Make one with
    /// `openssl rand -base64 32`. Every instance sharing a store needs the
    /// same keys. Default: the key in --session-key-file.
    #[arg(
        long,
        global = true,
        env = "BFF_SESSION_KEYS",
        value_delimiter = ',',
        hide_env_values = true,
        // base64url keys may start with `-`.
        allow_hyphen_values = true
    )]
    pub session_keys: Vec<String>,
    /// Where the session key is kept when --session-keys is not given
    /// (made, with a random key, when missing; not for the memory store).
    #[arg(
        long,
        global = true,
        env = "BFF_SESSION_KEY_FILE",
        default_value = "data/bff-session.key"
    )]
    pub session_key_file: std::path::PathBuf,
    /// A session unused this long ends (seconds).
    #[arg(
        long,
        global = true,
        env = "BFF_SESSION_IDLE_SECONDS",
        default_value_t = 1800
    )]
    pub session_idle_seconds: i64,
    /// A session ends this long after sign-in, used or not (seconds).
    #[arg(
        long,
        global = true,
        env = "BFF_SESSION_ABSOLUTE_SECONDS",
        default_value_t = 28800
    )]
    pub session_absolute_seconds: i64,
    /// Clock difference tolerated with the provider, in seconds (an ID token
    /// issued up to this far in the future; a logout token likewise).
    #[arg(
        long,
        global = true,
        env = "BFF_CLOCK_SKEW_SECONDS",
        default_value_t = 60
    )]
    pub clock_skew_seconds: i64,
    /// How old an ID token may be when it arrives, in seconds. Entra ID
    /// back-dates `iat` by five minutes, so the default admits ten.
    #[arg(
        long,
        global = true,
        env = "BFF_ID_TOKEN_MAX_AGE_SECONDS",
        default_value_t = 600
    )]
    pub id_token_max_age_seconds: i64,
    /// How the browser is sent to the provider's end_session_endpoint:
    /// `post`, an auto-submitted form (the ID token stays out of URLs,
    /// history and logs), or `get` for providers that accept only that.
    #[arg(long, global = true, env = "BFF_LOGOUT_METHOD", default_value = "post", value_parser = ["post", "get"])]
    pub logout_method: String,
    /// Where the repository's files are on the web, for the flow
    /// inspector's links to the code of each step (e.g.
    /// https://github.com/you/repo/blob/main). Unset: paths only.
    #[arg(long, global = true, env = "BFF_SOURCE_URL")]
    pub source_url: Option<String>,
    /// Serve Prometheus metrics at /metrics (logins, proxied calls,
    /// refreshes, sessions ended). Keep that path off the public network.
    #[arg(long, global = true, env = "BFF_METRICS")]
    pub metrics: bool,
    /// Log format: `text` for people, `json` for machines.
    #[arg(long, global = true, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

fn parse_param(value: &str) -> Result<(String, String), String> {
    value
        .split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{value}: expected name=value"))
}

impl Config {
    pub fn public_url(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }

    pub fn redirect_uri(&self) -> String {
        self.redirect_uri
            .clone()
            .unwrap_or_else(|| format!("{}/bff/callback", self.public_url()))
    }

    pub fn post_logout_redirect_uri(&self) -> String {
        self.post_logout_redirect_uri
            .clone()
            .unwrap_or_else(|| format!("{}/", self.public_url()))
    }

    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scopes.split_whitespace()
    }
}

/// A secret setting: its `Debug` prints `***`, so no log line or panic
/// message can show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Config;

    #[test]
    fn a_session_key_may_start_with_a_hyphen_as_base64url_allows() {
        let key = "-J7xQw0Jm0bXz3KzqCwO7a1pYh3W1hH7yqk2q1Wvq0Y";
        let config = Config::try_parse_from(["bff", "--session-keys", key]).expect("parses");
        assert_eq!(config.session_keys, vec![key.to_owned()]);
    }

    #[test]
    fn every_option_has_an_environment_variable() {
        use clap::CommandFactory;
        for arg in Config::command().get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            assert!(
                arg.get_env().is_some(),
                "--{id} has no environment variable"
            );
        }
    }
}
