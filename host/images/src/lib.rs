//! The images service: every rule of the image domain, once, beneath every API.
//!
//! The v1 API, the registry server, the scrubber (and the v2 API, the cache and the rest
//! to come) are wire formats around [`Images`]: they parse a request into typed values,
//! call one operation with the caller's identity ([`Caller`]), and render the result or the
//! [`ImageError`] in a table of their own. Nothing here knows HTTP (`cargo xtask test`
//! checks that neither `hyper` nor `http` is among this crate's dependencies).
//!
//! - `records.rs`: metadata: read, list, change, members, tags, (de)activation, and the
//!   registry API's raw record operations.
//! - `data.rs`: data: create and update with data, the upload life cycle (lease, commit,
//!   kill), download, delete, delayed delete's scrubber, and recovery.
//! - `transfer.rs`: the bounded streaming pump and the download stream.
//! - [`policy`], [`quota`]: the hooks, with today's rules as their defaults; [`Fetch`] is
//!   the point where the image cache will sit, after the policy check.
//! - [`backend`]: what the service needs of a registry driver and of stores.
//!
//! # Architecture invariants
//! - One policy decision per action: every operation asks [`Policy::check`] for each
//!   action it performs, and an image the caller may not see is "not found" whatever is
//!   asked (the service's tests record every decision of every operation).
//! - Status changes are compare-and-swaps that re-read and merge: a concurrent change of
//!   metadata, members or tags never undoes or fails another request's change, and an
//!   upload's final change keeps whatever changed while its bytes arrived.
//! - Plugins are called from blocking threads only.

#![deny(missing_docs)]

pub mod backend;
mod data;
mod error;
pub mod policy;
pub mod quota;
mod records;
mod transfer;

#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    fmt,
    str::FromStr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

pub use data::{Data, ImportTo, NewImage, Range, ScrubPass, Source, FAILED_IMPORT, IMPORTING_TO};
pub use error::{Action, ImageError, Mismatch, Operation, Result, SizeLimit};
pub use records::Deleted;
use tank_core::{Caller, ContainerFormat, DiskFormat, Image, ImageId, ImageLocation, Timestamp};
use tokio::sync::watch;
pub use transfer::{ByteStream, Download, CHUNK};

use crate::{
    backend::{Reader, Registry, Stores},
    policy::{DefaultPolicy, Policy, Target},
    quota::{Quota, Unlimited, UserStorageQuota},
};

/// The prefix of the properties only the server sets (`os_glance_failed_import`, ...).
pub const RESERVED_PREFIX: &str = "os_glance";

/// Glance's hard cap on any image's size (`IMAGE_SIZE_CAP`, 1 PiB).
pub const SIZE_CAP: u64 = 1 << 50;

/// The algorithm of `os_hash_value` (Glance's `hashing_algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512, Glance's default.
    #[default]
    Sha512,
}

impl HashAlgorithm {
    /// The name records and clients use.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
        }
    }

    pub(crate) fn hasher(self) -> Hasher {
        use sha2::Digest;
        match self {
            HashAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            HashAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
}

impl FromStr for HashAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        [HashAlgorithm::Sha256, HashAlgorithm::Sha384, HashAlgorithm::Sha512]
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("{s:?} is not one of sha256, sha384, sha512"))
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub(crate) fn finish(self) -> String {
        use sha2::Digest;
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha384(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// The rules' settings, under Glance's option names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The most bytes one image may hold (`image_size_cap`).
    pub image_size_cap: u64,
    /// The most bytes of one owner's images that hold or receive data; 0 is no limit
    /// (`user_storage_quota`).
    pub user_storage_quota: u64,
    /// Deleting an image with data only marks it `pending_delete` (`delayed_delete`).
    pub delayed_delete: bool,
    /// The multihash computed next to MD5 (`hashing_algorithm`).
    pub hashing_algorithm: HashAlgorithm,
    /// This server's name in the uploads it runs (`node_id`).
    pub node_id: String,
    /// How long an upload's lease lasts without renewal (`upload_lease_secs`).
    pub upload_lease: Duration,
    /// The most tags one image may have (`image_tag_quota`).
    pub image_tag_quota: usize,
    /// The most custom properties one image may have (`image_property_quota`).
    pub image_property_quota: usize,
    /// The most members one image may have (`image_member_quota`).
    pub image_member_quota: usize,
    /// The largest page a registry list is asked for when the service gathers every
    /// page itself (`api_limit_max`).
    pub page_max: u32,
    /// The disk formats clients may set (`disk_formats`).
    pub disk_formats: Vec<DiskFormat>,
    /// The container formats clients may set (`container_formats`).
    pub container_formats: Vec<ContainerFormat>,
    /// The store that holds data staged for a glance-direct import (`staging_store`);
    /// `None`: staging is not offered.
    pub staging_store: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            image_size_cap: 1 << 40,
            user_storage_quota: 0,
            delayed_delete: false,
            hashing_algorithm: HashAlgorithm::Sha512,
            node_id: "tank".into(),
            upload_lease: Duration::from_secs(60),
            image_tag_quota: 128,
            image_property_quota: 128,
            image_member_quota: 128,
            page_max: 1000,
            disk_formats: DiskFormat::ALL.to_vec(),
            container_formats: ContainerFormat::ALL.to_vec(),
            staging_store: None,
        }
    }
}

