//! `cargo xtask test`: every check CI makes, as numbered steps that stop at the first
//! failure and say which step it was.
//!
//! Everything runs in the release profile: clippy, the build, the tests and the docs share
//! one set of compiled dependencies, and the end-to-end suites run the very `tank` and
//! plugin libraries that `dist` packs (they find them in `target/release/`).

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::{cargo, dist, run};

/// Debian packages the test suites need, as (program looked up on `PATH`, package that
/// provides it). Empty while every suite needs only Rust. A store or registry driver whose
/// tests run against a real server adds its server here (e.g. `("redis-server",
/// "redis-server")`), and the suite starts it on loopback.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[];

type Step = (&'static str, fn() -> Result<()>);

const STEPS: &[Step] = &[
    ("toolchain and test dependencies", prerequisites),
    ("format (cargo fmt --check)", format),
    ("clippy, warnings denied", clippy),
    ("layering: tank-sdk never depends on tokio", layering),
    ("release build and dist/", || dist::dist().map(drop)),
    ("tests", tests),
    ("docs, warnings denied", docs),
];

pub fn test() -> Result<()> {
    let started = Instant::now();
    for (i, (name, step)) in STEPS.iter().enumerate() {
        let n = i + 1;
        eprintln!("\n==> [{}] step {n}/{}: {name}", secs(started.elapsed()), STEPS.len());
        if let Err(e) = step() {
            // The step's own output is above; this line is the one to look for.
            bail!("step {n}/{} ({name}) failed after {}: {e:#}", STEPS.len(), secs(started.elapsed()));
        }
    }
    eprintln!("\n==> [{}] all {} steps passed", secs(started.elapsed()), STEPS.len());
    Ok(())
}

fn secs(d: Duration) -> String {
    format!("{:>6.1}s", d.as_secs_f64())
}

fn prerequisites() -> Result<()> {
    for (what, component, debian) in [("fmt", "rustfmt", "rustfmt-web"), ("clippy", "clippy", "rust-web-clippy")] {
        let ok = cargo().args([what, "--version"]).output().is_ok_and(|o| o.status.success());
        if !ok {
            bail!(
                "`cargo {what}` is missing: `rustup component add {component}`, or with Debian's Rust \
                 (.ci/run installs it where there is no cargo) `apt-get install {debian}`"
            );
        }
    }
    if !nextest() {
        eprintln!("cargo-nextest is not installed: the tests run with `cargo test`");
    }
    install_debian_packages()
}

/// Installs the missing [`DEBIAN_PACKAGES`]: nothing when every program is on `PATH`, so a
/// developer's machine is left alone; through sudo when not root.
fn install_debian_packages() -> Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES.iter().filter(|(program, _)| !on_path(program)).map(|(_, p)| *p).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing Debian packages the tests need: {}", missing.join(" "));
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let apt = |args: &[&str]| {
        let mut cmd = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run(&mut apt(&["update", "-q"]))?;
    run(apt(&["install", "-y", "--no-install-recommends"]).args(&missing))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

fn nextest() -> bool {
    cargo().args(["nextest", "--version"]).output().is_ok_and(|o| o.status.success())
}

fn format() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--check"])).context("run `cargo fmt --all` and commit the result")
}

fn clippy() -> Result<()> {
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--release", "--", "-D", "warnings"]))
}

/// `sdk` is what every plugin links, and it must stay free of an async runtime: a plugin's
/// runtime lives inside the plugin (ARCHITECTURE.md).
fn layering() -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["tree", "-p", "tank-sdk", "-e", "normal", "-i", "tokio"]);
    eprintln!("$ {}", crate::describe(&cmd));
    let out = cmd.output().context("cannot run cargo tree")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        // Success with output is the dependency path to tokio; success without output
        // ("nothing to print") means tokio is in the graph only through other edges.
        if !stdout.trim().is_empty() {
            bail!("tank-sdk depends on tokio; remove the dependency on:\n{stdout}");
        }
    } else if !stderr.contains("did not match any packages") {
        // That error is the passing case: tokio is nowhere in tank-sdk's graph. Anything
        // else is cargo failing, which must not pass for a clean graph.
        bail!("cargo tree failed: {}", stderr.trim());
    }
    eprintln!("ok: tokio is not among tank-sdk's normal dependencies");
    Ok(())
}

fn tests() -> Result<()> {
    // --no-fail-fast: a CI run is slow, so let one run show every failing test.
    if nextest() {
        run(cargo().args(["nextest", "run", "--release", "--workspace", "--no-fail-fast"]))?;
        // nextest does not run doctests.
        run(cargo().args(["test", "--release", "--workspace", "--doc", "--no-fail-fast"]))
    } else {
        run(cargo().args(["test", "--release", "--workspace", "--no-fail-fast"]))
    }
}

fn docs() -> Result<()> {
    run(cargo().args(["doc", "--no-deps", "--workspace", "--release"]).env("RUSTDOCFLAGS", "-D warnings"))
}
