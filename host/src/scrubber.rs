//! The API server's background passes: delayed delete's scrubber (reference §6.3) and the
//! reclaim of uploads whose server is gone. Both are loops around one operation of the
//! images service, which holds the rules.
//!
//! With `delayed_delete = true`, deleting an image only marks it `pending_delete`; its
//! data stays in the store for `scrub_time` seconds (a window in which an operator can
//! still recover a mistaken delete) and the scrubber removes it afterwards. The queue is
//! the registry itself: every `pending_delete` record is a queued deletion, so the queue
//! survives restarts, needs no second database, and holds no store location (credentials
//! included) anywhere but in the record that already held it.

use std::time::Duration;

use tank_images::{Images, ScrubPass};

/// One scrubber pass, logged when it did something.
pub async fn scrub_once(images: &Images, scrub_time: Duration) -> tank_images::Result<ScrubPass> {
    let pass = images.scrub_once(scrub_time).await?;
    if pass.scrubbed + pass.failed > 0 {
        tracing::info!(scrubbed = pass.scrubbed, waiting = pass.waiting, failed = pass.failed, "scrubber pass");
    }
    Ok(pass)
}

/// Scrubber passes every `wakeup` until the process ends.
pub async fn scrub_forever(images: Images, scrub_time: Duration, wakeup: Duration) {
    loop {
        if let Err(e) = scrub_once(&images, scrub_time).await {
            tracing::error!("scrubber pass failed: {e}");
        }
        tokio::time::sleep(wakeup).await;
    }
}

/// Ends, every half lease, the uploads whose lease has passed: their server stopped
/// without cleaning up, and may never come back to do it.
pub async fn reclaim_forever(images: Images) {
    let period = (images.settings().upload_lease / 2).max(Duration::from_millis(500));
    loop {
        tokio::time::sleep(period).await;
        match images.recover(false).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(count = n, "uploads whose server stopped were ended"),
            Err(e) => tracing::error!("reclaiming uploads whose lease passed failed: {e}"),
        }
    }
}
