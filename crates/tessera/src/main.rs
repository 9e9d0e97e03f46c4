//! The `tessera` binary: parse the command line, start logging, run the command.

use std::process::ExitCode;

use clap::Parser;
use tessera::cli::{self, Cli, CliError};

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
