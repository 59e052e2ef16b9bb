//! Image data: creates and updates that bring it, the upload life cycle, downloads,
//! deletes, delayed delete's scrubber and recovery after a crash.
//!
//! # The upload life cycle
//! 1. Everything the request brings is checked before anything is written: sizes against
//!    the caps, the store, the copy-from source (opened) or the location (its size read).
//! 2. The record moves `queued` → `saving` with an [`Upload`] lease naming this server
//!    (`node_id`), a token, the store and `lease_until`, so that recovery knows where
//!    partial data may be and whose it is.
//! 3. The bytes stream into the store ([`crate::transfer`]) while a task renews the lease
//!    every third of its length. That task also notices a delete or a takeover by another
//!    server, and stops the upload.
//! 4. The size and checksums are checked, the store's write finished, and the final
//!    change made: a compare-and-swap that re-reads and merges, so metadata, member and
//!    tag changes made while the bytes arrived are kept. If the image was deleted or taken
//!    over meanwhile, the data is removed instead.
//! 5. Every failure leaves the image `killed` (or, if it was deleted during the upload,
//!    `deleted`) with no data behind.
//!
//! The upload runs in a task of its own, so a client that goes away mid-request (its
//! request future dropped) still gets its upload cleaned up.

use std::sync::Arc;

use tank_core::{Caller, Change, Image, ImageId, ImageLocation, Location, Status, Timestamp, Upload};
use tank_sdk::{ErrorKind, Revisioned};
use tokio::sync::{oneshot, watch};

use crate::{
    backend::StoreEntry,
    error::{Mismatch, Operation, SizeLimit},
    later, now,
    policy::Target,
    records::{Deleted, Mode},
    transfer::{self, joined, ByteStream, Download, Limit, Received, Stop},
    Action, ImageError, Images, Inner, Result, SIZE_CAP,
};

/// A new image: an id the client chose, if any, and the metadata to start with.
#[derive(Debug, Default)]
pub struct NewImage {
    /// A client-chosen id.
    pub id: Option<ImageId>,
    /// The metadata. A `Size` declares the size the data must have; a `Checksum` the MD5.
    pub changes: Vec<Change>,
    /// The store its data is meant for, checked even when the data comes later (v1
    /// refuses an unknown `x-image-meta-store` on a reservation).
    pub store: Option<String>,
}

/// Data that comes with a create or an update.
pub struct Data {
    /// Where the bytes are.
    pub source: Source,
    /// The store to write them into, by name; `None` for the default store.
    pub store: Option<String>,
}

/// Where an image's data comes from.
pub enum Source {
    /// Bytes the client sends; `length` is what the transport announced (a
    /// `Content-Length`), if anything.
    Stream {
        /// The bytes.
        body: ByteStream,
        /// The announced length.
        length: Option<u64>,
    },
    /// A URL this server copies the data from (an external store reads it).
    CopyFrom(String),
    /// A URL where the data stays; Tank reads it from there and never deletes it.
    Location(String),
}

/// A part of an image's data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    /// The first byte.
    pub offset: u64,
    /// How many bytes, at most; `None` to the end.
    pub length: Option<u64>,
}

/// What one scrubber pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScrubPass {
    /// Images whose data was removed and that are now `deleted`.
    pub scrubbed: usize,
    /// Images still inside their `scrub_time` window, or whose upload still runs.
    pub waiting: usize,
    /// Images whose data could not be removed; they stay queued for the next pass.
    pub failed: usize,
}

/// Whether data may go to an image whose formats are not set (v1) or not (v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Formats {
    Optional,
    Required,
}

/// What a request brings, checked and opened.
enum Prepared {
    /// Bytes to store, with the size they must have when known.
    Upload { body: ByteStream, store: Arc<StoreEntry>, size: Option<u64> },
    /// Data that stays where it is, of `size` bytes.
    Registered { location: Location, size: u64 },
}

impl Inner {
    /// The size data must have: the length its transport announces and the declared one
    /// must agree, and neither may pass the caps.
    fn check_sizes(&self, transport: Option<u64>, declared: Option<u64>, registered: bool) -> Result<Option<u64>> {
        if let (Some(t), Some(d)) = (transport, declared) {
            if t != d {
                return Err(ImageError::SizeMismatch(Mismatch::Declarations { declared: d, transport: t, registered }));
            }
        }
        let size = transport.or(declared);
        if let Some(s) = size.filter(|&s| s > SIZE_CAP) {
            return Err(ImageError::TooLarge { size: s, limit: SIZE_CAP, which: SizeLimit::Absolute });
        }
        let cap = self.settings.image_size_cap;
        if let Some(s) = size.filter(|&s| s > cap) {
            return Err(ImageError::TooLarge { size: s, limit: cap, which: SizeLimit::ImageSizeCap });
        }
        Ok(size)
    }

    /// The staging store's name, when staging is offered.
    fn staging_store(&self) -> Result<String> {
        self.settings.staging_store.clone().ok_or_else(|| {
            ImageError::NotAllowed(
                "this server stages no data: glance-direct needs staging_store in its configuration".into(),
            )
        })
    }

    /// The store to write into: `name`, or the default. A store whose locations are
    /// external (http) only reads: it is refused before anything changes.
    fn pick_store(&self, name: Option<&str>) -> Result<Arc<StoreEntry>> {
        let found = match name {
            None => self.stores.default_store(),
            Some(n) => self.stores.named(n),
        };
        let store = found.cloned().ok_or_else(|| ImageError::UnknownStore {
            name: name.unwrap_or("(default)").to_owned(),
            available: self.stores.describe(),
        })?;
        if self.settings.staging_store.as_deref().is_some_and(|staging| store.names.iter().any(|n| n == staging)) {
            return Err(ImageError::Invalid {
                field: "store",
                reason: format!("store {} holds staged data only; name another store", store.names[0]),
            });
        }
        if store.external {
            return Err(ImageError::Invalid {
                field: "store",
                reason: format!(
                    "store {} is read-only: it reads images at their URLs; name a store that keeps data",
                    store.names[0]
                ),
            });
        }
        Ok(store)
    }

    /// The stores an import or a copy of `image` writes into, as `to` asks, each checked as
    /// [`Inner::pick_store`] checks one; all of them are the default store, then the others
    /// by name.
    /// A copy (`copy`) must name its stores, and a store that holds the image already is
    /// refused, or, with `all_stores`, passed over.
    fn targets(&self, to: &ImportTo, image: &Image, copy: bool) -> Result<Targets> {
        let invalid = |reason: &str| ImageError::Invalid { field: "stores", reason: reason.to_owned() };
        if to.all_stores && !to.stores.is_empty() {
            return Err(invalid("give stores or all_stores, not both"));
        }
        let holds = |entry: &Arc<StoreEntry>| self.holds(image, entry);
        let mut picked: Vec<Arc<StoreEntry>> = Vec::new();
        if to.all_stores {
            let mut all: Vec<Arc<StoreEntry>> = (self.stores.entries().iter())
                .filter(|e| self.pick_store(Some(&e.names[0])).is_ok() && !holds(e))
                .cloned()
                .collect();
            all.sort_by_key(|e| (!self.stores.is_default(e), e.names[0].clone()));
            picked = all;
            if picked.is_empty() {
                return Err(ImageError::Conflict(format!("image {} has data in every store already", image.id)));
            }
        } else if to.stores.is_empty() {
            if copy {
                return Err(invalid("name the stores to copy the image into (stores), or ask for all_stores"));
            }
            picked.push(self.pick_store(None)?);
        } else {
            for name in &to.stores {
                let entry = self.pick_store(Some(name))?;
                if picked.iter().any(|p| Arc::ptr_eq(p, &entry)) {
                    continue;
                }
                if holds(&entry) {
                    return Err(ImageError::Conflict(format!("image {} has data in store {name} already", image.id)));
                }
                picked.push(entry);
            }
        }
        let first = picked.remove(0);
        Ok(Targets { first, more: picked, must_succeed: to.must_succeed })
    }

    /// Whether `image` has a copy of its data (not a staged one) in store `entry`.
    fn holds(&self, image: &Image, entry: &Arc<StoreEntry>) -> bool {
        let held = |l: &ImageLocation| self.stores.holding(l).is_some_and(|s| Arc::ptr_eq(s, entry));
        image.locations.iter().any(|l| !l.is_staged() && held(l))
    }

