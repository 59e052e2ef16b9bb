//! The store traits a plugin author implements, and the adapter that exposes them through
//! ABI generation 1 with every call guarded against panics.

use std::path::{Path, PathBuf};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RBox, ROption, RResult, RSlice, RSliceMut, RStr, RString},
};
use serde::de::DeserializeOwned;

use crate::{
    abi::{PluginError, ReaderV1, ReaderV1_TO, StoreV1, WriterV1, WriterV1_TO},
    export::guard,
    Error, Result,
};

/// What a plugin gets when the host opens it.
#[derive(Debug, Clone)]
pub struct OpenContext {
    /// The name the operator gave this store or driver (`filesystem`, `sled`, ...).
    pub name: String,
    /// The plugin's configuration table, as JSON.
    pub config: serde_json::Value,
    /// The directory of the host's configuration file: relative paths are relative to it.
    pub config_dir: PathBuf,
}

impl OpenContext {
    /// Deserialises the configuration into `T`. Give `T` `#[serde(deny_unknown_fields)]`
    /// so that a misspelt key is an error naming it.
    ///
    /// # Errors
    /// [`crate::ErrorKind::INVALID_CONFIG`], saying which key is wrong and why.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.config.clone()).map_err(|e| Error::invalid_config(e.to_string()))
    }

    /// `path` made absolute against the configuration file's directory.
    pub fn resolve(&self, path: impl AsRef<Path>) -> PathBuf {
        self.config_dir.join(path)
    }

    pub(crate) fn from_abi(name: RStr<'_>, config: RStr<'_>, dir: RStr<'_>) -> Result<Self> {
        let config = serde_json::from_str(config.as_str())
            .map_err(|e| Error::invalid_config(format!("configuration is not JSON: {e}")))?;
        Ok(OpenContext { name: name.to_string(), config, config_dir: PathBuf::from(dir.as_str()) })
    }
}

/// A store: a backend holding image data, shared by every transfer.
///
/// # Contract
/// - Every method may block; the host calls them from blocking threads.
/// - A location returned by [`Writer::finish`] is a URI whose scheme is one the manifest
///   lists, and which [`Store::get`], [`Store::size`] and [`Store::delete`] accept later,
///   also after a restart.
/// - Data is not visible under its location until `finish` returns; an aborted or dropped
///   writer leaves nothing behind.
///
/// # Errors
/// Return [`crate::ErrorKind::NOT_FOUND`] for a missing location, `DUPLICATE` when data for
/// the image id exists, `STORAGE_FULL` / `PERMISSION_DENIED` / `UNAVAILABLE` for those
/// backend conditions. Messages never contain credentials.
pub trait Store: Send + Sync + 'static {
    /// Opens the store from its configuration.
    fn open(ctx: &OpenContext) -> Result<Self>
    where
        Self: Sized;

    /// Starts writing the data of image `image_id` (`size`: the declared length, if any).
    fn add(&self, image_id: &str, size: Option<u64>) -> Result<Box<dyn Writer>>;

    /// Opens `location` for reading from `offset`, at most `length` bytes. An offset at or
    /// past the end reads nothing.
    fn get(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Box<dyn Reader>>;

    /// The size of the data at `location`.
    fn size(&self, location: &str) -> Result<u64>;

    /// Removes the data at `location`.
    fn delete(&self, location: &str) -> Result<()>;

    /// Removes what an `add` of `image_id` interrupted by a crash left behind. Finding
    /// nothing is success.
    fn discard(&self, image_id: &str) -> Result<()>;

    /// Checks that the backend is usable (`tank plugins --verify`, start-up).
    fn check(&self) -> Result<()> {
        Ok(())
    }

    /// An optional operation; the default knows none.
    fn call(&self, op: &str, _payload: &str) -> Result<String> {
        Err(Error::unsupported(format!("this store has no operation {op:?}")))
    }
}

/// One read of image data.
pub trait Reader: Send + 'static {
    /// Fills the start of `buf`; returns the count, 0 at the end.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize>;
}

