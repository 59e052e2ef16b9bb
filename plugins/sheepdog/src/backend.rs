//! The sheepdog store: each image is one VDI named by the image id, written object by
//! object and read by walking the inode's block map, all over Sheepdog's own protocol.
//!
//! # How "invisible until finish" and "an abort leaves nothing" work
//! Sheepdog cannot rename a VDI, so an upload writes under its final name from the start.
//! `add` creates the VDI with its size set to the largest a VDI of its object size can
//! have (`MAX_DATA_OBJS << shift`), which marks it as *being written*; `finish` writes
//! the real size into the inode (as `dog vdi resize` does) and only then returns the
//! location. `get`, `size` and `delete` treat a VDI still marked as being written as not
//! found, so nothing is visible before `finish`; `abort` (and a dropped writer, which the
//! sdk aborts) deletes the VDI correctly; `discard` deletes a VDI still marked after a
//! crash and never touches a finished one. Creating the VDI at `add` also reserves the
//! name: a second upload of the same id is refused there (`DUPLICATE`).
//!
//! An image therefore has to be smaller than its VDI's maximum (4 TiB with 4 MiB objects);
//! the writer refuses to reach it.

use tank_sdk::{Error, ErrorKind, OpenContext, Reader, Result, Store, Writer};

use crate::{
    client::{Conn, Pending, Target, Vdi},
    config::Config,
    proto::{inode::MAX_DATA_OBJS, DEFAULT_BLOCK_SIZE_SHIFT},
};

/// The scheme of every location.
const SCHEME: &str = "sheepdog://";

/// `check` (`tank plugins --verify`, start-up) should say "unreachable" quickly, whatever
/// the transfer timeout is.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Images as VDIs in one Sheepdog cluster.
pub struct SheepdogStore {
    target: Target,
    shift: u8,
}

/// The size a VDI being written carries: the largest its object size allows, and never
/// more than 4 TiB (`MAX_DATA_OBJS` objects of 4 MiB), the limit of store policy 0 that
/// a sheep may check whatever the object size.
fn writing_marker(shift: u8) -> u64 {
    MAX_DATA_OBJS << shift.min(DEFAULT_BLOCK_SIZE_SHIFT)
}

/// The number of objects `size` bytes take with objects of `1 << shift` bytes.
fn blocks(size: u64, shift: u8) -> u64 {
    size.div_ceil(1 << shift)
}

/// Whether `name` may be a VDI this store writes or reads: what image ids are made of.
/// Anything else (shell metacharacters, slashes, spaces, NUL) is refused before it reaches
/// the wire; nothing in this store ever runs a command, but a strict name keeps a crafted
/// location from naming something unexpected (Glance's CVE-2014-0162 came from a location
/// pasted into a shell command).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

impl SheepdogStore {
    fn connect(&self) -> Result<Conn> {
        self.target.connect(self.target.timeout)
    }

    /// The location of image `id`.
    fn location(&self, id: &str) -> String {
        format!("{SCHEME}{}:{}/{id}", self.target.address, self.target.port)
    }

    /// The VDI name in `location`, which must name this store's sheep.
    fn parse<'a>(&self, location: &'a str) -> Result<&'a str> {
        let bad = |why: &str| Error::invalid_input(self.target.what(format_args!("refused a location: {why}")));
        let rest = location.strip_prefix(SCHEME).ok_or_else(|| bad("it is not a sheepdog:// location"))?;
        let (authority, name) =
            rest.split_once('/').ok_or_else(|| bad("the form is sheepdog://<host>:<port>/<vdi>"))?;
        let (host, port) =
            authority.rsplit_once(':').ok_or_else(|| bad("the form is sheepdog://<host>:<port>/<vdi>"))?;
        if host != self.target.address || port.parse::<u16>().ok() != Some(self.target.port) {
            // Only this store's own cluster is ever contacted: a location naming another
            // host is not followed.
            return Err(bad("it names another sheepdog cluster than this store's address and port"));
        }
        if !valid_name(name) {
            return Err(bad("the VDI name holds characters no image id has"));
        }
        Ok(name)
    }

    /// The finished VDI at `location`, with a connection to go on with; `NOT_FOUND` when
    /// there is none, or when it is still being written.
    fn open_finished(&self, location: &str) -> Result<(Conn, Vdi)> {
        let name = self.parse(location)?;
        let mut conn = self.connect()?;
        match conn.open(name)? {
            Some(vdi) if vdi.header.vdi_size != writing_marker(vdi.header.block_size_shift) => Ok((conn, vdi)),
            Some(_) => Err(Error::not_found(self.target.what(format_args!("VDI {name} is still being written")))),
            None => Err(Error::not_found(self.target.what(format_args!("there is no VDI {name}")))),
        }
    }
}

