//! memstore: a complete Tank store plugin in one file, keeping images in memory.
//!
//! It exists to be copied. It depends on `tank-sdk` alone, builds as a `cdylib`, and is
//! loaded by an unmodified `tank` from a plugin folder. Everything a real store needs is
//! here in miniature: configuration that refuses unknown keys, writes that are invisible
//! until `finish`, aborts that leave nothing, ranged reads, and error kinds the host maps
//! to HTTP statuses. Data lives only as long as the server process.

use std::{
    collections::HashMap,
    io::Cursor,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use tank_sdk::{Error, ErrorKind, OpenContext, Reader, Result, Store, Writer};

/// The URI scheme of every location this store returns; the manifest lists it.
const SCHEME: &str = "memstore://";

/// The `[store.memstore]` table. It is read from the JSON by hand so that the crate needs
/// nothing but `tank-sdk`; a plugin with more options would derive `serde::Deserialize`
/// with `#[serde(deny_unknown_fields)]` and call [`OpenContext::config`].
#[derive(Debug, Default, PartialEq, Eq)]
struct Config {
    /// Refuse writes once the store would hold more than this many bytes.
    max_bytes: Option<u64>,
}

impl Config {
    fn parse(ctx: &OpenContext) -> Result<Config> {
        let table = ctx.config.as_object().ok_or_else(|| {
            Error::invalid_config(format!("[store.{}] must be a table, not {}", ctx.name, ctx.config))
        })?;
        // A misspelt key must fail loudly: silently ignoring `max_byte = 10` would leave
        // the operator believing the limit is on.
        if let Some(unknown) = table.keys().find(|k| k.as_str() != "max_bytes") {
            return Err(Error::invalid_config(format!(
                "unknown option {unknown:?} in [store.{}]; memstore knows only max_bytes",
                ctx.name
            )));
        }
        let max_bytes = match table.get("max_bytes") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                Error::invalid_config(format!(
                    "max_bytes in [store.{}] must be a whole number of bytes, not {v}",
                    ctx.name
                ))
            })?),
        };
        Ok(Config { max_bytes })
    }
}

/// What the store holds, behind one lock so that the byte count always matches the images.
#[derive(Default)]
struct Contents {
    images: HashMap<String, Arc<Vec<u8>>>,
    bytes: u64,
}

/// The store: finished images by image id. Writers share it through the `Arc`.
pub struct MemStore {
    contents: Arc<Mutex<Contents>>,
    config: Config,
}

/// Locks the contents. A panic elsewhere (caught by the SDK) cannot leave them half
/// updated, since every change is one insert or remove, so a poisoned lock is still good.
fn lock(contents: &Mutex<Contents>) -> MutexGuard<'_, Contents> {
    contents.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The error for writes past `max_bytes`; the host answers it with HTTP 413.
fn full(max: u64) -> Error {
    Error::new(ErrorKind::STORAGE_FULL, format!("memstore is full: it may hold {max} bytes (max_bytes)"))
}

impl MemStore {
    /// The image id in a `memstore://<id>` location.
    fn id_of(location: &str) -> Result<&str> {
        location
            .strip_prefix(SCHEME)
            .ok_or_else(|| Error::invalid_input(format!("{location:?} is not a memstore:// location")))
    }

    fn image(&self, location: &str) -> Result<Arc<Vec<u8>>> {
        let id = Self::id_of(location)?;
        let found = lock(&self.contents).images.get(id).cloned();
        found.ok_or_else(|| Error::not_found(format!("memstore has no image at {location}")))
    }
}

impl Store for MemStore {
    fn open(ctx: &OpenContext) -> Result<Self> {
        Ok(MemStore { contents: Arc::default(), config: Config::parse(ctx)? })
    }

    fn add(&self, image_id: &str, _size: Option<u64>) -> Result<Box<dyn Writer>> {
        if lock(&self.contents).images.contains_key(image_id) {
            return Err(Error::duplicate(format!("memstore already holds data for image {image_id}")));
        }
        Ok(Box::new(MemWriter {
            id: image_id.to_owned(),
            data: Vec::new(),
            max_bytes: self.config.max_bytes,
            contents: self.contents.clone(),
        }))
    }

