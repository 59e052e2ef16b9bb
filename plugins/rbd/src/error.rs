//! librados' and librbd's errnos as store errors.
//!
//! Every message names the store, the operation and its object (`store 'rbd': writing
//! images/<id> failed: ...`), so that a 503 tells the operator what to look at. librados
//! never hands the key back, and messages name the user and the keyring's path only.

use std::fmt;

use tank_sdk::{Error, ErrorKind};

use crate::ffi::Errno;

const EPERM: i32 = 1;
const ENOENT: i32 = 2;
const EIO: i32 = 5;
const EACCES: i32 = 13;
const EBUSY: i32 = 16;
const EEXIST: i32 = 17;
const ENOSPC: i32 = 28;
const ENOTEMPTY: i32 = 39;
const ENOTCONN: i32 = 107;
const ESHUTDOWN: i32 = 108;
const ETIMEDOUT: i32 = 110;
const ECONNREFUSED: i32 = 111;
const EHOSTUNREACH: i32 = 113;
const EDQUOT: i32 = 122;

/// The kind an errno of librados or librbd stands for: a missing image or pool is not
/// found, an existing one a duplicate, an image or snapshot in use (clones, watchers,
/// other snapshots) a conflict, a full cluster storage-full, a refused key permission
/// denied, and a cluster that does not answer unavailable.
pub fn kind(e: Errno) -> ErrorKind {
    match e.0 {
        ENOENT => ErrorKind::NOT_FOUND,
        EEXIST => ErrorKind::DUPLICATE,
        EBUSY | ENOTEMPTY => ErrorKind::CONFLICT,
        ENOSPC | EDQUOT => ErrorKind::STORAGE_FULL,
        EPERM | EACCES => ErrorKind::PERMISSION_DENIED,
        ETIMEDOUT | ENOTCONN | ESHUTDOWN | ECONNREFUSED | EHOSTUNREACH | EIO => ErrorKind::UNAVAILABLE,
        _ => ErrorKind::BACKEND,
    }
}

/// What a message is about: the store's name and the operation with its object.
pub struct What<'a> {
    /// The store's name in the host's configuration.
    pub store: &'a str,
    /// "writing images/<id>".
    pub op: String,
}

impl fmt::Display for What<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store '{}': {}", self.store, self.op)
    }
}

impl What<'_> {
    /// An error of `kind` about this operation.
    pub fn error(&self, kind: ErrorKind, detail: impl fmt::Display) -> Error {
        Error::new(kind, format!("{self} failed: {detail}"))
    }

    /// librados' or librbd's `errno` for this operation, with its kind; `hint` (if not
    /// empty) says what to do.
    pub fn errno(&self, e: Errno, hint: &str) -> Error {
        let kind = kind(e);
        let hint = match (hint.is_empty(), kind) {
            (false, _) => format!("; {hint}"),
            (true, ErrorKind::UNAVAILABLE) => "; the cluster did not answer in time, check that it is up".to_owned(),
            _ => String::new(),
        };
        self.error(kind, format!("{e}{hint}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_map_to_kinds_and_messages_name_the_store() {
        assert_eq!(kind(Errno(2)), ErrorKind::NOT_FOUND);
        assert_eq!(kind(Errno(17)), ErrorKind::DUPLICATE);
        assert_eq!(kind(Errno(16)), ErrorKind::CONFLICT);
        assert_eq!(kind(Errno(28)), ErrorKind::STORAGE_FULL);
        assert_eq!(kind(Errno(13)), ErrorKind::PERMISSION_DENIED);
        assert_eq!(kind(Errno(22)), ErrorKind::BACKEND);
        let what = What { store: "rbd", op: "reading images/x".into() };
        let e = what.errno(Errno(110), "");
        assert_eq!(e.kind, ErrorKind::UNAVAILABLE);
        assert!(e.retryable);
        assert_eq!(
            e.message,
            "store 'rbd': reading images/x failed: Connection timed out (errno 110); the cluster did not answer in \
             time, check that it is up"
        );
        let e = what.errno(Errno(2), "no such image");
        assert!(e.message.ends_with("No such file or directory (errno 2); no such image"), "{}", e.message);
    }
}
