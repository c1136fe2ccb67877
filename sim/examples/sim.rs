//! Runs a simulated cluster until ctrl-c, for trying it with kubectl and for
//! measuring large populations.
//!
//! Run with:
//!
//! ```text
//! cargo run -p periscope-sim --example sim -- [--listen ADDR] [--scenario demo|empty] [--seed N] [--pods N]
//! ```

use clap::Parser;
use periscope_sim::{Scenario, SimOptions};

/// Command-line options (the same as `periscope sim`).
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: std::net::SocketAddr,
    /// `demo` (churning cluster) or `empty`.
    #[arg(long, default_value = "demo")]
    scenario: Scenario,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Extra benchmark pods.
    #[arg(long, default_value_t = 0)]
    pods: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PERISCOPE_LOG")
                .unwrap_or_else(|_| "warn,periscope_sim=info".into()),
        )
        .init();
    let args = Args::parse();
    let opts = SimOptions {
        listen: args.listen,
        scenario: args.scenario,
        seed: args.seed,
        pods: args.pods,
        ..SimOptions::default()
    };
    periscope_sim::run_standalone(opts).await?;
    Ok(())
}
