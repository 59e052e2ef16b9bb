//! Tank's image domain, shared by the host and every plugin: image ids, statuses and the
//! transitions between them, disk and container formats, image records, location URIs and
//! list queries, who may see and change an image, and the rules for URLs the server fetches
//! on a client's behalf.
//!
//! Architecture invariant: this crate never does IO. It has no HTTP, no files, no clocks
//! (callers pass timestamps in) and no dlopen, so every rule here can be unit-tested alone.

#![deny(missing_docs)]

pub mod access;
mod error;
mod format;
mod id;
mod image;
pub mod import_filter;
mod location;
pub mod query;
pub mod redact;
mod sharing;
mod status;
mod timestamp;

pub use access::{Caller, Viewer};
pub use error::Error;
pub use format::{check_format_pair, ContainerFormat, DiskFormat};
pub use id::ImageId;
pub use image::{Change, Image, ImageLocation, Upload, ATTRIBUTE_NAMES, SCHEMA};
pub use location::Location;
pub use sharing::{Member, MemberStatus, Visibility};
pub use status::Status;
pub use timestamp::Timestamp;
