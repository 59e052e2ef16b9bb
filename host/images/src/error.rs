//! The one error of the image domain, and the actions a policy decides.
//!
//! Every API maps [`ImageError`] to its wire format in one table of its own (v1's in
//! `host/src/api/v1/error.rs`, the registry server's in `host/src/registry_server/error.rs`).
//! The variants carry values, not sentences about headers: which header or field a client
//! should fix is the API's business.

use std::fmt;

use tank_core::{ImageId, Status};
use tank_sdk::ErrorKind;

/// Something a caller does that a policy decides. The names are Glance's policy rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Action {
    GetImage,
    GetImages,
    AddImage,
    ModifyImage,
    DeleteImage,
    PublicizeImage,
    CommunitizeImage,
    UploadImage,
    DownloadImage,
    CopyFrom,
    SetImageLocation,
    Deactivate,
    Reactivate,
    GetMembers,
    GetMember,
    AddMember,
    DeleteMember,
    ModifyMember,
    AddTag,
    DeleteTag,
    DeleteImageLocation,
    CopyImage,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 22] = [
        Action::GetImage,
        Action::GetImages,
        Action::AddImage,
        Action::ModifyImage,
        Action::DeleteImage,
        Action::PublicizeImage,
        Action::CommunitizeImage,
        Action::UploadImage,
        Action::DownloadImage,
        Action::CopyFrom,
        Action::SetImageLocation,
        Action::Deactivate,
        Action::Reactivate,
        Action::GetMembers,
        Action::GetMember,
        Action::AddMember,
        Action::DeleteMember,
        Action::ModifyMember,
        Action::AddTag,
        Action::DeleteTag,
        Action::DeleteImageLocation,
        Action::CopyImage,
    ];

    /// The rule's name, as a policy file names it.
    pub fn name(self) -> &'static str {
        match self {
            Action::GetImage => "get_image",
            Action::GetImages => "get_images",
            Action::AddImage => "add_image",
            Action::ModifyImage => "modify_image",
            Action::DeleteImage => "delete_image",
            Action::PublicizeImage => "publicize_image",
            Action::CommunitizeImage => "communitize_image",
            Action::UploadImage => "upload_image",
            Action::DownloadImage => "download_image",
            Action::CopyFrom => "copy_from",
            Action::SetImageLocation => "set_image_location",
            Action::Deactivate => "deactivate",
            Action::Reactivate => "reactivate",
            Action::GetMembers => "get_members",
            Action::GetMember => "get_member",
            Action::AddMember => "add_member",
            Action::DeleteMember => "delete_member",
            Action::ModifyMember => "modify_member",
            Action::AddTag => "add_tag",
            Action::DeleteTag => "delete_tag",
            Action::DeleteImageLocation => "delete_image_location",
            Action::CopyImage => "copy_image",
        }
    }

    /// What the action does, for messages: "change image x" reads "you may not change…".
    pub fn describe(self) -> &'static str {
        match self {
            Action::GetImage => "read it",
            Action::GetImages => "list images",
            Action::AddImage => "create images",
            Action::ModifyImage => "change it",
            Action::DeleteImage => "delete it",
            Action::PublicizeImage => "make it public",
            Action::CommunitizeImage => "make it a community image",
            Action::UploadImage => "upload its data",
            Action::DownloadImage => "download it",
            Action::CopyFrom => "copy its data from a URL",
            Action::SetImageLocation => "set its location",
            Action::Deactivate => "deactivate it",
            Action::Reactivate => "reactivate it",
            Action::GetMembers => "list its members",
            Action::GetMember => "read its member",
            Action::AddMember => "share it",
            Action::DeleteMember => "remove its members",
            Action::ModifyMember => "change its membership",
            Action::AddTag => "tag it",
            Action::DeleteTag => "untag it",
            Action::DeleteImageLocation => "remove its data from a store",
            Action::CopyImage => "copy its data into more stores",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An operation that only some statuses allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Data goes to queued images only.
    Upload,
    /// Only active images can be deactivated.
    Deactivate,
    /// Only deactivated (or active) images can be reactivated.
    Reactivate,
    /// Copies of data are removed from active images only.
    RemoveCopy,
    /// Data is imported into queued images only (staged ones for glance-direct).
    Import,
    /// Data is staged for queued images only.
    Stage,
    /// Only active images are copied into more stores.
    Copy,
}

