//! Swift's answers and reqwest's failures as store errors. Every message starts with the
//! store's name (the host passes it to the client, so a 503 says which store failed) and
//! names the server by host and port only: storage URLs, tokens and keys never appear.

use reqwest::StatusCode;
use tank_sdk::{Error, ErrorKind};

/// A request that failed before Swift answered: refused connections, time-outs and broken
/// transfers all mean the server is unavailable.
pub fn from_reqwest(what: &str, e: reqwest::Error) -> Error {
    let e = e.without_url();
    let mut chain: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        let text = c.to_string();
        // Each layer tends to repeat the one below it; keep what is new.
        if !chain.last().is_some_and(|last| last.contains(&text)) {
            chain.push(text);
        }
        cause = c.source();
    }
    let kind = if e.is_builder() { ErrorKind::INVALID_INPUT } else { ErrorKind::UNAVAILABLE };
    Error::new(kind, format!("{what} failed: {}", chain.join(": ")))
}

/// A request that did not get an answer within the store's `timeout`.
pub fn timed_out(what: &str, seconds: u64) -> Error {
    Error::new(ErrorKind::UNAVAILABLE, format!("{what} got no answer within {seconds} s (timeout)"))
}

/// Swift's answer `status` to `what`, which was not the one hoped for. `detail` is the
/// start of Swift's own explanation, when it gave one worth passing on.
pub fn from_status(what: &str, status: StatusCode, detail: &str) -> Error {
    let kind = match status {
        StatusCode::NOT_FOUND => ErrorKind::NOT_FOUND,
        StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT => ErrorKind::DUPLICATE,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorKind::PERMISSION_DENIED,
        // Swift answers 413 for an object over max_file_size and 507 when its disks are
        // full; Glance calls both StorageFull.
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::INSUFFICIENT_STORAGE => ErrorKind::STORAGE_FULL,
        s if s.is_server_error() => ErrorKind::UNAVAILABLE,
        _ => ErrorKind::BACKEND,
    };
    let detail = excerpt(detail);
    if detail.is_empty() {
        Error::new(kind, format!("{what} answered {status}"))
    } else {
        Error::new(kind, format!("{what} answered {status}: {detail}"))
    }
}

/// The first line of an error body Swift sent, without its HTML dressing, at most 200
/// characters: Swift's explanations ("Index 0: too small; each segment must be at least
/// 1 byte.") help an operator, its HTML pages do not.
pub fn excerpt(body: &str) -> String {
    let text = body.trim();
    if text.starts_with('<') {
        return String::new();
    }
    let line = text.lines().next().unwrap_or_default();
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        let kind = |s| from_status("PUT", s, "").kind;
        assert_eq!(kind(StatusCode::NOT_FOUND), ErrorKind::NOT_FOUND);
        assert_eq!(kind(StatusCode::PRECONDITION_FAILED), ErrorKind::DUPLICATE);
        assert_eq!(kind(StatusCode::UNAUTHORIZED), ErrorKind::PERMISSION_DENIED);
        assert_eq!(kind(StatusCode::INSUFFICIENT_STORAGE), ErrorKind::STORAGE_FULL);
        assert_eq!(kind(StatusCode::SERVICE_UNAVAILABLE), ErrorKind::UNAVAILABLE);
        assert_eq!(kind(StatusCode::BAD_REQUEST), ErrorKind::BACKEND);
        assert!(timed_out("store 'chase': HEAD", 3).retryable);
    }

    #[test]
    fn swifts_explanations_are_kept_and_its_html_is_not() {
        let e = from_status("store 'chase': PUT of a manifest", StatusCode::BAD_REQUEST, "Index 0: too small\nmore");
        assert_eq!(e.message, "store 'chase': PUT of a manifest answered 400 Bad Request: Index 0: too small");
        assert_eq!(excerpt("<html><h1>Unauthorized</h1></html>"), "");
        assert_eq!(excerpt(&"x".repeat(500)).len(), 200);
    }
}
