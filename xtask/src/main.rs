//! Tank's build tasks, run as `cargo xtask <task>`:
//!
//! - `dist`: build the workspace in release mode once and assemble the operator's install
//!   tree `dist/` (`bin/tank`, `plugins/<name>/` packed with their sha256, `etc/tank.toml`).
//! - `run`: `dist`, then serve the API from it on 127.0.0.1:9292 (README set-up command 1).
//! - `test`: everything CI checks, in one profile (README set-up command 2, `.ci/run`).
//!
//! Plain `std::process::Command` and no dependencies beyond anyhow, so xtask builds in
//! seconds before anything else.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{bail, Context, Result};

/// The plugins `dist` installs: (folder in `plugins/`, library file cargo builds).
const PLUGINS: &[(&str, &str)] = &[("fs", "libtank_plugin_fs.so"), ("sled", "libtank_plugin_sled.so")];

fn main() {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "dist" => dist().map(drop),
        "run" => run(),
        "test" => test(),
        _ => {
            eprintln!("usage: cargo xtask <dist | run | test>");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("xtask {task}: {e:#}");
        std::process::exit(1);
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Runs a command in the workspace root, failing with the command line if it fails.
fn sh(program: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(program)
        .args(args)
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot run {program}; is it installed?"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Builds the release workspace and assembles `dist/`; returns its path.
fn dist() -> Result<PathBuf> {
    let root = root();
    sh("cargo", &["build", "--release", "--workspace", "--exclude", "xtask"])?;
    let release = root.join("target/release");
    let dist = root.join("dist");
    // Assemble beside the old tree and swap each part in, so a failure leaves the previous
    // tree whole, and dist/var (the images!) is never touched.
    let staging = root.join("dist.staging");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    for dir in ["bin", "plugins", "etc"] {
        std::fs::create_dir_all(staging.join(dir))?;
    }
    std::fs::copy(release.join("tank"), staging.join("bin/tank")).context("copying target/release/tank")?;
    let tank = staging.join("bin/tank");
    for (name, library) in PLUGINS {
        let manifest = root.join("plugins").join(name).join("tank-plugin.toml");
        let out = staging.join("plugins").join(name);
        let status = Command::new(&tank)
            .arg("plugins")
            .arg("pack")
            .arg("--manifest")
            .arg(&manifest)
            .arg("--library")
            .arg(release.join(library))
            .arg("--out")
            .arg(&out)
            .status()?;
        if !status.success() {
            bail!("packing plugin {name} failed");
        }
    }
    std::fs::copy(root.join("xtask/dist/tank.toml"), staging.join("etc/tank.toml"))?;
    std::fs::create_dir_all(&dist)?;
    for dir in ["bin", "plugins", "etc"] {
        let target = dist.join(dir);
        if target.exists() {
            std::fs::remove_dir_all(&target)?;
        }
        std::fs::rename(staging.join(dir), &target)?;
    }
    std::fs::remove_dir_all(&staging)?;
    eprintln!("dist: {} (bin/tank, plugins/{{fs,sled}}, etc/tank.toml)", dist.display());
    Ok(dist)
}

fn run() -> Result<()> {
    let dist = dist()?;
    eprintln!("serving http://127.0.0.1:9292 from {} (Ctrl-C stops it)", dist.display());
    let status = Command::new(dist.join("bin/tank"))
        .args(["api", "--config"])
        .arg(dist.join("etc/tank.toml"))
        .status()
        .context("cannot start dist/bin/tank")?;
    if !status.success() {
        bail!("tank api exited with {status}");
    }
    Ok(())
}

/// Every check CI runs, in release mode so the workspace is compiled once.
fn test() -> Result<()> {
    let started = Instant::now();
    let step = |name: &str| eprintln!("\n==> [{:>4}s] {name}", started.elapsed().as_secs());
    check_toolchain()?;

    step("format");
    sh("cargo", &["fmt", "--all", "--check"]).context("run `cargo fmt --all` and commit the result")?;

    step("release build and dist/");
    dist()?;

    step("clippy");
    sh("cargo", &["clippy", "--release", "--workspace", "--all-targets", "--", "-D", "warnings"])?;

    step("layering: tank-sdk must not depend on tokio");
    layering()?;

    step("tests");
    sh("cargo", &["test", "--release", "--workspace", "--exclude", "xtask"])?;

    step("docs");
    let status = Command::new("cargo")
        .args(["doc", "--release", "--no-deps", "--workspace", "--exclude", "xtask"])
        .env("RUSTDOCFLAGS", "-D warnings")
        .current_dir(root())
        .status()?;
    if !status.success() {
        bail!("cargo doc found warnings");
    }

    step(&format!("all checks passed in {}s", started.elapsed().as_secs()));
    Ok(())
}

fn check_toolchain() -> Result<()> {
    for (tool, component) in [("rustfmt", "rustfmt"), ("cargo-clippy", "clippy")] {
        let ok = Command::new(tool).arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
        if !ok {
            bail!("{tool} is missing; install it with `rustup component add {component}`");
        }
    }
    Ok(())
}

/// `sdk` is what every plugin links: it must stay free of an async runtime.
fn layering() -> Result<()> {
    let out = Command::new("cargo")
        .args(["tree", "-p", "tank-sdk", "-e", "normal", "-i", "tokio"])
        .current_dir(root())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // cargo tree fails with "did not match any packages" when tokio is not in tank-sdk's
    // graph at all: that is the passing case.
    if out.status.success() && !stdout.trim().is_empty() {
        bail!("tank-sdk depends on tokio:\n{stdout}");
    }
    if !out.status.success() && !stderr.contains("did not match any packages") {
        bail!("cargo tree failed: {stderr}");
    }
    Ok(())
}
