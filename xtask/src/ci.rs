//! `cargo xtask test`: every check CI makes, as numbered steps that stop at the first
//! failure and say which step it was.
//!
//! Everything runs in the release profile: clippy, the build, the tests and the docs share
//! one set of compiled dependencies, and the end-to-end suites run the very `tank` and
//! plugin libraries that `dist` packs (they find them in `target/release/`).
//!
//! The last line is always the tests' total, `tests: N passed, N failed`: the runners print
//! one summary per test binary (and nextest and the doctests one each), so without it the
//! last summary in a log would be whichever crate happened to run last, often with 0 tests.

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::Path,
    process::{Command, Stdio},
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::{cargo, dist, run};

/// Debian packages the test suites need, as (program looked up on `PATH` and the sbin
/// folders, or a shared library `lib*.so.*` looked up in the system's library folders,
/// package that provides it). A store or registry driver whose tests run against
/// a real server adds its server here, and the suite starts it on loopback.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    // The http store's suite: nginx serves images over http and https (with a certificate
    // openssl makes), and curl downloads as a user would.
    ("nginx", "nginx"),
    ("openssl", "openssl"),
    ("curl", "curl"),
    // `script` gives the command-line suite a terminal (tests/tests/cli.rs, the progress
    // bars); it is in every Debian install, listed so that a slim image still works.
    ("script", "bsdutils"),
    // The s3 store's suite: a one-node Ceph (monitor, memstore OSD, radosgw) that
    // tests/servers/ceph.sh starts on loopback; ceph-common brings radosgw-admin and the
    // ceph and ceph-authtool commands the script runs.
    ("ceph-mon", "ceph-mon"),
    ("ceph-osd", "ceph-osd"),
    ("radosgw", "radosgw"),
    ("radosgw-admin", "ceph-common"),
    // The rbd store's suite: the same cluster with an RBD pool; the rbd command checks
    // images and snapshots, and the store itself opens librbd.so.1 (librbd1, which brings
    // librados2) at run time.
    ("rbd", "ceph-common"),
    ("librbd.so.1", "librbd1"),
    // The chase store's suite: a Swift all-in-one with tempauth (tests/servers/swift.sh),
    // whose tokens live in memcached; the swift CLI is the benchmark's peer.
    ("swift-ring-builder", "swift"),
    ("swift-proxy-server", "swift-proxy"),
    ("swift-account-server", "swift-account"),
    ("swift-container-server", "swift-container"),
    ("swift-object-server", "swift-object"),
    ("memcached", "memcached"),
    ("swift", "python3-swiftclient"),
];

type Step = (&'static str, fn() -> Result<()>);

const STEPS: &[Step] = &[
    ("toolchain and test dependencies", prerequisites),
    ("format (cargo fmt --check)", format),
    ("clippy, warnings denied", clippy),
    ("layering: tank-sdk without tokio, tank-images without HTTP, tank-client without server crates", layering),
    ("release build and dist/", || dist::dist().map(drop)),
    ("tests", tests),
    ("docs, warnings denied", docs),
];

/// Tests passed and failed, summed over every runner's summary lines.
static PASSED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);

pub fn test() -> Result<()> {
    let started = Instant::now();
    let result = STEPS.iter().enumerate().try_for_each(|(i, (name, step))| {
        let n = i + 1;
        eprintln!("\n==> [{}] step {n}/{}: {name}", secs(started.elapsed()), STEPS.len());
        // The step's own output is above; this line is the one to look for.
        step().with_context(|| {
            format!("step {n}/{} ({name}) failed after {}", STEPS.len(), secs(started.elapsed()).trim_start())
        })
    });
    if result.is_ok() {
        eprintln!("\n==> [{}] all {} steps passed", secs(started.elapsed()), STEPS.len());
    }
    let (passed, failed) = (PASSED.load(Relaxed), FAILED.load(Relaxed));
    if passed + failed > 0 {
        eprintln!("tests: {passed} passed, {failed} failed");
    }
    result
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
    if program.starts_with("lib") && program.contains(".so") {
        // A library a plugin opens at run time, where Debian puts it.
        let multiarch = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
        return [multiarch.as_str(), "/usr/lib", "/lib"].iter().any(|d| Path::new(d).join(program).is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]).any(|d| d.join(program).is_file())
}

fn nextest() -> bool {
    cargo().args(["nextest", "--version"]).output().is_ok_and(|o| o.status.success())
}

fn format() -> Result<()> {
    // rustfmt does not read CARGO_TERM_COLOR; its diff takes the same choice explicitly.
    let color = format!("--color={}", crate::color());
    run(cargo().args(["fmt", "--all", "--check", "--", &color])).context("run `cargo fmt --all` and commit the result")
}

fn clippy() -> Result<()> {
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--release", "--", "-D", "warnings"]))
}

