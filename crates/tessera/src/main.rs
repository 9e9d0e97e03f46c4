//! The `tessera` binary: parse the command line, start logging, run the command.

use std::process::ExitCode;

use clap::Parser;
use tessera::cli::{self, Cli, CliError};

/// jemalloc rather than the C library's allocator: the request path allocates and frees on several
/// threads at once, where glibc's arenas spent a tenth of the async threads' time (locking and
/// consolidating); measured 13–23 % more validations a second with `tessera-bench`.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tessera::telemetry::init(cli.log_format);
    match cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::NotFound(message)) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
