//! The `bff` binary: parses the command line, sets up logging, serves (or
//! prints the client's public key for `private_key_jwt`).

use clap::Parser;

/// mimalloc, not glibc's malloc: with many sessions in the heap, glibc's
/// free lists made every request's allocations slower (see the README's
/// Performance section).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cli = bff::config::Cli::parse();
    let config = cli.config;
    let result = match cli.command {
        Some(bff::config::Command::ClientJwk) => print_client_jwk(&config),
        Some(bff::config::Command::Serve) | None => {
            telemetry::init(&config.log_format);
            bff::serve(config).await
        }
    };
    if let Err(e) = result {
        eprintln!("bff: {e:#}");
        std::process::exit(2);
    }
}

/// The public half of --client-key-file, as a JWK Set to register at the
/// provider.
fn print_client_jwk(config: &bff::Config) -> anyhow::Result<()> {
    let mut config = config.clone();
    config.client_auth_method = "private_key_jwt".into();
    let bff::client_auth::ClientAuth::PrivateKeyJwt(key) =
        bff::client_auth::ClientAuth::from_config(&config)?
    else {
        anyhow::bail!("--client-key-file is needed");
    };
    let jwks = serde_json::json!({ "keys": [key.public_jwk] });
    println!("{}", serde_json::to_string_pretty(&jwks)?);
    Ok(())
}
