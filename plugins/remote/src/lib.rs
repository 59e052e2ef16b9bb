//! The remote registry driver: image metadata kept by a `tank registry` server, reached
//! over HTTP, so that several `tank api` servers share one set of records.
//!
//! Every `RegistryDriver` method is one request to the registry's Tank extension
//! (`/tank/...`, docs/registry.md), which carries records exactly as drivers store them and
//! keeps compare-and-swap across the network with `ETag`/`If-Match` revisions. HTTP
//! statuses come back as the sdk's error kinds; the registry's error body names the kind,
//! so a 409 is told apart as `DUPLICATE` or `CONFLICT`.
//!
//! The host's calls block, so the async HTTP client (hyper 1 through hyper-util, which the
//! workspace already uses) runs on a small tokio runtime owned by the driver, with
//! connections kept alive in its pool.

mod client;
mod config;
mod driver;
mod error;

pub use config::Config;
pub use driver::RemoteDriver;

tank_sdk::export_registry!(RemoteDriver, name = "remote");
