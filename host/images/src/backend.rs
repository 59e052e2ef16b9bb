//! What the images service needs from the plugins: a registry driver and stores, as
//! blocking Rust traits. The host implements them over the loaded plugins
//! (`host/src/plugin/handles.rs`); the service's own tests over memory.
//!
//! # Calling discipline
//! Every method blocks (it may enter a plugin). The service calls them only from
//! `spawn_blocking` threads, never from an async worker.

use std::{collections::HashMap, sync::Arc};

use tank_core::{query::ListQuery, Image, ImageId, ImageLocation, Status};
use tank_sdk::{Result, Revision, Revisioned};

/// A registry driver: where records live.
pub trait Registry: Send + Sync + 'static {
    /// Its plugin's name, for messages.
    fn name(&self) -> &str;
    /// Stores a new record; `DUPLICATE` if the id exists.
    fn create(&self, image: &Image) -> Result<Revision>;
    /// The record of `id`, deleted ones included; `NOT_FOUND` if there is none.
    fn get(&self, id: ImageId) -> Result<Revisioned<Image>>;
    /// Replaces the record if it is still at `revision`; `CONFLICT` if not.
    fn update(&self, image: &Image, revision: Revision) -> Result<Revision>;
    /// Forgets the record.
    fn remove(&self, id: ImageId) -> Result<()>;
    /// One page of records.
    fn list(&self, query: &ListQuery) -> Result<Vec<Image>>;
    /// Every record in one of `statuses`.
    fn with_status(&self, statuses: &[Status]) -> Result<Vec<Image>>;
    /// The sum of `stored_bytes` of `owner`'s records; `UNSUPPORTED` if the driver keeps
    /// no such figure.
    fn usage(&self, owner: &str) -> Result<u64>;
}

/// A store: where image data lives.
pub trait Store: Send + Sync + 'static {
    /// Its plugin's name.
    fn name(&self) -> &str;
    /// Starts writing the data of `id`.
    fn add(&self, id: ImageId, size: Option<u64>) -> Result<Box<dyn Writer>>;
    /// Opens `location` for reading from `offset`, at most `length` bytes.
    fn get(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Box<dyn Reader>>;
    /// The size of the data at `location`.
    fn size(&self, location: &str) -> Result<u64>;
    /// Removes the data at `location`.
    fn delete(&self, location: &str) -> Result<()>;
    /// Removes what an interrupted write of `id` left.
    fn discard(&self, id: ImageId) -> Result<()>;
}

/// One open write. Dropping it without `finish` aborts it.
pub trait Writer: Send + 'static {
    /// Appends `data`.
    fn write(&mut self, data: &[u8]) -> Result<()>;
    /// Makes the data durable; returns its location URI.
    fn finish(self: Box<Self>) -> Result<String>;
    /// Removes everything written.
    fn abort(self: Box<Self>) -> Result<()>;
}

/// One open read.
pub trait Reader: Send + 'static {
    /// Fills the start of `buf`; returns the count, 0 at the end.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize>;
}

/// A store as the service knows it: the store, the names it answers to, and whether
/// clients may register its URLs and copy from them.
#[derive(Clone)]
pub struct StoreEntry {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Its plugin name, then its aliases.
    pub names: Vec<String>,
    /// The URI schemes of its locations.
    pub schemes: Vec<String>,
    /// Whether its locations are external (the manifest's `external_locations`).
    pub external: bool,
}

/// The opened stores, by every name they answer to.
#[derive(Clone)]
pub struct Stores {
    by_name: HashMap<String, Arc<StoreEntry>>,
    by_scheme: HashMap<String, Arc<StoreEntry>>,
    default: Option<Arc<StoreEntry>>,
    listing: Vec<String>,
    entries: Vec<Arc<StoreEntry>>,
}

impl Stores {
    /// No stores (the registry server's service, which never touches data).
    pub fn none() -> Stores {
        Stores {
            by_name: HashMap::new(),
            by_scheme: HashMap::new(),
            default: None,
            listing: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// `entries`, new images going to the one answering to `default`.
    ///
    /// # Errors
    /// The name of the default store when no entry answers to it.
    pub fn new(entries: Vec<StoreEntry>, default: &str) -> std::result::Result<Stores, String> {
        let mut stores = Stores::none();
        for entry in entries {
            let entry = Arc::new(entry);
            for n in &entry.names {
                stores.by_name.insert(n.clone(), entry.clone());
            }
            for s in &entry.schemes {
                stores.by_scheme.insert(s.clone(), entry.clone());
            }
            stores.entries.push(entry.clone());
            let aliases = &entry.names[1..];
            stores.listing.push(if aliases.is_empty() {
                entry.names[0].clone()
            } else {
                format!("{} ({})", entry.names[0], aliases.join(", "))
            });
        }
        stores.default = Some(stores.by_name.get(default).cloned().ok_or_else(|| default.to_owned())?);
        Ok(stores)
    }

    /// The store new images go to.
    pub fn default_store(&self) -> Option<&Arc<StoreEntry>> {
        self.default.as_ref()
    }

    /// Every store, in the order they were opened.
    pub fn entries(&self) -> &[Arc<StoreEntry>] {
        &self.entries
    }

    /// Whether `entry` is the store new images go to.
    pub fn is_default(&self, entry: &StoreEntry) -> bool {
        self.default.as_ref().is_some_and(|d| std::ptr::eq(d.as_ref(), entry))
    }

    /// The store called `name` (plugin name, alias, or scheme, as Glance's
    /// `x-image-meta-store` took schemes).
    pub fn named(&self, name: &str) -> Option<&Arc<StoreEntry>> {
        self.by_name.get(name).or_else(|| self.by_scheme.get(name))
    }

    /// The store holding the data at `location`: the store that wrote it (of several
    /// instances of one plugin, only that one knows where its data is), else the owner of
    /// its scheme.
    pub fn holding(&self, location: &ImageLocation) -> Option<&Arc<StoreEntry>> {
        let by_store = location.store.as_deref().and_then(|s| self.by_name.get(s));
        by_store.or_else(|| self.by_scheme.get(location.url.scheme()))
    }

    /// The store that reads client-given URLs of `scheme`: only stores whose locations are
    /// external qualify, so a client cannot point an image at data that some store keeps
    /// for Tank (a `file://` path, say).
    pub fn external(&self, scheme: &str) -> Option<&Arc<StoreEntry>> {
        self.by_scheme.get(scheme).filter(|s| s.external)
    }

    /// The schemes [`Stores::external`] accepts, sorted.
    pub fn external_schemes(&self) -> Vec<String> {
        let mut schemes: Vec<String> =
            self.by_scheme.iter().filter(|(_, s)| s.external).map(|(scheme, _)| scheme.clone()).collect();
        schemes.sort_unstable();
        schemes
    }

    /// "fs (filesystem, file), memstore" for messages.
    pub fn describe(&self) -> String {
        self.listing.join(", ")
    }
}
