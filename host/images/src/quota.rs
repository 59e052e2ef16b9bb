//! The quota hook: how many more bytes an owner may store.
//!
//! [`UserStorageQuota`] is Glance's `user_storage_quota`: the bytes of an owner's images
//! that hold or receive data (`Image::stored_bytes`) may not pass it. The figure comes from
//! the registry driver, which keeps it per owner as records change (the `usage` operation),
//! so an upload costs one read, not a scan of every record; a driver without it is scanned,
//! as before. The service asks at the start of an upload (to stop it as soon as it passes
//! the limit) and again at its commit (where uploads that raced each other are caught).

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use tank_core::{Image, Status};
use tank_sdk::ErrorKind;

use crate::{backend::Registry, ImageError, Result};

/// What is left of a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    /// Bytes the image may still bring.
    pub bytes: u64,
    /// The quota itself.
    pub quota: u64,
}

/// Answers how much an upload may bring. Blocking: it may read the registry.
pub trait Quota: Send + Sync + 'static {
    /// What is left for `image`'s owner, not counting `image` itself; `None` when no quota
    /// applies.
    fn remaining(&self, image: &Image) -> Result<Option<Remaining>>;
}

/// No quota.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unlimited;

impl Quota for Unlimited {
    fn remaining(&self, _: &Image) -> Result<Option<Remaining>> {
        Ok(None)
    }
}

/// `user_storage_quota` bytes per owner, counted by the registry.
pub struct UserStorageQuota {
    quota: u64,
    registry: Arc<dyn Registry>,
    /// Set once the driver said it keeps no figures, so the scan is not preceded by a
    /// refused call every time.
    scans: AtomicBool,
}

impl UserStorageQuota {
    /// `quota` bytes per owner, counted by `registry`.
    pub fn new(quota: u64, registry: Arc<dyn Registry>) -> UserStorageQuota {
        UserStorageQuota { quota, registry, scans: AtomicBool::new(false) }
    }

    fn usage(&self, owner: &str) -> Result<u64> {
        if !self.scans.load(Ordering::Relaxed) {
            match self.registry.usage(owner) {
                Ok(bytes) => return Ok(bytes),
                Err(e) if e.kind == ErrorKind::UNSUPPORTED => {
                    tracing::warn!(
                        registry = self.registry.name(),
                        "the registry driver keeps no usage figures: user_storage_quota scans every record per upload"
                    );
                    self.scans.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(ImageError::registry(e)),
            }
        }
        let storing = [Status::Active, Status::Saving, Status::Uploading, Status::Importing, Status::Deactivated];
        let all = self.registry.with_status(&storing).map_err(ImageError::registry)?;
        Ok(all.iter().filter(|i| i.owner.as_deref() == Some(owner)).map(Image::stored_bytes).sum())
    }
}

impl Quota for UserStorageQuota {
    fn remaining(&self, image: &Image) -> Result<Option<Remaining>> {
        let Some(owner) = image.owner.as_deref() else { return Ok(None) };
        // The figure includes the image's own record as the registry holds it now.
        let current = match self.registry.get(image.id) {
            Ok(r) => r.value.stored_bytes(),
            Err(e) if e.kind == ErrorKind::NOT_FOUND => 0,
            Err(e) => return Err(ImageError::registry(e)),
        };
        let others = self.usage(owner)?.saturating_sub(current);
        Ok(Some(Remaining { bytes: self.quota.saturating_sub(others), quota: self.quota }))
    }
}
