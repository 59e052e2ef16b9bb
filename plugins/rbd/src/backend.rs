//! The rbd store: one RBD image per Tank image, named by the image's id, in the configured
//! pool; written chunk by chunk at increasing offsets, then frozen in a protected snapshot
//! `snap` that other services clone from, as Glance does.
//!
//! The host calls the store from blocking threads, so each call simply waits for librbd:
//! on its synchronous calls, and on the completions of the few chunk reads and writes kept
//! in flight; librados' own timeouts (set from `timeout`) bound every wait.
//! The cluster connection is made on first use and kept: a store whose cluster is down
//! opens, answers each request with UNAVAILABLE after `timeout`, and connects once the
//! cluster is back.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
};

use tank_sdk::{Error, ErrorKind, OpenContext, Reader, Result, Store, Writer};

use crate::{
    config::{valid_name, Config, Settings},
    error::What,
    ffi::{self, Aio, Api, Cluster, Errno, Image, IoCtx},
    location::{Location, SNAPSHOT},
};

/// The features of the images the store creates: what `rbd create` gives by default.
/// Layering lets the snapshot be protected and cloned; the object map (which needs the
/// exclusive lock) makes trimming and removing a large, partly written image fast.
const FEATURES: u64 = ffi::FEATURE_LAYERING | 4 | 8 | 16 | 32;

/// Chunks of one upload on their way to the OSDs at once, while the next one gathers: an
/// upload holds at most `WRITES_IN_FLIGHT + 1` chunks. Writing while the host receives and
/// hashes the next chunk is what brings an upload close to `rbd import`'s speed.
const WRITES_IN_FLIGHT: usize = 2;

/// Chunks a download reads ahead of the one the host is taking: a download holds at most
/// `READS_AHEAD + 1` chunks.
const READS_AHEAD: usize = 1;

/// The most an upload of unknown size grows its image by at once: it doubles until then,
/// so a large image is resized a few dozen times, not once per chunk.
const MAX_GROWTH: u64 = 1 << 30;

/// Images in a pool of a Ceph cluster.
pub struct RbdStore {
    /// The store's name in the host's configuration, for messages.
    name: String,
    settings: Settings,
    api: &'static Api,
    /// The connection, made on first use; `None` until one succeeds.
    connection: Mutex<Option<Arc<Connection>>>,
}

/// A connected cluster.
struct Connection {
    cluster: Arc<Cluster>,
    /// Lower case, as locations hold it.
    fsid: String,
}

