//! Configuration: the command line (`Config`, clap) and the TOML file of users,
//! clients and token lifetimes (`Settings`).
//!
//! The defaults are the demo accounts and clients the README lists,
//! compiled in from `config/default.toml`, so `mock-idp` runs on a fresh
//! machine with no file to write.

use std::{net::IpAddr, path::PathBuf};

use serde::Deserialize;

use crate::{clients::ClientConfig, profile::Profile, throttle};

/// The built-in configuration file.
pub const DEFAULT_SETTINGS: &str = include_str!("../config/default.toml");

#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "mock-idp",
    version,
    about = "A mock OpenID Provider shaped like an Okta custom authorization server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Serve the IdP (the default).
    Serve,
    /// Read a password from standard input and print its argon2id PHC hash,
    /// for the `password_hash` of a user in the config file.
    HashPassword,
    /// Add a new signing key to the store and make it the active one. The
    /// old key stays in the JWKS until the tokens it signed have expired.
    RotateKeys,
}

/// The options of every subcommand; `global` so that they may also follow
/// it (`mock-idp rotate-keys --database-url ...`) and show in its `--help`.
#[derive(clap::Args, Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, global = true, env = "IDP_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, global = true, env = "IDP_PORT", default_value_t = 9000)]
    pub port: u16,
    /// Issuer URL. Paths of every endpoint hang below it, as in Okta.
    /// Default: http://localhost:{port} and the profile's path
    /// (/oauth2/default for plain and okta).
    #[arg(long, global = true, env = "IDP_ISSUER")]
    pub issuer: Option<String>,
    /// The provider to imitate where providers differ: plain (the
    /// specifications, shaped like Okta), okta, entra, auth0, keycloak or
    /// google. Default: the config file's `profile`, else plain.
    #[arg(long, global = true, env = "IDP_PROFILE", value_enum)]
    pub profile: Option<Profile>,
    /// TOML file of users, clients and token lifetimes (default: the built-in
    /// demo configuration).
    #[arg(long, global = true, env = "IDP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where registered users, consents, sessions, refresh tokens and signing
    /// keys are kept: `sqlite://path/to/file.db`, `sqlite::memory:`, or a
    /// PostgreSQL database, `postgres://user:password@host/database`.
    #[arg(
        long,
        global = true,
        env = "IDP_DATABASE_URL",
        default_value = "sqlite://data/mock-idp.db",
        value_parser = parse_database_url
    )]
    pub database_url: String,
    /// Algorithm of newly made signing keys.
    #[arg(long, global = true, env = "IDP_SIGNING_ALG", default_value = "RS256", value_parser = ["RS256", "ES256"])]
    pub signing_alg: String,
    /// Serve Prometheus metrics at /metrics (sign-ins, token grants). Keep
    /// that path off the public network.
    #[arg(long, global = true, env = "IDP_METRICS")]
    pub metrics: bool,
    /// Log format: `text` for people, `json` for machines.
    #[arg(long, global = true, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

fn parse_database_url(value: &str) -> Result<String, String> {
    crate::store::Engine::of(value)?;
    Ok(value.to_owned())
}

impl Config {
    pub fn issuer(&self, port: u16, profile: Profile) -> String {
        self.issuer
            .clone()
            .unwrap_or_else(|| profile.issuer(&format!("http://localhost:{port}")))
    }

    /// Reads and checks the settings file (or the built-in one).
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let text = match &self.config {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("--config {}: cannot read: {e}", path.display()))?,
            None => DEFAULT_SETTINGS.to_owned(),
        };
        let mut settings = Settings::parse(&text)?;
        if let Some(profile) = self.profile {
            settings.profile = profile;
        }
        Ok(settings)
    }
}

/// The content of the TOML configuration file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The provider the IdP imitates (`--profile` overrides it).
    #[serde(default)]
    pub profile: Profile,
    #[serde(default)]
    pub tokens: Lifetimes,
    /// How many sign-in attempts an account and an address get.
    #[serde(default)]
    pub throttle: throttle::Limits,
    #[serde(default)]
    pub users: Vec<UserConfig>,
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
}

impl Settings {
    pub fn parse(text: &str) -> anyhow::Result<Settings> {
        let settings: Settings =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("config file: {e}"))?;
        let mut usernames = std::collections::HashSet::new();
        for user in &settings.users {
            // Usernames are email addresses: one account per address,
            // whatever the letter case.
            if !usernames.insert(user.username.trim().to_lowercase()) {
                anyhow::bail!("config file: user {} is defined twice", user.username);
            }
        }
        let mut ids = std::collections::HashSet::new();
        for client in &settings.clients {
            client.check()?;
            if !ids.insert(client.client_id.as_str()) {
                anyhow::bail!("config file: client {} is defined twice", client.client_id);
            }
        }
        Ok(settings)
    }

    /// The built-in demo configuration.
    pub fn demo() -> Settings {
        Settings::parse(DEFAULT_SETTINGS).expect("the built-in config parses") // ok: compiled-in constant, tested
    }
}

/// Token and session lifetimes, in seconds. Each client may override the
/// token lifetimes.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lifetimes {
    pub access_token_seconds: u64,
    pub id_token_seconds: u64,
    pub refresh_token_idle_seconds: u64,
    pub refresh_token_absolute_seconds: u64,
    pub refresh_token_reuse_grace_seconds: u64,
    pub code_seconds: u64,
    pub session_seconds: u64,
    /// How long a retired signing key stays in the JWKS after the last token
    /// it signed has expired: room for logout tokens in flight and clocks
    /// that differ.
    pub key_retirement_margin_seconds: u64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            access_token_seconds: 300,
            id_token_seconds: 300,
            refresh_token_idle_seconds: 86_400,
            refresh_token_absolute_seconds: 604_800,
            refresh_token_reuse_grace_seconds: 0,
            code_seconds: 60,
            session_seconds: 28_800,
            key_retirement_margin_seconds: 300,
        }
    }
}

/// No `Debug`: it holds the password hash.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub username: String,
    pub password_hash: String,
    pub name: String,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_SETTINGS, Settings};

    #[test]
    fn the_built_in_configuration_parses() {
        let settings = Settings::demo();
        assert_eq!(settings.users.len(), 2);
        assert!(settings.clients.iter().any(|c| c.client_id == "bff-demo"));
    }

    #[test]
    fn a_client_defined_twice_is_refused_at_start() {
        let start = DEFAULT_SETTINGS.find("[[clients]]").unwrap();
        let first_client = &DEFAULT_SETTINGS[start..];
        let end = first_client[1..]
            .find("[[clients]]")
            .map(|i| i + 1)
            .unwrap();
        let doubled = format!("{DEFAULT_SETTINGS}\n{}", &first_client[..end]);
        let error = Settings::parse(&doubled)
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("bff-demo is defined twice"), "{error}");
    }

    #[test]
    fn a_plain_http_redirect_uri_to_another_host_is_refused_rfc9700_2_6() {
        let text = DEFAULT_SETTINGS.replace(
            "http://localhost:3000/bff/callback",
            "http://app.example/cb",
        );
        assert!(Settings::parse(&text).is_err());
    }
}