impl Operation {
    /// What it does and which statuses allow it, for messages.
    pub fn rule(self) -> &'static str {
        match self {
            Operation::Upload => "data can only be uploaded to a queued image",
            Operation::Deactivate => "only an active image can be deactivated",
            Operation::Reactivate => "only a deactivated image can be reactivated",
            Operation::RemoveCopy => "copies of data are removed from active images only",
            Operation::Import => {
                "data can only be imported into a queued image, or, with glance-direct, one whose data is staged"
            }
            Operation::Stage => "data can only be staged for a queued image",
            Operation::Copy => "only an active image can be copied into more stores",
        }
    }
}

/// Which limit a size ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeLimit {
    /// The hard cap on any image, 1 PiB (Glance's `IMAGE_SIZE_CAP`): a size past it is a
    /// mistake, not a large image.
    Absolute,
    /// The operator's `image_size_cap`.
    ImageSizeCap,
}

/// Where the bytes of an upload were counted against: the declared size, or a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The data brought more than the declared size (seen before the end).
    MoreThan {
        /// The declared size.
        declared: u64,
    },
    /// The data ended at a size other than the declared one.
    Ended {
        /// The declared size.
        declared: u64,
        /// What arrived.
        got: u64,
    },
    /// Two declarations disagree: the image's and the transport's (a `Content-Length`,
    /// or the size of data registered by URL).
    Declarations {
        /// The image's declared size.
        declared: u64,
        /// What the transport says.
        transport: u64,
        /// Whether the transport is data registered by URL (else a stream's length).
        registered: bool,
    },
}

/// A failure of an operation of the images service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageError {
    /// No image with this id, or one the caller may not know of: the two are never told
    /// apart.
    NotFound(ImageId),
    /// The image exists but has no such member.
    MemberNotFound {
        /// The image.
        image: ImageId,
        /// The member asked for.
        member: String,
    },
    /// The policy refused `action` on an image the caller may know of.
    Forbidden {
        /// The image, if the action has one.
        image: Option<ImageId>,
        /// What was refused.
        action: Action,
    },
    /// A change the domain never allows, whoever asks (a protected image's delete, the
    /// size of an image with data).
    NotAllowed(String),
    /// The action needs an identity the caller does not have (sharing needs a tenant).
    Unauthenticated(String),
    /// The size or checksum of an image that has (or is receiving) data cannot change:
    /// they describe that data.
    DataFieldFixed {
        /// The image.
        image: ImageId,
        /// `size` or `checksum`.
        field: &'static str,
        /// Its status.
        status: Status,
    },
    /// The image has no data to read (it is not active, or has no location).
    NoData {
        /// The image.
        image: ImageId,
        /// Its status.
        status: Status,
    },
    /// A protected image cannot be deleted.
    Protected(ImageId),
    /// A byte range outside the image's data.
    RangeNotSatisfiable {
        /// The image's size.
        size: u64,
    },
    /// The image is not in a state that allows this (data to an active image).
    WrongStatus {
        /// The image.
        image: ImageId,
        /// Its status.
        status: Status,
        /// What was asked.
        wanted: Operation,
    },
    /// A status change the state machine does not allow.
    BadTransition {
        /// From.
        from: Status,
        /// To.
        to: Status,
    },
    /// The image changed since the caller read it (an expected revision did not match),
    /// or kept changing under a request.
    Conflict(String),
    /// An image with this id exists already.
    Duplicate(ImageId),
    /// The image was deleted while its data arrived; nothing was kept.
    DeletedDuringUpload(ImageId),
    /// A value is not acceptable; `field` names it as the domain knows it.
    Invalid {
        /// The field (`id`, `member`, `tag`, ...).
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A size is over a limit, before any data arrived.
    TooLarge {
        /// The size.
        size: u64,
        /// The limit's value.
        limit: u64,
        /// Which limit.
        which: SizeLimit,
    },
    /// An image would have more tags, properties or members than its quota allows.
    TooMany {
        /// `tags`, `properties` or `members`.
        what: &'static str,
        /// The quota.
        limit: usize,
        /// The setting that sets it.
        setting: &'static str,
    },
    /// Data arriving went past `image_size_cap`.
    CapExceeded {
        /// `image_size_cap`.
        cap: u64,
    },
    /// Data arriving went past what is left of the owner's `user_storage_quota`.
    OverQuota {
        /// What was left when the upload began.
        left: u64,
        /// The quota.
        quota: u64,
    },
    /// The data's size is not what was declared.
    SizeMismatch(Mismatch),
    /// The data's MD5 is not what was declared.
    ChecksumMismatch {
        /// Declared.
        declared: String,
        /// Computed.
        got: String,
    },
    /// The client's byte stream broke before its end.
    Interrupted(String),
    /// No store of this name.
    UnknownStore {
        /// The name asked for.
        name: String,
        /// What this server has, for the message.
        available: String,
    },
    /// A URL the client gave (copy-from, location) has a scheme no external store reads.
    UnsupportedSource {
        /// The scheme.
        scheme: String,
        /// The schemes that are read, sorted.
        accepted: Vec<String>,
    },
    /// The store reading a URL the client gave failed; the message is redacted.
    Source {
        /// The store.
        store: String,
        /// The kind of failure.
        kind: ErrorKind,
        /// What failed, with no internal path, URL or address.
        message: String,
    },
    /// The store holding or receiving the data failed; the message is redacted.
    Store {
        /// The store.
        store: String,
        /// The kind of failure.
        kind: ErrorKind,
        /// What failed, with no internal path, URL or address.
        message: String,
    },
    /// The store an image needs is not loaded on this server.
    StoreUnavailable(ImageId),
    /// The registry driver failed.
    Registry {
        /// The kind of failure.
        kind: ErrorKind,
        /// What failed, with no internal path, URL or address.
        message: String,
    },
    /// A failure inside this server, detailed in its log.
    Internal(String),
}

