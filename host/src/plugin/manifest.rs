//! `tank-plugin.toml`: what a plugin folder says about the library inside it.
//!
//! The host reads and checks the manifest before it opens the library, because `dlopen`
//! runs a library's constructors before abi_stable can check anything: a plugin for another
//! ABI generation or target, or whose bytes differ from what its manifest recorded, is
//! refused without ever being mapped.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name of a manifest inside a plugin folder.
pub const FILE_NAME: &str = "tank-plugin.toml";

/// The ABI generations this host carries.
pub const SUPPORTED_GENERATIONS: &[u32] = &[tank_sdk::GENERATION];

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The format version of this file.
    pub manifest_version: u32,
    /// Identity.
    pub plugin: PluginSection,
    /// Compatibility.
    pub abi: AbiSection,
    /// The shared library.
    pub library: LibrarySection,
    /// Store specifics (kind = "store").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreSection>,
    /// Vendor extensions: never interpreted by the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<toml::Table>,
}

/// `[plugin]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSection {
    /// Unique name, `[a-z0-9-]{1,63}`.
    pub name: String,
    /// `store` or `registry`.
    pub kind: Kind,
    /// The plugin's own version.
    pub version: String,
    /// One line for people.
    #[serde(default)]
    pub description: String,
}

/// What a plugin provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Image data.
    Store,
    /// Image metadata.
    Registry,
}

impl Kind {
    /// `store` or `registry`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Store => "store",
            Kind::Registry => "registry",
        }
    }
}

/// `[abi]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbiSection {
    /// The frozen ABI generation the library exports.
    pub generation: u32,
    /// The target triple it was built for (filled in by `tank plugins pack`).
    #[serde(default)]
    pub target: String,
}

/// `[library]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibrarySection {
    /// File name, in the manifest's folder.
    pub file: String,
    /// SHA-256 of the file as shipped (filled in by `tank plugins pack`).
    #[serde(default)]
    pub sha256: String,
}

/// `[store]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// URI schemes of the locations the store owns.
    #[serde(default)]
    pub schemes: Vec<String>,
    /// Other names the store answers to.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Whether its locations point at data outside Tank (a web server, another cloud's
    /// bucket): clients may then register images there (`x-image-meta-location`) and
    /// copy from them. Stores that hold data Tank wrote leave this `false`, so that a
    /// client cannot point an image at, say, a file on the server.
    #[serde(default)]
    pub external_locations: bool,
    /// Tables of the host's own configuration the store needs, added to its configuration
    /// under the same key: only `import_filtering_opts` exists.
    #[serde(default)]
    pub host_settings: Vec<String>,
}

/// The tables of its configuration the host can hand a store (`[store] host_settings`).
pub const HOST_SETTINGS: &[&str] = &["import_filtering_opts"];

/// Why a manifest was refused; `code` is the status `tank plugins` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A stable status code (`bad-manifest`, `abi-unsupported`, ...).
    pub code: &'static str,
    /// One line saying what failed and what to do.
    pub reason: String,
}

impl Refusal {
    pub(crate) fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Refusal { code, reason: reason.into() }
    }
}

impl Manifest {
    /// Reads the manifest in plugin folder `dir`.
    pub fn read(dir: &Path) -> Result<Manifest, Refusal> {
        Self::read_file(&dir.join(FILE_NAME))
    }