/// One write of image data. Dropping it without `finish` must leave nothing behind; the
/// SDK calls `abort` for you when the host drops it.
pub trait Writer: Send + 'static {
    /// Appends `data`.
    fn write(&mut self, data: &[u8]) -> Result<()>;
    /// Makes the data durable and returns its location URI.
    fn finish(self: Box<Self>) -> Result<String>;
    /// Removes everything written so far.
    fn abort(self: Box<Self>) -> Result<()>;
}

/// Any `std::io::Read` is a [`Reader`].
impl<R: std::io::Read + Send + 'static> Reader for R {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        std::io::Read::read(self, buf).map_err(|e| Error::io("reading image data", e))
    }
}

pub(crate) struct StoreAdapter<S>(pub(crate) S);

impl<S: Store> StoreV1 for StoreAdapter<S> {
    fn add(&self, image_id: RStr<'_>, size: ROption<u64>) -> RResult<WriterV1_TO<'static, RBox<()>>, PluginError> {
        guard(|| {
            let w = self.0.add(image_id.as_str(), size.into_option())?;
            Ok(WriterV1_TO::from_value(WriterAdapter(Some(w)), TD_Opaque))
        })
    }

    fn get(
        &self,
        location: RStr<'_>,
        offset: u64,
        length: ROption<u64>,
    ) -> RResult<ReaderV1_TO<'static, RBox<()>>, PluginError> {
        guard(|| {
            let r = self.0.get(location.as_str(), offset, length.into_option())?;
            Ok(ReaderV1_TO::from_value(ReaderAdapter(r), TD_Opaque))
        })
    }

    fn size(&self, location: RStr<'_>) -> RResult<u64, PluginError> {
        guard(|| self.0.size(location.as_str()))
    }

    fn delete(&self, location: RStr<'_>) -> RResult<(), PluginError> {
        guard(|| self.0.delete(location.as_str()))
    }

    fn discard(&self, image_id: RStr<'_>) -> RResult<(), PluginError> {
        guard(|| self.0.discard(image_id.as_str()))
    }

    fn check(&self) -> RResult<(), PluginError> {
        guard(|| self.0.check())
    }

    fn call(&self, op: RStr<'_>, payload: RStr<'_>) -> RResult<RString, PluginError> {
        guard(|| self.0.call(op.as_str(), payload.as_str()).map(RString::from))
    }
}

struct ReaderAdapter(Box<dyn Reader>);

impl ReaderV1 for ReaderAdapter {
    fn read(&mut self, mut buf: RSliceMut<'_, u8>) -> RResult<usize, PluginError> {
        guard(|| {
            let n = self.0.read(buf.as_mut_slice())?;
            if n > buf.len() {
                return Err(Error::backend(format!("reader claimed {n} bytes into a {}-byte buffer", buf.len())));
            }
            Ok(n)
        })
    }
}

/// Holds the writer until `finish` or `abort` takes it; dropping it with the writer still
/// inside aborts the write.
struct WriterAdapter(Option<Box<dyn Writer>>);

impl WriterAdapter {
    fn take(&mut self) -> Result<Box<dyn Writer>> {
        self.0.take().ok_or_else(|| Error::backend("the writer was already finished or aborted"))
    }
}

impl WriterV1 for WriterAdapter {
    fn write(&mut self, data: RSlice<'_, u8>) -> RResult<(), PluginError> {
        guard(|| match self.0.as_mut() {
            Some(w) => w.write(data.as_slice()),
            None => Err(Error::backend("the writer was already finished or aborted")),
        })
    }

    fn finish(mut self) -> RResult<RString, PluginError> {
        guard(|| self.take()?.finish().map(RString::from))
    }

    fn abort(mut self) -> RResult<(), PluginError> {
        guard(|| self.take()?.abort())
    }
}

impl Drop for WriterAdapter {
    fn drop(&mut self) {
        if let Some(w) = self.0.take() {
            if let RResult::RErr(e) = guard(|| w.abort()) {
                tracing::warn!(error = %e.message, "aborting a dropped image write failed");
            }
        }
    }
}
