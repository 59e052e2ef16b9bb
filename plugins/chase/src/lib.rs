//! The chase store: image data in OpenStack Swift (Tank calls Swift "Chase", as Glance's
//! swift store).
//!
//! Images live in one container of one Swift account as objects named by image id; an
//! image of `large_object_size` or more is written as segments of `large_object_chunk_size`
//! in `<container>_segments` plus a static large object manifest (SLO), and deleted with
//! all of them. Locations are `swift://<container>/<image id>` (`chase://` is read too),
//! with no credentials in them; the account and token come from the store's configuration
//! (auth v1.0, as tempauth speaks it, or Keystone v3).
//!
//! The Swift client is a small one on reqwest (see README.md for why not OpenDAL), running
//! on a tokio runtime owned by the store: the host's calls block, each waiting for its own
//! requests. Every wait is bounded by `timeout`, so a dead Swift is an error naming the
//! store, never a hang.

mod backend;
mod client;
mod config;
mod error;
mod writer;

pub use backend::ChaseStore;
pub use config::Config;

tank_sdk::export_store!(ChaseStore, name = "chase");
