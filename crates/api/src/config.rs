//! Configuration of the resource server (the API of steps 9-10 of the flow).
//!
//! The API knows three things about the authorization server: its issuer
//! URL, the audience its access tokens carry for this API, and how it
//! shapes them (the token profile). Keys
//! come from the issuer's discovery document (OpenID Connect Discovery 1.0
//! section 4, RFC 8414 section 3) and its JWKS, so the same binary validates
//! the mock IdP's tokens, or Okta's, Entra ID's, Auth0's and Keycloak's under
//! their token profiles (`--token-profile`).
//!
//! Every option is a `--flag` with an environment variable beside it, both
//! shown by `--help`, as for every binary of the project.

use clap::Parser;

use crate::token_profile::TokenProfile;

/// How the resource server is run. Defaults work on a fresh machine with the
/// mock IdP on :9000 (`just up`).
#[derive(Parser, Clone, Debug)]
#[command(
    name = "api",
    version,
    about = "Resource server: validates access tokens, serves per-user notes",
    args_override_self = true
)]
pub struct Config {
    /// TCP port to listen on (0 picks a free one).
    #[arg(long, env = "API_PORT", default_value_t = 4000)]
    pub port: u16,

    /// Address to bind to.
    #[arg(long, env = "API_BIND", default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,

    /// The authorization server's issuer identifier; tokens' `iss` must equal
    /// it exactly and discovery is read from `{issuer}/.well-known/openid-configuration`.
    #[arg(
        long,
        env = "API_ISSUER",
        default_value = "http://localhost:9000/oauth2/default",
        value_parser = parse_issuer
    )]
    pub issuer: String,

    /// This API's identifier; an access token's `aud` must contain it.
    #[arg(long, env = "API_AUDIENCE", default_value = "api://default", value_parser = parse_non_empty)]
    pub audience: String,

    /// Whose access tokens these are: rfc9068 (typ at+jwt, client_id,
    /// scope), or the tokens okta, entra, auth0 or keycloak issue (the
    /// README's table says what each reads).
    #[arg(long, env = "API_TOKEN_PROFILE", value_enum, default_value_t = TokenProfile::Rfc9068, hide_possible_values = true)]
    pub token_profile: TokenProfile,

    /// Where the notes live: `sqlite://path/to/file.db` (file and parent
    /// directory are created when missing), `sqlite::memory:`, or a
    /// PostgreSQL database, `postgres://user:password@host/database`.
    #[arg(long, env = "API_DATABASE_URL", default_value = "sqlite://data/api.db", value_parser = parse_database_url)]
    pub database_url: String,

    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds (at most 300).
    #[arg(
        long,
        env = "API_LEEWAY_SECONDS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(0..=300)
    )]
    pub leeway_seconds: u64,

    /// How long fetched signing keys are trusted before they are fetched again, in seconds.
    #[arg(
        long,
        env = "API_JWKS_TTL_SECONDS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub jwks_ttl_seconds: u64,

    /// At most one fetch of the JWKS in this many seconds, however many
    /// unknown `kid`s arrive.
    #[arg(
        long,
        env = "API_JWKS_MIN_REFETCH_SECONDS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3_600)
    )]
    pub jwks_min_refetch_seconds: u64,

    /// How many verified tokens the API remembers, so that a token it has
    /// checked costs a hash and a lookup the next time (0: every request is
    /// validated in full).
    #[arg(long, env = "API_TOKEN_CACHE_ENTRIES", default_value_t = 10_000)]
    pub token_cache_entries: usize,

    /// Serve Prometheus metrics at /metrics (validations by outcome and
    /// reason). Keep that path off the public network.
    #[arg(long, env = "API_METRICS")]
    pub metrics: bool,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How `main` writes log lines.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// An issuer is an absolute `http`/`https` URL with no query or fragment
/// (RFC 8414 section 2). It is kept as typed: `iss` is compared as a string,
/// and `url::Url` would add a trailing `/` to a bare host.
fn parse_issuer(value: &str) -> Result<String, String> {
    let url = url::Url::parse(value).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must have no query or fragment (RFC 8414 section 2)".into());
    }
    Ok(value.to_owned())
}

fn parse_non_empty(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(value.to_owned())
}

fn parse_database_url(value: &str) -> Result<String, String> {
    storage::Engine::of(value).map_err(|e| {
        format!("{e} (e.g. sqlite://data/api.db, sqlite::memory: or postgres://user@localhost/api)")
    })?;
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let config = Config::try_parse_from(["api"]).expect("defaults parse");
        assert_eq!(config.port, 4000);
        assert_eq!(config.issuer, "http://localhost:9000/oauth2/default");
        assert_eq!(config.audience, "api://default");
        assert_eq!(config.database_url, "sqlite://data/api.db");
        assert_eq!(config.leeway_seconds, 30);
        assert_eq!(config.jwks_ttl_seconds, 300);
        assert_eq!(config.jwks_min_refetch_seconds, 10);
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn bad_issuer_is_refused() {
        for issuer in ["not a url", "ftp://x/y", "http://x/y?q=1"] {
            assert!(
                Config::try_parse_from(["api", "--issuer", issuer]).is_err(),
                "{issuer}"
            );
        }
    }

    #[test]
    fn database_url_is_sqlite_or_postgres() {
        for url in [
            "sqlite://data/api.db",
            "sqlite::memory:",
            "postgres://api@localhost/api",
            "postgresql://api:secret@db:5432/api",
        ] {
            let config = Config::try_parse_from(["api", "--database-url", url]);
            assert_eq!(config.expect(url).database_url, url);
        }
        for url in ["mysql://localhost/api", "data/api.db", ""] {
            assert!(
                Config::try_parse_from(["api", "--database-url", url]).is_err(),
                "{url}"
            );
        }
    }

    #[test]
    fn leeway_is_bounded() {
        assert!(Config::try_parse_from(["api", "--leeway-seconds", "301"]).is_err());
    }

    #[test]
    fn every_option_has_an_env_var() {
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
