//! `cargo xtask dist` and `cargo xtask run`: the operator's install tree.
//!
//! ```text
//! dist/
//!   bin/tank                  target/release/tank
//!   plugins/fs/, plugins/http/, plugins/s3/, plugins/chase/, plugins/rbd/, plugins/sheepdog/,
//!   plugins/sled/, plugins/remote/
//!                             written by `tank plugins pack` (manifest with target and sha256, library)
//!   etc/tank.toml             xtask/tank.sample.toml
//!   var/                      the images and registry `cargo xtask run` serves; kept across dists
//! ```
//!
//! The new tree is assembled in `dist.tmp/` and swapped in with renames, so a failed build or
//! pack leaves the previous tree whole, and `dist/var` (someone's images) moves across.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};

use crate::{cargo, root, run as run_cmd};

/// The plugins `dist` installs: (folder under `plugins/`, the library cargo builds).
const PLUGINS: &[(&str, &str)] = &[
    ("fs", "libtank_plugin_fs.so"),
    ("http", "libtank_plugin_http.so"),
    ("s3", "libtank_plugin_s3.so"),
    ("chase", "libtank_plugin_chase.so"),
    ("rbd", "libtank_plugin_rbd.so"),
    ("sheepdog", "libtank_plugin_sheepdog.so"),
    ("sled", "libtank_plugin_sled.so"),
    ("remote", "libtank_plugin_remote.so"),
];

/// The sample configuration, checked in so that docs can show it as it ships.
const SAMPLE_CONFIG: &str = "xtask/tank.sample.toml";

/// Builds the workspace in release mode and assembles `dist/`; returns its path.
pub fn dist() -> Result<PathBuf> {
    let root = root();
    // Catch a broken sample before the long build rather than after it.
    let sample = root.join(SAMPLE_CONFIG);
    let text = fs::read_to_string(&sample).with_context(|| format!("reading {}", sample.display()))?;
    text.parse::<toml::Table>().with_context(|| format!("{} is not valid TOML", sample.display()))?;

    // One build of everything: `xtask test` then lints and tests these very artifacts.
    run_cmd(cargo().args(["build", "--release", "--workspace"]))?;

    // Where cargo put the build: CARGO_TARGET_DIR (relative to the workspace, as cargo
    // reads it here) if set, else target/.
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d));
    let release = target.join("release");
    let dist = root.join("dist");
    let staging = root.join("dist.tmp");
    recover(&dist)?;
    if staging.exists() {
        fs::remove_dir_all(&staging).with_context(|| format!("removing the leftover {}", staging.display()))?;
    }
    for dir in ["bin", "plugins", "etc"] {
        fs::create_dir_all(staging.join(dir))?;
    }

    let tank = staging.join("bin/tank");
    fs::copy(release.join("tank"), &tank).with_context(|| format!("copying {}", release.join("tank").display()))?;
    for (name, library) in PLUGINS {
        let out = staging.join("plugins").join(name);
        let library = release.join(library);
        let mut pack = Command::new(&tank);
        pack.arg("plugins").arg("pack");
        pack.arg("--manifest").arg(root.join("plugins").join(name).join("tank-plugin.toml"));
        pack.arg("--library").arg(&library);
        pack.arg("--out").arg(&out);
        run_cmd(&mut pack).with_context(|| {
            format!(
                "packing plugin {name} failed (its message is above); dist needs a tank that has \
                 `tank plugins pack --manifest M --library L --out DIR`"
            )
        })?;
        check_packed(&out, &library).with_context(|| format!("`tank plugins pack` wrote a bad {}", out.display()))?;
    }

    let config = staging.join("etc/tank.toml");
    fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    // Let the tank being shipped read the sample and list the plugins it finds through it:
    // a key it no longer knows, or a plugin it would not load, fails here instead of at an
    // operator's first start.
    let mut list = Command::new(&tank);
    list.arg("plugins").arg("--config").arg(&config).arg("--json");
    eprintln!("$ {}", crate::describe(&list));
    let out = list.output().context("cannot run the packed tank")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let statuses = statuses(&stdout);
    if !out.status.success() || statuses.len() != PLUGINS.len() || statuses.iter().any(|s| *s != "ok") {
        bail!(
            "the shipped tank does not load {SAMPLE_CONFIG} with its {} plugins:\n{}{stdout}",
            PLUGINS.len(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("ok: etc/tank.toml loads, and finds {} plugins, all ok", statuses.len());

    swap_in(&staging, &dist)?;
    let names: Vec<&str> = PLUGINS.iter().map(|(name, _)| *name).collect();
    eprintln!("dist: {} (bin/tank, plugins/{{{}}}, etc/tank.toml)", dist.display(), names.join(","));
    Ok(dist)
}

/// `dist`, then serves the API from it in the foreground.
pub fn run() -> Result<()> {
    let dist = dist()?;
    // The plugins create their own directories; var/ is made here so that its owner and
    // mode are the invoking user's, like the rest of the tree.
    fs::create_dir_all(dist.join("var"))?;
    let config = dist.join("etc/tank.toml");
    eprintln!("serving http://127.0.0.1:9292 from {} (data in dist/var; Ctrl-C stops it)", dist.display());
    let mut tank = Command::new(dist.join("bin/tank"));
    tank.arg("api").arg("--config").arg(&config);
    // Replace this process: Ctrl-C and the exit status then belong to tank alone.
    let e = std::os::unix::process::CommandExt::exec(&mut tank);
    Err(e).context("cannot start dist/bin/tank")
}

/// Checks what `tank plugins pack` wrote: the library, and a manifest that names it with
/// its sha256 and a target triple. The host re-checks all of it on load; checking here
/// turns a packing fault into a dist failure instead of a server that will not start.
fn check_packed(out: &Path, library: &Path) -> Result<()> {
    let manifest_path = out.join("tank-plugin.toml");
    let manifest: toml::Table = fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?
        .parse()
        .with_context(|| format!("{} is not valid TOML", manifest_path.display()))?;
    let field = |table: &str, key: &str| manifest.get(table).and_then(|t| t.get(key)).and_then(|v| v.as_str());
    let file = field("library", "file").context("the manifest has no library.file")?;
    let sha256 = field("library", "sha256").context("the manifest has no library.sha256")?;
    ensure!(field("abi", "target").is_some_and(|t| !t.is_empty()), "the manifest has no abi.target");
    let copied = fs::read(out.join(file)).with_context(|| format!("reading the packed library {file}"))?;
    let actual = hex::encode(Sha256::digest(&copied));
    ensure!(sha256 == actual, "library.sha256 is {sha256} but {file} hashes to {actual}");
    let built = fs::read(library).with_context(|| format!("reading {}", library.display()))?;
    ensure!(copied == built, "{file} differs from {}", library.display());
    Ok(())
}

/// Moves `staging` to `dist`, carrying `dist/var` over. Each step is a rename, so an
/// interruption leaves either tree whole, and [`recover`] finishes the job next time.
fn swap_in(staging: &Path, dist: &Path) -> Result<()> {
    let old = old_of(dist);
    if dist.exists() {
        fs::rename(dist, &old).with_context(|| format!("moving {} aside", dist.display()))?;
    }
    fs::rename(staging, dist).with_context(|| format!("moving {} to {}", staging.display(), dist.display()))?;
    recover(dist)
}

/// Finishes an interrupted [`swap_in`]: brings `var/` (the data) over from the old tree,
/// or the whole old tree back if the new one never arrived, then removes the old tree.
fn recover(dist: &Path) -> Result<()> {
    let old = old_of(dist);
    if !old.exists() {
        return Ok(());
    }
    if !dist.exists() {
        return fs::rename(&old, dist).with_context(|| format!("restoring {}", dist.display()));
    }
    let (old_var, var) = (old.join("var"), dist.join("var"));
    if old_var.exists() {
        if var.exists() {
            bail!("both {} and {} exist; keep the one you want and remove the other", old_var.display(), var.display());
        }
        fs::rename(&old_var, &var).with_context(|| format!("moving {} into the new tree", old_var.display()))?;
    }
    fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))
}