impl ImageError {
    /// A store's failure, its message cleaned of paths and addresses for the client (the
    /// whole message goes to the log).
    pub fn store(store: &str, e: tank_sdk::Error) -> ImageError {
        let (kind, message) = public(store, "storage plugin", e);
        ImageError::Store { store: store.to_owned(), kind, message }
    }

    /// A failure of the store reading a client's URL.
    pub fn source(store: &str, e: tank_sdk::Error) -> ImageError {
        let (kind, message) = public(store, "storage plugin", e);
        ImageError::Source { store: store.to_owned(), kind, message }
    }

    /// A registry driver's failure. Kinds the domain has words for (not found, conflict,
    /// duplicate) are turned into them by the callers that know the id.
    pub fn registry(e: tank_sdk::Error) -> ImageError {
        let (kind, message) = public("registry", "registry plugin", e);
        ImageError::Registry { kind, message }
    }

    /// Whether the image is gone or hidden.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ImageError::NotFound(_))
    }
}

/// The kind and the client's message of a plugin's error, logging the operator's.
fn public(name: &str, what: &str, e: tank_sdk::Error) -> (ErrorKind, String) {
    if e.kind == ErrorKind::PANICKED {
        tracing::error!(plugin = %name, "the {what} panicked: {}", e.message);
        return (e.kind, format!("the {what} failed while handling this request; the operator's log has details"));
    }
    tracing::warn!(plugin = %name, kind = %e.kind, "{what} call failed: {}", e.message);
    (e.kind, tank_core::redact::for_clients(&e.message))
}