impl Store for SheepdogStore {
    fn open(ctx: &OpenContext) -> Result<Self> {
        let config = Config::from_json(ctx.config.clone())
            .map_err(|e| Error::invalid_config(format!("store '{}': {}", ctx.name, e.message)))?;
        let target = Target {
            store: ctx.name.clone(),
            address: config.address.clone(),
            port: config.port(),
            timeout: config.timeout(),
        };
        Ok(SheepdogStore { target, shift: config.shift() })
    }

    fn add(&self, image_id: &str, size: Option<u64>) -> Result<Box<dyn Writer>> {
        if !valid_name(image_id) {
            return Err(Error::invalid_input(self.target.what(format_args!("{image_id:?} cannot name a VDI"))));
        }
        let limit = writing_marker(self.shift);
        if size.is_some_and(|s| s >= limit) {
            return Err(Error::new(
                ErrorKind::STORAGE_FULL,
                self.target.what(format_args!("an image must be smaller than {limit} bytes with this chunk_size")),
            ));
        }
        let mut conn = self.connect()?;
        let (vid, shift) = conn.new_vdi(image_id, limit, self.shift).map_err(|e| match e.kind {
            ErrorKind::DUPLICATE => Error::duplicate(self.target.what(format_args!("VDI {image_id} exists already"))),
            _ => e,
        })?;
        if shift != self.shift {
            // The cluster chose another object size than asked for. Refuse rather than guess:
            // the operator sets chunk_size to one the cluster accepts.
            let e = self.target.what(format_args!(
                "VDI {image_id} got objects of 2^{shift} bytes, not the 2^{} chunk_size asks for",
                self.shift
            ));
            let _ = conn.delete(image_id, vid, 0);
            return Err(Error::backend(e));
        }
        Ok(Box::new(SheepdogWriter {
            store: self.target.clone(),
            location: self.location(image_id),
            name: image_id.to_owned(),
            conn: Some(conn),
            vid,
            shift,
            buf: Vec::with_capacity(1 << shift),
            written: 0,
            objects: 0,
            in_flight: None,
            done: false,
        }))
    }

    fn get(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Box<dyn Reader>> {
        let (conn, vdi) = self.open_finished(location)?;
        let size = vdi.header.vdi_size;
        let start = offset.min(size);
        let end = length.map_or(size, |n| start.saturating_add(n).min(size));
        Ok(Box::new(SheepdogReader {
            conn,
            vid: vdi.vid,
            shift: vdi.header.block_size_shift,
            pos: start,
            end,
            map: None,
        }))
    }

    fn size(&self, location: &str) -> Result<u64> {
        Ok(self.open_finished(location)?.1.header.vdi_size)
    }

    fn delete(&self, location: &str) -> Result<()> {
        let (mut conn, vdi) = self.open_finished(location)?;
        let name = vdi.header.name.clone();
        conn.delete(&name, vdi.vid, blocks(vdi.header.vdi_size, vdi.header.block_size_shift))
    }

    fn discard(&self, image_id: &str) -> Result<()> {
        if !valid_name(image_id) {
            return Ok(());
        }
        let mut conn = self.connect()?;
        match conn.open(image_id)? {
            Some(vdi) if vdi.header.vdi_size == writing_marker(vdi.header.block_size_shift) => {
                tracing::info!(store = %self.target.store, vdi = image_id, "deleting the VDI of an interrupted upload");
                conn.delete(image_id, vdi.vid, MAX_DATA_OBJS)
            }
            // Finished data is never discarded; nothing there is nothing to do.
            _ => Ok(()),
        }
    }

    fn check(&self) -> Result<()> {
        let mut conn = self.target.connect(CHECK_TIMEOUT.min(self.target.timeout))?;
        conn.cluster_default().map(drop)
    }
}

/// One upload: data is gathered one object at a time, and each full object is written
/// with CREATE_AND_WRITE_OBJ and mapped in the inode once the sheep confirmed it, with at
/// most one object in flight. Objects that are all zeros are not
/// written: they stay holes, which read back as zeros.
struct SheepdogWriter {
    store: Target,
    location: String,
    name: String,
    /// `None` once a request failed: the connection's state is unknown then.
    conn: Option<Conn>,
    vid: u32,
    shift: u8,
    /// The bytes of the object at `written - buf.len()`.
    buf: Vec<u8>,
    written: u64,
    /// How many objects the VDI may hold data in (for the abort's zeroing).
    objects: u64,
    /// The object whose CREATE_AND_WRITE_OBJ was sent and not yet answered, and so not yet
    /// mapped: (index, request).
    in_flight: Option<(u32, Pending)>,
    /// Finished, or removed: nothing is left for `Drop` to do.
    done: bool,
}

impl SheepdogWriter {
    fn conn(&mut self) -> Result<&mut Conn> {
        self.conn.as_mut().ok_or_else(|| {
            Error::new(ErrorKind::UNAVAILABLE, self.store.what("the upload's connection failed earlier"))
        })
    }

