//! The client's one error type: a kind to match on, the HTTP status when the server
//! answered, and a message for people.

use std::fmt;

/// What kind of failure an [`Error`] is. Match on this, never on the message.
///
/// The kinds follow what a caller can do about the failure: fix the request
/// ([`BadInput`](ErrorKind::BadInput)), look elsewhere ([`NotFound`](ErrorKind::NotFound)),
/// ask for rights ([`Forbidden`](ErrorKind::Forbidden)), retry later or call the operator
/// ([`Server`](ErrorKind::Server), [`Network`](ErrorKind::Network)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The image, member or URL path does not exist, or the caller may not see it (404).
    NotFound,
    /// The request was refused as it stands: a bad field, filter or value (400), an image
    /// over the size cap or the owner's quota (413), or a local argument the client could
    /// not send (a header value that is not printable ASCII, a URL it cannot use).
    BadInput,
    /// The request clashes with the image's state: an existing id, an upload to an image
    /// that is not queued, a concurrent change (409).
    Conflict,
    /// The caller is not allowed: no or an unconfirmed token (401), a protected image or
    /// someone else's (403).
    Forbidden,
    /// The server failed (5xx) or answered something this client does not understand.
    Server,
    /// The server could not be reached, or the connection broke.
    Network,
    /// Downloaded data did not match the size or checksum the server declared for it.
    Integrity,
    /// A local file or reader failed (reading the data to upload, writing a download).
    Io,
}

impl ErrorKind {
    /// The kind a non-success HTTP status means.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            404 => ErrorKind::NotFound,
            400 | 411 | 413 | 414 | 415 | 431 => ErrorKind::BadInput,
            409 => ErrorKind::Conflict,
            401 | 403 => ErrorKind::Forbidden,
            _ => ErrorKind::Server,
        }
    }

    /// A stable lower-case name (`not_found`, `bad_input`, ...), for logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::BadInput => "bad_input",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Server => "server",
            ErrorKind::Network => "network",
            ErrorKind::Integrity => "integrity",
            ErrorKind::Io => "io",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call: its [`ErrorKind`], the HTTP status if the server answered, and a message
/// saying what failed (the server's own message when it sent one).
#[derive(Debug, thiserror::Error)]
#[error("{message}{}", .status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct Error {
    kind: ErrorKind,
    status: Option<u16>,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, status: None, message: message.into(), source: None }
    }

    /// The error for a server's non-success answer.
    pub(crate) fn from_answer(status: u16, message: String) -> Error {
        Error { kind: ErrorKind::from_status(status), status: Some(status), message, source: None }
    }

    /// Keeps `source` as the cause (shown by `{:#}` in anyhow and by error reporters).
    pub(crate) fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    /// The error with `note` after its message: what else the caller should know.
    pub(crate) fn with_note(mut self, note: &str) -> Error {
        self.message = format!("{}; {note}", self.message);
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status the server answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The message alone, without the cause.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(ErrorKind::from_status(404), ErrorKind::NotFound);
        assert_eq!(ErrorKind::from_status(400), ErrorKind::BadInput);
        assert_eq!(ErrorKind::from_status(413), ErrorKind::BadInput);
        assert_eq!(ErrorKind::from_status(409), ErrorKind::Conflict);
        assert_eq!(ErrorKind::from_status(401), ErrorKind::Forbidden);
        assert_eq!(ErrorKind::from_status(403), ErrorKind::Forbidden);
        assert_eq!(ErrorKind::from_status(500), ErrorKind::Server);
        assert_eq!(ErrorKind::from_status(503), ErrorKind::Server);
        assert_eq!(ErrorKind::from_status(405), ErrorKind::Server);
    }
}