impl RbdStore {
    fn what(&self, op: impl Into<String>) -> What<'_> {
        What { store: &self.name, op: op.into() }
    }

    /// The kept connection, or a new one (within `timeout`).
    fn connection(&self) -> Result<Arc<Connection>> {
        // Callers wait for one attempt rather than each starting its own against a cluster
        // that is down; every attempt ends within `timeout`.
        let mut slot = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = slot.as_ref() {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(self.connect()?);
        tracing::info!(store = %self.name, fsid = %c.fsid, user = %self.settings.user_name(), "connected to the Ceph cluster");
        *slot = Some(Arc::clone(&c));
        Ok(c)
    }

    fn connect(&self) -> Result<Connection> {
        let s = &self.settings;
        let what = self.what(format!("connecting to the cluster of {} as {}", s.ceph_conf.display(), s.user_name()));
        let cluster = Cluster::create(self.api, s.user.as_deref()).map_err(|e| what.errno(e, ""))?;
        let conf =
            s.ceph_conf.to_str().ok_or_else(|| what.error(ErrorKind::INVALID_CONFIG, "ceph_conf is not UTF-8"))?;
        cluster
            .read_conf(conf)
            .map_err(|e| what.error(ErrorKind::INVALID_CONFIG, format!("reading ceph_conf: {e}")))?;
        if let Some(keyring) = &s.keyring {
            let keyring =
                keyring.to_str().ok_or_else(|| what.error(ErrorKind::INVALID_CONFIG, "keyring is not UTF-8"))?;
            cluster.set("keyring", keyring).map_err(|e| what.errno(e, "setting keyring"))?;
        }
        // librados waits 300 s for the monitors by default, and for OSDs forever.
        let secs = s.timeout.as_secs().to_string();
        for option in ["client_mount_timeout", "rados_mon_op_timeout", "rados_osd_op_timeout"] {
            cluster.set(option, &secs).map_err(|e| what.errno(e, &format!("setting {option}")))?;
        }
        cluster.connect().map_err(|e| {
            let keyring = match &s.keyring {
                Some(k) => format!("the keyring {}", k.display()),
                None => "the keyring ceph_conf names".to_owned(),
            };
            match e.0 {
                110 => what.error(
                    ErrorKind::UNAVAILABLE,
                    format!(
                        "{e}: no monitor answered within {secs} s; check that the cluster is up and that \
                         ceph_conf's mon host is right"
                    ),
                ),
                1 | 13 => what.error(
                    ErrorKind::PERMISSION_DENIED,
                    format!("{e}: the monitors refused the key of {} from {keyring}", s.user_name()),
                ),
                2 => what.error(
                    ErrorKind::PERMISSION_DENIED,
                    format!("{e}: no key for {} was found in {keyring}; set keyring", s.user_name()),
                ),
                _ => what.errno(e, ""),
            }
        })?;
        let fsid = cluster.fsid().map_err(|e| what.errno(e, "reading the fsid"))?;
        Ok(Connection { cluster: Arc::new(cluster), fsid })
    }

    /// An I/O context on `pool`.
    fn ioctx(&self, conn: &Connection, pool: &str) -> Result<IoCtx> {
        conn.cluster.ioctx(pool).map_err(|e| {
            let hint = if e == Errno::ENOENT {
                format!(
                    "the pool does not exist; create it with `ceph osd pool create {pool}` and `rbd pool init {pool}`"
                )
            } else {
                String::new()
            };
            self.what(format!("opening pool {pool}")).errno(e, &hint)
        })
    }

    /// The connection, a context on the location's pool and the parsed location; refuses a
    /// location of another cluster.
    fn locate(&self, location: &str) -> Result<(IoCtx, Location, String)> {
        let loc = Location::parse(location)
            .map_err(|e| Error::new(e.kind, format!("store '{}': {}", self.name, e.message)))?;
        let conn = self.connection()?;
        if let Some(fsid) = &loc.fsid {
            if *fsid != conn.fsid {
                return Err(Error::invalid_input(format!(
                    "store '{}': the location is on the Ceph cluster {fsid}, but the store is connected to \
                     cluster {} (ceph_conf {}); it cannot reach that image",
                    self.name,
                    conn.fsid,
                    self.settings.ceph_conf.display()
                )));
            }
        }
        let pool = loc.pool.clone().unwrap_or_else(|| self.settings.pool.clone());
        let io = self.ioctx(&conn, &pool)?;
        let path = format!("{pool}/{}", loc.image);
        Ok((io, loc, path))
    }

    /// Opens the location's image at its snapshot (or head) for reading.
    fn open_location(&self, location: &str, verb: &str) -> Result<(Image, String)> {
        let (io, loc, path) = self.locate(location)?;
        let shown = match &loc.snapshot {
            Some(snap) => format!("{path}@{snap}"),
            None => path,
        };
        let image = io.open(&loc.image, loc.snapshot.as_deref()).map_err(|(_, e)| {
            let hint = if e == Errno::ENOENT { "no such image or snapshot" } else { "" };
            self.what(format!("{verb} {shown}")).errno(e, hint)
        })?;
        Ok((image, shown))
    }
}

impl Store for RbdStore {
    fn open(ctx: &OpenContext) -> Result<Self> {
        let settings = ctx.config::<Config>()?.check(ctx)?;
        let api = ffi::api().map_err(|e| Error::invalid_config(format!("store '{}': {e}", ctx.name)))?;
        Ok(RbdStore { name: ctx.name.clone(), settings, api, connection: Mutex::new(None) })
    }

