//! Tank's build tasks, run as `cargo xtask <task>` (an alias in `.cargo/config.toml`):
//!
//! - `dist`: build the whole workspace in release mode, once, and assemble the operator's
//!   install tree `dist/` (`bin/tank`, `plugins/<name>/` packed with their sha256,
//!   `etc/tank.toml` from `xtask/tank.sample.toml`).
//! - `run`: `dist`, then serve the API from it on 127.0.0.1:9292 (README set-up command 1).
//! - `test`: every check CI makes, in the release profile so the workspace is compiled
//!   once (README set-up command 2, and what `.ci/run` runs).
//!
//! xtask is plain Rust rather than shell so that it behaves the same for every developer
//! and in CI, and it spawns tools with `std::process::Command` rather than pulling in a
//! task framework, so that it builds in seconds before anything else.

mod ci;
mod dist;

use std::{
    ffi::OsStr,
    io::IsTerminal,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  dist   release build of the workspace, then the install tree dist/
  run    dist, then `dist/bin/tank api --config dist/etc/tank.toml`
  test   fmt, clippy, layering, dist, every test, docs: what CI runs";

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "dist" => dist::dist().map(drop),
        "run" => dist::run(),
        "test" => ci::test(),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask's manifest lives one level below it.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// A `cargo` command in the workspace root. It is the cargo that runs xtask (`$CARGO`), so
/// a toolchain chosen with `cargo +nightly xtask` or a rustup override carries through.
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd.env("CARGO_TERM_COLOR", color());
    cmd
}

/// `CARGO_TERM_COLOR` for every tool xtask runs. The tools write to our stderr, but some
/// through pipes (ours or their own), where each would guess differently; so decide once:
/// colour for a person at a terminal, none in CI logs, which are files. A value the user
/// set wins.
fn color() -> String {
    match std::env::var("CARGO_TERM_COLOR") {
        Ok(set) => set,
        Err(_) if std::io::stderr().is_terminal() => "always".into(),
        Err(_) => "never".into(),
    }
}

/// Runs `cmd` with inherited stdio; fails naming the command line if it fails.
fn run(cmd: &mut Command) -> Result<()> {
    let line = describe(cmd);
    eprintln!("$ {line}");
    let status = cmd.status().with_context(|| format!("cannot start `{line}`; is it installed?"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// `cmd` as a shell-like line, for messages.
fn describe(cmd: &Command) -> String {
    // CARGO_TERM_COLOR is our own plumbing, not something a reader needs to repeat.
    let envs = cmd
        .get_envs()
        .filter(|(k, _)| *k != "CARGO_TERM_COLOR")
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.unwrap_or_default().to_string_lossy()));
    let program = Path::new(cmd.get_program());
    // `$CARGO` is an absolute path into the toolchain; "cargo" is what a person types.
    let program = if program.file_stem() == Some(OsStr::new("cargo")) { Path::new("cargo") } else { program };
    envs.chain(std::iter::once(program.display().to_string()))
        .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}
