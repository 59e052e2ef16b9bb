//! The sled driver's operations.

use serde::{Deserialize, Serialize};
use tank_sdk::{
    image::{query::ListQuery, Image, ImageId, Status},
    Error, ErrorKind, OpenContext, RegistryDriver, Result, Revision, Revisioned,
};

use crate::{config::Config, error};

/// A stored record.
#[derive(Serialize, Deserialize)]
struct Record {
    revision: Revision,
    image: Image,
}

/// Image metadata in sled.
pub struct SledDriver {
    db: sled::Db,
}

impl SledDriver {
    fn decode(bytes: &[u8]) -> Result<Record> {
        serde_json::from_slice(bytes).map_err(error::corrupt)
    }

    fn encode(record: &Record) -> Result<Vec<u8>> {
        serde_json::to_vec(record).map_err(|e| Error::backend(format!("cannot encode a record: {e}")))
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map(drop).map_err(|e| error::backend("flushing to disk", e))
    }

    fn scan(&self) -> impl Iterator<Item = Result<Image>> + '_ {
        self.db.iter().values().map(|v| {
            let v = v.map_err(|e| error::backend("scanning", e))?;
            Ok(Self::decode(&v)?.image)
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
        Ok(SledDriver { db })
    }

    fn create(&self, image: &Image) -> Result<Revision> {
        let bytes = Self::encode(&Record { revision: 1, image: image.clone() })?;
        let swapped = self
            .db
            .compare_and_swap(image.id.as_bytes(), None::<&[u8]>, Some(bytes))
            .map_err(|e| error::backend("creating an image", e))?;
        if swapped.is_err() {
            return Err(Error::duplicate(format!("image {} already exists", image.id)));
        }
        self.flush()?;
        Ok(1)
    }

    fn get(&self, id: ImageId) -> Result<Revisioned<Image>> {
        let bytes = self
            .db
            .get(id.as_bytes())
            .map_err(|e| error::backend("reading an image", e))?
            .ok_or_else(|| Error::not_found(format!("image {id} not found")))?;
        let record = Self::decode(&bytes)?;
        Ok(Revisioned { revision: record.revision, value: record.image })
    }

    fn update(&self, image: &Image, revision: Revision) -> Result<Revision> {
        let key = image.id.as_bytes();
        let old = self
            .db
            .get(key)
            .map_err(|e| error::backend("reading an image", e))?
            .ok_or_else(|| Error::not_found(format!("image {} not found", image.id)))?;
        let current = Self::decode(&old)?.revision;
        if current != revision {
            return Err(conflict(image.id, revision, current));
        }
        let next = revision + 1;
        let bytes = Self::encode(&Record { revision: next, image: image.clone() })?;
        let swapped = self
            .db
            .compare_and_swap(key, Some(&old), Some(bytes))
            .map_err(|e| error::backend("updating an image", e))?;
        if swapped.is_err() {
            return Err(conflict(image.id, revision, revision + 1));
        }
        self.flush()?;
        Ok(next)
    }

    fn remove(&self, id: ImageId) -> Result<()> {
        let old = self.db.remove(id.as_bytes()).map_err(|e| error::backend("removing an image", e))?;
        if old.is_none() {
            return Err(Error::not_found(format!("image {id} not found")));
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
        self.db.checksum().map(drop).map_err(|e| error::backend("checking the database", e))
    }
}

fn conflict(id: ImageId, expected: Revision, found: Revision) -> Error {
    Error::new(
        ErrorKind::CONFLICT,
        format!("image {id} changed since it was read (revision {found}, not {expected}); read it again"),
    )
}
