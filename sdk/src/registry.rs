//! The registry-driver trait a plugin author implements, and its generation-1 adapter.
//!
//! Records cross the boundary as `tank_core` JSON, so the ABI does not change when the
//! image model gains a field. A driver reads records into [`Image`], which keeps fields and
//! statuses this SDK does not know ([`Image::extra`], `Status::Other`) and writes them back
//! unchanged, so a record a newer host wrote survives a driver built before it. List
//! queries are the other way round: one naming a filter this SDK does not know is refused
//! with [`crate::ErrorKind::UNSUPPORTED`] before the driver sees it, never answered without
//! the filter.

use abi_stable::std_types::{RResult, RStr, RString};

use crate::{
    abi::{PluginError, RecordV1, RegistryV1},
    export::guard,
    image::{query::ListQuery, Image, ImageId, Status},
    Error, OpenContext, Result,
};

/// A record's revision: it changes on every update, for compare-and-swap.
pub type Revision = u64;

/// A value and the revision it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Revisioned<T> {
    /// The revision.
    pub revision: Revision,
    /// The value.
    pub value: T,
}

/// A registry driver: where image metadata lives. Shared by every request.
///
/// # Contract
/// - Every method may block; the host calls them from blocking threads.
/// - A write is durable when the method returns: after a crash, the host finds every image
///   in the state the last successful call left it.
/// - `update` is a compare-and-swap on the revision, so concurrent updates of one image
///   never lose a change: exactly one of two writers with the same revision succeeds.
/// - `list` answers [`ListQuery`] exactly as [`ListQuery::page`] would on all records.
///
/// # Errors
/// [`crate::ErrorKind::NOT_FOUND`] for an unknown id, `DUPLICATE` when creating an existing
/// id, `CONFLICT` for a stale revision, `INVALID_INPUT` for a marker that is not found.
pub trait RegistryDriver: Send + Sync + 'static {
    /// Opens the driver from its configuration.
    fn open(ctx: &OpenContext) -> Result<Self>
    where
        Self: Sized;

    /// Stores a new image; returns its first revision.
    fn create(&self, image: &Image) -> Result<Revision>;

    /// The image with `id`, deleted ones included.
    fn get(&self, id: ImageId) -> Result<Revisioned<Image>>;

    /// Replaces the image if it is still at `revision`; returns the new revision.
    fn update(&self, image: &Image, revision: Revision) -> Result<Revision>;

    /// Forgets the image entirely.
    fn remove(&self, id: ImageId) -> Result<()>;

    /// One page of images.
    fn list(&self, query: &ListQuery) -> Result<Vec<Image>>;

    /// Every image whose status is one of `statuses`.
    fn with_status(&self, statuses: &[Status]) -> Result<Vec<Image>>;

    /// Checks that the database is usable.
    fn check(&self) -> Result<()> {
        Ok(())
    }

    /// The bytes `owner`'s images hold, summed over [`Image::stored_bytes`]: what the
    /// host's storage quota is answered from, so that a driver that keeps this figure
    /// up to date saves the host a scan of every record per upload. The default answers
    /// [`crate::ErrorKind::UNSUPPORTED`], and the host then scans.
    ///
    /// It crosses the ABI as the optional operation [`USAGE_OP`].
    fn usage(&self, owner: &str) -> Result<u64> {
        let _ = owner;
        Err(Error::unsupported("this registry driver keeps no usage figures"))
    }

    /// An optional operation; the default knows none.
    fn call(&self, op: &str, _payload: &str) -> Result<String> {
        Err(Error::unsupported(format!("this registry driver has no operation {op:?}")))
    }
}

/// The optional operation behind [`RegistryDriver::usage`]: payload `{"owner": "<owner>"}`,
/// answer `{"bytes": <n>}`.
pub const USAGE_OP: &str = "usage";

#[derive(serde::Deserialize)]
struct UsageQuestion {
    owner: String,
}

pub(crate) struct RegistryAdapter<R>(pub(crate) R);

/// A list query, refused by name when it holds what this SDK does not know: a key (a
/// filter added after it) or a value (a sort key, a status).
fn list_query(json: RStr<'_>) -> Result<ListQuery> {
    serde_json::from_str(json.as_str()).map_err(|e| {
        let what = e.to_string();
        if what.starts_with("unknown field") || what.starts_with("unknown variant") {
            Error::unsupported(format!(
                "this registry driver (tank-sdk {}) cannot answer the list query: {what}; upgrade the registry \
                 driver plugin to one built with the host's tank-sdk",
                env!("CARGO_PKG_VERSION")
            ))
        } else {
            Error::invalid_input(format!("list query is not valid JSON: {what}"))
        }
    })
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, json: RStr<'_>) -> Result<T> {
    serde_json::from_str(json.as_str()).map_err(|e| Error::invalid_input(format!("{what} is not valid JSON: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<RString> {
    serde_json::to_string(value).map(RString::from).map_err(|e| Error::backend(format!("cannot encode JSON: {e}")))
}

fn parse_id(id: RStr<'_>) -> Result<ImageId> {
    id.as_str().parse().map_err(|e: crate::image::Error| Error::invalid_input(e.to_string()))
}

impl<R: RegistryDriver> RegistryV1 for RegistryAdapter<R> {
    fn create(&self, json: RStr<'_>) -> RResult<u64, PluginError> {
        guard(|| self.0.create(&from_json("image", json)?))
    }

    fn get(&self, id: RStr<'_>) -> RResult<RecordV1, PluginError> {
        guard(|| {
            let r = self.0.get(parse_id(id)?)?;
            Ok(RecordV1 { revision: r.revision, json: to_json(&r.value)? })
        })
    }

    fn update(&self, id: RStr<'_>, revision: u64, json: RStr<'_>) -> RResult<u64, PluginError> {
        guard(|| {
            let image: Image = from_json("image", json)?;
            if image.id != parse_id(id)? {
                return Err(Error::invalid_input("the record's id differs from the id updated"));
            }
            self.0.update(&image, revision)
        })
    }

    fn remove(&self, id: RStr<'_>) -> RResult<(), PluginError> {
        guard(|| self.0.remove(parse_id(id)?))
    }

    fn list(&self, query: RStr<'_>) -> RResult<RString, PluginError> {
        guard(|| to_json(&self.0.list(&list_query(query)?)?))
    }

    fn with_status(&self, statuses: RStr<'_>) -> RResult<RString, PluginError> {
        guard(|| {
            let statuses: Vec<Status> = from_json("status list", statuses)?;
            to_json(&self.0.with_status(&statuses)?)
        })
    }

    fn check(&self) -> RResult<(), PluginError> {
        guard(|| self.0.check())
    }

    fn call(&self, op: RStr<'_>, payload: RStr<'_>) -> RResult<RString, PluginError> {
        guard(|| {
            if op.as_str() == USAGE_OP {
                let question: UsageQuestion = from_json("usage question", payload)?;
                let bytes = self.0.usage(&question.owner)?;
                return Ok(RString::from(serde_json::json!({ "bytes": bytes }).to_string()));
            }
            self.0.call(op.as_str(), payload.as_str()).map(RString::from)
        })
    }
}
