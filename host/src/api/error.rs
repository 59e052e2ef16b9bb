//! API errors: what a client is told, the v1 API's one table from the images service's
//! errors to statuses and messages, and the one table from plugin error kinds to statuses.

use http::StatusCode;
use tank_images::{ImageError, Mismatch, SizeLimit, SIZE_CAP};
use tank_sdk::ErrorKind;

/// An error answered to a client as `{"error": {"code", "title", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What was wrong and, where the client can act, what to do. Never a credential.
    pub message: String,
    /// Headers the answer carries (`Allow` on a 405, `Accept-Patch` on a 415).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), headers: Vec::new() }
    }

    /// The error with header `name: value` on its answer.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 for image `id`.
    pub fn image_not_found(id: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("image {id} not found"))
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

    /// The v1 answer to `e`. `source` names the header that brought the request's data
    /// from a URL (`x-glance-api-copy-from`, `x-image-meta-location`), for the errors
    /// about that URL.
    pub fn v1(e: ImageError, source: Option<&str>) -> ApiError {
        let about_source = |message: String| match source {
            Some(header) => format!("{header}: {message}"),
            None => message,
        };
        let (status, message) = match e {
            ImageError::NotFound(_) | ImageError::MemberNotFound { .. } | ImageError::NoData { .. } => {
                (StatusCode::NOT_FOUND, e.to_string())
            }
            ImageError::Forbidden { image: Some(id), action } => {
                (StatusCode::FORBIDDEN, format!("only the owner of image {id} or an admin may {}", action.describe()))
            }
            ImageError::Forbidden { .. } | ImageError::NotAllowed(_) => (StatusCode::FORBIDDEN, e.to_string()),
            ImageError::Protected(id) => {
                (StatusCode::FORBIDDEN, format!("image {id} is protected; set x-image-meta-protected: false first"))
            }
            ImageError::DataFieldFixed { image, field, status } => (
                StatusCode::FORBIDDEN,
                format!(
                    "x-image-meta-{field} of image {image} cannot change: it is {status} and the field describes its data"
                ),
            ),
            ImageError::Unauthenticated(why) => (StatusCode::UNAUTHORIZED, format!("{why} (X-Tenant)")),
            ImageError::WrongStatus { image, ref status, wanted } => match wanted {
                tank_images::Operation::Upload => (
                    StatusCode::CONFLICT,
                    format!("cannot upload to image {image}: it is {status}, and {}", wanted.rule()),
                ),
                _ => (StatusCode::CONFLICT, e.to_string()),
            },
            ImageError::Conflict(_) | ImageError::Duplicate(_) | ImageError::DeletedDuringUpload(_) => {
                (StatusCode::CONFLICT, e.to_string())
            }
            ImageError::BadTransition { .. } | ImageError::Interrupted(_) => (StatusCode::BAD_REQUEST, e.to_string()),
            ImageError::Invalid { field: "location", ref reason } => {
                (StatusCode::BAD_REQUEST, about_source(format!("invalid location: {reason}")))
            }
            ImageError::Invalid { .. } => (StatusCode::BAD_REQUEST, e.to_string()),
            ImageError::TooLarge { which: SizeLimit::Absolute, .. } => {
                (StatusCode::BAD_REQUEST, format!("images larger than {SIZE_CAP} bytes are not accepted"))
            }
            ImageError::TooLarge { which: SizeLimit::ImageSizeCap, .. }
            | ImageError::CapExceeded { .. }
            | ImageError::TooMany { .. }
            | ImageError::OverQuota { .. } => (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
            ImageError::SizeMismatch(m) => (StatusCode::BAD_REQUEST, match m {
                Mismatch::MoreThan { declared } => {
                    format!("the body holds more than the declared size of {declared} bytes (x-image-meta-size)")
                }
                Mismatch::Ended { declared, got } => {
                    format!("the body holds {got} bytes, the declared size is {declared} (x-image-meta-size)")
                }
                Mismatch::Declarations { declared, transport, registered } => {
                    let what = if registered { "the data at x-image-meta-location" } else { "Content-Length" };
                    format!("x-image-meta-size says {declared} bytes but {what} says {transport}; send matching values")
                }
            }),
            ImageError::ChecksumMismatch { declared, got } => (
                StatusCode::BAD_REQUEST,
                format!(
                    "checksum mismatch: the data has MD5 {got}, x-image-meta-checksum says {declared}; the image was not stored"
                ),
            ),
            ImageError::UnknownStore { name, available } => (
                StatusCode::BAD_REQUEST,
                format!("unknown store {name:?} (x-image-meta-store); this server has: {available}"),
            ),
            ImageError::UnsupportedSource { .. } => (StatusCode::BAD_REQUEST, about_source(e.to_string())),
            ImageError::Source { kind, ref store, ref message } => {
                // "Not found" at a URL the client gave is the client's mistake, not a
                // missing image.
                let status = if kind == ErrorKind::NOT_FOUND { StatusCode::BAD_REQUEST } else { status_of(kind) };
                (status, format!("{} (store {store}): {message}", source.unwrap_or("the data source")))
            }
            ImageError::Store { kind, .. } => (store_status(kind), e.to_string()),
            ImageError::StoreUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            ImageError::RangeNotSatisfiable { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, e.to_string()),
            ImageError::Registry { kind, .. } => (registry_status(kind), e.to_string()),
            ImageError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        ApiError::new(status, message)
    }
}

impl ApiError {
    /// The v2 answer to `e` (reference §7.2): v1's table, with v2's words for the fields
    /// and the statuses v2 gives differently: an image without data answers 204 on
    /// download (the caller answers that before it gets here), a wrong state 409, and a
    /// change the domain never allows 403.
    pub fn v2(e: ImageError) -> ApiError {
        let (status, message) = match e {
            ImageError::Forbidden { image: Some(id), action } => (
                StatusCode::FORBIDDEN,
                format!("you may not {} (image {id}): the {action} policy refuses", action.describe()),
            ),
            ImageError::Protected(id) => {
                (StatusCode::FORBIDDEN, format!("image {id} is protected; set protected to false first"))
            }
            ImageError::DataFieldFixed { image, field, status } => (
                StatusCode::FORBIDDEN,
                format!("the {field} of image {image} cannot change: it is {status} and the {field} describes its data"),
            ),
            ImageError::Unauthenticated(why) => (StatusCode::UNAUTHORIZED, why),
            ImageError::NoData { .. } | ImageError::WrongStatus { .. } => (StatusCode::CONFLICT, e.to_string()),
            ImageError::DeletedDuringUpload(_) => (StatusCode::GONE, e.to_string()),
            ImageError::SizeMismatch(m) => (StatusCode::BAD_REQUEST, match m {
                Mismatch::MoreThan { declared } => {
                    format!("the body holds more than the declared size of {declared} bytes (x-openstack-image-size)")
                }
                Mismatch::Ended { declared, got } => {
                    format!("the body holds {got} bytes, the declared size is {declared} (x-openstack-image-size)")
                }
                Mismatch::Declarations { declared, transport, .. } => format!(
                    "x-openstack-image-size says {declared} bytes but Content-Length says {transport}; send matching values"
                ),
            }),
            ImageError::ChecksumMismatch { declared, got } => (
                StatusCode::BAD_REQUEST,
                format!("checksum mismatch: the data has MD5 {got}, the image's checksum is {declared}; nothing was kept"),
            ),
            ImageError::UnknownStore { name, available } => (
                StatusCode::BAD_REQUEST,
                format!("unknown store {name:?} (x-image-meta-store); this server has: {available}"),
            ),
            other => return ApiError::v1(other, None),
        };
        ApiError::new(status, message)
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

/// The status of a failure of the store holding or receiving an image's data. Data Tank
/// wrote that its store cannot find is the server's failure, not a missing image: 500.
pub fn store_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NOT_FOUND => StatusCode::INTERNAL_SERVER_ERROR,
        kind => status_of(kind),
    }
}

/// The status of a registry driver's failure. A query the driver cannot answer (a filter
/// it was built without) is the operator's to fix by upgrading it: 501.
pub fn registry_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::UNSUPPORTED => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::NOT_FOUND | ErrorKind::INVALID_INPUT => StatusCode::INTERNAL_SERVER_ERROR,
        kind => status_of(kind),
    }
}

