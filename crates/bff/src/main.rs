//! The `bff` binary: parses the command line, sets up logging, serves.

use clap::Parser;

#[tokio::main]
async fn main() {
    let config = bff::Config::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    if let Err(e) = bff::serve(config).await {
        eprintln!("bff: {e:#}");
        std::process::exit(2);
    }
}
