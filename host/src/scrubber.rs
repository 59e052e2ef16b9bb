//! Delayed delete (reference §6.3): with `delayed_delete = true`, deleting an image only
//! marks it `pending_delete`; its data stays in the store for `scrub_time` seconds (a
//! window in which an operator can still recover a mistaken delete) and the scrubber
//! removes it afterwards.
//!
//! The queue is the registry itself: every `pending_delete` record is a queued deletion,
//! so the queue survives restarts, needs no second database, and holds no store location
//! (credentials included) anywhere but in the record that already held it.

use std::time::Duration;

use tank_core::Status;
use tank_sdk::ErrorKind;

use crate::state::{move_status, now, Tank};

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Images whose data was removed and that are now `deleted`.
    pub scrubbed: usize,
    /// Images still inside their `scrub_time` window.
    pub waiting: usize,
    /// Images whose data could not be removed; they stay queued for the next pass.
    pub failed: usize,
}

/// Removes the data of every `pending_delete` image deleted at least `scrub_time` ago.
pub fn scrub_once(tank: &Tank, scrub_time: Duration) -> anyhow::Result<Pass> {
    let mut pass = Pass::default();
    let queued = tank.registry.with_status(&[Status::PendingDelete])?;
    let due_before = now().unix_micros() - i64::try_from(scrub_time.as_micros()).unwrap_or(i64::MAX);
    for image in queued {
        let deleted_at = image.deleted_at.map_or(i64::MIN, |t| t.unix_micros());
        if deleted_at > due_before {
            pass.waiting += 1;
            continue;
        }
        // Only data Tank wrote is removed; data registered by location is someone else's.
        if let Some(location) = image.location.as_ref().filter(|_| image.owns_data()) {
            let Some(store) = tank.stores.holding(&image) else {
                tracing::error!(image = %image.id, "the store holding this image's data is not loaded; it stays queued");
                pass.failed += 1;
                continue;
            };
            match store.delete(location.expose()) {
                Ok(()) => {}
                Err(e) if e.kind == ErrorKind::NOT_FOUND => {}
                Err(e) => {
                    tracing::error!(image = %image.id, kind = %e.kind, "removing the data failed; it stays queued: {}", e.message);
                    pass.failed += 1;
                    continue;
                }
            }
        }
        // The data is gone: the record follows, whatever else changed it meanwhile.
        move_status(&tank.registry, image.id, Status::Deleted, |s| s == Status::PendingDelete)?;
        tracing::info!(image = %image.id, "scrubbed the data of a deleted image");
        pass.scrubbed += 1;
    }
    Ok(pass)
}
