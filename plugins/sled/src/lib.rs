//! The sled registry driver: image metadata in an embedded sled database, Tank's default.
//!
//! One key per image (its 16 id bytes), whose value is `{"revision": n, "image": {...}}`,
//! and one keyset index tree per sort key (`index.rs`), written in the same transaction as
//! the record. Updates check the revision inside that transaction, so two writers of one
//! image can never both win, and every write is flushed before it returns, so a record the
//! API answered for survives a crash. A list page walks one index from the marker's key.

mod config;
mod driver;
mod error;
mod index;

pub use config::Config;
pub use driver::SledDriver;

tank_sdk::export_registry!(SledDriver, name = "sled");
