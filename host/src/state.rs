//! What a running API server holds: the opened registry driver and stores, built from the
//! configuration and the plugin catalog, and the crash recovery done before serving.

use std::{collections::HashMap, sync::Arc, time::SystemTime};

use anyhow::{anyhow, Context};
use tank_core::{Image, Status, Timestamp};

use crate::{
    config::Config,
    plugin::{
        handles::{Registry, Store},
        loader::{Catalog, Entry},
    },
};

/// The opened stores, by every name they answer to.
pub struct Stores {
    by_name: HashMap<String, Arc<Store>>,
    by_scheme: HashMap<String, Arc<Store>>,
    default: Arc<Store>,
    listing: Vec<String>,
}

impl Stores {
    /// The store new images go to.
    pub fn default_store(&self) -> &Arc<Store> {
        &self.default
    }

    /// The store called `name` (plugin name, alias, or scheme, as Glance's
    /// `x-image-meta-store` took schemes).
    pub fn named(&self, name: &str) -> Option<&Arc<Store>> {
        self.by_name.get(name).or_else(|| self.by_scheme.get(name))
    }

    /// The store holding `image`'s data: the owner of its location's scheme, else the store
    /// recorded when its upload began (an interrupted upload has no location yet).
    pub fn holding(&self, image: &Image) -> Option<&Arc<Store>> {
        let by_location = image.location.as_ref().and_then(|l| self.by_scheme.get(l.scheme()));
        by_location.or_else(|| image.store.as_deref().and_then(|s| self.named(s)))
    }

    /// The store that reads client-given URLs of `scheme` (`x-image-meta-location`,
    /// copy-from): only stores whose locations are external qualify, so a client cannot
    /// point an image at data that some store keeps for Tank (a `file://` path, say).
    pub fn external(&self, scheme: &str) -> Option<&Arc<Store>> {
        self.by_scheme.get(scheme).filter(|s| s.external)
    }

    /// The schemes [`Stores::external`] accepts, sorted, for error messages.
    pub fn external_schemes(&self) -> Vec<&str> {
        let mut schemes: Vec<&str> =
            self.by_scheme.iter().filter(|(_, s)| s.external).map(|(scheme, _)| scheme.as_str()).collect();
        schemes.sort_unstable();
        schemes
    }

    /// "fs (filesystem, file), memstore" for error messages.
    pub fn describe(&self) -> String {
        self.listing.join(", ")
    }
}

/// The server's shared state.
pub struct Tank {
    /// Where metadata lives.
    pub registry: Arc<Registry>,
    /// Where data lives.
    pub stores: Stores,
    /// The API's limits and rules.
    pub api: crate::config::ApiSettings,
    /// Uploads in progress on this server, by image: sending `true` stops one (when its
    /// image is deleted).
    pub uploads: std::sync::Mutex<HashMap<tank_core::ImageId, tokio::sync::watch::Sender<bool>>>,
}

/// Moves image `id` to status `to` if its current status passes `from`, retrying when
/// another request changed the record first; does nothing otherwise.
pub fn move_status(
    registry: &Registry,
    id: tank_core::ImageId,
    to: Status,
    from: impl Fn(Status) -> bool,
) -> tank_sdk::Result<()> {
    loop {
        let mut current = registry.get(id)?;
        if !from(current.value.status) {
            return Ok(());
        }
        current.value.set_status(to, now()).map_err(|e| tank_sdk::Error::backend(e.to_string()))?;
        match registry.update(&current.value, current.revision) {
            Err(e) if e.kind == tank_sdk::ErrorKind::CONFLICT => continue,
            other => return other.map(drop),
        }
    }
}

/// Now, as the registry records it.
pub fn now() -> Timestamp {
    let micros = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
    Timestamp::from_unix_micros(i64::try_from(micros).unwrap_or(i64::MAX))
}

impl Tank {
    /// Opens the registry driver and the stores the configuration uses. Plugins that fail
    /// to open are marked in `catalog` and skipped, except the default store and the
    /// registry driver, without which the server cannot start.
    pub fn open(config: &Config, catalog: &mut Catalog) -> anyhow::Result<Tank> {
        let registry = open_registry(config, catalog)?;
        let stores = open_stores(config, catalog)?;
        Ok(Tank { registry: Arc::new(registry), stores, api: config.api.clone(), uploads: Default::default() })
    }

