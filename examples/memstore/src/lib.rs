//! memstore: a complete Tank store plugin in one file, keeping images in memory.
//!
//! It exists to be copied. It depends on `tank-sdk` alone, builds as a `cdylib`, and is
//! loaded by an unmodified `tank` from a plugin folder. Everything a real store needs is
//! here in miniature: configuration with named errors, writes that are invisible until
//! `finish`, aborts that leave nothing, ranged reads, and error kinds the host maps to HTTP
//! statuses. Data lives only as long as the server process.

use std::{
    collections::HashMap,
    io::Cursor,
    sync::{Arc, Mutex},
};

use tank_sdk::{Error, ErrorKind, OpenContext, Reader, Result, Store, Writer};

/// `[store.memstore]`: `max_bytes` (optional) refuses writes once the store holds that
/// many bytes. Read straight from the JSON so the crate needs nothing but `tank-sdk`; a
/// plugin with more options would derive `serde::Deserialize` and call `ctx.config()`.
fn max_bytes(ctx: &OpenContext) -> Result<Option<u64>> {
    let empty = Default::default();
    let table = ctx.config.as_object().unwrap_or(&empty);
    if let Some(unknown) = table.keys().find(|k| k.as_str() != "max_bytes") {
        return Err(Error::invalid_config(format!(
            "unknown option {unknown:?} in [store.{}]; memstore knows max_bytes",
            ctx.name
        )));
    }
    match table.get("max_bytes") {
        None => Ok(None),
        Some(v) => {
            v.as_u64().map(Some).ok_or_else(|| Error::invalid_config("max_bytes must be a whole number of bytes"))
        }
    }
}

type Images = Arc<Mutex<HashMap<String, Arc<Vec<u8>>>>>;

/// The store: finished images by id.
pub struct MemStore {
    images: Images,
    max_bytes: Option<u64>,
}

const SCHEME: &str = "memstore://";

impl MemStore {
    fn id_of<'a>(&self, location: &'a str) -> Result<&'a str> {
        location
            .strip_prefix(SCHEME)
            .ok_or_else(|| Error::invalid_input(format!("{location:?} is not a memstore:// location")))
    }

    fn image(&self, location: &str) -> Result<Arc<Vec<u8>>> {
        let id = self.id_of(location)?;
        self.images.lock().unwrap().get(id).cloned().ok_or_else(|| Error::not_found(format!("no image at {location}")))
    }

    fn used(&self) -> u64 {
        self.images.lock().unwrap().values().map(|d| d.len() as u64).sum()
    }
}

impl Store for MemStore {
    fn open(ctx: &OpenContext) -> Result<Self> {
        Ok(MemStore { images: Images::default(), max_bytes: max_bytes(ctx)? })
    }

    fn add(&self, image_id: &str, _size: Option<u64>) -> Result<Box<dyn Writer>> {
        if self.images.lock().unwrap().contains_key(image_id) {
            return Err(Error::duplicate(format!("image {image_id} already has data")));
        }
        let room = self.max_bytes.map(|m| m.saturating_sub(self.used()));
        Ok(Box::new(MemWriter { id: image_id.to_owned(), data: Vec::new(), room, images: self.images.clone() }))
    }

    fn get(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Box<dyn Reader>> {
        let data = self.image(location)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let end = match length {
            Some(n) => start.saturating_add(usize::try_from(n).unwrap_or(usize::MAX)).min(data.len()),
            None => data.len(),
        };
        // A cursor over a shared slice: the reader needs no copy of the image.
        Ok(Box::new(Cursor::new(Slice { data, start, end })))
    }

    fn size(&self, location: &str) -> Result<u64> {
        Ok(self.image(location)?.len() as u64)
    }

    fn delete(&self, location: &str) -> Result<()> {
        let id = self.id_of(location)?;
        match self.images.lock().unwrap().remove(id) {
            Some(_) => Ok(()),
            None => Err(Error::not_found(format!("no image at {location}"))),
        }
    }

    fn discard(&self, _image_id: &str) -> Result<()> {
        // Unfinished writes live only in their writer, and a restart forgets everything.
        Ok(())
    }
}

/// An image's bytes from `start` to `end`, shared with the store.
struct Slice {
    data: Arc<Vec<u8>>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for Slice {
    fn as_ref(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }
}

/// One upload, invisible to readers until `finish`.
struct MemWriter {
    id: String,
    data: Vec<u8>,
    room: Option<u64>,
    images: Images,
}

impl Writer for MemWriter {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        if let Some(room) = self.room {
            if (self.data.len() + data.len()) as u64 > room {
                return Err(Error::new(ErrorKind::STORAGE_FULL, "memstore is full (max_bytes)"));
            }
        }
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<String> {
        let mut images = self.images.lock().unwrap();
        if images.contains_key(&self.id) {
            return Err(Error::duplicate(format!("image {} already has data", self.id)));
        }
        images.insert(self.id.clone(), Arc::new(self.data));
        Ok(format!("{SCHEME}{}", self.id))
    }

    fn abort(self: Box<Self>) -> Result<()> {
        // The data was never visible; dropping it is all there is to do.
        Ok(())
    }
}

tank_sdk::export_store!(MemStore, name = "memstore");

#[cfg(test)]
mod tests {
    use super::*;

    fn store(config: &str) -> Result<MemStore> {
        let ctx = OpenContext {
            name: "memstore".into(),
            config: config.parse().unwrap(),
            config_dir: std::path::PathBuf::from("/"),
        };
        MemStore::open(&ctx)
    }

    fn read_all(mut r: Box<dyn Reader>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn data_is_invisible_until_finish_and_reads_back_in_ranges() {
        let s = store("{}").unwrap();
        let mut w = s.add("a", None).unwrap();
        w.write(b"hello ").unwrap();
        w.write(b"world").unwrap();
        assert_eq!(s.get("memstore://a", 0, None).err().map(|e| e.kind), Some(ErrorKind::NOT_FOUND));
        let loc = w.finish().unwrap();
        assert_eq!(loc, "memstore://a");
        assert_eq!(read_all(s.get(&loc, 0, None).unwrap()), b"hello world");
        assert_eq!(read_all(s.get(&loc, 6, Some(3)).unwrap()), b"wor");
        assert_eq!(read_all(s.get(&loc, 99, None).unwrap()), b"");
        assert_eq!(s.size(&loc).unwrap(), 11);
        assert_eq!(s.add("a", None).err().map(|e| e.kind), Some(ErrorKind::DUPLICATE));
        s.delete(&loc).unwrap();
        assert_eq!(s.size(&loc).unwrap_err().kind, ErrorKind::NOT_FOUND);
    }

    #[test]
    fn abort_leaves_nothing_and_max_bytes_is_enforced() {
        let s = store(r#"{"max_bytes": 4}"#).unwrap();
        let mut w = s.add("b", None).unwrap();
        w.write(b"abc").unwrap();
        w.abort().unwrap();
        assert_eq!(s.size("memstore://b").unwrap_err().kind, ErrorKind::NOT_FOUND);
        let mut w = s.add("b", None).unwrap();
        assert_eq!(w.write(b"too long").unwrap_err().kind, ErrorKind::STORAGE_FULL);
        let e = store(r#"{"max_byte": 4}"#).err().unwrap();
        assert!(e.message.contains("max_byte"), "{}", e.message);
    }
}
