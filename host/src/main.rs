//! The `periscope` binary: parse arguments, install tracing, run, map errors to exit
//! codes (2 usage, 1 failure).

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = periscope::cli::Cli::parse();
    init_tracing();
    match periscope::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", periscope::cli::error_chain(&error));
            ExitCode::from(error.exit_code())
        }
    }
}

/// Logs go to standard error; `PERISCOPE_LOG` sets the filter (default
/// `warn,periscope=info` for the server, `warn` for one-shot commands).
fn init_tracing() {
    let filter = EnvFilter::try_from_env("PERISCOPE_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
