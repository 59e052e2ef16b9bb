//! sled's errors as registry errors: a database held by another process gets a message
//! that says so, everything else is a backend failure naming the database.

use std::path::Path;

use tank_sdk::Error;

/// Opening the database failed.
pub fn open_failed(path: &Path, e: sled::Error) -> Error {
    let text = e.to_string();
    if text.contains("lock") || text.contains("WouldBlock") || text.contains("temporarily unavailable") {
        return Error::backend(format!(
            "registry database {} is in use by another process; stop the other tank or point [registry.sled] path elsewhere",
            path.display()
        ));
    }
    Error::backend(format!("cannot open registry database {}: {text}", path.display()))
}

/// Any other sled failure.
pub fn backend(what: &str, e: sled::Error) -> Error {
    Error::backend(format!("registry database failed while {what}: {e}"))
}

/// A stored record that does not decode.
pub fn corrupt(e: serde_json::Error) -> Error {
    Error::backend(format!("a registry record is corrupt: {e}"))
}
