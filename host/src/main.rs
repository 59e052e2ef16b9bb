//! The `tank` binary: parses the command line, and reports a failure as one line with an
//! exit code that says what kind of failure it was (docs/cli.md).

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tank_host::cli::Cli::parse();
    match tank_host::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tank_host::cli::report(&e);
            std::process::ExitCode::from(tank_host::cli::exit::code(&e))
        }
    }
}
