//! ABI generation 1: every type that crosses the boundary between the host and a plugin.
//!
//! # Architecture invariant
//! These types are **frozen**. `abi_stable` checks their layout recursively when the host
//! loads a library, and its compatibility runs one way only (a plugin may be newer than the
//! host, never older), so editing any of them would break every plugin already built. New
//! capability goes into a new generation with new type names (`StoreModV2`, ...), which the
//! host carries beside this one; see `docs/abi-evolution.md`. The `call` methods are the
//! escape hatch for optional operations that cannot wait for a new generation.
//!
//! Data moves as blocking, chunked reads and writes of host-owned buffers: the host calls
//! these methods only from blocking threads (never from an async worker), and a plugin's
//! own async runtime, if it has one, stays inside the plugin.

// abi_stable's macros name types `StoreModV1_Ref`, `StoreV1_TO`, put impls inside
// generated items and cast pointers to their own type in `self`-taking methods; all three
// are its conventions, not ours to change. (Lint levels do not affect the ABI.)
#![allow(non_camel_case_types, non_local_definitions, clippy::unnecessary_cast)]

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, ROption, RResult, RSlice, RSliceMut, RStr, RString},
    StableAbi,
};

use crate::ErrorKind;

/// An error crossing the boundary. See [`crate::Error`].
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PluginError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Whether trying again later may succeed.
    pub retryable: bool,
    /// What failed, for people; never holds credentials.
    pub message: RString,
}

/// The services the host offers a plugin, handed over once in `init`.
#[repr(C)]
#[derive(StableAbi, Copy, Clone)]
pub struct HostV1 {
    /// Log one event. `level` is 1 (error) to 5 (trace); `target` is the Rust module path
    /// it came from.
    pub log: extern "C" fn(plugin: RStr<'_>, level: u8, target: RStr<'_>, message: RStr<'_>),
    /// The most verbose level the host will keep, 1 (error) to 5 (trace).
    pub max_level: u8,
}

/// What a library says about itself; the host checks it against the manifest.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PluginInfoV1 {
    /// The plugin's name, as in its manifest.
    pub name: RString,
    /// The plugin's own version.
    pub version: RString,
    /// `store` or `registry`.
    pub kind: RString,
    /// The version of the SDK it was built with.
    pub sdk_version: RString,
}

