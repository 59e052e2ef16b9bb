//! The rbd store: images as RBD images in a pool of a Ceph cluster, one per image under the
//! image's id, as Glance's rbd store keeps them.
//!
//! An upload is written in order in chunks (`chunk_size`, also the image's object size),
//! two on their way to the OSDs while the next gathers, so it holds three chunks whatever
//! the image's size; an upload of unknown size grows the image ahead of the data and trims
//! it at the end. A download reads one chunk ahead. Once the data is
//! written the store creates the snapshot `snap` and protects it, so that Nova and Cinder
//! can clone from it; the location, `rbd://<fsid>/<pool>/<id>/snap`, names that snapshot.
//! Delete unprotects and removes it, then the image; an aborted or dropped upload removes
//! its image. Glance's older `rbd://<id>` locations are read too.
//!
//! The store talks to the cluster through the system's librados and librbd, opened at run
//! time (ffi.rs), so Tank builds without Ceph and a host without librbd1 is told so.

mod backend;
mod config;
mod error;
mod ffi;
mod location;

pub use backend::RbdStore;
pub use config::Config;

tank_sdk::export_store!(RbdStore, name = "rbd");
