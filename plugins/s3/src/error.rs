//! OpenDAL's and reqwest's errors as store errors.
//!
//! Every message names the store, the operation and the object (`store 's3': GET of
//! images/<id> at 127.0.0.1:7480 failed: ...`) so that a 503 tells the operator which
//! server to look at. Messages never hold a URL with a query, a signature or a key: OpenDAL's
//! context (which holds URLs) is left out, reqwest's errors are taken without their URL,
//! and as a last guard [`Redact`] blanks the store's keys wherever a server echoed them.

use std::fmt;

use tank_sdk::{Error, ErrorKind};

/// What a message is about: the store's name, the operation and its object.
#[derive(Clone)]
pub struct What<'a> {
    /// The store's name in the host's configuration.
    pub store: &'a str,
    /// "GET of images/<id> at 127.0.0.1:7480".
    pub op: String,
    /// Texts to blank out of messages: the keys in use.
    pub redact: &'a Redact,
}

impl fmt::Display for What<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store '{}': {}", self.store, self.op)
    }
}

/// The secrets a message must never contain.
#[derive(Default, Clone)]
pub struct Redact(Vec<String>);

impl Redact {
    /// Blanks `secrets` (the empty ones are ignored).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Redact {
        Redact(secrets.into_iter().filter(|s| !s.is_empty()).map(str::to_owned).collect())
    }

    /// `text` with every secret replaced.
    pub fn apply(&self, text: &str) -> String {
        self.0.iter().fold(text.to_owned(), |t, s| t.replace(s.as_str(), "<redacted>"))
    }
}

impl What<'_> {
    /// An error of `kind` about this operation.
    pub fn error(&self, kind: ErrorKind, detail: impl fmt::Display) -> Error {
        Error::new(kind, self.redact.apply(&format!("{self} failed: {detail}")))
    }

    /// An OpenDAL error of this operation, with its kind mapped: a missing object or bucket
    /// is not found, a refused signature or permission is permission denied, an object
    /// that exists when it must not is a duplicate, and everything that a later retry may
    /// fix (connections, time-outs, 5xx, throttling) is unavailable.
    pub fn opendal(&self, e: &opendal::Error) -> Error {
        use opendal::ErrorKind as K;
        let kind = match e.kind() {
            K::NotFound => ErrorKind::NOT_FOUND,
            K::PermissionDenied => ErrorKind::PERMISSION_DENIED,
            K::AlreadyExists | K::ConditionNotMatch => ErrorKind::DUPLICATE,
            K::ConfigInvalid => ErrorKind::INVALID_CONFIG,
            K::RateLimited => ErrorKind::UNAVAILABLE,
            _ if e.is_temporary() => ErrorKind::UNAVAILABLE,
            _ => ErrorKind::BACKEND,
        };
        self.error(kind, opendal_detail(e))
    }

    /// A reqwest error of this operation's own request (bucket and upload housekeeping).
    pub fn reqwest(&self, e: reqwest::Error) -> Error {
        let kind = if e.is_builder() { ErrorKind::BACKEND } else { ErrorKind::UNAVAILABLE };
        self.error(kind, chain(&e.without_url()))
    }

    /// A request that took longer than `secs` seconds as a whole.
    pub fn timed_out(&self, secs: u64) -> Error {
        self.error(ErrorKind::UNAVAILABLE, format!("no answer within {secs} s"))
    }
}

/// OpenDAL's message and the chain of its sources, without its context (URLs, paths).
/// The kind is said only when it says something ("NotFound"), not "Unexpected".
fn opendal_detail(e: &opendal::Error) -> String {
    let mut text = match e.kind() {
        opendal::ErrorKind::Unexpected => e.message().to_owned(),
        kind => format!("{kind}: {}", e.message()),
    };
    if let Some(source) = std::error::Error::source(e) {
        text.push_str(": ");
        text.push_str(&chain(source));
    }
    text
}

/// An error and its sources as one line, each layer only where it adds something.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_and_messages_name_the_store_and_hide_keys() {
        let redact = Redact::new(["AKID", "hunter2", ""]);
        let what = What { store: "s3", op: "GET of images/x at 127.0.0.1:1".into(), redact: &redact };
        let e = what.opendal(&opendal::Error::new(opendal::ErrorKind::NotFound, "S3Error { code: \"NoSuchKey\" }"));
        assert_eq!(e.kind, ErrorKind::NOT_FOUND);
        assert!(e.message.starts_with("store 's3': GET of images/x at 127.0.0.1:1 failed: "), "{}", e.message);
        let down =
            what.opendal(&opendal::Error::new(opendal::ErrorKind::Unexpected, "send http request").set_temporary());
        assert_eq!(down.kind, ErrorKind::UNAVAILABLE);
        assert!(down.retryable);
        let echoed = what.opendal(&opendal::Error::new(
            opendal::ErrorKind::PermissionDenied,
            "<AWSAccessKeyId>AKID</AWSAccessKeyId> signed with hunter2",
        ));
        assert_eq!(echoed.kind, ErrorKind::PERMISSION_DENIED);
        assert!(!echoed.message.contains("AKID") && !echoed.message.contains("hunter2"), "{}", echoed.message);
        let dup = what.opendal(&opendal::Error::new(opendal::ErrorKind::ConditionNotMatch, "exists"));
        assert_eq!(dup.kind, ErrorKind::DUPLICATE);
    }
}