/// A configured store: one backend that holds image data. Shared by every transfer.
#[sabi_trait]
pub trait StoreV1: Send + Sync {
    /// Starts writing the data of image `image_id`; `size` is the expected length when the
    /// client declared one.
    fn add(&self, image_id: RStr<'_>, size: ROption<u64>) -> RResult<WriterV1_TO<'static, RBox<()>>, PluginError>;

    /// Opens the data at `location` for reading, from byte `offset`, at most `length` bytes.
    fn get(
        &self,
        location: RStr<'_>,
        offset: u64,
        length: ROption<u64>,
    ) -> RResult<ReaderV1_TO<'static, RBox<()>>, PluginError>;

    /// The size in bytes of the data at `location`.
    fn size(&self, location: RStr<'_>) -> RResult<u64, PluginError>;

    /// Removes the data at `location`.
    fn delete(&self, location: RStr<'_>) -> RResult<(), PluginError>;

    /// Removes whatever an interrupted `add` of `image_id` left behind (after a crash).
    fn discard(&self, image_id: RStr<'_>) -> RResult<(), PluginError>;

    /// Checks that the backend is reachable and usable.
    fn check(&self) -> RResult<(), PluginError>;

    /// An optional operation named `op`, with and returning JSON. Unknown operations answer
    /// [`ErrorKind::UNSUPPORTED`].
    #[sabi(last_prefix_field)]
    fn call(&self, op: RStr<'_>, payload: RStr<'_>) -> RResult<RString, PluginError>;
}

/// One open read of image data. Moved into one blocking thread, never shared.
#[sabi_trait]
pub trait ReaderV1: Send {
    /// Fills the start of `buf` and returns how many bytes it wrote; 0 means the end.
    #[sabi(last_prefix_field)]
    fn read(&mut self, buf: RSliceMut<'_, u8>) -> RResult<usize, PluginError>;
}

/// One open write of image data. Dropping it without `finish` aborts it.
#[sabi_trait]
pub trait WriterV1: Send {
    /// Appends `data`.
    fn write(&mut self, data: RSlice<'_, u8>) -> RResult<(), PluginError>;

    /// Makes the data durable and returns its location URI.
    fn finish(self) -> RResult<RString, PluginError>;

    /// Drops everything written so far.
    #[sabi(last_prefix_field)]
    fn abort(self) -> RResult<(), PluginError>;
}

/// A registry record and its revision, for compare-and-swap updates.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct RecordV1 {
    /// Changes on every update of the record.
    pub revision: u64,
    /// The image, as `tank_core::Image` JSON.
    pub json: RString,
}

/// A configured registry driver: where image metadata lives. Shared by every request.
#[sabi_trait]
pub trait RegistryV1: Send + Sync {
    /// Stores a new image (`tank_core::Image` JSON). [`ErrorKind::DUPLICATE`] if the id exists.
    fn create(&self, json: RStr<'_>) -> RResult<u64, PluginError>;

    /// The image with this id, deleted ones included.
    fn get(&self, id: RStr<'_>) -> RResult<RecordV1, PluginError>;

    /// Replaces the image if its revision is still `revision`, else [`ErrorKind::CONFLICT`].
    /// Returns the new revision.
    fn update(&self, id: RStr<'_>, revision: u64, json: RStr<'_>) -> RResult<u64, PluginError>;

    /// Forgets the image entirely (the API soft-deletes through `update`; this is for purges).
    fn remove(&self, id: RStr<'_>) -> RResult<(), PluginError>;

    /// Answers a `tank_core::query::ListQuery` (JSON) with a JSON array of images.
    fn list(&self, query: RStr<'_>) -> RResult<RString, PluginError>;

    /// Every image whose status is in `statuses` (a JSON array of status names), deleted
    /// ones included, as a JSON array of images: what the host recovers at start (`saving`)
    /// or scrubs (`pending_delete`).
    fn with_status(&self, statuses: RStr<'_>) -> RResult<RString, PluginError>;

    /// Checks that the database is reachable and usable.
    fn check(&self) -> RResult<(), PluginError>;

    /// An optional operation named `op`, with and returning JSON.
    #[sabi(last_prefix_field)]
    fn call(&self, op: RStr<'_>, payload: RStr<'_>) -> RResult<RString, PluginError>;
}

/// The root module of a store plugin, generation 1.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = StoreModV1_Ref)))]
#[sabi(missing_field(panic))]
pub struct StoreModV1 {
    /// Who the library says it is.
    pub info: extern "C" fn() -> PluginInfoV1,
    /// Called once, right after loading.
    pub init: extern "C" fn(host: HostV1),
    /// Opens a store named `name` with its `[store.<name>]` table as JSON; relative paths
    /// in it are relative to `config_dir`.
    #[sabi(last_prefix_field)]
    pub open: extern "C" fn(
        name: RStr<'_>,
        config_json: RStr<'_>,
        config_dir: RStr<'_>,
    ) -> RResult<StoreV1_TO<'static, RBox<()>>, PluginError>,
}

/// The root module of a registry-driver plugin, generation 1.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = RegistryModV1_Ref)))]
#[sabi(missing_field(panic))]
pub struct RegistryModV1 {
    /// Who the library says it is.
    pub info: extern "C" fn() -> PluginInfoV1,
    /// Called once, right after loading.
    pub init: extern "C" fn(host: HostV1),
    /// Opens the driver with its `[registry.<name>]` table as JSON.
    #[sabi(last_prefix_field)]
    pub open: extern "C" fn(
        name: RStr<'_>,
        config_json: RStr<'_>,
        config_dir: RStr<'_>,
    ) -> RResult<RegistryV1_TO<'static, RBox<()>>, PluginError>,
}

/// The interface version both sides compare. It belongs to generation 1, not to the SDK
/// crate's release, so that SDK releases do not break built plugins.
const GENERATION_1_VERSION: VersionStrings = VersionStrings::new("1.0.0");

impl RootModule for StoreModV1_Ref {
    declare_root_module_statics! {StoreModV1_Ref}
    const BASE_NAME: &'static str = "tank_store";
    const NAME: &'static str = "tank store plugin (generation 1)";
    const VERSION_STRINGS: VersionStrings = GENERATION_1_VERSION;
}

impl RootModule for RegistryModV1_Ref {
    declare_root_module_statics! {RegistryModV1_Ref}
    const BASE_NAME: &'static str = "tank_registry";
    const NAME: &'static str = "tank registry-driver plugin (generation 1)";
    const VERSION_STRINGS: VersionStrings = GENERATION_1_VERSION;
}

impl From<crate::Error> for PluginError {
    fn from(e: crate::Error) -> Self {
        PluginError { kind: e.kind, retryable: e.retryable, message: e.message.into() }
    }
}

impl From<PluginError> for crate::Error {
    fn from(e: PluginError) -> Self {
        crate::Error { kind: e.kind, retryable: e.retryable, message: e.message.into_string() }
    }
}