    fn add(&self, image_id: &str, size: Option<u64>) -> Result<Box<dyn Writer>> {
        if !valid_name(image_id) {
            return Err(Error::invalid_input(format!(
                "store '{}': {image_id:?} cannot name an RBD image (letters, digits, '.', '_' and '-')",
                self.name
            )));
        }
        let conn = self.connection()?;
        let s = &self.settings;
        let io = self.ioctx(&conn, &s.pool)?;
        let path = format!("{}/{image_id}", s.pool);
        // An upload of unknown size starts empty and grows as data arrives.
        let allocated = size.unwrap_or(0);
        io.create_image(image_id, allocated, FEATURES, s.order).map_err(|e| {
            let hint = if e == Errno::EEXIST { "an RBD image of that name exists" } else { "" };
            self.what(format!("creating {path}")).errno(e, hint)
        })?;
        let image = match io.open(image_id, None) {
            Ok(image) => image,
            Err((io, e)) => {
                let _ = io.remove(image_id);
                return Err(self.what(format!("opening {path}")).errno(e, ""));
            }
        };
        Ok(Box::new(RbdWriter {
            store: self.name.clone(),
            location: Location::format(&conn.fsid, &s.pool, image_id),
            id: image_id.to_owned(),
            path,
            pending: VecDeque::new(),
            image: Some(image),
            buf: Vec::with_capacity(s.chunk_size as usize),
            spare: Vec::new(),
            chunk: s.chunk_size,
            written: 0,
            allocated,
        }))
    }

    fn get(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Box<dyn Reader>> {
        let (image, shown) = self.open_location(location, "opening")?;
        let size = image.size().map_err(|e| self.what(format!("reading the size of {shown}")).errno(e, ""))?;
        let start = offset.min(size);
        let end = length.map_or(size, |l| start.saturating_add(l).min(size));
        Ok(Box::new(RbdReader {
            what: format!("reading {shown}"),
            store: self.name.clone(),
            pending: VecDeque::new(),
            image,
            pos: start,
            end,
            buf: Vec::new(),
            taken: 0,
            spare: Vec::new(),
            chunk: self.settings.chunk_size,
        }))
    }

    fn size(&self, location: &str) -> Result<u64> {
        let (image, shown) = self.open_location(location, "opening")?;
        image.size().map_err(|e| self.what(format!("reading the size of {shown}")).errno(e, ""))
    }

    fn delete(&self, location: &str) -> Result<()> {
        let (io, loc, path) = self.locate(location)?;
        let what = self.what(format!("deleting {path}"));
        let image = io
            .open(&loc.image, None)
            .map_err(|(_, e)| what.errno(e, if e == Errno::ENOENT { "no such image" } else { "" }))?;
        if let Some(snap) = &loc.snapshot {
            match image.snap_unprotect(snap) {
                // EINVAL: not protected; ENOENT: already gone. Either way, on to removing.
                Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => {}
                Err(Errno::EBUSY) => {
                    return Err(what.error(
                        ErrorKind::CONFLICT,
                        format!(
                            "the snapshot {path}@{snap} is in use: clones of it exist (volumes or instances \
                             made from the image); flatten or remove them first"
                        ),
                    ))
                }
                Err(e) => return Err(what.errno(e, &format!("unprotecting {path}@{snap}"))),
            }
            match image.snap_remove(snap) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(what.errno(e, &format!("removing the snapshot {path}@{snap}"))),
            }
        }
        let io = image.close().map_err(|(_, e)| what.errno(e, "closing the image"))?;
        io.remove(&loc.image).map_err(|e| {
            let hint = match e {
                Errno::ENOENT => "no such image",
                Errno::ENOTEMPTY => "the image has snapshots Tank did not make; remove them first",
                Errno::EBUSY => "the image is open elsewhere (it has watchers); try again once it is closed",
                _ => "",
            };
            what.errno(e, hint)
        })
    }

