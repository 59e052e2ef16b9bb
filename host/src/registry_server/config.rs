//! `tank registry`'s own configuration file (TOML): parsing, defaults, and errors that name
//! the key, in the same one-line form as the API server's (`crate::config`).
//!
//! It is a separate file from `tank.toml` because the registry runs on its own (usually on
//! another machine than the API servers), and its keys are Glance's `glance-registry.conf`
//! names where Glance had one (`limit_param_default`, `api_limit_max`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::config::{describe_toml_error, ConfigError};

/// A loaded registry configuration, with paths made absolute against the file's directory.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// The file's directory: relative paths inside it are relative to this.
    pub dir: PathBuf,
    /// Log at debug level instead of info.
    pub verbose: bool,
    /// Address the registry binds; loopback by default, since only API servers talk to it.
    pub registry_host: String,
    /// Port the registry binds (0: any free port).
    pub registry_port: u16,
    /// Folders scanned for plugins, absolute.
    pub plugin_dirs: Vec<PathBuf>,
    /// Name of the registry driver plugin holding the records.
    pub registry_driver: String,
    /// `[registry.<name>]` tables.
    pub registries: BTreeMap<String, toml::Table>,
    /// Page size of a list that asks for none.
    pub limit_param_default: u32,
    /// The largest page a list may ask for; larger limits are cut to it.
    pub api_limit_max: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    verbose: bool,
    #[serde(default = "default_host")]
    registry_host: String,
    #[serde(default = "default_port")]
    registry_port: u16,
    #[serde(default = "default_plugin_dirs")]
    plugin_dirs: Vec<PathBuf>,
    #[serde(default = "default_driver")]
    registry_driver: String,
    #[serde(default)]
    registry: BTreeMap<String, toml::Table>,
    #[serde(default = "default_limit")]
    limit_param_default: u32,
    #[serde(default = "default_limit_max")]
    api_limit_max: u32,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    9191
}
fn default_plugin_dirs() -> Vec<PathBuf> {
    vec![PathBuf::from("plugins")]
}
fn default_driver() -> String {
    "sled".into()
}
fn default_limit() -> u32 {
    25
}
fn default_limit_max() -> u32 {
    1000
}

impl RegistryConfig {
    /// Reads and checks the configuration at `path`.
    pub fn load(path: &Path) -> Result<RegistryConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!("cannot read config file {}: {e}; pass an existing file with --config", path.display()))
        })?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Self::parse(&text, &path)
    }

    /// Checks configuration `text` as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<RegistryConfig, ConfigError> {
        let raw: Raw = toml::from_str(text).map_err(|e| ConfigError(describe_toml_error(&e, text, path)))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if raw.api_limit_max == 0 || raw.limit_param_default == 0 {
            return Err(ConfigError(format!(
                "{}: limit_param_default and api_limit_max must be 1 or more",
                path.display()
            )));
        }
        if raw.registry_driver == "remote" {
            // A registry serving from a remote registry would serve itself, or chain.
            return Err(ConfigError(format!(
                "{}: registry_driver = \"remote\" would make this registry a client of another; name the driver \
                 that holds the records (e.g. \"sled\")",
                path.display()
            )));
        }
        Ok(RegistryConfig {
            plugin_dirs: raw.plugin_dirs.iter().map(|d| dir.join(d)).collect(),
            path: path.to_path_buf(),
            dir,
            verbose: raw.verbose,
            registry_host: raw.registry_host,
            registry_port: raw.registry_port,
            registry_driver: raw.registry_driver,
            registries: raw.registry,
            limit_param_default: raw.limit_param_default.min(raw.api_limit_max),
            api_limit_max: raw.api_limit_max,
        })
    }

    /// The part of an API server configuration that opening a registry driver reads
    /// (`state::open_registry` looks at the plugin dirs, the driver's name and table, and
    /// the file's path and directory); the rest keeps its defaults and is never used.
    pub fn driver_config(&self) -> crate::config::Config {
        crate::config::Config {
            path: self.path.clone(),
            dir: self.dir.clone(),
            verbose: self.verbose,
            api_host: self.registry_host.clone(),
            api_port: self.registry_port,
            plugin_dirs: self.plugin_dirs.clone(),
            default_store: String::new(),
            registry_driver: self.registry_driver.clone(),
            stores: BTreeMap::new(),
            registries: self.registries.clone(),
            api: crate::config::ApiSettings::default(),
            import_filtering: Default::default(),
            auth: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RegistryConfig, ConfigError> {
        RegistryConfig::parse(text, Path::new("/etc/tank/registry.toml"))
    }

    #[test]
    fn defaults_bind_loopback_on_glance_port() {
        let c = parse("").unwrap();
        assert_eq!((c.registry_host.as_str(), c.registry_port), ("127.0.0.1", 9191));
        assert_eq!(c.registry_driver, "sled");
        assert_eq!((c.limit_param_default, c.api_limit_max), (25, 1000));
        assert_eq!(c.plugin_dirs, [PathBuf::from("/etc/tank/plugins")]);
    }

    #[test]
    fn unknown_and_mistyped_keys_are_named_with_file_and_line() {
        let e = parse("verbose = true\napi_port = 1\n").unwrap_err().to_string();
        assert!(e.contains("/etc/tank/registry.toml line 2") && e.contains("api_port"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        let e = parse("api_limit_max = \"lots\"\n").unwrap_err().to_string();
        assert!(e.contains("line 1 (api_limit_max = \"lots\")"), "{e}");
    }

    #[test]
    fn limits_are_checked_and_the_default_page_fits_the_cap() {
        assert!(parse("api_limit_max = 0\n").unwrap_err().to_string().contains("api_limit_max"));
        let c = parse("limit_param_default = 50\napi_limit_max = 10\n").unwrap();
        assert_eq!((c.limit_param_default, c.api_limit_max), (10, 10));
    }

    #[test]
    fn the_driver_table_reaches_the_driver_config() {
        let c = parse("registry_driver = \"sled\"\n[registry.sled]\npath = \"db\"\n").unwrap();
        let d = c.driver_config();
        assert_eq!(d.plugin_table("registry", &["sled"]).unwrap().1["path"].as_str(), Some("db"));
        assert!(parse("registry_driver = \"remote\"\n").unwrap_err().to_string().contains("remote"));
    }
}
