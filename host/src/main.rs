//! The `tank` binary: parses the command line and reports a failure as one line.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tank_host::cli::Cli::parse();
    match tank_host::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tank_host::cli::report(&e);
            std::process::ExitCode::FAILURE
        }
    }
}
