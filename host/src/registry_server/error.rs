//! Registry errors: the API server's error JSON (`crate::api::error`) plus the registry
//! driver's error kind, so that the remote registry driver gets back the very kind the
//! driver behind `tank registry` returned (a 409 is `duplicate` or `conflict`, which the
//! status alone cannot tell).
//!
//! The status of a kind comes from `crate::api::error::status_of`, the host's one table;
//! the images service's errors map to kinds and statuses in [`RegistryError::from_image`],
//! the registry API's one table.

use http::StatusCode;
use tank_images::ImageError;
use tank_sdk::ErrorKind;

use crate::api::{error::status_of, json_response, ResponseBody};

/// An error answered as `{"error": {"code", "title", "message", "kind"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The registry-driver error kind it stands for.
    pub kind: ErrorKind,
    /// What was wrong and what to do. Never a credential or a location.
    pub message: String,
}

impl RegistryError {
    /// An error of `kind`, with the status the host's table gives it.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RegistryError { status: status_of(kind), kind, message: message.into() }
    }

    /// 400, `invalid-input`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::INVALID_INPUT, message)
    }

    /// 404 for image `id`: unknown and hidden images are told apart by nobody.
    pub fn image_not_found(id: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::NOT_FOUND, format!("image {id} not found"))
    }

    /// 403: the caller sees the image but may not do this to it.
    pub fn forbidden(message: impl Into<String>) -> Self {
        RegistryError { status: StatusCode::FORBIDDEN, kind: ErrorKind::PERMISSION_DENIED, message: message.into() }
    }

    /// Any other status, with the kind closest to it.
    pub fn with_status(status: StatusCode, message: impl Into<String>) -> Self {
        let kind = match status {
            StatusCode::NOT_FOUND => ErrorKind::NOT_FOUND,
            StatusCode::CONFLICT => ErrorKind::CONFLICT,
            s if s.is_client_error() => ErrorKind::INVALID_INPUT,
            _ => ErrorKind::BACKEND,
        };
        RegistryError { status, kind, message: message.into() }
    }

    /// The registry API's answer to an error of the images service.
    pub fn from_image(e: ImageError) -> RegistryError {
        let message = e.to_string();
        let (status, kind) = match &e {
            ImageError::NotFound(_) | ImageError::MemberNotFound { .. } | ImageError::NoData { .. } => {
                (StatusCode::NOT_FOUND, ErrorKind::NOT_FOUND)
            }
            ImageError::Forbidden { image: Some(id), .. } => {
                return RegistryError::forbidden(format!(
                    "you may not change image {id}; only its owner or an admin may"
                ))
            }
            ImageError::Forbidden { .. }
            | ImageError::NotAllowed(_)
            | ImageError::DataFieldFixed { .. }
            | ImageError::Protected(_) => (StatusCode::FORBIDDEN, ErrorKind::PERMISSION_DENIED),
            ImageError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, ErrorKind::PERMISSION_DENIED),
            ImageError::Conflict(_) | ImageError::WrongStatus { .. } | ImageError::DeletedDuringUpload(_) => {
                (StatusCode::CONFLICT, ErrorKind::CONFLICT)
            }
            ImageError::Duplicate(_) => (StatusCode::CONFLICT, ErrorKind::DUPLICATE),
            ImageError::Invalid { field: "marker", reason } => {
                return RegistryError::bad_request(format!("invalid marker: image could not be found ({reason})"))
            }
            ImageError::BadTransition { .. }
            | ImageError::Invalid { .. }
            | ImageError::TooLarge { .. }
            | ImageError::TooMany { .. }
            | ImageError::SizeMismatch(_)
            | ImageError::ChecksumMismatch { .. }
            | ImageError::Interrupted(_)
            | ImageError::UnknownStore { .. }
            | ImageError::UnsupportedSource { .. }
            | ImageError::RangeNotSatisfiable { .. } => (StatusCode::BAD_REQUEST, ErrorKind::INVALID_INPUT),
            ImageError::CapExceeded { .. } | ImageError::OverQuota { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, ErrorKind::STORAGE_FULL)
            }
            ImageError::Registry { kind, .. } | ImageError::Store { kind, .. } | ImageError::Source { kind, .. } => {
                (status_of(*kind), *kind)
            }
            ImageError::StoreUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorKind::UNAVAILABLE),
            ImageError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::BACKEND),
        };
        RegistryError { status, kind, message }
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        serde_json::json!({
            "error": {
                "code": self.status.as_u16(),
                "title": self.status.canonical_reason().unwrap_or(""),
                "message": self.message,
                "kind": self.kind.name(),
            }
        })
        .to_string()
    }

    /// The response.
    pub fn response(&self) -> http::Response<ResponseBody> {
        json_response(self.status, self.body())
    }
}

impl From<tank_sdk::Error> for RegistryError {
    fn from(e: tank_sdk::Error) -> Self {
        let mut out = RegistryError::new(e.kind, e.message);
        if out.status.is_server_error() {
            tracing::error!(kind = %e.kind, "registry driver call failed: {}", out.message);
        }
        if e.kind == ErrorKind::PANICKED {
            // The panic message is for this operator's log, not for the API server.
            out.message =
                "the registry driver failed while handling this request; the registry's log has details".into();
        }
        out
    }
}

impl From<tank_core::Error> for RegistryError {
    fn from(e: tank_core::Error) -> Self {
        RegistryError::bad_request(e.to_string())
    }
}

impl From<tokio::task::JoinError> for RegistryError {
    fn from(e: tokio::task::JoinError) -> Self {
        tracing::error!("a blocking task failed: {e}");
        RegistryError::new(ErrorKind::BACKEND, "an internal task failed; the registry's log has details")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_carries_the_kind_so_409s_can_be_told_apart() {
        let dup: RegistryError = tank_sdk::Error::duplicate("image x exists").into();
        let stale = RegistryError::new(ErrorKind::CONFLICT, "stale");
        assert_eq!((dup.status, stale.status), (StatusCode::CONFLICT, StatusCode::CONFLICT));
        let body: serde_json::Value = serde_json::from_str(&dup.body()).unwrap();
        assert_eq!(body["error"]["kind"], "duplicate");
        assert_eq!(body["error"]["code"], 409);
        let body: serde_json::Value = serde_json::from_str(&stale.body()).unwrap();
        assert_eq!(body["error"]["kind"], "conflict");
    }

    #[test]
    fn panics_stay_in_the_registry_log() {
        let e: RegistryError = tank_sdk::Error::new(ErrorKind::PANICKED, "boom at secret=hunter2").into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("hunter2"));
    }
}