    fn get(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Box<dyn Reader>> {
        let data = self.image(location)?;
        // Clamp to the image: an offset past the end reads nothing, as the trait says.
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let end = match length {
            Some(n) => start.saturating_add(usize::try_from(n).unwrap_or(usize::MAX)).min(data.len()),
            None => data.len(),
        };
        // Any `std::io::Read` is a `Reader`; a cursor over a shared slice needs no copy.
        Ok(Box::new(Cursor::new(Slice { data, start, end })))
    }

    fn size(&self, location: &str) -> Result<u64> {
        Ok(self.image(location)?.len() as u64)
    }

    fn delete(&self, location: &str) -> Result<()> {
        let id = Self::id_of(location)?;
        let mut contents = lock(&self.contents);
        let data = contents.images.remove(id).ok_or_else(|| Error::not_found(format!("no image at {location}")))?;
        contents.bytes -= data.len() as u64;
        Ok(())
    }

    fn discard(&self, _image_id: &str) -> Result<()> {
        // Unfinished writes live only in their writer, and a restart forgets everything,
        // so there is never anything left to discard.
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
    max_bytes: Option<u64>,
    contents: Arc<Mutex<Contents>>,
}

impl Writer for MemWriter {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        // Fail as soon as the upload cannot fit, rather than buffering it all first.
        if let Some(max) = self.max_bytes {
            let held = lock(&self.contents).bytes;
            if held + (self.data.len() + data.len()) as u64 > max {
                return Err(full(max));
            }
        }
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<String> {
        let mut contents = lock(&self.contents);
        // Check again under the lock: uploads running side by side may each have fitted
        // alone, and another upload of this id may have finished first.
        if contents.images.contains_key(&self.id) {
            return Err(Error::duplicate(format!("memstore already holds data for image {}", self.id)));
        }
        let len = self.data.len() as u64;
        if let Some(max) = self.max_bytes {
            if contents.bytes + len > max {
                return Err(full(max));
            }
        }
        contents.bytes += len;
        contents.images.insert(self.id.clone(), Arc::new(self.data));
        Ok(format!("{SCHEME}{}", self.id))
    }

    fn abort(self: Box<Self>) -> Result<()> {
        // The data was never visible; dropping it is all there is to do. (When the host
        // drops a writer without finishing it, the SDK calls this for us.)
        Ok(())
    }
}

tank_sdk::export_store!(MemStore, name = "memstore");

// The conformance suite runs in tests/conformance.rs; these cover what it cannot know
// about: memstore's own option.
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

    fn upload(s: &MemStore, id: &str, data: &[u8]) -> Result<String> {
        let mut w = s.add(id, None)?;
        w.write(data)?;
        w.finish()
    }

    #[test]
    fn options_are_checked_by_name() {
        assert_eq!(store("{}").unwrap().config, Config { max_bytes: None });
        assert_eq!(store(r#"{"max_bytes": 4}"#).unwrap().config, Config { max_bytes: Some(4) });
        for (bad, named) in [(r#"{"max_byte": 4}"#, "max_byte"), (r#"{"max_bytes": -1}"#, "-1"), ("[]", "table")] {
            let e = store(bad).err().unwrap();
            assert_eq!(e.kind, ErrorKind::INVALID_CONFIG);
            assert!(e.message.contains(named), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn writes_past_max_bytes_are_storage_full_and_leave_nothing() {
        let s = store(r#"{"max_bytes": 6}"#).unwrap();
        let mut w = s.add("a", None).unwrap();
        w.write(b"abcd").unwrap();
        assert_eq!(w.write(b"efg").unwrap_err().kind, ErrorKind::STORAGE_FULL);
        w.abort().unwrap();
        assert_eq!(s.size("memstore://a").unwrap_err().kind, ErrorKind::NOT_FOUND);

        // Two uploads that each fit alone: the second to finish is refused.
        let (mut one, mut two) = (s.add("one", None).unwrap(), s.add("two", None).unwrap());
        one.write(b"1111").unwrap();
        two.write(b"2222").unwrap();
        one.finish().unwrap();
        assert_eq!(two.finish().unwrap_err().kind, ErrorKind::STORAGE_FULL);

        // Deleting gives the room back.
        assert_eq!(upload(&s, "three", b"333").unwrap_err().kind, ErrorKind::STORAGE_FULL);
        s.delete("memstore://one").unwrap();
        assert_eq!(upload(&s, "three", b"333").unwrap(), "memstore://three");
    }

    #[test]
    fn locations_of_other_schemes_are_invalid_input() {
        let s = store("{}").unwrap();
        let loc = upload(&s, "a", b"data").unwrap();
        assert_eq!(s.size(&loc).unwrap(), 4);
        let e = s.size("file:///a").unwrap_err();
        assert_eq!(e.kind, ErrorKind::INVALID_INPUT);
        assert!(e.message.contains("file:///a"), "{}", e.message);
    }
}