    /// Sends the gathered object (if it holds anything but zeros), after the previous one
    /// was answered and mapped. The object is mapped once its own answer has come, by the
    /// next `flush` or by `settle`: the sheep stores one object while the writer gathers
    /// the next, and no map entry ever points at an object the sheep has not confirmed.
    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let idx = ((self.written - self.buf.len() as u64) >> self.shift) as u32;
        if self.buf.iter().any(|&b| b != 0) {
            self.settle()?;
            let (vid, buf) = (self.vid, std::mem::take(&mut self.buf));
            self.objects = u64::from(idx) + 1;
            let sent = self.conn()?.start_object(vid, idx, &buf);
            self.buf = buf;
            match sent {
                Ok(pending) => self.in_flight = Some((idx, pending)),
                Err(e) => {
                    self.conn = None;
                    return Err(e);
                }
            }
        }
        self.buf.clear();
        Ok(())
    }

    /// Waits for the object in flight, if any, and maps it.
    fn settle(&mut self) -> Result<()> {
        let Some((idx, pending)) = self.in_flight.take() else { return Ok(()) };
        let vid = self.vid;
        let conn = self.conn()?;
        let r = conn.wait(pending).and_then(|()| conn.set_map(vid, idx, &[vid]));
        if r.is_err() {
            self.conn = None;
        }
        r
    }

    /// Deletes the VDI on a fresh connection: the upload's own may be the one that failed.
    fn remove(&mut self) -> Result<()> {
        self.done = true;
        // An object still in flight is let land and mapped, so that the delete drops it
        // with the others; if that fails, it may exist unmapped, and is removed by name.
        let unmapped = self.in_flight.as_ref().map(|(idx, _)| *idx);
        let unmapped = self.settle().err().and(unmapped);
        self.conn = None;
        let mut conn = self.store.connect(self.store.timeout)?;
        if let Some(idx) = unmapped {
            conn.remove_object(self.vid, idx)?;
        }
        conn.delete(&self.name, self.vid, self.objects)
    }
}

