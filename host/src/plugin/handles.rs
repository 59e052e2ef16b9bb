//! Opened plugins, as the rest of the host uses them: a [`Store`] or a [`Registry`] with
//! plain Rust signatures over the generation-1 ABI objects.
//!
//! Every method blocks (it calls into the plugin); async code reaches them through
//! `tokio::task::spawn_blocking`. Errors come back as [`tank_sdk::Error`]. Both implement
//! the images service's backend traits, which is how the service reaches the plugins.

use std::path::Path;

use abi_stable::std_types::{RBox, ROption};
use tank_core::{query::ListQuery, Image, ImageId, Status};
use tank_sdk::{
    abi::{ReaderV1_TO, RegistryV1_TO, StoreV1_TO, WriterV1_TO},
    Error, Result, Revision, Revisioned,
};

use super::loader::Module;

/// One open write into a store.
pub type Writer = WriterV1_TO<'static, RBox<()>>;
/// One open read from a store.
pub type Reader = ReaderV1_TO<'static, RBox<()>>;

/// An opened store plugin.
pub struct Store {
    /// The plugin's name (`fs`).
    pub name: String,
    /// The URI schemes its locations use.
    pub schemes: Vec<String>,
    /// Whether clients may register its locations and copy from them (the manifest's
    /// `external_locations`).
    pub external: bool,
    inner: StoreV1_TO<'static, RBox<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("name", &self.name).field("schemes", &self.schemes).finish()
    }
}

fn open_args(config: &toml::Table) -> Result<String> {
    serde_json::to_string(config).map_err(|e| Error::invalid_config(format!("configuration cannot be encoded: {e}")))
}

impl Store {
    /// Opens store plugin `name` with its configuration table.
    pub fn open(module: Module, name: &str, schemes: Vec<String>, config: &toml::Table, dir: &Path) -> Result<Self> {
        let Module::Store(m) = module else {
            return Err(Error::invalid_config(format!("plugin '{name}' is not a store")));
        };
        let json = open_args(config)?;
        let dir = dir.to_string_lossy();
        let inner = (m.open())(name.into(), json.as_str().into(), dir.as_ref().into()).into_result()?;
        Ok(Store { name: name.to_owned(), schemes, external: false, inner })
    }

    /// Starts writing the data of `id`.
    pub fn add(&self, id: ImageId, size: Option<u64>) -> Result<Writer> {
        let id = id.to_string();
        Ok(self.inner.add(id.as_str().into(), ROption::from(size)).into_result()?)
    }

