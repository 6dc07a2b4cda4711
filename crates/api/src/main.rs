//! `api`: the resource server binary (steps 9-10). Parses the configuration,
//! sets up logging, and runs [`api::serve`].
//!
//! Exit codes: 0 after a graceful shutdown, 2 for a bad configuration (one
//! line on stderr), 1 when the service cannot start or fails.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use api::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::try_parse() {
        Ok(config) => config,
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("api: {}", first_line(&error.to_string()));
            return ExitCode::from(2);
        }
    };
    telemetry::init(match config.log_format {
        api::LogFormat::Text => "text",
        api::LogFormat::Json => "json",
    });
    match api::serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("api: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// clap's message without its usage hint: `error: invalid value ...`.
fn first_line(message: &str) -> &str {
    let line = message.lines().next().unwrap_or(message);
    line.strip_prefix("error: ").unwrap_or(line)
}