    /// The store that reads `url`, a URL a client gave: one whose locations are external
    /// (http, s3, ...). Anything else is refused, `file://` above all: a client must not
    /// point an image at a path on the server.
    fn external(&self, url: &str) -> Result<(Location, Arc<StoreEntry>)> {
        let location = Location::parse(url)?;
        match self.stores.external(location.scheme()) {
            Some(store) => Ok((location, store.clone())),
            None => Err(ImageError::UnsupportedSource {
                scheme: location.scheme().to_owned(),
                accepted: self.stores.external_schemes(),
            }),
        }
    }

    /// Checks and opens what `data` brings for `image` (`None`: being created), with the
    /// policy's word on how it comes.
    async fn prepare(
        &self,
        who: &Caller,
        image: Option<&Image>,
        data: Data,
        declared: Option<u64>,
    ) -> Result<Prepared> {
        let target = Target { image, member: None };
        match data.source {
            Source::Stream { body, length } => {
                self.check(who, Action::UploadImage, target)?;
                let size = self.check_sizes(length, declared, false)?;
                Ok(Prepared::Upload { body, store: self.pick_store(data.store.as_deref())?, size })
            }
            Source::CopyFrom(url) => {
                if image.is_some() {
                    // Filling an existing image is writing its data, whoever fetches it.
                    self.check(who, Action::UploadImage, target)?;
                }
                self.check(who, Action::CopyFrom, target)?;
                let (location, source) = self.external(&url)?;
                // The source's length is checked as the bytes arrive, like a chunked
                // upload's.
                self.check_sizes(None, declared, false)?;
                let store = self.pick_store(data.store.as_deref())?;
                let name = source.names[0].clone();
                let reader = tokio::task::spawn_blocking(move || source.store.get(location.expose(), 0, None))
                    .await
                    .map_err(joined)?
                    .map_err(|e| ImageError::source(&name, e))?;
                Ok(Prepared::Upload { body: Box::pin(Download::start(reader, None)), store, size: declared })
            }
            Source::Location(url) => {
                if image.is_some() {
                    self.check(who, Action::UploadImage, target)?;
                }
                self.check(who, Action::SetImageLocation, target)?;
                let (location, source) = self.external(&url)?;
                let (name, at) = (source.names[0].clone(), location.clone());
                let size = tokio::task::spawn_blocking(move || source.store.size(at.expose()))
                    .await
                    .map_err(joined)?
                    .map_err(|e| ImageError::source(&name, e))?;
                let size = self.check_sizes(Some(size), declared, true)?.unwrap_or(size);
                Ok(Prepared::Registered { location, size })
            }
        }
    }

