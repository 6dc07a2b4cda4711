//! `just bench`: each hot path against its own limit, and the mock IdP
//! against node-oidc-provider, on this machine, now.
//!
//! These machines are shared and noisy, so every figure is a ratio to a
//! baseline measured side by side in the same run: a password login to an
//! argon2 check alone, a single-sign-on login and a refresh grant to their
//! two JWT signatures alone, the API to its own unauthenticated route, the
//! BFF's proxy to calling the API directly. The servers (release builds)
//! run on core 0 and the load generator, one thread, on core 1, and each
//! server's CPU time comes from `/proc`, which the noise does not change.
//! Nothing here is a test: the figures are printed, written to
//! `target/bench/latest.json`, and the README quotes a run.

mod limits;
mod load;
mod oauth;
mod procs;
mod report;
mod scenarios;
mod soak;
mod workers;

use clap::Parser;

#[derive(Parser)]
#[command(name = "bench", about = "Each hot path against its own limit")]
struct Args {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 4)]
    seconds: u64,
    /// Only these parts (comma-separated): password, sso, refresh, node,
    /// api, proxy, storm. Default: all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// (Used by the bench itself.) A limit alone on this core: `argon2`,
    /// `sign-RS256` or `sign-ES256`; prints `{"rate": …}`.
    Limit {
        what: String,
        #[arg(long, default_value_t = 4)]
        seconds: u64,
    },
    /// Many thousands of logins, proxied calls, refreshes and sign-outs
    /// against one stack: each server's memory and descriptors, and errors.
    Soak {
        #[arg(long, default_value_t = 5000)]
        logins: usize,
        /// Browsers at once.
        #[arg(long, default_value_t = 16)]
        workers: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // One thread: the load generator stays on its core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args.command {
        Some(Command::Limit { what, seconds }) => runtime.block_on(limits::run(&what, seconds)),
        Some(Command::Soak { logins, workers }) => runtime.block_on(async {
            let figures = soak::run(logins, workers).await?;
            soak::print(&figures);
            let path = procs::workspace().join("target/bench/soak.json");
            std::fs::write(&path, serde_json::to_string_pretty(&figures)?)?;
            println!("  written to {}", path.display());
            anyhow::ensure!(figures.errors == 0, "{} errors", figures.errors);
            Ok(())
        }),
        None => runtime.block_on(scenarios::all(args.seconds, &args.only)),
    }
}
