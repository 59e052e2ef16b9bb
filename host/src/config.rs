//! The server configuration file (TOML): parsing, defaults, and errors that name the key.
//!
//! Keys follow Glance's names where Glance had one (`api_port`, `default_store`,
//! `filesystem_store_datadir`, ...). Each plugin's table (`[store.<name>]`,
//! `[registry.<name>]`) is passed to that plugin as JSON, and the plugin checks it.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::Deserialize;

/// Where the API server looks for its configuration when `--config` is not given: beside
/// the binary's install tree first (`<prefix>/etc/tank.toml` for `<prefix>/bin/tank`), then
/// the system location.
pub fn default_locations() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(p) = std::env::var_os("TANK_CONFIG") {
        paths.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(prefix) = exe.parent().and_then(Path::parent) {
            paths.push(prefix.join("etc/tank.toml"));
        }
    }
    paths.push(PathBuf::from("/etc/tank/tank.toml"));
    paths
}

/// A loaded configuration, with paths made absolute against the file's directory.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// The file's directory: relative paths inside it are relative to this.
    pub dir: PathBuf,
    /// Log at debug level instead of info.
    pub verbose: bool,
    /// Address the API server binds.
    pub api_host: String,
    /// Port the API server binds (0: any free port).
    pub api_port: u16,
    /// Folders scanned for plugins, absolute.
    pub plugin_dirs: Vec<PathBuf>,
    /// Name (or alias) of the store new images go to.
    pub default_store: String,
    /// Name of the registry driver plugin.
    pub registry_driver: String,
    /// `[store.<name>]` tables.
    pub stores: BTreeMap<String, toml::Table>,
    /// `[registry.<name>]` tables.
    pub registries: BTreeMap<String, toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    verbose: bool,
    #[serde(default = "default_api_host")]
    api_host: String,
    #[serde(default = "default_api_port")]
    api_port: u16,
    #[serde(default = "default_plugin_dirs")]
    plugin_dirs: Vec<PathBuf>,
    #[serde(default = "default_store")]
    default_store: String,
    #[serde(default = "default_registry_driver")]
    registry_driver: String,
    filesystem_store_datadir: Option<String>,
    #[serde(default)]
    store: BTreeMap<String, toml::Table>,
    #[serde(default)]
    registry: BTreeMap<String, toml::Table>,
}

fn default_api_host() -> String {
    "0.0.0.0".into()
}
fn default_api_port() -> u16 {
    9292
}
fn default_plugin_dirs() -> Vec<PathBuf> {
    vec![PathBuf::from("plugins")]
}
fn default_store() -> String {
    "filesystem".into()
}
fn default_registry_driver() -> String {
    "sled".into()
}

/// A configuration that cannot be used; the message names the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub(crate) String);

impl Config {
    /// Reads and checks the configuration at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!("cannot read config file {}: {e}; pass an existing file with --config", path.display()))
        })?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Self::parse(&text, &path)
    }

    /// Checks configuration `text` as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: Raw = toml::from_str(text).map_err(|e| ConfigError(describe_toml_error(&e, text, path)))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut stores = raw.store;
        if let Some(datadir) = raw.filesystem_store_datadir {
            // Glance's top-level option, kept so that old settings carry over.
            let table = stores.entry("filesystem".into()).or_default();
            table.entry("datadir").or_insert(toml::Value::String(datadir));
        }
        if raw.default_store.trim().is_empty() {
            return Err(ConfigError(format!("{}: default_store must name a store", path.display())));
        }
        Ok(Config {
            plugin_dirs: raw.plugin_dirs.iter().map(|d| dir.join(d)).collect(),
            path: path.to_path_buf(),
            dir,
            verbose: raw.verbose,
            api_host: raw.api_host,
            api_port: raw.api_port,
            default_store: raw.default_store,
            registry_driver: raw.registry_driver,
            stores,
            registries: raw.registry,
        })
    }

    /// The table for a plugin of `kind` known as any of `names`, and the name it was found
    /// under.
    pub fn plugin_table<'a>(&'a self, kind: &str, names: &[&'a str]) -> Option<(&'a str, &'a toml::Table)> {
        let tables = if kind == "registry" { &self.registries } else { &self.stores };
        names.iter().find_map(|n| tables.get(*n).map(|t| (*n, t)))
    }
}

/// One line: the file, the line and key at fault, and what is wrong.
pub(crate) fn describe_toml_error(e: &toml::de::Error, text: &str, path: &Path) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            format!("config {} line {line_no} ({line}): {message}", path.display())
        }
        None => format!("config {}: {message}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/tank/tank.toml"))
    }

    #[test]
    fn defaults_are_the_seed_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.api_host, "0.0.0.0");
        assert_eq!(c.api_port, 9292);
        assert_eq!(c.default_store, "filesystem");
        assert_eq!(c.registry_driver, "sled");
        assert_eq!(c.plugin_dirs, [PathBuf::from("/etc/tank/plugins")]);
        assert!(!c.verbose);
    }

    #[test]
    fn unknown_key_is_named_with_file_and_line() {
        let err = parse("verbose = true\napi_prot = 1\n").unwrap_err().to_string();
        assert!(err.contains("/etc/tank/tank.toml line 2"), "{err}");
        assert!(err.contains("api_prot"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = parse("api_port = \"ninety\"\n").unwrap_err().to_string();
        assert!(err.contains("api_port = \"ninety\""), "{err}");
    }

    #[test]
    fn glance_datadir_option_feeds_the_filesystem_table() {
        let c = parse("filesystem_store_datadir = \"/srv/images\"\n").unwrap();
        assert_eq!(c.stores["filesystem"]["datadir"].as_str(), Some("/srv/images"));
        let c = parse("filesystem_store_datadir = \"/a\"\n[store.filesystem]\ndatadir = \"/b\"\n").unwrap();
        assert_eq!(c.stores["filesystem"]["datadir"].as_str(), Some("/b"), "the table wins");
    }

    #[test]
    fn plugin_tables_are_found_by_any_name() {
        let c = parse("[store.fs]\ndatadir = \"x\"\n[registry.sled]\npath = \"r\"\n").unwrap();
        assert_eq!(c.plugin_table("store", &["filesystem", "fs"]).unwrap().0, "fs");
        assert!(c.plugin_table("registry", &["sled"]).is_some());
        assert!(c.plugin_table("store", &["s3"]).is_none());
    }
}
