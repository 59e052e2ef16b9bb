//! API errors: what a client is told, and the one table that maps plugin error kinds to
//! HTTP statuses.

use http::StatusCode;
use tank_sdk::ErrorKind;

/// An error answered to a client as `{"error": {"code", "title", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What was wrong and, where the client can act, what to do. Never a credential.
    pub message: String,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 for image `id`.
    pub fn image_not_found(id: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("image {id} not found"))
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 500: the message is logged by the caller; the client gets a generic one.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        serde_json::json!({
            "error": {
                "code": self.status.as_u16(),
                "title": self.status.canonical_reason().unwrap_or(""),
                "message": self.message,
            }
        })
        .to_string()
    }
}

/// The status a plugin error of `kind` answers with. The one table: callers never look at
/// messages. Kinds this host does not know are backend failures.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NOT_FOUND => StatusCode::NOT_FOUND,
        ErrorKind::DUPLICATE | ErrorKind::CONFLICT => StatusCode::CONFLICT,
        ErrorKind::INVALID_INPUT => StatusCode::BAD_REQUEST,
        // Glance answers a full store with 413 and a refused write with 503 (§1.6).
        ErrorKind::STORAGE_FULL => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::PERMISSION_DENIED | ErrorKind::UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::UNSUPPORTED => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<tank_sdk::Error> for ApiError {
    fn from(e: tank_sdk::Error) -> Self {
        let status = status_of(e.kind);
        if status.is_server_error() {
            tracing::error!(kind = %e.kind, "plugin call failed: {}", e.message);
        }
        let message = if e.kind == ErrorKind::PANICKED {
            // The panic message is for the operator's log, not the client.
            "the storage plugin failed while handling this request; the operator's log has details".to_owned()
        } else {
            e.message
        };
        ApiError::new(status, message)
    }
}

impl From<tank_core::Error> for ApiError {
    fn from(e: tank_core::Error) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        tracing::error!("a blocking task failed: {e}");
        ApiError::internal("an internal task failed; the operator's log has details")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_glance_statuses() {
        assert_eq!(status_of(ErrorKind::STORAGE_FULL), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(status_of(ErrorKind::PERMISSION_DENIED), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_of(ErrorKind::DUPLICATE), StatusCode::CONFLICT);
        assert_eq!(status_of(ErrorKind(999)), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn panics_do_not_reach_the_client() {
        let e: ApiError = tank_sdk::Error::new(ErrorKind::PANICKED, "the plugin panicked: secret=hunter2").into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("hunter2"));
        let body: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(body["error"]["code"], 500);
        assert_eq!(body["error"]["title"], "Internal Server Error");
    }
}
