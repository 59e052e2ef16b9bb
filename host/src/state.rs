//! What a running API server holds: the images service over the opened registry driver
//! and stores, built from the configuration and the plugin catalog.

use std::sync::Arc;

use anyhow::anyhow;
use tank_images::{
    backend::{StoreEntry, Stores},
    Images,
};

use crate::{
    config::Config,
    plugin::{
        handles::{Registry, Store},
        loader::{Catalog, Entry},
    },
};

/// The server's shared state.
pub struct Tank {
    /// The images service: every operation the APIs offer.
    pub images: Images,
    /// The API's limits and paging rules.
    pub api: crate::config::ApiSettings,
    /// Who is calling: `noauth` until [`Tank::authenticate`] sets the configured
    /// strategy (the API server does; the scrubber serves no caller).
    pub auth: crate::auth::Auth,
}

impl Tank {
    /// Opens the registry driver and the stores the configuration uses, and the images
    /// service over them. Plugins that fail to open are marked in `catalog` and skipped,
    /// except the default store and the registry driver, without which the server cannot
    /// start.
    pub fn open(config: &Config, catalog: &mut Catalog) -> anyhow::Result<Tank> {
        let registry = open_registry(config, catalog)?;
        let stores = open_stores(config, catalog)?;
        if let Some(staging) = &config.api.staging_store {
            if stores.named(staging).is_none() {
                return Err(anyhow!(
                    "staging_store '{staging}' is not an opened store; name one of {} or add its [store.{staging}] table in {}",
                    stores.describe(),
                    config.path.display()
                ));
            }
            if stores.default_store().is_some_and(|d| d.names.contains(staging)) {
                return Err(anyhow!(
                    "staging_store '{staging}' is the default store; staged data needs a store of its own (a \
                     [store.<id>] instance) in {}",
                    config.path.display()
                ));
            }
        }
        let settings = config.images_settings();
        tracing::info!(node_id = %settings.node_id, "uploads on this server carry its node id");
        let auth = crate::auth::Auth::noauth(config.api.owner_is_tenant);
        let images = Images::new(Arc::new(registry), stores, settings);
        Ok(Tank { images, api: config.api.clone(), auth })
    }

    /// Authenticates callers as `config`'s `auth_strategy` says: a token file that cannot
    /// be read stops the API server here, naming the file.
    pub fn authenticate(mut self, config: &Config) -> anyhow::Result<Tank> {
        self.auth = crate::auth::Auth::new(&config.auth, config.api.owner_is_tenant)?;
        Ok(self)
    }
}

/// Opens the configured registry driver.
pub fn open_registry(config: &Config, catalog: &mut Catalog) -> anyhow::Result<Registry> {
    let name = config.registry_driver.as_str();
    let entry = catalog.registry_entry(name).ok_or_else(|| {
        anyhow!(
            "registry_driver '{name}' is not installed in the plugin dirs ({}); install its plugin folder or fix registry_driver in {}",
            dirs(config),
            config.path.display()
        )
    })?;
    if !entry.is_ok() {
        return Err(anyhow!(
            "registry driver '{name}' cannot be used: {}",
            entry.reason.as_deref().unwrap_or(entry.status)
        ));
    }
    let module = catalog.module(name).ok_or_else(|| anyhow!("registry driver '{name}' is not loaded"))?;
    let table = config.plugin_table("registry", &[name]).map(|(_, t)| t.clone()).unwrap_or_default();
    let registry = Registry::open(module, name, &table, &config.dir)
        .map_err(|e| anyhow!("registry driver '{name}' failed to open: {}", e.message))?;
    Ok(registry)
}