    fn discard(&self, image_id: &str) -> Result<()> {
        if !valid_name(image_id) {
            // No image can have that name, so there is nothing to remove.
            return Ok(());
        }
        let conn = self.connection()?;
        let s = &self.settings;
        let io = self.ioctx(&conn, &s.pool)?;
        let path = format!("{}/{image_id}", s.pool);
        let what = self.what(format!("discarding the unfinished {path}"));
        let image = match io.open(image_id, None) {
            Ok(image) => image,
            Err((_, Errno::ENOENT)) => return Ok(()),
            Err((_, e)) => return Err(what.errno(e, "")),
        };
        // A protected snapshot is what `finish` makes last: the image is finished, and
        // belongs to its location.
        match image.snap_is_protected(SNAPSHOT) {
            Ok(true) => return Ok(()),
            Ok(false) => image.snap_remove(SNAPSHOT).map_err(|e| what.errno(e, "removing its snapshot"))?,
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(what.errno(e, "")),
        }
        let io = image.close().map_err(|(_, e)| what.errno(e, "closing the image"))?;
        match io.remove(image_id) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(what.errno(e, "")),
        }
    }

    fn check(&self) -> Result<()> {
        let conn = self.connection()?;
        self.ioctx(&conn, &self.settings.pool).map(drop)
    }
}

/// One upload: the data is gathered into chunks and written at increasing offsets, a few
/// chunks in flight at once; the image grows ahead of the data when its size was not
/// declared (or was too small), and is trimmed to what arrived at `finish`.
struct RbdWriter {
    store: String,
    /// The location `finish` returns.
    location: String,
    id: String,
    /// `pool/id`, for messages.
    path: String,
    /// Writes in flight, oldest first, with the offset of each. Declared before
    /// `image`, so that even a plain drop waits for them before the image closes.
    pending: VecDeque<(Aio, u64)>,
    /// `None` once finished or removed.
    image: Option<Image>,
    /// The chunk being gathered.
    buf: Vec<u8>,
    /// Buffers of finished writes, for the next chunks.
    spare: Vec<Vec<u8>>,
    chunk: u64,
    /// Bytes written to the image.
    written: u64,
    /// The image's size.
    allocated: u64,
}

impl RbdWriter {
    fn what(&self, op: &str) -> What<'_> {
        What { store: &self.store, op: format!("{op} {}", self.path) }
    }

    fn image(&self) -> Result<&Image> {
        self.image.as_ref().ok_or_else(|| Error::backend("the writer was already finished or aborted"))
    }

    /// Waits for the oldest write in flight.
    fn wait_oldest(&mut self) -> Result<()> {
        let Some((write, offset)) = self.pending.pop_front() else { return Ok(()) };
        let (mut buf, result) = write.wait();
        let len = buf.len();
        buf.clear();
        self.spare.push(buf);
        result.map(drop).map_err(|e| self.what("writing").errno(e, &format!("{len} bytes at offset {offset}")))
    }

    /// Waits for every write in flight.
    fn wait_all(&mut self) -> Result<()> {
        while !self.pending.is_empty() {
            self.wait_oldest()?;
        }
        Ok(())
    }

    /// Starts writing the gathered chunk at the end of what is written.
    fn write_chunk(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let end = self.written + self.buf.len() as u64;
        if end > self.allocated {
            // The resize must not race the writes in flight.
            self.wait_all()?;
            let step = self.allocated.clamp(self.chunk, MAX_GROWTH);
            let grown = end.max(self.allocated + step).next_multiple_of(self.chunk);
            self.image()?.resize(grown).map_err(|e| self.what("growing").errno(e, ""))?;
            self.allocated = grown;
        }
        if self.pending.len() >= WRITES_IN_FLIGHT {
            self.wait_oldest()?;
        }
        let next = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(self.chunk as usize));
        let data = std::mem::replace(&mut self.buf, next);
        match self.image()?.aio_write(self.written, data) {
            Ok(write) => self.pending.push_back((write, self.written)),
            Err((_, e)) => return Err(self.what("writing").errno(e, "")),
        }
        self.written = end;
        Ok(())
    }

    /// Removes the partial image: its snapshot (if `finish` got that far), then the image.
    fn remove(&mut self) -> Result<()> {
        // The writes in flight end before the image goes; their errors no longer matter.
        while !self.pending.is_empty() {
            let _ = self.wait_oldest();
        }
        let Some(image) = self.image.take() else { return Ok(()) };
        let _ = image.snap_unprotect(SNAPSHOT);
        match image.snap_remove(SNAPSHOT) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(self.what("removing the unfinished").errno(e, "removing its snapshot")),
        }
        let io = match image.close() {
            Ok(io) | Err((io, _)) => io,
        };
        io.remove(&self.id).map_err(|e| self.what("removing the unfinished").errno(e, ""))
    }
}

