//! The sheepdog store: image data as Sheepdog VDIs, one per image, named by the image id.
//!
//! The store speaks Sheepdog's wire protocol itself over plain TCP (`proto.rs` is the
//! format, `client.rs` the connection): no `dog` or `collie` command is ever run, so no
//! location can reach a shell (Glance's CVE-2014-0162). Uploads are written in objects of
//! `chunk_size` MB mapped in the VDI's inode; reads walk the inode's block map, holes
//! reading as zeros; deletes zero the block map before DEL_VDI, without which Sheepdog
//! keeps the data. Locations are `sheepdog://<address>:<port>/<image id>`.
//!
//! The host's calls block, and so does this store: std sockets, each wait bounded by
//! `timeout`, so an unreachable cluster is an error naming the store, never a hang.

mod backend;
mod client;
mod config;
mod error;
pub mod proto;

pub use backend::SheepdogStore;
pub use config::Config;

tank_sdk::export_store!(SheepdogStore, name = "sheepdog");