    /// Removes the data at `location` from `store`, logging (not answering) a failure.
    async fn remove_data(&self, store: &Arc<StoreEntry>, location: &Location) {
        let (entry, at) = (store.clone(), location.clone());
        match tokio::task::spawn_blocking(move || entry.store.delete(at.expose())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(store = %store.names[0], kind = %e.kind, "could not remove image data: {}", e.message)
            }
            Err(e) => tracing::error!(store = %store.names[0], "could not remove image data: {e}"),
        }
    }

    /// Removes the data Tank wrote for `image` (its staged copy, say) when it ends
    /// `deleted` without the delete path having removed it, logging a failure.
    async fn remove_owned(&self, image: &Image) {
        self.remove_copies(image.id, image.locations.iter().filter(|l| l.owned()).cloned().collect()).await;
    }

    /// Removes copies of `id`'s data the record no longer names (an import's staged
    /// copies, a failed import's or copy's), logging a failure.
    async fn remove_copies(&self, id: ImageId, copies: Vec<ImageLocation>) {
        for copy in copies {
            match self.stores.holding(&copy).cloned() {
                Some(entry) => self.remove_data(&entry, &copy.url).await,
                None => tracing::warn!(image = %id, "the store of a copy is not loaded here; the copy stays"),
            }
        }
    }

    /// Ends upload `token` of `id` that failed: `saving` becomes `killed`, `importing`
    /// `queued` again with `os_glance_failed_import` naming the store (as Glance leaves a
    /// failed import, ready for another try), a copy's image stays as it is without the
    /// copies in `reverted`, and an image deleted during the transfer (`pending_delete`
    /// with the lease) becomes `deleted`. The partial data is gone already. A registry
    /// failure is logged: the lease then passes, and recovery ends the upload.
    ///
    /// `token` `None` ends an upload without a lease (a record of an old host). Answers
    /// the status it left, or `None` when the upload was not its to end.
    async fn end_failed(&self, id: ImageId, token: Option<&str>, reverted: &[String]) -> Option<Status> {
        for _ in 0..16 {
            let record = match self.read(id).await {
                Ok(r) => r,
                Err(ImageError::NotFound(_)) => return None,
                Err(e) => {
                    tracing::error!(image = %id, "could not end a failed upload: {e}");
                    return None;
                }
            };
            let mut image = record.value;
            let ours = match (&image.upload, token) {
                (Some(u), Some(token)) => u.token == token,
                (None, None) => in_flight(&image),
                _ => false,
            };
            if !ours {
                return None;
            }
            let to = failed_to(&image)?;
            if to == Status::Deleted {
                self.remove_owned(&image).await;
            }
            let gone = fail(&mut image, reverted);
            if to != image.status {
                if let Err(e) = image.set_status(to.clone(), now()) {
                    tracing::error!(image = %id, "{e}");
                    return None;
                }
            }
            match self.write(&image, record.revision).await {
                Ok(Some(_)) => {
                    self.remove_copies(id, gone).await;
                    return Some(to);
                }
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(image = %id, "could not end a failed upload: {e}");
                    return None;
                }
            }
        }
        None
    }

    /// Renews upload `token`'s lease on `id` until aborted, and stops the upload when the
    /// image was deleted or another server took the upload over.
    async fn renew(self: Arc<Self>, id: ImageId, token: String, stop: watch::Sender<Option<Stop>>) {
        let lease = self.settings.upload_lease;
        let period = (lease / 3).max(std::time::Duration::from_millis(100));
        loop {
            tokio::time::sleep(period).await;
            loop {
                let record = match self.read(id).await {
                    Ok(r) => r,
                    Err(ImageError::NotFound(_)) => {
                        let _ = stop.send(Some(Stop::Deleted));
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(image = %id, "could not renew the upload's lease: {e}");
                        break;
                    }
                };
                let mut image = record.value;
                let ours = image.upload.as_ref().is_some_and(|u| u.token == token);
                if !ours || !in_flight(&image) {
                    let why = if image.is_deleted() { Stop::Deleted } else { Stop::LeaseLost };
                    let _ = stop.send(Some(why));
                    return;
                }
                if let Some(upload) = image.upload.as_mut() {
                    upload.lease_until = later(now(), lease);
                }
                match self.write(&image, record.revision).await {
                    Ok(Some(_)) => break,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(image = %id, "could not renew the upload's lease: {e}");
                        break;
                    }
                }
            }
        }
    }

    /// The change of upload `token` once `store` holds the data: the record, re-read,
    /// gains the copy there, keeping whatever else changed meanwhile. A job of one store
    /// ends here: the image becomes `active` with the data (or, for a stage, keeps it
    /// staged) and the lease goes. In a job of several, the lease passes on to the next
    /// store, and [`Inner::finish_job`] ends it; an import that need not succeed everywhere
    /// is `active` from its first copy on.
    async fn commit(&self, job: &Job, store: &Arc<StoreEntry>, location: Location, got: &Stored) -> Result<Image> {
        let (id, token) = (job.id, job.token.as_str());
        let first = Arc::ptr_eq(store, &job.store);
        let next = match job.more.iter().position(|s| Arc::ptr_eq(s, store)) {
            Some(n) => job.more.get(n + 1),
            None => job.more.first(),
        };
        let fills = first && job.in_flight != Status::Active;
        let activates = fills && job.in_flight != Status::Uploading && (job.more.is_empty() || !job.must_succeed);
        let mut failures = 0u32;
        // An import's staged copies, as first read: once the commit lands (whichever
        // path finds out), the record no longer names them and they go.
        let mut unstaged: Option<Vec<ImageLocation>> = None;
        loop {
            let record = match self.read(id).await {
                Ok(r) => r,
                Err(ImageError::NotFound(_)) => {
                    self.remove_data(store, &location).await;
                    return Err(ImageError::DeletedDuringUpload(id));
                }
                Err(e) if failures < 5 => {
                    failures += 1;
                    tracing::warn!(image = %id, "reading the record to commit the upload failed ({e}); retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(failures))).await;
                    continue;
                }
                Err(e) => {
                    return Err(self.abandon(job, store, &location, &unstaged.clone().unwrap_or_default(), e).await)
                }
            };
            let mut image = record.value;
            let ours = image.upload.as_ref().is_some_and(|u| u.token == token);
            if activates && unstaged.is_none() {
                unstaged = Some(image.locations.iter().filter(|l| l.is_staged()).cloned().collect());
            }
            let staged = unstaged.clone().unwrap_or_default();
            if names_copy(&image, store, &location) {
                // An earlier write of this commit landed although it answered an error:
                // the data is the image's now, never to be removed here.
                self.remove_copies(id, staged).await;
                return Ok(image);
            }
            if image.is_deleted() || !ours || !in_flight(&image) {
                self.remove_data(store, &location).await;
                if image.is_deleted() {
                    self.end_failed(id, Some(token), &job.reverted()).await;
                    return Err(ImageError::DeletedDuringUpload(id));
                }
                return Err(ImageError::Conflict(
                    "the upload was taken over by another server after this server's lease on it passed; nothing \
                     was kept"
                        .into(),
                ));
            }
            if fills {
                let quota = self.quota.clone();
                let checked = image.clone();
                let remaining = tokio::task::spawn_blocking(move || quota.remaining(&checked)).await;
                match remaining.map_err(joined).and_then(|r| r) {
                    Ok(Some(left)) if got.size > left.bytes => {
                        let e = ImageError::OverQuota { left: left.bytes, quota: left.quota };
                        return Err(self.abandon(job, store, &location, &staged, e).await);
                    }
                    Ok(_) => {}
                    Err(e) => return Err(self.abandon(job, store, &location, &staged, e).await),
                }
            }
            let name = store.names[0].clone();
            if job.in_flight == Status::Uploading {
                // Staged: the data waits in the staging store for its import. Its size is
                // the image's from now on, so that the owner's quota counts it.
                image.size = got.size;
                image.locations.push(ImageLocation::staged(location.clone(), name.clone()));
                image.updated_at = now();
            } else {
                if fills {
                    image.size = got.size;
                    image.checksum = Some(got.md5.clone());
                    image.os_hash_algo = Some(self.settings.hashing_algorithm.name().to_owned());
                    image.os_hash_value = Some(got.hash.clone());
                }
                image.locations.push(ImageLocation::stored(location.clone(), name.clone()));
                image.updated_at = now();
                if activates {
                    image.locations.retain(|l| !l.is_staged());
                    if let Err(e) = image.set_status(Status::Active, now()) {
                        return Err(self.abandon(job, store, &location, &staged, e.into()).await);
                    }
                }
            }
            remove_from_list(&mut image, IMPORTING_TO, &name);
            match next {
                None if job.more.is_empty() => image.upload = None,
                None => {}
                Some(next) => {
                    if let Some(upload) = image.upload.as_mut() {
                        // The store where partial data may be from now on.
                        upload.store = next.names[0].clone();
                    }
                }
            }
            match self.write(&image, record.revision).await {
                Ok(Some(_)) => {
                    self.remove_copies(id, staged).await;
                    return Ok(image);
                }
                Ok(None) => continue,
                Err(e) if failures < 5 => {
                    failures += 1;
                    tracing::warn!(image = %id, "committing the upload failed ({e}); retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(failures))).await;
                }
                Err(e) => return Err(self.abandon(job, store, &location, &staged, e).await),
            }
        }
    }

    /// Gives up a stored upload: the image is killed, its data goes, `e` is the answer.
    /// The record goes first: once it is killed no earlier write of this commit can still
    /// land, and data a record points at (a write that answered an error but landed) is
    /// never removed.
    async fn abandon(
        &self,
        job: &Job,
        store: &Arc<StoreEntry>,
        location: &Location,
        staged: &[ImageLocation],
        e: ImageError,
    ) -> ImageError {
        let id = job.id;
        self.end_failed(id, Some(&job.token), &job.reverted()).await;
        match self.read(id).await {
            Ok(r) if names_copy(&r.value, store, location) => {
                tracing::warn!(image = %id, "the upload's commit landed after all; its data stays");
                self.remove_copies(id, staged.to_vec()).await;
            }
            Ok(_) | Err(ImageError::NotFound(_)) => self.remove_data(store, location).await,
            Err(read) => tracing::error!(
                image = %id,
                store = %store.names[0],
                "the registry cannot tell whether the upload's data is in use ({read}); it stays in the store"
            ),
        }
        e
    }

    /// Copies `image`'s data from `source` into each of `targets` in turn (the job's
    /// stores after the first that was written or failed; `failed` names those that
    /// failed so far). A store that fails ends the job when it must succeed everywhere (its
    /// copies go again, and an import returns to where it began); otherwise it is named
    /// in `os_glance_failed_import` and the others go on.
    #[allow(clippy::too_many_arguments)]
    async fn copy_rest(
        &self,
        image: Image,
        job: &Job,
        (from, source): (Arc<StoreEntry>, Location),
        targets: &[Arc<StoreEntry>],
        mut failed: Vec<String>,
        limit: &Limit,
        stop: watch::Receiver<Option<Stop>>,
    ) -> Result<Image> {
        let (id, token) = (job.id, job.token.as_str());
        let mut image = image;
        for (n, target) in targets.iter().enumerate() {
            let (entry, at, size) = (from.clone(), source.clone(), image.size);
            let opened = tokio::task::spawn_blocking(move || entry.store.get(at.expose(), 0, None)).await;
            let written = match opened.map_err(joined).and_then(|r| r.map_err(|e| ImageError::store(&from.names[0], e)))
            {
                Ok(reader) => {
                    let body: ByteStream = Box::pin(Download::start(reader, Some(size)));
                    let want = image.checksum.clone();
                    self.write_copy(id, target, body, Some(size), limit, stop.clone(), want.as_deref()).await
                }
                Err(e) => Err(e),
            };
            match written {
                Ok((location, stored)) => image = self.commit(job, target, location, &stored).await?,
                Err(e) => {
                    tracing::warn!(image = %id, store = %target.names[0], "copying the image into a store failed: {e}");
                    if job.must_succeed || stop.borrow().is_some() {
                        self.end_failed(id, Some(token), &job.reverted()).await;
                        return Err(e);
                    }
                    failed.push(target.names[0].clone());
                    if let Some(next) = targets.get(n + 1) {
                        match self.pass_lease(job, &target.names[0], &next.names[0]).await {
                            Ok(passed) => image = passed,
                            Err(e) => {
                                self.end_failed(id, Some(token), &job.reverted()).await;
                                return Err(e);
                            }
                        }
                    }
                }
            }
        }
        match self.finish_job(job, &failed).await {
            // A registry that failed the last write: end the job as a failure rather than
            // leave its lease on an image that recovery does not scan.
            Err(e) if !matches!(e, ImageError::DeletedDuringUpload(_)) => {
                self.end_failed(id, Some(token), &job.reverted()).await;
                Err(e)
            }
            done => done,
        }
    }

    /// Passes the lease of `job` on from store `failed`, whose copy failed, to `next`, so
    /// that partial data is looked for where it may be.
    async fn pass_lease(&self, job: &Job, failed: &str, next: &str) -> Result<Image> {
        loop {
            let record = self.read(job.id).await?;
            let mut image = record.value;
            match image.upload.as_mut() {
                Some(u) if u.token == job.token => u.store = next.to_owned(),
                _ => return Err(ImageError::DeletedDuringUpload(job.id)),
            }
            remove_from_list(&mut image, IMPORTING_TO, failed);
            if self.write(&image, record.revision).await?.is_some() {
                return Ok(image);
            }
        }
    }

    /// A copy of `image`'s data this server reads: the first that is not staged.
    fn readable_copy(&self, image: &Image) -> Option<(Arc<StoreEntry>, Location)> {
        let copies = image.locations.iter().filter(|l| !l.is_staged());
        copies.into_iter().find_map(|l| Some((self.stores.holding(l)?.clone(), l.url.clone())))
    }

    /// Ends a job of several stores once each has its copy or failed (`failed`): the
    /// lease goes, the stores that failed are named in `os_glance_failed_import`, and an
    /// import becomes `active`, its staged copy removed.
    async fn finish_job(&self, job: &Job, failed: &[String]) -> Result<Image> {
        let (id, token) = (job.id, job.token.as_str());
        loop {
            let record = self.read(id).await?;
            let mut image = record.value;
            if image.is_deleted() || image.upload.as_ref().is_none_or(|u| u.token != token) || !in_flight(&image) {
                self.end_failed(id, Some(token), &job.reverted()).await;
                return Err(ImageError::DeletedDuringUpload(id));
            }
            image.upload = None;
            image.properties.remove(IMPORTING_TO);
            for store in failed {
                add_to_list(&mut image, FAILED_IMPORT, store);
            }
            let mut staged = Vec::new();
            if image.status == Status::Importing {
                staged = image.locations.iter().filter(|l| l.is_staged()).cloned().collect();
                image.locations.retain(|l| !l.is_staged());
                image.set_status(Status::Active, now())?;
            }
            image.updated_at = now();
            if self.write(&image, record.revision).await?.is_some() {
                self.remove_copies(id, staged).await;
                return Ok(image);
            }
        }
    }

    /// Moves queued image `id` through `saving` to `active` with `body`'s data, or to
    /// `killed` with nothing left in the store (and likewise for a stage, an import or a
    /// copy, from status `from` through `in_flight`).
    async fn upload(
        self: Arc<Self>,
        id: ImageId,
        body: ByteStream,
        targets: Targets,
        declared: Declared,
        (from, in_flight): (Status, Status),
        started: Option<oneshot::Sender<Image>>,
    ) -> Result<Image> {
        let Targets { first: store, more, must_succeed } = targets;
        let token = uuid::Uuid::new_v4().to_string();
        let job = Job { id, token, store, declared, in_flight, from, more, must_succeed };
        let (stop_tx, stop) = watch::channel(None);
        // Registered before the record says `saving`, so a delete on this server always
        // finds the upload to stop.
        self.uploads.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, stop_tx.clone());
        let ours = stop_tx.clone();
        let result = self.clone().upload_registered(&job, body, stop, stop_tx, started).await;
        // Only this upload's entry: a second request for the same image that lost the
        // queued → saving race must not unregister the upload that won it.
        let mut uploads = self.uploads.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if uploads.get(&id).is_some_and(|entry| entry.same_channel(&ours)) {
            uploads.remove(&id);
        }
        drop(uploads);
        result
    }

    async fn upload_registered(
        self: Arc<Self>,
        job: &Job,
        body: ByteStream,
        stop: watch::Receiver<Option<Stop>>,
        stop_tx: watch::Sender<Option<Stop>>,
        started: Option<oneshot::Sender<Image>>,
    ) -> Result<Image> {
        let (id, store_name) = (job.id, job.store_name());
        // queued → saving, with the lease: a compare-and-swap that keeps other changes.
        let image = loop {
            let record = self.read(id).await?;
            let mut image = record.value;
            if image.is_deleted() {
                return Err(ImageError::DeletedDuringUpload(id));
            }
            let copying = job.in_flight == Status::Active;
            if copying && image.status == Status::Active {
                // Another copy began or ended since this one was checked.
                if let Some(upload) = &image.upload {
                    return Err(copy_running(id, &upload.store));
                }
                let stores = std::iter::once(&job.store).chain(&job.more);
                if let Some(held) = stores.into_iter().find(|s| self.holds(&image, s)) {
                    return Err(ImageError::Conflict(format!(
                        "image {id} has data in store {} already",
                        held.names[0]
                    )));
                }
            }
            let ready = image.status == job.from && (job.from == Status::Queued || image.upload.is_none());
            if !ready {
                let wanted = match job.in_flight {
                    Status::Importing => Operation::Import,
                    Status::Active => Operation::Copy,
                    _ => Operation::Upload,
                };
                return Err(ImageError::WrongStatus { image: id, status: image.status, wanted });
            }
            if image.status != job.in_flight {
                image.set_status(job.in_flight.clone(), now())?;
            }
            if matches!(job.in_flight, Status::Importing | Status::Active) {
                image.properties.remove(FAILED_IMPORT);
                image.properties.insert(IMPORTING_TO.into(), job.store_names().join(","));
            }
            image.upload = Some(Upload {
                node: self.settings.node_id.clone(),
                token: job.token.clone(),
                store: store_name.to_owned(),
                lease_until: later(now(), self.settings.upload_lease),
            });
            if self.write(&image, record.revision).await?.is_some() {
                break image;
            }
        };
        if let Some(tx) = started {
            let _ = tx.send(image.clone());
        }
        let started = std::time::Instant::now();
        let outcome = self.receive_and_commit(&image, job, body, stop, stop_tx).await;
        match &outcome {
            Ok(image) => tracing::info!(image = %id, size = image.size, store = store_name,
                ms = started.elapsed().as_millis() as u64, "image stored"),
            Err(e) => tracing::warn!(image = %id, store = store_name, "upload failed: {e}"),
        }
        outcome
    }

    async fn receive_and_commit(
        self: &Arc<Self>,
        image: &Image,
        job: &Job,
        body: ByteStream,
        stop: watch::Receiver<Option<Stop>>,
        stop_tx: watch::Sender<Option<Stop>>,
    ) -> Result<Image> {
        let (id, token) = (job.id, job.token.as_str());
        let cap = self.settings.image_size_cap;
        let mut limit = Limit { bytes: cap, exceeded: ImageError::CapExceeded { cap } };
        // A copy into more stores brings no new bytes to the owner's figure.
        if job.in_flight != Status::Active {
            let quota = self.quota.clone();
            let checked = image.clone();
            let remaining = tokio::task::spawn_blocking(move || quota.remaining(&checked)).await.map_err(joined);
            match remaining.and_then(|r| r) {
                Ok(Some(left)) if left.bytes < limit.bytes => {
                    let exceeded = ImageError::OverQuota { left: left.bytes, quota: left.quota };
                    limit = Limit { bytes: left.bytes, exceeded }
                }
                Ok(_) => {}
                Err(e) => {
                    self.end_failed(id, Some(token), &job.reverted()).await;
                    return Err(e);
                }
            }
        }
        // The lease is renewed until the commit is over: finishing a write (an fsync, an
        // S3 multipart completion) and the commit's retries may take longer than a lease.
        let renewer = tokio::spawn(self.clone().renew(id, token.to_owned(), stop_tx));
        // The MD5 declared with the data (v2's Content-MD5), else the record's (v1's).
        let want = job.declared.md5.as_deref().or(image.checksum.as_deref());
        let result = match self.write_copy(id, &job.store, body, job.declared.size, &limit, stop.clone(), want).await {
            Ok((location, stored)) => match self.commit(job, &job.store, location.clone(), &stored).await {
                Ok(image) if !job.more.is_empty() => {
                    let source = (job.store.clone(), location);
                    self.copy_rest(image, job, source, &job.more, Vec::new(), &limit, stop).await
                }
                other => other,
            },
            // A copy into several stores that need not all succeed goes on with the next.
            Err(e) if job.in_flight == Status::Active && !job.must_succeed && !job.more.is_empty() => {
                tracing::warn!(image = %id, store = job.store_name(), "copying the image into a store failed: {e}");
                let first = job.store_name().to_owned();
                match (self.readable_copy(image), self.pass_lease(job, &first, &job.more[0].names[0]).await) {
                    (Some(source), Ok(image)) => {
                        self.copy_rest(image, job, source, &job.more, vec![first], &limit, stop).await
                    }
                    (_, passed) => {
                        self.end_failed(id, Some(token), &job.reverted()).await;
                        Err(passed.err().unwrap_or(e))
                    }
                }
            }
            Err(e) => {
                self.end_failed(id, Some(token), &job.reverted()).await;
                Err(e)
            }
        };
        renewer.abort();
        result
    }

    /// Streams `body` into a new write of image `id` in `store` and finishes it: where the
    /// data is now and what was stored, or the error with nothing left in the store. The
    /// data must have `declared` bytes and MD5 `want`, when given.
    #[allow(clippy::too_many_arguments)]
    async fn write_copy(
        &self,
        id: ImageId,
        store: &Arc<StoreEntry>,
        body: ByteStream,
        declared: Option<u64>,
        limit: &Limit,
        stop: watch::Receiver<Option<Stop>>,
        want: Option<&str>,
    ) -> Result<(Location, Stored)> {
        let store_name = store.names[0].as_str();
        let algorithm = self.settings.hashing_algorithm;
        let received = transfer::receive(body, store, id, declared, limit, stop, algorithm).await?;
        if let Some(want) = want.filter(|want| *want != received.md5) {
            let e = ImageError::ChecksumMismatch { declared: want.to_owned(), got: received.md5.clone() };
            transfer::discard(received.writer, store_name).await;
            return Err(e);
        }
        let Received { writer, size, md5, hash } = received;
        let location = tokio::task::spawn_blocking(move || writer.finish())
            .await
            .map_err(joined)?
            .map_err(|e| ImageError::store(store_name, e))?;
        match Location::parse(&location) {
            Ok(l) => Ok((l, Stored { size, md5, hash })),
            Err(e) => {
                tracing::error!(image = %id, store = store_name, "the store returned an unusable location: {e}");
                let entry = store.clone();
                let _ = tokio::task::spawn_blocking(move || entry.store.delete(&location)).await;
                Err(ImageError::Internal("the store returned an unusable location".into()))
            }
        }
    }
}