    /// Opens `location` for reading.
    pub fn get(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Reader> {
        Ok(self.inner.get(location.into(), offset, ROption::from(length)).into_result()?)
    }

    /// The size of the data at `location`.
    pub fn size(&self, location: &str) -> Result<u64> {
        Ok(self.inner.size(location.into()).into_result()?)
    }

    /// Removes the data at `location`.
    pub fn delete(&self, location: &str) -> Result<()> {
        Ok(self.inner.delete(location.into()).into_result()?)
    }

    /// Removes what an interrupted upload of `id` left.
    pub fn discard(&self, id: ImageId) -> Result<()> {
        let id = id.to_string();
        Ok(self.inner.discard(id.as_str().into()).into_result()?)
    }

    /// Checks the backend.
    pub fn check(&self) -> Result<()> {
        Ok(self.inner.check().into_result()?)
    }
}

/// Appends `data` to a write.
pub fn write(w: &mut Writer, data: &[u8]) -> Result<()> {
    Ok(w.write(data.into()).into_result()?)
}

/// Makes a write durable; returns its location.
pub fn finish(w: Writer) -> Result<String> {
    Ok(w.finish().into_result()?.into_string())
}

/// Drops a write and everything it wrote.
pub fn abort(w: Writer) -> Result<()> {
    Ok(w.abort().into_result()?)
}

/// Reads the next bytes into `buf`; 0 at the end.
pub fn read(r: &mut Reader, buf: &mut [u8]) -> Result<usize> {
    Ok(r.read(buf.into()).into_result()?)
}

/// An opened registry driver.
pub struct Registry {
    /// The plugin's name (`sled`).
    pub name: String,
    inner: RegistryV1_TO<'static, RBox<()>>,
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| Error::backend(format!("the registry driver returned bad {what}: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::backend(format!("cannot encode JSON: {e}")))
}

impl Registry {
    /// Opens registry-driver plugin `name` with its configuration table.
    pub fn open(module: Module, name: &str, config: &toml::Table, dir: &Path) -> Result<Self> {
        let Module::Registry(m) = module else {
            return Err(Error::invalid_config(format!("plugin '{name}' is not a registry driver")));
        };
        let json = open_args(config)?;
        let dir = dir.to_string_lossy();
        let inner = (m.open())(name.into(), json.as_str().into(), dir.as_ref().into()).into_result()?;
        Ok(Registry { name: name.to_owned(), inner })
    }

    /// Stores a new image.
    pub fn create(&self, image: &Image) -> Result<Revision> {
        let json = encode(image)?;
        Ok(self.inner.create(json.as_str().into()).into_result()?)
    }

    /// The image with `id`, deleted ones included.
    pub fn get(&self, id: ImageId) -> Result<Revisioned<Image>> {
        let id = id.to_string();
        let record = self.inner.get(id.as_str().into()).into_result()?;
        Ok(Revisioned { revision: record.revision, value: decode("image", &record.json)? })
    }

    /// Replaces the image if it is still at `revision`.
    pub fn update(&self, image: &Image, revision: Revision) -> Result<Revision> {
        let id = image.id.to_string();
        let json = encode(image)?;
        Ok(self.inner.update(id.as_str().into(), revision, json.as_str().into()).into_result()?)
    }

    /// One page of images, as the driver answers the query (the images service checks
    /// the marker and the answer).
    pub fn list(&self, query: &ListQuery) -> Result<Vec<Image>> {
        let json = encode(query)?;
        decode("image list", &self.inner.list(json.as_str().into()).into_result()?)
    }

    /// Every image in one of `statuses`.
    pub fn with_status(&self, statuses: &[Status]) -> Result<Vec<Image>> {
        let json = encode(&statuses)?;
        decode("image list", &self.inner.with_status(json.as_str().into()).into_result()?)
    }

    /// Checks the database.
    pub fn check(&self) -> Result<()> {
        Ok(self.inner.check().into_result()?)
    }

    /// Forgets the image entirely (`tank registry` serves this to the remote driver).
    pub fn remove(&self, id: ImageId) -> Result<()> {
        let id = id.to_string();
        Ok(self.inner.remove(id.as_str().into()).into_result()?)
    }

    /// The driver's optional operation `op` (`tank registry` passes it through).
    pub fn call(&self, op: &str, payload: &str) -> Result<String> {
        Ok(self.inner.call(op.into(), payload.into()).into_result()?.into())
    }
}

impl tank_images::backend::Registry for Registry {
    fn name(&self) -> &str {
        &self.name
    }
    fn create(&self, image: &Image) -> Result<Revision> {
        Registry::create(self, image)
    }
    fn get(&self, id: ImageId) -> Result<Revisioned<Image>> {
        Registry::get(self, id)
    }
    fn update(&self, image: &Image, revision: Revision) -> Result<Revision> {
        Registry::update(self, image, revision)
    }
    fn remove(&self, id: ImageId) -> Result<()> {
        Registry::remove(self, id)
    }
    fn list(&self, query: &ListQuery) -> Result<Vec<Image>> {
        Registry::list(self, query)
    }
    fn with_status(&self, statuses: &[Status]) -> Result<Vec<Image>> {
        Registry::with_status(self, statuses)
    }
    fn usage(&self, owner: &str) -> Result<u64> {
        #[derive(serde::Deserialize)]
        struct Usage {
            bytes: u64,
        }
        let answer = self.call(tank_sdk::USAGE_OP, &encode(&serde_json::json!({ "owner": owner }))?)?;
        Ok(decode::<Usage>("usage figure", &answer)?.bytes)
    }
}

/// A write through the ABI, as the images service writes.
struct AbiWriter(Writer);

impl tank_images::backend::Writer for AbiWriter {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        write(&mut self.0, data)
    }
    fn finish(self: Box<Self>) -> Result<String> {
        finish(self.0)
    }
    fn abort(self: Box<Self>) -> Result<()> {
        abort(self.0)
    }
}

/// A read through the ABI, as the images service reads.
struct AbiReader(Reader);

impl tank_images::backend::Reader for AbiReader {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        read(&mut self.0, buf)
    }
}

impl tank_images::backend::Store for Store {
    fn name(&self) -> &str {
        &self.name
    }
    fn add(&self, id: ImageId, size: Option<u64>) -> Result<Box<dyn tank_images::backend::Writer>> {
        Ok(Box::new(AbiWriter(Store::add(self, id, size)?)))
    }
    fn get(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Box<dyn tank_images::backend::Reader>> {
        Ok(Box::new(AbiReader(Store::get(self, location, offset, length)?)))
    }
    fn size(&self, location: &str) -> Result<u64> {
        Store::size(self, location)
    }
    fn delete(&self, location: &str) -> Result<()> {
        Store::delete(self, location)
    }
    fn discard(&self, id: ImageId) -> Result<()> {
        Store::discard(self, id)
    }
}
