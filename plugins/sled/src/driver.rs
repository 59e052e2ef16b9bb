//! The sled driver's operations: one record per image, compare-and-swap writes, each
//! flushed before it returns, and lists answered by scanning.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tank_sdk::{
    image::{query::ListQuery, Image, ImageId, Status},
    Error, ErrorKind, OpenContext, RegistryDriver, Result, Revision, Revisioned,
};

use crate::{config::Config, error};

/// A stored record: the value under the image id's 16 bytes.
#[derive(Serialize, Deserialize)]
struct Record {
    revision: Revision,
    image: Image,
}

/// Image metadata in sled.
pub struct SledDriver {
    db: sled::Db,
    /// The database directory, for error messages.
    path: PathBuf,
}

impl SledDriver {
    fn decode(&self, key: &[u8], bytes: &[u8]) -> Result<Record> {
        serde_json::from_slice(bytes).map_err(|e| error::corrupt(&self.path, key, e))
    }

    fn encode(record: &Record) -> Result<Vec<u8>> {
        serde_json::to_vec(record).map_err(|e| Error::backend(format!("cannot encode a record: {e}")))
    }

    fn backend(&self, what: &str) -> impl FnOnce(sled::Error) -> Error + '_ {
        let what = what.to_owned();
        move |e| error::backend(&self.path, &what, e)
    }

    /// Makes every write so far durable: the driver's contract is that a write is on disk
    /// when the call returns, and sled otherwise flushes only every few hundred ms.
    fn flush(&self) -> Result<()> {
        self.db.flush().map(drop).map_err(self.backend("flushing to disk"))
    }

    fn read(&self, id: ImageId) -> Result<Option<(sled::IVec, Record)>> {
        let Some(bytes) = self.db.get(id.as_bytes()).map_err(self.backend("reading an image"))? else {
            return Ok(None);
        };
        let record = self.decode(id.as_bytes(), &bytes)?;
        Ok(Some((bytes, record)))
    }

    fn scan(&self) -> impl Iterator<Item = Result<Image>> + '_ {
        self.db.iter().map(|kv| {
            let (k, v) = kv.map_err(self.backend("scanning"))?;
            Ok(self.decode(&k, &v)?.image)
        })
    }
}

impl RegistryDriver for SledDriver {
    fn open(ctx: &OpenContext) -> Result<Self> {
        let config: Config = ctx.config()?;
        let path = ctx.resolve(&config.path);
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(config.cache_capacity_mb.saturating_mul(1 << 20))
            .open()
            .map_err(|e| error::open_failed(&path, e))?;
        Ok(SledDriver { db, path })
    }

    fn create(&self, image: &Image) -> Result<Revision> {
        let bytes = Self::encode(&Record { revision: 1, image: image.clone() })?;
        // Absent → present in one step, so two creates of one id cannot both succeed.
        let swapped = self
            .db
            .compare_and_swap(image.id.as_bytes(), None::<&[u8]>, Some(bytes))
            .map_err(self.backend("creating an image"))?;
        if swapped.is_err() {
            return Err(Error::duplicate(format!("image {} already exists", image.id)));
        }
        self.flush()?;
        Ok(1)
    }

    fn get(&self, id: ImageId) -> Result<Revisioned<Image>> {
        let (_, record) = self.read(id)?.ok_or_else(|| error::not_found(id))?;
        Ok(Revisioned { revision: record.revision, value: record.image })
    }

    fn update(&self, image: &Image, revision: Revision) -> Result<Revision> {
        let id = image.id;
        let (old, current) = self.read(id)?.ok_or_else(|| error::not_found(id))?;
        if current.revision != revision {
            return Err(error::conflict(id, revision, current.revision));
        }
        let next = revision + 1;
        let bytes = Self::encode(&Record { revision: next, image: image.clone() })?;
        // The swap is on the exact bytes read above: if anyone wrote in between, the
        // bytes differ and this update loses, whatever revision the other writer chose.
        let swapped = self
            .db
            .compare_and_swap(id.as_bytes(), Some(&old), Some(bytes))
            .map_err(self.backend("updating an image"))?;
        if let Err(cas) = swapped {
            return match cas.current {
                Some(now) => Err(error::conflict(id, revision, self.decode(id.as_bytes(), &now)?.revision)),
                None => Err(error::not_found(id)),
            };
        }
        self.flush()?;
        Ok(next)
    }

    fn remove(&self, id: ImageId) -> Result<()> {
        let old = self.db.remove(id.as_bytes()).map_err(self.backend("removing an image"))?;
        if old.is_none() {
            return Err(error::not_found(id));
        }
        self.flush()
    }

    fn list(&self, query: &ListQuery) -> Result<Vec<Image>> {
        let marker = match query.marker {
            None => None,
            Some(m) => Some(self.get(m).map_err(|e| {
                if e.kind == ErrorKind::NOT_FOUND {
                    Error::invalid_input(format!("marker {m} not found"))
                } else {
                    e
                }
            })?),
        };
        let all = self.scan().collect::<Result<Vec<_>>>()?;
        Ok(query.page(all, marker.as_ref().map(|m| &m.value)))
    }

    fn with_status(&self, statuses: &[Status]) -> Result<Vec<Image>> {
        let mut out = Vec::new();
        for image in self.scan() {
            let image = image?;
            if statuses.contains(&image.status) {
                out.push(image);
            }
        }
        Ok(out)
    }

    fn check(&self) -> Result<()> {
        // Reads every page, so a database that opens but cannot be read fails here, at
        // `tank plugins --verify`, rather than at the first request.
        self.db.checksum().map(drop).map_err(self.backend("checking the database"))
    }
}