/// The dependency rules ARCHITECTURE.md states: `sdk` is what every plugin links, and it
/// must stay free of an async runtime (a plugin's runtime lives inside the plugin); the
/// images service is below every API, so no HTTP crate (nor the host) reaches it; the
/// client library speaks HTTP only, and pulls in no server code.
fn layering() -> Result<()> {
    const RULES: &[(&str, &str)] = &[
        ("tank-sdk", "tokio"),
        ("tank-images", "hyper"),
        ("tank-images", "http"),
        ("tank-images", "http-body"),
        ("tank-images", "tank-host"),
        ("tank-client", "tank-host"),
        ("tank-client", "tank-core"),
    ];
    for &(package, forbidden) in RULES {
        not_a_dependency(package, forbidden)?;
    }
    Ok(())
}

/// Fails if `forbidden` is among `package`'s normal dependencies.
fn not_a_dependency(package: &str, forbidden: &str) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["tree", "-p", package, "-e", "normal", "-i", forbidden]);
    eprintln!("$ {}", crate::describe(&cmd));
    let out = cmd.output().context("cannot run cargo tree")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        // Success with output is the dependency path; success without output ("nothing
        // to print") means the crate is in the graph only through other edges.
        if !stdout.trim().is_empty() {
            bail!("{package} depends on {forbidden}; remove the dependency on:\n{stdout}");
        }
    } else if !stderr.contains("did not match any packages") {
        // That error is the passing case: the crate is nowhere in the package's graph.
        // Anything else is cargo failing, which must not pass for a clean graph.
        bail!("cargo tree failed: {}", stderr.trim());
    }
    eprintln!("ok: {forbidden} is not among {package}'s normal dependencies");
    Ok(())
}

fn tests() -> Result<()> {
    // --no-fail-fast: a CI run is slow, so let one run show every failing test.
    if nextest() {
        // nextest does not run doctests. The fixtures are cdylibs only, which have none
        // (cargo would warn about each).
        let fixtures = ["--exclude", "tank-fixture-panicky", "--exclude", "tank-fixture-not-a-plugin"];
        run_counting(cargo().args(["test", "--release", "--workspace", "--doc", "--no-fail-fast"]).args(fixtures))?;
        run_counting(cargo().args(["nextest", "run", "--release", "--workspace", "--no-fail-fast"]))
    } else {
        run_counting(cargo().args(["test", "--release", "--workspace", "--no-fail-fast"]))
    }
}

/// [`run`], passing the output through line by line while adding up the runners' summary
/// lines into [`PASSED`] and [`FAILED`].
fn run_counting(cmd: &mut Command) -> Result<()> {
    let line = crate::describe(cmd);
    eprintln!("$ {line}");
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().with_context(|| format!("cannot start `{line}`"))?;
    let (stdout, stderr) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let err_thread = std::thread::spawn(move || forward(stderr, std::io::stderr()));
    forward(stdout, std::io::stdout());
    err_thread.join().expect("forwarding stderr does not panic");
    let status = child.wait()?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

fn forward(from: impl Read, mut to: impl Write) {
    let mut from = BufReader::new(from);
    let mut line = Vec::new();
    while from.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
        // A closed terminal must not stop the tests; the counts still matter.
        let _ = to.write_all(&line).and_then(|()| to.flush());
        let (passed, failed) = summary_counts(&String::from_utf8_lossy(&line));
        PASSED.fetch_add(passed, Relaxed);
        FAILED.fetch_add(failed, Relaxed);
        line.clear();
    }
}

/// (passed, failed) from a runner's summary line: cargo test's `test result: ok. 3 passed;
/// 0 failed; ...` or nextest's `Summary [ 4.0s] 90 tests run: 88 passed, 2 failed, ...`.
/// Any other line counts nothing.
fn summary_counts(line: &str) -> (u64, u64) {
    let line = strip_ansi(line);
    if !line.contains("test result:") && !line.contains("tests run:") {
        return (0, 0);
    }
    let words: Vec<&str> =
        line.split(|c: char| c.is_whitespace() || c == ',' || c == ';').filter(|w| !w.is_empty()).collect();
    let count = |label: &str| -> u64 {
        words.windows(2).filter(|w| w[1] == label).filter_map(|w| w[0].parse::<u64>().ok()).sum()
    };
    (count("passed"), count("failed"))
}

/// `line` without terminal colour codes (`ESC [ ... m`), which runners add when colour is on.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

fn docs() -> Result<()> {
    run(cargo().args(["doc", "--no-deps", "--workspace", "--release"]).env("RUSTDOCFLAGS", "-D warnings"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_are_counted_and_others_are_not() {
        let cargo =
            "test result: FAILED. 3 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n";
        assert_eq!(summary_counts(cargo), (3, 2));
        let nextest = "     Summary [   4.037s] 90 tests run: 88 passed, 2 failed, 0 skipped";
        assert_eq!(summary_counts(nextest), (88, 2));
        let coloured = "\x1b[32;1m     Summary\x1b[0m [   4.0s] \x1b[1m90\x1b[0m tests run: \x1b[1m90\x1b[0m \x1b[32;1mpassed\x1b[0m, 0 skipped";
        assert_eq!(summary_counts(coloured), (90, 0));
        assert_eq!(summary_counts("        PASS [   0.009s] (28/90) tank-host 3 passed"), (0, 0));
    }
}