/// One upload this server runs: what each of its steps needs.
struct Job {
    id: ImageId,
    /// The lease's token: the upload's name in the record.
    token: String,
    store: Arc<StoreEntry>,
    /// What the data must be, as far as known.
    declared: Declared,
    /// The image's status while the bytes flow: `saving` (an upload), `uploading` (a
    /// stage) or `importing`.
    in_flight: Status,
    /// The status the image must have when the transfer begins: `queued`, `uploading`
    /// for the import of staged data, `active` for a copy into more stores.
    from: Status,
    /// The stores the data is copied into after `store`, from `store`'s copy.
    more: Vec<Arc<StoreEntry>>,
    /// Whether a store that fails fails the whole job (Glance's
    /// `all_stores_must_succeed`): its copies are removed again. Otherwise the stores that
    /// failed are named in `os_glance_failed_import` and the others keep their copies.
    must_succeed: bool,
}

impl Job {
    fn store_name(&self) -> &str {
        &self.store.names[0]
    }

    /// Every store the job writes into, by name.
    fn store_names(&self) -> Vec<String> {
        std::iter::once(&self.store).chain(&self.more).map(|s| s.names[0].clone()).collect()
    }

    /// The stores whose copies a failure removes again.
    fn reverted(&self) -> Vec<String> {
        if self.must_succeed {
            self.store_names()
        } else {
            Vec::new()
        }
    }
}

