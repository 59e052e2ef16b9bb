//! The sled registry driver: image metadata in an embedded sled database, Tank's default.
//!
//! One key per image (its 16 id bytes), whose value is `{"revision": n, "image": {...}}`.
//! Updates are compare-and-swap on the stored bytes, so two writers of one image can never
//! both win, and every write is flushed before it returns, so a record the API answered
//! for survives a crash.

mod config;
mod driver;
mod error;

pub use config::Config;
pub use driver::SledDriver;

tank_sdk::export_registry!(SledDriver, name = "sled");
