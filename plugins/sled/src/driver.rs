//! The sled driver's operations: one record per image, keyset indexes for lists, a usage
//! figure per owner for the storage quota, every write a transaction over the record, its
//! index keys and its owner's figure, flushed before it returns.

use std::{ops::Bound, path::PathBuf};

use serde::{Deserialize, Serialize};
use sled::{
    transaction::{ConflictableTransactionError, TransactionError, TransactionalTree},
    Transactional, Tree,
};
use tank_sdk::{
    image::{
        query::{ListQuery, SortDir, SortKey},
        Image, ImageId, Status,
    },
    Error, OpenContext, RegistryDriver, Result, Revision, Revisioned,
};

use crate::{config::Config, error, index};

/// A stored record: the value under the image id's 16 bytes.
#[derive(Serialize, Deserialize)]
struct Record {
    revision: Revision,
    image: Image,
}

/// The `meta` tree's key that says which index layout the database has.
const INDEX_VERSION_KEY: &[u8] = b"index_version";
/// The index layout this driver writes: [`index::INDEXED`] with [`index::entry`] keys, and
/// the `usage` tree (since 2).
const INDEX_VERSION: &[u8] = b"2";

/// Image metadata in sled.
pub struct SledDriver {
    db: sled::Db,
    /// The records, by id: sled's default tree, where databases before the indexes had
    /// them too.
    records: Tree,
    /// One tree per entry of [`index::INDEXED`], in that order; values are empty.
    indexes: Vec<Tree>,
    /// Per owner, the sum of [`Image::stored_bytes`] of its records, big-endian.
    usage: Tree,
    /// The database directory, for error messages.
    path: PathBuf,
}

/// What a write transaction ends with: a registry error of its own, or sled's.
type TxResult<T> = std::result::Result<T, ConflictableTransactionError<Error>>;

