//! The `periscope` binary: parse arguments, run, map errors to exit codes (2 usage,
//! 64 invalid configuration, 1 any other failure).

use std::process::ExitCode;

use clap::Parser;

/// jemalloc, not glibc's malloc: with streams opening and closing all day, glibc's
/// arenas kept growing in the soak while jemalloc's resident memory stayed flat
/// (architecture decision 59, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