impl From<tank_core::Error> for ImageError {
    fn from(e: tank_core::Error) -> Self {
        match e {
            tank_core::Error::Transition { from, to } => ImageError::BadTransition { from, to },
            tank_core::Error::Invalid { field, reason } => ImageError::Invalid { field, reason },
        }
    }
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::NotFound(id) => write!(f, "image {id} not found"),
            ImageError::MemberNotFound { image, member } => write!(f, "{member} is not a member of image {image}"),
            ImageError::Forbidden { image: Some(id), action } => {
                write!(f, "you may not {} (image {id}): the {action} policy refuses", action.describe())
            }
            ImageError::Forbidden { image: None, action } => {
                write!(f, "you may not {}: the {action} policy refuses", action.describe())
            }
            ImageError::NotAllowed(why) | ImageError::Unauthenticated(why) | ImageError::Conflict(why) => {
                f.write_str(why)
            }
            ImageError::Internal(why) | ImageError::Interrupted(why) => f.write_str(why),
            ImageError::WrongStatus { image, status, wanted } => {
                write!(f, "image {image} is {status}: {}", wanted.rule())
            }
            ImageError::DataFieldFixed { image, field, status } => {
                write!(
                    f,
                    "the {field} of image {image} cannot change: it is {status} and the {field} describes its data"
                )
            }
            ImageError::NoData { image, status } => write!(f, "image {image} has no data: it is {status}"),
            ImageError::Protected(id) => write!(f, "image {id} is protected; unprotect it first"),
            ImageError::RangeNotSatisfiable { size } => write!(f, "the range is outside the image's {size} bytes"),
            ImageError::BadTransition { from, to } => write!(f, "an image cannot go from {from} to {to}"),
            ImageError::Duplicate(id) => write!(f, "an image with id {id} already exists"),
            ImageError::DeletedDuringUpload(_) => {
                f.write_str("the image was deleted during the upload; nothing was kept")
            }
            ImageError::Invalid { field, reason } => write!(f, "invalid {field}: {reason}"),
            ImageError::TooLarge { size, limit, which: SizeLimit::Absolute } => {
                write!(f, "{size} bytes: images larger than {limit} bytes are not accepted")
            }
            ImageError::TooLarge { size, limit, which: SizeLimit::ImageSizeCap } => {
                write!(f, "the image's {size} bytes are more than image_size_cap ({limit} bytes); nothing was created")
            }
            ImageError::TooMany { what, limit, setting } => {
                write!(f, "an image may have at most {limit} {what} ({setting})")
            }
            ImageError::CapExceeded { cap } => {
                write!(f, "the image is larger than image_size_cap ({cap} bytes); nothing was kept")
            }
            ImageError::OverQuota { left, quota } => write!(
                f,
                "the image is larger than what is left of the owner's user_storage_quota ({left} of {quota} bytes); \
                 nothing was kept"
            ),
            ImageError::SizeMismatch(Mismatch::MoreThan { declared }) => {
                write!(f, "the data holds more than the declared size of {declared} bytes")
            }
            ImageError::SizeMismatch(Mismatch::Ended { declared, got }) => {
                write!(f, "the data holds {got} bytes, the declared size is {declared}")
            }
            ImageError::SizeMismatch(Mismatch::Declarations { declared, transport, .. }) => {
                write!(f, "the declared size is {declared} bytes but the data's is {transport}")
            }
            ImageError::ChecksumMismatch { declared, got } => {
                write!(f, "checksum mismatch: the data has MD5 {got}, the declared checksum is {declared}")
            }
            ImageError::UnknownStore { name, available } => {
                write!(f, "unknown store {name:?}; this server has: {available}")
            }
            ImageError::UnsupportedSource { scheme, accepted } => {
                write!(f, "{scheme}:// URLs are not accepted; this server reads images from ")?;
                if accepted.is_empty() {
                    f.write_str("no URLs (no store with external locations is loaded)")
                } else {
                    let list: Vec<String> = accepted.iter().map(|s| format!("{s}://")).collect();
                    f.write_str(&list.join(", "))
                }
            }
            ImageError::Source { store, message, .. } => write!(f, "(store {store}): {message}"),
            ImageError::Store { message, .. } => f.write_str(message),
            ImageError::StoreUnavailable(id) => write!(f, "the store holding image {id} is not available"),
            ImageError::Registry { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for ImageError {}

/// `Result` with [`ImageError`].
pub type Result<T, E = ImageError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_messages_reach_clients_without_paths_and_panics_not_at_all() {
        let e = ImageError::store(
            "fs",
            tank_sdk::Error::new(
                ErrorKind::STORAGE_FULL,
                "writing /srv/tank/images/x.partial: No space left on device",
            ),
        );
        assert_eq!(e.to_string(), "writing <path>: No space left on device");
        let e = ImageError::registry(tank_sdk::Error::new(ErrorKind::PANICKED, "boom secret=hunter2"));
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(matches!(e, ImageError::Registry { kind: ErrorKind::PANICKED, .. }));
    }

    #[test]
    fn every_action_has_a_distinct_name() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
    }
}
