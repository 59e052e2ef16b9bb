//! The http store: images that live on a web server, registered by URL
//! (`x-image-meta-location: https://...`) or copied from one (`x-glance-api-copy-from`).
//! It only reads: adding and deleting answer "read-only store".
//!
//! Every request goes through `[import_filtering_opts]`, which the host hands over
//! (manifest `host_settings`): the URL's scheme, port and host before anything is looked
//! up, every address its name resolves to (in the resolver, so the connection goes to an
//! address that was checked), and again each redirect, at most `max_redirects` of them.
//! A client therefore cannot use Tank to reach a loopback, private or link-local address
//! the operator has not allowed.
//!
//! The HTTP client is reqwest (see README.md for why), running on a small tokio runtime
//! owned by the store: the host's calls block, each waiting for its own request.

mod backend;
mod config;
mod error;

pub use backend::HttpStore;
pub use config::Config;

tank_sdk::export_store!(HttpStore, name = "http");
