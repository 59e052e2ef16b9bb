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
pub use tank_core::import_filter::ImportFiltering;

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
    /// What the API allows and how it pages.
    pub api: ApiSettings,
    /// Which URLs server-side fetches (copy-from, http locations) may reach.
    pub import_filtering: ImportFiltering,
    /// Who may call the API, and how they prove it.
    pub auth: AuthSettings,
}

/// How the API server authenticates its callers (`auth_strategy`, docs/authentication.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthStrategy {
    /// Every caller is the administrator (`noauth`, the default).
    #[default]
    NoAuth,
    /// An authenticating proxy at one of `identity_proxies` passes the identity on in
    /// headers (`trusted-proxy`).
    TrustedProxy,
    /// Static API tokens in `token_file` (`tokens`).
    Tokens,
}

/// The authentication keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSettings {
    /// `auth_strategy`.
    pub strategy: AuthStrategy,
    /// `identity_proxies`: the addresses whose identity headers are believed
    /// (`trusted-proxy` only).
    pub identity_proxies: Vec<std::net::IpAddr>,
    /// `token_file`, absolute (`tokens` only).
    pub token_file: Option<PathBuf>,
}

/// The API server's limits and rules, under Glance's option names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// Page size of a list that names no `limit` (`limit_param_default`).
    pub limit_param_default: u32,
    /// The largest page a list answers, whatever `limit` asks (`api_limit_max`).
    pub api_limit_max: u32,
    /// An image's owner is the caller's tenant (`true`) or user (`owner_is_tenant`).
    pub owner_is_tenant: bool,
    /// The most bytes one image may hold (`image_size_cap`), counted as they arrive.
    pub image_size_cap: u64,
    /// The most bytes of active and uploading images one owner may hold; 0 is no limit
    /// (`user_storage_quota`).
    pub user_storage_quota: u64,
    /// Deleting an image only marks it `pending_delete`; the scrubber removes its data
    /// later (`delayed_delete`).
    pub delayed_delete: bool,
    /// Seconds a `pending_delete` image's data is kept before the scrubber removes it
    /// (`scrub_time`).
    pub scrub_time: u64,
    /// Seconds between two scrubber passes (`wakeup_time`).
    pub wakeup_time: u64,
    /// The multihash computed next to MD5 for `os_hash_value` (`hashing_algorithm`).
    pub hashing_algorithm: tank_images::HashAlgorithm,
    /// This server's name in the uploads it runs (`node_id`): servers sharing a registry
    /// need distinct ones. `None`: `<hostname>:<api_port>`, or `<hostname>:<config file>`
    /// when the port is chosen at start (0).
    pub node_id: Option<String>,
    /// Seconds an upload's lease lasts without renewal (`upload_lease_secs`): how long
    /// the other servers wait before cleaning up after a server that stopped mid-upload.
    pub upload_lease_secs: u64,
    /// The most tags one image may have (`image_tag_quota`).
    pub image_tag_quota: usize,
    /// The most custom properties one image may have (`image_property_quota`).
    pub image_property_quota: usize,
    /// The most members one image may have (`image_member_quota`).
    pub image_member_quota: usize,
    /// The disk formats clients may set (`disk_formats`), Glance's list by default.
    pub disk_formats: Vec<tank_core::DiskFormat>,
    /// The container formats clients may set (`container_formats`).
    pub container_formats: Vec<tank_core::ContainerFormat>,
    /// The URL clients reach this server at, for the links the API answers with
    /// (`public_endpoint`); `None`: the request's `Host`, or a trusted proxy's
    /// `X-Forwarded-Host` and `X-Forwarded-Proto`.
    pub public_endpoint: Option<String>,
    /// The peers whose `X-Forwarded-*` headers are believed (`trusted_proxies`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// v2 shows an image's first location as `direct_url` (`show_image_direct_url`).
    pub show_image_direct_url: bool,
    /// v2 shows every location as `locations` (`show_multiple_locations`).
    pub show_multiple_locations: bool,
    /// The store holding data staged for glance-direct imports (`staging_store`); unset,
    /// glance-direct is not offered.
    pub staging_store: Option<String>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            limit_param_default: 25,
            api_limit_max: 1000,
            owner_is_tenant: true,
            image_size_cap: 1 << 40,
            user_storage_quota: 0,
            delayed_delete: false,
            scrub_time: 43200,
            wakeup_time: 300,
            hashing_algorithm: tank_images::HashAlgorithm::Sha512,
            node_id: None,
            upload_lease_secs: 60,
            image_tag_quota: 128,
            image_property_quota: 128,
            image_member_quota: 128,
            disk_formats: tank_core::DiskFormat::ALL.to_vec(),
            container_formats: tank_core::ContainerFormat::ALL.to_vec(),
            public_endpoint: None,
            trusted_proxies: Vec::new(),
            show_image_direct_url: false,
            show_multiple_locations: false,
            staging_store: None,
        }
    }
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
    limit_param_default: Option<u32>,
    api_limit_max: Option<u32>,
    owner_is_tenant: Option<bool>,
    image_size_cap: Option<u64>,
    user_storage_quota: Option<u64>,
    delayed_delete: Option<bool>,
    scrub_time: Option<u64>,
    wakeup_time: Option<u64>,
    hashing_algorithm: Option<String>,
    node_id: Option<String>,
    upload_lease_secs: Option<u64>,
    image_tag_quota: Option<usize>,
    image_property_quota: Option<usize>,
    image_member_quota: Option<usize>,
    disk_formats: Option<Vec<String>>,
    container_formats: Option<Vec<String>>,
    public_endpoint: Option<String>,
    #[serde(default)]
    trusted_proxies: Vec<std::net::IpAddr>,
    #[serde(default)]
    show_image_direct_url: bool,
    #[serde(default)]
    show_multiple_locations: bool,
    staging_store: Option<String>,
    #[serde(default)]
    import_filtering_opts: ImportFiltering,
    auth_strategy: Option<String>,
    #[serde(default)]
    identity_proxies: Vec<std::net::IpAddr>,
    token_file: Option<PathBuf>,
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