impl Writer for RbdWriter {
    fn write(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let room = self.chunk as usize - self.buf.len();
            let (now, later) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(now);
            data = later;
            if self.buf.len() as u64 == self.chunk {
                self.write_chunk()?;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<String> {
        self.write_chunk()?;
        self.wait_all()?;
        let image = self.image()?;
        if self.allocated != self.written {
            image.resize(self.written).map_err(|e| self.what("trimming").errno(e, ""))?;
        }
        image.flush().map_err(|e| self.what("flushing").errno(e, ""))?;
        image.snap_create(SNAPSHOT).map_err(|e| self.what("snapshotting").errno(e, ""))?;
        image.snap_protect(SNAPSHOT).map_err(|e| self.what("protecting the snapshot of").errno(e, ""))?;
        let image = self.image.take().expect("checked above");
        // The data and its snapshot are on the OSDs: a failed close loses nothing.
        if let Err((_, e)) = image.close() {
            tracing::warn!(store = %self.store, "closing {} after writing it failed: {e}", self.path);
        }
        Ok(std::mem::take(&mut self.location))
    }

    fn abort(mut self: Box<Self>) -> Result<()> {
        self.remove()
    }
}

impl Drop for RbdWriter {
    fn drop(&mut self) {
        // A writer dropped unfinished (or whose finish failed) leaves nothing behind.
        if let Err(e) = self.remove() {
            tracing::warn!(store = %self.store, "removing an unfinished image failed: {}", e.message);
        }
    }
}

/// One download: chunks read from the image (at its snapshot), the next ones already on
/// their way while the host takes the current one.
struct RbdReader {
    store: String,
    /// "reading images/<id>@snap", for messages.
    what: String,
    /// The reads ahead, oldest first, with their offsets. Declared before `image`, so that
    /// they end before the image closes.
    pending: VecDeque<(Aio, u64)>,
    image: Image,
    /// The next byte to ask the image for, and where to stop.
    pos: u64,
    end: u64,
    /// The chunk the host is taking, and how much of it it has taken.
    buf: Vec<u8>,
    taken: usize,
    /// Buffers of chunks the host took, for the next reads.
    spare: Vec<Vec<u8>>,
    chunk: u64,
}

impl RbdReader {
    fn error(&self, e: Errno, offset: u64) -> Error {
        What { store: &self.store, op: self.what.clone() }.errno(e, &format!("at offset {offset}"))
    }

    /// Starts reading the next chunks, up to `READS_AHEAD` in flight.
    fn read_ahead(&mut self) -> Result<()> {
        while self.pos < self.end && self.pending.len() < READS_AHEAD {
            let n = self.chunk.min(self.end - self.pos) as usize;
            let mut buf = self.spare.pop().unwrap_or_default();
            buf.resize(n, 0);
            let read = self.image.aio_read(self.pos, buf).map_err(|(_, e)| self.error(e, self.pos))?;
            self.pending.push_back((read, self.pos));
            self.pos += n as u64;
        }
        Ok(())
    }
}

impl Reader for RbdReader {
    fn read(&mut self, out: &mut [u8]) -> Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.taken == self.buf.len() {
            self.read_ahead()?;
            let Some((read, offset)) = self.pending.pop_front() else { return Ok(0) };
            let (data, got) = read.wait();
            let got = got.map_err(|e| self.error(e, offset))?;
            if got != data.len() {
                return Err(What { store: &self.store, op: self.what.clone() }.error(
                    ErrorKind::BACKEND,
                    format!("librbd read {got} of {} bytes at offset {offset}", data.len()),
                ));
            }
            self.spare.push(std::mem::replace(&mut self.buf, data));
            self.taken = 0;
            self.read_ahead()?;
        }
        let n = out.len().min(self.buf.len() - self.taken);
        out[..n].copy_from_slice(&self.buf[self.taken..self.taken + n]);
        self.taken += n;
        Ok(n)
    }
}
