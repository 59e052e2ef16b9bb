//! The fs store: each image is one file in a local directory, `<datadir>/<image id>`.
//!
//! An upload is written to `<id>.partial`, then fsynced, renamed to `<id>` and the directory
//! fsynced, so an image file exists only once its data is complete and durable, and a
//! crash leaves at most a `.partial` file that `discard` removes. Locations are
//! `file://<absolute datadir>/<id>`; any other path is refused, so a location can never
//! make the store read or delete outside its directory.

mod backend;
mod config;
mod error;
mod writer;

pub use backend::FsStore;
pub use config::Config;

tank_sdk::export_store!(FsStore, name = "fs");
