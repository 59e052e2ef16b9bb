//! The fs store's errors: IO errors keep their meaning (`ENOSPC` is storage full, `EACCES`
//! permission denied) through [`tank_sdk::Error::io`]; locations of the wrong form are
//! invalid input, named without echoing anything but the location's shape.

use std::path::Path;

use tank_sdk::Error;

/// A location this store does not own or that points outside its directory.
pub fn foreign_location(location: &str, why: &str) -> Error {
    // file:// locations hold no credentials, so naming the location is safe.
    Error::invalid_input(format!("location {location:?} is not one of this fs store's: {why}"))
}

/// An image id that is not a UUID (it would become a file name).
pub fn bad_image_id(id: &str) -> Error {
    Error::invalid_input(format!("image id {id:?} is not a UUID"))
}

/// A path in the datadir that is not a regular file (a directory, link or device someone
/// put there): the store never makes those, so it refuses to read them.
pub fn not_a_file(path: &Path) -> Error {
    Error::invalid_input(format!("{} is not a regular file, so it is no image of this store", path.display()))
}
