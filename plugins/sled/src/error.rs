//! sled's errors as registry errors: a database held by another process gets a message
//! that says what to do, and every other failure is a backend error naming the database.

use std::path::Path;

use tank_sdk::{image::ImageId, Error, ErrorKind, Revision};

/// What sled 0.34 says when another process holds the database's lock. It folds the lock
/// error into an `io::ErrorKind::Other` with this text, so the text is all there is to
/// recognise it by.
const LOCKED: &str = "could not acquire lock on";

/// Opening the database at `path` failed.
pub fn open_failed(path: &Path, e: sled::Error) -> Error {
    match &e {
        sled::Error::Io(io) if io.to_string().starts_with(LOCKED) => Error::backend(format!(
            "registry database {} is in use by another process; stop the other tank or point [registry.sled] path \
             elsewhere",
            path.display()
        )),
        _ => Error::backend(format!("cannot open registry database {}: {e}", path.display())),
    }
}

/// Any other sled failure, while doing `what` on the database at `path`.
pub fn backend(path: &Path, what: &str, e: sled::Error) -> Error {
    Error::backend(format!("registry database {} failed while {what}: {e}", path.display()))
}

/// A stored record that does not decode.
pub fn corrupt(path: &Path, key: &[u8], e: serde_json::Error) -> Error {
    let id =
        <[u8; 16]>::try_from(key).map_or_else(|_| format!("key {key:02x?}"), |b| ImageId::from_bytes(b).to_string());
    Error::backend(format!("registry database {}: the record of {id} is corrupt: {e}", path.display()))
}

/// An update at a revision that is no longer the record's.
pub fn conflict(id: ImageId, expected: Revision, found: Revision) -> Error {
    Error::new(
        ErrorKind::CONFLICT,
        format!("image {id} changed since it was read (revision {found}, not {expected}); read it again"),
    )
}

/// No record has this id.
pub fn not_found(id: ImageId) -> Error {
    Error::not_found(format!("image {id} not found"))
}