/// Opens every store that is the default or has a `[store.<name>]` table, and every
/// store instance (a `[store.<id>]` table naming its `plugin`: Glance's `enabled_backends`,
/// several stores of one plugin, each with its own settings), and checks each; those that
/// fail to open, or whose check fails, are marked in `catalog` (a store that opened but
/// failed its check is still used). Fails only when the default store is not among them,
/// or when an instance's id is taken or names no store plugin.
pub fn open_stores(config: &Config, catalog: &mut Catalog) -> anyhow::Result<Stores> {
    let mut entries = Vec::new();
    let candidates: Vec<_> = catalog.entries.iter().filter(|e| e.kind == Some("store") && e.is_ok()).cloned().collect();
    for entry in &candidates {
        let names = names_of(entry);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let table = config.plugin_table("store", &refs).filter(|(_, t)| !t.contains_key("plugin"));
        let is_default = refs.contains(&config.default_store.as_str());
        if table.is_none() && !is_default {
            continue;
        }
        let table = table.map(|(_, t)| t.clone()).unwrap_or_default();
        entries.extend(open_store(config, catalog, entry, names, table));
    }
    for (id, table) in config.stores.iter().filter(|(_, t)| t.contains_key("plugin")) {
        let plugin = table.get("plugin").and_then(|p| p.as_str()).unwrap_or_default();
        if catalog.entries.iter().any(|e| e.kind == Some("store") && names_of(e).contains(id)) {
            return Err(anyhow!(
                "[store.{id}] names a plugin, so it is a store instance, but '{id}' is already a store plugin's name \
                 or alias; give the instance another name in {}",
                config.path.display()
            ));
        }
        let found = catalog.entries.iter().find(|e| e.kind == Some("store") && names_of(e).iter().any(|n| n == plugin));
        let Some(entry) = found.cloned() else {
            return Err(anyhow!(
                "[store.{id}] plugin = {plugin:?}: no store plugin of that name is installed in {}; install it or \
                 fix the table in {}",
                dirs(config),
                config.path.display()
            ));
        };
        if !entry.is_ok() {
            let why = entry.reason.clone().unwrap_or_else(|| entry.status.to_owned());
            tracing::error!("store instance '{id}' cannot be opened: its plugin '{}' is not usable: {why}", entry.name);
            continue;
        }
        let mut table = table.clone();
        table.remove("plugin");
        entries.extend(open_store(config, catalog, &entry, vec![id.clone()], table));
    }
    Stores::new(entries, &config.default_store).map_err(|default| {
        let why = catalog
            .store_entry(&default)
            .and_then(|e| e.reason.clone())
            .unwrap_or_else(|| format!("no plugin in {} provides it", dirs(config)));
        anyhow!(
            "default_store '{default}' is not available: {why}; install it or fix default_store in {}",
            config.path.display()
        )
    })
}

/// A store plugin's name, then its aliases.
fn names_of(entry: &Entry) -> Vec<String> {
    let mut names = vec![entry.name.clone()];
    names.extend(entry.store.aliases.iter().cloned());
    names
}

/// Opens store plugin `entry` as the store answering to `names` with `table`; `None` when
/// it failed, marked in `catalog`.
fn open_store(
    config: &Config,
    catalog: &mut Catalog,
    entry: &Entry,
    names: Vec<String>,
    table: toml::Table,
) -> Option<StoreEntry> {
    let name = names[0].clone();
    let module = catalog.module(&entry.name)?;
    let table = match with_host_settings(config, entry, table) {
        Ok(table) => table,
        Err(reason) => {
            tracing::error!("{reason}");
            catalog.fail(&entry.name, "open-failed", reason);
            return None;
        }
    };
    match Store::open(module, &entry.name, entry.schemes.clone(), &table, &config.dir) {
        Ok(mut store) => {
            store.external = entry.store.external_locations;
            tracing::info!(store = %name, plugin = %entry.name, "store opened");
            // A store whose backend is down still serves: its requests answer 503 until
            // the backend is back, which may be soon. The operator hears of it now, in the
            // log and in `tank plugins --verify`, rather than at the first upload.
            if let Err(e) = store.check() {
                let reason = format!(
                    "store '{name}' opened, but its check failed: {}; requests to it answer 503 until it passes",
                    e.message
                );
                tracing::error!("{reason}");
                catalog.fail(&entry.name, "check-failed", reason);
            }
            Some(StoreEntry { external: store.external, schemes: store.schemes.clone(), names, store: Arc::new(store) })
        }
        Err(e) => {
            let reason = format!("store '{name}' failed to open: {}", e.message);
            tracing::error!("{reason}");
            catalog.fail(&entry.name, "open-failed", reason);
            None
        }
    }
}

/// The store's table with the host settings its manifest asks for added (`[store]
/// host_settings`). The operator sets those once, at the top level; a store table that sets
/// one itself is refused rather than silently overridden.
fn with_host_settings(config: &Config, entry: &Entry, mut table: toml::Table) -> Result<toml::Table, String> {
    for key in &entry.store.host_settings {
        if table.contains_key(key) {
            return Err(format!(
                "store '{}': {key} is set by the host from its top-level [{key}]; remove it from the store's table in {}",
                entry.name,
                config.path.display()
            ));
        }
        // The manifest check admits only the settings listed in HOST_SETTINGS.
        if key == "import_filtering_opts" {
            let value = toml::Value::try_from(&config.import_filtering)
                .map_err(|e| format!("store '{}': cannot pass {key}: {e}", entry.name))?;
            table.insert(key.clone(), value);
        }
    }
    Ok(table)
}

fn dirs(config: &Config) -> String {
    config.plugin_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
}