#[cfg(test)]
mod tests {
    use tank_core::{ImageId, Status};
    use tank_images::Action;

    use super::*;

    #[test]
    fn kinds_map_to_glance_statuses() {
        assert_eq!(status_of(ErrorKind::STORAGE_FULL), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(status_of(ErrorKind::PERMISSION_DENIED), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_of(ErrorKind::DUPLICATE), StatusCode::CONFLICT);
        assert_eq!(status_of(ErrorKind(999)), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(store_status(ErrorKind::NOT_FOUND), StatusCode::INTERNAL_SERVER_ERROR, "never 404 for lost data");
        assert_eq!(registry_status(ErrorKind::UNSUPPORTED), StatusCode::NOT_IMPLEMENTED);
    }

    #[test]
    fn the_v1_table_keeps_glances_statuses_and_names_v1_headers() {
        let id = ImageId::random();
        let cases: Vec<(ImageError, u16, &str)> = vec![
            (ImageError::NotFound(id), 404, "not found"),
            (ImageError::Forbidden { image: Some(id), action: Action::DeleteImage }, 403, "may delete it"),
            (ImageError::Protected(id), 403, "x-image-meta-protected: false"),
            (ImageError::DataFieldFixed { image: id, field: "size", status: Status::Active }, 403, "x-image-meta-size"),
            (ImageError::TooLarge { size: 1 << 51, limit: SIZE_CAP, which: SizeLimit::Absolute }, 400, "not accepted"),
            (ImageError::TooLarge { size: 11, limit: 10, which: SizeLimit::ImageSizeCap }, 413, "image_size_cap"),
            (ImageError::OverQuota { left: 1, quota: 3 }, 413, "1 of 3 bytes"),
            (
                ImageError::SizeMismatch(Mismatch::Declarations { declared: 5, transport: 6, registered: false }),
                400,
                "x-image-meta-size says 5 bytes but Content-Length says 6",
            ),
            (ImageError::Unauthenticated("no tenant".into()), 401, "(X-Tenant)"),
            (ImageError::DeletedDuringUpload(id), 409, "deleted during the upload"),
            (
                ImageError::WrongStatus { image: id, status: Status::Active, wanted: tank_images::Operation::Upload },
                409,
                "cannot upload to image",
            ),
            (ImageError::Store { store: "fs".into(), kind: ErrorKind::NOT_FOUND, message: "gone".into() }, 500, "gone"),
            (
                ImageError::Source { store: "http".into(), kind: ErrorKind::NOT_FOUND, message: "404".into() },
                400,
                "x-glance-api-copy-from (store http): 404",
            ),
        ];
        for (e, status, text) in cases {
            let api = ApiError::v1(e.clone(), Some("x-glance-api-copy-from"));
            assert_eq!(api.status.as_u16(), status, "{e:?}");
            assert!(api.message.contains(text), "{e:?}: {}", api.message);
        }
    }

    #[test]
    fn the_body_is_glances_error_json() {
        let body: serde_json::Value =
            serde_json::from_str(&ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "x").body()).unwrap();
        assert_eq!(body["error"]["code"], 500);
        assert_eq!(body["error"]["title"], "Internal Server Error");
    }
}