/// Opens an image's data for reading: the download decorator point. The default reads
/// the store holding the image's first location; the image cache wraps it.
pub trait Fetch: Send + Sync + 'static {
    /// Opens `image`'s data at `location` for reading `range`. Blocking.
    fn open(&self, image: &Image, location: &ImageLocation, range: Range) -> Result<Box<dyn Reader>>;
}

/// [`Fetch`] from the stores.
struct StoreFetch {
    stores: Stores,
}

impl Fetch for StoreFetch {
    fn open(&self, image: &Image, location: &ImageLocation, range: Range) -> Result<Box<dyn Reader>> {
        let entry = self.stores.holding(location).ok_or(ImageError::StoreUnavailable(image.id))?;
        let name = entry.names[0].clone();
        entry.store.get(location.url.expose(), range.offset, range.length).map_err(|e| ImageError::store(&name, e))
    }
}

/// The images service. Cheap to clone: every clone is the same service.
#[derive(Clone)]
pub struct Images {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) registry: Arc<dyn Registry>,
    pub(crate) stores: Stores,
    pub(crate) settings: Settings,
    pub(crate) policy: Arc<dyn Policy>,
    pub(crate) quota: Arc<dyn Quota>,
    pub(crate) fetch: Arc<dyn Fetch>,
    /// Uploads in progress on this server, by image: a value sent stops one.
    pub(crate) uploads: Mutex<HashMap<ImageId, watch::Sender<Option<transfer::Stop>>>>,
}

/// Builds an [`Images`] with hooks other than the defaults.
pub struct Builder {
    inner: Inner,
}

impl Builder {
    /// Decides actions with `policy` instead of [`DefaultPolicy`].
    pub fn policy(mut self, policy: Arc<dyn Policy>) -> Builder {
        self.inner.policy = policy;
        self
    }

    /// Answers quotas with `quota` instead of `user_storage_quota`.
    pub fn quota(mut self, quota: Arc<dyn Quota>) -> Builder {
        self.inner.quota = quota;
        self
    }

    /// Wraps the download path: `wrap` gets the current [`Fetch`] and returns the one to
    /// use (the image cache, in front of the stores).
    pub fn fetch(mut self, wrap: impl FnOnce(Arc<dyn Fetch>) -> Arc<dyn Fetch>) -> Builder {
        self.inner.fetch = wrap(self.inner.fetch);
        self
    }

    /// The service.
    pub fn build(self) -> Images {
        Images { inner: Arc::new(self.inner) }
    }
}

impl Images {
    /// A service over `registry` and `stores` with `settings` and the default hooks.
    pub fn builder(registry: Arc<dyn Registry>, stores: Stores, settings: Settings) -> Builder {
        let quota: Arc<dyn Quota> = if settings.user_storage_quota > 0 {
            Arc::new(UserStorageQuota::new(settings.user_storage_quota, registry.clone()))
        } else {
            Arc::new(Unlimited)
        };
        let fetch = Arc::new(StoreFetch { stores: stores.clone() });
        Builder {
            inner: Inner {
                registry,
                stores,
                settings,
                policy: Arc::new(DefaultPolicy),
                quota,
                fetch,
                uploads: Mutex::new(HashMap::new()),
            },
        }
    }

    /// A service with the default hooks.
    pub fn new(registry: Arc<dyn Registry>, stores: Stores, settings: Settings) -> Images {
        Images::builder(registry, stores, settings).build()
    }

    /// The stores.
    pub fn stores(&self) -> &Stores {
        &self.inner.stores
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }
}

impl Inner {
    /// Runs `f` on the blocking pool with the registry, its errors made domain errors.
    pub(crate) async fn registry<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Registry) -> tank_sdk::Result<T> + Send + 'static,
    ) -> Result<tank_sdk::Result<T>> {
        let registry = self.registry.clone();
        tokio::task::spawn_blocking(move || f(registry.as_ref())).await.map_err(transfer::joined)
    }

    /// Asks the policy whether `who` may do `action` to `target`. A refused `get_image`
    /// is "not found" however the policy words it: an image the caller may not see is
    /// never "forbidden".
    pub(crate) fn check(&self, who: &Caller, action: Action, target: Target<'_>) -> Result<()> {
        match self.policy.check(who, action, target) {
            Ok(()) => Ok(()),
            Err(_) if action == Action::GetImage && target.image.is_some() => {
                Err(ImageError::NotFound(target.image.expect("checked").id))
            }
            Err(policy::Refusal::Hidden) => match target.image {
                Some(image) => Err(ImageError::NotFound(image.id)),
                None => Err(ImageError::Forbidden { image: None, action }),
            },
            Err(policy::Refusal::Forbidden) => Err(ImageError::Forbidden { image: target.image.map(|i| i.id), action }),
        }
    }
}

/// Now, as records record it.
pub(crate) fn now() -> Timestamp {
    let micros = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
    Timestamp::from_unix_micros(i64::try_from(micros).unwrap_or(i64::MAX))
}

/// `t` plus `d`.
pub(crate) fn later(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp::from_unix_micros(t.unix_micros().saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)))
}