impl Writer for SheepdogWriter {
    fn write(&mut self, mut data: &[u8]) -> Result<()> {
        let object = 1usize << self.shift;
        if self.written + data.len() as u64 >= writing_marker(self.shift) {
            return Err(Error::new(
                ErrorKind::STORAGE_FULL,
                self.store.what(format_args!("VDI {} cannot hold an image this large", self.name)),
            ));
        }
        while !data.is_empty() {
            let n = (object - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            self.written += n as u64;
            data = &data[n..];
            if self.buf.len() == object {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<String> {
        let (vid, size) = (self.vid, self.written);
        let done = self.flush().and_then(|()| self.settle()).and_then(|()| self.conn()?.set_size(vid, size));
        if let Err(e) = done {
            // The host does not abort a writer whose finish failed: clean up here, so
            // that a failed finish leaves nothing either.
            if let Err(cleanup) = self.remove() {
                tracing::warn!(store = %self.store.store, vdi = %self.name, error = %cleanup.message,
                    "removing the VDI of a failed upload failed; delete it with `dog vdi delete`");
            }
            return Err(e);
        }
        tracing::debug!(store = %self.store.store, vdi = %self.name, size, "image written");
        self.done = true;
        Ok(std::mem::take(&mut self.location))
    }

    fn abort(mut self: Box<Self>) -> Result<()> {
        self.remove()
    }
}

/// The sdk aborts a writer the host drops; this covers a writer dropped outside the host
/// (a test, another Rust caller), so that a dropped upload leaves nothing there either.
impl Drop for SheepdogWriter {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.remove() {
                tracing::warn!(store = %self.store.store, vdi = %self.name, error = %e.message,
                    "removing the VDI of a dropped upload failed; delete it with `dog vdi delete`");
            }
        }
    }
}

/// One read: the block map is read once for the range, then each host read is one READ_OBJ
/// of at most the rest of the current object, or zeros for a hole.
struct SheepdogReader {
    conn: Conn,
    vid: u32,
    shift: u8,
    pos: u64,
    end: u64,
    /// The block map from its first entry the read needs: (first index, entries).
    map: Option<(u32, Vec<u32>)>,
}

impl Reader for SheepdogReader {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.pos >= self.end || buf.is_empty() {
            return Ok(0);
        }
        let object = 1u64 << self.shift;
        if self.map.is_none() {
            let first = (self.pos >> self.shift) as u32;
            let last = ((self.end - 1) >> self.shift) as u32;
            let entries = self.conn.map(self.vid, first, last - first + 1)?;
            self.map = Some((first, entries));
        }
        let (first, entries) = self.map.as_ref().expect("read above");
        let idx = (self.pos >> self.shift) as u32;
        let inside = self.pos & (object - 1);
        let n = (buf.len() as u64).min(object - inside).min(self.end - self.pos) as usize;
        match entries[(idx - first) as usize] {
            0 => buf[..n].fill(0),
            owner => {
                let data = self.conn.read_object(owner, idx, inside as u32, n as u32)?;
                buf[..n].copy_from_slice(&data);
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> SheepdogStore {
        let ctx = OpenContext {
            name: "sheepdog".into(),
            config: serde_json::json!({"address": "127.0.0.1", "port": 7000}),
            config_dir: "/".into(),
        };
        SheepdogStore::open(&ctx).unwrap()
    }

    #[test]
    fn locations_name_the_sheep_and_the_vdi() {
        let s = store();
        let id = "3f1e2c4a-0b1d-4e6f-8a9b-0c1d2e3f4a5b";
        assert_eq!(s.location(id), format!("sheepdog://127.0.0.1:7000/{id}"));
        assert_eq!(s.parse(&s.location(id)).unwrap(), id);
    }

    #[test]
    fn hostile_and_foreign_locations_are_refused_before_any_connection() {
        let s = store();
        for (location, says) in [
            ("sheepdog://127.0.0.1:7000/x;rm -rf /", "holds characters"),
            ("sheepdog://127.0.0.1:7000/$(reboot)", "holds characters"),
            ("sheepdog://127.0.0.1:7000/a`id`", "holds characters"),
            ("sheepdog://127.0.0.1:7000/a/b", "holds characters"),
            ("sheepdog://127.0.0.1:7000/", "holds characters"),
            ("sheepdog://127.0.0.1:7000/..", "holds characters"),
            ("sheepdog://10.0.0.9:7000/abc", "another sheepdog cluster"),
            ("sheepdog://127.0.0.1:7001/abc", "another sheepdog cluster"),
            ("sheepdog://127.0.0.1:7000:abc", "the form is"),
            ("sheepdog://abc", "the form is"),
            ("file:///etc/passwd", "not a sheepdog:// location"),
        ] {
            let e = s.size(location).unwrap_err();
            assert_eq!(e.kind, ErrorKind::INVALID_INPUT, "{location}");
            assert!(e.message.starts_with("store 'sheepdog': refused a location: "), "{location}: {}", e.message);
            assert!(e.message.contains(says), "{location}: {}", e.message);
        }
    }

    #[test]
    fn the_writing_marker_is_the_largest_vdi() {
        assert_eq!(writing_marker(22), 4 << 40);
        assert_eq!(writing_marker(20), 1 << 40);
        assert_eq!(writing_marker(26), 4 << 40, "never over store policy 0's 4 TiB");
        assert_eq!(blocks(0, 22), 0);
        assert_eq!(blocks(1, 22), 1);
        assert_eq!(blocks(4 << 20, 22), 1);
        assert_eq!(blocks((4 << 20) + 1, 22), 2);
    }
}
