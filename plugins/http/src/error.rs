//! reqwest's errors and HTTP statuses as store errors. Messages name the server (host and
//! port), never the URL's path or query, which belong to whoever registered the image.

use std::fmt;

use reqwest::StatusCode;
use tank_sdk::{Error, ErrorKind};

/// A URL refused by `[import_filtering_opts]`. The resolver and the redirect policy return
/// it inside reqwest's error chain, where [`from_reqwest`] finds it again.
#[derive(Debug)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// A failed request `what` ("GET from images.example.com:443"): a refusal by the rules is
/// bad input; failing to connect, time-outs and broken transfers mean the server is
/// unavailable.
pub fn from_reqwest(what: &str, e: reqwest::Error) -> Error {
    let e = e.without_url();
    let mut chain: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if let Some(refused) = c.downcast_ref::<Refused>() {
            return Error::invalid_input(format!("{what} refused: {refused}"));
        }
        let text = c.to_string();
        // Each layer tends to repeat the one below it; keep what is new.
        if !chain.last().is_some_and(|last| last.contains(&text)) {
            chain.push(text);
        }
        cause = c.source();
    }
    let kind = if e.is_builder() { ErrorKind::INVALID_INPUT } else { ErrorKind::UNAVAILABLE };
    let mut error = Error::new(kind, format!("{what} failed: {}", chain.join(": ")));
    error.retryable = kind == ErrorKind::UNAVAILABLE;
    error
}

/// A response of `status` to `what` that is not the data.
pub fn from_status(what: &str, status: StatusCode) -> Error {
    let kind = match status {
        StatusCode::NOT_FOUND | StatusCode::GONE => ErrorKind::NOT_FOUND,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorKind::PERMISSION_DENIED,
        s if s.is_server_error() => ErrorKind::UNAVAILABLE,
        _ => ErrorKind::INVALID_INPUT,
    };
    Error::new(kind, format!("{what} answered {status}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(from_status("GET", StatusCode::NOT_FOUND).kind, ErrorKind::NOT_FOUND);
        assert_eq!(from_status("GET", StatusCode::FORBIDDEN).kind, ErrorKind::PERMISSION_DENIED);
        assert_eq!(from_status("GET", StatusCode::BAD_GATEWAY).kind, ErrorKind::UNAVAILABLE);
        assert_eq!(from_status("GET", StatusCode::IM_A_TEAPOT).kind, ErrorKind::INVALID_INPUT);
        assert!(from_status("GET from a:80", StatusCode::NOT_FOUND).message.contains("a:80 answered 404"));
    }
}