/// What a transfer's data must be: its size, and the MD5 declared with it (not with the
/// record: v2's `Content-MD5`), when known.
#[derive(Debug, Clone, Default)]
pub(crate) struct Declared {
    size: Option<u64>,
    md5: Option<String>,
}

impl From<Option<u64>> for Declared {
    fn from(size: Option<u64>) -> Declared {
        Declared { size, md5: None }
    }
}

/// The stores an upload writes into: the first from the request's bytes, each other one
/// then copied from the first's copy (an import into several stores, a copy-image).
pub(crate) struct Targets {
    first: Arc<StoreEntry>,
    more: Vec<Arc<StoreEntry>>,
    must_succeed: bool,
}

impl From<Arc<StoreEntry>> for Targets {
    fn from(first: Arc<StoreEntry>) -> Targets {
        Targets { first, more: Vec::new(), must_succeed: true }
    }
}

/// Which stores an import or a copy writes into, as a client asks (v2's `stores`,
/// `all_stores` and `all_stores_must_succeed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportTo {
    /// Stores by name, in order; empty for the default store (or, with `all_stores`,
    /// every store).
    pub stores: Vec<String>,
    /// Every store that keeps data.
    pub all_stores: bool,
    /// Whether one failed store fails them all; Glance's default is yes.
    pub must_succeed: bool,
}

impl Default for ImportTo {
    fn default() -> ImportTo {
        ImportTo { stores: Vec::new(), all_stores: false, must_succeed: true }
    }
}

impl ImportTo {
    /// Into one store by name, or the default one.
    pub fn store(name: Option<String>) -> ImportTo {
        ImportTo { stores: name.into_iter().collect(), ..ImportTo::default() }
    }
}

/// v2 has no other way to say what data is than its formats: they come first.
fn formats_set(image: &Image, doing: &str) -> Result<()> {
    if image.disk_format.is_none() || image.container_format.is_none() {
        return Err(ImageError::Invalid {
            field: "disk_format",
            reason: format!("set disk_format and container_format of image {} before {doing} its data", image.id),
        });
    }
    Ok(())
}

/// The property naming the store a failed import was for (Glance's).
pub const FAILED_IMPORT: &str = "os_glance_failed_import";

/// Whether `image`'s bytes flow into a store under a lease: `saving` and `importing`,
/// and `uploading` while its data is being staged (a staged image waiting for its import
/// is `uploading` with no lease).
fn in_flight(image: &Image) -> bool {
    match image.status {
        Status::Saving | Status::Importing => true,
        // A copy into more stores: the image serves on while it runs.
        Status::Uploading | Status::Active | Status::Deactivated => image.upload.is_some(),
        _ => false,
    }
}

/// Where an image goes when its transfer fails: an upload's is `killed`; a stage's
/// `queued` again; an import's back to where it came from, for another try (`uploading`
/// while its staged data is there, else `queued`); a copy's stays as it is; one deleted
/// meanwhile `deleted`.
fn failed_to(image: &Image) -> Option<Status> {
    match image.status {
        Status::Saving => Some(Status::Killed),
        Status::Importing if image.staged().is_some() => Some(Status::Uploading),
        Status::Importing | Status::Uploading => Some(Status::Queued),
        Status::Active | Status::Deactivated if image.upload.is_some() => Some(image.status.clone()),
        Status::PendingDelete => Some(Status::Deleted),
        _ => None,
    }
}

/// Ends the lease of `image`'s failed transfer and answers the copies it leaves behind,
/// to remove once the record is written. A failed import is recorded with its store in
/// `os_glance_failed_import`, and loses the copies it made in any store (an image
/// importing had none before); a failed copy loses those in `reverted`.
fn fail(image: &mut Image, reverted: &[String]) -> Vec<ImageLocation> {
    let upload = image.upload.take();
    image.properties.remove(IMPORTING_TO);
    let importing = image.status == Status::Importing;
    let copying = matches!(image.status, Status::Active | Status::Deactivated);
    if !(importing || copying) {
        return Vec::new();
    }
    add_to_list(image, FAILED_IMPORT, &upload.map(|u| u.store).unwrap_or_default());
    let dropped =
        |l: &ImageLocation| !l.is_staged() && (importing || l.store.as_ref().is_some_and(|s| reverted.contains(s)));
    let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut image.locations).into_iter().partition(dropped);
    image.locations = kept;
    if importing {
        image.checksum = None;
        image.os_hash_algo = None;
        image.os_hash_value = None;
        if image.staged().is_none() {
            image.size = 0;
        }
    }
    gone
}

/// Whether `image`'s record names the copy at `location` in `store`: the write that put
/// it there landed.
fn names_copy(image: &Image, store: &StoreEntry, location: &Location) -> bool {
    image.locations.iter().any(|l| l.url == *location && l.store.as_deref() == Some(store.names[0].as_str()))
}

/// The refusal of a copy of image `id` while another one writes into `store`.
fn copy_running(id: ImageId, store: &str) -> ImageError {
    ImageError::Conflict(format!(
        "image {id} is being copied into store {store} already; wait until os_glance_importing_to_stores is gone"
    ))
}

/// The property listing the stores an import or copy has still to write (Glance's).
pub const IMPORTING_TO: &str = "os_glance_importing_to_stores";

/// Adds `store` to the comma-separated list in property `key`.
fn add_to_list(image: &mut Image, key: &str, store: &str) {
    let list = image.properties.entry(key.to_owned()).or_default();
    if !list.split(',').any(|s| s == store) {
        if !list.is_empty() {
            list.push(',');
        }
        list.push_str(store);
    }
}

/// Removes `store` from the comma-separated list in property `key`, and the property
/// once the list is empty.
fn remove_from_list(image: &mut Image, key: &str, store: &str) {
    let Some(list) = image.properties.get(key) else { return };
    let rest: Vec<&str> = list.split(',').filter(|s| !s.is_empty() && *s != store).collect();
    if rest.is_empty() {
        image.properties.remove(key);
    } else {
        let rest = rest.join(",");
        image.properties.insert(key.to_owned(), rest);
    }
}

/// What an upload stored: its size and hashes.
struct Stored {
    size: u64,
    md5: String,
    hash: String,
}

/// Makes `image` point at data registered by URL: `active` at once, with the size the
/// store reported and no checksum (Tank never read the data), and no store of its own,
/// since Tank did not write the data and will not delete it.
fn register(image: &mut Image, location: Location, size: u64) -> Result<()> {
    image.size = size;
    image.locations = vec![ImageLocation::external(location)];
    image.set_status(Status::Active, now())?;
    Ok(())
}