    /// Reads the manifest file at `path`.
    pub fn read_file(path: &Path) -> Result<Manifest, Refusal> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Refusal::new("bad-manifest", format!("cannot read {}: {e}; every plugin folder needs one", path.display()))
        })?;
        toml::from_str(&text).map_err(|e| {
            Refusal::new(
                "bad-manifest",
                format!("{} is not a valid manifest: {}", path.display(), e.message().trim().replace('\n', " ")),
            )
        })
    }

    /// The checks that need no library: names, generation, target and file name.
    /// `require_packed` also demands the fields `tank plugins pack` fills in.
    pub fn check(&self, require_packed: bool) -> Result<(), Refusal> {
        let name = &self.plugin.name;
        if self.manifest_version != 1 {
            return Err(Refusal::new(
                "bad-manifest",
                format!("manifest_version {} is not supported (this host reads 1)", self.manifest_version),
            ));
        }
        if !valid_name(name) {
            return Err(Refusal::new(
                "bad-manifest",
                format!("plugin name {name:?} must be 1 to 63 of a-z, 0-9 and '-'"),
            ));
        }
        if !SUPPORTED_GENERATIONS.contains(&self.abi.generation) {
            return Err(Refusal::new(
                "abi-unsupported",
                format!(
                    "plugin '{name}' is built for ABI generation {}, this host supports {:?}; install a build of the plugin for generation {}",
                    self.abi.generation,
                    SUPPORTED_GENERATIONS,
                    tank_sdk::GENERATION
                ),
            ));
        }
        match (self.plugin.kind, &self.store) {
            (Kind::Registry, Some(_)) => {
                return Err(Refusal::new(
                    "bad-manifest",
                    format!("plugin '{name}' is a registry but has a [store] table"),
                ))
            }
            (Kind::Store, None) => {
                return Err(Refusal::new(
                    "bad-manifest",
                    format!("store plugin '{name}' needs a [store] table with its schemes"),
                ))
            }
            _ => {}
        }
        if let Some(unknown) =
            self.store.iter().flat_map(|s| &s.host_settings).find(|h| !HOST_SETTINGS.contains(&h.as_str()))
        {
            return Err(Refusal::new(
                "bad-manifest",
                format!("plugin '{name}' asks for host setting {unknown:?}; this host offers {HOST_SETTINGS:?}"),
            ));
        }
        let file = &self.library.file;
        if file.is_empty() || file.contains('/') || file == ".." || file == "." {
            return Err(Refusal::new(
                "bad-manifest",
                format!("library.file {file:?} must be a file name in the plugin's folder, not a path"),
            ));
        }
        if require_packed {
            if self.abi.target != tank_sdk::TARGET {
                return Err(Refusal::new(
                    "target-mismatch",
                    format!(
                        "plugin '{name}' is built for target {:?}, this host is {}; install a build for this target",
                        self.abi.target,
                        tank_sdk::TARGET
                    ),
                ));
            }
            let sha_ok = self.library.sha256.len() == 64 && self.library.sha256.chars().all(|c| c.is_ascii_hexdigit());
            if !sha_ok {
                return Err(Refusal::new(
                    "bad-manifest",
                    format!("plugin '{name}' has no valid library.sha256; package it with `tank plugins pack`"),
                ));
            }
        }
        Ok(())
    }

    /// Every name the plugin answers to: its name, then its aliases.
    pub fn names(&self) -> Vec<&str> {
        let mut names = vec![self.plugin.name.as_str()];
        if let Some(s) = &self.store {
            names.extend(s.aliases.iter().map(String::as_str));
        }
        names
    }

    /// The URI schemes it owns.
    pub fn schemes(&self) -> &[String] {
        self.store.as_ref().map(|s| s.schemes.as_slice()).unwrap_or(&[])
    }

    /// The library's path, for a manifest read from folder `dir`.
    pub fn library_path(&self, dir: &Path) -> PathBuf {
        dir.join(&self.library.file)
    }
}

fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len()) && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        toml::from_str(&format!(
            r#"
manifest_version = 1
[plugin]
name = "fs"
kind = "store"
version = "0.1.0"
[abi]
generation = 1
target = "{}"
[library]
file = "libtank_plugin_fs.so"
sha256 = "{}"
[store]
schemes = ["file"]
aliases = ["filesystem"]
"#,
            tank_sdk::TARGET,
            "ab".repeat(32)
        ))
        .unwrap()
    }

    #[test]
    fn a_good_manifest_passes() {
        let m = sample();
        m.check(true).unwrap();
        assert_eq!(m.names(), ["fs", "filesystem"]);
    }

    #[test]
    fn each_rule_has_its_code() {
        let mut m = sample();
        m.abi.generation = 2;
        assert_eq!(m.check(true).unwrap_err().code, "abi-unsupported");
        let mut m = sample();
        m.abi.target = "aarch64-apple-darwin".into();
        assert_eq!(m.check(true).unwrap_err().code, "target-mismatch");
        assert!(m.check(false).is_ok(), "a source manifest has no target yet");
        let mut m = sample();
        m.library.file = "../../etc/libevil.so".into();
        assert_eq!(m.check(true).unwrap_err().code, "bad-manifest");
        let mut m = sample();
        m.plugin.name = "Fs!".into();
        assert_eq!(m.check(true).unwrap_err().code, "bad-manifest");
        let mut m = sample();
        m.store = None;
        assert_eq!(m.check(true).unwrap_err().code, "bad-manifest");
        let mut m = sample();
        m.library.sha256.clear();
        assert!(m.check(true).unwrap_err().reason.contains("tank plugins pack"));
    }

    #[test]
    fn unknown_keys_are_refused_but_x_is_free() {
        let text = toml::to_string(&sample()).unwrap();
        assert!(toml::from_str::<Manifest>(&format!("{text}\n[x]\nvendor = 1\n")).is_ok());
        let bad = text.replace("[library]", "[library]\npath = \"/tmp\"");
        assert!(toml::from_str::<Manifest>(&bad).is_err());
    }
}
