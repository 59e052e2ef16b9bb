//! Tank's image domain, shared by the host and every plugin: image ids, statuses and the
//! transitions between them, disk and container formats, image records, location URIs and
//! list queries, and the rules for URLs the server fetches on a client's behalf.
//!
//! Architecture invariant: this crate never does IO. It has no HTTP, no files, no clocks
//! (callers pass timestamps in) and no dlopen, so every rule here can be unit-tested alone.

#![deny(missing_docs)]

mod error;
mod format;
mod id;
mod image;
pub mod import_filter;
mod location;
pub mod query;
mod status;
mod timestamp;

pub use error::Error;
pub use format::{check_format_pair, ContainerFormat, DiskFormat};
pub use id::ImageId;
pub use image::{Image, ImagePatch, Member};
pub use location::Location;
pub use status::Status;
pub use timestamp::Timestamp;
