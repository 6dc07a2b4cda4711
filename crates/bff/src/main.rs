//! The `bff` binary: parses the command line, sets up logging, serves.

use clap::Parser;

#[tokio::main]
async fn main() {
    let config = bff::Config::parse();
    telemetry::init(&config.log_format);
    if let Err(e) = bff::serve(config).await {
        eprintln!("bff: {e:#}");
        std::process::exit(2);
    }
}
