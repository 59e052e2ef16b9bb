//! The s3 store: images as objects in a bucket of Amazon S3 or an S3-compatible server
//! (Ceph's radosgw, MinIO, ...), one object per image under the image's id.
//!
//! Uploads of a declared size below `large_object_size` go up in one PUT; larger ones,
//! and every upload whose size is not known in advance, as multipart uploads of
//! `large_object_chunk_size` parts, `thread_pools` at a time, so an upload holds at most
//! `thread_pools + 2` parts in memory whatever the image's size. A failed, aborted or
//! dropped upload aborts its multipart upload; `discard` aborts what a crash left.
//! Downloads stream, from any offset.
//!
//! The S3 protocol (SigV4 signing, multipart uploads, ranged reads) is OpenDAL's s3
//! service (README.md says why), on a small tokio runtime owned by the store: the host's
//! calls block, each waiting for its own requests. Locations are `s3://<bucket>/<id>`,
//! without server or credentials; Glance's `s3://<access>:<secret>@<host>/<bucket>/<key>`
//! locations are read too. Neither credentials nor locations appear in messages.

mod admin;
mod backend;
mod config;
mod error;
mod location;
mod transport;

pub use backend::S3Store;
pub use config::Config;

tank_sdk::export_store!(S3Store, name = "s3");
