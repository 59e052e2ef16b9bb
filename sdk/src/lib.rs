//! The Tank plugin SDK: the only crate a Tank plugin links against.
//!
//! A plugin is a `cdylib` holding one *store* (image data) or one *registry driver* (image
//! metadata). Its author implements a plain Rust trait, [`Store`] or [`RegistryDriver`],
//! and exports it with one line:
//!
//! ```
//! use tank_sdk::{Error, OpenContext, Reader, Result, Store, Writer};
//!
//! /// A store that holds nothing: every read is "not found", every write is refused.
//! pub struct Nothing;
//!
//! impl Store for Nothing {
//!     fn open(_ctx: &OpenContext) -> Result<Self> {
//!         Ok(Nothing)
//!     }
//!     fn add(&self, _id: &str, _size: Option<u64>) -> Result<Box<dyn Writer>> {
//!         Err(Error::unsupported("this store is read-only"))
//!     }
//!     fn get(&self, location: &str, _offset: u64, _length: Option<u64>) -> Result<Box<dyn Reader>> {
//!         Err(Error::not_found(format!("nothing at {location}")))
//!     }
//!     fn size(&self, location: &str) -> Result<u64> {
//!         Err(Error::not_found(format!("nothing at {location}")))
//!     }
//!     fn delete(&self, location: &str) -> Result<()> {
//!         Err(Error::not_found(format!("nothing at {location}")))
//!     }
//!     fn discard(&self, _id: &str) -> Result<()> {
//!         Ok(())
//!     }
//! }
//!
//! tank_sdk::export_store!(Nothing, name = "nothing");
//! ```
//!
//! Everything that crosses the library boundary is defined in [`abi`], as frozen ABI
//! *generations* checked by `abi_stable` when the host loads the library. The SDK's
//! adapters sit between those types and the author's trait: they catch every panic and turn
//! it into an error of kind [`ErrorKind::PANICKED`], and they forward the plugin's `tracing`
//! events to the host's log.
//!
//! # Calling discipline
//! The host calls plugins only from blocking threads, one transfer per thread, and never
//! from an async runtime's worker. A plugin may therefore block; a plugin that wraps an
//! async library keeps its own runtime inside and calls `block_on` (see the plugin
//! authors' guide, `docs/plugins.md`).

#![deny(missing_docs)]

pub mod abi;
mod error;
mod export;
mod log;
mod registry;
mod store;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use error::{Error, ErrorKind, Result};
pub use registry::{RegistryDriver, Revision, Revisioned, USAGE_OP};
pub use store::{OpenContext, Reader, Store, Writer};
/// The image domain that registry drivers store and query.
pub use tank_core as image;

/// The ABI generation this SDK's plugins export. A plugin's manifest names it as
/// `abi.generation`; the host refuses generations it does not carry.
pub const GENERATION: u32 = 1;

/// The target triple this SDK (and so any plugin built with it) was compiled for.
pub const TARGET: &str = env!("TANK_SDK_TARGET");

/// Names used by the export macros. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{open_registry_in_process, open_store_in_process, registry_header, store_header, Meta};
    pub use abi_stable::library::LibHeader;
}