impl Images {
    /// Creates an image, `queued`, and with `data` fills it: uploaded, copied from a URL,
    /// or registered at one. Everything is checked before the image is created.
    pub async fn create(&self, who: &Caller, new: NewImage, data: Option<Data>) -> Result<Image> {
        let inner = &self.inner;
        inner.check(who, Action::AddImage, Target::default())?;
        let mut image = Image::new(new.id.unwrap_or_else(ImageId::random), now());
        // The caller owns what it creates, unless an admin names another owner.
        image.owner = who.owner().map(str::to_owned);
        let declared = new.changes.iter().rev().find_map(|c| if let Change::Size(s) = c { Some(*s) } else { None });
        let changes = inner.admit(who, None, new.changes, Mode::Client)?;
        inner.apply(&mut image, &changes)?;
        inner.check_sizes(None, declared, false)?;
        if let Some(name) = &new.store {
            // Only that it exists: a location registered "in" a read-only store is v1's.
            if inner.stores.named(name).is_none() {
                return Err(ImageError::UnknownStore { name: name.clone(), available: inner.stores.describe() });
            }
        }
        let prepared = match data {
            Some(d) => Some(inner.prepare(who, None, d, declared).await?),
            None => None,
        };
        let upload = match prepared {
            None => None,
            Some(Prepared::Registered { location, size }) => {
                register(&mut image, location, size)?;
                tracing::info!(image = %image.id, size, "image registered at an external location");
                None
            }
            Some(Prepared::Upload { body, store, size }) => Some((body, store, size)),
        };
        let written = image.clone();
        match inner.registry(move |r| r.create(&written)).await? {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::DUPLICATE => return Err(ImageError::Duplicate(image.id)),
            Err(e) => return Err(ImageError::registry(e)),
        }
        match upload {
            None => Ok(image),
            Some((body, store, size)) => self.run_upload(image.id, body, store, size.into()).await,
        }
    }

    /// Changes image `id`'s metadata and, with `data`, fills it; data only goes to a
    /// queued image. Everything is checked before anything is changed.
    pub async fn update(&self, who: &Caller, id: ImageId, changes: Vec<Change>, data: Option<Data>) -> Result<Image> {
        match data {
            None => Ok(self.update_metadata(who, id, changes, None).await?.value),
            Some(data) => self.fill(who, id, changes, data, Formats::Optional, None).await,
        }
    }

    async fn fill(
        &self,
        who: &Caller,
        id: ImageId,
        changes: Vec<Change>,
        data: Data,
        formats: Formats,
        md5: Option<String>,
    ) -> Result<Image> {
        let inner = &self.inner;
        let record = inner.visible(who, id, Deleted::Hide).await?;
        let queued = |image: &Image| {
            if image.status == Status::Queued {
                Ok(())
            } else {
                Err(ImageError::WrongStatus { image: id, status: image.status.clone(), wanted: Operation::Upload })
            }
        };
        if !changes.is_empty() {
            inner.check(who, Action::ModifyImage, Target::image(&record.value))?;
        }
        let changes = inner.admit(who, Some(&record.value), changes, Mode::Client)?;
        queued(&record.value)?;
        let mut preview = record.value.clone();
        inner.apply(&mut preview, &changes)?;
        if formats == Formats::Required {
            formats_set(&preview, "uploading")?;
        }
        if let (Some(md5), Some(recorded)) = (&md5, &preview.checksum) {
            if md5 != recorded {
                return Err(ImageError::Invalid {
                    field: "checksum",
                    reason: format!("the image's checksum is {recorded}, but the data is declared to have MD5 {md5}"),
                });
            }
        }
        // A reservation's size is the size its data must have.
        let declared = (preview.size > 0).then_some(preview.size);
        inner.check_sizes(None, declared, false)?;
        let prepared = inner.prepare(who, Some(&record.value), data, declared).await?;
        let registered = match &prepared {
            Prepared::Registered { location, size } => Some((location.clone(), *size)),
            Prepared::Upload { .. } => None,
        };
        // The caller was decided on above; a conflict re-reads and re-applies, but does not
        // ask the policy again.
        let mut record = record;
        let record = loop {
            let mut image = record.value.clone();
            queued(&image)?;
            inner.apply(&mut image, &changes)?;
            if let Some((location, size)) = &registered {
                register(&mut image, location.clone(), *size)?;
            }
            match inner.write(&image, record.revision).await? {
                Some(revision) => break Revisioned { revision, value: image },
                None => {
                    record = inner.read(id).await?;
                    if record.value.is_deleted() {
                        return Err(ImageError::NotFound(id));
                    }
                }
            }
        };
        match prepared {
            Prepared::Registered { .. } => Ok(record.value),
            Prepared::Upload { body, store, size } => self.run_upload(id, body, store, Declared { size, md5 }).await,
        }
    }

    /// Imports data into queued image `id` from `uri` (v2's web-download): the URL is
    /// checked and opened as a copy-from source (`[import_filtering_opts]` apply to every
    /// hop), the image becomes `importing`, and the answer comes then; the bytes flow in
    /// the background through the upload's life cycle (lease, hashes, commit). A failure
    /// leaves the image `queued` with `os_glance_failed_import` naming the store. With
    /// several stores in `to`, the data goes into the first and is copied from there into
    /// the others (see [`ImportTo`]).
    pub async fn import_from_url(&self, who: &Caller, id: ImageId, uri: String, to: ImportTo) -> Result<Image> {
        let inner = &self.inner;
        let record = inner.visible(who, id, Deleted::Hide).await?;
        let image = record.value;
        if image.status != Status::Queued {
            return Err(ImageError::WrongStatus { image: id, status: image.status, wanted: Operation::Import });
        }
        formats_set(&image, "importing")?;
        let targets = inner.targets(&to, &image, false)?;
        let declared = (image.size > 0).then_some(image.size);
        let data = Data { source: Source::CopyFrom(uri), store: Some(targets.first.names[0].clone()) };
        let Prepared::Upload { body, size, .. } = inner.prepare(who, Some(&image), data, declared).await? else {
            return Err(ImageError::Internal("a copy-from source was prepared as a location".into()));
        };
        self.run_import(id, body, targets, size, (Status::Queued, Status::Importing)).await
    }

    /// Copies active image `id`'s data into more stores (v2's copy-image): the image stays
    /// `active` and serves on while the copies are made in the background, one store after
    /// another, under a lease as an upload's; `os_glance_importing_to_stores` lists the
    /// stores still to do, and `os_glance_failed_import` those that failed. Answers once
    /// the copy has begun. A copy whose server is gone (its lease passed) is ended first.
    pub async fn copy_image(&self, who: &Caller, id: ImageId, to: ImportTo) -> Result<Image> {
        let inner = &self.inner;
        let mut image = inner.visible(who, id, Deleted::Hide).await?.value;
        inner.check(who, Action::CopyImage, Target::image(&image))?;
        if let Some(upload) = &image.upload {
            if !upload.expired(now()) {
                return Err(copy_running(id, &upload.store));
            }
            self.end_upload(id, false).await;
            image = inner.visible(who, id, Deleted::Hide).await?.value;
        }
        if image.status != Status::Active {
            return Err(ImageError::WrongStatus { image: id, status: image.status, wanted: Operation::Copy });
        }
        let targets = inner.targets(&to, &image, true)?;
        let Some((from, at)) = inner.readable_copy(&image) else {
            return Err(ImageError::Invalid {
                field: "method",
                reason: format!("image {id} has no data in a store this server reads, so nothing to copy"),
            });
        };
        let name = from.names[0].clone();
        let opened = tokio::task::spawn_blocking(move || from.store.get(at.expose(), 0, None)).await.map_err(joined)?;
        let reader = opened.map_err(|e| ImageError::store(&name, e))?;
        let body: ByteStream = Box::pin(Download::start(reader, Some(image.size)));
        self.run_import(id, body, targets, Some(image.size), (Status::Active, Status::Active)).await
    }

    /// Runs an import (or a copy) in the background through `steps`; answers once the
    /// image is in its second status, or with why it never got there.
    async fn run_import(
        &self,
        id: ImageId,
        body: ByteStream,
        targets: Targets,
        size: Option<u64>,
        steps: (Status, Status),
    ) -> Result<Image> {
        let (started_tx, started) = oneshot::channel();
        let job = tokio::spawn(self.inner.clone().upload(id, body, targets, size.into(), steps, Some(started_tx)));
        match started.await {
            Ok(importing) => Ok(importing),
            // The import ended before it began (the image changed, a registry failure).
            Err(_) => Err(job
                .await
                .map_err(joined)?
                .err()
                .unwrap_or_else(|| ImageError::Internal("the import ended without starting".into()))),
        }
    }