/// The authentication keys, checked together: each strategy's own key is required with it
/// and refused without it, so that a key the server would ignore is never set by mistake.
fn auth_settings(
    strategy: Option<String>,
    identity_proxies: Vec<std::net::IpAddr>,
    token_file: Option<PathBuf>,
    dir: &Path,
    path: &Path,
) -> Result<AuthSettings, ConfigError> {
    let err = |m: String| Err(ConfigError(format!("{}: {m}", path.display())));
    let strategy = match strategy.as_deref().map(str::trim) {
        None | Some("noauth") => AuthStrategy::NoAuth,
        Some("trusted-proxy") => AuthStrategy::TrustedProxy,
        Some("tokens") => AuthStrategy::Tokens,
        Some("keystone") => {
            return err("auth_strategy \"keystone\" is not built yet; use \"tokens\" or \"trusted-proxy\"".into())
        }
        Some(other) => return err(format!("auth_strategy {other:?} is not one of noauth, trusted-proxy, tokens")),
    };
    match (strategy, identity_proxies.is_empty(), &token_file) {
        (AuthStrategy::TrustedProxy, true, _) => {
            return err("auth_strategy \"trusted-proxy\" needs identity_proxies, the proxies' addresses".into())
        }
        (AuthStrategy::Tokens, _, None) => {
            return err("auth_strategy \"tokens\" needs token_file (make one with `tank token new --file ...`)".into())
        }
        (AuthStrategy::NoAuth | AuthStrategy::Tokens, false, _) => {
            return err("identity_proxies is used with auth_strategy \"trusted-proxy\" only".into())
        }
        (AuthStrategy::NoAuth | AuthStrategy::TrustedProxy, _, Some(_)) => {
            return err("token_file is used with auth_strategy \"tokens\" only".into())
        }
        _ => {}
    }
    Ok(AuthSettings { strategy, identity_proxies, token_file: token_file.map(|f| dir.join(f)) })
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
        let defaults = ApiSettings::default();
        let api = ApiSettings {
            limit_param_default: raw.limit_param_default.unwrap_or(defaults.limit_param_default),
            api_limit_max: raw.api_limit_max.unwrap_or(defaults.api_limit_max),
            owner_is_tenant: raw.owner_is_tenant.unwrap_or(defaults.owner_is_tenant),
            image_size_cap: raw.image_size_cap.unwrap_or(defaults.image_size_cap),
            user_storage_quota: raw.user_storage_quota.unwrap_or(defaults.user_storage_quota),
            delayed_delete: raw.delayed_delete.unwrap_or(defaults.delayed_delete),
            scrub_time: raw.scrub_time.unwrap_or(defaults.scrub_time),
            wakeup_time: raw.wakeup_time.unwrap_or(defaults.wakeup_time),
            hashing_algorithm: match raw.hashing_algorithm {
                None => defaults.hashing_algorithm,
                Some(name) => {
                    name.parse().map_err(|why| ConfigError(format!("{}: hashing_algorithm {why}", path.display())))?
                }
            },
            node_id: raw.node_id,
            upload_lease_secs: raw.upload_lease_secs.unwrap_or(defaults.upload_lease_secs),
            image_tag_quota: raw.image_tag_quota.unwrap_or(defaults.image_tag_quota),
            image_property_quota: raw.image_property_quota.unwrap_or(defaults.image_property_quota),
            image_member_quota: raw.image_member_quota.unwrap_or(defaults.image_member_quota),
            disk_formats: formats(raw.disk_formats, "disk_formats", path)?.unwrap_or(defaults.disk_formats),
            container_formats: formats(raw.container_formats, "container_formats", path)?
                .unwrap_or(defaults.container_formats),
            public_endpoint: match raw.public_endpoint {
                None => None,
                Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                    Some(url.trim_end_matches('/').to_owned())
                }
                Some(url) => {
                    return Err(ConfigError(format!(
                        "{}: public_endpoint {url:?} must be an http:// or https:// URL",
                        path.display()
                    )))
                }
            },
            trusted_proxies: raw.trusted_proxies,
            show_image_direct_url: raw.show_image_direct_url,
            show_multiple_locations: raw.show_multiple_locations,
            staging_store: raw.staging_store,
        };
        if api.node_id.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(ConfigError(format!("{}: node_id must not be empty", path.display())));
        }
        if api.upload_lease_secs < 1 {
            return Err(ConfigError(format!("{}: upload_lease_secs must be at least 1 second", path.display())));
        }
        if api.wakeup_time == 0 {
            return Err(ConfigError(format!("{}: wakeup_time must be at least 1 second", path.display())));
        }
        if api.api_limit_max == 0 {
            return Err(ConfigError(format!("{}: api_limit_max must be at least 1", path.display())));
        }
        if api.limit_param_default == 0 || api.limit_param_default > api.api_limit_max {
            return Err(ConfigError(format!(
                "{}: limit_param_default must be between 1 and api_limit_max ({})",
                path.display(),
                api.api_limit_max
            )));
        }
        let auth = auth_settings(raw.auth_strategy, raw.identity_proxies, raw.token_file, &dir, path)?;
        Ok(Config {
            api,
            auth,
            import_filtering: raw.import_filtering_opts,
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

    /// The name this server gives its uploads: `node_id`, else `<hostname>:<api_port>`,
    /// else (port 0, chosen anew at every start) `<hostname>:<config file>`, so that a
    /// restarted server still recognises its own interrupted uploads. Two servers on one
    /// host that share a config file and port 0 must set distinct `node_id`s.
    pub fn node_id(&self) -> String {
        if let Some(id) = &self.api.node_id {
            return id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        match self.api_port {
            0 => format!("{host}:{}", self.path.display()),
            port => format!("{host}:{port}"),
        }
    }

    /// The images service's settings.
    pub fn images_settings(&self) -> tank_images::Settings {
        tank_images::Settings {
            image_size_cap: self.api.image_size_cap,
            user_storage_quota: self.api.user_storage_quota,
            delayed_delete: self.api.delayed_delete,
            hashing_algorithm: self.api.hashing_algorithm,
            node_id: self.node_id(),
            upload_lease: std::time::Duration::from_secs(self.api.upload_lease_secs),
            image_tag_quota: self.api.image_tag_quota,
            image_property_quota: self.api.image_property_quota,
            image_member_quota: self.api.image_member_quota,
            page_max: self.api.api_limit_max,
            disk_formats: self.api.disk_formats.clone(),
            container_formats: self.api.container_formats.clone(),
            staging_store: self.api.staging_store.clone(),
        }
    }

    /// The table for a plugin of `kind` known as any of `names`, and the name it was found
    /// under.
    pub fn plugin_table<'a>(&'a self, kind: &str, names: &[&'a str]) -> Option<(&'a str, &'a toml::Table)> {
        let tables = if kind == "registry" { &self.registries } else { &self.stores };
        names.iter().find_map(|n| tables.get(*n).map(|t| (*n, t)))
    }
}

/// A list of format names (`disk_formats`, `container_formats`): each one known, and at
/// least one.
fn formats<T: std::str::FromStr<Err = tank_core::Error>>(
    names: Option<Vec<String>>,
    key: &str,
    path: &Path,
) -> Result<Option<Vec<T>>, ConfigError> {
    let Some(names) = names else { return Ok(None) };
    if names.is_empty() {
        return Err(ConfigError(format!("{}: {key} must name at least one format", path.display())));
    }
    let parsed = names.iter().map(|n| n.parse::<T>()).collect::<Result<Vec<T>, _>>();
    parsed.map(Some).map_err(|e| ConfigError(format!("{}: {key}: {e}", path.display())))
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
    fn each_auth_strategy_needs_its_own_key_and_only_it() {
        assert_eq!(parse("").unwrap().auth, AuthSettings::default(), "noauth unless chosen");
        let c = parse("auth_strategy = \"tokens\"\ntoken_file = \"tokens.toml\"\n").unwrap();
        assert_eq!(c.auth.token_file.as_deref(), Some(Path::new("/etc/tank/tokens.toml")), "beside the config");
        let c = parse("auth_strategy = \"trusted-proxy\"\nidentity_proxies = [\"10.0.0.5\"]\n").unwrap();
        assert_eq!((c.auth.strategy, c.auth.identity_proxies.len()), (AuthStrategy::TrustedProxy, 1));
        for (text, words) in [
            ("auth_strategy = \"tokens\"\n", "needs token_file"),
            ("auth_strategy = \"trusted-proxy\"\n", "needs identity_proxies"),
            ("identity_proxies = [\"10.0.0.5\"]\n", "trusted-proxy\" only"),
            (
                "auth_strategy = \"trusted-proxy\"\nidentity_proxies = [\"10.0.0.5\"]\ntoken_file = \"t\"\n",
                "tokens\" only",
            ),
            ("auth_strategy = \"keystone\"\n", "not built yet"),
            ("auth_strategy = \"open\"\n", "not one of"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(words) && e.contains("/etc/tank/tank.toml"), "{text}: {e}");
        }
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
    fn api_limits_have_glance_defaults_and_are_checked() {
        let c = parse("").unwrap();
        assert_eq!(c.api, ApiSettings::default());
        assert_eq!((c.api.limit_param_default, c.api.api_limit_max), (25, 1000));
        let c = parse("limit_param_default = 10\napi_limit_max = 50\nimage_size_cap = 1024\nuser_storage_quota = 5\nowner_is_tenant = false\n").unwrap();
        assert_eq!(
            c.api,
            ApiSettings {
                limit_param_default: 10,
                api_limit_max: 50,
                owner_is_tenant: false,
                image_size_cap: 1024,
                user_storage_quota: 5,
                ..ApiSettings::default()
            }
        );
        let e = parse("limit_param_default = 100\napi_limit_max = 50\n").unwrap_err().to_string();
        assert!(e.contains("limit_param_default") && e.contains("50"), "{e}");
        let e = parse("image_size_cap = -1\n").unwrap_err().to_string();
        assert!(e.contains("image_size_cap"), "{e}");
    }

    #[test]
    fn upload_settings_are_read_and_checked() {
        let c = parse("hashing_algorithm = \"sha256\"\nnode_id = \"api-1\"\nupload_lease_secs = 5\n").unwrap();
        let s = c.images_settings();
        assert_eq!((s.hashing_algorithm.name(), s.node_id.as_str(), s.upload_lease.as_secs()), ("sha256", "api-1", 5));
        let e = parse("hashing_algorithm = \"md4\"\n").unwrap_err().to_string();
        assert!(e.contains("hashing_algorithm") && e.contains("sha512"), "{e}");
        assert!(parse("upload_lease_secs = 0\n").unwrap_err().to_string().contains("upload_lease_secs"));
        assert!(parse("node_id = \" \"\n").unwrap_err().to_string().contains("node_id"));
        let any_port = Config::parse("api_port = 0\n", Path::new("/etc/tank/a.toml")).unwrap();
        assert_eq!(any_port.node_id(), any_port.node_id(), "a restart keeps its name");
        assert!(any_port.node_id().ends_with(":/etc/tank/a.toml"), "{}", any_port.node_id());
        let other = Config::parse("api_port = 0\n", Path::new("/etc/tank/b.toml")).unwrap();
        assert_ne!(any_port.node_id(), other.node_id(), "another config is another server");
        assert!(parse("api_port = 9292\n").unwrap().node_id().ends_with(":9292"));
    }

    #[test]
    fn plugin_tables_are_found_by_any_name() {
        let c = parse("[store.fs]\ndatadir = \"x\"\n[registry.sled]\npath = \"r\"\n").unwrap();
        assert_eq!(c.plugin_table("store", &["filesystem", "fs"]).unwrap().0, "fs");
        assert!(c.plugin_table("registry", &["sled"]).is_some());
        assert!(c.plugin_table("store", &["s3"]).is_none());
    }
}