/// The `"status"` values in `tank plugins --json` output. A scan rather than a parser keeps
/// xtask free of serde; it suffices because each value is a plain code (`ok`,
/// `hash-mismatch`, ...), and a quote inside any other string is escaped.
fn statuses(json: &str) -> Vec<&str> {
    let values = json.split("\"status\"").skip(1).filter_map(|rest| {
        let rest = rest.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
        rest.split('"').next()
    });
    values.collect()
}

fn old_of(dist: &Path) -> PathBuf {
    dist.with_file_name("dist.old")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh scratch directory under the system temp dir.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn touch(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, path.to_string_lossy().as_bytes()).unwrap();
    }

    #[test]
    fn statuses_are_read_from_the_plugin_list() {
        let json = r#"[{"name": "fs", "status": "ok", "reason": null},
                       {"name": "x", "reason": "says \"status\": no", "status" :"hash-mismatch"}]"#;
        assert_eq!(statuses(json), ["ok", "hash-mismatch"]);
        assert!(statuses("[]").is_empty());
    }

    #[test]
    fn swap_replaces_the_tree_and_keeps_var() {
        let root = scratch("swap");
        let (dist, staging) = (root.join("dist"), root.join("dist.tmp"));
        touch(&dist.join("bin/old"));
        touch(&dist.join("var/images/an-image"));
        touch(&staging.join("bin/new"));
        swap_in(&staging, &dist).unwrap();
        assert!(dist.join("bin/new").is_file() && !dist.join("bin/old").exists());
        assert!(dist.join("var/images/an-image").is_file(), "the data came along");
        assert!(!staging.exists() && !root.join("dist.old").exists());

        // The first dist of all has nothing to carry over.
        fs::remove_dir_all(&dist).unwrap();
        touch(&staging.join("bin/new"));
        swap_in(&staging, &dist).unwrap();
        assert!(dist.join("bin/new").is_file() && !dist.join("var").exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_interrupted_swap_is_finished_by_the_next_dist() {
        let root = scratch("recover");
        let (dist, old) = (root.join("dist"), root.join("dist.old"));
        // Interrupted after moving the old tree aside: it comes back whole.
        touch(&old.join("bin/old"));
        touch(&old.join("var/images/an-image"));
        recover(&dist).unwrap();
        assert!(dist.join("bin/old").is_file() && dist.join("var/images/an-image").is_file() && !old.exists());

        // Interrupted after the new tree arrived: the data moves into it.
        fs::rename(&dist, &old).unwrap();
        touch(&dist.join("bin/new"));
        recover(&dist).unwrap();
        assert!(dist.join("bin/new").is_file() && dist.join("var/images/an-image").is_file() && !old.exists());

        // Data in both trees is never merged or dropped: a person decides.
        touch(&old.join("var/images/another"));
        let e = recover(&dist).unwrap_err().to_string();
        assert!(e.contains("keep the one you want"), "{e}");
        assert!(old.join("var/images/another").is_file() && dist.join("var/images/an-image").is_file());
        fs::remove_dir_all(&root).unwrap();
    }
}
