//! The registry's HTTP answers and transport failures as registry-driver errors.
//!
//! `tank registry` puts the error kind in its error body (`{"error": {"kind", "message"}}`),
//! so the kind the driver behind it returned comes back unchanged. A body without one (a
//! proxy's error page, say) is mapped from the status.

use http::StatusCode;
use tank_sdk::{Error, ErrorKind};

const KINDS: [ErrorKind; 10] = [
    ErrorKind::BACKEND,
    ErrorKind::NOT_FOUND,
    ErrorKind::DUPLICATE,
    ErrorKind::INVALID_CONFIG,
    ErrorKind::INVALID_INPUT,
    ErrorKind::STORAGE_FULL,
    ErrorKind::PERMISSION_DENIED,
    ErrorKind::UNAVAILABLE,
    ErrorKind::UNSUPPORTED,
    ErrorKind::CONFLICT,
];

/// What a 409 means where the body does not say: a create meets an existing id, an update
/// a newer revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On409 {
    /// `DUPLICATE`.
    Duplicate,
    /// `CONFLICT`.
    Conflict,
}

/// The kind of an error answer: the body's `kind` when it names one, else the status's.
fn kind_of(status: StatusCode, named: Option<&str>, on409: On409) -> ErrorKind {
    if let Some(kind) = named.and_then(|n| KINDS.into_iter().find(|k| k.name() == n)) {
        return kind;
    }
    match status {
        StatusCode::NOT_FOUND => ErrorKind::NOT_FOUND,
        StatusCode::CONFLICT if on409 == On409::Duplicate => ErrorKind::DUPLICATE,
        StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => ErrorKind::CONFLICT,
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => ErrorKind::INVALID_INPUT,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::STORAGE_FULL,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorKind::PERMISSION_DENIED,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
            ErrorKind::UNAVAILABLE
        }
        _ => ErrorKind::BACKEND,
    }
}

/// An error answer of the registry at `base` to `what` (`GET /tank/images/…`).
pub fn from_answer(base: &str, what: &str, status: StatusCode, body: &[u8], on409: On409) -> Error {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let error = json.as_ref().and_then(|j| j.get("error"));
    let named = error.and_then(|e| e.get("kind")).and_then(|k| k.as_str());
    let message = error.and_then(|e| e.get("message")).and_then(|m| m.as_str());
    let kind = kind_of(status, named, on409);
    match message {
        // The registry's own message already says what failed with what.
        Some(m) if status.is_client_error() => Error::new(kind, m),
        Some(m) => Error::new(kind, format!("registry at {base} failed on {what} ({status}): {m}")),
        None => Error::new(kind, format!("registry at {base} answered {what} with {status}")),
    }
}

/// The registry at `base` could not be reached; `cause` says how it failed.
pub fn unreachable(base: &str, cause: &str) -> Error {
    Error::new(
        ErrorKind::UNAVAILABLE,
        format!("registry at {base} is unreachable: {cause}; start `tank registry` there or fix [registry.remote] url"),
    )
}

/// The registry at `base` took longer than `secs` to answer `what`.
pub fn timed_out(base: &str, what: &str, secs: u64) -> Error {
    Error::new(
        ErrorKind::UNAVAILABLE,
        format!(
            "registry at {base} did not answer {what} within {secs} s; check that it is running and not overloaded, \
             or raise [registry.remote] timeout_secs"
        ),
    )
}

/// An answer that is not what the extension promises (a different server on that port?).
pub fn bad_answer(base: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::backend(format!(
        "registry at {base} gave a bad answer to {what}: {e}; is that a `tank registry` of this version?"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://127.0.0.1:9191";

    fn body(kind: &str, message: &str) -> Vec<u8> {
        serde_json::json!({"error": {"code": 409, "kind": kind, "message": message}}).to_string().into_bytes()
    }

    #[test]
    fn the_named_kind_wins_over_the_status() {
        let e = from_answer(BASE, "PUT", StatusCode::CONFLICT, &body("duplicate", "exists"), On409::Conflict);
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::DUPLICATE, "exists"));
        let e = from_answer(BASE, "PUT", StatusCode::CONFLICT, &body("conflict", "stale"), On409::Duplicate);
        assert_eq!(e.kind, ErrorKind::CONFLICT);
    }

    #[test]
    fn statuses_map_to_kinds_when_the_body_is_not_the_registrys() {
        let cases = [
            (404, On409::Conflict, ErrorKind::NOT_FOUND),
            (409, On409::Duplicate, ErrorKind::DUPLICATE),
            (409, On409::Conflict, ErrorKind::CONFLICT),
            (400, On409::Conflict, ErrorKind::INVALID_INPUT),
            (503, On409::Conflict, ErrorKind::UNAVAILABLE),
            (500, On409::Conflict, ErrorKind::BACKEND),
        ];
        for (status, on409, want) in cases {
            let e = from_answer(BASE, "GET /tank/images/x", StatusCode::from_u16(status).unwrap(), b"<html>", on409);
            assert_eq!(e.kind, want, "{status}");
            assert!(e.message.contains(BASE) && e.message.contains(&status.to_string()), "{}", e.message);
        }
    }

    #[test]
    fn transport_failures_are_retryable_and_name_the_registry() {
        let e = unreachable(BASE, "connection refused");
        assert_eq!(e.kind, ErrorKind::UNAVAILABLE);
        assert!(e.retryable && e.message.contains(BASE), "{e:?}");
        assert!(timed_out(BASE, "GET /tank/check", 30).message.contains("30 s"));
    }
}
