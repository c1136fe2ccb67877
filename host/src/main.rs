//! The `periscope` binary: parse arguments, run, map errors to exit codes (2 usage,
//! 64 invalid configuration, 1 any other failure).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = periscope::cli::Cli::parse();
    match periscope::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", periscope::cli::error_chain(&error));
            ExitCode::from(error.exit_code())
        }
    }
}