fn abort<T>(e: Error) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
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

    fn read(&self, id: ImageId) -> Result<Option<Record>> {
        let Some(bytes) = self.records.get(id.as_bytes()).map_err(self.backend("reading an image"))? else {
            return Ok(None);
        };
        self.decode(id.as_bytes(), &bytes).map(Some)
    }

    /// The tree that orders images by `key`.
    fn tree(&self, key: SortKey) -> &Tree {
        match index::INDEXED.iter().position(|(k, _)| *k == key) {
            Some(n) => &self.indexes[n],
            None => &self.records,
        }
    }

    /// Runs `f` as one transaction over the records (`tx[0]`), every index (`tx[1..=N]`,
    /// in [`index::INDEXED`] order) and the usage figures (`tx[N + 1]`): all of its writes
    /// happen or none does.
    fn transaction<T>(&self, what: &str, f: impl Fn(&[TransactionalTree]) -> TxResult<T>) -> Result<T> {
        let trees: Vec<&Tree> =
            std::iter::once(&self.records).chain(&self.indexes).chain(std::iter::once(&self.usage)).collect();
        trees[..].transaction(|tx| f(tx)).map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => error::backend(&self.path, what, e),
        })
    }

    /// Adds `image`'s stored bytes to its owner's figure (`sign` 1), or takes them off
    /// (`sign` -1), inside a transaction.
    fn count(tx: &[TransactionalTree], image: &Image, sign: i8) -> TxResult<()> {
        let (Some(owner), bytes) = (image.owner.as_deref(), image.stored_bytes()) else { return Ok(()) };
        if bytes == 0 {
            return Ok(());
        }
        let usage = &tx[index::INDEXED.len() + 1];
        let now = usage.get(owner.as_bytes())?.map_or(0, |v| index::decode_u64(&v));
        let next = if sign > 0 { now.saturating_add(bytes) } else { now.saturating_sub(bytes) };
        if next == 0 {
            usage.remove(owner.as_bytes())?;
        } else {
            usage.insert(owner.as_bytes(), &next.to_be_bytes())?;
        }
        Ok(())
    }

    /// The index keys of `image`, in [`index::INDEXED`] order.
    fn entries(image: &Image) -> impl Iterator<Item = Vec<u8>> + '_ {
        index::INDEXED.iter().map(move |(key, _)| index::entry(*key, image))
    }

    /// The record an index key points at, if it is still at that key: a write between
    /// reading the key and reading the record can have moved or removed the image, and it
    /// is then listed at its new place, if any, not at the old one.
    fn at_entry(&self, key: SortKey, entry: &[u8]) -> Result<Option<Image>> {
        let id = index::id_of(entry).ok_or_else(|| {
            Error::backend(format!("registry database {}: an index key of {key:?} is too short", self.path.display()))
        })?;
        Ok(self.read(id)?.map(|r| r.image).filter(|image| index::entry(key, image) == entry))
    }

    /// Builds every index from the records, for a database written before the indexes
    /// existed (or whose indexing was interrupted: the version is written last).
    fn build_indexes(&self) -> Result<()> {
        let meta = self.db.open_tree("meta").map_err(self.backend("opening the meta tree"))?;
        if meta.get(INDEX_VERSION_KEY).map_err(self.backend("reading the index version"))?.as_deref()
            == Some(INDEX_VERSION)
        {
            return Ok(());
        }
        let mut batches: Vec<sled::Batch> = self.indexes.iter().map(|_| sled::Batch::default()).collect();
        let mut usage: std::collections::BTreeMap<String, u64> = Default::default();
        for kv in self.records.iter() {
            let (k, v) = kv.map_err(self.backend("indexing"))?;
            // A record that does not decode is left out of the indexes rather than
            // keeping the database from opening: `get` still names it as corrupt.
            let Ok(Record { image, .. }) = self.decode(&k, &v) else { continue };
            for (batch, entry) in batches.iter_mut().zip(Self::entries(&image)) {
                batch.insert(entry, &[]);
            }
            if let Some(owner) = image.owner.clone() {
                *usage.entry(owner).or_default() += image.stored_bytes();
            }
        }
        for (tree, batch) in self.indexes.iter().zip(batches) {
            tree.clear().map_err(self.backend("indexing"))?;
            tree.apply_batch(batch).map_err(self.backend("indexing"))?;
        }
        let mut figures = sled::Batch::default();
        for (owner, bytes) in usage.into_iter().filter(|(_, b)| *b > 0) {
            figures.insert(owner.as_bytes(), &bytes.to_be_bytes());
        }
        self.usage.clear().map_err(self.backend("indexing"))?;
        self.usage.apply_batch(figures).map_err(self.backend("indexing"))?;
        meta.insert(INDEX_VERSION_KEY, INDEX_VERSION).map_err(self.backend("writing the index version"))?;
        self.flush()
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
        let records = Tree::clone(&db);
        let indexes = index::INDEXED
            .iter()
            .map(|(_, name)| db.open_tree(name))
            .collect::<sled::Result<Vec<_>>>()
            .map_err(|e| error::backend(&path, "opening the indexes", e))?;
        let usage = db.open_tree("usage").map_err(|e| error::backend(&path, "opening the usage figures", e))?;
        let driver = SledDriver { db, records, indexes, usage, path };
        driver.build_indexes()?;
        Ok(driver)
    }

    fn create(&self, image: &Image) -> Result<Revision> {
        let bytes = Self::encode(&Record { revision: 1, image: image.clone() })?;
        let id = image.id.as_bytes();
        self.transaction("creating an image", |tx| {
            // Absent → present inside the transaction, so two creates of one id cannot
            // both succeed.
            if tx[0].get(id)?.is_some() {
                return abort(Error::duplicate(format!("image {} already exists", image.id)));
            }
            tx[0].insert(id, bytes.as_slice())?;
            for (tree, entry) in tx[1..].iter().zip(Self::entries(image)) {
                tree.insert(entry, &[])?;
            }
            Self::count(tx, image, 1)
        })?;
        self.flush()?;
        Ok(1)
    }

    fn get(&self, id: ImageId) -> Result<Revisioned<Image>> {
        let record = self.read(id)?.ok_or_else(|| error::not_found(id))?;
        Ok(Revisioned { revision: record.revision, value: record.image })
    }

    fn update(&self, image: &Image, revision: Revision) -> Result<Revision> {
        let id = image.id;
        let next = revision + 1;
        let bytes = Self::encode(&Record { revision: next, image: image.clone() })?;
        // The revision is checked inside the transaction: sled runs it again if another
        // writer committed in between, so of two writers at one revision only one wins.
        self.transaction("updating an image", |tx| {
            let Some(old) = tx[0].get(id.as_bytes())? else { return abort(error::not_found(id)) };
            let current = match self.decode(id.as_bytes(), &old) {
                Ok(current) => current,
                Err(e) => return abort(e),
            };
            if current.revision != revision {
                return abort(error::conflict(id, revision, current.revision));
            }
            tx[0].insert(id.as_bytes(), bytes.as_slice())?;
            for ((tree, was), now) in tx[1..].iter().zip(Self::entries(&current.image)).zip(Self::entries(image)) {
                if was != now {
                    tree.remove(was)?;
                    tree.insert(now, &[])?;
                }
            }
            Self::count(tx, &current.image, -1)?;
            Self::count(tx, image, 1)
        })?;
        self.flush()?;
        Ok(next)
    }

    fn remove(&self, id: ImageId) -> Result<()> {
        self.transaction("removing an image", |tx| {
            let Some(old) = tx[0].remove(id.as_bytes())? else { return abort(error::not_found(id)) };
            // A record that does not decode cannot name its index keys; it goes anyway,
            // and lists skip the keys left behind, whose record is missing.
            if let Ok(old) = self.decode(id.as_bytes(), &old) {
                for (tree, entry) in tx[1..].iter().zip(Self::entries(&old.image)) {
                    tree.remove(entry)?;
                }
                Self::count(tx, &old.image, -1)?;
            }
            Ok(())
        })?;
        self.flush()
    }

    /// Walks the sort key's index from the marker's key, in the query's direction, and
    /// keeps the images that match until the page is full: the cost is the page plus the
    /// images skipped on the way (hidden, not visible to the viewer, or filtered out). A
    /// sort by several keys reads every record.
    fn list(&self, query: &ListQuery) -> Result<Vec<Image>> {
        let marker = match query.marker {
            None => None,
            Some(m) => Some(self.read(m)?.ok_or_else(|| Error::invalid_input(format!("marker {m} not found")))?),
        };
        let limit = query.limit as usize;
        let mut page = Vec::new();
        if limit == 0 {
            return Ok(page);
        }
        if !query.then_by.is_empty() {
            // Each index orders by one key: a sort by several is answered by a scan.
            let mut all = Vec::new();
            for kv in self.records.iter() {
                let (k, v) = kv.map_err(self.backend("listing"))?;
                all.push(self.decode(&k, &v)?.image);
            }
            return Ok(query.page(all, marker.as_ref().map(|m| &m.image)));
        }
        let key = query.sort_key;
        let tree = self.tree(key);
        let from = marker.map(|m| index::entry(key, &m.image));
        let walk: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = match (query.sort_dir, from) {
            (SortDir::Asc, None) => Box::new(tree.iter()),
            (SortDir::Asc, Some(from)) => {
                Box::new(tree.range::<&[u8], _>((Bound::Excluded(&from[..]), Bound::Unbounded)))
            }
            (SortDir::Desc, None) => Box::new(tree.iter().rev()),
            (SortDir::Desc, Some(from)) => Box::new(tree.range(..from).rev()),
        };
        for kv in walk {
            let (k, v) = kv.map_err(self.backend("listing"))?;
            let image = if key == SortKey::Id { Some(self.decode(&k, &v)?.image) } else { self.at_entry(key, &k)? };
            if let Some(image) = image.filter(|i| query.matches(i)) {
                page.push(image);
                if page.len() == limit {
                    break;
                }
            }
        }
        Ok(page)
    }

    /// Reads the status index from each status's prefix: the cost is the images found.
    fn with_status(&self, statuses: &[Status]) -> Result<Vec<Image>> {
        let mut out = Vec::new();
        let tree = self.tree(SortKey::Status);
        for (n, status) in statuses.iter().enumerate() {
            if statuses[..n].contains(status) {
                continue;
            }
            for kv in tree.scan_prefix(index::status_prefix(status)) {
                let (k, _) = kv.map_err(self.backend("reading the status index"))?;
                out.extend(self.at_entry(SortKey::Status, &k)?);
            }
        }
        Ok(out)
    }

    /// Reads the owner's figure, kept by every write.
    fn usage(&self, owner: &str) -> Result<u64> {
        let figure = self.usage.get(owner.as_bytes()).map_err(self.backend("reading the usage figures"))?;
        Ok(figure.map_or(0, |v| index::decode_u64(&v)))
    }

    fn check(&self) -> Result<()> {
        // Reads every page, so a database that opens but cannot be read fails here, at
        // `tank plugins --verify`, rather than at the first request.
        self.db.checksum().map(drop).map_err(self.backend("checking the database"))
    }
}
