//! The `mock-idp` binary: parses the command line, sets up logging, serves.

use std::io::Read;

use clap::Parser;
use mock_idp::{Cli, Command};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    telemetry::init(&cli.config.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => mock_idp::serve(cli.config).await,
        Command::HashPassword => hash_password(),
        Command::RotateKeys => rotate_keys(cli.config).await,
    };
    if let Err(e) = result {
        eprintln!("mock-idp: {e:#}");
        std::process::exit(2);
    }
}

fn hash_password() -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        anyhow::bail!("give the password on standard input");
    }
    let hash = mock_idp::passwords::hash(password).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{hash}");
    Ok(())
}

async fn rotate_keys(config: mock_idp::Config) -> anyhow::Result<()> {
    let settings = config.settings()?;
    let state = mock_idp::AppState::new(
        config.issuer(config.port, settings.profile),
        settings,
        &config.database_url,
        &config.signing_alg,
        clock::Clock::system(),
    )
    .await?;
    let kid = state.rotate_keys(&config.signing_alg).await?;
    println!("new signing key {kid}; restart a running IdP to sign with it");
    Ok(())
}