    /// Images a crash left in `saving` become `killed`, and their partial data is removed.
    pub fn recover(&self) -> anyhow::Result<usize> {
        let stuck = self.registry.with_status(&[Status::Saving]).context("cannot list images left in saving")?;
        let count = stuck.len();
        for mut image in stuck {
            let store = self.stores.holding(&image);
            match store {
                Some(store) => {
                    if let Err(e) = store.discard(image.id) {
                        tracing::error!(image = %image.id, store = %store.name, "could not remove partial data: {}", e.message);
                    }
                }
                None => {
                    tracing::warn!(image = %image.id, "the store of an interrupted upload is not loaded; its partial data stays")
                }
            }
            let revision = self.registry.get(image.id)?.revision;
            image.set_status(Status::Killed, now())?;
            self.registry.update(&image, revision)?;
            tracing::warn!(image = %image.id, "upload was interrupted by a stop of the server; image is now killed");
        }
        Ok(count)
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

/// Opens every store that is the default or has a `[store.<name>]` table, and checks each;
/// those that fail to open, or whose check fails, are marked in `catalog` (a store that
/// opened but failed its check is still used). Fails only when the default store is not
/// among them.
pub fn open_stores(config: &Config, catalog: &mut Catalog) -> anyhow::Result<Stores> {
    let mut by_name = HashMap::new();
    let mut by_scheme = HashMap::new();
    let mut listing = Vec::new();
    let candidates: Vec<_> = catalog.entries.iter().filter(|e| e.kind == Some("store") && e.is_ok()).cloned().collect();
    for entry in candidates {
        let mut names: Vec<&str> = vec![entry.name.as_str()];
        names.extend(entry.store.aliases.iter().map(String::as_str));
        let table = config.plugin_table("store", &names);
        let is_default = names.contains(&config.default_store.as_str());
        if table.is_none() && !is_default {
            continue;
        }
        let Some(module) = catalog.module(&entry.name) else { continue };
        let table = match with_host_settings(config, &entry, table.map(|(_, t)| t.clone()).unwrap_or_default()) {
            Ok(table) => table,
            Err(reason) => {
                tracing::error!("{reason}");
                catalog.fail(&entry.name, "open-failed", reason);
                continue;
            }
        };
        match Store::open(module, &entry.name, entry.schemes.clone(), &table, &config.dir) {
            Ok(mut store) => {
                store.external = entry.store.external_locations;
                let store = Arc::new(store);
                for n in &names {
                    by_name.insert((*n).to_owned(), store.clone());
                }
                for s in &entry.schemes {
                    by_scheme.insert(s.clone(), store.clone());
                }
                listing.push(if entry.store.aliases.is_empty() {
                    entry.name.clone()
                } else {
                    format!("{} ({})", entry.name, entry.store.aliases.join(", "))
                });
                tracing::info!(store = %entry.name, "store opened");
                // A store whose backend is down still serves: its requests answer 503 until
                // the backend is back, which may be soon. The operator hears of it now, in the
                // log and in `tank plugins --verify`, rather than at the first upload.
                if let Err(e) = store.check() {
                    let reason = format!(
                        "store '{}' opened, but its check failed: {}; requests to it answer 503 until it passes",
                        entry.name, e.message
                    );
                    tracing::error!("{reason}");
                    catalog.fail(&entry.name, "check-failed", reason);
                }
            }
            Err(e) => {
                let reason = format!("store '{}' failed to open: {}", entry.name, e.message);
                tracing::error!("{reason}");
                catalog.fail(&entry.name, "open-failed", reason);
            }
        }
    }
    let default = by_name.get(&config.default_store).cloned().ok_or_else(|| {
        let why = catalog
            .store_entry(&config.default_store)
            .and_then(|e| e.reason.clone())
            .unwrap_or_else(|| format!("no plugin in {} provides it", dirs(config)));
        anyhow!(
            "default_store '{}' is not available: {why}; install it or fix default_store in {}",
            config.default_store,
            config.path.display()
        )
    })?;
    Ok(Stores { by_name, by_scheme, default, listing })
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