    /// Stages data for a glance-direct import of queued image `id` (v2's `PUT /stage`):
    /// the bytes stream into the staging store through the upload's life cycle with the
    /// image `uploading`, and stay there, the image still `uploading`, until
    /// [`Images::import_staged`]. A failure leaves the image `queued` and nothing staged.
    pub async fn stage(&self, who: &Caller, id: ImageId, data: Data, checksum: Option<String>) -> Result<Image> {
        let inner = &self.inner;
        let staging = inner.staging_store()?;
        let record = inner.visible(who, id, Deleted::Hide).await?;
        if record.value.status != Status::Queued {
            return Err(ImageError::WrongStatus { image: id, status: record.value.status, wanted: Operation::Stage });
        }
        let Source::Stream { body, length } = data.source else {
            return Err(ImageError::Invalid {
                field: "data",
                reason: "data is staged from the request's body only".into(),
            });
        };
        inner.check(who, Action::UploadImage, Target::image(&record.value))?;
        let size = inner.check_sizes(length, None, false)?;
        let store = inner
            .stores
            .named(&staging)
            .cloned()
            .ok_or_else(|| ImageError::UnknownStore { name: staging.clone(), available: inner.stores.describe() })?;
        let steps = (Status::Queued, Status::Uploading);
        let declared = Declared { size, md5: checksum };
        tokio::spawn(inner.clone().upload(id, body, store.into(), declared, steps, None)).await.map_err(joined)?
    }

    /// Imports the staged data of image `id` into the stores of `to` (v2's glance-direct):
    /// like [`Images::import_from_url`], answered once `importing`, the copy running on;
    /// on success the staged copy is removed, on failure the image is `uploading` again
    /// with its staged data, ready for another try.
    pub async fn import_staged(&self, who: &Caller, id: ImageId, to: ImportTo) -> Result<Image> {
        let inner = &self.inner;
        let staging = inner.staging_store()?;
        let image = inner.visible(who, id, Deleted::Hide).await?.value;
        inner.check(who, Action::UploadImage, Target::image(&image))?;
        let staged = match image.staged() {
            Some(s) if image.status == Status::Uploading && image.upload.is_none() => s.clone(),
            _ => return Err(ImageError::WrongStatus { image: id, status: image.status, wanted: Operation::Import }),
        };
        formats_set(&image, "importing")?;
        let targets = inner.targets(&to, &image, false)?;
        let source = inner
            .stores
            .named(&staging)
            .cloned()
            .ok_or_else(|| ImageError::UnknownStore { name: staging.clone(), available: inner.stores.describe() })?;
        let (at, from) = (staged.url.clone(), source.clone());
        let opened = tokio::task::spawn_blocking(move || {
            let size = from.store.size(at.expose())?;
            from.store.get(at.expose(), 0, None).map(|r| (r, size))
        })
        .await
        .map_err(joined)?;
        let (reader, size) = opened.map_err(|e| ImageError::store(&staging, e))?;
        let body: ByteStream = Box::pin(Download::start(reader, Some(size)));
        self.run_import(id, body, targets, Some(size), (Status::Uploading, Status::Importing)).await
    }

    /// Fills queued image `id` with `data` (v2's `PUT /file`): its disk and container
    /// formats must be set first, as v2 has no other way to say what the data is. A
    /// `checksum` (the MD5 the client says the data has, v2's `Content-MD5`) goes with the
    /// data, not into the record: data with another MD5 is refused and nothing is kept.
    pub async fn upload(&self, who: &Caller, id: ImageId, data: Data, checksum: Option<String>) -> Result<Image> {
        self.fill(who, id, Vec::new(), data, Formats::Required, checksum).await
    }

    /// Runs an upload in a task of its own: a request dropped midway cannot leave it
    /// half-done.
    async fn run_upload(
        &self,
        id: ImageId,
        body: ByteStream,
        store: Arc<StoreEntry>,
        declared: Declared,
    ) -> Result<Image> {
        let inner = self.inner.clone();
        tokio::spawn(inner.upload(id, body, store.into(), declared, (Status::Queued, Status::Saving), None))
            .await
            .map_err(joined)?
    }

    /// Removes image `id`'s copy in `store` (v2's `DELETE /v2/stores/{store}/{id}`): the
    /// location leaves the record first, then its data leaves the store, so no reader is
    /// ever sent to data that is gone. An image keeps at least one copy: deleting the last
    /// one is refused; delete the image instead.
    pub async fn remove_from_store(&self, who: &Caller, id: ImageId, store: &str) -> Result<Image> {
        let inner = &self.inner;
        let entry = inner
            .stores
            .named(store)
            .cloned()
            .ok_or_else(|| ImageError::UnknownStore { name: store.to_owned(), available: inner.stores.describe() })?;
        let mut removed = None;
        let record = inner
            .modify(who, id, Deleted::Hide, None, |image| {
                inner.check(who, Action::DeleteImageLocation, Target::image(image))?;
                if image.status != Status::Active {
                    return Err(ImageError::WrongStatus {
                        image: id,
                        status: image.status.clone(),
                        wanted: Operation::RemoveCopy,
                    });
                }
                let held = |l: &ImageLocation| inner.stores.holding(l).is_some_and(|s| Arc::ptr_eq(s, &entry));
                let Some(at) = image.locations.iter().position(held) else {
                    return Err(ImageError::Invalid {
                        field: "store",
                        reason: format!("image {id} has no data in store {store}"),
                    });
                };
                if image.locations.len() == 1 {
                    return Err(ImageError::Conflict(format!(
                        "store {store} holds the only copy of image {id}'s data; delete the image instead"
                    )));
                }
                removed = Some(image.locations.remove(at));
                image.updated_at = now();
                Ok(true)
            })
            .await?;
        if let Some(location) = removed.filter(ImageLocation::owned) {
            inner.remove_data(&entry, &location.url).await;
        }
        Ok(record.value)
    }

    /// Image `id`'s data, or `range` of it, with the image: active images, and
    /// deactivated ones for admins.
    pub async fn download(&self, who: &Caller, id: ImageId, range: Option<Range>) -> Result<(Image, Download)> {
        let inner = &self.inner;
        let image = inner.visible(who, id, Deleted::Hide).await?.value;
        inner.check(who, Action::DownloadImage, Target::image(&image))?;
        if image.status == Status::Deactivated && !who.is_admin {
            return Err(ImageError::Forbidden { image: Some(id), action: Action::DownloadImage });
        }
        let readable = matches!(image.status, Status::Active | Status::Deactivated);
        let Some(location) = image.location().filter(|_| readable).cloned() else {
            return Err(ImageError::NoData { image: id, status: image.status.clone() });
        };
        let range = range.unwrap_or_default();
        // A range of an empty image is never satisfiable (RFC 9110): no byte is there.
        if range != Range::default() && (range.offset >= image.size || image.size == 0) {
            return Err(ImageError::RangeNotSatisfiable { size: image.size });
        }
        let left = image.size - range.offset.min(image.size);
        let length = range.length.map_or(left, |l| l.min(left));
        let range = Range { offset: range.offset, length: Some(length) };
        let (fetch, opened) = (inner.fetch.clone(), image.clone());
        let reader =
            tokio::task::spawn_blocking(move || fetch.open(&opened, &location, range)).await.map_err(joined)??;
        Ok((image, Download::start(reader, Some(length))))
    }

