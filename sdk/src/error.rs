//! Errors: the Rust-side [`Error`] plugin authors return, and its kinds.
//!
//! An error crosses the ABI as [`crate::abi::PluginError`]: a kind, whether a retry may
//! help, and a message. The host maps kinds to HTTP statuses in one table; callers match on
//! the kind, never on the message.

use std::fmt;

use abi_stable::StableAbi;

/// What went wrong, as a number with named values so that kinds can be added without an
/// ABI change. A host that meets a kind it does not know treats it as [`ErrorKind::BACKEND`].
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash)]
pub struct ErrorKind(pub u16);

impl ErrorKind {
    /// The backend failed in a way no other kind describes.
    pub const BACKEND: Self = Self(1);
    /// The image, location or record does not exist.
    pub const NOT_FOUND: Self = Self(2);
    /// Something with that id already exists.
    pub const DUPLICATE: Self = Self(3);
    /// The plugin's configuration is wrong; the message names the key.
    pub const INVALID_CONFIG: Self = Self(4);
    /// An argument is malformed (a location of the wrong form, a bad query).
    pub const INVALID_INPUT: Self = Self(5);
    /// The backend is out of space.
    pub const STORAGE_FULL: Self = Self(6);
    /// The backend refused access.
    pub const PERMISSION_DENIED: Self = Self(7);
    /// The backend cannot be reached or timed out.
    pub const UNAVAILABLE: Self = Self(8);
    /// The operation is not supported by this plugin (a read-only store's `add`).
    pub const UNSUPPORTED: Self = Self(9);
    /// A registry record changed since it was read (compare-and-swap failed).
    pub const CONFLICT: Self = Self(10);
    /// The plugin panicked; the SDK caught it at the boundary.
    pub const PANICKED: Self = Self(255);

    /// A short name for logs and `tank plugins`.
    pub fn name(self) -> &'static str {
        match self {
            Self::BACKEND => "backend",
            Self::NOT_FOUND => "not-found",
            Self::DUPLICATE => "duplicate",
            Self::INVALID_CONFIG => "invalid-config",
            Self::INVALID_INPUT => "invalid-input",
            Self::STORAGE_FULL => "storage-full",
            Self::PERMISSION_DENIED => "permission-denied",
            Self::UNAVAILABLE => "unavailable",
            Self::UNSUPPORTED => "unsupported",
            Self::CONFLICT => "conflict",
            Self::PANICKED => "panicked",
            _ => "unknown",
        }
    }
}

impl fmt::Debug for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A plugin's error. The message must say what failed in words an operator can act on, and
/// must never contain credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Whether trying again later may succeed.
    pub retryable: bool,
    /// What failed, for people.
    pub message: String,
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, retryable: kind == ErrorKind::UNAVAILABLE, message: message.into() }
    }

    /// [`ErrorKind::NOT_FOUND`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NOT_FOUND, message)
    }

    /// [`ErrorKind::DUPLICATE`].
    pub fn duplicate(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::DUPLICATE, message)
    }

    /// [`ErrorKind::INVALID_CONFIG`].
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::INVALID_CONFIG, message)
    }

    /// [`ErrorKind::INVALID_INPUT`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::INVALID_INPUT, message)
    }

    /// [`ErrorKind::BACKEND`].
    pub fn backend(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BACKEND, message)
    }

    /// [`ErrorKind::UNSUPPORTED`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::UNSUPPORTED, message)
    }

    /// An IO error while doing `what`, with its kind taken from the OS error: a missing
    /// file is [`ErrorKind::NOT_FOUND`], ENOSPC and EFBIG are [`ErrorKind::STORAGE_FULL`],
    /// EACCES, EPERM and EROFS (a read-only filesystem refuses every write, as a missing
    /// permission does) are [`ErrorKind::PERMISSION_DENIED`].
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        const ENOSPC: i32 = 28;
        const EFBIG: i32 = 27;
        const EDQUOT: i32 = 122;
        const EROFS: i32 = 30;
        let kind = match (err.kind(), err.raw_os_error()) {
            (_, Some(ENOSPC | EFBIG | EDQUOT)) => ErrorKind::STORAGE_FULL,
            (Io::NotFound, _) => ErrorKind::NOT_FOUND,
            (Io::AlreadyExists, _) => ErrorKind::DUPLICATE,
            (Io::PermissionDenied, _) | (_, Some(EROFS)) => ErrorKind::PERMISSION_DENIED,
            (Io::TimedOut | Io::ConnectionRefused | Io::ConnectionReset, _) => ErrorKind::UNAVAILABLE,
            _ => ErrorKind::BACKEND,
        };
        Self::new(kind, format!("{what}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_kinds() {
        let full = Error::io("writing image", std::io::Error::from_raw_os_error(28));
        assert_eq!(full.kind, ErrorKind::STORAGE_FULL);
        assert!(full.message.starts_with("writing image: "), "{}", full.message);
        let denied = Error::io("x", std::io::Error::from_raw_os_error(13));
        assert_eq!(denied.kind, ErrorKind::PERMISSION_DENIED);
        let read_only = Error::io("x", std::io::Error::from_raw_os_error(30));
        assert_eq!(read_only.kind, ErrorKind::PERMISSION_DENIED);
        let missing = Error::io("x", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(missing.kind, ErrorKind::NOT_FOUND);
        assert!(!missing.retryable);
        assert!(Error::new(ErrorKind::UNAVAILABLE, "down").retryable);
    }

    #[test]
    fn unknown_kinds_have_a_name() {
        assert_eq!(ErrorKind(4242).name(), "unknown");
        assert_eq!(ErrorKind::PANICKED.to_string(), "panicked");
    }
}