    /// Deletes image `id`: its data (only the data Tank wrote), then the record, so a
    /// failure never leaves data without an image pointing at it. With `delayed_delete`
    /// the data stays for the scrubber. A protected image is not deleted. An upload in
    /// progress is stopped: its server removes its partial data.
    pub async fn delete(&self, who: &Caller, id: ImageId) -> Result<()> {
        let inner = &self.inner;
        for _ in 0..16 {
            let record = inner.visible(who, id, Deleted::Hide).await?;
            let mut image = record.value;
            inner.check(who, Action::DeleteImage, Target::image(&image))?;
            if image.protected {
                return Err(ImageError::Protected(id));
            }
            if in_flight(&image) {
                // Its partial data is not a location yet: the upload's server removes it
                // when it sees the delete (at once here, within a third of its lease
                // elsewhere, or through recovery when that server is gone). The lease
                // stays with the record until then.
                image.set_status(Status::PendingDelete, now())?;
                if inner.write(&image, record.revision).await?.is_none() {
                    continue; // It changed (committed, say): delete what it is now.
                }
                self.stop_upload(id, Stop::Deleted);
                return Ok(());
            }
            let owned: Vec<ImageLocation> = image.locations.iter().filter(|l| l.owned()).cloned().collect();
            let status = image.status.clone();
            if owned.is_empty() {
                // Nothing of Tank's to remove (queued, killed, registered by URL). Only from
                // the status read: an upload that started since is deleted as above.
                match inner.move_status(id, Status::Deleted, |s| *s == status).await? {
                    true => return Ok(()),
                    false => continue,
                }
            }
            if inner.settings.delayed_delete {
                // The data stays for scrub_time; the scrubber removes it.
                match inner.move_status(id, Status::PendingDelete, |s| *s == status).await? {
                    true => return Ok(()),
                    false => continue,
                }
            }
            if status == Status::Uploading {
                // Staged data: first take the image out of an import's reach, or an import
                // starting now could make it active while its staged copy goes.
                if !inner.move_status(id, Status::PendingDelete, |s| *s == status).await? {
                    continue;
                }
            }
            for location in &owned {
                let store = inner.stores.holding(location).cloned().ok_or_else(|| {
                    tracing::error!(image = %id, scheme = location.url.scheme(), "no loaded store holds this image's data");
                    ImageError::StoreUnavailable(id)
                })?;
                let (entry, at) = (store.clone(), location.url.clone());
                match tokio::task::spawn_blocking(move || entry.store.delete(at.expose())).await.map_err(joined)? {
                    Ok(()) => {}
                    Err(e) if e.kind == ErrorKind::NOT_FOUND => {
                        tracing::warn!(image = %id, "image data was already gone from its store");
                    }
                    Err(e) => return Err(ImageError::store(&store.names[0], e)),
                }
            }
            // The data is gone: the record must follow even if another request changed it
            // since.
            inner.move_status(id, Status::Deleted, |s| *s != Status::Deleted).await?;
            return Ok(());
        }
        Err(ImageError::Conflict(format!("image {id} keeps changing under this request; retry")))
    }

    /// Ends every upload that lost its server: at start (`at_start`), this server's own
    /// (none of them can still run) and any whose lease has passed; later, only those
    /// whose lease has passed. Their partial data is removed, and they become `killed`
    /// (or `deleted`, if they were deleted meanwhile). Answers how many were ended.
    pub async fn recover(&self, at_start: bool) -> Result<usize> {
        let inner = &self.inner;
        let statuses = [Status::Saving, Status::Uploading, Status::Importing, Status::PendingDelete];
        let stuck = match inner.registry(move |r| r.with_status(&statuses)).await? {
            Ok(s) => s,
            Err(e) => return Err(ImageError::registry(e)),
        };
        let at = now();
        let mut ended = 0;
        for image in stuck {
            if image.upload.is_none() && !in_flight(&image) {
                continue; // A delayed delete: the scrubber's.
            }
            if image.upload.as_ref().is_some_and(|u| !self.dead(u, at_start, at)) {
                continue;
            }
            ended += usize::from(self.end_upload(image.id, at_start).await);
        }
        Ok(ended)
    }

    /// Whether no server answers for `upload` any more: its lease passed, or (at start)
    /// it is this server's own, which cannot still run.
    fn dead(&self, upload: &Upload, at_start: bool, at: Timestamp) -> bool {
        (at_start && upload.node == self.inner.settings.node_id) || upload.expired(at)
    }

    /// Ends image `id`'s dead upload, whether it did. The upload is first taken over: a
    /// compare-and-swap, decided on the record as it is now, that gives this server the
    /// lease (so an upload renewed meanwhile is left alone, and its server, if it still
    /// runs, sees the lease gone and stops). Then its partial data is removed, and only
    /// then does the image become `killed` (or `deleted`, when it was deleted during the
    /// upload). A step that fails leaves the image under this server's lease, for the
    /// next pass once that lease has passed.
    async fn end_upload(&self, id: ImageId, at_start: bool) -> bool {
        let inner = &self.inner;
        let token = uuid::Uuid::new_v4().to_string();
        // 1. Take it over.
        let store = loop {
            let Ok(record) = inner.read(id).await else { return false };
            let mut image = record.value;
            if !(in_flight(&image) || image.status == Status::PendingDelete) {
                return false;
            }
            let store = match &image.upload {
                Some(u) if !self.dead(u, at_start, now()) => return false,
                Some(u) => Some(u.store.clone()),
                None if in_flight(&image) => None,
                None => return false,
            };
            if let Some(store) = &store {
                image.upload = Some(Upload {
                    node: inner.settings.node_id.clone(),
                    token: token.clone(),
                    store: store.clone(),
                    lease_until: later(now(), inner.settings.upload_lease),
                });
                match inner.write(&image, record.revision).await {
                    Ok(Some(_)) => {}
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::error!(image = %id, "could not take over an interrupted upload: {e}");
                        return false;
                    }
                }
            }
            break store;
        };
        // 2. Remove what it left in its store.
        if let Some(store_name) = &store {
            let Some(entry) = inner.stores.named(store_name).cloned() else {
                tracing::warn!(image = %id, store = %store_name, "the store of an interrupted upload is not loaded here; its partial data stays");
                return false;
            };
            match tokio::task::spawn_blocking(move || entry.store.discard(id)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(image = %id, store = %store_name, "could not remove partial data: {}", e.message);
                    return false;
                }
                Err(e) => {
                    tracing::error!(image = %id, "could not remove partial data: {e}");
                    return false;
                }
            }
        } else {
            // Saving without a lease (a record of an old host without its store): no
            // server answers for it, and no store is named to clean.
            tracing::warn!(image = %id, "an upload without a lease is ended");
        }
        // 3. End it.
        let Some(to) = inner.end_failed(id, store.as_ref().map(|_| token.as_str()), &[]).await else { return false };
        tracing::warn!(image = %id, status = %to, "an interrupted upload was ended and its partial data removed");
        true
    }

    /// Removes the data of every `pending_delete` image deleted at least `scrub_time` ago
    /// (delayed delete's scrubber). Only data Tank wrote is removed; data registered by URL
    /// is someone else's. An image deleted during its upload waits until the upload ends.
    pub async fn scrub_once(&self, scrub_time: std::time::Duration) -> Result<ScrubPass> {
        let inner = &self.inner;
        let queued = match inner.registry(|r| r.with_status(&[Status::PendingDelete])).await? {
            Ok(q) => q,
            Err(e) => return Err(ImageError::registry(e)),
        };
        let due_before = now().unix_micros() - i64::try_from(scrub_time.as_micros()).unwrap_or(i64::MAX);
        let mut pass = ScrubPass::default();
        for image in queued {
            let deleted_at = image.deleted_at.map_or(i64::MIN, |t| t.unix_micros());
            if deleted_at > due_before || image.upload.is_some() {
                // An upload's partial data is recovery's to remove, once it has ended.
                pass.waiting += 1;
                continue;
            }
            let mut failed = false;
            for location in image.locations.iter().filter(|l| l.owned()) {
                let Some(store) = inner.stores.holding(location).cloned() else {
                    tracing::error!(image = %image.id, "the store holding this image's data is not loaded; it stays queued");
                    failed = true;
                    continue;
                };
                let (entry, at) = (store.clone(), location.url.clone());
                match tokio::task::spawn_blocking(move || entry.store.delete(at.expose())).await.map_err(joined)? {
                    Ok(()) => {}
                    Err(e) if e.kind == ErrorKind::NOT_FOUND => {}
                    Err(e) => {
                        tracing::error!(image = %image.id, kind = %e.kind, "removing the data failed; it stays queued: {}", e.message);
                        failed = true;
                    }
                }
            }
            if failed {
                pass.failed += 1;
                continue;
            }
            // The data is gone: the record follows, whatever else changed it meanwhile.
            inner.move_status(image.id, Status::Deleted, |s| *s == Status::PendingDelete).await?;
            tracing::info!(image = %image.id, "scrubbed the data of a deleted image");
            pass.scrubbed += 1;
        }
        Ok(pass)
    }

    /// The record of `id` as stored, for operators' tools (no policy: not for clients).
    pub async fn record(&self, id: ImageId) -> Result<Revisioned<Image>> {
        self.inner.read(id).await
    }
}
